package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jmoiron/sqlx"

	"github.com/dddkit/dddkit/repository"
)

// PGX is what a [DB] needs of a native pgx connection: sending a batch of
// statements in one round trip. *pgxpool.Pool and *pgx.Conn satisfy it. It
// must not be a pgx.Tx: transactions are begun by [DB.InTx].
//
// A DB also uses two methods that these types have, when its PGX has
// them: Acquire(ctx) (*pgxpool.Conn, error), a pool's, to hold one
// connection for the time of a write or a transaction, and PgConn()
// *pgconn.PgConn, a single connection's: through them it can cancel the
// statements of a write whose context is done (see [NewPGX]).
type PGX interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// pgxPool is a PGX that lends connections, such as *pgxpool.Pool.
type pgxPool interface {
	Acquire(ctx context.Context) (*pgxpool.Conn, error)
}

// pgxLone is a PGX that is one connection, such as *pgx.Conn.
type pgxLone interface {
	PgConn() *pgconn.PgConn
}

// pgxTxLike is a PGX that is a transaction, such as a pgx.Tx, which
// [NewPGX] refuses.
type pgxTxLike interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
	Conn() *pgx.Conn
}

// errTxAsConn is the error of a DB whose connection is a pgx.Tx.
var errTxAsConn = errors.New("NewPGX given a transaction")

// DB is a database handle for stores: a pgx connection or pool ([NewPGX])
// or a database/sql pool ([NewSQL]), the SQL dialect, and an optional
// statement observer. It is the [repository.Transactor] of its stores
// ([DB.InTx]). A DB is safe for concurrent use as far as its connection is:
// a pool is, a single *pgx.Conn is not.
type DB struct {
	pgx     PGX
	pool    pgxPool // pgx, if it lends connections
	lone    pgxLone // pgx, if it is one connection
	sql     *sqlx.DB
	dialect *dialect
	observe func(ctx context.Context, s Statement)
	wait    time.Duration // see WithCancelWait
	trips   atomic.Int64
	// err, when set, is why the DB cannot be used (see [NewPGX]): check
	// returns it.
	err error
}

// DefaultCancelWait is how long a [DB] waits by default for the database
// to answer a write or a COMMIT whose context is done (see
// [WithCancelWait]).
const DefaultCancelWait = 5 * time.Second

// Option configures a [DB].
type Option func(*DB)

// WithObserver makes the DB call f after every statement it sends, with
// the statement, its round trip and its outcome. f runs on the goroutine
// that sent the statement, synchronously: keep it quick. It must not keep
// or change s.Args.
func WithObserver(f func(ctx context.Context, s Statement)) Option {
	return func(db *DB) { db.observe = f }
}

// WithCancelWait sets how long the DB waits, once the context of a write
// or of a COMMIT is done while the database runs it, for the database's
// answer; d <= 0 leaves [DefaultCancelWait]. On pgx the DB asks the server
// to cancel the statements as soon as the context is done, then waits for
// the answer, which says whether they took effect; on database/sql the
// COMMIT is sent with a context that ends d after the call's does. When
// no answer comes within d, the connection is closed, and the call
// returns an error matching [repository.ErrOutcomeUnknown].
func WithCancelWait(d time.Duration) Option {
	return func(db *DB) {
		if d > 0 {
			db.wait = d
		}
	}
}

// NewPGX returns a DB that sends its statements through conn, a pgx pool or
// connection, and sends all the statements of one operation (a save, a
// load, a delete) in one pgx.Batch: one round trip.
//
// A write tells the truth about what it wrote, even when its context is
// done while the server runs it: a pgx batch that has reached the server
// runs to its end whatever becomes of the client's connection, so a write
// whose context is done is not abandoned but cancelled. With a
// *pgxpool.Pool (anything with Acquire(ctx) (*pgxpool.Conn, error)) or a
// *pgx.Conn (anything with PgConn() *pgconn.PgConn), a write outside a
// transaction, and each statement and the COMMIT of a transaction of
// [DB.InTx], run on a connection held for them with a context that is not
// cancelled, while the DB watches the caller's context. Once it is done,
// the DB sends the server cancel requests (pgconn.PgConn.CancelRequest)
// for what that connection runs and waits for the server's answer, at
// most the wait of [WithCancelWait] (5 seconds by default). Then:
//
//   - if the server answers that the statements failed (cancelled, or any
//     other error), nothing was written, and the error wraps the context's
//     error and the server's;
//   - if the statements had completed (and, outside a transaction, were
//     committed), the write took effect and it returns nil;
//   - if the answer is lost (the connection broke after the statements
//     were sent, or the wait expired and the DB closed the connection),
//     the error matches [repository.ErrOutcomeUnknown] and wraps the
//     underlying error.
//
// A pool's connection for which a cancel request was sent is closed
// rather than given back, as a request the server acts on late could
// cancel the next statement of whoever gets the connection; a single
// connection is kept, once the server has acknowledged every request. A
// connection closed after the wait expired is closed for good: a single
// connection must then be replaced. With another PGX, a write whose
// context is done while it runs is abandoned by pgx, and returns an error
// matching [repository.ErrOutcomeUnknown]. Loads are not watched: a load
// whose context is done fails at once.
//
// conn must not be a transaction (a pgx.Tx, or anything with the methods
// Begin, Commit, Rollback and Conn of one): the DB begins and ends its
// transactions itself ([DB.InTx]). Given one, NewPGX returns a DB whose
// [DB.Err] says so, and that refuses every use, [NewRepository] and
// [NewStore] included, with that error. To run the statements of stores in a transaction of
// your own, pass the pool to NewPGX and use [DB.InTx], and reach its
// pgx.Tx with [DB.PGXTx].
func NewPGX(conn PGX, opts ...Option) *DB {
	if v := reflect.ValueOf(conn); v.Kind() == reflect.Pointer && v.IsNil() {
		conn = nil // a typed nil, such as a nil *pgxpool.Pool
	}
	db := &DB{pgx: conn, dialect: postgres, wait: DefaultCancelWait}
	if _, ok := conn.(pgxTxLike); ok {
		db.err = fmt.Errorf("%w: a pgx.Tx (%T) cannot be the connection of a sqlstore.DB: pass its pool or connection to NewPGX, and run the unit of work in DB.InTx (DB.PGXTx gives its pgx.Tx)", errTxAsConn, conn)
		return db
	}
	if p, ok := conn.(pgxPool); ok {
		db.pool = p
	} else if l, ok := conn.(pgxLone); ok {
		db.lone = l
	}
	for _, o := range opts {
		o(db)
	}
	return db
}

// Err returns nil when db can run statements, and otherwise the error that
// its every method returns, and [NewRepository] and [NewStore] given it: a
// [NewPGX] given a transaction or a nil connection, a nil *DB. NewPGX
// returns no error, so check Err where the DB is built.
func (db *DB) Err() error {
	if err := db.check(); err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	return nil
}

// NewSQL returns a DB that sends its statements through db, choosing the
// dialect from db.DriverName(): "pgx" and "postgres" are PostgreSQL,
// "sqlite" and "sqlite3" SQLite; any other name is an error.
//
// Every write outside a transaction of [DB.InTx], even of one statement,
// runs in a transaction of its own: a statement cut short in autocommit
// mode may still be committed by the server, while a transaction whose
// COMMIT was not sent is rolled back. Its statements run with the
// caller's context; when that context is done before the COMMIT, the
// transaction rolls back and the error wraps the context's error. The
// COMMIT runs with a context that ends only the wait of [WithCancelWait]
// after the caller's: a COMMIT without an answer by then returns an error
// matching [repository.ErrOutcomeUnknown]. On SQLite the COMMIT is not cut
// short at all (its wait for a lock is bounded by busy_timeout), as its
// error always says that nothing was committed.
func NewSQL(db *sqlx.DB, opts ...Option) (*DB, error) {
	if db == nil {
		return nil, errors.New("sqlstore: nil *sqlx.DB")
	}
	d, err := dialectFor(db.DriverName())
	if err != nil {
		return nil, err
	}
	out := &DB{sql: db, dialect: d, wait: DefaultCancelWait}
	for _, o := range opts {
		o(out)
	}
	return out, nil
}

// NewSQLDB is [NewSQL] for a plain *sql.DB, which does not know the name of
// its driver: driver names it, as NewSQL takes it from a *sqlx.DB ("pgx",
// "postgres", "sqlite" or "sqlite3").
func NewSQLDB(db *sql.DB, driver string, opts ...Option) (*DB, error) {
	if db == nil {
		return nil, errors.New("sqlstore: nil *sql.DB")
	}
	return NewSQL(sqlx.NewDb(db, driver), opts...)
}

// Statement is one statement a DB sent, as given to the observer of
// [WithObserver].
type Statement struct {
	// SQL is the statement's text. BEGIN, COMMIT, ROLLBACK and the
	// SAVEPOINT statements are reported too.
	SQL string
	// Args are the bind parameters, in order.
	Args []any
	// RoundTrip numbers the round trips of the DB, from 1, in the order
	// they are sent: statements sent in one batch share a number.
	RoundTrip int
	// Err is the statement's error, or nil. Statements that the server
	// skipped because an earlier one in their batch failed are not
	// reported.
	Err error
	// Duration is the time from the end of the previous statement of the
	// same round trip (or from sending it, for the first) until this
	// statement's result was read: the Durations of a round trip add up to
	// its time.
	Duration time.Duration
}

// SlogObserver returns an observer for [WithObserver] that logs each
// statement to l: a message "sqlstore statement" at level Debug, or Warn
// for a failed statement, with attributes round_trip, sql, args, duration
// and, on failure, err. A statement log carries every argument and grows
// with the load, so a logger at the usual Info level writes only the
// failures.
func SlogObserver(l *slog.Logger) func(ctx context.Context, s Statement) {
	return func(ctx context.Context, s Statement) {
		if l == nil {
			return
		}
		level := slog.LevelDebug
		attrs := []slog.Attr{
			slog.Int("round_trip", s.RoundTrip),
			slog.String("sql", s.SQL),
			slog.Any("args", s.Args),
			slog.Duration("duration", s.Duration),
		}
		if s.Err != nil {
			level = slog.LevelWarn
			attrs = append(attrs, slog.Any("err", s.Err))
		}
		l.LogAttrs(ctx, level, "sqlstore statement", attrs...)
	}
}

// nextTrip returns the number of a new round trip.
func (db *DB) nextTrip() int { return int(db.trips.Add(1)) }

// report calls the observer, if any.
func (db *DB) report(ctx context.Context, sqlText string, args []any, trip int, err error, d time.Duration) {
	if db.observe != nil {
		db.observe(ctx, Statement{SQL: sqlText, Args: args, RoundTrip: trip, Err: err, Duration: d})
	}
}

func (db *DB) check() error {
	switch {
	case db == nil:
		return errors.New("nil *sqlstore.DB")
	case db.err != nil:
		return db.err
	case db.pgx == nil && db.sql == nil:
		return errors.New("a DB without a connection: build it with NewPGX or NewSQL")
	}
	return nil
}

// check says how the outcome of a statement decides an optimistic-lock
// conflict.
type check uint8

const (
	// noCheck: the statement's row count does not matter.
	noCheck check = iota
	// checkRows: an INSERT, UPDATE or DELETE that must affect a row. On
	// pgx it is sent wrapped as WITH r AS (... RETURNING 1) SELECT
	// 1/count(*) FROM r, so that no row raises division_by_zero.
	checkRows
	// checkRow: a SELECT that must return a row (the root locked with FOR
	// UPDATE). On pgx it is wrapped the same way.
	checkRow
)

// stmt is one statement of an operation.
type stmt struct {
	sql   string
	args  []any
	check check
	// scan, for a query, is called for every row.
	scan func(r rowScanner) error
	// head, when set on a query, is called once with its rows before the
	// first, even when there are none: the columns of the result are known.
	head func(r rowScanner) error
	// rootKey, on the INSERT of a root row, is the root's key column: a
	// unique violation of that key is reported as [repository.ErrExists].
	rootKey string
	// affected, when set on a statement without scan, receives the
	// number of rows it affected.
	affected *int64
	// rows, on a checkRows statement, is the number of rows it must
	// affect; 0 is at least one.
	rows int64
	// missing, when set, says what a failed check of the statement found
	// missing, in the conflict it reports.
	missing string
}

// conflict is the error of s when its check fails.
func (s *stmt) conflict() error {
	if s.missing == "" {
		return errConflict
	}
	return &rowConflict{msg: s.missing}
}

// rowConflict is the conflict of a checked statement on a child table: it
// wraps errConflict, and says which rows were missing.
type rowConflict struct{ msg string }

func (e *rowConflict) Error() string {
	return repository.ErrConflict.Error() + ": " + e.msg
}

func (e *rowConflict) Unwrap() error { return errConflict }

// rowScanner is what pgx.Rows and *sql.Rows have in common.
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
}

// errConflict is returned by the executors when a checked statement found
// no row.
var errConflict = fmt.Errorf("%w: no row has this key and version", repository.ErrConflict)

// errMissing is returned by the pgx executor when a checked statement
// that tells a missing row from one at another version (see
// Store.deleteSQL) found no row with the key at all.
var errMissing = fmt.Errorf("%w: no row has this key", repository.ErrNotFound)

// Control statements, reported to the observer like the others.
const (
	sqlBegin            = "BEGIN"
	sqlBeginSnapshot    = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
	sqlBeginImmediate   = "BEGIN IMMEDIATE"
	sqlCommit           = "COMMIT"
	sqlRollback         = "ROLLBACK"
	sqlSavepoint        = "SAVEPOINT dddkit_save"
	sqlReleaseSavepoint = "RELEASE SAVEPOINT dddkit_save"
	sqlRollbackTo       = "ROLLBACK TO SAVEPOINT dddkit_save"
)

// sqlConn is what the database/sql executor needs of a pool, a connection
// or a transaction; *sqlx.DB, *sql.Conn and *sql.Tx satisfy it.
type sqlConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// run executes stmts as one operation. When atomic (a write), either all
// of them take effect or none: outside a transaction, pgx sends them as one
// batch (an implicit transaction) and database/sql wraps them in a
// transaction of their own; inside one ([DB.InTx]), they run between a
// SAVEPOINT and its RELEASE, and a failure rolls back to the savepoint. A
// checked statement that finds no row fails the operation with
// errConflict. When not atomic (a load of several queries), outside a
// transaction they read one snapshot.
func (db *DB) run(ctx context.Context, stmts []stmt, atomic bool) error {
	return db.runSave(ctx, stmts, atomic, false)
}

// runSave is run; mayCommit says that stmts are a whole save of a store
// (see txState.runSave).
func (db *DB) runSave(ctx context.Context, stmts []stmt, atomic, mayCommit bool) error {
	if len(stmts) == 0 {
		return nil
	}
	if tx := db.txFrom(ctx); tx != nil {
		return tx.runSave(ctx, stmts, atomic, mayCommit)
	}
	switch {
	case db.pgx != nil && atomic:
		return db.pgxWrite(ctx, stmts)
	case db.pgx != nil && len(stmts) > 1:
		return db.pgxSnapshot(ctx, stmts)
	case db.pgx != nil:
		_, err := db.batch(ctx, db.pgx, nil, stmts)
		return err
	case atomic:
		return db.sqlWrite(ctx, stmts)
	case len(stmts) > 1:
		return db.sqlRead(ctx, stmts)
	}
	_, err := db.sqlExec(ctx, db.sql, stmts)
	return err
}

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

func (db *DB) cancelWait() time.Duration {
	if db.wait <= 0 {
		return DefaultCancelWait
	}
	return db.wait
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

// outcome returns what a write that failed with err tells its caller, err
// being the error of an implicit transaction (a pgx batch outside a
// transaction) or of a COMMIT: err, with the reason of an interruption,
// when it says that nothing was written (see failed); otherwise an error
// that matches [repository.ErrOutcomeUnknown] and wraps err. atCommit
// says that err came after every statement had succeeded, while the
// transaction was committing.
func (db *DB) outcome(ctx context.Context, w watch, err error, atCommit bool) error {
	if err == nil {
		return nil
	}
	err = db.interrupted(ctx, w, err)
	if failed(err, atCommit) {
		return err
	}
	return fmt.Errorf("%w: %w", repository.ErrOutcomeUnknown, err)
}

// failed reports whether err, the error of an implicit transaction or of
// a COMMIT, says that nothing of it was written: the database answered
// with an error (it then rolled the transaction back), or nothing was sent.
// A fatal error of PostgreSQL (its session ends) says so only when a
// statement ran into it, not once all had succeeded and the transaction
// may have been committing. Anything else (a connection broken after the
// statements were sent, an answer that never came) leaves the outcome
// unknown. pgconn's "conn closed" is not taken for "nothing sent", though
// it says it is safe to retry: pgx also returns it when the connection
// broke while it read the answer.
func failed(err error, atCommit bool) bool {
	if (pgconn.SafeToRetry(err) && !errors.Is(err, pgconn.ErrConnClosed)) ||
		errors.Is(err, errConflict) ||
		errors.Is(err, errMissing) ||
		errors.Is(err, pgx.ErrTxCommitRollback) ||
		errors.Is(err, pgx.ErrTxClosed) ||
		errors.Is(err, sql.ErrTxDone) {
		return true
	}
	var pre pgx.ErrPreprocessingBatch
	if errors.As(err, &pre) {
		return true // the batch failed while it was prepared, before any statement ran
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		severity := pe.SeverityUnlocalized
		if severity == "" {
			severity = pe.Severity
		}
		return !atCommit || (severity != "FATAL" && severity != "PANIC")
	}
	var server interface{ SQLState() string } // lib/pq's *pq.Error
	return errors.As(err, &server)
}

// errConnLost is the error of a write or a COMMIT not sent because its
// connection was already closed.
var errConnLost = errors.New("the connection is closed")

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
		if err != nil || (s.check != checkRows && s.affected == nil) {
			return err
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
