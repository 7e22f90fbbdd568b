package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewSQLDialect(t *testing.T) {
	for driver, want := range map[string]*dialect{"pgx": postgres, "pgx/v5": postgres, "postgres": postgresNoArray, "sqlite": sqlite, "sqlite3": sqlite, "mysql": mysqlDialect} {
		db, err := NewSQL(sqlx.NewDb(nil, driver))
		require.NoError(t, err, driver)
		assert.Same(t, want, db.dialect, driver)
	}
	_, err := NewSQL(sqlx.NewDb(nil, "oracle"))
	assert.EqualError(t, err, `sqlstore: unknown database/sql driver "oracle" (want pgx, postgres, sqlite, sqlite3 or mysql)`)
	_, err = NewSQL(nil)
	assert.Error(t, err)
}

// TestNewSQLDB runs a save and a load through a plain *sql.DB.
func TestNewSQLDB(t *testing.T) {
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "t.db")+"?_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	defer raw.Close()
	for _, s := range schemaDDL {
		_, err := raw.Exec(s)
		require.NoError(t, err)
	}
	db, err := NewSQLDB(raw, "sqlite")
	require.NoError(t, err)
	assert.Same(t, sqlite, db.dialect)
	repo, err := NewRepository[*order, orderID](db, orderMapping(t))
	require.NoError(t, err)
	o := newOrder(1, "alice", &item{id: 1, sku: "A", quantity: 2})
	require.NoError(t, repo.Save(context.Background(), o))
	got, err := NewStore[*order, orderID](db, orderMapping(t)).Select(context.Background(), 1)
	require.NoError(t, err)
	assert.Equal(t, stored(o), got)

	_, err = NewSQLDB(nil, "sqlite")
	assert.Error(t, err)
	_, err = NewSQLDB(raw, "oracle")
	assert.ErrorContains(t, err, "unknown database/sql driver")
}

// TestNilHandles checks that missing handles are errors, not panics.
func TestNilHandles(t *testing.T) {
	ctx := context.Background()
	m := orderMapping(t)
	var nilDB *DB
	for name, db := range map[string]*DB{"nil DB": nilDB, "nil conn": NewPGX(nil), "nil pool": NewPGX((*pgxpool.Pool)(nil))} {
		t.Run(name, func(t *testing.T) {
			s := NewStore[*order, orderID](db, m)
			_, err := s.Select(ctx, 1)
			assert.ErrorContains(t, err, "sqlstore: select orders: ")
			assert.Error(t, s.Insert(ctx, newOrder(1, "alice")))
			assert.Error(t, s.Delete(ctx, newOrder(1, "alice"), 0))
			assert.Error(t, db.InTx(ctx, func(context.Context) error { return nil }))
			_, err = NewRepository[*order, orderID](db, m)
			assert.Error(t, err)
		})
	}
	s := NewStore[*order, orderID](NewPGX(noBatches{}), nil)
	_, err := s.Select(ctx, 1)
	assert.ErrorContains(t, err, "nil *sqlstore.Mapping")
	assert.ErrorContains(t, s.Insert(ctx, nil), "nil *sqlstore.Mapping")

	s = NewStore[*order, orderID](NewPGX(noBatches{}), m)
	assert.ErrorContains(t, s.Insert(ctx, nil), "nil aggregate")
	assert.ErrorContains(t, s.Delete(ctx, nil, 0), "nil aggregate")
	assert.ErrorContains(t, NewPGX(noBatches{}).InTx(ctx, nil), "nil function")
}

func TestSlogObserver(t *testing.T) {
	var buf bytes.Buffer
	obs := SlogObserver(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	obs(context.Background(), Statement{SQL: `UPDATE "t" SET "a" = $1`, Args: []any{1}, RoundTrip: 7})
	obs(context.Background(), Statement{SQL: "COMMIT", RoundTrip: 8, Err: errors.New("boom")})
	out := buf.String()
	assert.Contains(t, out, `level=DEBUG msg="sqlstore statement" round_trip=7 sql="UPDATE \"t\" SET \"a\" = $1" args=[1]`)
	assert.Contains(t, out, `level=WARN msg="sqlstore statement" round_trip=8 sql=COMMIT`)
	assert.Contains(t, out, `err=boom`)
	SlogObserver(nil)(context.Background(), Statement{}) // no logger: nothing, no panic

	// At the default Info level, only the failure is written.
	buf.Reset()
	obs = SlogObserver(slog.New(slog.NewTextHandler(&buf, nil)))
	obs(context.Background(), Statement{SQL: `UPDATE "t" SET "a" = $1`, Args: []any{1}, RoundTrip: 9})
	obs(context.Background(), Statement{SQL: "COMMIT", RoundTrip: 10, Err: errors.New("boom")})
	assert.NotContains(t, buf.String(), "round_trip=9")
	assert.Contains(t, buf.String(), "round_trip=10")
}

// A second aggregate: an unexported int32 version, and children held in a
// map of struct values keyed by their identity.

type basket struct {
	id      int64  `db:"id"`
	owner   string `db:"owner"`
	lines   map[itemID]item
	version int32 `db:"version" ddd:"version"`
}

func (b *basket) ID() int64 { return b.id }

var basketDDL = []string{
	`CREATE TABLE baskets (id BIGINT PRIMARY KEY, owner TEXT NOT NULL, version INTEGER NOT NULL)`,
	`CREATE TABLE basket_lines (
		basket_id BIGINT NOT NULL REFERENCES baskets (id),
		id BIGINT NOT NULL,
		sku TEXT NOT NULL,
		quantity INTEGER NOT NULL,
		PRIMARY KEY (basket_id, id)
	)`,
}

func TestMapOfValues(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		for _, s := range basketDDL {
			b.raw.exec(t, s)
		}
		m, err := NewMapping[*basket](Table{Name: "baskets"}, Child{Field: "lines", Table: "basket_lines", ParentKey: "basket_id"})
		require.NoError(t, err)
		repo, err := NewRepository[*basket, int64](b.db, m)
		require.NoError(t, err)
		load := func() *basket {
			got, err := NewStore[*basket, int64](b.quiet, m).Select(ctx, 1)
			require.NoError(t, err)
			return got
		}

		bk := &basket{id: 1, owner: "alice", lines: map[itemID]item{
			1: {id: 1, sku: "A", quantity: 1},
			2: {id: 2, sku: "B", quantity: 2},
		}}
		require.NoError(t, repo.Save(ctx, bk))
		assert.Equal(t, bk, load())

		bk, err = repo.Find(ctx, 1)
		require.NoError(t, err)
		bk.lines[1] = item{id: 1, sku: "A", quantity: 5}
		delete(bk.lines, 2)
		bk.lines[3] = item{id: 3, sku: "C", quantity: 3}
		require.NoError(t, repo.Save(ctx, bk))
		assert.EqualValues(t, 1, bk.version)
		assert.Equal(t, bk, load())

		empty := &basket{id: 2, owner: "bob"}
		require.NoError(t, repo.Save(ctx, empty))
		got, err := NewStore[*basket, int64](b.quiet, m).Select(ctx, 2)
		require.NoError(t, err)
		assert.NotNil(t, got.lines, "a map collection is loaded as an empty map, never nil")
		assert.Empty(t, got.lines)
	})
}

// TestPGXConn runs the store over a single *pgx.Conn, and checks that a
// load failing inside its snapshot transaction leaves the connection
// usable.
func TestPGXConn(t *testing.T) {
	dsn, schema := pgSchema(t)
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.RuntimeParams["search_path"] = schema
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	for _, s := range schemaDDL {
		_, err := conn.Exec(ctx, s)
		require.NoError(t, err)
	}
	// A view whose rows fail to compute: the children's SELECT fails after
	// the root's succeeded.
	_, err = conn.Exec(ctx, `CREATE VIEW bad_items AS SELECT order_id, id, sku, quantity / 0 AS quantity FROM order_items`)
	require.NoError(t, err)

	db := NewPGX(conn)
	repo, err := NewRepository[*order, orderID](db, orderMapping(t))
	require.NoError(t, err)
	o := newOrder(1, "alice", threeItems()...)
	require.NoError(t, repo.Save(ctx, o))
	require.NoError(t, repo.Update(ctx, 1, func(_ context.Context, o *order) error {
		o.setQuantity(1, 3)
		return nil
	}))

	bad, err := NewMapping[*order](Table{Name: "orders"}, Child{Field: "items", Table: "bad_items", ParentKey: "order_id"})
	require.NoError(t, err)
	_, err = NewStore[*order, orderID](db, bad).Select(ctx, 1)
	require.ErrorContains(t, err, "division by zero")
	assert.EqualValues(t, 'I', conn.PgConn().TxStatus(), "the snapshot transaction was rolled back")

	got, err := repo.Find(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, 3, got.item(1).quantity)
}
