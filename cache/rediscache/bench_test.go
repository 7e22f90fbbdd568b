package rediscache_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/cache/rediscache"
	"github.com/dddkit/dddkit/internal/testdb"
	"github.com/dddkit/dddkit/repository/sqlstore"
	"github.com/dddkit/dddkit/tracking"
)

// BenchmarkFind finds an order of n items through the repository, on
// PostgreSQL over pgxpool and Redis:
//
//   - from=postgres: without the cache;
//   - from=redis: with the cache, a hit each time (Redis, decoding, and
//     the snapshot that every Find takes);
//   - from=near: with the near cache, a hit each time (a copy of the
//     aggregate it keeps, which is the copy's snapshot);
//   - op=copy: tracking.Copy of the aggregate, for scale.
//
// BenchmarkSave saves a change of one item of the same order, without
// and with the cache (whose save sends an invalidation after the commit,
// and does not wait for it), and with the near cache too.
func BenchmarkFind(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			e, plain, cached := benchRepos(b, n)
			ctx := context.Background()
			b.Run("from=postgres", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := plain.Find(ctx, 1); err != nil {
						b.Fatal(err)
					}
				}
			})
			_, err := cached.Find(ctx, 1) // fills
			require.NoError(b, err)
			e.events.take()
			b.Run("from=redis", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := cached.Find(ctx, 1); err != nil {
						b.Fatal(err)
					}
				}
			})
			for _, k := range e.events.take() {
				if k != hit {
					b.Fatalf("not a hit: %v", k)
				}
			}
			near := e.orders(b, e.cache(cachingClient(b, testdb.RedisAddr(b)), rediscache.WithNear(0, 0)))
			for range 2 { // a hit from Redis, then in the process
				_, err := near.Find(ctx, 1)
				require.NoError(b, err)
			}
			e.events.take()
			b.Run("from=near", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := near.Find(ctx, 1); err != nil {
						b.Fatal(err)
					}
				}
			})
			for _, k := range e.events.take() {
				if k != rediscache.NearHit {
					b.Fatalf("not a near hit: %v", k)
				}
			}
			o, err := plain.Find(ctx, 1)
			require.NoError(b, err)
			b.Run("op=copy", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := tracking.Copy(o); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func BenchmarkSave(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			e, plain, cached := benchRepos(b, n)
			near := e.orders(b, e.cache(cachingClient(b, testdb.RedisAddr(b)), rediscache.WithNear(0, 0)))
			ctx := context.Background()
			for _, r := range []struct {
				name string
				repo *sqlstore.Repository[*order, int64]
			}{{"cache=none", plain}, {"cache=redis", cached}, {"cache=near", near}} {
				b.Run(r.name, func(b *testing.B) {
					o, err := r.repo.Find(ctx, 1)
					require.NoError(b, err)
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						o.items[i%n].qty++
						i++
						if err := r.repo.Save(ctx, o); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}

// benchRepos stores an order of n items on PostgreSQL, and returns the
// environment and two repositories of it: without and with the cache.
func benchRepos(b *testing.B, n int) (*env, *sqlstore.Repository[*order, int64], *sqlstore.Repository[*order, int64]) {
	e := pgEnv(b)
	e.events.countOnly = true
	ctx := context.Background()
	plain, err := sqlstore.NewRepository[*order, int64](e.db, orderMapping(b))
	require.NoError(b, err)
	o := &order{id: 1, status: "new"}
	for i := 1; i <= n; i++ {
		o.items = append(o.items, &item{id: int64(i), sku: fmt.Sprintf("SKU-%05d", i), qty: i})
	}
	require.NoError(b, plain.Save(ctx, o))
	return e, plain, e.orders(b, e.cache(nil))
}

// BenchmarkNearInvalidation measures the invalidation delay of the near
// cache: another process (a cache on a client of its own) saves an order
// that the near cache of this one holds; the delay is from the moment
// that save returns until the client of this process is told to drop the
// entry (rueidis' OnInvalidations). It reports the median and the 99th
// percentile (µs-p50, µs-p99); ns/op is a whole round (a save, and the
// finds that fill the near cache again).
func BenchmarkNearInvalidation(b *testing.B) {
	e := pgEnv(b)
	e.events.countOnly = true
	ctx := context.Background()
	var key atomic.Value // the key watched
	key.Store("")
	told := make(chan time.Time, 64)
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{testdb.RedisAddr(b)},
		OnInvalidations: func(keys []rueidis.RedisMessage) {
			now := time.Now()
			for _, k := range keys {
				if s, err := k.ToString(); err == nil && s == key.Load() {
					told <- now
				}
			}
		}})
	require.NoError(b, err)
	defer client.Close()
	here := e.orders(b, e.cache(client, rediscache.WithNear(0, 0)))
	there := e.orders(b, e.cache(nil))
	require.NoError(b, there.Save(ctx, &order{id: 1, status: "new", items: []*item{{id: 1, sku: "a", qty: 1}}}))
	keys, err := e.redis.Do(ctx, e.redis.B().Keys().Pattern(e.prefix+"*:1").Build()).AsStrSlice()
	require.NoError(b, err)
	e.settle()
	var delays []time.Duration
	for i := 0; i < b.N; i++ {
		// Filled, and held by the near cache of this process.
		for near := false; !near; {
			_, err := here.Find(ctx, 1)
			require.NoError(b, err)
			near = slices.Contains(e.events.take(), rediscache.NearHit)
		}
		if len(keys) == 0 {
			keys, err = e.redis.Do(ctx, e.redis.B().Keys().Pattern(e.prefix+"*:1").Build()).AsStrSlice()
			require.NoError(b, err)
			require.Len(b, keys, 1)
		}
		key.Store(keys[0])
		require.NoError(b, there.Update(ctx, 1, func(_ context.Context, o *order) error { o.items[0].qty++; return nil }))
		saved := time.Now()
		select {
		case at := <-told:
			delays = append(delays, max(at.Sub(saved), 0))
		case <-time.After(time.Minute):
			b.Fatal("never told")
		}
		key.Store("")
		e.settle()
	}
	slices.Sort(delays)
	b.ReportMetric(float64(delays[len(delays)/2].Microseconds()), "µs-p50")
	b.ReportMetric(float64(delays[len(delays)*99/100].Microseconds()), "µs-p99")
}
