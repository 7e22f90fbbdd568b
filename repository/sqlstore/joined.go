package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/tracking"
)

// Joined is a unit of work that runs in a transaction the caller began
// and ends, made by [DB.JoinPGX] or [DB.JoinSQL]. The caller tells it how
// the transaction ended: [Joined.Committed] after a successful commit,
// which advances the snapshots of the aggregates saved in it, and
// [Joined.RolledBack] otherwise, which drops them, so that a retry sends
// the same changes again.
//
// Until it is told, the aggregates saved in it cannot be saved or removed
// outside it: Save and Remove fail with an error wrapping
// [repository.ErrUnfinished], instead of writing their changes, or
// inserting them, a second time. [DB.InPGXTx] and [DB.InSQLTx] run a
// function in the caller's transaction, commit it and tell the unit of
// work in one call, and cannot be left unfinished.
//
// The zero Joined, and a nil one, ends nothing: their methods do nothing.
type Joined struct {
	t  *txState
	sc *tracking.Scope
}

// JoinPGX returns a context that runs the operations of db's stores, and
// [DB.Exec], [DB.Query] and [DB.QueryRow], in tx, a transaction the caller
// began on the same database (pool.Begin, say), with a tracking scope of
// its own, as [DB.InTx] does for a transaction of its own; and the
// [Joined] that the caller tells, once it has committed or rolled back tx,
// which of the two happened. The DB never commits nor rolls back tx, and
// [DB.InTx] with the returned context joins it.
//
// Each save in it is enclosed in a savepoint, as in InTx: a failed save is
// rolled back to its savepoint at once, so that the caller's transaction
// stays usable. Cancelling ctx while a statement of the DB runs sends
// the server a cancel request for tx's connection.
//
// On PostgreSQL, JoinPGX asks the server, in one query, for the isolation
// level of tx and whether it is read-only (transaction_isolation and
// transaction_read_only), for the checks of [DB.InTxWith] and for the
// loads in it, which then cost no more round trips than in a transaction
// of the DB's own: at REPEATABLE READ and above they read one snapshot and
// lock nothing, read-only or not. At READ COMMITTED a load of aggregates
// with children locks their roots FOR SHARE to read them as they stood at
// one commit, which a read-only transaction cannot do: there such a load
// fails, before it sends anything, with an error wrapping [ErrReadOnlyLoad];
// begin a read-only transaction at REPEATABLE READ.
//
// It returns an error when db is not of [NewPGX], tx is nil, the query of
// its options fails, or ctx already carries an unfinished unit of work of
// db.
func (db *DB) JoinPGX(ctx context.Context, tx pgx.Tx) (context.Context, *Joined, error) {
	if err := db.check(); err != nil {
		return ctx, nil, fmt.Errorf("sqlstore: JoinPGX: %w", err)
	}
	if db.pgx == nil {
		return ctx, nil, errors.New("sqlstore: JoinPGX: the DB is not of NewPGX: use JoinSQL")
	}
	if tx == nil {
		return ctx, nil, errors.New("sqlstore: JoinPGX: nil transaction")
	}
	return db.join(ctx, "JoinPGX", &txState{db: db, ctx: ctx, pgx: tx, caller: true})
}

// JoinSQL is [DB.JoinPGX] for a DB of [NewSQL] or [NewSQLDB], and tx a
// database/sql transaction of the same database. For an *sqlx.Tx, pass
// its embedded *sql.Tx (tx.Tx).
//
// MySQL and MariaDB do not tell the isolation level and access mode of a
// transaction to the session that runs it: declare them, as tx was begun
// with them, with [WithTxOptions] on ctx. Without a declared level, the
// loads in tx lock the roots and the children they read (LOCK IN SHARE
// MODE), which reads the latest committed rows at any level: in a
// read-only transaction they fail (error 1792).
func (db *DB) JoinSQL(ctx context.Context, tx *sql.Tx) (context.Context, *Joined, error) {
	if err := db.check(); err != nil {
		return ctx, nil, fmt.Errorf("sqlstore: JoinSQL: %w", err)
	}
	if db.sql == nil {
		return ctx, nil, errors.New("sqlstore: JoinSQL: the DB is not of NewSQL: use JoinPGX")
	}
	if tx == nil {
		return ctx, nil, errors.New("sqlstore: JoinSQL: nil transaction")
	}
	return db.join(ctx, "JoinSQL", &txState{db: db, ctx: ctx, sql: &sqlTx{tx: tx}, caller: true})
}

func (db *DB) join(ctx context.Context, name string, t *txState) (context.Context, *Joined, error) {
	if outer := db.txFrom(ctx); outer != nil && !outer.finished() {
		return ctx, nil, fmt.Errorf("sqlstore: %s: the context already carries a unit of work of this DB", name)
	}
	switch {
	case db.dialect.stmtSnapshot && db.dialect.txOptions == "":
		// The server cannot tell the level of a transaction it did not
		// begin (MySQL): the caller declares it with WithTxOptions, or it
		// is unknown, and loads lock what they read.
		o, ok := ctx.Value(txOptionsKey{}).(TxOptions)
		if !ok || o.Isolation == sql.LevelDefault {
			o.Isolation, t.guessed = sql.LevelReadCommitted, true
		}
		t.opts = o
	case db.dialect.stmtSnapshot:
		o, err := joinedOptions(ctx, t)
		if err != nil {
			return ctx, nil, fmt.Errorf("sqlstore: %s: reading the options of the transaction: %w", name, classify(nil, err))
		}
		t.opts = o
	}
	sc := tracking.NewScope()
	return tracking.WithScope(context.WithValue(ctx, txKey{db}, t), sc), &Joined{t: t, sc: sc}, nil
}

// Committed tells j that the caller's transaction committed: the
// snapshots of the aggregates saved in it advance, and the context of j
// can no longer be used (its operations, and [DB.InTx] with it, fail with
// [ErrTxDone]). Only the first of Committed and RolledBack counts. After
// an operation in it failed with [ErrTxRolledBack], the transaction
// committed nothing of the unit of work, and Committed drops its
// snapshots, as RolledBack does.
func (j *Joined) Committed() { j.end(true) }

// RolledBack tells j that the caller's transaction rolled back, or that
// its outcome is unknown: the snapshots staged in it are dropped, so that
// the aggregates saved in it are saved again in full by a retry (an
// aggregate inserted in it is inserted again). The context of j can no
// longer be used.
func (j *Joined) RolledBack() { j.end(false) }

func (j *Joined) end(committed bool) {
	if j == nil || j.t == nil {
		return
	}
	j.t.mu.Lock()
	done := j.t.done
	j.t.done = true
	lost := j.t.doomed != nil && j.t.caller
	j.t.mu.Unlock()
	if done {
		return
	}
	if committed && !lost {
		j.sc.Commit()
	} else {
		j.sc.Rollback()
	}
}

// lost returns the error after which the server rolled back the caller's
// transaction of j, or nil.
func (j *Joined) lost() error {
	j.t.mu.Lock()
	defer j.t.mu.Unlock()
	if j.t.doomed == nil {
		return nil
	}
	return j.t.doomedErr()
}

// InPGXTx runs fn in tx, a transaction the caller began on db's database
// (pool.Begin, say), as the context of [DB.JoinPGX] does, and then ends tx
// and tells the unit of work how it ended: it commits tx when fn returns
// nil, and rolls it back when fn returns an error or panics (the panic
// goes on after the rollback). fn may send statements of its own on tx.
// It is JoinPGX with nothing left for the caller to tell: the snapshots of
// the aggregates saved in fn advance exactly when tx commits.
//
// InPGXTx returns nil only when tx committed; fn's error (joined with the
// rollback's); or the error of the COMMIT, which matches
// [repository.ErrOutcomeUnknown] when the answer to it was lost, or when
// fn ended tx itself. When ctx is done by the time fn returns nil, tx is
// rolled back and the error wraps ctx's error. It fails without running
// fn for the reasons JoinPGX does.
func (db *DB) InPGXTx(ctx context.Context, tx pgx.Tx, fn func(ctx context.Context) error) error {
	if fn == nil {
		return errors.New("sqlstore: InPGXTx: nil function")
	}
	jctx, j, err := db.JoinPGX(ctx, tx)
	if err != nil {
		return err
	}
	return inCallerTx(ctx, jctx, j, fn, func() error {
		return tx.Commit(ctx)
	}, func() error {
		rctx, stop := context.WithTimeout(context.WithoutCancel(ctx), db.cancelWait())
		defer stop()
		return tx.Rollback(rctx)
	})
}

// InSQLTx is [DB.InPGXTx] for a DB of [NewSQL] or [NewSQLDB], and tx a
// database/sql transaction of the same database (for an *sqlx.Tx, its
// embedded *sql.Tx), as [DB.JoinSQL] joins it. When an operation in fn
// failed with [ErrTxRolledBack] (the server rolled tx back, on MySQL and
// MariaDB), InSQLTx rolls tx back and returns an error matching it, even
// when fn returned nil.
func (db *DB) InSQLTx(ctx context.Context, tx *sql.Tx, fn func(ctx context.Context) error) error {
	if fn == nil {
		return errors.New("sqlstore: InSQLTx: nil function")
	}
	jctx, j, err := db.JoinSQL(ctx, tx)
	if err != nil {
		return err
	}
	return inCallerTx(ctx, jctx, j, fn, tx.Commit, tx.Rollback)
}

// inCallerTx runs fn with jctx, the context of j, then commits or rolls
// back the caller's transaction and tells j.
func inCallerTx(ctx, jctx context.Context, j *Joined, fn func(context.Context) error, commit, rollback func() error) (err error) {
	returned := false
	defer func() {
		if returned {
			return
		}
		p := recover()
		_ = rollback()
		j.RolledBack()
		if p != nil {
			panic(p)
		}
	}()
	err = fn(jctx)
	returned = true
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("sqlstore: not committed: %w", ctx.Err())
	}
	if err == nil {
		if lost := j.lost(); lost != nil {
			// The server rolled the transaction back: a COMMIT would
			// commit only what ran after, outside it.
			err = fmt.Errorf("sqlstore: not committed: %w", lost)
		}
	}
	if err != nil {
		rerr := rollback()
		j.RolledBack()
		if rerr != nil && !errors.Is(rerr, pgx.ErrTxClosed) && !errors.Is(rerr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("sqlstore: rollback: %w", rerr))
		}
		return err
	}
	if cerr := commit(); cerr != nil {
		// The snapshots stay where they were: a retry sends the changes
		// again, and the version check tells whether they were applied.
		j.RolledBack()
		switch {
		case errors.Is(cerr, pgx.ErrTxClosed) || errors.Is(cerr, sql.ErrTxDone):
			return fmt.Errorf("sqlstore: commit: %w: the transaction was ended inside the function: %w", repository.ErrOutcomeUnknown, cerr)
		case failed(cerr, true):
			return fmt.Errorf("sqlstore: commit: %w", classify(nil, cerr))
		}
		return fmt.Errorf("sqlstore: commit: %w: %w", repository.ErrOutcomeUnknown, cerr)
	}
	j.Committed()
	return nil
}

// sqlTxOptions reads the isolation level of the transaction and whether it
// is read-only, on PostgreSQL.
const sqlTxOptions = "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')"

// joinedOptions returns the options of t, a caller's transaction on
// PostgreSQL, as the server reports them.
func joinedOptions(ctx context.Context, t *txState) (TxOptions, error) {
	var level, readOnly string
	var err error
	if t.pgx != nil {
		err = t.pgx.QueryRow(ctx, t.db.dialect.txOptions).Scan(&level, &readOnly)
	} else {
		err = t.sql.tx.QueryRowContext(ctx, t.db.dialect.txOptions).Scan(&level, &readOnly)
	}
	if err != nil {
		return TxOptions{}, err
	}
	o := TxOptions{Isolation: sql.LevelReadCommitted, ReadOnly: readOnly == "on"}
	switch level {
	case "repeatable read":
		o.Isolation = sql.LevelRepeatableRead
	case "serializable":
		o.Isolation = sql.LevelSerializable
	}
	return o, nil
}

// ErrReadOnlyLoad reports a load that would lock rows in a read-only
// transaction of PostgreSQL at READ COMMITTED, one that a caller began and
// joined ([DB.JoinPGX], [DB.JoinSQL]): there each statement reads the
// database as of its own start, and a load of aggregates with children
// locks their roots FOR SHARE to read them as they stood at one commit,
// which a read-only transaction may not do. Begin the transaction at
// REPEATABLE READ (pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode:
// pgx.ReadOnly}, or sql.TxOptions{Isolation: sql.LevelRepeatableRead,
// ReadOnly: true}), where a load reads one snapshot and locks nothing, or
// read-write.
var ErrReadOnlyLoad = errors.New("a load of aggregates with children cannot read one commit in a read-only transaction at READ COMMITTED: begin it at REPEATABLE READ")
