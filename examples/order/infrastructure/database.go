package infrastructure

import (
	"context"
	_ "embed" // the schema files
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/dddkit/dddkit/repository/sqlstore"
)

// The schema files, applied by Open.
var (
	//go:embed schema/sqlite.sql
	sqliteSchema string
	//go:embed schema/postgres.sql
	postgresSchema string
)

// Schema is the PostgreSQL schema Open works in. Open drops it, with all
// it holds, and creates it again, so that every run starts empty.
const Schema = "dddkit_example"

// Open opens the example's database and creates its tables from the
// embedded schema files.
//
// With an empty url it is an embedded SQLite database (modernc.org/sqlite,
// foreign keys on) in a temporary file, used through database/sql. With a
// postgres:// or postgresql:// url it is PostgreSQL through a pgx pool, in
// the schema [Schema] (set as the connections' search_path), dropped and
// created again first. Any other url is an error.
//
// opts configure the returned handle, for example
// [sqlstore.WithObserver] to watch the statements sent. closeDB releases
// the connections and removes the SQLite file.
func Open(ctx context.Context, url string, opts ...sqlstore.Option) (db *sqlstore.DB, closeDB func() error, err error) {
	switch {
	case url == "":
		x, closeDB, err := openSQLite(ctx)
		if err != nil {
			return nil, nil, err
		}
		db, err := sqlstore.NewSQL(x, opts...)
		if err != nil {
			return nil, nil, errors.Join(err, closeDB())
		}
		return db, closeDB, nil
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		pool, err := openPostgres(ctx, url, Schema)
		if err != nil {
			return nil, nil, err
		}
		return sqlstore.NewPGX(pool, opts...), func() error { pool.Close(); return nil }, nil
	default:
		scheme, _, _ := strings.Cut(url, ":")
		return nil, nil, fmt.Errorf("open database: unsupported URL scheme %q: want an empty URL (embedded SQLite) or postgres://", scheme)
	}
}

// openSQLite creates a SQLite database in a new temporary directory and its
// tables. The returned function closes it and removes the directory.
func openSQLite(ctx context.Context) (*sqlx.DB, func() error, error) {
	dir, err := os.MkdirTemp("", "dddkit-order-")
	if err != nil {
		return nil, nil, fmt.Errorf("open SQLite: %w", err)
	}
	dsn := "file:" + filepath.Join(dir, "orders.db") + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)"
	x, err := sqlx.Open("sqlite", dsn)
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("open SQLite: %w", err), os.RemoveAll(dir))
	}
	closeDB := func() error { return errors.Join(x.Close(), os.RemoveAll(dir)) }
	if _, err := x.ExecContext(ctx, sqliteSchema); err != nil {
		return nil, nil, errors.Join(fmt.Errorf("create the SQLite tables: %w", err), closeDB())
	}
	return x, closeDB, nil
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// openPostgres drops and creates the PostgreSQL schema named schema, opens
// a pool whose connections use it as their search_path, and creates the
// tables in it.
func openPostgres(ctx context.Context, url, schema string) (*pgxpool.Pool, error) {
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("open PostgreSQL: invalid schema name %q", schema)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL: %w", err)
	}
	if err := recreateSchema(ctx, cfg.ConnConfig.Copy(), schema); err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL: %w", err)
	}
	// Without arguments, pgx sends the text as is: several statements.
	if _, err := pool.Exec(ctx, postgresSchema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("create the PostgreSQL tables in schema %s: %w", schema, err)
	}
	return pool, nil
}

// recreateSchema drops schema, if it exists, and creates it, on a
// connection of its own.
func recreateSchema(ctx context.Context, cfg *pgx.ConnConfig, schema string) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	q := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+q+" CASCADE; CREATE SCHEMA "+q); err != nil {
		return fmt.Errorf("recreate PostgreSQL schema %s: %w", schema, err)
	}
	return nil
}
