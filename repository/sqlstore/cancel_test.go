package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/internal/testdb"
	"github.com/dddkit/dddkit/repository"
)

// The tests of this file check that what a save returns is the truth about
// the database when its context is cancelled while the database is running
// it: nil only if the change is stored, a plain error only if nothing of it
// is, and repository.ErrOutcomeUnknown only where the answer was lost.

// serverCase is a backend on a database server (PostgreSQL or MariaDB)
// built by a test, with connections of its own in the test's schema or
// database, to hold locks and to look at the database.
type serverCase struct {
	*backend
	kind    string
	dsn     string
	cfg     *pgx.ConnConfig // PostgreSQL: in the test's schema
	side    *pgx.Conn       // PostgreSQL: for checks
	blocker *pgx.Conn       // PostgreSQL: for the transactions that hold locks
	my      *myConns        // MariaDB
}

// myConns are the connections of a serverCase on MariaDB.
type myConns struct {
	cfg     *mysql.Config // the test's database, with the settings of MySQLDSN
	side    *sql.Conn     // for checks
	blocker *sql.Conn     // for the transactions that hold locks
	id      int64         // the blocker's connection id
}

// mariaKind is MariaDB through database/sql.
const mariaKind = "mariadb/database-sql"

// pgKinds are the ways of reaching PostgreSQL: a pool, database/sql, and,
// for the tests that keep their connections sound, a single connection.
// serverKinds and serverAnyKinds add MariaDB through database/sql.
var (
	pgKinds        = []string{"postgres/pgxpool", "postgres/database-sql"}
	pgAnyKind      = append(pgKinds[:len(pgKinds):len(pgKinds)], "postgres/pgx-conn")
	serverKinds    = append(pgKinds[:len(pgKinds):len(pgKinds)], mariaKind)
	serverAnyKinds = append(pgAnyKind[:len(pgAnyKind):len(pgAnyKind)], mariaKind)
)

// forEachServer runs body once per backend of kinds, as subtests.
func forEachServer(t *testing.T, kinds []string, body func(t *testing.T, kind string)) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) { body(t, kind) })
	}
}

// newServerCase builds a backend of kind in a schema, or a database, of
// its own.
func newServerCase(t *testing.T, kind string, opts ...Option) *serverCase {
	t.Helper()
	if kind == mariaKind {
		return newMariaCase(t, opts...)
	}
	dsn, schema := pgSchema(t)
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.RuntimeParams["search_path"] = schema
	c := &serverCase{kind: kind, dsn: dsn, cfg: cfg}
	c.side, err = pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.side.Close(context.Background()) })
	c.blocker, err = pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.blocker.Close(context.Background()) })
	for _, s := range schemaDDL {
		_, err := c.side.Exec(ctx, s)
		require.NoError(t, err, s)
	}
	log := &stmtLog{}
	c.backend = &backend{name: kind, log: log, pgx: kind != "postgres/database-sql"}
	c.db, c.raw = c.connect(t, "", 0, append(opts, WithObserver(log.observe))...)
	c.quiet, _ = c.connect(t, "", 0, opts...)
	return c
}

// newMariaCase builds a backend on MariaDB in a database of its own.
func newMariaCase(t *testing.T, opts ...Option) *serverCase {
	t.Helper()
	dsn, _ := testdb.MySQLDatabase(t, "dddkit_test_", true)
	dsn, err := MySQLDSN(dsn)
	require.NoError(t, err)
	cfg, err := mysql.ParseDSN(dsn)
	require.NoError(t, err)
	x, err := sqlx.Open("mysql", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { x.Close() })
	for _, s := range mysqlSchemaDDL {
		sqlRaw{x}.exec(t, s)
	}
	ctx := context.Background()
	c := &serverCase{kind: mariaKind, dsn: dsn, my: &myConns{cfg: cfg}}
	c.my.side, err = x.Conn(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { c.my.side.Close() })
	c.my.blocker, err = x.Conn(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { c.my.blocker.Close() })
	require.NoError(t, c.my.blocker.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&c.my.id))
	log := &stmtLog{}
	c.backend = &backend{name: mariaKind, log: log}
	c.db, c.raw = c.connect(t, "", 0, append(opts, WithObserver(log.observe))...)
	c.quiet, _ = c.connect(t, "", 0, opts...)
	return c
}

// serverAddr is the address (host:port) of c's server.
func (c *serverCase) serverAddr() string {
	if c.my != nil {
		return c.my.cfg.Addr
	}
	return net.JoinHostPort(c.cfg.Host, fmt.Sprint(c.cfg.Port))
}

// connect returns a DB of c's kind, with a pool of its own of at most
// maxConns connections (0: the default) or a connection of its own,
// reaching the server at addr (host:port) when it is not empty. A single
// connection comes without raw access.
func (c *serverCase) connect(t *testing.T, addr string, maxConns int, opts ...Option) (*DB, raw) {
	t.Helper()
	if c.my != nil {
		cfg := c.my.cfg.Clone()
		if addr != "" {
			cfg.Addr = addr
		}
		x, err := sqlx.Open("mysql", cfg.FormatDSN())
		require.NoError(t, err)
		x.SetMaxOpenConns(maxConns)
		t.Cleanup(func() { x.Close() })
		db, err := NewSQL(x, opts...)
		require.NoError(t, err)
		return db, sqlRaw{x}
	}
	via := c.cfg.Copy()
	if addr != "" {
		host, port, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		p, err := strconv.ParseUint(port, 10, 16)
		require.NoError(t, err)
		via.Host, via.Port, via.Fallbacks = host, uint16(p), nil
	}
	switch c.kind {
	case "postgres/pgxpool":
		pcfg, err := pgxpool.ParseConfig(c.dsn)
		require.NoError(t, err)
		pcfg.ConnConfig = via
		if maxConns > 0 {
			pcfg.MaxConns = int32(maxConns)
		}
		pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		return NewPGX(pool, opts...), pgxRaw{pool}
	case "postgres/pgx-conn":
		conn, err := pgx.ConnectConfig(context.Background(), via)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close(context.Background()) })
		return NewPGX(conn, opts...), nil
	case "postgres/database-sql":
		x := sqlx.NewDb(stdlib.OpenDB(*via), "pgx")
		x.SetMaxOpenConns(maxConns)
		t.Cleanup(func() { x.Close() })
		db, err := NewSQL(x, opts...)
		require.NoError(t, err)
		return db, sqlRaw{x}
	}
	t.Fatalf("unknown backend %q", c.kind)
	return nil, nil
}

// lock begins a transaction on c.blocker that locks the rows of q (a
// SELECT ... FOR UPDATE) and returns the function that ends it; calls after
// the first do nothing.
func (c *serverCase) lock(t *testing.T, q string, args ...any) (release func()) {
	t.Helper()
	ctx := context.Background()
	if c.my != nil {
		_, err := c.my.blocker.ExecContext(ctx, "BEGIN")
		require.NoError(t, err)
		rows, err := c.my.blocker.QueryContext(ctx, q, args...)
		require.NoError(t, err)
		require.NoError(t, rows.Close())
		done := false
		return func() {
			if !done {
				done = true
				_, err := c.my.blocker.ExecContext(ctx, "ROLLBACK")
				require.NoError(t, err)
			}
		}
	}
	tx, err := c.blocker.Begin(ctx)
	require.NoError(t, err)
	rows, err := tx.Query(ctx, q, args...)
	require.NoError(t, err)
	rows.Close()
	require.NoError(t, rows.Err())
	done := false
	return func() {
		if !done {
			done = true
			require.NoError(t, tx.Rollback(ctx))
		}
	}
}

// blockedPID waits until a backend waits for a lock that c.blocker holds,
// and returns its process id.
func (c *serverCase) blockedPID(t *testing.T) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.my != nil {
		if id := c.lockWaiter(t); id != 0 {
			return int(id)
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection waits for the blocker's lock")
		}
		time.Sleep(time.Millisecond)
	}
	for {
		var pids []int32
		err := c.side.QueryRow(context.Background(),
			`SELECT coalesce(array_agg(pid), '{}') FROM pg_stat_activity WHERE $1::int = ANY (pg_blocking_pids(pid))`,
			int(c.blocker.PgConn().PID())).Scan(&pids)
		require.NoError(t, err)
		if len(pids) > 0 {
			return int(pids[0])
		}
		if time.Now().After(deadline) {
			t.Fatal("no backend waits for the blocker's lock")
		}
		time.Sleep(time.Millisecond)
	}
}

// settle waits until no transaction writes to the fixture's tables: a
// write that the server still runs, or that waits for a lock, ends
// (commits or aborts) first.
func (c *serverCase) settle(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if c.my != nil {
		// LOCK TABLES waits for the transactions that wrote to the
		// tables, which hold a metadata lock on them until they end.
		for _, q := range []string{"SET SESSION lock_wait_timeout = 20", "LOCK TABLES orders READ, order_items READ", "UNLOCK TABLES"} {
			_, err := c.my.side.ExecContext(ctx, q)
			require.NoError(t, err, q)
		}
		return
	}
	tx, err := c.side.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `SET LOCAL lock_timeout = '20s'`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `LOCK TABLE orders, order_items IN SHARE MODE`)
	require.NoError(t, err)
}

// lockWaiter returns the id of a connection, other than the blocker, whose
// transaction waits for a lock on a table of the test's database on
// MariaDB, or 0. It reads SHOW ENGINE
// INNODB STATUS, not information_schema.innodb_trx, a cache that polling
// keeps from being refreshed.
func (c *serverCase) lockWaiter(t *testing.T) int64 {
	t.Helper()
	var typ, name, status string
	require.NoError(t, c.my.side.QueryRowContext(context.Background(), "SHOW ENGINE INNODB STATUS").Scan(&typ, &name, &status))
	for _, trx := range strings.Split(status, "---TRANSACTION ") {
		// A waiter for a lock on a table of the test's database: the
		// server may run other tests.
		if !strings.Contains(trx, "\nLOCK WAIT ") || !strings.Contains(trx, " of table `"+c.my.cfg.DBName+"`.") {
			continue
		}
		_, after, ok := strings.Cut(trx, " thread id ")
		if !ok {
			continue
		}
		id, _ := strconv.ParseInt(after[:strings.IndexByte(after+",", ',')], 10, 64)
		if id != 0 && id != c.my.id {
			return id
		}
	}
	return 0
}

// manyItems returns n items of quantity 1.
func manyItems(n int) []*item {
	out := make([]*item, n)
	for i := range out {
		out[i] = &item{id: itemID(i + 1), sku: fmt.Sprintf("S%04d", i+1), quantity: 1}
	}
	return out
}

// describe sums o up, to tell states apart in a failure message.
func describe(o *order) string {
	if o == nil {
		return "<nil>"
	}
	qty := map[int]int{}
	for _, it := range o.items {
		qty[it.quantity]++
	}
	return fmt.Sprintf("version %d, customer %s, total %d, %d items, quantities %v", o.version, o.customer, o.total.amount, len(o.items), qty)
}

// saveShape is a change of the test aggregate that a save writes in many
// statements (every item) or in one (the root alone).
type saveShape struct {
	name  string
	apply func(o *order)
	// lock is the SELECT ... FOR UPDATE that blocks the save half way.
	lock string
}

var saveShapes = []saveShape{
	{
		name: "every item",
		apply: func(o *order) {
			for _, it := range o.items {
				it.quantity++
			}
			o.recompute()
		},
		lock: `SELECT 1 FROM order_items WHERE order_id = 1 AND id = 250 FOR UPDATE`,
	},
	{
		name: "the root alone",
		apply: func(o *order) {
			if o.customer == "alice" {
				o.customer = "bob"
			} else {
				o.customer = "alice"
			}
		},
		lock: `SELECT 1 FROM orders WHERE id = 1 FOR UPDATE`,
	},
}

// checkTruth checks that err, the error of a save from before to want,
// says what the database holds, got.
func checkTruth(t *testing.T, err error, got, before, want *order) {
	t.Helper()
	isBefore, isWant := reflect.DeepEqual(got, before), reflect.DeepEqual(got, want)
	switch {
	case err == nil:
		require.True(t, isWant, "the save returned nil, yet the database holds %s, want %s", describe(got), describe(want))
	case errors.Is(err, repository.ErrOutcomeUnknown):
		require.True(t, isBefore || isWant, "the database holds a partial save: %s (before %s, after %s)", describe(got), describe(before), describe(want))
	default:
		require.True(t, isBefore, "the save returned %q, yet the database holds %s (before: %s)", err, describe(got), describe(before))
	}
}

// awaitSave waits for the error of a save started in a goroutine.
func awaitSave(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("the save did not return")
		return nil
	}
}

// TestCancelledSaveIsTruthful cancels saves while the database runs them,
// blocked half way on a row lock that another transaction holds, and
// checks that what each save returned matches what the database holds
// once every transaction has ended.
func TestCancelledSaveIsTruthful(t *testing.T) {
	forEachServer(t, serverAnyKinds, func(t *testing.T, kind string) {
		c := newServerCase(t, kind)
		repo := c.repo(t)
		c.cancelRounds(t, repo, 24, func(ch saveShape) (func(ctx context.Context) error, *order, *order) {
			o, err := repo.Find(context.Background(), 1)
			require.NoError(t, err)
			before := stored(o)
			ch.apply(o)
			want := stored(o)
			want.version++
			return func(ctx context.Context) error { return repo.Save(ctx, o) }, before, want
		})
	})
}

// cancelRounds runs rounds of a write that prepare returns for a change
// of each shape in turn (with the states before and after it), cancelled
// while the write waits for a row lock (which goes shortly after, or
// only once the write has returned; or, one round in four, goes first),
// and checks what each returned against what the database holds.
func (c *serverCase) cancelRounds(t *testing.T, repo *Repository[*order, orderID], rounds int, prepare func(ch saveShape) (run func(ctx context.Context) error, before, want *order)) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, repo.Save(ctx, newOrder(1, "alice", manyItems(500)...)))
	outcomes := map[string]int{}
	for i := range rounds {
		ch := saveShapes[i%len(saveShapes)]
		run, before, want := prepare(ch)
		release := c.lock(t, ch.lock)
		sctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- run(sctx) }()
		c.blockedPID(t)
		pause := time.Duration(i%3) * time.Millisecond
		var err error
		switch {
		case i%4 == 3:
			// The lock goes first: the write may complete before the
			// cancellation reaches it.
			release()
			time.Sleep(pause)
			cancel()
			err = awaitSave(t, errc)
		case pause == 0:
			// The lock is held until the write returns: the
			// cancellation reaches it while it is blocked.
			cancel()
			err = awaitSave(t, errc)
			release()
		default:
			// The lock goes shortly after the cancellation, which may
			// reach the write before or after.
			cancel()
			time.Sleep(pause)
			release()
			err = awaitSave(t, errc)
		}
		release()
		c.settle(t)
		checkTruth(t, err, c.load(t, 1), before, want)
		switch {
		case err == nil:
			outcomes["saved"]++
		case errors.Is(err, repository.ErrOutcomeUnknown):
			outcomes["unknown"]++
		default:
			require.ErrorIs(t, err, context.Canceled, "a write that failed for its cancelled context says so")
			outcomes["cancelled"]++
		}
	}
	t.Logf("%v", outcomes)
	require.Positive(t, outcomes["cancelled"], "a cancellation reached at least one write while it was blocked")
}

// TestRetryAfterCancelledSave retries a save that was cancelled while it was
// blocked on a row lock: the change is applied once, never twice, and the
// retry returns ErrConflict only when the first save may have been stored.
func TestRetryAfterCancelledSave(t *testing.T) {
	forEachServer(t, serverAnyKinds, func(t *testing.T, kind string) {
		c := newServerCase(t, kind)
		ctx := context.Background()
		repo := c.repo(t)
		require.NoError(t, repo.Save(ctx, newOrder(1, "alice", manyItems(500)...)))
		const rounds = 12
		for i := range rounds {
			ch := saveShapes[i%len(saveShapes)]
			o, err := repo.Find(ctx, 1)
			require.NoError(t, err)
			before := stored(o)
			ch.apply(o) // an increment: applied twice, it would show
			want := stored(o)
			want.version++

			release := c.lock(t, ch.lock)
			sctx, cancel := context.WithCancel(ctx)
			errc := make(chan error, 1)
			go func() { errc <- repo.Save(sctx, o) }()
			c.blockedPID(t)
			cancel()
			first := awaitSave(t, errc)
			release()

			retry := repo.Save(ctx, o)
			c.settle(t)
			got := c.load(t, 1)
			require.True(t, reflect.DeepEqual(got, want), "round %d (%s): first save %v, retry %v: the database holds %s, want %s (before %s)",
				i, ch.name, first, retry, describe(got), describe(want), describe(before))
			switch {
			case first == nil:
				require.NoError(t, retry, "nothing is left to save")
			case errors.Is(first, repository.ErrOutcomeUnknown):
				if retry != nil {
					require.ErrorIs(t, retry, repository.ErrConflict)
				}
			default:
				require.NoError(t, retry, "round %d (%s): the first save returned %q: nothing was stored, and the retry must apply the change", i, ch.name, first)
			}
		}
	})
}

// TestCancelledUpdateIsTruthful is TestCancelledSaveIsTruthful for Update,
// whose save carries the COMMIT in its batch on pgx: cancelled while the
// write waits for a row lock, it returns nil only when the change is
// stored, and a plain error only when nothing of it is.
func TestCancelledUpdateIsTruthful(t *testing.T) {
	forEachServer(t, serverAnyKinds, func(t *testing.T, kind string) {
		c := newServerCase(t, kind)
		repo := c.repo(t)
		c.cancelRounds(t, repo, 12, func(ch saveShape) (func(ctx context.Context) error, *order, *order) {
			before, want := c.load(t, 1), c.load(t, 1)
			ch.apply(want)
			want = stored(want)
			want.version++
			return func(ctx context.Context) error {
				return repo.Update(ctx, 1, func(_ context.Context, o *order) error {
					ch.apply(o)
					return nil
				})
			}, stored(before), want
		})
	})
}
