package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ErrNoRows is returned by [Row.Scan] when the query returned no row.
// It is sql.ErrNoRows itself, on every backend, pgx included: test for it
// with errors.Is(err, sqlstore.ErrNoRows) or errors.Is(err, sql.ErrNoRows).
var ErrNoRows = sql.ErrNoRows

// ErrNoTx is returned by [DB.PGXTx] and [DB.SQLTx] when the context
// carries no transaction of the DB: they must be called with the context
// of a unit of work of [DB.InTx].
var ErrNoTx = errors.New("the context carries no transaction of this DB (call it inside DB.InTx)")

// Exec runs sql, a statement of your own, with args bound to its
// placeholders, written ? on every database (see [ErrQuery] and the
// package doc, "SQL of your own"), and returns the number of rows it affected (on SQLite,
// meaningful for INSERT, UPDATE and DELETE only: other statements leave
// the count of the statement before).
//
// With the context of a unit of work of [DB.InTx], the statement runs in
// its transaction (beginning it, if nothing was sent in it yet), after the
// operations of the unit of work that came before it and before those
// that come after: it commits or rolls back with them. Like a save, it
// runs between a SAVEPOINT and its RELEASE (in the same round trip on
// pgx), so that its failure leaves the transaction usable. Otherwise it
// runs on the pool like a write of a store: in a transaction of its own
// on database/sql, in one batch on pgx, watched for the cancellation of
// ctx as [NewPGX] and [NewSQL] describe.
//
// The statement is reported to the observer of [WithObserver]. Its error
// is classified as the errors of stores are: a serialization failure, a
// deadlock or SQLITE_BUSY match [repository.ErrConflict].
func (db *DB) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	if err := db.check(); err != nil {
		return 0, fmt.Errorf("sqlstore: exec: %w", err)
	}
	text, err := db.dialect.rebind(sql, len(args))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: exec: %w", err)
	}
	var n int64
	if err := db.run(ctx, []stmt{{sql: text, args: args, affected: &n}}, true); err != nil {
		return 0, fmt.Errorf("sqlstore: exec: %w", err)
	}
	return n, nil
}

// Query returns the rows of sql, a query of your own, with args bound to
// its placeholders (? on every database, as for [DB.Exec]); the query runs
// when [Rows.Each] is called.
//
// With the context of a unit of work of [DB.InTx], the query runs in its
// transaction, serialized with its other statements, as [DB.Exec] does but
// without a savepoint: on PostgreSQL a failed query aborts the
// transaction, which can then only roll back. Otherwise it runs on the
// pool, not watched for the cancellation of ctx (a query whose context is
// done fails at once): send writes with Exec. The query is reported to the
// observer. To read rows into structs by their db tags, use [SelectSQL].
func (db *DB) Query(ctx context.Context, sql string, args ...any) *Rows {
	return &Rows{db: db, ctx: ctx, sql: sql, args: args}
}

// Rows are the rows of a query of [DB.Query], read by [Rows.Each].
type Rows struct {
	db   *DB
	ctx  context.Context
	sql  string
	args []any
}

// Each runs the query and calls each once per row, in order, with a
// function that scans the row's columns into dest, as database/sql's
// Rows.Scan does. each must not keep scan, and must not use the DB (or its
// stores) with the context of the unit of work: the transaction is busy
// with the query until Each returns, and such a call would wait for it
// forever. Collect the rows, then act on them. An error of each stops the
// query and is returned; a panic of each closes the rows and goes on. The
// rows are always closed by the time Each returns.
func (r *Rows) Each(each func(scan func(dest ...any) error) error) error {
	db := r.db
	if err := db.check(); err != nil {
		return fmt.Errorf("sqlstore: query: %w", err)
	}
	if each == nil {
		return errors.New("sqlstore: query: nil function")
	}
	text, err := db.dialect.rebind(r.sql, len(r.args))
	if err != nil {
		return fmt.Errorf("sqlstore: query: %w", err)
	}
	if err := db.run(r.ctx, []stmt{{sql: text, args: r.args, scan: func(r rowScanner) error {
		return each(r.Scan)
	}}}, false); err != nil {
		return fmt.Errorf("sqlstore: query: %w", err)
	}
	return nil
}

// QueryRow returns the first row of sql, a query of your own, with args
// bound to its placeholders (? on every database, as for [DB.Exec]); the
// query runs, as [DB.Query] runs it, when [Row.Scan] is called.
func (db *DB) QueryRow(ctx context.Context, sql string, args ...any) *Row {
	return &Row{rows: Rows{db: db, ctx: ctx, sql: sql, args: args}}
}

// Row is the first row of a query of [DB.QueryRow].
type Row struct{ rows Rows }

// Scan runs the query and scans the columns of its first row into dest;
// further rows are read and ignored. When the query returns no row, it
// returns [ErrNoRows] (sql.ErrNoRows).
func (r *Row) Scan(dest ...any) error {
	found := false
	err := r.rows.Each(func(scan func(dest ...any) error) error {
		if found {
			return nil
		}
		found = true
		return scan(dest...)
	})
	if err == nil && !found {
		return ErrNoRows
	}
	return err
}

// PGXTx returns the pgx transaction of the unit of work of [DB.InTx] that
// ctx carries, begun first if nothing was sent in it yet, for what stores
// and [DB.Exec] cannot do (CopyFrom, LargeObjects, prepared statements).
// The DB must be of [NewPGX]; without a transaction in ctx it returns
// [ErrNoTx], and [ErrTxDone] once the unit of work has ended.
//
// Statements sent on the transaction directly bypass the DB: they are not
// reported to the observer, not enclosed in savepoints (a failed one
// aborts the transaction on PostgreSQL, and the unit of work can then
// only roll back) and not watched for the cancellation of their context.
// They must not run concurrently with the operations of stores or of the
// DB in the same unit of work, and the transaction must not be committed
// or rolled back: InTx ends it.
func (db *DB) PGXTx(ctx context.Context) (pgx.Tx, error) {
	t, err := db.openTx(ctx, db.pgx != nil, "PGXTx", "NewPGX")
	if err != nil {
		return nil, err
	}
	return t.pgx, nil
}

// SQLExecutor is the transaction [DB.SQLTx] returns: a *sql.Tx, or on
// SQLite the *sql.Conn on which the DB began the transaction with BEGIN
// IMMEDIATE (or BEGIN, when read-only) itself.
type SQLExecutor interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// SQLTx is [DB.PGXTx] for a DB of [NewSQL] or [NewSQLDB]: it returns where
// the statements of the unit of work of [DB.InTx] that ctx carries run,
// the transaction begun first if nothing was sent in it yet. What PGXTx
// says of the statements sent on it holds here too; besides, the
// transaction must not be ended, neither with Commit or Rollback nor with
// COMMIT or ROLLBACK statements.
func (db *DB) SQLTx(ctx context.Context) (SQLExecutor, error) {
	t, err := db.openTx(ctx, db.sql != nil, "SQLTx", "NewSQL")
	if err != nil {
		return nil, err
	}
	if t.sql.tx != nil {
		return t.sql.tx, nil
	}
	return t.sql.conn, nil
}

// openTx returns the transaction of ctx, begun.
func (db *DB) openTx(ctx context.Context, kind bool, name, constructor string) (*txState, error) {
	if err := db.check(); err != nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", name, err)
	}
	if !kind {
		return nil, fmt.Errorf("sqlstore: %s: the DB is not of %s", name, constructor)
	}
	t := db.txFrom(ctx)
	if t == nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", name, ErrNoTx)
	}
	if err := t.open(ctx); err != nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", name, err)
	}
	return t, nil
}

// TxOptions are the options of a transaction of [DB.InTxWith].
//
// On PostgreSQL, through pgx or database/sql, the transaction begins with
// BEGIN ISOLATION LEVEL ... READ ONLY as they ask; Isolation may be
// sql.LevelDefault (the server's default_transaction_isolation),
// LevelReadUncommitted (which PostgreSQL runs as READ COMMITTED),
// LevelReadCommitted, LevelRepeatableRead or LevelSerializable; other
// levels are an error. A write in a read-only transaction fails with
// SQLSTATE 25006 (read_only_sql_transaction).
//
// A read-only transaction runs at least at REPEATABLE READ on PostgreSQL,
// where its loads read one snapshot: at READ COMMITTED a load locks its
// roots to read each aggregate as it stood at one commit (see
// [Store.Select]), which a read-only transaction cannot do.
//
// On MySQL and MariaDB the transaction begins with SET TRANSACTION
// ISOLATION LEVEL and START TRANSACTION (READ ONLY as asked, WITH
// CONSISTENT SNAPSHOT at REPEATABLE READ). The levels are PostgreSQL's,
// LevelReadUncommitted being InnoDB's own, which reads rows not yet
// committed; the zero level is READ COMMITTED, not InnoDB's default
// REPEATABLE READ, and a read-only transaction runs at least at
// REPEATABLE READ, as on PostgreSQL. At REPEATABLE READ a load that
// locks its root locks its children too (see [Store.SelectForUpdate]).
//
// On SQLite every transaction is serializable: any level up to
// sql.LevelSerializable is accepted, LevelLinearizable is an error.
// ReadOnly begins the transaction with a deferred BEGIN instead of BEGIN
// IMMEDIATE, so that it does not take the write lock and does not wait
// for other writers; it does not refuse writes (a write then takes the
// lock when it runs, and may fail with an error matching
// [repository.ErrConflict] when another transaction holds it).
type TxOptions struct {
	// Isolation is the isolation level; zero is the database's default
	// (READ COMMITTED on MySQL and MariaDB, see above).
	Isolation sql.IsolationLevel
	// ReadOnly begins a read-only transaction.
	ReadOnly bool
}

// WithTxOptions returns ctx carrying opts, the options of the
// transactions that [DB.InTx] begins with it, as [DB.InTxWith] would
// begin them: among them the unit of work of
// [repository.AggregateRepositorySupport.Update], which keeps its two
// round trips on pgx (the load with the BEGIN, the save with the COMMIT).
// InTx with a ctx that carries an unfinished transaction joins it only if
// that transaction satisfies opts, as InTxWith does; InTxWith's own
// options take the place of those of ctx.
//
// At REPEATABLE READ and above on PostgreSQL, the loads of the unit of
// work read one snapshot and lock nothing, and a concurrent change of an
// aggregate it writes fails its save with a serialization failure, which
// matches [repository.ErrConflict]: run Update with
// [repository.WithRetry] to try again on the new state.
func WithTxOptions(ctx context.Context, opts TxOptions) context.Context {
	return context.WithValue(ctx, txOptionsKey{}, opts)
}

type txOptionsKey struct{}

// effective returns the options a transaction of o runs with on d: on
// PostgreSQL a read-only transaction runs at least at REPEATABLE READ,
// where its loads read one snapshot (they cannot lock rows to read a
// consistent state at READ COMMITTED: a read-only transaction cannot lock
// rows); a read-only transaction never fails with a serialization failure
// at that level.
func (o TxOptions) effective(d *dialect) TxOptions {
	if d.stmtSnapshot && o.ReadOnly && pgRank(o.Isolation) < 2 {
		o.Isolation = sql.LevelRepeatableRead
	}
	return o
}

// pgLevels are the isolation levels PostgreSQL has, by their SQL names.
var pgLevels = map[sql.IsolationLevel]string{
	sql.LevelReadUncommitted: "READ UNCOMMITTED",
	sql.LevelReadCommitted:   "READ COMMITTED",
	sql.LevelRepeatableRead:  "REPEATABLE READ",
	sql.LevelSerializable:    "SERIALIZABLE",
}

func (o TxOptions) validate(d *dialect) error {
	if o.Isolation == sql.LevelDefault {
		return nil
	}
	if d.serializable {
		if o.Isolation < sql.LevelDefault || o.Isolation > sql.LevelSerializable {
			return fmt.Errorf("sqlstore: transaction: %s cannot run isolation level %v", d.title, o.Isolation)
		}
		return nil
	}
	if _, ok := pgLevels[o.Isolation]; !ok {
		return fmt.Errorf("sqlstore: transaction: %s has no isolation level %v", d.title, o.Isolation)
	}
	return nil
}

// pgRank orders the PostgreSQL levels by strength, the default taken as
// READ COMMITTED.
func pgRank(l sql.IsolationLevel) int {
	switch l {
	case sql.LevelRepeatableRead:
		return 2
	case sql.LevelSerializable:
		return 3
	}
	return 1
}

// satisfies returns an error unless a transaction begun with o can run
// a nested unit of work that asks for inner.
func (o TxOptions) satisfies(inner TxOptions, d *dialect) error {
	if o.ReadOnly && !inner.ReadOnly {
		return errors.New("sqlstore: transaction: a read-write unit of work cannot join the read-only transaction of the context")
	}
	if !d.serializable && inner.Isolation != sql.LevelDefault && pgRank(inner.Isolation) > pgRank(o.Isolation) {
		return fmt.Errorf("sqlstore: transaction: a unit of work that asks for isolation level %v cannot join the transaction of the context, of level %v", inner.Isolation, o.Isolation)
	}
	return nil
}

// beginSQL is the BEGIN statement of o on PostgreSQL.
func (o TxOptions) beginSQL() string {
	if o == (TxOptions{}) {
		return sqlBegin
	}
	var b strings.Builder
	b.WriteString(sqlBegin)
	if name, ok := pgLevels[o.Isolation]; ok {
		b.WriteString(" ISOLATION LEVEL " + name)
	}
	if o.ReadOnly {
		b.WriteString(" READ ONLY")
	}
	return b.String()
}

// sqlOptions are the options of o for database/sql, nil for the zero
// options.
func (o TxOptions) sqlOptions() *sql.TxOptions {
	if o == (TxOptions{}) {
		return nil
	}
	return &sql.TxOptions{Isolation: o.Isolation, ReadOnly: o.ReadOnly}
}
