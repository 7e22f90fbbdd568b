package rediscache_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/cache/rediscache"
	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/internal/testdb"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

const nearHit = rediscache.NearHit

// forEachNear runs body on each database with a near cache, near hits
// reported as such.
func forEachNear(t *testing.T, body func(t *testing.T, e *env)) {
	forEachDBTier(t, []bool{true}, func(t *testing.T, e *env) {
		e.events.nearAsHit = false
		body(t, e)
	})
}

// status returns the change of an order's status to one of version v.
func status(v int64) func(context.Context, *order) error {
	return func(_ context.Context, o *order) error { o.status = fmt.Sprintf("v%d", v); return nil }
}

// warm finds the order id until the near cache serves it.
func warm(t *testing.T, e *env, repo *sqlstore.Repository[*order, int64], id int64) {
	t.Helper()
	warmWith(t, e, func() error { _, err := repo.Find(context.Background(), id); return err })
}

// warmWith calls find until the near cache serves it.
func warmWith(t *testing.T, e *env, find func() error) {
	t.Helper()
	var seen []rediscache.Kind
	for range 100 {
		require.NoError(t, find())
		for _, k := range e.events.take() {
			if k == nearHit {
				return
			}
			seen = append(seen, k)
		}
	}
	t.Fatalf("the near cache never served the order: %v", seen)
}

// TestNearHit: once read from Redis, an order is found in the process,
// with no SQL and no call to Redis; each Find returns a new aggregate,
// equal to the database's, sharing no memory with the others, tracked
// like a loaded one.
func TestNearHit(t *testing.T) {
	forEachNear(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		repo := e.orders(t, e.cache(nil))
		require.NoError(t, repo.Save(ctx, &order{id: 1, status: "new", items: []*item{{id: 1, sku: "a", qty: 1}, {id: 2, sku: "b", qty: 2}}}))
		fromDB, err := repo.Store().Select(ctx, 1)
		require.NoError(t, err)
		warm(t, e, repo, 1)

		e.takeSQL()
		a, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		b, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, []rediscache.Kind{nearHit, nearHit}, e.events.take())
		assert.Zero(t, e.takeSQL(), "a near hit sends no SQL")
		for _, got := range []*order{a, b} {
			same, err := diff.Equal(fromDB, got)
			require.NoError(t, err)
			assert.True(t, same)
		}
		assert.NotSame(t, a, b)
		assert.NotSame(t, a.items[0], b.items[0])

		// A change of one is not seen by the other, nor by the next Find,
		// and is the only change of its own snapshot.
		a.items[0].qty = 99
		a.status = "paid"
		assert.Equal(t, 1, b.items[0].qty)
		c, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, 1, c.items[0].qty)
		assert.Equal(t, "new", c.status)
		for _, o := range []*order{b, c} {
			ch, err := repo.Tracker().Changes(ctx, o)
			require.NoError(t, err)
			assert.False(t, ch.Changed(), "untouched: %s", ch.String())
		}
		ch, err := repo.Tracker().Changes(ctx, a)
		require.NoError(t, err)
		assert.Equal(t, 2, len(ch.Fields)+len(ch.Collections), "its own changes only: %s", ch.String())

		// Saved as a diff, checked by its version; then the others'
		// snapshots are still those of version 0: a save of one conflicts.
		require.NoError(t, repo.Save(ctx, a))
		assert.Equal(t, int64(1), a.version)
		got, err := repo.Store().Select(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, 99, got.items[0].qty)
		assert.Equal(t, 2, got.items[1].qty)
		ch, err = repo.Tracker().Changes(ctx, b)
		require.NoError(t, err)
		assert.False(t, ch.Changed(), "a's save left b's snapshot alone: %s", ch.String())
		b.items[1].qty = 7
		assert.ErrorIs(t, repo.Save(ctx, b), repository.ErrConflict)
	})
}

// TestNearReadYourWrites: a write of this process drops its own near
// entry at once, without waiting for Redis' message; here the message
// never comes (the client's tracking is NOLOOP: Redis does not tell a
// client of its own writes), so only the cache's own record of the write
// keeps the older entry from being read.
func TestNearReadYourWrites(t *testing.T) {
	forEachNear(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		client := cachingClient(t, testdb.RedisAddr(t), "NOLOOP")
		cache := e.cache(client)
		repo := e.orders(t, cache)
		require.NoError(t, repo.Save(ctx, &order{id: 1, status: "new"}))
		e.settle() // its invalidation ended
		// Filled by a cache without a near cache: the near cache's client
		// would not hear of its own fill either.
		_, err := e.orders(t, rediscache.New(e.redis, rediscache.WithPrefix(e.prefix))).Find(ctx, 1)
		require.NoError(t, err)
		warm(t, e, repo, 1)
		for v := int64(1); v <= 3; v++ {
			require.NoError(t, repo.Update(ctx, 1, status(v)))
			got, err := repo.Find(ctx, 1)
			require.NoError(t, err)
			assert.Equal(t, v, got.version, "this process reads what it committed")
			assert.NotContains(t, e.events.take(), nearHit)
		}

		// Removed, then created again at version 0: the removed versions
		// stay refused.
		o, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		require.NoError(t, repo.Remove(ctx, o))
		_, err = repo.Find(ctx, 1)
		assert.ErrorIs(t, err, repository.ErrNotFound)
		require.NoError(t, repo.Save(ctx, &order{id: 1, status: "again"}))
		got, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, "again", got.status)

		// Without a version: no near entry is read after a write of this
		// process, for a TTL.
		counters, err := sqlstore.NewRepository[*counter, int64](e.db, counterMapping(t), rediscache.Wrap[*counter, int64](cache))
		require.NoError(t, err)
		// Written and filled by another process: a write of this one would
		// keep the near cache from reading the counter for a TTL.
		plain, err := sqlstore.NewRepository[*counter, int64](e.db, counterMapping(t), rediscache.Wrap[*counter, int64](rediscache.New(e.redis, rediscache.WithPrefix(e.prefix))))
		require.NoError(t, err)
		require.NoError(t, plain.Save(ctx, &counter{id: 1}))
		_, err = plain.Find(ctx, 1)
		require.NoError(t, err)
		warmWith(t, e, func() error { _, err := counters.Find(ctx, 1); return err })
		for n := int64(1); n <= 3; n++ {
			require.NoError(t, counters.Update(ctx, 1, func(_ context.Context, c *counter) error { c.n++; return nil }))
			c, err := counters.Find(ctx, 1)
			require.NoError(t, err)
			assert.Equal(t, n, c.n, "this process reads what it committed")
			assert.NotContains(t, e.events.take(), nearHit)
		}
	})
}

// TestNearOtherProcess: another process's write reaches the near cache
// of this one: Redis tells its client, which drops the entry. Until then
// a Find may return the version before, never an older one.
func TestNearOtherProcess(t *testing.T) {
	forEachNear(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		here := e.orders(t, e.cache(nil))
		there := e.orders(t, e.cache(cachingClient(t, testdb.RedisAddr(t)), rediscache.WithNear(0, 0)))
		require.NoError(t, here.Save(ctx, &order{id: 1, status: "new"}))
		warm(t, e, here, 1)
		for v := int64(1); v <= 3; v++ {
			require.NoError(t, there.Update(ctx, 1, status(v)))
			written := time.Now()
			seen := v - 1
			deadline := time.Now().Add(30 * time.Second) // far more than the delay, even under load
			for seen < v {
				got, err := here.Find(ctx, 1)
				require.NoError(t, err)
				require.GreaterOrEqual(t, got.version, seen, "never older than what was read before")
				require.LessOrEqual(t, got.version, v)
				seen = got.version
				if time.Now().After(deadline) {
					t.Fatalf("the write of version %d never reached the near cache", v)
				}
			}
			t.Logf("version %d seen here %v after the write there returned", v, time.Since(written))
			warm(t, e, here, 1)
		}
	})
}

// TestNearFlushedOnDisconnect: when the connection that tracks the keys
// drops, what the near cache held on it is dropped: an invalidation lost
// with the connection cannot leave an entry behind.
func TestNearFlushedOnDisconnect(t *testing.T) {
	forEachNear(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := newProxy(t, testdb.RedisAddr(t))
		client := e.proxyClient(t, p)
		defer client.Close()
		here := e.orders(t, e.cache(client))
		there := e.orders(t, e.cache(nil)) // another process, on its own connection
		require.NoError(t, here.Save(ctx, &order{id: 1, status: "new"}))
		warm(t, e, here, 1)

		p.stall() // Redis' message to here is held, then lost with the connection
		require.NoError(t, there.Update(ctx, 1, paid))
		e.settle() // its invalidation ended: Redis sent its message
		p.cut()
		reconnect(t, client)
		e.events.take()
		got, err := here.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, int64(1), got.version, "the entry of version 0 was dropped with the connection")
		assert.NotContains(t, e.events.take(), nearHit)
	})
}

// TestNearBounds: the near cache holds an entry for at most its TTL, and
// at most as many aggregates as its size.
func TestNearBounds(t *testing.T) {
	e := sqliteEnv(t)
	ctx := context.Background()
	const ttl = 50 * time.Millisecond
	c := e.cache(e.nearRedis, rediscache.WithNear(2, ttl))
	repo := e.orders(t, c)
	for id := int64(1); id <= 3; id++ {
		require.NoError(t, repo.Save(ctx, &order{id: id, status: "new"}))
		warm(t, e, repo, id)
	}
	time.Sleep(2 * ttl) // at least the TTL: an entry read before is too old now
	for id := int64(1); id <= 3; id++ {
		_, err := repo.Find(ctx, id)
		require.NoError(t, err)
	}
	assert.NotContains(t, e.events.take(), nearHit, "no entry outlives the TTL")
	assert.LessOrEqual(t, rediscache.NearLen(c), 2)
}
