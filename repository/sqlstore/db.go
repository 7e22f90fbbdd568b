package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"

	"github.com/dddkit/dddkit/repository"
)

// PGX is what a [DB] needs of a native pgx connection: sending a batch of
// statements in one round trip. *pgxpool.Pool and *pgx.Conn satisfy it. It
// must not be a pgx.Tx: transactions are begun by [DB.InTx].
type PGX interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// DB is a database handle for stores: a pgx connection or pool ([NewPGX])
// or a database/sql pool ([NewSQL]), the SQL dialect, and an optional
// statement observer. It is the [repository.Transactor] of its stores
// ([DB.InTx]). A DB is safe for concurrent use as far as its connection is:
// a pool is, a single *pgx.Conn is not.
type DB struct {
	pgx     PGX
	sql     *sqlx.DB
	dialect *dialect
	observe func(ctx context.Context, s Statement)
	trips   atomic.Int64
}

// Option configures a [DB].
type Option func(*DB)

// WithObserver makes the DB call f after every statement it sends, with
// the statement, its round trip and its outcome. f runs on the goroutine
// that sent the statement, synchronously: keep it quick. It must not keep
// or change s.Args.
func WithObserver(f func(ctx context.Context, s Statement)) Option {
	return func(db *DB) { db.observe = f }
}

// NewPGX returns a DB that sends its statements through conn, a pgx pool or
// connection, and sends all the statements of one operation (a save, a
// load, a delete) in one pgx.Batch: one round trip.
func NewPGX(conn PGX, opts ...Option) *DB {
	if v := reflect.ValueOf(conn); v.Kind() == reflect.Pointer && v.IsNil() {
		conn = nil // a typed nil, such as a nil *pgxpool.Pool
	}
	db := &DB{pgx: conn, dialect: postgres}
	for _, o := range opts {
		o(db)
	}
	return db
}

// NewSQL returns a DB that sends its statements through db, choosing the
// dialect from db.DriverName(): "pgx" and "postgres" are PostgreSQL,
// "sqlite" and "sqlite3" SQLite; any other name is an error.
func NewSQL(db *sqlx.DB, opts ...Option) (*DB, error) {
	if db == nil {
		return nil, errors.New("sqlstore: nil *sqlx.DB")
	}
	d, err := dialectFor(db.DriverName())
	if err != nil {
		return nil, err
	}
	out := &DB{sql: db, dialect: d}
	for _, o := range opts {
		o(out)
	}
	return out, nil
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
// statement to l: a message "sqlstore statement" at level Info, or Warn
// for a failed statement, with attributes round_trip, sql, args, duration
// and, on failure, err.
func SlogObserver(l *slog.Logger) func(ctx context.Context, s Statement) {
	return func(ctx context.Context, s Statement) {
		if l == nil {
			return
		}
		level := slog.LevelInfo
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
	case db.pgx == nil && db.sql == nil:
		return errors.New("sqlstore.DB without a connection")
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
	// insertsRoot marks the INSERT of a root row: a unique violation it
	// raises is reported as [repository.ErrExists].
	insertsRoot bool
}

// rowScanner is what pgx.Rows and *sql.Rows have in common.
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
}

// errConflict is returned by the executors when a checked statement found
// no row.
var errConflict = fmt.Errorf("%w: no row has this key and version", repository.ErrConflict)

// Control statements, reported to the observer like the others.
const (
	sqlBegin            = "BEGIN"
	sqlBeginSnapshot    = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
	sqlCommit           = "COMMIT"
	sqlRollback         = "ROLLBACK"
	sqlSavepoint        = "SAVEPOINT dddkit_save"
	sqlReleaseSavepoint = "RELEASE SAVEPOINT dddkit_save"
	sqlRollbackTo       = "ROLLBACK TO SAVEPOINT dddkit_save"
)

// sqlConn is what the database/sql executor needs of a pool or a
// transaction; *sqlx.DB and *sqlx.Tx satisfy it.
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
	if len(stmts) == 0 {
		return nil
	}
	if tx := db.txFrom(ctx); tx != nil {
		return tx.run(ctx, stmts, atomic)
	}
	if db.pgx != nil {
		if !atomic && len(stmts) > 1 {
			return db.pgxSnapshot(ctx, stmts)
		}
		_, err := db.batch(ctx, db.pgx, nil, stmts)
		return err
	}
	if len(stmts) == 1 {
		_, err := db.sqlExec(ctx, db.sql, stmts)
		return err
	}
	if !atomic {
		return db.sqlOwnTx(ctx, stmts, db.dialect.snapshot)
	}
	return db.sqlOwnTx(ctx, stmts, nil)
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
		if c, ok := db.pgx.(interface{ PgConn() *pgconn.PgConn }); ok && c.PgConn().TxStatus() != 'I' {
			_, rerr := db.batch(ctx, db.pgx, nil, controls(sqlRollback))
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// sqlOwnTx runs stmts in a database/sql transaction of their own, begun
// with opts.
func (db *DB) sqlOwnTx(ctx context.Context, stmts []stmt, opts *sql.TxOptions) (err error) {
	t, err := db.sqlBegin(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			db.sqlEnd(ctx, t, false)
			panic(p)
		}
	}()
	if _, err := db.sqlExec(ctx, t, stmts); err != nil {
		return errors.Join(err, db.sqlEnd(ctx, t, false))
	}
	return db.sqlEnd(ctx, t, true)
}

func (db *DB) sqlBegin(ctx context.Context, opts *sql.TxOptions) (*sqlx.Tx, error) {
	trip, start := db.nextTrip(), time.Now()
	t, err := db.sql.BeginTxx(ctx, opts)
	text := sqlBegin
	if opts != nil && opts.Isolation == sql.LevelRepeatableRead {
		text = sqlBeginSnapshot
	}
	db.report(ctx, text, nil, trip, err, time.Since(start))
	return t, err
}

// sqlEnd commits or rolls back t. A rollback of a transaction that
// database/sql already rolled back (its context is done) is not an error.
func (db *DB) sqlEnd(ctx context.Context, t *sqlx.Tx, commit bool) error {
	trip, start := db.nextTrip(), time.Now()
	var err error
	text := sqlCommit
	if commit {
		err = t.Commit()
	} else {
		text = sqlRollback
		err = t.Rollback()
		if errors.Is(err, sql.ErrTxDone) {
			err = nil
		}
	}
	db.report(ctx, text, nil, trip, err, time.Since(start))
	return err
}

// sqlExec runs stmts one after the other on c, one round trip each, and
// stops at the first failure. It returns how many succeeded.
func (db *DB) sqlExec(ctx context.Context, c sqlConn, stmts []stmt) (int, error) {
	for i := range stmts {
		s := &stmts[i]
		trip, start := db.nextTrip(), time.Now()
		err := classify(s, sqlOne(ctx, c, s))
		db.report(ctx, s.sql, s.args, trip, err, time.Since(start))
		if err != nil {
			return i, err
		}
	}
	return len(stmts), nil
}

func sqlOne(ctx context.Context, c sqlConn, s *stmt) error {
	if s.scan == nil && s.check != checkRow {
		res, err := c.ExecContext(ctx, s.sql, s.args...)
		if err != nil || s.check != checkRows {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return errConflict
		}
		return nil
	}
	rows, err := c.QueryContext(ctx, s.sql, s.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
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
		return errConflict
	}
	return nil
}

// isDivisionByZero reports a PostgreSQL division_by_zero error (SQLSTATE
// 22012), which a checked statement raises when it found no row.
func isDivisionByZero(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "22012"
}

// batchSender is a pgx connection, pool or transaction.
type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// batch sends ctl.pre, then stmts, then ctl.post in one pgx.Batch on c,
// and reads the results in order, stopping at the first failure. When
// ctl.begin is set, the batch begins a transaction first. It returns how
// many of the queued statements succeeded, BEGIN included.
func (db *DB) batch(ctx context.Context, c batchSender, ctl *batchCtl, stmts []stmt) (int, error) {
	b := &pgx.Batch{}
	var pre, post []string
	if ctl != nil {
		if ctl.begin {
			b.BeginTx(pgx.TxOptions{})
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
		step(sqlBegin, nil, err)
	}
	for i := 0; err == nil && i < len(pre); i++ {
		_, err = br.Exec()
		step(pre[i], nil, err)
	}
	for i := 0; err == nil && i < len(stmts); i++ {
		s := &stmts[i]
		err = readOne(br, s)
		if err != nil && s.check != noCheck && isDivisionByZero(err) {
			err = errConflict
		}
		err = classify(s, err)
		step(s.sql, s.args, err)
	}
	for i := 0; err == nil && i < len(post); i++ {
		_, err = br.Exec()
		step(post[i], nil, err)
	}
	if cerr := br.Close(); err == nil {
		err = cerr // a failure seen only when the batch ends
	}
	return n, err
}

// batchCtl is the transaction control around a batch sent in a
// transaction.
type batchCtl struct {
	begin     bool     // begin the transaction as the batch's first statement
	pre, post []string // control statements before and after the operation
	tx        pgx.Tx   // the transaction begun, when begin
}

func readOne(br pgx.BatchResults, s *stmt) error {
	if s.scan == nil {
		_, err := br.Exec()
		return err
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := s.scan(rows); err != nil {
			return err
		}
	}
	rows.Close()
	return rows.Err()
}
