package sqlstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/tracking"
)

// BenchmarkCacheCodec measures the cache codec on an order of n items,
// against the load it stands for, on PostgreSQL over pgxpool:
//
//   - op=select: Store.Select from the database (one batch);
//   - op=encode: Store.Encode of the loaded order;
//   - op=decode: Store.Decode, the rows read straight into the fields;
//   - op=replay: the rows replayed through database/sql and the store's
//     loader instead, what Decode does with a mapping it cannot read
//     straight;
//   - op=parse: the bytes read into rows alone, without the replay: what
//     the replay costs is replay less parse;
//   - op=copy: tracking.Copy of the order, the snapshot that every load
//     takes, for scale.
//
// It reports the entry's size (B/entry) and the size of the order's rows
// in PostgreSQL (B/rows, pg_column_size of each row, tuple headers
// included, as the heap holds them before alignment).
func BenchmarkCacheCodec(b *testing.B) {
	for _, n := range []int{0, 10, 100, 1000} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			be := pgxBackend(b)
			ctx := context.Background()
			m := orderMapping(b)
			repo, err := NewRepository[*order, orderID](be.quiet, m)
			require.NoError(b, err)
			o := newOrder(1, "alice")
			for i := 1; i <= n; i++ {
				o.items = append(o.items, &item{id: itemID(i), sku: fmt.Sprintf("SKU-%05d", i), quantity: i})
			}
			o.recompute()
			require.NoError(b, repo.Save(ctx, o))
			s := NewStore[*order, orderID](be.quiet, m)
			loaded, err := s.Select(ctx, 1)
			require.NoError(b, err)
			entry, err := s.Encode(loaded)
			require.NoError(b, err)
			rows := be.raw.count(b, `SELECT (SELECT pg_column_size(o.*) FROM orders o WHERE id = 1) + coalesce((SELECT sum(pg_column_size(i.*)) FROM order_items i WHERE order_id = 1), 0)`)
			report := func(b *testing.B) {
				b.ReportMetric(float64(len(entry)), "B/entry")
				b.ReportMetric(float64(rows), "B/rows")
			}

			b.Run("op=select", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Select(ctx, 1); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("op=encode", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Encode(loaded); err != nil {
						b.Fatal(err)
					}
				}
				report(b)
			})
			b.Run("op=decode", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Decode(entry); err != nil {
						b.Fatal(err)
					}
				}
				report(b)
			})
			b.Run("op=replay", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.decodeReplay(entry); err != nil {
						b.Fatal(err)
					}
				}
				report(b)
			})
			b.Run("op=parse", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					d := rowDecoder{b: entry[9:]}
					root := make([]any, len(s.m.root.cols))
					if err := d.values(root); err != nil {
						b.Fatal(err)
					}
					sets := make([][]any, len(s.m.children))
					if err := d.kids(s.m.top, []any{root[s.m.root.key]}, sets); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("op=copy", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := tracking.Copy(loaded); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
