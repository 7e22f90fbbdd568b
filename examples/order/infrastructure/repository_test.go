package infrastructure_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/order/application"
	"github.com/dddkit/dddkit/examples/order/domain"
	"github.com/dddkit/dddkit/examples/order/infrastructure"
	"github.com/dddkit/dddkit/examples/order/infrastructure/infratest"
	"github.com/dddkit/dddkit/repository"
)

// The contract of the order repository, checked on every backend both by
// reading the database back with plain SQL and by counting the statements
// the observer saw.

const orderID = domain.OrderID(1)

// fixture is a repository and a service on a backend.
type fixture struct {
	*infratest.Backend
	repo *infrastructure.OrderRepository
	svc  *application.Service
}

func newFixture(t *testing.T, b *infratest.Backend) *fixture {
	repo, err := infrastructure.NewOrderRepository(b.DB)
	require.NoError(t, err)
	return &fixture{Backend: b, repo: repo, svc: application.NewService(repo)}
}

// place places order 1: tea 2 x 3.50, coffee 1 x 12.00, milk 3 x 1.20
// (total 22.60), and clears the log.
func (f *fixture) place(t *testing.T) *domain.Order {
	t.Helper()
	r, err := domain.NewRecipientInfo("Ada Lovelace", "+44 20 7946 0000", "12 St James's Square, London")
	require.NoError(t, err)
	o, err := f.svc.PlaceOrder(context.Background(), orderID, "ada", r,
		domain.ItemSpec{Product: "tea", Quantity: 2, UnitPrice: 350},
		domain.ItemSpec{Product: "coffee", Quantity: 1, UnitPrice: 1200},
		domain.ItemSpec{Product: "milk", Quantity: 3, UnitPrice: 120},
	)
	require.NoError(t, err)
	f.Log.Reset()
	return o
}

// orderRow is what the database holds of an order.
type orderRow struct {
	Customer, RecipientName, RecipientPhone, RecipientAddress string
	LastItemID, Total, Version                                int64
	Status                                                    string
	Items                                                     []itemRow
	Discounts                                                 []discountRow
}

// itemRow is one row of order_items.
type itemRow struct {
	ID        int64
	Product   string
	Quantity  int64
	UnitPrice int64
}

// discountRow is one row of item_discounts.
type discountRow struct {
	ID      int64
	ItemID  int64
	Code    string
	Percent int64
}

// stored reads order id back, or reports false when it has no row.
func (f *fixture) stored(t *testing.T, id domain.OrderID) (orderRow, bool) {
	t.Helper()
	var o orderRow
	rows, err := f.Raw.Query(f.Raw.Rebind(`SELECT customer, recipient_name, recipient_phone, recipient_address, last_item_id, total, version, status FROM orders WHERE id = ?`), int64(id))
	require.NoError(t, err)
	found := false
	for rows.Next() {
		found = true
		require.NoError(t, rows.Scan(&o.Customer, &o.RecipientName, &o.RecipientPhone, &o.RecipientAddress, &o.LastItemID, &o.Total, &o.Version, &o.Status))
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	rows, err = f.Raw.Query(f.Raw.Rebind(`SELECT id, product, quantity, unit_price FROM order_items WHERE order_id = ? ORDER BY id`), int64(id))
	require.NoError(t, err)
	for rows.Next() {
		var it itemRow
		require.NoError(t, rows.Scan(&it.ID, &it.Product, &it.Quantity, &it.UnitPrice))
		o.Items = append(o.Items, it)
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	rows, err = f.Raw.Query(f.Raw.Rebind(`SELECT id, item_id, code, percent FROM item_discounts WHERE order_id = ? ORDER BY item_id, id`), int64(id))
	require.NoError(t, err)
	for rows.Next() {
		var d discountRow
		require.NoError(t, rows.Scan(&d.ID, &d.ItemID, &d.Code, &d.Percent))
		o.Discounts = append(o.Discounts, d)
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	if !found {
		require.Empty(t, o.Items, "items without their order")
		require.Empty(t, o.Discounts, "discounts without their order")
	}
	return o, found
}

// count runs a SELECT count(*) with "?" placeholders.
func (f *fixture) count(t *testing.T, q string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, f.Raw.Get(&n, f.Raw.Rebind(q), args...), q)
	return n
}

func ctx() context.Context { return context.Background() }

func items(rows ...itemRow) []itemRow { return rows }

var (
	tea    = itemRow{1, "tea", 2, 350}
	coffee = itemRow{2, "coffee", 1, 1200}
	milk   = itemRow{3, "milk", 3, 120}
)

func withQuantity(it itemRow, q int64) itemRow { it.Quantity = q; return it }

// TestScenario runs the example's steps and checks each one's statements
// and what the database holds after it.
func TestScenario(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		f := newFixture(t, b)

		// 1. Place an order with 3 items: the order's row, then one
		// multi-row INSERT of its items.
		r, err := domain.NewRecipientInfo("Ada Lovelace", "+44 20 7946 0000", "12 St James's Square, London")
		require.NoError(t, err)
		_, err = f.svc.PlaceOrder(ctx(), orderID, "ada", r,
			domain.ItemSpec{Product: "tea", Quantity: 2, UnitPrice: 350},
			domain.ItemSpec{Product: "coffee", Quantity: 1, UnitPrice: 1200},
			domain.ItemSpec{Product: "milk", Quantity: 3, UnitPrice: 120},
		)
		require.NoError(t, err)
		require.Equal(t, []string{"INSERT orders", "INSERT order_items"}, f.Log.Writes())
		if f.OneTrip {
			require.Equal(t, 1, f.Log.RoundTrips(), "one batch")
		} else {
			require.Len(t, f.Log.Statements(), 4, "BEGIN, 2 INSERTs, COMMIT")
		}
		got, ok := f.stored(t, orderID)
		require.True(t, ok)
		require.Equal(t, orderRow{
			Customer: "ada", RecipientName: "Ada Lovelace", RecipientPhone: "+44 20 7946 0000", RecipientAddress: "12 St James's Square, London",
			LastItemID: 3, Total: 2260, Version: 0, Status: "placed", Items: items(tea, coffee, milk),
		}, got)

		// 2. Change the quantity of item 2: one UPDATE of the item's
		// quantity, one of the order's total and version; nothing else.
		f.Log.Reset()
		o, err := f.svc.ChangeQuantity(ctx(), orderID, 2, 4)
		require.NoError(t, err)
		require.Equal(t, []string{
			"UPDATE orders (total, version)",
			"UPDATE order_items (quantity)",
		}, f.Log.Writes())
		dml := dmlOf(f.Log)
		require.Equal(t, []any{int64(5860), int64(1), int64(1), int64(0)}, ints(dml[0].args))
		require.Equal(t, []any{int64(4), int64(1), int64(2)}, ints(dml[1].args))
		if f.OneTrip {
			require.Equal(t, 2, f.Log.RoundTrips(), "load with BEGIN; save with COMMIT")
		}
		got, _ = f.stored(t, orderID)
		require.Equal(t, int64(5860), got.Total)
		require.Equal(t, int64(1), got.Version)
		require.Equal(t, items(tea, withQuantity(coffee, 4), milk), got.Items)
		require.Equal(t, int64(1), o.Version())

		// 3. Apply a 10% discount to item 2: one UPDATE of the order's
		// total and version, one INSERT of the discount that leaves its
		// key to the database and reads it back into the order. Its item
		// exists, so on pgx the INSERT goes in the save's batch, with the
		// UPDATE and the COMMIT.
		f.Log.Reset()
		o, err = f.svc.ApplyDiscount(ctx(), orderID, 2, "SPRING", 10)
		require.NoError(t, err)
		require.Equal(t, []string{
			"UPDATE orders (total, version)",
			"INSERT item_discounts",
		}, f.Log.Writes())
		dml = dmlOf(f.Log)
		require.Equal(t, []any{int64(5380), int64(2), int64(1), int64(1)}, ints(dml[0].args))
		require.Equal(t, `INSERT INTO "item_discounts" ("order_id", "item_id", "code", "percent") VALUES (?, ?, ?, ?) RETURNING "id"`, infratest.Canonical(dml[1].sql))
		require.Equal(t, []any{int64(1), int64(2), "SPRING", int64(10)}, ints(dml[1].args), "the placeholder identity is not sent")
		stmts := f.Log.Statements()
		if f.OneTrip {
			require.Equal(t, 2, f.Log.RoundTrips(), "load with BEGIN; save with COMMIT")
			last := stmts[len(stmts)-1]
			require.Equal(t, "COMMIT", last.SQL)
			for _, s := range stmts[len(stmts)-3:] {
				require.Equal(t, last.RoundTrip, s.RoundTrip, "%s: in the save's batch", s.SQL)
			}
		} else {
			require.Len(t, stmts, 7, "BEGIN, 3 SELECTs, UPDATE, INSERT, COMMIT")
		}
		coffeeItem, err := o.Item(2)
		require.NoError(t, err)
		require.Len(t, coffeeItem.Discounts(), 1)
		spring := coffeeItem.Discounts()[0]
		require.Positive(t, spring.ID(), "the generated key is written into the order")
		require.Equal(t, int64(4320), int64(coffeeItem.Subtotal()))
		require.Equal(t, int64(2), o.Version())
		got, _ = f.stored(t, orderID)
		require.Equal(t, int64(5380), got.Total)
		require.Equal(t, int64(2), got.Version)
		require.Equal(t, items(tea, withQuantity(coffee, 4), milk), got.Items)
		springRow := discountRow{int64(spring.ID()), 2, "SPRING", 10}
		require.Equal(t, []discountRow{springRow}, got.Discounts)

		// 4. Add an item and remove item 1 in one change: one DELETE of
		// item 1's discounts (the descendants go first, whatever they
		// are), one DELETE and one INSERT of order_items, one UPDATE of
		// orders, whose last item identity moves on: the new item is item
		// 4.
		f.Log.Reset()
		o, err = f.svc.AdjustItems(ctx(), orderID, []domain.ItemSpec{{Product: "sugar", Quantity: 1, UnitPrice: 200}}, []domain.ItemID{1})
		require.NoError(t, err)
		require.Equal(t, []string{
			"UPDATE orders (last_item_id, total, version)",
			"DELETE item_discounts",
			"DELETE order_items",
			"INSERT order_items",
		}, f.Log.Writes())
		if f.OneTrip {
			require.Equal(t, 2, f.Log.RoundTrips(), "load with BEGIN; save with COMMIT")
		}
		got, _ = f.stored(t, orderID)
		require.Equal(t, int64(4880), got.Total)
		require.Equal(t, int64(4), got.LastItemID)
		require.Equal(t, int64(3), got.Version)
		require.Equal(t, items(withQuantity(coffee, 4), milk, itemRow{4, "sugar", 1, 200}), got.Items)
		require.Equal(t, []discountRow{springRow}, got.Discounts, "item 2's discount stays")

		// 5. Save the tracked order again, unchanged, without loading it:
		// no statement at all.
		f.Log.Reset()
		require.NoError(t, f.repo.Save(ctx(), o))
		require.Empty(t, f.Log.Statements())
		require.Equal(t, int64(3), o.Version())

		// 6. Cancel the order: one UPDATE of its status and version; the
		// order, its items and their discounts stay.
		f.Log.Reset()
		o, err = f.svc.Cancel(ctx(), orderID)
		require.NoError(t, err)
		require.Equal(t, []string{"UPDATE orders (status, version)"}, f.Log.Writes())
		dml = dmlOf(f.Log)
		require.Equal(t, []any{domain.Cancelled, int64(4), int64(1), int64(3)}, ints(dml[0].args))
		if f.OneTrip {
			require.Equal(t, 2, f.Log.RoundTrips(), "load with BEGIN; save with COMMIT")
		}
		require.Equal(t, domain.Cancelled, o.Status())
		got, ok = f.stored(t, orderID)
		require.True(t, ok)
		require.Equal(t, "cancelled", got.Status)
		require.Equal(t, int64(4), got.Version)
		require.Equal(t, items(withQuantity(coffee, 4), milk, itemRow{4, "sugar", 1, 200}), got.Items)
		require.Equal(t, []discountRow{springRow}, got.Discounts)
		o, err = f.repo.Find(ctx(), orderID)
		require.NoError(t, err)
		require.Equal(t, domain.Cancelled, o.Status(), "loaded back cancelled")
	})
}

// sent is a statement's text and arguments.
type sent struct {
	sql  string
	args []any
}

// dmlOf returns the INSERT, UPDATE and DELETE statements recorded, failed
// ones included, with their arguments.
func dmlOf(l *infrastructure.StatementLog) []sent {
	var out []sent
	for _, s := range l.Statements() {
		if _, ok := infrastructure.Summarize(s.SQL); ok {
			out = append(out, sent{s.SQL, s.Args})
		}
	}
	return out
}

// ints converts integer arguments of named types (domain.Money, ItemID...)
// to int64, for comparison.
func ints(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		v := reflect.ValueOf(a)
		switch v.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			out[i] = v.Int()
		default:
			out[i] = a
		}
	}
	return out
}

// TestConflict loads one order in two repositories, as two processes
// would: the first save wins, the second fails with ErrConflict and
// writes nothing.
func TestConflict(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		f := newFixture(t, b)
		f.place(t)
		second, err := infrastructure.NewOrderRepository(f.Other)
		require.NoError(t, err)

		mine, err := f.repo.Find(ctx(), orderID)
		require.NoError(t, err)
		theirs, err := second.Find(ctx(), orderID)
		require.NoError(t, err)

		require.NoError(t, mine.ChangeQuantity(2, 5))
		require.NoError(t, f.repo.Save(ctx(), mine))

		require.NoError(t, theirs.ChangeQuantity(3, 9))
		err = second.Save(ctx(), theirs)
		require.ErrorIs(t, err, repository.ErrConflict)
		require.Equal(t, int64(0), theirs.Version(), "the version is restored after a failed save")
		require.ErrorIs(t, second.Remove(ctx(), theirs), repository.ErrConflict)

		got, _ := f.stored(t, orderID)
		require.Equal(t, int64(1), got.Version)
		require.Equal(t, int64(700+6000+360), got.Total)
		require.Equal(t, items(tea, withQuantity(coffee, 5), milk), got.Items)

		// Loading again resolves it.
		require.NoError(t, second.Update(ctx(), orderID, func(o *domain.Order) error { return o.ChangeQuantity(3, 9) }))
		got, _ = f.stored(t, orderID)
		require.Equal(t, int64(2), got.Version)
		require.Equal(t, items(tea, withQuantity(coffee, 5), withQuantity(milk, 9)), got.Items)
	})
}

var errAbort = errors.New("the application aborts its transaction")

// TestRollbackThenRetry saves in an application transaction that then
// fails: nothing persists, the new discount gets its placeholder identity
// back, and saving again sends the same statements with the same
// arguments, which then persist.
func TestRollbackThenRetry(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		f := newFixture(t, b)
		f.place(t)
		o, err := f.repo.Find(ctx(), orderID)
		require.NoError(t, err)
		require.NoError(t, o.ChangeQuantity(2, 6))
		require.NoError(t, o.RemoveItem(3))
		require.NoError(t, o.ApplyDiscount(1, "SPRING", 10))
		discountID := func() domain.DiscountID {
			it, err := o.Item(1)
			require.NoError(t, err)
			require.Len(t, it.Discounts(), 1)
			return it.Discounts()[0].ID()
		}
		require.Equal(t, domain.DiscountID(-1), discountID(), "a placeholder until the database gives it one")

		f.Log.Reset()
		err = f.DB.InTx(ctx(), func(ctx context.Context) error {
			if err := f.repo.Save(ctx, o); err != nil {
				return err
			}
			return errAbort
		})
		require.ErrorIs(t, err, errAbort)
		first := dmlOf(f.Log)
		require.Len(t, first, 5, "UPDATE orders, DELETE item 3's discounts, DELETE item 3, UPDATE item 2, INSERT the discount")
		require.Equal(t, "ROLLBACK", f.Log.Statements()[len(f.Log.Statements())-1].SQL)
		require.Equal(t, int64(0), o.Version(), "the version is restored by the rollback")
		require.Equal(t, domain.DiscountID(-1), discountID(), "the generated key is put back by the rollback")
		got, _ := f.stored(t, orderID)
		require.Equal(t, int64(0), got.Version)
		require.Equal(t, int64(2260), got.Total)
		require.Equal(t, items(tea, coffee, milk), got.Items)
		require.Empty(t, got.Discounts)

		f.Log.Reset()
		require.NoError(t, f.DB.InTx(ctx(), func(ctx context.Context) error { return f.repo.Save(ctx, o) }))
		require.Equal(t, first, dmlOf(f.Log), "the retry sends the same changes")
		require.Equal(t, "COMMIT", f.Log.Statements()[len(f.Log.Statements())-1].SQL)
		got, _ = f.stored(t, orderID)
		require.Equal(t, int64(1), got.Version)
		require.Equal(t, int64(630+7200), got.Total)
		require.Equal(t, items(tea, withQuantity(coffee, 6)), got.Items)
		require.Positive(t, discountID())
		require.Equal(t, []discountRow{{int64(discountID()), 1, "SPRING", 10}}, got.Discounts)

		// Committed: the snapshot advanced.
		f.Log.Reset()
		require.NoError(t, f.repo.Save(ctx(), o))
		require.Empty(t, f.Log.Statements())
	})
}

// forceQuantity sets an item's quantity behind the domain's back, as a bug
// would, so that the database's CHECK (quantity > 0) refuses it.
func forceQuantity(t *testing.T, o *domain.Order, id domain.ItemID, q int) {
	t.Helper()
	it, err := o.Item(id)
	require.NoError(t, err)
	f := reflect.ValueOf(it).Elem().FieldByName("quantity")
	require.True(t, f.IsValid())
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().SetInt(int64(q))
}

// TestFailedStatement makes the last statement of a save fail: nothing of
// the save persists, the order stays tracked as it was, and saving again
// after the fix sends all the changes.
func TestFailedStatement(t *testing.T) {
	for _, inTx := range []bool{false, true} {
		name := "alone"
		if inTx {
			name = "in-transaction"
		}
		t.Run(name, func(t *testing.T) {
			infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
				f := newFixture(t, b)
				f.place(t)
				save := func(o *domain.Order) error {
					if !inTx {
						return f.repo.Save(ctx(), o)
					}
					return f.DB.InTx(ctx(), func(ctx context.Context) error { return f.repo.Save(ctx, o) })
				}
				o, err := f.repo.Find(ctx(), orderID)
				require.NoError(t, err)
				require.NoError(t, o.ChangeQuantity(2, 5))
				forceQuantity(t, o, 3, 0)

				f.Log.Reset()
				err = save(o)
				require.Error(t, err)
				require.NotErrorIs(t, err, repository.ErrConflict)
				var failed []string
				for _, s := range f.Log.Statements() {
					if s.Err != nil {
						failed = append(failed, s.SQL)
					}
				}
				require.Len(t, failed, 1)
				w, ok := infrastructure.Summarize(failed[0])
				require.True(t, ok)
				require.Equal(t, "UPDATE order_items (quantity)", w)
				require.Equal(t, []string{
					"UPDATE orders (total, version)",
					"UPDATE order_items (quantity)",
				}, f.Log.Writes(), "the statements before the failing one went through")
				require.Equal(t, int64(0), o.Version())

				got, _ := f.stored(t, orderID)
				require.Equal(t, int64(0), got.Version)
				require.Equal(t, int64(2260), got.Total)
				require.Equal(t, items(tea, coffee, milk), got.Items, "nothing of the save persists")

				// Fix the quantity through the domain and save again: both
				// items' changes are sent, as the snapshot did not move.
				require.NoError(t, o.ChangeQuantity(3, 2))
				f.Log.Reset()
				require.NoError(t, save(o))
				require.Equal(t, []string{
					"UPDATE orders (total, version)",
					"UPDATE order_items (quantity)",
					"UPDATE order_items (quantity)",
				}, f.Log.Writes())
				got, _ = f.stored(t, orderID)
				require.Equal(t, int64(1), got.Version)
				require.Equal(t, int64(700+6000+240), got.Total)
				require.Equal(t, items(tea, withQuantity(coffee, 5), withQuantity(milk, 2)), got.Items)
			})
		})
	}
}

// TestBusinessRules checks that what the domain refuses writes nothing.
func TestBusinessRules(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		f := newFixture(t, b)
		r, err := domain.NewRecipientInfo("Ada", "", "London")
		require.NoError(t, err)

		// Refused before any statement.
		_, err = f.svc.PlaceOrder(ctx(), 2, "ada", r, domain.ItemSpec{Product: "tea", Quantity: 0, UnitPrice: 350})
		require.ErrorIs(t, err, domain.ErrInvalidQuantity)
		_, err = f.svc.PlaceOrder(ctx(), 2, "ada", r)
		require.ErrorIs(t, err, domain.ErrNoItems)
		_, err = f.svc.PlaceOrder(ctx(), 2, "ada", r,
			domain.ItemSpec{Product: "tea", Quantity: 1, UnitPrice: 350},
			domain.ItemSpec{Product: "tea", Quantity: 2, UnitPrice: 350})
		require.ErrorIs(t, err, domain.ErrDuplicateProduct)
		require.Empty(t, f.Log.Statements())
		require.Zero(t, f.count(t, `SELECT count(*) FROM orders`))

		f.place(t)
		want, _ := f.stored(t, orderID)

		// Refused after the load: the transaction rolls back, nothing is
		// written.
		noWrite := func(err, target error) {
			t.Helper()
			require.ErrorIs(t, err, target)
			require.Empty(t, f.Log.Writes())
			got, _ := f.stored(t, orderID)
			require.Equal(t, want, got)
			f.Log.Reset()
		}
		_, err = f.svc.ChangeQuantity(ctx(), orderID, 2, 0)
		noWrite(err, domain.ErrInvalidQuantity)
		_, err = f.svc.ChangeQuantity(ctx(), orderID, 2, -3)
		noWrite(err, domain.ErrInvalidQuantity)
		_, err = f.svc.AdjustItems(ctx(), orderID, []domain.ItemSpec{{Product: "milk", Quantity: 1, UnitPrice: 120}}, nil)
		noWrite(err, domain.ErrDuplicateProduct)
		_, err = f.svc.AdjustItems(ctx(), orderID, nil, []domain.ItemID{1, 2, 3})
		noWrite(err, domain.ErrNoItems)
		_, err = f.svc.ApplyDiscount(ctx(), orderID, 2, "BIG", 101)
		noWrite(err, domain.ErrInvalidPercent)
		_, err = f.svc.ApplyDiscount(ctx(), orderID, 9, "X", 10)
		noWrite(err, domain.ErrItemNotFound)
		_, err = f.svc.RemoveDiscount(ctx(), orderID, 2, "X")
		noWrite(err, domain.ErrDiscountNotFound)

		// A shipped order cannot change.
		o, err := f.svc.Ship(ctx(), orderID)
		require.NoError(t, err)
		require.Equal(t, []string{"UPDATE orders (status, version)"}, f.Log.Writes())
		want, _ = f.stored(t, orderID)
		require.Equal(t, "shipped", want.Status)
		require.Equal(t, int64(1), want.Version)
		f.Log.Reset()

		_, err = f.svc.ChangeQuantity(ctx(), orderID, 2, 3)
		noWrite(err, domain.ErrShipped)
		_, err = f.svc.AdjustItems(ctx(), orderID, []domain.ItemSpec{{Product: "sugar", Quantity: 1, UnitPrice: 200}}, nil)
		noWrite(err, domain.ErrShipped)
		_, err = f.svc.Ship(ctx(), orderID)
		noWrite(err, domain.ErrShipped)
		_, err = f.svc.Cancel(ctx(), orderID)
		noWrite(err, domain.ErrShipped)
		_, err = f.svc.ApplyDiscount(ctx(), orderID, 2, "SPRING", 10)
		noWrite(err, domain.ErrShipped)
		noWrite(o.ChangeQuantity(1, 5), domain.ErrShipped)
		require.NoError(t, f.repo.Save(ctx(), o))
		require.Empty(t, f.Log.Statements(), "the refused change left the order unchanged")
	})
}

// TestCancelled cancels an order: every later change is refused with
// ErrCancelled, cancelling again included, and writes nothing.
func TestCancelled(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		f := newFixture(t, b)
		f.place(t)
		_, err := f.svc.Cancel(ctx(), orderID)
		require.NoError(t, err)
		want, _ := f.stored(t, orderID)
		require.Equal(t, "cancelled", want.Status)
		require.Equal(t, int64(1), want.Version)
		f.Log.Reset()

		refused := map[string]func() error{
			"cancel again":    func() error { _, err := f.svc.Cancel(ctx(), orderID); return err },
			"ship":            func() error { _, err := f.svc.Ship(ctx(), orderID); return err },
			"change quantity": func() error { _, err := f.svc.ChangeQuantity(ctx(), orderID, 2, 3); return err },
			"add item": func() error {
				_, _, err := f.svc.AddItem(ctx(), orderID, domain.ItemSpec{Product: "sugar", Quantity: 1, UnitPrice: 200})
				return err
			},
			"remove item": func() error { _, err := f.svc.RemoveItem(ctx(), orderID, 1); return err },
			"apply discount": func() error {
				_, err := f.svc.ApplyDiscount(ctx(), orderID, 1, "SPRING", 10)
				return err
			},
			"remove discount": func() error { _, err := f.svc.RemoveDiscount(ctx(), orderID, 1, "SPRING"); return err },
		}
		for name, change := range refused {
			require.ErrorIs(t, change(), domain.ErrCancelled, name)
			require.Empty(t, f.Log.Writes(), name)
			got, _ := f.stored(t, orderID)
			require.Equal(t, want, got, name)
		}
	})
}

// TestRepositoryErrors checks the domain's errors of the repository: a
// missing order, an identity taken, a concurrent change.
func TestRepositoryErrors(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		f := newFixture(t, b)
		_, err := f.svc.Get(ctx(), 9)
		require.ErrorIs(t, err, domain.ErrOrderNotFound)
		require.ErrorIs(t, err, repository.ErrNotFound, "the library's error stays visible")
		_, err = f.svc.Cancel(ctx(), 9)
		require.ErrorIs(t, err, domain.ErrOrderNotFound)

		f.place(t)
		r, err := domain.NewRecipientInfo("Bob", "", "Paris")
		require.NoError(t, err)
		_, err = f.svc.PlaceOrder(ctx(), orderID, "bob", r, domain.ItemSpec{Product: "tea", Quantity: 1, UnitPrice: 350})
		require.ErrorIs(t, err, domain.ErrOrderExists)
		got, _ := f.stored(t, orderID)
		require.Equal(t, "ada", got.Customer, "the first order stays")

		mine, err := f.repo.Find(ctx(), orderID)
		require.NoError(t, err)
		_, err = f.svc.Ship(ctx(), orderID)
		require.NoError(t, err)
		require.NoError(t, mine.Cancel())
		err = f.repo.Save(ctx(), mine)
		require.ErrorIs(t, err, domain.ErrConcurrentChange)
		require.ErrorIs(t, err, repository.ErrConflict)
		got, _ = f.stored(t, orderID)
		require.Equal(t, "shipped", got.Status, "the stale cancel wrote nothing")
	})
}

// TestListByCustomer pages through a customer's orders by key: each page
// is one query of the customer's orders after the last one seen, with
// their items, in identity order, and the orders are tracked.
func TestListByCustomer(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		f := newFixture(t, b)
		r, err := domain.NewRecipientInfo("Ada", "", "London")
		require.NoError(t, err)
		// Orders 1 to 7: ada has 1, 2, 4, 6 and 7, bob 3 and 5.
		for id := domain.OrderID(1); id <= 7; id++ {
			customer := "ada"
			if id == 3 || id == 5 {
				customer = "bob"
			}
			specs := []domain.ItemSpec{{Product: "tea", Quantity: int(id), UnitPrice: 350}}
			if id%2 == 0 {
				specs = append(specs, domain.ItemSpec{Product: "milk", Quantity: 1, UnitPrice: 120})
			}
			_, err := f.svc.PlaceOrder(ctx(), id, customer, r, specs...)
			require.NoError(t, err)
		}

		type listed struct {
			id    domain.OrderID
			items int
			tea   int
		}
		page := func(after domain.OrderID, limit int) []listed {
			t.Helper()
			f.Log.Reset()
			orders, err := f.repo.ListByCustomer(ctx(), "ada", after, limit)
			require.NoError(t, err)
			var out []listed
			for _, o := range orders {
				require.Equal(t, "ada", o.Customer())
				tea, err := o.Item(1)
				require.NoError(t, err)
				out = append(out, listed{o.ID(), len(o.Items()), tea.Quantity()})
			}
			if f.OneTrip {
				require.Equal(t, 1, f.Log.RoundTrips(), "orders and items in one batch")
			}
			var roots []string
			for _, s := range f.Log.Statements() {
				if q := infratest.Canonical(s.SQL); strings.HasPrefix(q, `SELECT "id", "customer"`) {
					roots = append(roots, q)
				}
			}
			require.Len(t, roots, 1)
			require.Contains(t, roots[0], `WHERE "customer" = `)
			if limit > 0 {
				require.Contains(t, roots[0], ` ORDER BY "id" LIMIT `)
			}
			require.NotContains(t, roots[0], "OFFSET")
			if after > 0 {
				require.Contains(t, roots[0], `("id") > (`, "keyset paging")
			}
			return out
		}
		require.Equal(t, []listed{{1, 1, 1}, {2, 2, 2}}, page(0, 2))
		require.Equal(t, []listed{{4, 2, 4}, {6, 2, 6}}, page(2, 2))
		require.Equal(t, []listed{{7, 1, 7}}, page(6, 2))
		require.Empty(t, page(7, 2))
		require.Equal(t, []listed{{1, 1, 1}, {2, 2, 2}, {4, 2, 4}, {6, 2, 6}, {7, 1, 7}}, page(0, 0), "no limit")
		require.Equal(t, []listed{{4, 2, 4}, {6, 2, 6}, {7, 1, 7}}, page(3, 10), "after an identity of another customer's order")

		// The orders listed are tracked: unchanged, a save sends nothing;
		// changed, it sends only the change.
		orders, err := f.repo.ListByCustomer(ctx(), "ada", 4, 1)
		require.NoError(t, err)
		require.Len(t, orders, 1)
		f.Log.Reset()
		require.NoError(t, f.repo.Save(ctx(), orders[0]))
		require.Empty(t, f.Log.Statements())
		require.NoError(t, orders[0].ChangeQuantity(2, 5))
		require.NoError(t, f.repo.Save(ctx(), orders[0]))
		require.Equal(t, []string{"UPDATE orders (total, version)", "UPDATE order_items (quantity)"}, f.Log.Writes())

		// Through the service: pages of two with a cursor, to the end.
		var ids []domain.OrderID
		var after domain.OrderID
		pages := 0
		for {
			p, err := f.svc.ListByCustomer(ctx(), "ada", after, 2)
			require.NoError(t, err)
			pages++
			for _, o := range p.Orders {
				ids = append(ids, o.ID())
			}
			if p.Next == 0 {
				break
			}
			after = p.Next
		}
		require.Equal(t, []domain.OrderID{1, 2, 4, 6, 7}, ids)
		require.Equal(t, 3, pages)
		p, err := f.svc.ListByCustomer(ctx(), "ada", 0, 5)
		require.NoError(t, err)
		require.Len(t, p.Orders, 5)
		require.Zero(t, p.Next, "a full last page has no next page")
		p, err = f.svc.ListByCustomer(ctx(), "nobody", 0, 0)
		require.NoError(t, err)
		require.Empty(t, p.Orders)
		require.Zero(t, p.Next)
		_, err = f.svc.ListByCustomer(ctx(), "ada", 0, application.MaxPageSize+1)
		require.ErrorIs(t, err, application.ErrInvalidPage)
		_, err = f.svc.ListByCustomer(ctx(), "ada", -1, 1)
		require.ErrorIs(t, err, application.ErrInvalidPage)
	})
}

// TestDiscounts saves several new discounts in one change, with distinct
// placeholder identities within each item: one INSERT ... RETURNING per
// discount (in the save's batch on pgx), each key read back into the
// order; then loads, lists and removes the order with them.
func TestDiscounts(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		f := newFixture(t, b)
		f.place(t)

		var o *domain.Order
		var placeholders []domain.DiscountID
		err := f.repo.Update(ctx(), orderID, func(loaded *domain.Order) error {
			for _, d := range []struct {
				item    domain.ItemID
				code    string
				percent int
			}{{2, "SPRING", 10}, {2, "LOYAL", 5}, {3, "SPRING", 50}} {
				if err := loaded.ApplyDiscount(d.item, d.code, d.percent); err != nil {
					return err
				}
			}
			placeholders = nil
			for _, it := range loaded.Items() {
				for _, d := range it.Discounts() {
					placeholders = append(placeholders, d.ID())
				}
			}
			o = loaded
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, []domain.DiscountID{-1, -2, -1}, placeholders, "distinct within each item")
		require.Equal(t, []string{
			"UPDATE orders (total, version)",
			"INSERT item_discounts",
			"INSERT item_discounts",
			"INSERT item_discounts",
		}, f.Log.Writes(), "one INSERT ... RETURNING per row with a generated key")
		if f.OneTrip {
			require.Equal(t, 2, f.Log.RoundTrips(), "load with BEGIN; save with COMMIT")
		}

		type keyed struct {
			item domain.ItemID
			id   domain.DiscountID
			code string
		}
		var keys []keyed
		for _, it := range o.Items() {
			for _, d := range it.Discounts() {
				require.Positive(t, d.ID(), "%s on item %d", d.Code(), it.ID())
				keys = append(keys, keyed{it.ID(), d.ID(), d.Code()})
			}
		}
		require.Len(t, keys, 3)
		require.NotEqual(t, keys[0].id, keys[1].id)
		require.NotEqual(t, keys[1].id, keys[2].id)
		require.Equal(t, int64(700+1020+180), int64(o.Total()))
		got, _ := f.stored(t, orderID)
		require.Equal(t, []discountRow{
			{int64(keys[0].id), 2, "SPRING", 10},
			{int64(keys[1].id), 2, "LOYAL", 5},
			{int64(keys[2].id), 3, "SPRING", 50},
		}, got.Discounts)
		require.Equal(t, int64(1900), got.Total)

		// The snapshot holds the keys: an unchanged save sends nothing.
		f.Log.Reset()
		require.NoError(t, f.repo.Save(ctx(), o))
		require.Empty(t, f.Log.Statements())

		// Loaded and listed with their discounts.
		for _, loaded := range func() []*domain.Order {
			found, err := f.repo.Find(ctx(), orderID)
			require.NoError(t, err)
			listed, err := f.repo.ListByCustomer(ctx(), "ada", 0, 0)
			require.NoError(t, err)
			return append(listed, found)
		}() {
			var again []keyed
			for _, it := range loaded.Items() {
				for _, d := range it.Discounts() {
					again = append(again, keyed{it.ID(), d.ID(), d.Code()})
				}
			}
			require.Equal(t, keys, again)
			require.Equal(t, o.Total(), loaded.Total())
		}

		// Removing a discount by its code deletes its row alone.
		o, err = f.svc.RemoveDiscount(ctx(), orderID, 2, "SPRING")
		require.NoError(t, err)
		got, _ = f.stored(t, orderID)
		require.Equal(t, []discountRow{
			{int64(keys[1].id), 2, "LOYAL", 5},
			{int64(keys[2].id), 3, "SPRING", 50},
		}, got.Discounts)
		require.Equal(t, int64(700+1140+180), got.Total)

		// Removing the order removes its discounts first.
		f.Log.Reset()
		require.NoError(t, f.repo.Remove(ctx(), o))
		writes := f.Log.Writes()
		require.Equal(t, "DELETE item_discounts", writes[0], "%q", writes)
		_, ok := f.stored(t, orderID)
		require.False(t, ok)
		require.Zero(t, f.count(t, `SELECT count(*) FROM item_discounts`))
	})
}

// TestValueLimits stores an order at the domain's limits on every
// backend, and reads it back as it was: the largest quantity, amounts
// near the largest Money, and texts of MaxTextLength characters of 4
// bytes, random, so that PostgreSQL cannot compress them into its index
// entries. Values beyond the limits are refused before any statement, or
// after the load with nothing written, the same on every backend.
func TestValueLimits(t *testing.T) {
	infratest.ForEach(t, func(t *testing.T, b *infratest.Backend) {
		f := newFixture(t, b)
		rnd := rand.New(rand.NewPCG(3, 4))
		text := func() string {
			var s strings.Builder
			for range domain.MaxTextLength {
				s.WriteRune(rune(0x1D400 + rnd.IntN(1000))) // 4 bytes in UTF-8
			}
			return s.String()
		}
		customer, product, code := text(), text(), text()
		r, err := domain.NewRecipientInfo(text(), text(), text())
		require.NoError(t, err)
		o, err := f.svc.PlaceOrder(ctx(), 5, customer, r,
			domain.ItemSpec{Product: product, Quantity: domain.MaxQuantity, UnitPrice: 4294967298},
			domain.ItemSpec{Product: "penny", Quantity: 1, UnitPrice: 1})
		require.NoError(t, err)
		require.Equal(t, domain.Money(math.MaxInt64), o.Total())
		o, err = f.svc.ApplyDiscount(ctx(), 5, 1, code, 1)
		require.NoError(t, err)
		o, _, err = f.svc.AddItem(ctx(), 5, domain.ItemSpec{Product: "filler", Quantity: 1, UnitPrice: math.MaxInt64 - o.Total()})
		require.NoError(t, err)
		require.Equal(t, domain.Money(math.MaxInt64), o.Total())

		got, err := f.repo.Find(ctx(), 5)
		require.NoError(t, err)
		require.Equal(t, customer, got.Customer())
		require.Equal(t, r, got.Recipient())
		require.Equal(t, o.Total(), got.Total())
		require.Len(t, got.Items(), 3)
		it := got.Items()[0]
		require.Equal(t, [3]any{product, domain.MaxQuantity, domain.Money(4294967298)}, [3]any{it.Product(), it.Quantity(), it.UnitPrice()})
		require.Len(t, it.Discounts(), 1)
		require.Equal(t, code, it.Discounts()[0].Code())
		require.Equal(t, o.Items()[0].Subtotal(), it.Subtotal())
		listed, err := f.repo.ListByCustomer(ctx(), customer, 0, 10)
		require.NoError(t, err)
		require.Len(t, listed, 1)
		page, err := f.svc.ListByCustomer(ctx(), customer, 0, 0)
		require.NoError(t, err)
		require.Len(t, page.Orders, 1)

		// Beyond the limits: refused before any statement.
		f.Log.Reset()
		for _, bad := range []string{"a\x00b", "a\xffb", customer + "x"} {
			_, err = f.svc.PlaceOrder(ctx(), 6, bad, r, domain.ItemSpec{Product: "tea", Quantity: 1, UnitPrice: 1})
			require.ErrorIs(t, err, domain.ErrInvalidCustomer)
			_, err = f.svc.PlaceOrder(ctx(), 6, "ada", r, domain.ItemSpec{Product: bad, Quantity: 1, UnitPrice: 1})
			require.ErrorIs(t, err, domain.ErrInvalidProduct)
			_, err = f.svc.ListByCustomer(ctx(), bad, 0, 0)
			require.ErrorIs(t, err, domain.ErrInvalidCustomer)
		}
		_, err = f.svc.PlaceOrder(ctx(), 6, "ada", r, domain.ItemSpec{Product: "tea", Quantity: domain.MaxQuantity + 1, UnitPrice: 1})
		require.ErrorIs(t, err, domain.ErrInvalidQuantity)
		require.Empty(t, f.Log.Statements())

		// After the load: nothing written.
		want, _ := f.stored(t, 5)
		for _, tc := range []struct {
			change func() error
			want   error
		}{
			{func() error {
				_, _, err := f.svc.AddItem(ctx(), 5, domain.ItemSpec{Product: "x", Quantity: 1, UnitPrice: 1})
				return err
			}, domain.ErrAmountTooLarge},
			{func() error { _, err := f.svc.ChangeQuantity(ctx(), 5, 2, 2); return err }, domain.ErrAmountTooLarge},
			{func() error { _, err := f.svc.ChangeQuantity(ctx(), 5, 2, domain.MaxQuantity+1); return err }, domain.ErrInvalidQuantity},
			{func() error { _, err := f.svc.ApplyDiscount(ctx(), 5, 2, "a\x00", 10); return err }, domain.ErrInvalidDiscountCode},
			{func() error { _, err := f.svc.RemoveDiscount(ctx(), 5, 1, code); return err }, domain.ErrAmountTooLarge},
		} {
			f.Log.Reset()
			require.ErrorIs(t, tc.change(), tc.want)
			require.Empty(t, f.Log.Writes())
			got, _ := f.stored(t, 5)
			require.Equal(t, want, got)
		}
	})
}
