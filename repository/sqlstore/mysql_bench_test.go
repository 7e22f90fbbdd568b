package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
)

// BenchmarkMySQLSaveOneItemChanged is BenchmarkSaveOneItemChanged on MySQL
// or MariaDB (DDDKIT_TEST_MYSQL_DSN), outside a transaction:
//
//   - impl=dddkit: through the repository: one round trip (its BEGIN,
//     its two UPDATEs with their checks, its COMMIT);
//   - impl=hand-1trip: the floor in one round trip: the same BEGIN, two
//     UPDATEs and COMMIT written by hand as one multi-statement query,
//     the version check read after the COMMIT (so it cannot undo a
//     conflicting save: a floor, not a safe save);
//   - impl=hand-tx: the usual code by hand: a database/sql transaction,
//     the root's UPDATE checked, the item's UPDATE, the COMMIT: four
//     round trips.
//
// Each reports round trips per operation, counted on the wire.
func BenchmarkMySQLSaveOneItemChanged(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			e := newMyEnv(b, nil)
			ctx := context.Background()
			for id := orderID(1); id <= 3; id++ {
				o := newOrder(id, "alice")
				for i := 1; i <= n; i++ {
					o.items = append(o.items, &item{id: itemID(i), sku: fmt.Sprintf("SKU-%05d", i), quantity: 1})
				}
				o.recompute()
				require.NoError(b, e.repo.Save(ctx, o))
			}
			trips := func(b *testing.B, run func(i int) error) {
				before := e.wire.count()
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					if err := run(i); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(e.wire.count()-before)/float64(b.N), "trips/op")
			}

			b.Run("impl=dddkit", func(b *testing.B) {
				o, err := e.repo.Find(ctx, 1)
				require.NoError(b, err)
				trips(b, func(i int) error {
					o.items[i%n].quantity++
					o.total.amount += 100
					return e.repo.Save(ctx, o)
				})
			})
			b.Run("impl=hand-1trip", func(b *testing.B) {
				o, err := e.repo.Find(ctx, 2)
				require.NoError(b, err)
				trips(b, func(i int) error {
					it := o.items[i%n]
					it.quantity++
					o.total.amount += 100
					return mysqlHandOneTrip(ctx, e.x, o, it)
				})
			})
			b.Run("impl=hand-tx", func(b *testing.B) {
				o, err := e.repo.Find(ctx, 3)
				require.NoError(b, err)
				trips(b, func(i int) error {
					it := o.items[i%n]
					it.quantity++
					o.total.amount += 100
					return mysqlHandTx(ctx, e.x, o, it)
				})
			})
		})
	}
}

func mysqlHandOneTrip(ctx context.Context, x *sqlx.DB, o *order, it *item) error {
	rows, err := x.QueryContext(ctx, "START TRANSACTION; "+
		"UPDATE orders SET total_amount = ?, version = ? WHERE id = ? AND version = ?; SELECT ROW_COUNT(); "+
		"UPDATE order_items SET quantity = ? WHERE order_id = ? AND id = ?; COMMIT",
		o.total.amount, o.version+1, int64(o.id), o.version, it.quantity, int64(o.id), int64(it.id))
	if err != nil {
		return err
	}
	var n int64
	if rows.Next() {
		err = rows.Scan(&n)
	}
	for err == nil && rows.NextResultSet() {
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != 1 {
		err = errors.New("conflict")
	}
	if err == nil {
		o.version++
	}
	return err
}

func mysqlHandTx(ctx context.Context, x *sqlx.DB, o *order, it *item) error {
	tx, err := x.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, "UPDATE orders SET total_amount = ?, version = ? WHERE id = ? AND version = ?",
		o.total.amount, o.version+1, int64(o.id), o.version)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errors.Join(err, errors.New("conflict"))
	}
	if _, err := tx.ExecContext(ctx, "UPDATE order_items SET quantity = ? WHERE order_id = ? AND id = ?",
		it.quantity, int64(o.id), int64(it.id)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	o.version++
	return nil
}

// BenchmarkMySQLLoad loads one order of n items outside a transaction:
//
//   - impl=dddkit: Find: one round trip (a read-only snapshot
//     transaction, the root's SELECT and the items', its COMMIT);
//   - impl=hand: the same two SELECTs by hand in one multi-statement
//     query, without a transaction, scanned into the same structs.
func BenchmarkMySQLLoad(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			e := newMyEnv(b, nil)
			ctx := context.Background()
			o := newOrder(1, "alice")
			for i := 1; i <= n; i++ {
				o.items = append(o.items, &item{id: itemID(i), sku: fmt.Sprintf("SKU-%05d", i), quantity: 1})
			}
			o.recompute()
			require.NoError(b, e.repo.Save(ctx, o))
			b.Run("impl=dddkit", func(b *testing.B) {
				before := e.wire.count()
				b.ReportAllocs()
				for range b.N {
					if _, err := e.repo.Find(ctx, 1); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(e.wire.count()-before)/float64(b.N), "trips/op")
			})
			b.Run("impl=hand", func(b *testing.B) {
				before := e.wire.count()
				b.ReportAllocs()
				for range b.N {
					if err := mysqlHandLoad(ctx, e.x); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(e.wire.count()-before)/float64(b.N), "trips/op")
			})
		})
	}
}

func mysqlHandLoad(ctx context.Context, x *sqlx.DB) error {
	rows, err := x.QueryContext(ctx, "SELECT id, customer, total_amount, total_currency, version FROM orders WHERE id = ?; "+
		"SELECT id, sku, quantity FROM order_items WHERE order_id = ? ORDER BY id", 1, 1)
	if err != nil {
		return err
	}
	defer rows.Close()
	o := &order{}
	for rows.Next() {
		if err := rows.Scan(&o.id, &o.customer, &o.total.amount, &o.total.currency, &o.version); err != nil {
			return err
		}
	}
	if !rows.NextResultSet() {
		return errors.New("no items")
	}
	for rows.Next() {
		it := &item{}
		if err := rows.Scan(&it.id, &it.sku, &it.quantity); err != nil {
			return err
		}
		o.items = append(o.items, it)
	}
	return rows.Close()
}
