package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// BenchmarkSaveOneItemChanged saves an order of n items after a change of
// one item's quantity and of the order's total, on PostgreSQL over
// pgxpool, outside a transaction:
//
//   - impl=dddkit: through the repository: snapshot diff, generated
//     statements, one batch, snapshot advance;
//   - impl=hand: the lower bound: the two UPDATEs written by hand (the
//     order's total and version with the version check, and the item's
//     quantity) in one pgx.Batch.
func BenchmarkSaveOneItemChanged(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			be := pgxBackend(b)
			pool := be.raw.(pgxRaw).p
			ctx := context.Background()
			repo, err := NewRepository[*order, orderID](be.quiet, orderMapping(b))
			require.NoError(b, err)
			for id := orderID(1); id <= 2; id++ {
				o := newOrder(id, "alice")
				for i := 1; i <= n; i++ {
					o.items = append(o.items, &item{id: itemID(i), sku: fmt.Sprintf("SKU-%05d", i), quantity: 1})
				}
				o.recompute()
				require.NoError(b, repo.Save(ctx, o))
			}

			b.Run("impl=dddkit", func(b *testing.B) {
				o, err := repo.Find(ctx, 1)
				require.NoError(b, err)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					it := o.items[i%n]
					it.quantity++
					o.total.amount += 100
					if err := repo.Save(ctx, o); err != nil {
						b.Fatal(err)
					}
				}
			})

			b.Run("impl=hand", func(b *testing.B) {
				o, err := NewStore[*order, orderID](be.quiet, orderMapping(b)).Select(ctx, 2)
				require.NoError(b, err)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					it := o.items[i%n]
					it.quantity++
					o.total.amount += 100
					if err := handSave(ctx, pool, o, it); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func handSave(ctx context.Context, pool *pgxpool.Pool, o *order, it *item) error {
	batch := &pgx.Batch{}
	batch.Queue(`UPDATE orders SET total_amount = $1, version = $2 WHERE id = $3 AND version = $4`,
		o.total.amount, o.version+1, int64(o.id), o.version)
	batch.Queue(`UPDATE order_items SET quantity = $1 WHERE order_id = $2 AND id = $3`,
		it.quantity, int64(o.id), int64(it.id))
	br := pool.SendBatch(ctx, batch)
	ct, err := br.Exec()
	if err == nil && ct.RowsAffected() != 1 {
		err = errors.New("conflict")
	}
	if err == nil {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		o.version++
	}
	return err
}

// BenchmarkLoadByCondition loads the 100 orders of one customer, 10 items
// each, out of 200 orders, on PostgreSQL over pgxpool, outside a
// transaction:
//
//   - impl=dddkit: Repository.FindAll with a condition: one batch (roots,
//     then the children of the selected roots), tracked aggregates;
//   - impl=hand: the floor: the same two SELECTs written by hand in one
//     batch, scanned into the same structs, not tracked;
//   - impl=n+1: the approach without a query API: the ids by hand, then one
//     Find per id.
//
// Each reports round trips per operation (trips/op).
func BenchmarkLoadByCondition(b *testing.B) {
	be := pgxBackend(b)
	pool := be.raw.(pgxRaw).p
	ctx := context.Background()
	seedRepo, err := NewRepository[*order, orderID](be.quiet, orderMapping(b))
	require.NoError(b, err)
	for id := orderID(1); id <= 200; id++ {
		cust := "alice"
		if id%2 == 0 {
			cust = "bob"
		}
		o := newOrder(id, cust)
		for i := 1; i <= 10; i++ {
			o.items = append(o.items, &item{id: itemID(i), sku: fmt.Sprintf("SKU-%02d", i), quantity: i})
		}
		o.recompute()
		require.NoError(b, seedRepo.Save(ctx, o))
	}
	q := Where(Eq("customer", "alice"))
	counting := func(b *testing.B) (*DB, func()) {
		var trips int
		last := 0
		db := NewPGX(pool, WithObserver(func(_ context.Context, s Statement) {
			if s.RoundTrip != last {
				trips, last = trips+1, s.RoundTrip
			}
		}))
		return db, func() { b.ReportMetric(float64(trips)/float64(b.N), "trips/op") }
	}
	check := func(b *testing.B, os []*order) {
		if len(os) != 100 || len(os[0].items) != 10 {
			b.Fatalf("loaded %d orders", len(os))
		}
	}

	b.Run("impl=dddkit", func(b *testing.B) {
		db, report := counting(b)
		repo, err := NewRepository[*order, orderID](db, orderMapping(b))
		require.NoError(b, err)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			os, err := repo.FindAll(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			check(b, os)
		}
		report()
	})

	b.Run("impl=hand", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			os, err := handLoad(ctx, pool, "alice")
			if err != nil {
				b.Fatal(err)
			}
			check(b, os)
		}
		b.ReportMetric(1, "trips/op")
	})

	b.Run("impl=n+1", func(b *testing.B) {
		db, report := counting(b)
		repo, err := NewRepository[*order, orderID](db, orderMapping(b))
		require.NoError(b, err)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			rows, err := pool.Query(ctx, `SELECT id FROM orders WHERE customer = $1 ORDER BY id`, "alice")
			if err != nil {
				b.Fatal(err)
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				b.Fatal(err)
			}
			os := make([]*order, 0, len(ids))
			for _, id := range ids {
				o, err := repo.Find(ctx, orderID(id))
				if err != nil {
					b.Fatal(err)
				}
				os = append(os, o)
			}
			check(b, os)
		}
		b.StopTimer()
		report() // the Finds' trips; the query of the ids adds one
	})
}

// handLoad is the floor of BenchmarkLoadByCondition: two SELECTs in one
// batch, scanned by hand.
func handLoad(ctx context.Context, pool *pgxpool.Pool, customer string) ([]*order, error) {
	batch := &pgx.Batch{}
	batch.Queue(`SELECT id, customer, total_amount, total_currency, version FROM orders WHERE customer = $1 ORDER BY id`, customer)
	batch.Queue(`SELECT order_id, id, sku, quantity FROM order_items WHERE order_id IN (SELECT id FROM orders WHERE customer = $1) ORDER BY order_id, id`, customer)
	br := pool.SendBatch(ctx, batch)
	defer br.Close()
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	var out []*order
	byID := map[orderID]*order{}
	for rows.Next() {
		o := &order{}
		if err := rows.Scan(&o.id, &o.customer, &o.total.amount, &o.total.currency, &o.version); err != nil {
			return nil, err
		}
		out = append(out, o)
		byID[o.id] = o
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = br.Query()
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var parent orderID
		it := &item{}
		if err := rows.Scan(&parent, &it.id, &it.sku, &it.quantity); err != nil {
			return nil, err
		}
		if o := byID[parent]; o != nil {
			o.items = append(o.items, it)
		}
	}
	return out, rows.Err()
}
