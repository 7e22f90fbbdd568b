package infrastructure

import (
	"context"
	"database/sql"
	_ "embed" // the schema files
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/go-sql-driver/mysql"
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
	//go:embed schema/mysql.sql
	mysqlSchema string
)

// DefaultSchema is the PostgreSQL schema, or the MySQL database, Open
// works in when [Config.Schema] is empty.
const DefaultSchema = "dddkit_example"

// schemaMark is the comment that marks a PostgreSQL schema as created by
// this example, the only kind it ever drops. It holds no quote: it is
// written into a COMMENT statement as a literal.
const schemaMark = "created by the dddkit order example, which drops it when it starts afresh"

// ErrSchemaNotOwned reports a PostgreSQL schema that exists and was not
// created by this example: Open leaves it alone, neither dropping it nor
// creating tables in it.
var ErrSchemaNotOwned = errors.New("the schema exists and was not created by the order example")

// Config says which database [Open] opens.
type Config struct {
	// URL is empty for an embedded SQLite database, a postgres:// or
	// postgresql:// URL, or a mysql:// or mariadb:// URL
	// (mysql://user:password@host:3306/database).
	URL string
	// Schema is the PostgreSQL schema, or the MySQL database, to work in;
	// empty means [DefaultSchema]. It must be a lower-case SQL identifier.
	Schema string
	// Fresh empties the schema (or database) first, if Open created it at
	// an earlier run, by dropping it and creating it again. Without Fresh
	// the orders stored at earlier runs stay.
	Fresh bool
}

// Open opens the example's database, creates its tables from the
// embedded schema files, when they do not exist, and checks them against
// the mapping of orders with [CheckSchema]: tables left by an older
// version of the example fail here, with every difference listed, rather
// than at the first request.
//
// With an empty URL it is an embedded SQLite database (modernc.org/sqlite,
// foreign keys on) in a new temporary file, used through database/sql.
// With a postgres:// or postgresql:// URL it is PostgreSQL through a pgx
// pool, in the schema of the Config (set as the connections'
// search_path), prepared by [OpenPostgres]. With a mysql:// or mariadb://
// URL it is MySQL or MariaDB through database/sql (go-sql-driver/mysql),
// in the database named by the Config's Schema, prepared by [OpenMySQL].
// Any other URL is an error.
//
// opts configure the returned handle, for example
// [sqlstore.WithObserver] to watch the statements sent. closeDB releases
// the connections and removes the SQLite file.
func Open(ctx context.Context, cfg Config, opts ...sqlstore.Option) (db *sqlstore.DB, closeDB func() error, err error) {
	switch url := cfg.URL; {
	case url == "":
		x, closeDB, err := OpenSQLite(ctx)
		if err != nil {
			return nil, nil, err
		}
		db, err := sqlstore.NewSQL(x, opts...)
		if err != nil {
			return nil, nil, errors.Join(err, closeDB())
		}
		quiet, err := sqlstore.NewSQL(x)
		if err != nil {
			return nil, nil, errors.Join(err, closeDB())
		}
		if err := CheckSchema(ctx, quiet); err != nil {
			return nil, nil, errors.Join(err, closeDB())
		}
		return db, closeDB, nil
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		schema := cfg.Schema
		if schema == "" {
			schema = DefaultSchema
		}
		pool, err := OpenPostgres(ctx, url, schema, cfg.Fresh)
		if err != nil {
			return nil, nil, err
		}
		if err := CheckSchema(ctx, sqlstore.NewPGX(pool)); err != nil {
			pool.Close()
			return nil, nil, err
		}
		return sqlstore.NewPGX(pool, opts...), func() error { pool.Close(); return nil }, nil
	case strings.HasPrefix(url, "mysql://"), strings.HasPrefix(url, "mariadb://"):
		schema := cfg.Schema
		if schema == "" {
			schema = DefaultSchema
		}
		x, err := OpenMySQL(ctx, url, schema, cfg.Fresh)
		if err != nil {
			return nil, nil, err
		}
		quiet, err := sqlstore.NewSQL(x)
		if err == nil {
			err = CheckSchema(ctx, quiet)
		}
		var db *sqlstore.DB
		if err == nil {
			db, err = sqlstore.NewSQL(x, opts...)
		}
		if err != nil {
			return nil, nil, errors.Join(err, x.Close())
		}
		return db, x.Close, nil
	default:
		scheme, _, _ := strings.Cut(url, ":")
		return nil, nil, fmt.Errorf("open database: unsupported URL scheme %q: want an empty URL (embedded SQLite), postgres:// or mysql://", scheme)
	}
}

// OpenSQLite creates a SQLite database in a new temporary directory and
// its tables. The returned function closes it and removes the directory.
func OpenSQLite(ctx context.Context) (*sqlx.DB, func() error, error) {
	dir, err := os.MkdirTemp("", "dddkit-order-")
	if err != nil {
		return nil, nil, fmt.Errorf("open SQLite: %w", err)
	}
	dsn := "file:" + filepath.Join(dir, "orders.db") + "?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)"
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

// OpenPostgres prepares the PostgreSQL schema named schema, opens a pool
// whose connections use it as their search_path, and creates the tables in
// it, when they do not exist.
//
// A schema that does not exist is created, and marked with a comment as
// created by this example. A marked schema is used as it is, or, with
// fresh, dropped with all it holds and created again. A schema that exists
// and is not marked is never dropped nor written to: OpenPostgres fails
// with an error wrapping [ErrSchemaNotOwned].
func OpenPostgres(ctx context.Context, url, schema string, fresh bool) (*pgxpool.Pool, error) {
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("open PostgreSQL: invalid schema name %q: want a lower-case SQL identifier", schema)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL: %w", err)
	}
	if err := prepareSchema(ctx, cfg.ConnConfig.Copy(), schema, fresh); err != nil {
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

// prepareSchema creates schema if it is missing, or drops and creates it
// again if fresh is set and it bears the example's mark, in one
// transaction on a connection of its own. Concurrent calls for one schema
// wait for each other.
func prepareSchema(ctx context.Context, cfg *pgx.ConnConfig, schema string, fresh bool) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	q := pgx.Identifier{schema}.Sanitize()
	create := "CREATE SCHEMA " + q + "; COMMENT ON SCHEMA " + q + " IS '" + schemaMark + "'"
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "dddkit order example schema "+schema); err != nil {
			return err
		}
		var comment *string
		err := tx.QueryRow(ctx, "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1", schema).Scan(&comment)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			_, err = tx.Exec(ctx, create)
			return err
		case err != nil:
			return err
		case comment == nil || *comment != schemaMark:
			return fmt.Errorf("%w: %s", ErrSchemaNotOwned, schema)
		case fresh:
			_, err = tx.Exec(ctx, "DROP SCHEMA "+q+" CASCADE; "+create)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("prepare PostgreSQL schema %s: %w", schema, err)
	}
	return nil
}

// mysqlMark is the table that marks a MySQL database as created by this
// example, the only kind it ever drops: MySQL has no comment on a
// database.
const mysqlMark = "dddkit_example_created"

// OpenMySQL prepares the MySQL or MariaDB database named database on the
// server of url (a mysql:// or mariadb:// URL, whose own database is used
// only to connect), opens a pool of connections to it with the settings
// that sqlstore needs ([sqlstore.MySQLDSN]), and creates the tables in it,
// when they do not exist.
//
// A database that does not exist is created, and marked, by a table of
// its own, as created by this example. A marked database is used as it
// is, or, with fresh, dropped with all it holds and created again. A
// database that exists and is not marked is never dropped nor written
// to: OpenMySQL fails with an error wrapping [ErrSchemaNotOwned].
func OpenMySQL(ctx context.Context, url, database string, fresh bool) (*sqlx.DB, error) {
	if !schemaName.MatchString(database) {
		return nil, fmt.Errorf("open MySQL: invalid database name %q: want a lower-case SQL identifier", database)
	}
	dsn, err := sqlstore.MySQLDSN(url)
	if err != nil {
		return nil, fmt.Errorf("open MySQL: %w", err)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("open MySQL: %w", err)
	}
	if err := prepareDatabase(ctx, dsn, database, fresh); err != nil {
		return nil, err
	}
	cfg.DBName = database
	x, err := sqlx.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("open MySQL: %w", err)
	}
	// Without arguments, the driver sends the text as is: several
	// statements, which the DSN allows.
	if _, err := x.ExecContext(ctx, mysqlSchema); err != nil {
		return nil, errors.Join(fmt.Errorf("create the MySQL tables in database %s: %w", database, err), x.Close())
	}
	return x, nil
}

// prepareDatabase creates database if it is missing, or drops and creates
// it again if fresh is set and it bears the example's mark, on a
// connection of its own to the server of dsn. Concurrent calls for one
// database wait for each other, on a named lock of the server.
func prepareDatabase(ctx context.Context, dsn, database string, fresh bool) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("prepare MySQL database %s: %w", database, err)
		}
	}()
	x, err := sqlx.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer x.Close()
	conn, err := x.Connx(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	lock := "dddkit order example database " + database
	var got sql.NullInt64
	if err := conn.QueryRowxContext(ctx, "SELECT GET_LOCK(?, 60)", lock).Scan(&got); err != nil {
		return err
	}
	if got.Int64 != 1 {
		return fmt.Errorf("another run holds the lock %q", lock)
	}
	defer func() {
		_, rerr := conn.ExecContext(context.WithoutCancel(ctx), "DO RELEASE_LOCK(?)", lock)
		err = errors.Join(err, rerr)
	}()
	q := "`" + database + "`"
	create := "CREATE DATABASE " + q + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin; " +
		"CREATE TABLE " + q + "." + mysqlMark + " (note VARCHAR(255) NOT NULL); " +
		"INSERT INTO " + q + "." + mysqlMark + " (note) VALUES ('" + schemaMark + "')"
	var exists, marked int
	err = conn.QueryRowxContext(ctx, `SELECT
		(SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?),
		(SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?)`,
		database, database, mysqlMark).Scan(&exists, &marked)
	switch {
	case err != nil:
		return err
	case exists == 0:
		_, err = conn.ExecContext(ctx, create)
		return err
	case marked == 0:
		return fmt.Errorf("%w: %s", ErrSchemaNotOwned, database)
	case fresh:
		_, err = conn.ExecContext(ctx, "DROP DATABASE "+q+"; "+create)
		return err
	}
	return nil
}
