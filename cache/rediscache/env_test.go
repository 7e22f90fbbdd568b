package rediscache_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jmoiron/sqlx"
	"github.com/redis/rueidis"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/dddkit/dddkit/cache/rediscache"
	"github.com/dddkit/dddkit/internal/testdb"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

// The tests run on SQLite always and on PostgreSQL (pgxpool) when
// DDDKIT_TEST_POSTGRES_DSN is set, each with a Redis server at
// DDDKIT_TEST_REDIS_ADDR (skipped without one), under a key prefix of the
// test's own, whose keys are deleted when it ends.

// order is a versioned aggregate with children.
type order struct {
	id      int64  `db:"id"`
	status  string `db:"status"`
	items   []*item
	version int64 `db:"version" ddd:"version"`
}

func (o *order) ID() int64 { return o.id }

type item struct {
	id  int64  `db:"id" ddd:"id"`
	sku string `db:"sku"`
	qty int    `db:"qty"`
}

// counter has no version.
type counter struct {
	id int64 `db:"id"`
	n  int64 `db:"n"`
}

func (c *counter) ID() int64 { return c.id }

func orderMapping(t testing.TB) *sqlstore.Mapping[*order] {
	m, err := sqlstore.NewMapping[*order](sqlstore.Table{Name: "orders"},
		sqlstore.Child{Field: "items", Table: "order_items", ParentKey: "order_id"})
	require.NoError(t, err)
	return m
}

func counterMapping(t testing.TB) *sqlstore.Mapping[*counter] {
	m, err := sqlstore.NewMapping[*counter](sqlstore.Table{Name: "counters"})
	require.NoError(t, err)
	return m
}

// env is one test's database, Redis and cache.
type env struct {
	name   string
	db     *sqlstore.DB
	exec   func(t testing.TB, sql string, args ...any)
	sqls   atomic.Int64 // statements sent by db
	redis  rueidis.Client
	prefix string
	events *events
	// near: the caches have a near cache, on nearRedis, a client with
	// client-side caching on.
	near      bool
	nearRedis rueidis.Client
	// dsn and schema are the database's, for other processes: on
	// PostgreSQL, its DSN and schema; on MariaDB (mysql), its DSN.
	dsn, schema string
	mysql       bool
	// caches are those of cache, which settle waits for.
	mu     sync.Mutex
	caches []*rediscache.Cache
}

// settle waits for the invalidations under way of the caches of e: a
// write returns before its invalidation ends.
func (e *env) settle() {
	e.mu.Lock()
	caches := slices.Clone(e.caches)
	e.mu.Unlock()
	for _, c := range caches {
		c.Wait()
	}
}

// events records what the cache reports.
type events struct {
	mu  sync.Mutex
	all []rediscache.Event
	// nearAsHit: take reports a near hit as a hit, for the tests that run
	// with and without a near cache.
	nearAsHit bool
	// settle, when set, is called by take first.
	settle func()
	// counts, with countOnly set (in benchmarks), counts the events by
	// kind instead, and take returns the kinds that came, once each.
	countOnly bool
	counts    [16]atomic.Int64
}

func (e *events) observe(_ context.Context, ev rediscache.Event) {
	if e.countOnly {
		e.counts[ev.Kind%16].Add(1)
		return
	}
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

// take returns the kinds reported since the last take.
func (e *events) take() []rediscache.Kind {
	if e.settle != nil {
		e.settle()
	}
	if e.countOnly {
		var out []rediscache.Kind
		for k := range e.counts {
			if e.counts[k].Swap(0) > 0 {
				out = append(out, rediscache.Kind(k))
			}
		}
		return out
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]rediscache.Kind, len(e.all))
	for i, ev := range e.all {
		out[i] = ev.Kind
		if e.nearAsHit && ev.Kind == rediscache.NearHit {
			out[i] = rediscache.Hit
		}
	}
	e.all = nil
	return out
}

// failures returns the errors of the Failed events since the last take,
// without taking them.
func (e *events) failures() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []error
	for _, ev := range e.all {
		if ev.Kind == rediscache.Failed {
			out = append(out, ev.Err)
		}
	}
	return out
}

// forEachDB runs body on SQLite and, when configured, PostgreSQL and
// MariaDB, with the Redis cache alone and with a near cache in front of
// it (where a near hit is taken as a hit).
func forEachDB(t *testing.T, body func(t *testing.T, e *env)) {
	forEachDBTier(t, []bool{false, true}, body)
}

// forEachDBTier is forEachDB, with a near cache or not as near says.
func forEachDBTier(t *testing.T, near []bool, body func(t *testing.T, e *env)) {
	for _, n := range near {
		tier := func(e *env) *env {
			e.near, e.events.nearAsHit = n, n
			return e
		}
		name := "redis"
		if n {
			name = "near"
		}
		t.Run(name, func(t *testing.T) {
			t.Run("sqlite", func(t *testing.T) { body(t, tier(sqliteEnv(t))) })
			t.Run("postgres", func(t *testing.T) { body(t, tier(pgEnv(t))) })
			t.Run("mariadb", func(t *testing.T) { body(t, tier(mysqlEnv(t))) })
		})
	}
}

func sqliteEnv(t testing.TB) *env {
	e := &env{name: "sqlite"}
	redisFor(t, e)
	x, err := sqlx.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "t.db")+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	t.Cleanup(func() { x.Close() })
	e.exec = func(t testing.TB, q string, args ...any) {
		t.Helper()
		_, err := x.Exec(q, args...)
		require.NoError(t, err, q)
	}
	e.db, err = sqlstore.NewSQL(x, sqlstore.WithObserver(e.count))
	require.NoError(t, err)
	schema(t, e, sqlstore.SQLite)
	return e
}

func pgEnv(t testing.TB) *env {
	e := &env{name: "postgres"}
	dsn, sch := testdb.Schema(t, "dddkit_cache_", true)
	e.dsn, e.schema = dsn, sch
	redisFor(t, e)
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["search_path"] = sch
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	e.exec = func(t testing.TB, q string, args ...any) {
		t.Helper()
		_, err := pool.Exec(context.Background(), sqlx.Rebind(sqlx.DOLLAR, q), args...)
		require.NoError(t, err, q)
	}
	e.db = sqlstore.NewPGX(pool, sqlstore.WithObserver(e.count))
	schema(t, e, sqlstore.PostgreSQL)
	return e
}

func mysqlEnv(t *testing.T) *env {
	e := &env{name: "mariadb"}
	dsn, _ := testdb.MySQLDatabase(t, "dddkit_cache_", true)
	redisFor(t, e)
	dsn, err := sqlstore.MySQLDSN(dsn)
	require.NoError(t, err)
	e.dsn, e.mysql = dsn, true
	x, err := sqlx.Open("mysql", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { x.Close() })
	e.exec = func(t testing.TB, q string, args ...any) {
		t.Helper()
		_, err := x.Exec(q, args...)
		require.NoError(t, err, q)
	}
	e.db, err = sqlstore.NewSQL(x, sqlstore.WithObserver(e.count))
	require.NoError(t, err)
	schema(t, e, sqlstore.MySQL)
	return e
}

func (e *env) count(context.Context, sqlstore.Statement) { e.sqls.Add(1) }

// takeSQL returns the number of statements sent since the last call.
func (e *env) takeSQL() int64 { return e.sqls.Swap(0) }

func schema(t testing.TB, e *env, d sqlstore.Database) {
	for _, ddl := range []func() (string, error){
		func() (string, error) { return orderMapping(t).DDL(d) },
		func() (string, error) { return counterMapping(t).DDL(d) },
	} {
		text, err := ddl()
		require.NoError(t, err)
		for s := range strings.SplitSeq(text, ";\n") {
			if s = strings.TrimSpace(s); s != "" {
				e.exec(t, s)
			}
		}
	}
}

// redisFor gives e a client of the test's Redis and a prefix of its own,
// whose keys are deleted when t ends.
func redisFor(t testing.TB, e *env) {
	addr := testdb.RedisAddr(t)
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	require.NoError(t, err)
	e.redis = c
	e.nearRedis = cachingClient(t, addr)
	e.prefix = testdb.Name("dddkit-test:") + ":"
	e.events = &events{settle: e.settle}
	t.Cleanup(func() {
		defer c.Close()
		ctx := context.Background()
		var cursor uint64
		for {
			r, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(e.prefix+"*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				t.Errorf("scan the test's keys: %v", err)
				return
			}
			if len(r.Elements) > 0 {
				if err := c.Do(ctx, c.B().Del().Key(r.Elements...).Build()).Error(); err != nil {
					t.Errorf("delete the test's keys: %v", err)
				}
			}
			if cursor = r.Cursor; cursor == 0 {
				return
			}
		}
	})
}

// cachingClient returns a new client of the test's Redis with rueidis'
// client-side caching on, closed when t ends; tracking holds more options
// of CLIENT TRACKING (NOLOOP, say).
func cachingClient(t testing.TB, addr string, tracking ...string) rueidis.Client {
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, ClientTrackingOptions: tracking})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// cache returns a cache of client (e's own when nil) under e's prefix.
//
// With e.near, the cache has a near cache, and client (when given) must
// have client-side caching on.
// testTimeout is the Redis timeout of the tests' caches.
const testTimeout = time.Second

func (e *env) cache(client rueidis.Client, opts ...rediscache.Option) *rediscache.Cache {
	// A timeout far above what a call takes, even under load, for the
	// tests that expect calls to succeed; those that expect them to time
	// out give their own.
	first := []rediscache.Option{rediscache.WithPrefix(e.prefix), rediscache.WithObserver(e.events.observe), rediscache.WithTimeout(5 * time.Second)}
	if e.near {
		first = append(first, rediscache.WithNear(0, 0))
	}
	if client == nil {
		client = e.redis
		if e.near {
			client = e.nearRedis
		}
	}
	c := rediscache.New(client, append(first, opts...)...)
	e.mu.Lock()
	e.caches = append(e.caches, c)
	e.mu.Unlock()
	return c
}

// orders returns a repository of orders behind c, with more options
// (wrappers given are under the cache).
func (e *env) orders(t testing.TB, c *rediscache.Cache, opts ...repository.Option) *sqlstore.Repository[*order, int64] {
	opts = append(opts, rediscache.Wrap[*order, int64](c))
	r, err := sqlstore.NewRepository[*order, int64](e.db, orderMapping(t), opts...)
	require.NoError(t, err)
	return r
}

// key returns what Redis holds at the key of the order or counter id
// (which the prefix starts), or "" when nothing.
func (e *env) held(t testing.TB, id int64) string {
	t.Helper()
	e.settle()
	return e.peek(t, id)
}

// peek is held without waiting for the invalidations under way.
func (e *env) peek(t testing.TB, id int64) string {
	t.Helper()
	ctx := context.Background()
	keys, err := e.redis.Do(ctx, e.redis.B().Keys().Pattern(e.prefix+"*:"+strconv.FormatInt(id, 10)).Build()).AsStrSlice()
	require.NoError(t, err)
	require.LessOrEqual(t, len(keys), 1, "one key per identity: %q", keys)
	if len(keys) == 0 {
		return ""
	}
	v, err := e.redis.Do(ctx, e.redis.B().Get().Key(keys[0]).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return ""
	}
	require.NoError(t, err)
	return v
}

// proxy forwards TCP connections to a Redis server, and can stall (hold
// what it receives until resumed) or go down (close its listener and its
// connections, refusing new ones).
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	gate   chan struct{} // closed while not stalled
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target, gate: make(chan struct{})}
	close(p.gate)
	go p.serve()
	t.Cleanup(p.down)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

// pipe copies from src to dst, holding what it read while stalled.
func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			gate := p.gate
			p.mu.Unlock()
			<-gate
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			return
		}
	}
}

// stall holds what the proxy receives until resume.
func (p *proxy) stall() {
	p.mu.Lock()
	p.gate = make(chan struct{})
	p.mu.Unlock()
}

func (p *proxy) resume() {
	p.mu.Lock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
	p.mu.Unlock()
}

// privateRedis starts a Redis server of the test's own, on a free port of
// the loopback interface, stopped when t ends: for what would disturb the
// tests of other packages that share the server of DDDKIT_TEST_REDIS_ADDR
// (CLIENT PAUSE holds every client of a server).
func privateRedis(t *testing.T) string {
	return startRedis(t, freeAddr(t))
}

// freeAddr returns an address of the loopback interface that nothing
// listens on.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// startRedis starts a Redis server of the test's own at addr, stopped
// when t ends.
func startRedis(t *testing.T, addr string) string {
	testdb.RedisAddr(t)
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed: skipping what needs a Redis server of its own")
	}
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for range 500 {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		time.Sleep(10 * time.Millisecond) // the server starting: no ordering between goroutines
	}
	t.Fatalf("the private Redis server did not start at %s", addr)
	return ""
}

// proxyClient returns a client of Redis through p, on one connection, so
// that the test knows when it is connected again after a cut; with
// client-side caching on with e.near.
func (e *env) proxyClient(t *testing.T, p *proxy) rueidis.Client {
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{p.addr()}, DisableCache: !e.near, PipelineMultiplex: -1})
	require.NoError(t, err)
	return c
}

// cut closes the connections, losing what the proxy held: the client
// connects again.
func (p *proxy) cut() {
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.resume()
}

// down closes the listener and every connection: connections are refused.
func (p *proxy) down() {
	p.ln.Close()
	p.resume()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
}
