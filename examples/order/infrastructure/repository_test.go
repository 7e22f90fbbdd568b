package infrastructure

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/order/application"
	"github.com/dddkit/dddkit/examples/order/domain"
	"github.com/dddkit/dddkit/repository"
)

// The contract of the order repository, checked on every backend both by
// reading the database back with plain SQL and by counting the statements
// the observer saw.

const orderID = domain.OrderID(1)

// fixture is a repository and a service on a backend.
type fixture struct {
	*backend
	repo *OrderRepository
	svc  *application.Service
}

func newFixture(t *testing.T, b *backend) *fixture {
	repo, err := NewOrderRepository(b.db)
	require.NoError(t, err)
	return &fixture{backend: b, repo: repo, svc: application.NewService(repo)}
}

// place places order 1: tea 2 x 3.50, coffee 1 x 12.00, milk 3 x 1.20
// (total 22.60), and clears the log.
func (f *fixture) place(t *testing.T) *domain.Order {
	t.Helper()
	r, err := domain.NewRecipientInfo("Ada Lovelace", "+44 20 7946 0000", "12 St James's Square, London")
	require.NoError(t, err)
	o, err := f.svc.PlaceOrder(context.Background(), orderID, "ada", r,
		application.NewItem{Product: "tea", Quantity: 2, UnitPrice: 350},
		application.NewItem{Product: "coffee", Quantity: 1, UnitPrice: 1200},
		application.NewItem{Product: "milk", Quantity: 3, UnitPrice: 120},
	)
	require.NoError(t, err)
	f.log.reset()
	return o
}

// orderRow is what the database holds of an order.
type orderRow struct {
	Customer, RecipientName, RecipientPhone, RecipientAddress string
	Total, Version                                            int64
	Status                                                    string
	Items                                                     []itemRow
}

// itemRow is one row of order_items.
type itemRow struct {
	ID        int64
	Product   string
	Quantity  int64
	UnitPrice int64
}

// stored reads order id back, or reports false when it has no row.
func (f *fixture) stored(t *testing.T, id domain.OrderID) (orderRow, bool) {
	t.Helper()
	var o orderRow
	rows, err := f.raw.Query(f.raw.Rebind(`SELECT customer, recipient_name, recipient_phone, recipient_address, total, version, status FROM orders WHERE id = ?`), int64(id))
	require.NoError(t, err)
	found := false
	for rows.Next() {
		found = true
		require.NoError(t, rows.Scan(&o.Customer, &o.RecipientName, &o.RecipientPhone, &o.RecipientAddress, &o.Total, &o.Version, &o.Status))
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	rows, err = f.raw.Query(f.raw.Rebind(`SELECT id, product, quantity, unit_price FROM order_items WHERE order_id = ? ORDER BY id`), int64(id))
	require.NoError(t, err)
	for rows.Next() {
		var it itemRow
		require.NoError(t, rows.Scan(&it.ID, &it.Product, &it.Quantity, &it.UnitPrice))
		o.Items = append(o.Items, it)
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	if !found {
		require.Empty(t, o.Items, "items without their order")
	}
	return o, found
}

// count runs a SELECT count(*) with "?" placeholders.
func (f *fixture) count(t *testing.T, q string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, f.raw.Get(&n, f.raw.Rebind(q), args...), q)
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
	forEachBackend(t, func(t *testing.T, b *backend) {
		f := newFixture(t, b)

		// 1. Place an order with 3 items: the order's row, then one
		// multi-row INSERT of its items.
		r, err := domain.NewRecipientInfo("Ada Lovelace", "+44 20 7946 0000", "12 St James's Square, London")
		require.NoError(t, err)
		_, err = f.svc.PlaceOrder(ctx(), orderID, "ada", r,
			application.NewItem{Product: "tea", Quantity: 2, UnitPrice: 350},
			application.NewItem{Product: "coffee", Quantity: 1, UnitPrice: 1200},
			application.NewItem{Product: "milk", Quantity: 3, UnitPrice: 120},
		)
		require.NoError(t, err)
		require.Equal(t, []write{{"INSERT", "orders", nil}, {"INSERT", "order_items", nil}}, f.log.writes())
		if f.pgx {
			require.Equal(t, 1, f.log.trips(), "one batch")
		} else {
			require.Len(t, f.log.all(), 4, "BEGIN, 2 INSERTs, COMMIT")
		}
		got, ok := f.stored(t, orderID)
		require.True(t, ok)
		require.Equal(t, orderRow{
			Customer: "ada", RecipientName: "Ada Lovelace", RecipientPhone: "+44 20 7946 0000", RecipientAddress: "12 St James's Square, London",
			Total: 2260, Version: 0, Status: "placed", Items: items(tea, coffee, milk),
		}, got)

		// 2. Change the quantity of item 2: one UPDATE of the item's
		// quantity, one of the order's total and version; nothing else.
		f.log.reset()
		o, err := f.svc.ChangeQuantity(ctx(), orderID, 2, 4)
		require.NoError(t, err)
		require.Equal(t, []write{
			{"UPDATE", "orders", []string{"total", "version"}},
			{"UPDATE", "order_items", []string{"quantity"}},
		}, f.log.writes())
		dml := f.log.dml()
		require.Equal(t, []any{int64(5860), int64(1), int64(1), int64(0)}, ints(dml[0].args))
		require.Equal(t, []any{int64(4), int64(1), int64(2)}, ints(dml[1].args))
		if f.pgx {
			require.Equal(t, 3, f.log.trips(), "load with BEGIN; save; COMMIT")
		}
		got, _ = f.stored(t, orderID)
		require.Equal(t, int64(5860), got.Total)
		require.Equal(t, int64(1), got.Version)
		require.Equal(t, items(tea, withQuantity(coffee, 4), milk), got.Items)
		require.Equal(t, int64(1), o.Version())

		// 3. Add an item and remove item 1 in one change: one DELETE, one
		// INSERT of order_items, one UPDATE of orders.
		f.log.reset()
		o, err = f.svc.AdjustItems(ctx(), orderID, []application.NewItem{{Product: "sugar", Quantity: 1, UnitPrice: 200}}, []domain.ItemID{1})
		require.NoError(t, err)
		require.Equal(t, []write{
			{"UPDATE", "orders", []string{"total", "version"}},
			{"DELETE", "order_items", nil},
			{"INSERT", "order_items", nil},
		}, f.log.writes())
		if f.pgx {
			require.Equal(t, 3, f.log.trips(), "load with BEGIN; save; COMMIT")
		}
		got, _ = f.stored(t, orderID)
		require.Equal(t, int64(5360), got.Total)
		require.Equal(t, int64(2), got.Version)
		require.Equal(t, items(withQuantity(coffee, 4), milk, itemRow{4, "sugar", 1, 200}), got.Items)

		// 4. Save the tracked order again, unchanged, without loading it:
		// no statement at all.
		f.log.reset()
		require.NoError(t, f.repo.Save(ctx(), o))
		require.Empty(t, f.log.all())
		require.Equal(t, int64(2), o.Version())

		// 5. Remove the order: its items, then the order.
		f.log.reset()
		require.NoError(t, f.svc.Cancel(ctx(), orderID))
		require.Equal(t, []write{{"DELETE", "order_items", nil}, {"DELETE", "orders", nil}}, f.log.writes())
		if f.pgx {
			require.Equal(t, 2, f.log.trips(), "load; remove")
		}
		_, ok = f.stored(t, orderID)
		require.False(t, ok)
		require.Zero(t, f.count(t, `SELECT count(*) FROM order_items`))
		_, err = f.repo.Find(ctx(), orderID)
		require.ErrorIs(t, err, repository.ErrNotFound)
	})
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
	forEachBackend(t, func(t *testing.T, b *backend) {
		f := newFixture(t, b)
		f.place(t)
		second, err := NewOrderRepository(f.other)
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
// fails: nothing persists, and saving again sends the same statements
// with the same arguments, which then persist.
func TestRollbackThenRetry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		f := newFixture(t, b)
		f.place(t)
		o, err := f.repo.Find(ctx(), orderID)
		require.NoError(t, err)
		require.NoError(t, o.ChangeQuantity(2, 6))
		require.NoError(t, o.RemoveItem(3))

		f.log.reset()
		err = f.db.InTx(ctx(), func(ctx context.Context) error {
			if err := f.repo.Save(ctx, o); err != nil {
				return err
			}
			return errAbort
		})
		require.ErrorIs(t, err, errAbort)
		first := f.log.dml()
		require.Len(t, first, 3, "UPDATE orders, DELETE item 3, UPDATE item 2")
		require.Equal(t, "ROLLBACK", f.log.all()[len(f.log.all())-1].SQL)
		require.Equal(t, int64(0), o.Version(), "the version is restored by the rollback")
		got, _ := f.stored(t, orderID)
		require.Equal(t, int64(0), got.Version)
		require.Equal(t, int64(2260), got.Total)
		require.Equal(t, items(tea, coffee, milk), got.Items)

		f.log.reset()
		require.NoError(t, f.db.InTx(ctx(), func(ctx context.Context) error { return f.repo.Save(ctx, o) }))
		require.Equal(t, first, f.log.dml(), "the retry sends the same changes")
		require.Equal(t, "COMMIT", f.log.all()[len(f.log.all())-1].SQL)
		got, _ = f.stored(t, orderID)
		require.Equal(t, int64(1), got.Version)
		require.Equal(t, int64(700+7200), got.Total)
		require.Equal(t, items(tea, withQuantity(coffee, 6)), got.Items)

		// Committed: the snapshot advanced.
		f.log.reset()
		require.NoError(t, f.repo.Save(ctx(), o))
		require.Empty(t, f.log.all())
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
			forEachBackend(t, func(t *testing.T, b *backend) {
				f := newFixture(t, b)
				f.place(t)
				save := func(o *domain.Order) error {
					if !inTx {
						return f.repo.Save(ctx(), o)
					}
					return f.db.InTx(ctx(), func(ctx context.Context) error { return f.repo.Save(ctx, o) })
				}
				o, err := f.repo.Find(ctx(), orderID)
				require.NoError(t, err)
				require.NoError(t, o.ChangeQuantity(2, 5))
				forceQuantity(t, o, 3, 0)

				f.log.reset()
				err = save(o)
				require.Error(t, err)
				require.NotErrorIs(t, err, repository.ErrConflict)
				var failed []string
				for _, s := range f.log.all() {
					if s.Err != nil {
						failed = append(failed, s.SQL)
					}
				}
				require.Len(t, failed, 1)
				w, ok := parseWrite(failed[0])
				require.True(t, ok)
				require.Equal(t, write{"UPDATE", "order_items", []string{"quantity"}}, w)
				require.Equal(t, []write{
					{"UPDATE", "orders", []string{"total", "version"}},
					{"UPDATE", "order_items", []string{"quantity"}},
				}, f.log.writes(), "the statements before the failing one went through")
				require.Equal(t, int64(0), o.Version())

				got, _ := f.stored(t, orderID)
				require.Equal(t, int64(0), got.Version)
				require.Equal(t, int64(2260), got.Total)
				require.Equal(t, items(tea, coffee, milk), got.Items, "nothing of the save persists")

				// Fix the quantity through the domain and save again: both
				// items' changes are sent, as the snapshot did not move.
				require.NoError(t, o.ChangeQuantity(3, 2))
				f.log.reset()
				require.NoError(t, save(o))
				require.Equal(t, []write{
					{"UPDATE", "orders", []string{"total", "version"}},
					{"UPDATE", "order_items", []string{"quantity"}},
					{"UPDATE", "order_items", []string{"quantity"}},
				}, f.log.writes())
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
	forEachBackend(t, func(t *testing.T, b *backend) {
		f := newFixture(t, b)
		r, err := domain.NewRecipientInfo("Ada", "", "London")
		require.NoError(t, err)

		// Refused before any statement.
		_, err = f.svc.PlaceOrder(ctx(), 2, "ada", r, application.NewItem{Product: "tea", Quantity: 0, UnitPrice: 350})
		require.ErrorIs(t, err, domain.ErrInvalidQuantity)
		_, err = f.svc.PlaceOrder(ctx(), 2, "ada", r)
		require.ErrorIs(t, err, domain.ErrNoItems)
		_, err = f.svc.PlaceOrder(ctx(), 2, "ada", r,
			application.NewItem{Product: "tea", Quantity: 1, UnitPrice: 350},
			application.NewItem{Product: "tea", Quantity: 2, UnitPrice: 350})
		require.ErrorIs(t, err, domain.ErrDuplicateProduct)
		require.Empty(t, f.log.all())
		require.Zero(t, f.count(t, `SELECT count(*) FROM orders`))

		f.place(t)
		want, _ := f.stored(t, orderID)

		// Refused after the load: the transaction rolls back, nothing is
		// written.
		noWrite := func(err, target error) {
			t.Helper()
			require.ErrorIs(t, err, target)
			require.Empty(t, f.log.writes())
			got, _ := f.stored(t, orderID)
			require.Equal(t, want, got)
			f.log.reset()
		}
		_, err = f.svc.ChangeQuantity(ctx(), orderID, 2, 0)
		noWrite(err, domain.ErrInvalidQuantity)
		_, err = f.svc.ChangeQuantity(ctx(), orderID, 2, -3)
		noWrite(err, domain.ErrInvalidQuantity)
		_, err = f.svc.AdjustItems(ctx(), orderID, []application.NewItem{{Product: "milk", Quantity: 1, UnitPrice: 120}}, nil)
		noWrite(err, domain.ErrDuplicateProduct)
		_, err = f.svc.AdjustItems(ctx(), orderID, nil, []domain.ItemID{1, 2, 3})
		noWrite(err, domain.ErrNoItems)

		// A shipped order cannot change.
		o, err := f.svc.Ship(ctx(), orderID)
		require.NoError(t, err)
		require.Equal(t, []write{{"UPDATE", "orders", []string{"status", "version"}}}, f.log.writes())
		want, _ = f.stored(t, orderID)
		require.Equal(t, "shipped", want.Status)
		require.Equal(t, int64(1), want.Version)
		f.log.reset()

		_, err = f.svc.ChangeQuantity(ctx(), orderID, 2, 3)
		noWrite(err, domain.ErrShipped)
		_, err = f.svc.AdjustItems(ctx(), orderID, []application.NewItem{{Product: "sugar", Quantity: 1, UnitPrice: 200}}, nil)
		noWrite(err, domain.ErrShipped)
		_, err = f.svc.Ship(ctx(), orderID)
		noWrite(err, domain.ErrShipped)
		noWrite(f.svc.Cancel(ctx(), orderID), domain.ErrShipped)
		noWrite(o.ChangeQuantity(1, 5), domain.ErrShipped)
		require.NoError(t, f.repo.Save(ctx(), o))
		require.Empty(t, f.log.all(), "the refused change left the order unchanged")
	})
}
