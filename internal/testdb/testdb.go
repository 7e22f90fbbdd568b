// Package testdb gives the tests of this module the databases they run on
// besides SQLite: PostgreSQL and MariaDB (or MySQL). Each takes its DSN
// from the environment; a test is skipped, with one message per database
// everywhere, when it is unset. Each test works in a schema (PostgreSQL)
// or a database (MariaDB) of its own, named at random and dropped when the
// test ends, so that runs never collide and leave nothing behind. The
// cache's tests get their Redis server the same way: its address from the
// environment, or a skip with one message.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// DSNEnv is the environment variable that holds the PostgreSQL DSN of the
// tests.
const DSNEnv = "DDDKIT_TEST_POSTGRES_DSN"

// SkipPostgres is the message of a PostgreSQL test skipped for want of a
// DSN; CI fails when it finds it in a run that set the DSN.
const SkipPostgres = DSNEnv + " is not set: skipping the PostgreSQL suite"

// DSN returns the PostgreSQL DSN of the tests, or skips t when there is
// none.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		t.Skip(SkipPostgres)
	}
	return dsn
}

// RedisEnv is the environment variable that holds the address (host:port)
// of the Redis server of the tests.
const RedisEnv = "DDDKIT_TEST_REDIS_ADDR"

// SkipRedis is the message of a Redis test skipped for want of an
// address; CI fails when it finds it in a run that set the address.
const SkipRedis = RedisEnv + " is not set: skipping the Redis suite"

// RedisAddr returns the address of the Redis server of the tests, or
// skips t when there is none.
func RedisAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(RedisEnv)
	if addr == "" {
		t.Skip(SkipRedis)
	}
	return addr
}

// Name returns prefix followed by 16 random hex digits: a name of the
// test's own (a schema, a database, a prefix of keys).
func Name(prefix string) string { return randomName(prefix) }

// randomName returns prefix followed by 16 random hex digits.
func randomName(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Schema skips t without a DSN, else returns the DSN and the name of a new
// schema, prefix followed by random hex, which is dropped (with all it
// holds) when t ends. When create is set the schema is created; otherwise
// the code under test creates it.
func Schema(t testing.TB, prefix string, create bool) (dsn, schema string) {
	t.Helper()
	dsn = DSN(t)
	schema = randomName(prefix)
	ctx := context.Background()
	if create {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect to create schema %s: %v", schema, err)
		}
		_, err = c.Exec(ctx, "CREATE SCHEMA "+schema)
		c.Close(ctx)
		if err != nil {
			t.Fatalf("create schema %s: %v", schema, err)
		}
	}
	t.Cleanup(func() {
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

// MySQLDSNEnv is the environment variable that holds the DSN of the
// MariaDB (or MySQL) server of the tests, in the form of
// github.com/go-sql-driver/mysql: root@tcp(127.0.0.1:3306)/test.
const MySQLDSNEnv = "DDDKIT_TEST_MYSQL_DSN"

// SkipMySQL is the message of a MariaDB test skipped for want of a DSN;
// CI fails when it finds it in a run that set the DSN.
const SkipMySQL = MySQLDSNEnv + " is not set: skipping the MariaDB suite"

// MySQLServerDSN returns the MariaDB DSN of the tests as the environment
// gives it, or skips t when there is none.
func MySQLServerDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(MySQLDSNEnv)
	if dsn == "" {
		t.Skip(SkipMySQL)
	}
	return dsn
}

// MySQLDatabase skips t without a MariaDB DSN, else returns a DSN and the
// name of a new database, prefix followed by random hex, which is dropped
// (with all it holds) when t ends. When create is set the database is
// created and dsn points to it; otherwise the code under test creates it,
// and dsn is the DSN of the environment. The tests open it with the
// options that sqlstore needs, which sqlstore.MySQLDSN adds.
func MySQLDatabase(t testing.TB, prefix string, create bool) (dsn, database string) {
	t.Helper()
	dsn = MySQLServerDSN(t)
	server, err := mysqlDatabase(dsn, "")
	if err != nil {
		t.Fatalf("%s: %v", MySQLDSNEnv, err)
	}
	database = randomName(prefix)
	exec := func(q string) error {
		db, err := sql.Open("mysql", server)
		if err != nil {
			return err
		}
		defer db.Close()
		_, err = db.Exec(q)
		return err
	}
	t.Cleanup(func() {
		if err := exec("DROP DATABASE IF EXISTS " + database); err != nil {
			t.Errorf("drop database %s: %v", database, err)
		}
	})
	if !create {
		return dsn, database
	}
	if err := exec("CREATE DATABASE " + database + " CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("create database %s: %v", database, err)
	}
	dsn, err = mysqlDatabase(server, database)
	if err != nil {
		t.Fatalf("%s: %v", MySQLDSNEnv, err)
	}
	return dsn, database
}
