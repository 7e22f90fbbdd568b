package rediscache_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/cache/rediscache"
	"github.com/dddkit/dddkit/internal/testdb"
)

// TestDialRedisDown: a service starts while Redis is down: Dial returns
// a cache all the same, whose loads and saves go to the database, and
// which connects once Redis is up, with nothing done by the service.
func TestDialRedisDown(t *testing.T) {
	e := sqliteEnv(t)
	ctx := context.Background()
	addr := freeAddr(t) // nothing listens there yet
	start := time.Now()
	c, err := rediscache.Dial(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true},
		rediscache.WithPrefix(e.prefix), rediscache.WithObserver(e.events.observe), rediscache.WithTimeout(5*time.Second))
	require.NoError(t, err, "Redis down does not keep the service from starting")
	defer c.Close()
	repo := e.orders(t, c)
	require.NoError(t, repo.Save(ctx, &order{id: 1, status: "new"}))
	for range 2 {
		o, err := repo.Find(ctx, 1)
		require.NoError(t, err, "read from the database")
		assert.Equal(t, "new", o.status)
	}
	assert.Less(t, time.Since(start), 15*time.Second, "nothing waited for Redis")
	for _, k := range e.events.take() {
		assert.Equal(t, failed, k, "every call to Redis reported as failed")
	}

	startRedis(t, addr)
	deadline := time.Now().Add(2 * time.Minute) // the retries come every second, then less often
	for {
		_, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		if slices.Contains(e.events.take(), filled) {
			break
		}
		require.True(t, time.Now().Before(deadline), "never connected")
		time.Sleep(50 * time.Millisecond) // waiting for the retry: no ordering between goroutines
	}
	// The save made while Redis was down could not drop an entry that
	// Redis may hold from before: this process distrusts it, drops it
	// once more, and fills again.
	var kinds []rediscache.Kind
	for range 3 {
		_, err = repo.Find(ctx, 1)
		require.NoError(t, err)
		kinds = append(kinds, e.events.take()...)
	}
	assert.Equal(t, []rediscache.Kind{bypass, invalidated, miss, filled, hit}, kinds, "connected: the cache is used")
}

// TestDial: with Redis up, Dial connects at once; options that rueidis
// refuses are an error; Close closes the client Dial made.
func TestDial(t *testing.T) {
	e := sqliteEnv(t)
	ctx := context.Background()
	c, err := rediscache.Dial(rueidis.ClientOption{InitAddress: []string{testdb.RedisAddr(t)}, DisableCache: true},
		rediscache.WithPrefix(e.prefix), rediscache.WithObserver(e.events.observe), rediscache.WithTimeout(5*time.Second))
	require.NoError(t, err)
	repo := e.orders(t, c)
	require.NoError(t, repo.Save(ctx, &order{id: 1, status: "new"}))
	_, err = repo.Find(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, []rediscache.Kind{invalidated, miss, filled}, e.events.take())
	c.Close()
	c.Close() // twice: nothing more
	_, err = repo.Find(ctx, 1)
	require.NoError(t, err, "closed: the database is read")
	assert.Equal(t, []rediscache.Kind{failed}, e.events.take())

	_, err = rediscache.Dial(rueidis.ClientOption{})
	assert.Error(t, err, "no address")
}
