// Package testdb gives the tests of this module the PostgreSQL database
// they run on: the DSN from the environment (the test is skipped with one
// message everywhere when it is unset) and a schema of the test's own,
// named at random and dropped when the test ends, so that runs never
// collide and leave nothing behind.
package testdb

import (
	"context"
	"crypto/rand"
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

// Schema skips t without a DSN, else returns the DSN and the name of a new
// schema, prefix followed by random hex, which is dropped (with all it
// holds) when t ends. When create is set the schema is created; otherwise
// the code under test creates it.
func Schema(t testing.TB, prefix string, create bool) (dsn, schema string) {
	t.Helper()
	dsn = DSN(t)
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema = prefix + hex.EncodeToString(b[:])
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
