package rediscache_test

import (
	"context"
	"fmt"
	"testing"

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
// and with the cache (whose save adds an invalidation after the commit).
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
			_, plain, cached := benchRepos(b, n)
			ctx := context.Background()
			for _, r := range []struct {
				name string
				repo *sqlstore.Repository[*order, int64]
			}{{"cache=none", plain}, {"cache=redis", cached}} {
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
