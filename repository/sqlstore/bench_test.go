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
