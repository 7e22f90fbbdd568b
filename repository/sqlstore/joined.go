package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/tracking"
)

// Joined is a unit of work that runs in a transaction the caller began
// and ends, made by [DB.JoinPGX] or [DB.JoinSQL]. The caller tells it how
// the transaction ended: [Joined.Committed] after a successful commit,
// which advances the snapshots of the aggregates saved in it, and
// [Joined.RolledBack] otherwise, which drops them, so that a retry sends
// the same changes again.
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
// stays usable. The transaction is taken to be READ COMMITTED and
// read-write, for the checks of [DB.InTxWith]. Cancelling ctx while a
// statement of the DB runs sends the server a cancel request for tx's
// connection.
//
// It returns an error when db is not of [NewPGX], tx is nil, or ctx
// already carries an unfinished unit of work of db.
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
	sc := tracking.NewScope()
	return tracking.WithScope(context.WithValue(ctx, txKey{db}, t), sc), &Joined{t: t, sc: sc}, nil
}

// Committed tells j that the caller's transaction committed: the
// snapshots of the aggregates saved in it advance, and the context of j
// can no longer be used (its operations, and [DB.InTx] with it, fail with
// [ErrTxDone]). Only the first of Committed and RolledBack counts.
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
	j.t.mu.Unlock()
	if done {
		return
	}
	if committed {
		j.sc.Commit()
	} else {
		j.sc.Rollback()
	}
}
