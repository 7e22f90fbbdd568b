package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
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
	// srv is what the DB knows of its server, once its dialect's probe
	// has succeeded (see ready); probing serializes the probes.
	srv     atomic.Pointer[server]
	probing sync.Mutex
	// keys caches the columns of the keys that MySQL's duplicate entries
	// name, by "table.key" (see keyColumns).
	keys sync.Map
	// mysqlPath makes the probe of a MariaDB server take MySQL's
	// dialect, without INSERT ... RETURNING, so that tests run MySQL's
	// statements on MariaDB.
	mysqlPath bool
}

// ready returns what db knows of its server, probing it first at the
// first use of a DB whose dialect has a probe. A probe that failed is
// tried again by the next call: it may have failed for a passing reason
// (a connection refused), and the settings it checks may be fixed.
func (db *DB) ready(ctx context.Context) (*server, error) {
	if srv := db.srv.Load(); srv != nil {
		return srv, nil
	}
	if db.dialect.probe == nil || db.sql == nil {
		srv := &server{d: db.dialect}
		db.srv.CompareAndSwap(nil, srv)
		return db.srv.Load(), nil
	}
	db.probing.Lock()
	defer db.probing.Unlock()
	if srv := db.srv.Load(); srv != nil {
		return srv, nil
	}
	srv, err := db.dialect.probe(ctx, db)
	if err != nil {
		return nil, err
	}
	db.srv.Store(srv)
	return srv, nil
}

// maxPacket is the most bytes one round trip of db may carry, 0 for no
// limit, as its probe found it.
func (db *DB) maxPacket() int {
	if srv := db.srv.Load(); srv != nil {
		return srv.maxPacket
	}
	return 0
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
// "sqlite" and "sqlite3" SQLite, "mysql" (go-sql-driver/mysql) MySQL and
// MariaDB, opened with a DSN of [MySQLDSN]; any other name is an error.
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
// error always says that nothing was committed. On MySQL and MariaDB the
// BEGIN, the statements and the COMMIT of a write go in one round trip,
// which a done context interrupts with KILL QUERY (see the package doc,
// MySQL and MariaDB).
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
// "postgres", "sqlite", "sqlite3" or "mysql").
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
	// lastID, when set on an INSERT of one row, receives the key that
	// the database generated for it (LAST_INSERT_ID() on MySQL, the
	// result's LastInsertId() on database/sql's one statement at a time).
	lastID func(id int64) error
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
	if _, err := db.ready(ctx); err != nil {
		return err
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

func (db *DB) cancelWait() time.Duration {
	if db.wait <= 0 {
		return DefaultCancelWait
	}
	return db.wait
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
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return mysqlFailed(me, atCommit)
	}
	var server interface{ SQLState() string } // lib/pq's *pq.Error
	return errors.As(err, &server)
}

// errConnLost is the error of a write or a COMMIT not sent because its
// connection was already closed.
var errConnLost = errors.New("the connection is closed")
