package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jmoiron/sqlx"

	"github.com/dddkit/dddkit/tracking"
)

// txKey is the context key of a DB's transaction: each DB has its own.
type txKey struct{ db *DB }

// txState is a transaction of [DB.InTx], carried in the context. It is
// begun lazily, by the first operation run in it: on pgx, BEGIN is then the
// first statement of that operation's batch and costs no round trip of its
// own; a unit of work that sends nothing costs nothing.
type txState struct {
	db  *DB
	ctx context.Context // InTx's context: database/sql ties the transaction to it

	mu   sync.Mutex // serializes the statements of the transaction
	done bool
	pgx  pgx.Tx
	sql  *sqlx.Tx
	// restore is set when an operation failed after its SAVEPOINT: the
	// transaction must be rolled back to the savepoint before anything else
	// is sent, or is dropped by a ROLLBACK. Doing that lazily saves a round
	// trip on the usual path, a failed save followed by a rollback. The
	// ROLLBACK TO SAVEPOINT goes alone: PostgreSQL refuses to even prepare
	// most other statements in an aborted transaction, and pgx prepares
	// the statements of a batch before running any.
	restore bool
}

var errTxDone = errors.New("sqlstore: the transaction of this context is already committed or rolled back")

func (db *DB) txFrom(ctx context.Context) *txState {
	t, _ := ctx.Value(txKey{db}).(*txState)
	return t
}

// InTx runs fn in a unit of work: a transaction, and a new tracking scope
// ([tracking.WithScope]), both carried by the context fn is given. When fn
// returns nil the transaction commits, and the scope commits only after the
// transaction did: snapshots advance only past what the database holds.
// When fn returns an error or panics, or the commit fails, the transaction
// rolls back and so does the scope, so that a retry sends the same changes
// again. A panic is re-raised after the rollback. The error of a failed
// commit or rollback is returned, joined to fn's (errors.Join); the
// rollback that follows a panic is only reported to the observer.
//
// A call whose ctx already carries an unfinished transaction of db joins
// it: fn runs in the outer transaction and scope, which the outermost call
// ends. The transaction begins with the first statement sent in it.
//
// InTx implements [repository.Transactor].
func (db *DB) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := db.check(); err != nil {
		return fmt.Errorf("sqlstore: transaction: %w", err)
	}
	if fn == nil {
		return errors.New("sqlstore: transaction: nil function")
	}
	if t := db.txFrom(ctx); t != nil && !t.finished() {
		return fn(ctx)
	}
	t := &txState{db: db, ctx: ctx}
	sc := tracking.NewScope()
	inner := tracking.WithScope(context.WithValue(ctx, txKey{db}, t), sc)

	returned := false
	defer func() {
		if returned {
			return
		}
		// fn panicked (or called runtime.Goexit): roll back, then go on.
		p := recover()
		_ = t.end(ctx, false) // its error reaches the observer
		sc.Rollback()
		if p != nil {
			panic(p)
		}
	}()
	err := fn(inner)
	returned = true

	if err != nil {
		rerr := t.end(ctx, false)
		sc.Rollback()
		if rerr != nil {
			return errors.Join(err, fmt.Errorf("sqlstore: rollback: %w", rerr))
		}
		return err
	}
	if cerr := t.end(ctx, true); cerr != nil {
		sc.Rollback()
		return fmt.Errorf("sqlstore: commit: %w", cerr)
	}
	sc.Commit()
	return nil
}

func (t *txState) finished() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done
}

// end commits or rolls back the transaction, if it was begun.
func (t *txState) end(ctx context.Context, commit bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return nil
	}
	t.done = true
	if t.pgx == nil && t.sql == nil {
		return nil // never begun: nothing to end
	}
	var rerr error
	if commit && t.restore {
		if rerr = t.restoreSavepoint(ctx); rerr != nil {
			commit = false
		}
	}
	db := t.db
	if t.sql != nil {
		return errors.Join(rerr, db.sqlEnd(ctx, t.sql, commit))
	}
	trip, start := db.nextTrip(), time.Now()
	var err error
	text := sqlCommit
	if commit {
		err = t.pgx.Commit(ctx)
	} else {
		text = sqlRollback
		err = t.pgx.Rollback(ctx)
	}
	db.report(ctx, text, nil, trip, err, time.Since(start))
	return errors.Join(rerr, err)
}

// restoreSavepoint rolls the transaction back to the savepoint of the
// failed operation. The savepoint itself is left: the caller releases it
// or ends the transaction.
func (t *txState) restoreSavepoint(ctx context.Context) error {
	var err error
	if t.pgx != nil {
		_, err = t.db.batch(ctx, t.pgx, nil, controls(sqlRollbackTo))
	} else {
		_, err = t.db.sqlExec(ctx, t.sql, controls(sqlRollbackTo))
	}
	if err == nil {
		t.restore = false
	}
	return err
}

// controls returns control statements as stmts.
func controls(sqls ...string) []stmt {
	out := make([]stmt, len(sqls))
	for i, s := range sqls {
		out[i] = stmt{sql: s}
	}
	return out
}

// run executes stmts in the transaction, beginning it if need be. When
// atomic, they are enclosed in SAVEPOINT dddkit_save ... RELEASE SAVEPOINT
// dddkit_save, and a failure marks the savepoint for a rollback.
func (t *txState) run(ctx context.Context, stmts []stmt, atomic bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return errTxDone
	}
	var pre, post []string
	if t.restore {
		if err := t.restoreSavepoint(ctx); err != nil {
			return err
		}
		pre = append(pre, sqlReleaseSavepoint)
	}
	if atomic {
		pre = append(pre, sqlSavepoint)
		post = []string{sqlReleaseSavepoint}
	}

	var n int
	var err error
	db := t.db
	if db.pgx != nil {
		ctl := &batchCtl{begin: t.pgx == nil, pre: pre, post: post}
		var c batchSender = t.pgx
		if ctl.begin {
			c = db.pgx
		}
		n, err = db.batch(ctx, c, ctl, stmts)
		if ctl.begin {
			if n == 0 {
				// BEGIN failed: there is no transaction, but a pool may
				// hold a connection for it until it is rolled back.
				if ctl.tx != nil {
					_ = ctl.tx.Rollback(ctx)
				}
				return err
			}
			t.pgx = ctl.tx
			n--
		}
	} else {
		if t.sql == nil {
			tx, err := db.sqlBegin(t.ctx, nil)
			if err != nil {
				return err
			}
			t.sql = tx
		}
		all := make([]stmt, 0, len(pre)+len(stmts)+len(post))
		all = append(all, controls(pre...)...)
		all = append(all, stmts...)
		all = append(all, controls(post...)...)
		n, err = db.sqlExec(ctx, t.sql, all)
	}

	if err != nil && atomic && n > len(pre)-1 {
		t.restore = true // the savepoint was set: undo to it before going on
	}
	return err
}
