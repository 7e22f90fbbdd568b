package infrastructure

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository/sqlstore"
)

// The contract tests run one body over every backend: SQLite through
// database/sql always, and PostgreSQL through a pgx pool and through
// database/sql (driver "pgx") when DDDKIT_TEST_POSTGRES_DSN is set. Each
// PostgreSQL test works in a schema of its own, named at random and
// dropped afterwards.

const pgEnv = "DDDKIT_TEST_POSTGRES_DSN"

const skipPG = "DDDKIT_TEST_POSTGRES_DSN is not set: skipping the PostgreSQL suite"

// backend is one database under test.
type backend struct {
	name string
	// db sends its statements to log.
	db  *sqlstore.DB
	log *stmtLog
	// other is a second handle on the same database, unobserved: the
	// database as another process sees it.
	other *sqlstore.DB
	// pgx is set for the native pgx backend: every operation is one batch.
	pgx bool
	// raw reads the database back with plain SQL ("?" placeholders).
	raw *sqlx.DB
}

// forEachBackend runs body once per backend, as subtests named "sqlite",
// "postgres/pgxpool" and "postgres/database-sql".
func forEachBackend(t *testing.T, body func(t *testing.T, b *backend)) {
	t.Run("sqlite", func(t *testing.T) { body(t, sqliteBackend(t)) })
	t.Run("postgres/pgxpool", func(t *testing.T) { body(t, pgxBackend(t)) })
	t.Run("postgres/database-sql", func(t *testing.T) { body(t, pgSQLBackend(t)) })
}

func sqliteBackend(t *testing.T) *backend {
	x, closeDB, err := openSQLite(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, closeDB()) })
	log := &stmtLog{}
	db, err := sqlstore.NewSQL(x, sqlstore.WithObserver(log.observe))
	require.NoError(t, err)
	other, err := sqlstore.NewSQL(x)
	require.NoError(t, err)
	return &backend{name: "sqlite", db: db, log: log, other: other, raw: x}
}

// pgSchema skips t without a DSN, else returns the DSN and a new schema
// name, whose schema is dropped when t ends.
func pgSchema(t *testing.T) (dsn, schema string) {
	dsn = os.Getenv(pgEnv)
	if dsn == "" {
		t.Skip(skipPG)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema = "dddkit_order_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return dsn, schema
}

func pgxBackend(t *testing.T) *backend {
	dsn, schema := pgSchema(t)
	pool, err := openPostgres(context.Background(), dsn, schema)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	raw := sqlx.NewDb(stdlib.OpenDBFromPool(pool), "pgx")
	t.Cleanup(func() { raw.Close() })
	log := &stmtLog{}
	return &backend{
		name:  "postgres/pgxpool",
		db:    sqlstore.NewPGX(pool, sqlstore.WithObserver(log.observe)),
		log:   log,
		other: sqlstore.NewPGX(pool),
		pgx:   true,
		raw:   raw,
	}
}

func pgSQLBackend(t *testing.T) *backend {
	dsn, schema := pgSchema(t)
	// openPostgres creates the schema and its tables.
	pool, err := openPostgres(context.Background(), dsn, schema)
	require.NoError(t, err)
	pool.Close()
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.RuntimeParams["search_path"] = schema
	x := sqlx.NewDb(stdlib.OpenDB(*cfg), "pgx")
	t.Cleanup(func() { x.Close() })
	log := &stmtLog{}
	db, err := sqlstore.NewSQL(x, sqlstore.WithObserver(log.observe))
	require.NoError(t, err)
	other, err := sqlstore.NewSQL(x)
	require.NoError(t, err)
	return &backend{name: "postgres/database-sql", db: db, log: log, other: other, raw: x}
}

// stmtLog records what the observer sees, with helpers to count it.
type stmtLog struct{ StatementLog }

func (l *stmtLog) observe(ctx context.Context, s sqlstore.Statement) { l.Observe(ctx, s) }
func (l *stmtLog) reset()                                            { l.Reset() }
func (l *stmtLog) all() []sqlstore.Statement                         { return l.Statements() }

func (l *stmtLog) trips() int {
	seen := map[int]bool{}
	for _, s := range l.all() {
		seen[s.RoundTrip] = true
	}
	return len(seen)
}

// write is an INSERT, UPDATE or DELETE seen by the observer.
type write struct {
	verb  string   // INSERT, UPDATE or DELETE
	table string   // unquoted
	set   []string // the columns an UPDATE sets, in order
}

var (
	dmlRE = regexp.MustCompile(`^(?:WITH r AS \()?(INSERT INTO|UPDATE|DELETE FROM) "([^"]+)"(?: SET (.*?) WHERE )?`)
	setRE = regexp.MustCompile(`"([^"]+)" = `)
)

// parseWrite reports whether sql is an INSERT, UPDATE or DELETE (also
// wrapped by pgx for the version check) and which.
func parseWrite(sql string) (write, bool) {
	m := dmlRE.FindStringSubmatch(sql)
	if m == nil {
		return write{}, false
	}
	verb, _, _ := strings.Cut(m[1], " ")
	w := write{verb: verb, table: m[2]}
	for _, c := range setRE.FindAllStringSubmatch(m[3], -1) {
		w.set = append(w.set, c[1])
	}
	return w, true
}

// writes returns the successful writes recorded, in order.
func (l *stmtLog) writes() []write {
	var out []write
	for _, s := range l.all() {
		if w, ok := parseWrite(s.SQL); ok && s.Err == nil {
			out = append(out, w)
		}
	}
	return out
}

// sent is a statement's text and arguments.
type sent struct {
	sql  string
	args []any
}

// dml returns the INSERT, UPDATE and DELETE statements recorded, failed
// ones included, with their arguments.
func (l *stmtLog) dml() []sent {
	var out []sent
	for _, s := range l.all() {
		if _, ok := parseWrite(s.SQL); ok {
			out = append(out, sent{s.SQL, s.Args})
		}
	}
	return out
}
