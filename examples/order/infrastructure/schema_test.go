package infrastructure_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/order/domain"
	"github.com/dddkit/dddkit/examples/order/infrastructure"
	"github.com/dddkit/dddkit/examples/order/infrastructure/infratest"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

// The schema files pass the schema check.
func TestSchemaFilesPassCheck(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		require.NoError(t, infrastructure.CheckSchema(ctx(), b.DB))
	})
}

// A column missing from the tables fails the check, which names it.
func TestSchemaCheckFindsMissingColumn(t *testing.T) {
	b := infratest.SQLite(t)
	_, err := b.Raw.Exec(`ALTER TABLE orders DROP COLUMN recipient_phone`)
	require.NoError(t, err)
	err = infrastructure.CheckSchema(ctx(), b.DB)
	require.ErrorIs(t, err, sqlstore.ErrSchema)
	var se *sqlstore.SchemaError
	require.True(t, errors.As(err, &se))
	require.Equal(t, []sqlstore.Mismatch{{Table: "orders", Column: "recipient_phone", Problem: "the column of the field recipient.Phone does not exist"}}, se.Mismatches)
}

// The tables that sqlstore writes from the mapping, in an empty database,
// pass the check and store orders.
func TestSchemaDDL(t *testing.T) {
	run := func(t *testing.T, d sqlstore.Database, exec func(string), db *sqlstore.DB) {
		ddl, err := infrastructure.SchemaDDL(d)
		require.NoError(t, err)
		for s := range strings.SplitSeq(ddl, ";\n") {
			if s = strings.TrimSpace(s); s != "" {
				exec(s)
			}
		}
		require.NoError(t, infrastructure.CheckSchema(ctx(), db))
		orders, err := infrastructure.NewOrderRepository(db)
		require.NoError(t, err)
		o, err := domain.NewOrder(1, "ada", domain.RecipientInfo{Name: "Ada", Phone: "1", Address: "London"}, domain.ItemSpec{Product: "tea", Quantity: 2, UnitPrice: 300})
		require.NoError(t, err)
		require.NoError(t, orders.Save(ctx(), o))
		require.NoError(t, orders.Update(ctx(), 1, func(o *domain.Order) error {
			return o.ApplyDiscount(o.Items()[0].ID(), "TEN", 10)
		}))
		got, err := orders.Find(context.Background(), 1)
		require.NoError(t, err)
		require.Equal(t, domain.Money(540), got.Total(), "the discount is stored")
	}
	t.Run("sqlite", func(t *testing.T) {
		x := sqlx.MustOpen("sqlite", "file:"+t.TempDir()+"/ddl.db?_pragma=foreign_keys(1)")
		t.Cleanup(func() { x.Close() })
		db, err := sqlstore.NewSQL(x)
		require.NoError(t, err)
		run(t, sqlstore.SQLite, func(s string) { x.MustExec(s) }, db)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn, schema := infratest.PostgresSchema(t)
		cfg, err := pgxpool.ParseConfig(dsn)
		require.NoError(t, err)
		pool, err := pgxpool.NewWithConfig(ctx(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		_, err = pool.Exec(ctx(), "CREATE SCHEMA "+schema)
		require.NoError(t, err)
		pool.Close()
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
		pool, err = pgxpool.NewWithConfig(ctx(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		run(t, sqlstore.PostgreSQL, func(s string) {
			_, err := pool.Exec(ctx(), s)
			require.NoError(t, err, s)
		}, sqlstore.NewPGX(pool))
	})
	t.Run("mariadb", func(t *testing.T) {
		x := infratest.EmptyMariaDB(t)
		db, err := sqlstore.NewSQL(x)
		require.NoError(t, err)
		run(t, sqlstore.MySQL, func(s string) {
			_, err := x.Exec(s)
			require.NoError(t, err, s)
		}, db)
	})
}

// Open refuses tables that do not match the mapping, listing the
// differences: here, tables left by an older version.
func TestOpenChecksSchema(t *testing.T) {
	dsn, schema := infratest.PostgresSchema(t)
	pool, err := infrastructure.OpenPostgres(ctx(), dsn, schema, false)
	require.NoError(t, err)
	_, err = pool.Exec(ctx(), `ALTER TABLE orders DROP COLUMN last_item_id; ALTER TABLE order_items ALTER COLUMN product TYPE bigint USING 0`)
	pool.Close()
	require.NoError(t, err)
	_, _, err = infrastructure.Open(ctx(), infrastructure.Config{URL: dsn, Schema: schema})
	require.ErrorIs(t, err, sqlstore.ErrSchema)
	var se *sqlstore.SchemaError
	require.True(t, errors.As(err, &se))
	require.Len(t, se.Mismatches, 2, "%v", err)
}

// TestOpenChecksSchema on MariaDB.
func TestOpenChecksSchemaMySQL(t *testing.T) {
	dsn, database := infratest.MySQLDatabase(t)
	x, err := infrastructure.OpenMySQL(ctx(), dsn, database, false)
	require.NoError(t, err)
	_, err = x.Exec(`ALTER TABLE orders DROP COLUMN last_item_id; ALTER TABLE order_items MODIFY product BIGINT NOT NULL`)
	x.Close()
	require.NoError(t, err)
	_, _, err = infrastructure.Open(ctx(), infrastructure.Config{URL: infratest.MySQLURL(t, dsn), Schema: database})
	require.ErrorIs(t, err, sqlstore.ErrSchema)
	var se *sqlstore.SchemaError
	require.True(t, errors.As(err, &se))
	require.Len(t, se.Mismatches, 2, "%v", err)
}

// The README shows the schema that DDL writes for the example.
func TestReadmeShowsDDL(t *testing.T) {
	ddl, err := infrastructure.SchemaDDL(sqlstore.PostgreSQL)
	require.NoError(t, err)
	readme, err := os.ReadFile("../../../README.md")
	require.NoError(t, err)
	require.Contains(t, string(readme), "```sql\n"+ddl+"```\n")
}
