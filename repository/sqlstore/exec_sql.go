package sqlstore

// The database/sql transport: transactions begun on a held connection,
// their COMMIT with a lingering context, and statements one at a time.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// sqlConn is what the database/sql executor needs of a pool, a connection
// or a transaction; *sqlx.DB, *sql.Conn and *sql.Tx satisfy it.
type sqlConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// sqlTx is a database/sql transaction begun by a DB: a *sql.Tx, on a
// connection held for it, or, on SQLite, a connection on which the DB
// sent BEGIN itself.
type sqlTx struct {
	conn *sql.Conn // nil for a read's *sql.Tx of the pool
	tx   *sql.Tx   // nil when the DB sent BEGIN on conn
	// life is the context tx was begun with, which database/sql and the
	// driver use for its COMMIT; stop releases it.
	life context.Context
	stop context.CancelFunc
	// dirty: conn may still be in a transaction; it is discarded rather
	// than given back to the pool.
	dirty bool
	// multi: the DB sends the statements that begin and end the
	// transaction itself, in its round trips (a dialect with begin); begin
	// are those that begin it, until they are sent with the first round
	// trip of the transaction.
	multi bool
	begin []string
}

// on returns where the statements of t run.
func (t *sqlTx) on() sqlConn {
	if t.tx != nil {
		return t.tx
	}
	return t.conn
}

// close gives the connection of t back to its pool, or discards it when
// it may still be in a transaction.
func (t *sqlTx) close() {
	if t.stop != nil {
		t.stop()
	}
	if t.conn == nil {
		return
	}
	if t.dirty {
		// The connection may still be in a transaction: roll it back, and
		// discard the connection only if that fails (an in-memory
		// database lives and dies with its connection).
		ctx, cancel := context.WithTimeout(context.Background(), DefaultCancelWait)
		_, err := t.conn.ExecContext(ctx, sqlRollback)
		cancel()
		if err != nil && !strings.Contains(err.Error(), "no transaction is active") {
			_ = t.conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}
	_ = t.conn.Close()
}

// linger returns a context with the values of ctx that is cancelled d
// after ctx is done, or when stop is called.
func linger(ctx context.Context, d time.Duration) (_ context.Context, stop context.CancelFunc) {
	lc, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	var mu sync.Mutex
	var timer *time.Timer
	stopped := false
	unwatch := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			timer = time.AfterFunc(d, func() {
				cancel(fmt.Errorf("no answer %v after the context was done: %w", d, context.DeadlineExceeded))
			})
		}
	})
	return lc, func() {
		unwatch()
		mu.Lock()
		stopped = true
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel(context.Canceled)
	}
}

// sqlBeginWrite begins the transaction of a write on a connection held
// for it. Where the dialect begins on the connection (SQLite), the DB
// sends BEGIN, or BEGIN IMMEDIATE when unit (a unit of work), which takes the write lock at once: a transaction that reads
// and then writes cannot take it later without risking SQLITE_BUSY, as
// busy_timeout does not wait where two readers would each wait for the
// other. Elsewhere it is a database/sql transaction begun with a context
// that ends db.wait after life does, which the driver gives its COMMIT.
// o are the options of [DB.InTxWith]: on SQLite, ReadOnly makes it BEGIN
// even when immediate.
func (db *DB) sqlBeginWrite(ctx, life context.Context, unit bool, o TxOptions) (*sqlTx, error) {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return nil, err
	}
	t := &sqlTx{conn: conn}
	if db.dialect.begin != nil {
		// Sent with the first statements of the transaction.
		t.multi, t.begin = true, db.dialect.begin(o)
		return t, nil
	}
	trip, start := db.nextTrip(), time.Now()
	text := sqlBegin
	if db.dialect.connBegin {
		if unit && !o.ReadOnly {
			text = sqlBeginImmediate
		}
		_, err = conn.ExecContext(ctx, text)
		err = classify(nil, err)
		// A BEGIN whose context ended may have taken effect though the
		// driver reports the context's error.
		t.dirty = err != nil
	} else if err = ctx.Err(); err == nil {
		t.life, t.stop = linger(life, db.cancelWait())
		text = o.beginSQL()
		t.tx, err = conn.BeginTx(t.life, o.sqlOptions())
	}
	db.report(ctx, text, nil, trip, err, time.Since(start))
	if err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// sqlWrite runs the statements of a write outside a transaction in a
// transaction of their own, even a single statement: a statement that its
// context cuts short in autocommit mode may still be committed (the
// server runs what it received) or be reported as failed although it ran
// (modernc reports the context's error), while a transaction whose COMMIT
// was not sent is rolled back.
func (db *DB) sqlWrite(ctx context.Context, stmts []stmt) error {
	t, err := db.sqlBeginWrite(ctx, ctx, false, TxOptions{})
	if err != nil {
		return err
	}
	if t.multi {
		return db.multiWrite(ctx, t, stmts)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = db.sqlEnd(ctx, t, false)
			panic(p)
		}
	}()
	if _, err := db.sqlExec(ctx, t.on(), stmts); err != nil {
		if rerr := db.sqlEnd(ctx, t, false); rerr != nil {
			return errors.Join(err, fmt.Errorf("sqlstore: rollback: %w", rerr))
		}
		return err
	}
	return db.sqlCommit(ctx, t)
}

// sqlRead runs the queries of a load outside a transaction in a read-only
// transaction of their own, which reads one snapshot.
func (db *DB) sqlRead(ctx context.Context, stmts []stmt) error {
	if db.dialect.begin != nil {
		return db.multiRead(ctx, stmts)
	}
	trip, start := db.nextTrip(), time.Now()
	tx, err := db.sql.BeginTx(ctx, db.dialect.snapshot)
	text := sqlBegin
	if db.dialect.snapshot != nil && db.dialect.snapshot.Isolation == sql.LevelRepeatableRead {
		text = sqlBeginSnapshot
	}
	db.report(ctx, text, nil, trip, err, time.Since(start))
	if err != nil {
		return err
	}
	t := &sqlTx{tx: tx}
	defer func() {
		if p := recover(); p != nil {
			_ = db.sqlEnd(ctx, t, false)
			panic(p)
		}
	}()
	if _, err := db.sqlExec(ctx, tx, stmts); err != nil {
		return errors.Join(err, db.sqlEnd(ctx, t, false))
	}
	return db.sqlEnd(ctx, t, true)
}

// sqlCommit commits the transaction of a write, unless ctx is done: then
// it rolls back, and the error wraps the context's error. The error of
// the COMMIT is what outcome makes of it.
func (db *DB) sqlCommit(ctx context.Context, t *sqlTx) error {
	if err := ctx.Err(); err != nil {
		err = fmt.Errorf("not committed: %w", err)
		if rerr := db.sqlEnd(ctx, t, false); rerr != nil {
			return errors.Join(err, fmt.Errorf("sqlstore: rollback: %w", rerr))
		}
		return err
	}
	err := db.sqlEnd(ctx, t, true)
	if err == nil || t.tx == nil {
		return err // SQLite: a failed COMMIT committed nothing
	}
	w := calm
	if errors.Is(context.Cause(t.life), context.DeadlineExceeded) {
		w = cut // the context of the COMMIT ended: the driver closed the connection
	}
	return db.outcome(ctx, w, err, true)
}

// sqlEnd commits or rolls back t and gives its connection back. A
// rollback of a transaction that database/sql already rolled back is not
// an error.
func (db *DB) sqlEnd(ctx context.Context, t *sqlTx, commit bool) error {
	defer t.close()
	trip, start := db.nextTrip(), time.Now()
	text := sqlRollback
	if commit {
		text = sqlCommit
	}
	var err error
	switch {
	case t.tx != nil && commit:
		err = t.tx.Commit()
	case t.tx != nil:
		err = t.tx.Rollback()
		if errors.Is(err, sql.ErrTxDone) {
			err = nil
		}
	default:
		// Not cut short by ctx: the answer of a COMMIT is the truth (its
		// wait for a lock is bounded by busy_timeout), and a ROLLBACK
		// must run.
		// A COMMIT that failed may leave the transaction open (SQLITE_BUSY,
		// a deferred foreign key): the connection is then discarded,
		// which rolls it back.
		_, err = t.conn.ExecContext(context.WithoutCancel(ctx), text)
		t.dirty = err != nil
	}
	err = classify(nil, err)
	db.report(ctx, text, nil, trip, err, time.Since(start))
	return err
}

// sqlTrip is the round trip of the database/sql transport: it runs the
// control statements pre, then stmts, then the control statements post on
// c, and stops at the first failure. On a dialect with multi they go in
// one multi-statement query, unless they exceed the size of one, otherwise
// one at a time. It returns how many of them succeeded, pre and post
// included.
func (db *DB) sqlTrip(ctx context.Context, c sqlConn, pre []string, stmts []stmt, post []string) (int, error) {
	all := stmts
	if len(pre)+len(post) > 0 {
		all = make([]stmt, 0, len(pre)+len(stmts)+len(post))
		all = append(all, controls(pre...)...)
		all = append(all, stmts...)
		all = append(all, controls(post...)...)
	}
	if db.dialect.multi {
		return db.sqlMulti(ctx, c, all, db.maxPacket())
	}
	return db.sqlExec(ctx, c, all)
}

// sqlExec runs stmts one after the other on c, one round trip each, and
// stops at the first failure. It returns how many succeeded.
func (db *DB) sqlExec(ctx context.Context, c sqlConn, stmts []stmt) (int, error) {
	for i := range stmts {
		s := &stmts[i]
		trip, start := db.nextTrip(), time.Now()
		args, err := db.dialect.bindArgs(s.args)
		if err == nil {
			err = classify(s, sqlOne(ctx, c, s, args))
		}
		db.report(ctx, s.sql, s.args, trip, err, time.Since(start))
		if err != nil {
			return i, err
		}
	}
	return len(stmts), nil
}

// sqlOne runs s on c, with args, s's arguments as the dialect sends them.
func sqlOne(ctx context.Context, c sqlConn, s *stmt, args []any) error {
	if s.scan == nil && s.check != checkRow {
		res, err := c.ExecContext(ctx, s.sql, args...)
		if err != nil || (s.check != checkRows && s.affected == nil && s.lastID == nil) {
			return err
		}
		if s.lastID != nil {
			id, err := res.LastInsertId()
			if err == nil {
				err = s.lastID(id)
			}
			if err != nil {
				return err
			}
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if s.affected != nil {
			*s.affected = n
		}
		if s.check == checkRows && (n == 0 || s.rows > 0 && n != s.rows) {
			return s.conflict()
		}
		return nil
	}
	rows, err := c.QueryContext(ctx, s.sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if s.head != nil {
		if err := s.head(rows); err != nil {
			return err
		}
	}
	found := false
	for rows.Next() {
		found = true
		if s.scan != nil {
			if err := s.scan(rows); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if s.check == checkRow && !found {
		return s.conflict()
	}
	return nil
}
