package sqlstore

// The pgx transport: batches, the cancel guard of a write, and the
// transactions of InTx on a held pgx connection.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgxSnapshot runs the queries of a load outside a transaction in one
// batch that reads one snapshot: BEGIN ISOLATION LEVEL REPEATABLE READ
// READ ONLY, the queries, COMMIT. Without it, each statement of the
// batch's implicit transaction would see the database as of its own start
// (READ COMMITTED), and a save committed between the root's SELECT and
// the children's would hand domain code a torn aggregate.
func (db *DB) pgxSnapshot(ctx context.Context, stmts []stmt) error {
	n, err := db.batch(ctx, db.pgx, &batchCtl{pre: []string{sqlBeginSnapshot}, post: []string{sqlCommit}}, stmts)
	if err != nil && n > 0 {
		// The server skipped the COMMIT. A pool destroys a connection
		// left in a transaction when it is released; a lone connection
		// must be rolled back here.
		if db.lone != nil && db.lone.PgConn().TxStatus() != 'I' {
			_, rerr := db.batch(ctx, db.pgx, nil, controls(sqlRollback))
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// pgxWrite runs the statements of a write outside a transaction as one
// batch, which PostgreSQL runs as one implicit transaction, on a
// connection of the pool held for it (or the lone connection), watched by
// guard, and returns what the outcome makes of its error.
func (db *DB) pgxWrite(ctx context.Context, stmts []stmt) error {
	if err := ctx.Err(); err != nil {
		return err // nothing sent
	}
	var (
		c    PGX = db.pgx
		pc   *pgconn.PgConn
		held *pgxpool.Conn
	)
	switch {
	case db.pool != nil:
		conn, err := db.pool.Acquire(ctx)
		if err != nil {
			return err // nothing sent
		}
		held, c, pc = conn, conn, conn.Conn().PgConn()
	case db.lone != nil:
		pc = db.lone.PgConn()
		if pc.IsClosed() {
			return fmt.Errorf("%w: %w", errConnLost, pgconn.ErrConnClosed) // nothing sent
		}
	}
	n := 0
	w, err := db.guard(ctx, pc, func(ctx context.Context) (err error) {
		n, err = db.batch(ctx, c, nil, stmts)
		return err
	})
	if held != nil {
		db.release(held, w != unwatched && w != calm)
	}
	return db.outcome(ctx, w, err, n == len(stmts))
}

// release gives c back to its pool, closed first when a cancel request
// was sent for it: the server may act on such a request late, and cancel
// whatever the connection runs next.
func (db *DB) release(c *pgxpool.Conn, cancelled bool) {
	if cancelled {
		ctx, stop := context.WithTimeout(context.Background(), time.Second)
		_ = c.Conn().Close(ctx)
		stop()
	}
	c.Release()
}

// watch is what guard saw and did.
type watch uint8

const (
	// unwatched: there was no connection to cancel on, or ctx cannot be
	// done; the statements ran with ctx itself.
	unwatched watch = iota
	// calm: ctx was not done before the statements returned.
	calm
	// cancelled: ctx was done; cancel requests were sent, and the
	// statements returned within the wait.
	cancelled
	// cut: ctx was done and the server did not answer within the wait:
	// the connection was made to fail.
	cut
)

// cancelRetryFirst and cancelRetryMax bound the pauses between the cancel
// requests guard sends: a request that reaches the server between two
// statements of a batch, or before the batch, cancels nothing, so it is
// sent again, less and less often, until the statements return.
const (
	cancelRetryFirst = 10 * time.Millisecond
	cancelRetryMax   = 500 * time.Millisecond
)

// guard runs send, which sends statements on pc and reads their results,
// with a context that carries ctx's values but is never cancelled, and
// watches ctx meanwhile. Once ctx is done it asks the server to cancel
// what pc runs, and asks again while send has not returned; if send has
// not returned db.wait after ctx was done, the connection's reads and
// writes are made to fail, so that send returns. The statements are thus
// never abandoned while the server may still run them: send returns the
// server's answer, or the connection's failure. With a nil pc, send runs
// with ctx.
func (db *DB) guard(ctx context.Context, pc *pgconn.PgConn, send func(ctx context.Context) error) (watch, error) {
	if pc == nil || ctx.Done() == nil {
		return unwatched, send(ctx)
	}
	var state atomic.Uint32 // a watch
	state.Store(uint32(calm))
	returned, finished := make(chan struct{}), make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(finished)
		state.Store(uint32(cancelled))
		deadline := time.Now().Add(db.cancelWait())
		limit := time.NewTimer(db.cancelWait())
		defer limit.Stop()
		pause := cancelRetryFirst
		for {
			rctx, stop := context.WithDeadline(context.Background(), deadline)
			_ = pc.CancelRequest(rctx) // a failed request is sent again, or the wait expires
			stop()
			again := time.NewTimer(pause)
			select {
			case <-returned:
				again.Stop()
				return
			case <-limit.C:
				again.Stop()
				state.Store(uint32(cut))
				_ = pc.Conn().SetDeadline(time.Now())
				return
			case <-again.C:
			}
			pause = min(2*pause, cancelRetryMax)
		}
	})
	unwatch := func() {
		close(returned)
		if !stop() {
			<-finished // the watch began: let its cancel requests end
		}
	}
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				// A callback of the caller's panicked: stop watching ctx
				// before the panic goes on.
				unwatch()
				panic(p)
			}
		}()
		err = send(context.WithoutCancel(ctx))
	}()
	unwatch()
	w := watch(state.Load())
	if w == cut && err == nil {
		// The answer came just before the deadline was set: the
		// connection is sound, and must not fail its next read.
		_ = pc.Conn().SetDeadline(time.Time{})
	}
	return w, err
}

// interrupted returns err, the error of statements that were watched by
// guard, with the reason of their interruption, if they were interrupted.
func (db *DB) interrupted(ctx context.Context, w watch, err error) error {
	switch {
	case err == nil:
		return nil
	case w == cancelled:
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	case w == cut:
		return fmt.Errorf("%w, and the database did not answer within %v: %w", ctx.Err(), db.cancelWait(), err)
	}
	return err
}

// isLogOfZero reports a PostgreSQL invalid_argument_for_logarithm error
// (SQLSTATE 2201E), which a checked statement that tells a missing row
// from one at another version raises when no row has the key.
func isLogOfZero(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "2201E"
}

// isDivisionByZero reports a PostgreSQL division_by_zero error (SQLSTATE
// 22012), which a checked statement raises when it found no row.
func isDivisionByZero(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "22012"
}

// batch sends ctl.pre, then stmts, then ctl.post in one pgx.Batch on c,
// and reads the results in order, stopping at the first failure. When
// ctl.begin is set, the batch begins a transaction first. It returns how
// many of the queued statements succeeded, BEGIN included.
func (db *DB) batch(ctx context.Context, c PGX, ctl *batchCtl, stmts []stmt) (int, error) {
	b := &pgx.Batch{}
	var pre, post []string
	begin := sqlBegin
	if ctl != nil {
		if ctl.begin {
			begin = ctl.opts.beginSQL()
			b.BeginTx(pgx.TxOptions{BeginQuery: begin})
		}
		pre, post = ctl.pre, ctl.post
	}
	for _, s := range pre {
		b.Queue(s)
	}
	for i := range stmts {
		b.Queue(stmts[i].sql, stmts[i].args...)
	}
	for _, s := range post {
		b.Queue(s)
	}

	trip, start := db.nextTrip(), time.Now()
	br := c.SendBatch(ctx, b)
	if ctl != nil && ctl.begin {
		ctl.tx = br.Tx()
	}
	// A scan callback may be the caller's (DB.Query) and panic: the batch
	// must still be closed, which gives a pool's connection back.
	closed := false
	defer func() {
		if !closed {
			_ = br.Close()
		}
	}()
	last := start
	n := 0
	step := func(text string, args []any, err error) {
		now := time.Now()
		db.report(ctx, text, args, trip, err, now.Sub(last))
		last = now
		if err == nil {
			n++
		}
	}
	var err error
	if ctl != nil && ctl.begin {
		_, err = br.Exec()
		err = classify(nil, err)
		step(begin, nil, err)
	}
	for i := 0; err == nil && i < len(pre); i++ {
		_, err = br.Exec()
		err = classify(nil, err)
		step(pre[i], nil, err)
	}
	for i := 0; err == nil && i < len(stmts); i++ {
		s := &stmts[i]
		err = readOne(br, s)
		if err != nil && s.check != noCheck && isDivisionByZero(err) {
			err = s.conflict()
		} else if err != nil && s.check != noCheck && isLogOfZero(err) {
			err = errMissing
		}
		err = classify(s, err)
		step(s.sql, s.args, err)
	}
	for i := 0; err == nil && i < len(post); i++ {
		_, err = br.Exec()
		err = classify(nil, err)
		step(post[i], nil, err)
	}
	closed = true
	if cerr := br.Close(); err == nil {
		err = classify(nil, cerr) // a failure seen only when the batch ends
	}
	return n, err
}

// batchCtl is the transaction control around a batch sent in a
// transaction.
type batchCtl struct {
	begin     bool     // begin the transaction as the batch's first statement
	pre, post []string // control statements before and after the operation
	tx        pgx.Tx   // the transaction begun, when begin
	opts      TxOptions
}

func readOne(br pgx.BatchResults, s *stmt) error {
	if s.scan == nil {
		tag, err := br.Exec()
		if err == nil && s.affected != nil {
			*s.affected = tag.RowsAffected()
		}
		return err
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	if s.head != nil {
		if err := s.head(rows); err != nil {
			return err
		}
	}
	for rows.Next() {
		if err := s.scan(rows); err != nil {
			return err
		}
	}
	rows.Close()
	return rows.Err()
}

// pgxBatch sends a batch of the transaction on c, watched by guard when
// pc, c's connection, is known.
func (t *txState) pgxBatch(ctx context.Context, c PGX, pc *pgconn.PgConn, ctl *batchCtl, stmts []stmt) (int, error) {
	n := 0
	w, err := t.db.guard(ctx, pc, func(ctx context.Context) (err error) {
		n, err = t.db.batch(ctx, c, ctl, stmts)
		return err
	})
	if w == cancelled || w == cut {
		t.cancelled = true
	}
	return n, t.db.interrupted(ctx, w, err)
}

// pgxLast sends the last save of the transaction with its COMMIT, in one
// batch, beginning the transaction first if no statement began it. It
// returns what the outcome of the batch tells: nil when it committed; an
// error that does not match [repository.ErrOutcomeUnknown] when the server
// refused a statement, or the COMMIT, so that the transaction is rolled
// back; one that matches it when the answer was lost.
func (t *txState) pgxLast(ctx context.Context, pre []string, stmts []stmt) error {
	if err := ctx.Err(); err != nil {
		return err // nothing sent
	}
	db := t.db
	ctl := &batchCtl{pre: pre, post: []string{sqlCommit}}
	var c PGX
	var pc *pgconn.PgConn
	if t.pgx == nil {
		var err error
		if c, pc, err = t.pgxConn(ctx); err != nil {
			return err
		}
		ctl.begin, ctl.opts = true, t.opts
	} else {
		c, pc = t.pgx, t.pgx.Conn().PgConn()
	}
	n := 0
	w, err := db.guard(ctx, pc, func(ctx context.Context) (err error) {
		n, err = db.batch(ctx, c, ctl, stmts)
		return err
	})
	if w == cancelled || w == cut {
		t.cancelled = true
	}
	if t.pgx == nil {
		t.pgx = ctl.tx // begun, or in an unknown state: end rolls it back
	}
	total := len(pre) + len(stmts) + 1
	if ctl.begin {
		total++
	}
	if err == nil {
		t.committed = true
		return nil
	}
	return db.outcome(ctx, w, classify(nil, err), n == total-1)
}

// pgxConn returns the connection a transaction of the pool is to run on,
// held for it, or the lone connection.
func (t *txState) pgxConn(ctx context.Context) (PGX, *pgconn.PgConn, error) {
	db := t.db
	switch {
	case db.pool != nil:
		conn, err := db.pool.Acquire(ctx)
		if err != nil {
			return nil, nil, err
		}
		t.held = conn
		return conn, conn.Conn().PgConn(), nil
	case db.lone != nil:
		pc := db.lone.PgConn()
		if pc.IsClosed() {
			return nil, nil, fmt.Errorf("%w: %w", errConnLost, pgconn.ErrConnClosed)
		}
		return db.pgx, pc, nil
	}
	return db.pgx, nil, nil
}

// pgxBegin begins the transaction with the batch of its first operation,
// on a connection of the pool held for the transaction, or on the lone
// connection.
func (t *txState) pgxBegin(ctx context.Context, pre, post []string, stmts []stmt, atomic bool) error {
	if err := ctx.Err(); err != nil {
		return err // nothing sent
	}
	db := t.db
	c, pc, err := t.pgxConn(ctx)
	if err != nil {
		return err
	}
	ctl := &batchCtl{begin: true, pre: pre, post: post, opts: t.opts}
	n, err := t.pgxBatch(ctx, c, pc, ctl, stmts)
	if n == 0 {
		// BEGIN failed: there is no transaction, but a connection may be
		// left in one until it is rolled back.
		if ctl.tx != nil {
			rctx, stop := context.WithTimeout(context.WithoutCancel(ctx), db.cancelWait())
			if rerr := ctl.tx.Rollback(rctx); rerr != nil {
				err = errors.Join(err, fmt.Errorf("sqlstore: rollback: %w", rerr))
			}
			stop()
		}
		t.release()
		return err
	}
	t.pgx = ctl.tx
	t.failedAfter(ctx, err, atomic, n-1, len(pre))
	return err
}
