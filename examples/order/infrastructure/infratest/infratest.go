// Package infratest opens the databases that the tests of the order
// example run on: SQLite through database/sql always, PostgreSQL through a
// pgx pool and through database/sql (driver "pgx") when the environment
// variable DDDKIT_TEST_POSTGRES_DSN holds a DSN, and MariaDB through
// database/sql (driver "mysql") when DDDKIT_TEST_MYSQL_DSN holds one. Each
// PostgreSQL test works in a schema of its own, and each MariaDB test in a
// database of its own, named at random and dropped when the test ends.
package infratest

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/order/infrastructure"
	"github.com/dddkit/dddkit/internal/testdb"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

// DSNEnv is the environment variable that holds the PostgreSQL DSN of the
// tests.
const DSNEnv = testdb.DSNEnv

// SkipPostgres is the message of a PostgreSQL test skipped for want of a
// DSN.
const SkipPostgres = testdb.SkipPostgres

// MySQLDSNEnv is the environment variable that holds the MariaDB DSN of
// the tests.
const MySQLDSNEnv = testdb.MySQLDSNEnv

// SkipMySQL is the message of a MariaDB test skipped for want of a DSN.
const SkipMySQL = testdb.SkipMySQL

// Backend is one database under test, with its tables created.
type Backend struct {
	// Name is "sqlite", "postgres/pgxpool", "postgres/database-sql" or
	// "mariadb/database-sql".
	Name string
	// DB is the handle under test; it sends its statements to Log.
	DB *sqlstore.DB
	// Log records the statements of DB.
	Log *infrastructure.StatementLog
	// Other is a second handle on the same database, unobserved: the
	// database as another process sees it.
	Other *sqlstore.DB
	// OneTrip is set where every operation is one round trip: pgx's
	// batches, MySQL's and MariaDB's multi-statement queries.
	OneTrip bool
	// Raw reads the database back with plain SQL: write "?" placeholders
	// and Rebind.
	Raw *sqlx.DB
}

// Canonical returns sql, a statement that a backend sent, with ?
// placeholders and names in double quotes, as PostgreSQL and SQLite
// quote them (MariaDB quotes them with backquotes), so that the tests
// compare the statements of every backend alike.
func Canonical(sql string) string {
	return strings.ReplaceAll(dollar.ReplaceAllString(sql, "?"), "`", `"`)
}

var dollar = regexp.MustCompile(`\$[0-9]+`)

// ForEach runs body once per backend, as subtests named after them.
// The PostgreSQL and MariaDB ones skip without a DSN.
func ForEach(t *testing.T, body func(t *testing.T, b *Backend)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { body(t, SQLite(t)) })
	t.Run("postgres/pgxpool", func(t *testing.T) { body(t, PGXPool(t)) })
	t.Run("postgres/database-sql", func(t *testing.T) { body(t, PGDatabaseSQL(t)) })
	t.Run("mariadb/database-sql", func(t *testing.T) { body(t, MariaDB(t)) })
}

// SQLite returns a backend on a new SQLite database, removed when t ends.
func SQLite(t *testing.T) *Backend {
	t.Helper()
	x, closeDB, err := infrastructure.OpenSQLite(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, closeDB()) })
	log := &infrastructure.StatementLog{}
	db, err := sqlstore.NewSQL(x, sqlstore.WithObserver(log.Observe))
	require.NoError(t, err)
	other, err := sqlstore.NewSQL(x)
	require.NoError(t, err)
	return &Backend{Name: "sqlite", DB: db, Log: log, Other: other, Raw: x}
}

// PostgresSchema skips t without a DSN, else returns the DSN and the name
// of a schema that does not exist yet, which is dropped when t ends.
func PostgresSchema(t *testing.T) (dsn, schema string) {
	t.Helper()
	return testdb.Schema(t, "dddkit_order_test_", false)
}

// PGXPool returns a backend on PostgreSQL through a pgx pool, in a schema
// of its own, or skips t without a DSN.
func PGXPool(t *testing.T) *Backend {
	t.Helper()
	dsn, schema := PostgresSchema(t)
	pool, err := infrastructure.OpenPostgres(context.Background(), dsn, schema, false)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	raw := sqlx.NewDb(stdlib.OpenDBFromPool(pool), "pgx")
	t.Cleanup(func() { raw.Close() })
	log := &infrastructure.StatementLog{}
	return &Backend{
		Name:    "postgres/pgxpool",
		DB:      sqlstore.NewPGX(pool, sqlstore.WithObserver(log.Observe)),
		Log:     log,
		Other:   sqlstore.NewPGX(pool),
		OneTrip: true,
		Raw:     raw,
	}
}

// PGDatabaseSQL returns a backend on PostgreSQL through database/sql
// (driver "pgx"), in a schema of its own, or skips t without a DSN.
func PGDatabaseSQL(t *testing.T) *Backend {
	t.Helper()
	dsn, schema := PostgresSchema(t)
	// OpenPostgres creates the schema and its tables.
	pool, err := infrastructure.OpenPostgres(context.Background(), dsn, schema, false)
	require.NoError(t, err)
	pool.Close()
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.RuntimeParams["search_path"] = schema
	x := sqlx.NewDb(stdlib.OpenDB(*cfg), "pgx")
	t.Cleanup(func() { x.Close() })
	log := &infrastructure.StatementLog{}
	db, err := sqlstore.NewSQL(x, sqlstore.WithObserver(log.Observe))
	require.NoError(t, err)
	other, err := sqlstore.NewSQL(x)
	require.NoError(t, err)
	return &Backend{Name: "postgres/database-sql", DB: db, Log: log, Other: other, Raw: x}
}

// MySQLDatabase skips t without a MariaDB DSN, else returns the DSN of
// the server and the name of a database that does not exist yet, which is
// dropped when t ends.
func MySQLDatabase(t *testing.T) (dsn, database string) {
	t.Helper()
	return testdb.MySQLDatabase(t, "dddkit_order_test_", false)
}

// MySQLURL returns dsn, the DSN of MySQLDatabase, as the mysql:// URL of
// a DATABASE_URL.
func MySQLURL(t *testing.T, dsn string) string {
	t.Helper()
	u, err := testdb.MySQLURL(dsn)
	require.NoError(t, err)
	return u
}

// EmptyMariaDB returns a handle, with the settings of sqlstore.MySQLDSN,
// on a new empty MariaDB database of its own, dropped when t ends, or
// skips t without a DSN.
func EmptyMariaDB(t *testing.T) *sqlx.DB {
	t.Helper()
	dsn, _ := testdb.MySQLDatabase(t, "dddkit_order_test_", true)
	dsn, err := sqlstore.MySQLDSN(dsn)
	require.NoError(t, err)
	x, err := sqlx.Open("mysql", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { x.Close() })
	return x
}

// MariaDB returns a backend on MariaDB through database/sql (driver
// "mysql"), in a database of its own, or skips t without a DSN.
func MariaDB(t *testing.T) *Backend {
	t.Helper()
	dsn, database := MySQLDatabase(t)
	// OpenMySQL creates the database and its tables.
	x, err := infrastructure.OpenMySQL(context.Background(), dsn, database, false)
	require.NoError(t, err)
	t.Cleanup(func() { x.Close() })
	log := &infrastructure.StatementLog{}
	db, err := sqlstore.NewSQL(x, sqlstore.WithObserver(log.Observe))
	require.NoError(t, err)
	other, err := sqlstore.NewSQL(x)
	require.NoError(t, err)
	return &Backend{Name: "mariadb/database-sql", DB: db, Log: log, Other: other, Raw: x, OneTrip: true}
}
