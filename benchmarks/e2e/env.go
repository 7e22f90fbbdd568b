// Package e2e runs the end-to-end benchmarks on PostgreSQL and MariaDB:
// saving an order after a change and loading it, by dddkit and by the
// other ways a Go program persists an aggregate (on PostgreSQL:
// hand-written SQL, a naive save, a delete-and-reinsert of the children,
// GORM, bun; on MariaDB: hand-written SQL through the same driver). Every
// contender works on its own connection pool with the same session
// settings, on its own order, in one schema (PostgreSQL) or database
// (MariaDB) created for the run and dropped afterwards; after the run the
// rows of each contender's order are compared with the state it should
// have.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/benchmarks/internal/model"
)

// DSNVar is the environment variable that holds the PostgreSQL URL.
const DSNVar = "DDDKIT_TEST_POSTGRES_DSN"

// Settings are the session settings of every connection of every
// contender, sent in the startup packet. The wait for the disk at commit
// costs the same to every contender and is the noisiest part of a save on
// a shared machine, so it is turned off for all of them alike.
var Settings = map[string]string{
	"synchronous_commit": "off",
}

const schemaSQL = `
CREATE TABLE orders (
    id                BIGINT PRIMARY KEY,
    customer          TEXT   NOT NULL,
    recipient_name    TEXT   NOT NULL,
    recipient_phone   TEXT   NOT NULL,
    recipient_address TEXT   NOT NULL,
    total             BIGINT NOT NULL CHECK (total >= 0),
    status            TEXT   NOT NULL,
    version           BIGINT NOT NULL
);
CREATE TABLE order_items (
    order_id   BIGINT  NOT NULL REFERENCES orders (id),
    id         BIGINT  NOT NULL,
    product    TEXT    NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    unit_price BIGINT  NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (order_id, id),
    UNIQUE (order_id, product)
);`

// Env is a schema of its own on the PostgreSQL server, with the order
// example's tables.
type Env struct {
	// Schema is the name of the schema.
	Schema string
	base   *url.URL
	admin  *pgx.Conn
	nextID model.OrderID
}

// Open creates a new schema and its tables on the server at dsn (a
// postgres:// URL).
func Open(ctx context.Context, dsn string) (*Env, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("%s: want a postgres:// URL, got %q", DSNVar, dsn)
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	e := &Env{Schema: fmt.Sprintf("dddkit_bench_%d_%s", os.Getpid(), hex.EncodeToString(b[:])), base: u}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	e.admin, err = pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	q := pgx.Identifier{e.Schema}.Sanitize()
	if _, err := e.admin.Exec(ctx, "CREATE SCHEMA "+q+"; SET search_path = "+q+";"+schemaSQL); err != nil {
		_ = e.admin.Close(ctx)
		return nil, fmt.Errorf("create schema %s: %w", e.Schema, err)
	}
	return e, nil
}

// Close drops the schema with all it holds.
func (e *Env) Close(ctx context.Context) error {
	_, err := e.admin.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{e.Schema}.Sanitize()+" CASCADE")
	return errors.Join(err, e.admin.Close(ctx))
}

// NewOrderID returns an order identity not used before in e.
func (e *Env) NewOrderID() model.OrderID {
	e.nextID++
	return e.nextID
}

// DSN returns the URL a contender connects with: the schema as its
// search_path and [Settings]. A non-empty hostport replaces the server's
// address (a counting proxy), with TLS off so that the proxy can read the
// protocol.
func (e *Env) DSN(hostport string) string {
	u := *e.base
	q := u.Query()
	q.Set("search_path", e.Schema)
	for k, v := range Settings {
		q.Set(k, v)
	}
	if hostport != "" {
		u.Host = hostport
		q.Set("sslmode", "disable")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// ServerAddr returns the server's host:port from the URL.
func (e *Env) ServerAddr() string {
	h, p := e.base.Hostname(), e.base.Port()
	if h == "" {
		h = "127.0.0.1"
	}
	if p == "" {
		p = "5432"
	}
	return h + ":" + p
}

// ServerVersion returns the server's version string.
func (e *Env) ServerVersion(ctx context.Context) (string, error) {
	var v string
	err := e.admin.QueryRow(ctx, "SELECT version()").Scan(&v)
	return v, err
}

// Stored reads order id from the tables.
func (e *Env) Stored(ctx context.Context, id model.OrderID) (*model.Order, error) {
	o := &model.Order{Number: id}
	err := e.admin.QueryRow(ctx, `SELECT customer, recipient_name, recipient_phone, recipient_address, total, status, version
		FROM orders WHERE id = $1`, int64(id)).Scan(&o.Customer, &o.Recipient.Name, &o.Recipient.Phone,
		&o.Recipient.Address, &o.Total, &o.Status, &o.Version)
	if err != nil {
		return nil, fmt.Errorf("read order %d: %w", id, err)
	}
	rows, err := e.admin.Query(ctx, `SELECT id, product, quantity, unit_price FROM order_items WHERE order_id = $1 ORDER BY id`, int64(id))
	if err != nil {
		return nil, err
	}
	o.Items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*model.Item, error) {
		it := new(model.Item)
		return it, r.Scan(&it.ID, &it.Product, &it.Quantity, &it.UnitPrice)
	})
	return o, err
}

// Check compares the stored order want.Number with want, its version
// included, and describes the first difference.
func (e *Env) Check(ctx context.Context, want *model.Order) error {
	got, err := e.Stored(ctx, want.Number)
	if err != nil {
		return err
	}
	return Same(got, want)
}

// Same describes the first difference between got and want, versions
// included, or returns nil.
func Same(got, want *model.Order) error {
	if got.Version != want.Version {
		return fmt.Errorf("version %d, want %d", got.Version, want.Version)
	}
	if len(got.Items) != len(want.Items) {
		return fmt.Errorf("%d items, want %d", len(got.Items), len(want.Items))
	}
	for i := range got.Items {
		if *got.Items[i] != *want.Items[i] {
			return fmt.Errorf("item %+v, want %+v", *got.Items[i], *want.Items[i])
		}
	}
	if !model.EqualHand(got, want) {
		return fmt.Errorf("order row %+v, want %+v", *got, *want)
	}
	return nil
}

// RowCounts returns the rows inserted, updated and deleted in the tables
// of the schema, from PostgreSQL's cumulative statistics
// (pg_stat_user_tables).
func (e *Env) RowCounts(ctx context.Context) (int64, error) {
	var n int64
	_, _ = e.admin.Exec(ctx, "SELECT pg_stat_clear_snapshot()")
	err := e.admin.QueryRow(ctx, `SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint
		FROM pg_stat_user_tables WHERE schemaname = $1`, e.Schema).Scan(&n)
	return n, err
}

// Setting returns a session setting as a new connection with the
// contenders' settings sees it.
func (e *Env) Setting(ctx context.Context, name string) (string, error) {
	c, err := pgx.Connect(ctx, e.DSN(""))
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	var v string
	err = c.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v)
	return v, err
}

// Name implements [Backend].
func (e *Env) Name() string { return "PostgreSQL" }

// Contenders implements [Backend].
func (e *Env) Contenders() []Contender { return Contenders() }

// Insert implements [Backend].
func (e *Env) Insert(ctx context.Context, o *model.Order) error {
	pool, err := newPool(ctx, e.DSN(""), 1)
	if err != nil {
		return err
	}
	defer pool.Close()
	return insertPlain(ctx, pool, o)
}

func (e *Env) newCounter() (counter, error) { return NewProxy(e.ServerAddr()) }

// rowsWritten makes the contender's connection (the only one) publish its
// statistics and returns the schema's row counts, or -1.
func (e *Env) rowsWritten(ctx context.Context, x execer) int64 {
	if err := x.Exec(ctx, "SELECT pg_stat_force_next_flush()"); err != nil {
		return -1
	}
	// The backend flushes when it goes idle, right after that statement.
	var last int64 = -1
	for range 20 {
		time.Sleep(25 * time.Millisecond)
		n, err := e.RowCounts(ctx)
		if err != nil {
			return -1
		}
		if n == last {
			return n
		}
		last = n
	}
	return last
}

// newPool opens a pgx pool of at most maxConns connections on dsn.
func newPool(ctx context.Context, dsn string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = maxConns
	return pgxpool.NewWithConfig(ctx, cfg)
}
