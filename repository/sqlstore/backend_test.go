package sqlstore

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/dddkit/dddkit/internal/testdb"
)

// The integration tests run one body over every backend, in the manner of
// pgxpool's common_test.go: SQLite through database/sql always,
// PostgreSQL through pgxpool and through database/sql (driver "pgx") when
// DDDKIT_TEST_POSTGRES_DSN is set, and MariaDB through database/sql
// (driver "mysql") when DDDKIT_TEST_MYSQL_DSN is set. Each PostgreSQL test
// gets a schema of its own, named at random and dropped afterwards, set as
// the search_path of its connections, and each MariaDB test a database of
// its own, so that runs never collide.

const pgEnv = testdb.DSNEnv

// backend is one database under test.
type backend struct {
	name string
	db   *DB
	// quiet is db without the observer, for checks that must not show in
	// the log.
	quiet *DB
	pgx   bool // native pgx: operations are single batches
	log   *stmtLog
	raw   raw
}

// raw is direct access to the database, for fixtures and checks.
type raw interface {
	exec(t testing.TB, sql string, args ...any)
	count(t testing.TB, sql string, args ...any) int64
}

var schemaDDL = []string{
	`CREATE TABLE customers (name TEXT PRIMARY KEY)`,
	`INSERT INTO customers (name) VALUES ('alice'), ('bob')`,
	// The deferred foreign key fails at COMMIT: the commit error test.
	`CREATE TABLE orders (
		id BIGINT PRIMARY KEY,
		customer TEXT NOT NULL REFERENCES customers (name) DEFERRABLE INITIALLY DEFERRED,
		total_amount BIGINT NOT NULL,
		total_currency TEXT NOT NULL,
		version BIGINT NOT NULL
	)`,
	// UNIQUE (order_id, sku) proves that removed rows are deleted before
	// added rows are inserted; the CHECK makes a statement fail mid-save.
	`CREATE TABLE order_items (
		order_id BIGINT NOT NULL REFERENCES orders (id),
		id BIGINT NOT NULL,
		sku TEXT NOT NULL,
		quantity INTEGER NOT NULL CHECK (quantity > 0),
		PRIMARY KEY (order_id, id),
		UNIQUE (order_id, sku)
	)`,
}

// mysqlSchemaDDL is schemaDDL for MariaDB, which checks foreign keys at
// each statement and cannot defer one to COMMIT: the tests of a COMMIT that
// fails skip there.
var mysqlSchemaDDL = func() []string {
	out := make([]string, len(schemaDDL))
	for i, s := range schemaDDL {
		out[i] = strings.Replace(s, " DEFERRABLE INITIALLY DEFERRED", "", 1)
	}
	return out
}()

// forEachBackend runs body once per backend, as subtests.
func forEachBackend(t *testing.T, body func(t *testing.T, b *backend)) {
	t.Run("sqlite", func(t *testing.T) { body(t, sqliteBackend(t)) })
	t.Run("postgres/pgxpool", func(t *testing.T) { body(t, pgxBackend(t)) })
	t.Run("postgres/database-sql", func(t *testing.T) { body(t, pgSQLBackend(t)) })
	t.Run("mariadb/database-sql", func(t *testing.T) { body(t, mysqlBackend(t)) })
}

// Which database a backend reaches.
func (b *backend) sqlite() bool   { return b.name == "sqlite" }
func (b *backend) postgres() bool { return strings.HasPrefix(b.name, "postgres/") }
func (b *backend) mysql() bool    { return strings.HasPrefix(b.name, "mariadb/") }

// locks reports whether sql locks the rows it reads, in the words of the
// backend's database (FOR UPDATE, FOR SHARE...).
func (b *backend) locks(sql string) bool {
	d := b.db.dialect
	for _, s := range []string{d.lockSuffix, d.shareSuffix, d.writeSuffix} {
		if s != "" && strings.Contains(sql, s) {
			return true
		}
	}
	return false
}

// moveFK is the clause of a foreign key that holds the parent key columns
// of a parent whose key is generated, which a move of that parent updates
// before its children's rows: deferred to the COMMIT, or, on MariaDB,
// which cannot defer a constraint, cascaded to the children.
func (b *backend) moveFK() string {
	if b.mysql() {
		return " ON UPDATE CASCADE"
	}
	return " DEFERRABLE INITIALLY DEFERRED"
}

func sqliteBackend(t testing.TB) *backend {
	dsn := "file:" + filepath.Join(t.TempDir(), "test.db") + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)"
	x, err := sqlx.Open("sqlite", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { x.Close() })
	r := sqlRaw{x}
	for _, s := range schemaDDL {
		r.exec(t, s)
	}
	log := &stmtLog{}
	db, err := NewSQL(x, WithObserver(log.observe))
	require.NoError(t, err)
	quiet, err := NewSQL(x)
	require.NoError(t, err)
	return &backend{name: "sqlite", db: db, quiet: quiet, log: log, raw: r}
}

// pgSchema creates a schema of its own for t and returns the DSN and the
// schema's name, to set as the search_path of its connections.
func pgSchema(t testing.TB) (dsn, schema string) {
	return testdb.Schema(t, "dddkit_test_", true)
}

func pgxBackend(t testing.TB) *backend {
	dsn, schema := pgSchema(t)
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	if _, ok := t.(*testing.B); ok {
		// Benchmarks compare two ways of sending the same writes: the
		// commit's wait for the disk is the same for both, and by far the
		// noisiest part of a save on a shared machine, so it is left out.
		cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	r := pgxRaw{pool}
	for _, s := range schemaDDL {
		r.exec(t, s)
	}
	log := &stmtLog{}
	return &backend{name: "postgres/pgxpool", db: NewPGX(pool, WithObserver(log.observe)), quiet: NewPGX(pool), pgx: true, log: log, raw: r}
}

func pgSQLBackend(t testing.TB) *backend {
	dsn, schema := pgSchema(t)
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.RuntimeParams["search_path"] = schema
	x := sqlx.NewDb(stdlib.OpenDB(*cfg), "pgx")
	t.Cleanup(func() { x.Close() })
	r := sqlRaw{x}
	for _, s := range schemaDDL {
		r.exec(t, s)
	}
	log := &stmtLog{}
	db, err := NewSQL(x, WithObserver(log.observe))
	require.NoError(t, err)
	quiet, err := NewSQL(x)
	require.NoError(t, err)
	return &backend{name: "postgres/database-sql", db: db, quiet: quiet, log: log, raw: r}
}

// mysqlBackend returns a backend on MariaDB through database/sql, in a
// database of its own, or skips t without a DSN.
func mysqlBackend(t testing.TB) *backend {
	b, _ := mysqlBackendDSN(t, false)
	return b
}

// withMySQLPath is an Option of tests: on MariaDB, the DB takes MySQL's
// dialect, without INSERT ... RETURNING.
func withMySQLPath() Option { return func(db *DB) { db.mysqlPath = true } }

// mysqlPathBackend is mysqlBackend on MySQL's path (withMySQLPath): no
// INSERT ... RETURNING, which MariaDB has and MySQL has not; the key an
// INSERT generated is read from its result.
func mysqlPathBackend(t testing.TB) *backend {
	b, _ := mysqlBackendDSN(t, true)
	return b
}

// forEachBackendAndMySQLPath is forEachBackend, and MariaDB once more on
// MySQL's path, for the tests where that path differs: the keys that the
// database generates.
func forEachBackendAndMySQLPath(t *testing.T, body func(t *testing.T, b *backend)) {
	forEachBackend(t, body)
	t.Run("mariadb/mysql-path", func(t *testing.T) { body(t, mysqlPathBackend(t)) })
}

// returning reports whether b's INSERTs read back the keys they generate
// with RETURNING.
func (b *backend) returning() bool { return b.name != "mariadb/mysql-path" }

// mysqlBackendDSN is mysqlBackend, on MySQL's path when mysqlPath is set,
// which also returns the DSN of its database, with the settings of
// MySQLDSN.
func mysqlBackendDSN(t testing.TB, mysqlPath bool) (*backend, string) {
	dsn, _ := testdb.MySQLDatabase(t, "dddkit_test_", true)
	dsn, err := MySQLDSN(dsn)
	require.NoError(t, err)
	x, err := sqlx.Open("mysql", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { x.Close() })
	r := sqlRaw{x}
	for _, s := range mysqlSchemaDDL {
		r.exec(t, s)
	}
	log := &stmtLog{}
	name, opts := "mariadb/database-sql", []Option(nil)
	if mysqlPath {
		name, opts = "mariadb/mysql-path", []Option{withMySQLPath()}
	}
	db, err := NewSQL(x, append(opts, WithObserver(log.observe))...)
	require.NoError(t, err)
	quiet, err := NewSQL(x, opts...)
	require.NoError(t, err)
	return &backend{name: name, db: db, quiet: quiet, log: log, raw: r}, dsn
}

// sqlRaw is raw access through database/sql. Statements are written with
// ? placeholders, and for PostgreSQL and SQLite; on MariaDB they are sent
// in its form (testdb.ToMySQL), and one that has none fails the test.
type sqlRaw struct{ x *sqlx.DB }

func (r sqlRaw) sql(t testing.TB, q string) string {
	t.Helper()
	if r.x.DriverName() != "mysql" {
		return r.x.Rebind(q)
	}
	out, err := testdb.ToMySQL(q)
	if err != nil {
		t.Fatalf("the statement has no MariaDB form: %v\n%s", err, q)
	}
	return out
}

func (r sqlRaw) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	_, err := r.x.Exec(r.sql(t, q), args...)
	require.NoError(t, err, q)
}

func (r sqlRaw) count(t testing.TB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, r.x.Get(&n, r.sql(t, q), args...), q)
	return n
}

type pgxRaw struct{ p *pgxpool.Pool }

func (r pgxRaw) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	_, err := r.p.Exec(context.Background(), sqlx.Rebind(sqlx.DOLLAR, q), args...)
	require.NoError(t, err, q)
}

func (r pgxRaw) count(t testing.TB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, r.p.QueryRow(context.Background(), sqlx.Rebind(sqlx.DOLLAR, q), args...).Scan(&n), q)
	return n
}

// stmtLog records what the observer sees.
type stmtLog struct {
	mu    sync.Mutex
	stmts []Statement
}

func (l *stmtLog) observe(_ context.Context, s Statement) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stmts = append(l.stmts, s)
}

// take returns the statements recorded since the last take.
func (l *stmtLog) take() []Statement {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.stmts
	l.stmts = nil
	return out
}

func trips(stmts []Statement) int {
	seen := map[int]bool{}
	for _, s := range stmts {
		seen[s.RoundTrip] = true
	}
	return len(seen)
}

var control = func() map[string]bool {
	m := map[string]bool{
		sqlBegin: true, sqlBeginImmediate: true, sqlBeginSnapshot: true, sqlCommit: true, sqlRollback: true,
		sqlSavepoint: true, sqlReleaseSavepoint: true, sqlRollbackTo: true,
		sqlStartTransaction: true, sqlStartReadOnly: true, sqlStartSnapshot: true, sqlStartSnapshotRead: true,
	}
	for _, level := range pgLevels {
		m[sqlSetIsolation+level] = true // MySQL's, before its START TRANSACTION
	}
	return m
}()

var dollarRE = regexp.MustCompile(`\$\d+`)

// dml returns the statements other than transaction control, with their
// placeholders written as ? and their identifiers quoted with double quotes
// (MariaDB's are backquoted), so that backends compare equal.
func dml(stmts []Statement) []string {
	var out []string
	for _, s := range stmts {
		if !control[s.SQL] {
			out = append(out, canonical(s.SQL))
		}
	}
	return out
}

// canonical returns sql with ? placeholders and double-quoted identifiers.
func canonical(sql string) string {
	return strings.ReplaceAll(dollarRE.ReplaceAllString(sql, "?"), "`", `"`)
}

func sqls(stmts []Statement) []string {
	out := make([]string, len(stmts))
	for i, s := range stmts {
		out[i] = s.SQL
	}
	return out
}

func count(stmts []Statement, sql string) int {
	n := 0
	for _, s := range stmts {
		if s.SQL == sql {
			n++
		}
	}
	return n
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func (b *backend) repo(t testing.TB) *Repository[*order, orderID] {
	r, err := NewRepository[*order, orderID](b.db, orderMapping(t))
	require.NoError(t, err)
	return r
}

// load reads the aggregate from the database, without tracking.
func (b *backend) load(t testing.TB, id orderID) *order {
	t.Helper()
	o, err := NewStore[*order, orderID](b.quiet, orderMapping(t)).Select(context.Background(), id)
	require.NoError(t, err)
	return o
}

func (b *backend) exists(t testing.TB, id orderID) bool {
	return b.raw.count(t, "SELECT count(*) FROM orders WHERE id = ?", int64(id)) > 0
}

// stored is o as the database stores it: without its unmapped and ignored
// fields, children in key order, an empty collection as nil.
func stored(o *order) *order {
	c := *o
	c.note, c.cache = "", nil
	c.items = nil
	for _, it := range o.items {
		cp := *it
		c.items = append(c.items, &cp)
	}
	for i := 1; i < len(c.items); i++ {
		for j := i; j > 0 && c.items[j].id < c.items[j-1].id; j-- {
			c.items[j], c.items[j-1] = c.items[j-1], c.items[j]
		}
	}
	return &c
}

// checked returns sql, a statement that must affect a row, as b sends it:
// on native pgx, wrapped so that finding no row raises division_by_zero.
func (b *backend) checked(sql string) string {
	if !b.pgx {
		return sql
	}
	return "WITH r AS (" + sql + " RETURNING 1) SELECT 1/count(*) FROM r"
}
