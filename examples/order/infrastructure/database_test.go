package infrastructure_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/order/application"
	"github.com/dddkit/dddkit/examples/order/domain"
	"github.com/dddkit/dddkit/examples/order/infrastructure"
	"github.com/dddkit/dddkit/examples/order/infrastructure/infratest"
)

// TestPostgresSchemaOwnership checks what Open does to PostgreSQL schemas:
// it creates a missing one, keeps what a schema it created holds, empties
// it only when asked to start afresh, and leaves a schema it did not create
// alone.
func TestPostgresSchemaOwnership(t *testing.T) {
	dsn, schema := infratest.PostgresSchema(t)
	cfg := infrastructure.Config{URL: dsn, Schema: schema}
	orders := func(cfg infrastructure.Config) []domain.OrderID {
		t.Helper()
		db, closeDB, err := infrastructure.Open(ctx(), cfg)
		require.NoError(t, err)
		defer func() { require.NoError(t, closeDB()) }()
		repo, err := infrastructure.NewOrderRepository(db)
		require.NoError(t, err)
		list, err := repo.ListByCustomer(ctx(), "ada", 0, 0)
		require.NoError(t, err)
		var ids []domain.OrderID
		for _, o := range list {
			ids = append(ids, o.ID())
		}
		if len(ids) == 0 {
			r, err := domain.NewRecipientInfo("Ada", "", "London")
			require.NoError(t, err)
			_, err = application.NewService(repo).PlaceOrder(ctx(), 1, "ada", r, domain.ItemSpec{Product: "tea", Quantity: 1, UnitPrice: 350})
			require.NoError(t, err)
		}
		return ids
	}
	require.Empty(t, orders(cfg), "a new schema, created")
	require.Equal(t, []domain.OrderID{1}, orders(cfg), "the schema it created is kept, with its orders")
	cfg.Fresh = true
	require.Empty(t, orders(cfg), "afresh: the schema it created is dropped and created again")

	// A schema that exists without the example's mark is refused and left
	// as it is, afresh or not.
	_, foreign := infratest.PostgresSchema(t)
	conn, err := pgx.Connect(ctx(), dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx(), "CREATE SCHEMA "+foreign+"; CREATE TABLE "+foreign+".keep (v int); INSERT INTO "+foreign+".keep VALUES (42)")
	require.NoError(t, err)
	for _, fresh := range []bool{false, true} {
		_, _, err := infrastructure.Open(ctx(), infrastructure.Config{URL: dsn, Schema: foreign, Fresh: fresh})
		require.ErrorIs(t, err, infrastructure.ErrSchemaNotOwned)
		require.ErrorContains(t, err, foreign)
	}
	var v int
	require.NoError(t, conn.QueryRow(ctx(), "SELECT v FROM "+foreign+".keep").Scan(&v))
	require.Equal(t, 42, v)
	var tables int
	require.NoError(t, conn.QueryRow(ctx(), "SELECT count(*) FROM pg_tables WHERE schemaname = $1", foreign).Scan(&tables))
	require.Equal(t, 1, tables, "no table created in it")
}

// TestMySQLDatabaseOwnership checks what Open does to MariaDB databases,
// as TestPostgresSchemaOwnership does to PostgreSQL schemas: it creates a
// missing one, keeps what a database it created holds, empties it only
// when asked to start afresh, and leaves a database it did not create
// alone.
func TestMySQLDatabaseOwnership(t *testing.T) {
	dsn, database := infratest.MySQLDatabase(t)
	url := infratest.MySQLURL(t, dsn)
	cfg := infrastructure.Config{URL: url, Schema: database}
	orders := func(cfg infrastructure.Config) []domain.OrderID {
		t.Helper()
		db, closeDB, err := infrastructure.Open(ctx(), cfg)
		require.NoError(t, err)
		defer func() { require.NoError(t, closeDB()) }()
		repo, err := infrastructure.NewOrderRepository(db)
		require.NoError(t, err)
		list, err := repo.ListByCustomer(ctx(), "ada", 0, 0)
		require.NoError(t, err)
		var ids []domain.OrderID
		for _, o := range list {
			ids = append(ids, o.ID())
		}
		if len(ids) == 0 {
			r, err := domain.NewRecipientInfo("Ada", "", "London")
			require.NoError(t, err)
			_, err = application.NewService(repo).PlaceOrder(ctx(), 1, "ada", r, domain.ItemSpec{Product: "tea", Quantity: 1, UnitPrice: 350})
			require.NoError(t, err)
		}
		return ids
	}
	require.Empty(t, orders(cfg), "a new database, created")
	require.Equal(t, []domain.OrderID{1}, orders(cfg), "the database it created is kept, with its orders")
	cfg.Fresh = true
	require.Empty(t, orders(cfg), "afresh: the database it created is dropped and created again")

	// A database that exists without the example's mark is refused and
	// left as it is, afresh or not.
	_, foreign := infratest.MySQLDatabase(t)
	conn, err := sql.Open("mysql", dsn)
	require.NoError(t, err)
	defer conn.Close()
	for _, q := range []string{"CREATE DATABASE " + foreign, "CREATE TABLE " + foreign + ".keep (v int)", "INSERT INTO " + foreign + ".keep VALUES (42)"} {
		_, err = conn.Exec(q)
		require.NoError(t, err, q)
	}
	for _, fresh := range []bool{false, true} {
		_, _, err := infrastructure.Open(ctx(), infrastructure.Config{URL: url, Schema: foreign, Fresh: fresh})
		require.ErrorIs(t, err, infrastructure.ErrSchemaNotOwned)
		require.ErrorContains(t, err, foreign)
	}
	var v int
	require.NoError(t, conn.QueryRow("SELECT v FROM "+foreign+".keep").Scan(&v))
	require.Equal(t, 42, v)
	var tables int
	require.NoError(t, conn.QueryRow("SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", foreign).Scan(&tables))
	require.Equal(t, 1, tables, "no table created in it")
}

func TestOpenRejectsBadSchemaName(t *testing.T) {
	for _, name := range []string{"Upper", "a-b", "x; DROP SCHEMA public", `"q"`} {
		_, _, err := infrastructure.Open(ctx(), infrastructure.Config{URL: "postgres://127.0.0.1:1/none", Schema: name})
		require.ErrorContains(t, err, "invalid schema name", name)
	}
}

func TestOpenRejectsUnknownURL(t *testing.T) {
	_, _, err := infrastructure.Open(ctx(), infrastructure.Config{URL: "sqlserver://localhost/x"})
	require.ErrorContains(t, err, `unsupported URL scheme "sqlserver"`)
}
