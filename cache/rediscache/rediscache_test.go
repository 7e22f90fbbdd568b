package rediscache_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/cache/rediscache"
	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/internal/testdb"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/sqlstore"
	"github.com/dddkit/dddkit/tracking"
)

const (
	hit         = rediscache.Hit
	miss        = rediscache.Miss
	bypass      = rediscache.Bypass
	filled      = rediscache.Filled
	refused     = rediscache.Refused
	invalidated = rediscache.Invalidated
	failed      = rediscache.Failed
)

// gate sits between the cache and the store: once armed, its next
// Select, after it loaded from the database, says so on loaded, and waits
// for resume before returning; with lag set, it returns lag's aggregate
// instead of the database's (a replica behind the primary).
type gate[T any, ID comparable] struct {
	repository.Hooks[T, ID]
	armed  atomic.Bool
	loaded chan struct{}
	resume chan struct{}
	lag    func() T
}

func newGate[T any, ID comparable]() *gate[T, ID] {
	return &gate[T, ID]{loaded: make(chan struct{}), resume: make(chan struct{})}
}

func (g *gate[T, ID]) wrap() repository.Option {
	return repository.WrapHooks(func(h repository.Hooks[T, ID]) repository.Hooks[T, ID] {
		g.Hooks = h
		return g
	})
}

func (g *gate[T, ID]) Unwrap() repository.Hooks[T, ID] { return g.Hooks }

func (g *gate[T, ID]) Select(ctx context.Context, id ID) (T, error) {
	agg, err := g.Hooks.Select(ctx, id)
	if g.armed.CompareAndSwap(true, false) {
		if g.lag != nil {
			agg, err = g.lag(), nil
		}
		g.loaded <- struct{}{}
		<-g.resume
	}
	return agg, err
}

func paid(_ context.Context, o *order) error { o.status = "paid"; return nil }

// TestHit: a miss loads from the database and fills; the next Find reads
// the cache and sends no SQL, and what it returns equals the database's
// aggregate, tracked like it: a change of it saves, checked by its
// version, and the save drops the entry.
func TestHit(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		repo := e.orders(t, e.cache(nil))
		o := &order{id: 1, status: "new", items: []*item{{id: 1, sku: "a", qty: 1}, {id: 2, sku: "b", qty: 2}}}
		require.NoError(t, repo.Save(ctx, o))
		assert.Equal(t, []rediscache.Kind{invalidated}, e.events.take(), "an insert drops what the key may hold")

		fromDB, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, []rediscache.Kind{miss, filled}, e.events.take())
		assert.True(t, strings.HasPrefix(e.held(t, 1), "V0\n"), "the entry of version 0")
		e.takeSQL()
		cached, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, []rediscache.Kind{hit}, e.events.take())
		assert.Zero(t, e.takeSQL(), "a hit sends no SQL")
		assert.NotSame(t, fromDB, cached)
		same, err := diff.Equal(fromDB, cached)
		require.NoError(t, err)
		assert.True(t, same)

		// Tracked: a change saves only itself, and advances the version.
		cached.items[1].qty = 3
		require.NoError(t, repo.Save(ctx, cached))
		assert.Equal(t, int64(1), cached.version)
		assert.Equal(t, []rediscache.Kind{invalidated}, e.events.take())
		assert.True(t, strings.HasPrefix(e.held(t, 1), "T1\n"), "a tombstone of version 1: %q", e.held(t, 1))
		got, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, 3, got.items[1].qty)
		assert.Equal(t, []rediscache.Kind{miss, filled}, e.events.take())

		// Remove drops it too: Find is then not found, and fills nothing.
		require.NoError(t, repo.Remove(ctx, got))
		assert.Equal(t, []rediscache.Kind{invalidated}, e.events.take())
		_, err = repo.Find(ctx, 1)
		assert.ErrorIs(t, err, repository.ErrNotFound)
		assert.Equal(t, []rediscache.Kind{miss}, e.events.take())
		assert.False(t, strings.HasPrefix(e.held(t, 1), "V"))
	})
}

// TestNoStaleFill: a reader misses and reads v0 from the database; a
// writer commits v1 and invalidates; then the reader fills: the fill must
// not land, and the next reader gets v1.
func TestNoStaleFill(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := newGate[*order, int64]()
		repo := e.orders(t, e.cache(nil), g.wrap())
		require.NoError(t, repo.Save(ctx, &order{id: 1, status: "new"}))
		e.events.take()

		g.armed.Store(true)
		read := make(chan *order)
		go func() {
			o, err := repo.Find(ctx, 1)
			assert.NoError(t, err)
			read <- o
		}()
		<-g.loaded // the reader holds v0, and the lease
		require.NoError(t, repo.Update(ctx, 1, paid))
		assert.Equal(t, []rediscache.Kind{miss, bypass, invalidated}, e.events.take(), "the writer's load reads the database, and its commit invalidates")
		close(g.resume)
		stale := <-read
		assert.Equal(t, int64(0), stale.version, "the reader returns what it read")
		assert.Equal(t, []rediscache.Kind{refused}, e.events.take(), "its fill does not land")
		assert.False(t, strings.HasPrefix(e.held(t, 1), "V"), "no entry: %q", e.held(t, 1))

		got, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, int64(1), got.version)
		assert.Equal(t, "paid", got.status)
		assert.Equal(t, []rediscache.Kind{miss, filled}, e.events.take())
		assert.True(t, strings.HasPrefix(e.held(t, 1), "V1\n"))
	})
}

// TestVersionNeverGoesBackwards: a reader whose database is behind (a
// replica that still has v0) takes the lease after the writer of v1
// invalidated: its fill must not land, the version of the entry never
// goes below a committed one, and a late invalidation of an older write
// leaves a newer entry's version as the floor.
func TestVersionNeverGoesBackwards(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := newGate[*order, int64]()
		c := e.cache(nil)
		repo := e.orders(t, c, g.wrap())
		require.NoError(t, repo.Save(ctx, &order{id: 1, status: "new"}))
		old, err := repo.Store().Select(ctx, 1) // what the replica still holds
		require.NoError(t, err)
		require.NoError(t, repo.Update(ctx, 1, paid))
		assert.True(t, strings.HasPrefix(e.held(t, 1), "T1\n"), "the writer's tombstone: %q", e.held(t, 1))
		e.events.take()

		g.lag = func() *order { return old }
		g.armed.Store(true)
		read := make(chan *order)
		go func() {
			o, err := repo.Find(ctx, 1)
			assert.NoError(t, err)
			read <- o
		}()
		<-g.loaded
		close(g.resume)
		assert.Equal(t, int64(0), (<-read).version)
		assert.Equal(t, []rediscache.Kind{miss, refused}, e.events.take(), "v0 is below the floor of v1")
		assert.False(t, strings.HasPrefix(e.held(t, 1), "V0"), "held: %q", e.held(t, 1))

		got, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, int64(1), got.version)
		assert.True(t, strings.HasPrefix(e.held(t, 1), "V1\n"))

		// Two more versions; the entry of v3 is filled; then the
		// invalidation of v2 comes late (another process's): the floor
		// stays 3, and a fill of v2 is refused.
		require.NoError(t, repo.Update(ctx, 1, func(_ context.Context, o *order) error { o.status = "v2"; return nil }))
		v2, err := repo.Store().Select(ctx, 1)
		require.NoError(t, err)
		require.NoError(t, repo.Update(ctx, 1, func(_ context.Context, o *order) error { o.status = "v3"; return nil }))
		_, err = repo.Find(ctx, 1)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(e.held(t, 1), "V3\n"))
		late := e.orders(t, c) // another repository, whose save of v2 is invalidated now
		late2, err := late.Find(ctx, 1)
		require.NoError(t, err)
		require.NoError(t, late.Remove(ctx, late2)) // floor 4: gone for good
		assert.True(t, strings.HasPrefix(e.held(t, 1), "T4\n"), "held: %q", e.held(t, 1))
		e.events.take()
		g.lag = func() *order { return v2 }
		g.armed.Store(true)
		g.resume = make(chan struct{})
		go func() {
			o, err := repo.Find(ctx, 1)
			assert.NoError(t, err)
			read <- o
		}()
		<-g.loaded
		close(g.resume)
		<-read
		assert.Equal(t, []rediscache.Kind{miss, refused}, e.events.take())
		assert.False(t, strings.HasPrefix(e.held(t, 1), "V"), "held: %q", e.held(t, 1))
	})
}

// TestReadYourWrites: after a save that this process committed, its next
// Find never returns an older version from the cache, even when the
// invalidation failed (Redis stalled): the entry is distrusted until an
// invalidation succeeds.
func TestReadYourWrites(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := newProxy(t, testdb.RedisAddr(t))
		client := e.proxyClient(t, p)
		defer client.Close()
		// Long enough for a call to succeed under load, short enough for
		// the test to wait for the one that times out.
		repo := e.orders(t, e.cache(client, rediscache.WithTimeout(500*time.Millisecond)))
		require.NoError(t, repo.Save(ctx, &order{id: 1, status: "new"}))
		for range 100 {
			o, err := repo.Find(ctx, 1)
			require.NoError(t, err)
			assert.Equal(t, int64(0), o.version)
			if strings.HasPrefix(e.held(t, 1), "V0\n") {
				break
			}
		}
		require.True(t, strings.HasPrefix(e.held(t, 1), "V0\n"))

		// The save's invalidation times out, and is lost with its
		// connection: the entry of v0 stays.
		o, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		e.events.take()
		p.stall()
		o.status = "paid"
		require.NoError(t, repo.Save(ctx, o), "a save never fails because of Redis")
		assert.Equal(t, []rediscache.Kind{failed}, e.events.take())
		p.cut()
		reconnect(t, client)
		require.True(t, strings.HasPrefix(e.held(t, 1), "V0\n"), "the stale entry is still there: %q", e.held(t, 1))

		got, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, int64(1), got.version, "this process reads what it committed")
		assert.Equal(t, []rediscache.Kind{bypass, invalidated}, e.events.take(), "the entry is distrusted, and invalidated again")
		got, err = repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, int64(1), got.version)
		assert.Equal(t, []rediscache.Kind{miss, filled}, e.events.take())
	})
}

// reconnect waits for client to be connected again after its connection
// was cut: the commands sent on the broken one fail.
func reconnect(t *testing.T, client rueidis.Client) {
	t.Helper()
	var err error
	for range 100 {
		if err = client.Do(context.Background(), client.B().Ping().Build()).Error(); err == nil {
			return
		}
	}
	t.Fatalf("not connected again: %v", err)
}

// TestStaleCachedLoadConflicts: an entry older than the database (written
// behind the cache's back) is read by Find; its save fails with
// ErrConflict, and drops the entry; Update with a retry reads the
// database, never the entry, and succeeds.
func TestStaleCachedLoadConflicts(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		repo := e.orders(t, e.cache(nil), repository.WithRetry(repository.RetryPolicy{Attempts: 3}))
		require.NoError(t, repo.Save(ctx, &order{id: 1, status: "new"}))
		_, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		// Another writer, that does not use the cache, commits v1.
		e.exec(t, `UPDATE orders SET status = 'shipped', version = 1 WHERE id = 1`)
		e.events.take()

		stale, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		require.Equal(t, []rediscache.Kind{hit}, e.events.take())
		require.Equal(t, int64(0), stale.version)
		stale.status = "paid"
		assert.ErrorIs(t, repo.Save(ctx, stale), repository.ErrConflict)
		assert.Equal(t, []rediscache.Kind{invalidated}, e.events.take(), "the failed save drops the entry")

		// A stale entry again, and Update: its load reads the database.
		_, err = repo.Find(ctx, 1)
		require.NoError(t, err)
		e.exec(t, `UPDATE orders SET status = 'returned', version = 2 WHERE id = 1`)
		e.events.take()
		calls := 0
		require.NoError(t, repo.Update(ctx, 1, func(_ context.Context, o *order) error {
			calls++
			assert.Equal(t, "returned", o.status, "what the database holds")
			o.status = "refunded"
			return nil
		}))
		assert.Equal(t, 1, calls)
		assert.Equal(t, []rediscache.Kind{bypass, invalidated}, e.events.take())
		got, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, "refunded", got.status)
		assert.Equal(t, int64(3), got.version)
	})
}

// TestUnversioned: FindForUpdate, and Update of an aggregate without a
// version, read the database and never the cache: an entry older than the
// database is not used, and no increment is lost.
func TestUnversioned(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		counters, err := sqlstore.NewRepository[*counter, int64](e.db, counterMapping(t), rediscache.Wrap[*counter, int64](e.cache(nil)))
		require.NoError(t, err)
		require.NoError(t, counters.Save(ctx, &counter{id: 1}))
		c, err := counters.Find(ctx, 1)
		require.NoError(t, err)
		require.Zero(t, c.n)
		require.True(t, strings.HasPrefix(e.held(t, 1), "V0\n"))
		e.exec(t, `UPDATE counters SET n = 5 WHERE id = 1`) // behind the cache's back
		e.events.take()

		require.NoError(t, e.db.InTx(ctx, func(ctx context.Context) error {
			c, err := counters.FindForUpdate(ctx, 1)
			require.NoError(t, err)
			assert.Equal(t, int64(5), c.n, "FindForUpdate reads the database")
			return nil
		}))
		assert.Empty(t, e.events.take(), "the store's locking load: the cache is not asked")

		const workers = 8
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				assert.NoError(t, counters.Update(ctx, 1, func(_ context.Context, c *counter) error { c.n++; return nil }))
			})
		}
		wg.Wait()
		for _, k := range e.events.take() {
			assert.NotEqual(t, hit, k)
		}
		got, err := counters.Store().Select(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, int64(5+workers), got.n, "no increment lost")
		c, err = counters.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, int64(5+workers), c.n, "Find after the Updates: their commits invalidated the entry")
	})
}

// TestRollback: a unit of work that writes and rolls back never publishes
// its write: until it ends, the cache is as it was (nothing invalidated or
// written before the end), and after the rollback no reader gets the
// rolled-back version; the rollback drops the entry, as a failed COMMIT
// would need.
func TestRollback(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		repo := e.orders(t, e.cache(nil))
		require.NoError(t, repo.Save(ctx, &order{id: 1, status: "new"}))
		_, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		before := e.held(t, 1)
		require.True(t, strings.HasPrefix(before, "V0\n"))
		e.events.take()

		rollback := errors.New("roll back")
		err = e.db.InTx(ctx, func(ctx context.Context) error {
			o, err := repo.Find(ctx, 1)
			require.NoError(t, err)
			o.status = "paid"
			require.NoError(t, repo.Save(ctx, o))
			assert.Equal(t, before, e.held(t, 1), "nothing is invalidated before the end")
			assert.Equal(t, []rediscache.Kind{bypass}, e.events.take(), "a load in a unit of work reads the database")
			return rollback
		})
		require.ErrorIs(t, err, rollback)
		assert.Equal(t, []rediscache.Kind{invalidated}, e.events.take())
		assert.False(t, strings.HasPrefix(e.held(t, 1), "V1"))
		got, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, "new", got.status)
		assert.Equal(t, int64(0), got.version)

		// The same in a tracking scope without a transaction: its save
		// commits at once, and stays; the rollback of the scope drops the
		// entry, which its commit would have.
		err = repo.Update(ctx, 1, paid)
		require.NoError(t, err)
		_, err = repo.Find(ctx, 1)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(e.held(t, 1), "V1\n"))
		e.events.take()
		scopeErr := tracking.InScope(ctx, func(ctx context.Context) error {
			o, err := repo.Find(ctx, 1)
			require.NoError(t, err)
			o.status = "shipped"
			require.NoError(t, repo.Save(ctx, o))
			return rollback
		})
		require.ErrorIs(t, scopeErr, rollback)
		assert.Equal(t, []rediscache.Kind{bypass, invalidated}, e.events.take())
		got, err = repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, "shipped", got.status, "the write stayed, and the entry of v1 was dropped")
	})
}

// outage runs the same scenario with Redis failing in three ways: down
// (connections refused), stalled behind a proxy that holds what it gets,
// and paused (CLIENT PAUSE, which holds every script): loads fall back to
// the database, within the timeout, and saves succeed; when Redis is
// back, the cache is used again, and never returns what was written
// meanwhile as older.
func TestRedisOutage(t *testing.T) {
	for _, how := range []string{"down", "stalled", "paused"} {
		t.Run(how, func(t *testing.T) {
			forEachDB(t, func(t *testing.T, e *env) {
				ctx := context.Background()
				addr := testdb.RedisAddr(t)
				var paused rueidis.Client // the private server's
				if how == "paused" {
					addr = privateRedis(t)
					c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
					require.NoError(t, err)
					defer c.Close()
					paused = c
				}
				p := newProxy(t, addr)
				client := e.proxyClient(t, p)
				defer client.Close()
				const timeout = 200 * time.Millisecond // what a call takes under load, and far less than the outage
				repo := e.orders(t, e.cache(client, rediscache.WithTimeout(timeout)))
				require.NoError(t, repo.Save(ctx, &order{id: 1, status: "new"}))
				_, err := repo.Find(ctx, 1)
				require.NoError(t, err)
				e.events.take()

				// The outage lasts far longer than the test needs: a load
				// that waited for Redis would not return before it ends.
				const outage = 30 * time.Second
				var restore func()
				switch how {
				case "down":
					p.down()
					restore = func() {}
				case "stalled":
					p.stall()
					restore = p.resume
				case "paused":
					require.NoError(t, paused.Do(ctx, paused.B().ClientPause().Timeout(outage.Milliseconds()).Write().Build()).Error())
					restore = func() {
						require.NoError(t, paused.Do(ctx, paused.B().ClientUnpause().Build()).Error())
					}
				}
				start := time.Now()
				o, err := repo.Find(ctx, 1)
				require.NoError(t, err, "the load falls back to the database")
				o.status = "paid"
				require.NoError(t, repo.Save(ctx, o), "the save succeeds")
				o2, err := repo.Find(ctx, 1)
				require.NoError(t, err)
				assert.Equal(t, int64(1), o2.version)
				elapsed := time.Since(start)
				kinds := e.events.take() // the invalidation under way ended, by the timeout
				restore()
				assert.Less(t, elapsed, outage/2, "nothing waited for Redis to come back")
				// The load fails; the save's invalidation fails; the load
				// after it waits for that invalidation, no longer than the
				// timeout: it fails when it then asks Redis, or reads the
				// database without asking when the invalidation is not
				// over (Redis stalled or paused).
				first := failed
				if e.near && how == "paused" {
					// CLIENT PAUSE WRITE holds the scripts, not the near
					// cache's GET: Redis still answers what it holds.
					first = hit
				}
				require.Len(t, kinds, 3, "the load, the invalidation, the load: each reported: %v", kinds)
				rest := slices.Clone(kinds)
				for _, k := range []rediscache.Kind{first, failed} {
					i := slices.Index(rest, k)
					require.GreaterOrEqual(t, i, 0, "%v in %v", k, kinds)
					rest = slices.Delete(rest, i, i+1)
				}
				assert.Contains(t, []rediscache.Kind{failed, bypass}, rest[0], "the second load: %v", kinds)

				if how == "down" {
					return
				}
				// Back, with what Redis held run late (a lease that blocks
				// fills until it expires, an invalidation): never the entry
				// of v0 that the save could not drop.
				for range 2 {
					got, err := repo.Find(ctx, 1)
					require.NoError(t, err)
					assert.Equal(t, int64(1), got.version)
				}
			})
		})
	}
}

// TestFailures: every failure reported to the observer says what failed.
func TestFailures(t *testing.T) {
	forEachDBTier(t, []bool{false}, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := newProxy(t, testdb.RedisAddr(t))
		client := e.proxyClient(t, p)
		defer client.Close()
		plain, err := sqlstore.NewRepository[*order, int64](e.db, orderMapping(t))
		require.NoError(t, err)
		require.NoError(t, plain.Save(ctx, &order{id: 2, status: "new"}))
		repo := e.orders(t, e.cache(client, rediscache.WithTimeout(20*time.Millisecond)))
		p.stall()
		require.NoError(t, repo.Save(ctx, &order{id: 1, status: "new"}))
		_, err = repo.Find(ctx, 2)
		require.NoError(t, err)
		e.settle()
		errs := e.events.failures()
		p.resume()
		require.Len(t, errs, 2)
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		assert.ErrorContains(t, errs[0], "rediscache: get:")
		assert.ErrorContains(t, errs[1], "rediscache: invalidate:")
		assert.ErrorIs(t, errs[1], context.DeadlineExceeded)
	})
}

// TestRemoveByID: RemoveByID deletes through the store's DeleteByID
// (without loading the aggregate), and invalidates after the commit.
func TestRemoveByID(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		repo := e.orders(t, e.cache(nil))
		require.NoError(t, repo.Save(ctx, &order{id: 1, status: "new"}))
		_, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		e.events.take()
		require.NoError(t, repo.RemoveByID(ctx, 1, repository.IfVersion(0)))
		assert.Equal(t, []rediscache.Kind{invalidated}, e.events.take(), "no load: the store's DeleteByID")
		assert.True(t, strings.HasPrefix(e.held(t, 1), "T1\n"), "the deleted version is never filled again: %q", e.held(t, 1))
		_, err = repo.Find(ctx, 1)
		assert.ErrorIs(t, err, repository.ErrNotFound)
	})
}

// TestSaveDoesNotWaitForRedis: a save returns without waiting for its
// invalidation, which ends once Redis answers; meanwhile a Find of the
// aggregate by this process waits for it, and never reads the entry the
// save made stale, which Redis still holds; Close waits for it too.
func TestSaveDoesNotWaitForRedis(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		client := &holdingInvalidations{Client: e.nearRedis}
		if !e.near {
			client.Client = e.redis
		}
		c := e.cache(client, rediscache.WithTimeout(time.Minute))
		repo := e.orders(t, c)
		require.NoError(t, repo.Save(ctx, &order{id: 1, status: "new"}))
		o, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(e.held(t, 1), "V0\n"))
		e.events.take()

		release := client.holdFrom() // the invalidations wait until released
		o.status = "paid"
		require.NoError(t, repo.Save(ctx, o), "returned while its invalidation waits")
		e.events.mu.Lock()
		assert.Empty(t, e.events.all, "the invalidation has not ended")
		e.events.mu.Unlock()
		require.True(t, strings.HasPrefix(e.peek(t, 1), "V0\n"), "Redis still holds version 0")
		found := make(chan *order)
		go func() {
			got, err := repo.Find(ctx, 1)
			assert.NoError(t, err)
			found <- got
		}()
		closed := make(chan struct{})
		go func() {
			c.Close()
			close(closed)
		}()
		release()
		got := <-found
		assert.Equal(t, int64(1), got.version, "never the entry of version 0")
		<-closed
		kinds := e.events.take()
		assert.Equal(t, invalidated, kinds[0], "%v", kinds)
	})
}

// holdingInvalidations is a client whose invalidations (the scripts run
// with two decimal arguments, a version and a TTL) wait, once holdFrom
// is called, until released.
type holdingInvalidations struct {
	rueidis.Client
	hold atomic.Pointer[chan struct{}]
}

// holdFrom holds the invalidations from now on, until the returned
// function is called.
func (h *holdingInvalidations) holdFrom() (release func()) {
	ch := make(chan struct{})
	h.hold.Store(&ch)
	return func() { close(ch) }
}

func (h *holdingInvalidations) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	if args := cmd.Commands(); len(args) == 6 && (args[0] == "EVALSHA" || args[0] == "EVAL") && decimal(args[4]) && decimal(args[5]) {
		if hold := h.hold.Load(); hold != nil {
			select {
			case <-*hold:
			case <-ctx.Done():
				return rueidis.NewErrorResult(ctx.Err())
			}
		}
	}
	return h.Client.Do(ctx, cmd)
}

func decimal(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}
