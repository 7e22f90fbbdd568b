package domain_test

import (
	"fmt"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/order/domain"
)

var (
	tea    = domain.ItemSpec{Product: "tea", Quantity: 2, UnitPrice: 350}
	coffee = domain.ItemSpec{Product: "coffee", Quantity: 1, UnitPrice: 1200}
	milk   = domain.ItemSpec{Product: "milk", Quantity: 1, UnitPrice: 120}
)

// newOrder returns order 7 of ada: item 1 tea 2 x 3.50, item 2 coffee
// 1 x 12.00.
func newOrder(t *testing.T) *domain.Order {
	t.Helper()
	r, err := domain.NewRecipientInfo(" Ada ", "+44", " London ")
	require.NoError(t, err)
	o, err := domain.NewOrder(7, "ada", r, tea, coffee)
	require.NoError(t, err)
	return o
}

// item is what a test compares of an item.
type item struct {
	id       domain.ItemID
	product  string
	quantity int
}

func itemsOf(o *domain.Order) []item {
	var out []item
	for _, it := range o.Items() {
		out = append(out, item{it.ID(), it.Product(), it.Quantity()})
	}
	return out
}

func TestNewOrder(t *testing.T) {
	o := newOrder(t)
	assert.Equal(t, domain.OrderID(7), o.ID())
	assert.Equal(t, "ada", o.Customer())
	assert.Equal(t, domain.RecipientInfo{Name: "Ada", Phone: "+44", Address: "London"}, o.Recipient(), "the recipient is trimmed")
	assert.Equal(t, domain.Placed, o.Status())
	assert.Equal(t, []item{{1, "tea", 2}, {2, "coffee", 1}}, itemsOf(o), "items are numbered from 1 in the order given")
	assert.Equal(t, domain.Money(1900), o.Total())
	assert.Zero(t, o.Version())
}

func TestTotalFollowsItems(t *testing.T) {
	o := newOrder(t)
	require.NoError(t, o.ChangeQuantity(2, 3))
	assert.Equal(t, domain.Money(4300), o.Total(), "a quantity change recomputes it")
	id, err := o.AddItem(milk)
	require.NoError(t, err)
	assert.Equal(t, domain.ItemID(3), id)
	assert.Equal(t, domain.Money(4420), o.Total(), "an added item counts")
	require.NoError(t, o.RemoveItem(1))
	assert.Equal(t, domain.Money(3720), o.Total(), "a removed item no longer counts")
	assert.Equal(t, "37.20", o.Total().String())
	assert.Equal(t, []item{{2, "coffee", 3}, {3, "milk", 1}}, itemsOf(o))
}

// TestItemIdentitiesAreNotReused removes the item with the highest
// identity and adds one: the new item gets a new identity, so that a
// client holding the removed one cannot change the new item by mistake.
func TestItemIdentitiesAreNotReused(t *testing.T) {
	o := newOrder(t)
	id, err := o.AddItem(milk)
	require.NoError(t, err)
	require.Equal(t, domain.ItemID(3), id)
	require.NoError(t, o.RemoveItem(3))
	id, err = o.AddItem(domain.ItemSpec{Product: "sugar", Quantity: 1, UnitPrice: 200})
	require.NoError(t, err)
	assert.Equal(t, domain.ItemID(4), id)
	_, err = o.Item(3)
	assert.ErrorIs(t, err, domain.ErrItemNotFound, "item 3 stays gone")

	// A product removed may come back, as a new item.
	require.NoError(t, o.RemoveItem(1))
	id, err = o.AddItem(tea)
	require.NoError(t, err)
	assert.Equal(t, domain.ItemID(5), id)
	assert.Equal(t, []item{{2, "coffee", 1}, {4, "sugar", 1}, {5, "tea", 2}}, itemsOf(o))
}

func TestCancel(t *testing.T) {
	o := newOrder(t)
	require.NoError(t, o.Cancel())
	assert.Equal(t, domain.Cancelled, o.Status())

	// Nothing changes afterwards, cancelling again included.
	changes := map[string]func() error{
		"change quantity":  func() error { return o.ChangeQuantity(1, 5) },
		"add item":         func() error { _, err := o.AddItem(milk); return err },
		"remove item":      func() error { return o.RemoveItem(1) },
		"change recipient": func() error { return o.ChangeRecipient(domain.RecipientInfo{Name: "Bob", Address: "Paris"}) },
		"ship":             o.Ship,
		"cancel again":     o.Cancel,
		"apply discount":   func() error { return o.ApplyDiscount(1, "SPRING", 10) },
		"remove discount":  func() error { return o.RemoveDiscount(1, "SPRING") },
	}
	for name, change := range changes {
		assert.ErrorIs(t, change(), domain.ErrCancelled, name)
	}
	assert.Equal(t, domain.Cancelled, o.Status())
	assert.Equal(t, []item{{1, "tea", 2}, {2, "coffee", 1}}, itemsOf(o))
	assert.Equal(t, domain.Money(1900), o.Total())
	assert.Equal(t, "Ada", o.Recipient().Name)
}

func TestCancelShipped(t *testing.T) {
	o := newOrder(t)
	require.NoError(t, o.Ship())
	assert.ErrorIs(t, o.Cancel(), domain.ErrShipped, "a shipped order cannot be cancelled")
	assert.Equal(t, domain.Shipped, o.Status())
}

// TestBusinessRules makes changes the domain refuses, each after an
// optional setup: the refused change leaves the order as it was.
func TestBusinessRules(t *testing.T) {
	ship := func(o *domain.Order) error { return o.Ship() }
	tests := []struct {
		name   string
		reason string
		setup  func(o *domain.Order) error
		run    func(o *domain.Order) error
		want   error
	}{
		{"zero quantity", "quantities must be positive", nil, func(o *domain.Order) error { return o.ChangeQuantity(1, 0) }, domain.ErrInvalidQuantity},
		{"unknown item", "only items of the order can change", nil, func(o *domain.Order) error { return o.ChangeQuantity(9, 1) }, domain.ErrItemNotFound},
		{"remove unknown item", "only items of the order can go", nil, func(o *domain.Order) error { return o.RemoveItem(9) }, domain.ErrItemNotFound},
		{"last item", "an order keeps at least one item", func(o *domain.Order) error { return o.RemoveItem(1) },
			func(o *domain.Order) error { return o.RemoveItem(2) }, domain.ErrNoItems},
		{"duplicate product", "a product is on one item only", nil, func(o *domain.Order) error {
			_, err := o.AddItem(domain.ItemSpec{Product: " tea ", Quantity: 1, UnitPrice: 350})
			return err
		}, domain.ErrDuplicateProduct},
		{"empty product", "an item names its product", nil, func(o *domain.Order) error {
			_, err := o.AddItem(domain.ItemSpec{Product: " ", Quantity: 1})
			return err
		}, domain.ErrInvalidProduct},
		{"negative price", "prices are not negative", nil, func(o *domain.Order) error {
			_, err := o.AddItem(domain.ItemSpec{Product: "x", Quantity: 1, UnitPrice: -1})
			return err
		}, domain.ErrInvalidPrice},
		{"added zero quantity", "quantities must be positive", nil, func(o *domain.Order) error {
			_, err := o.AddItem(domain.ItemSpec{Product: "x"})
			return err
		}, domain.ErrInvalidQuantity},
		{"shipped", "a shipped order cannot change", ship, func(o *domain.Order) error { return o.ChangeQuantity(1, 5) }, domain.ErrShipped},
		{"shipped add", "a shipped order cannot change", ship, func(o *domain.Order) error { _, err := o.AddItem(milk); return err }, domain.ErrShipped},
		{"ship twice", "an order ships once", ship, ship, domain.ErrShipped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrder(t)
			if tt.setup != nil {
				require.NoError(t, tt.setup(o))
			}
			items, total, status := itemsOf(o), o.Total(), o.Status()
			assert.ErrorIs(t, tt.run(o), tt.want, tt.reason)
			assert.Equal(t, items, itemsOf(o), "a refused change leaves the items as they were")
			assert.Equal(t, total, o.Total())
			assert.Equal(t, status, o.Status())
		})
	}
}

// discount is what a test compares of a discount.
type discount struct {
	id      domain.DiscountID
	code    string
	percent int
}

func discountsOf(t *testing.T, o *domain.Order, id domain.ItemID) []discount {
	t.Helper()
	it, err := o.Item(id)
	require.NoError(t, err)
	var out []discount
	for _, d := range it.Discounts() {
		out = append(out, discount{d.ID(), d.Code(), d.Percent()})
	}
	return out
}

// TestDiscounts applies and removes discounts: the item's subtotal and
// the order's total follow, and new discounts get distinct negative
// placeholder identities.
func TestDiscounts(t *testing.T) {
	o := newOrder(t)
	require.NoError(t, o.ApplyDiscount(2, " SPRING ", 10))
	it, err := o.Item(2)
	require.NoError(t, err)
	assert.Equal(t, domain.Money(1080), it.Subtotal(), "12.00 less 10%")
	assert.Equal(t, domain.Money(700+1080), o.Total())
	require.NoError(t, o.ApplyDiscount(2, "LOYAL", 5))
	assert.Equal(t, []discount{{-1, "SPRING", 10}, {-2, "LOYAL", 5}}, discountsOf(t, o, 2), "placeholders distinct within the item, code trimmed")
	assert.Equal(t, domain.Money(1020), it.Subtotal(), "the percents add up: 15%")
	require.NoError(t, o.ApplyDiscount(1, "SPRING", 10))
	assert.Equal(t, []discount{{-1, "SPRING", 10}}, discountsOf(t, o, 1), "a code is unique per item, not per order")
	assert.Equal(t, domain.Money(630+1020), o.Total())

	require.NoError(t, o.RemoveDiscount(2, "SPRING"))
	assert.Equal(t, []discount{{-2, "LOYAL", 5}}, discountsOf(t, o, 2))
	require.NoError(t, o.ApplyDiscount(2, "SPRING", 20))
	assert.Equal(t, []discount{{-2, "LOYAL", 5}, {-3, "SPRING", 20}}, discountsOf(t, o, 2), "no placeholder given twice while unsaved")
	assert.Equal(t, domain.Money(900), it.Subtotal())

	// The quantity and the discounts both count.
	require.NoError(t, o.ChangeQuantity(2, 3))
	assert.Equal(t, domain.Money(2700), it.Subtotal())
	assert.Equal(t, domain.Money(630+2700), o.Total())

	// Rounded down to the cent: 3 x 0.33 = 0.99, less 50% = 0.495.
	_, err = o.AddItem(domain.ItemSpec{Product: "mint", Quantity: 3, UnitPrice: 33})
	require.NoError(t, err)
	require.NoError(t, o.ApplyDiscount(3, "HALF", 50))
	mint, err := o.Item(3)
	require.NoError(t, err)
	assert.Equal(t, domain.Money(49), mint.Subtotal())

	// A full discount makes the item free.
	require.NoError(t, o.ApplyDiscount(3, "REST", 50))
	assert.Equal(t, domain.Money(0), mint.Subtotal())
	assert.Equal(t, domain.Money(630+2700), o.Total())
}

// TestDiscountRules makes discount changes the domain refuses: each
// leaves the order as it was.
func TestDiscountRules(t *testing.T) {
	apply := func(item domain.ItemID, code string, percent int) func(o *domain.Order) error {
		return func(o *domain.Order) error { return o.ApplyDiscount(item, code, percent) }
	}
	spring := apply(2, "SPRING", 10)
	tests := []struct {
		name   string
		reason string
		setup  func(o *domain.Order) error
		run    func(o *domain.Order) error
		want   error
	}{
		{"empty code", "a discount is named by its code", nil, apply(2, " ", 10), domain.ErrInvalidDiscountCode},
		{"zero percent", "a discount takes something off", nil, apply(2, "X", 0), domain.ErrInvalidPercent},
		{"negative percent", "a discount never adds to the price", nil, apply(2, "X", -5), domain.ErrInvalidPercent},
		{"over 100 percent", "a discount takes at most the whole price", nil, apply(2, "X", 101), domain.ErrInvalidPercent},
		{"unknown item", "only items of the order get discounts", nil, apply(9, "X", 10), domain.ErrItemNotFound},
		{"duplicate code", "a code is unique within its item", spring, apply(2, " SPRING", 5), domain.ErrDuplicateDiscount},
		{"sum over 100", "an item's discounts add up to 100 percent at most", apply(2, "A", 60), apply(2, "B", 41), domain.ErrDiscountTooLarge},
		{"remove unknown code", "only a discount of the item can go", spring, func(o *domain.Order) error { return o.RemoveDiscount(2, "AUTUMN") }, domain.ErrDiscountNotFound},
		{"remove from other item", "codes are per item", spring, func(o *domain.Order) error { return o.RemoveDiscount(1, "SPRING") }, domain.ErrDiscountNotFound},
		{"remove from unknown item", "only items of the order have discounts", spring, func(o *domain.Order) error { return o.RemoveDiscount(9, "SPRING") }, domain.ErrItemNotFound},
		{"shipped apply", "a shipped order cannot change", func(o *domain.Order) error { return o.Ship() }, spring, domain.ErrShipped},
		{"cancelled apply", "a cancelled order cannot change", func(o *domain.Order) error { return o.Cancel() }, spring, domain.ErrCancelled},
		{"shipped remove", "a shipped order cannot change", func(o *domain.Order) error {
			if err := spring(o); err != nil {
				return err
			}
			return o.Ship()
		}, func(o *domain.Order) error { return o.RemoveDiscount(2, "SPRING") }, domain.ErrShipped},
		{"cancelled remove", "a cancelled order cannot change", func(o *domain.Order) error {
			if err := spring(o); err != nil {
				return err
			}
			return o.Cancel()
		}, func(o *domain.Order) error { return o.RemoveDiscount(2, "SPRING") }, domain.ErrCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrder(t)
			if tt.setup != nil {
				require.NoError(t, tt.setup(o))
			}
			discounts, total := discountsOf(t, o, 2), o.Total()
			assert.ErrorIs(t, tt.run(o), tt.want, tt.reason)
			assert.Equal(t, discounts, discountsOf(t, o, 2), "a refused change leaves the discounts as they were")
			assert.Empty(t, discountsOf(t, o, 1))
			assert.Equal(t, total, o.Total())
		})
	}
}

func TestNewOrderRules(t *testing.T) {
	r := domain.RecipientInfo{Name: "a", Address: "b"}
	_, err := domain.NewOrder(1, "c", r)
	assert.ErrorIs(t, err, domain.ErrNoItems)
	_, err = domain.NewOrder(0, "c", r, tea)
	assert.ErrorIs(t, err, domain.ErrInvalidOrderID)
	_, err = domain.NewOrder(-1, "c", r, tea)
	assert.ErrorIs(t, err, domain.ErrInvalidOrderID)
	_, err = domain.NewOrder(1, " ", r, tea)
	assert.ErrorIs(t, err, domain.ErrInvalidCustomer)
	_, err = domain.NewOrder(1, "c", r, domain.ItemSpec{Product: "x", Quantity: -1})
	assert.ErrorIs(t, err, domain.ErrInvalidQuantity)
	_, err = domain.NewOrder(1, "c", r, tea, tea)
	assert.ErrorIs(t, err, domain.ErrDuplicateProduct)
	_, err = domain.NewRecipientInfo("", "1", "x")
	assert.ErrorIs(t, err, domain.ErrInvalidContact)
	_, err = domain.NewRecipientInfo("x", "1", " ")
	assert.ErrorIs(t, err, domain.ErrInvalidContact)
}

func TestMoneyString(t *testing.T) {
	for m, want := range map[domain.Money]string{0: "0.00", 5: "0.05", 1250: "12.50", -5: "-0.05", -1234: "-12.34",
		math.MaxInt64: "92233720368547758.07", math.MinInt64: "-92233720368547758.08"} {
		assert.Equal(t, want, m.String())
	}
}

// TestAmountsDoNotOverflow makes changes whose amounts are near the limit
// of Money: each is computed exactly, or refused with ErrAmountTooLarge
// and the order left as it was, never kept with a wrapped amount.
func TestAmountsDoNotOverflow(t *testing.T) {
	const maxMoney = domain.Money(math.MaxInt64)

	// Exact where the result fits, the intermediate products included.
	o := newOrder(t)
	id, err := o.AddItem(domain.ItemSpec{Product: "gold", Quantity: 1, UnitPrice: 200_000_000_000_000_000})
	require.NoError(t, err)
	gold, err := o.Item(id)
	require.NoError(t, err)
	assert.Equal(t, domain.Money(200_000_000_000_000_000), gold.Subtotal(), "times 100 for the percent must not wrap")
	assert.Equal(t, domain.Money(200_000_000_000_000_000+1900), o.Total())
	require.NoError(t, o.ApplyDiscount(id, "TENTH", 10))
	assert.Equal(t, domain.Money(180_000_000_000_000_000), gold.Subtotal())

	o = newOrder(t)
	require.NoError(t, o.RemoveItem(2))
	id, err = o.AddItem(domain.ItemSpec{Product: "all", Quantity: 1, UnitPrice: maxMoney - 700})
	require.NoError(t, err)
	assert.Equal(t, maxMoney, o.Total(), "the largest total")
	require.NoError(t, o.ApplyDiscount(id, "TENTH", 10))
	want := new(big.Int).Mul(big.NewInt(int64(maxMoney-700)), big.NewInt(90))
	want.Div(want, big.NewInt(100))
	item, err := o.Item(id)
	require.NoError(t, err)
	assert.Equal(t, want.Int64(), int64(item.Subtotal()), "rounded down, computed on 128 bits")

	// Refused where it does not fit.
	refused := func(name string, o *domain.Order, change func() error) {
		t.Helper()
		items, total := fmt.Sprint(itemsOf(o)), o.Total()
		assert.ErrorIs(t, change(), domain.ErrAmountTooLarge, name)
		assert.Equal(t, items, fmt.Sprint(itemsOf(o)), "%s: the items as they were", name)
		assert.Equal(t, total, o.Total(), "%s: the total as it was", name)
		assert.GreaterOrEqual(t, o.Total(), domain.Money(0))
	}
	o = newOrder(t)
	refused("an item's quantity times its price", o, func() error {
		_, err := o.AddItem(domain.ItemSpec{Product: "x", Quantity: 2, UnitPrice: maxMoney/2 + 1})
		return err
	})
	refused("the total", o, func() error {
		_, err := o.AddItem(domain.ItemSpec{Product: "x", Quantity: 1, UnitPrice: maxMoney - 1000})
		return err
	})
	id, err = o.AddItem(domain.ItemSpec{Product: "big", Quantity: 1, UnitPrice: 1 << 40})
	require.NoError(t, err)
	refused("a quantity change", o, func() error { return o.ChangeQuantity(id, domain.MaxQuantity) })

	// A discount removed gives its item its whole subtotal back.
	o = newOrder(t)
	require.NoError(t, o.RemoveItem(2))
	a, err := o.AddItem(domain.ItemSpec{Product: "a", Quantity: 1, UnitPrice: maxMoney - 700})
	require.NoError(t, err)
	require.NoError(t, o.ApplyDiscount(a, "FREE", 100))
	_, err = o.AddItem(domain.ItemSpec{Product: "b", Quantity: 1, UnitPrice: maxMoney - 700})
	require.NoError(t, err)
	refused("a discount removed", o, func() error { return o.RemoveDiscount(a, "FREE") })
	item, err = o.Item(a)
	require.NoError(t, err)
	assert.Len(t, item.Discounts(), 1, "the discount stays")

	_, err = domain.NewOrder(1, "c", domain.RecipientInfo{Name: "a", Address: "b"},
		domain.ItemSpec{Product: "x", Quantity: 1, UnitPrice: maxMoney}, domain.ItemSpec{Product: "y", Quantity: 1, UnitPrice: 1})
	assert.ErrorIs(t, err, domain.ErrAmountTooLarge)
}

// TestQuantityLimit refuses a quantity above MaxQuantity, which a 32-bit
// column cannot hold, wherever a quantity is given.
func TestQuantityLimit(t *testing.T) {
	o := newOrder(t)
	require.NoError(t, o.ChangeQuantity(1, domain.MaxQuantity))
	assert.Equal(t, domain.MaxQuantity, o.Items()[0].Quantity())
	for _, q := range []int{domain.MaxQuantity + 1, math.MaxInt64} {
		assert.ErrorIs(t, o.ChangeQuantity(1, q), domain.ErrInvalidQuantity)
		_, err := o.AddItem(domain.ItemSpec{Product: "x", Quantity: q, UnitPrice: 350})
		assert.ErrorIs(t, err, domain.ErrInvalidQuantity)
		_, err = domain.NewOrder(1, "c", domain.RecipientInfo{Name: "a", Address: "b"}, domain.ItemSpec{Product: "x", Quantity: q, UnitPrice: 350})
		assert.ErrorIs(t, err, domain.ErrInvalidQuantity)
	}
	assert.Equal(t, domain.MaxQuantity, o.Items()[0].Quantity())
	assert.Len(t, o.Items(), 2)
}

// TestTextRules refuses texts the stores cannot hold or index: invalid
// UTF-8, a NUL, more than MaxTextLength characters. MaxTextLength
// characters of 4 bytes each are fine.
func TestTextRules(t *testing.T) {
	longest := strings.Repeat("𝄞", domain.MaxTextLength) // 4 bytes each
	bad := map[string]string{
		"invalid UTF-8": "a\xffb",
		"NUL":           "a\x00b",
		"too long":      longest + "x",
	}
	r := domain.RecipientInfo{Name: "a", Address: "b"}
	for name, s := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := domain.NewOrder(1, s, r, tea)
			assert.ErrorIs(t, err, domain.ErrInvalidCustomer)
			assert.ErrorIs(t, domain.CheckCustomer(s), domain.ErrInvalidCustomer)
			_, err = domain.NewOrder(1, "c", r, domain.ItemSpec{Product: s, Quantity: 1})
			assert.ErrorIs(t, err, domain.ErrInvalidProduct)
			for _, f := range [][3]string{{s, "", "b"}, {"a", s, "b"}, {"a", "", s}} {
				_, err = domain.NewRecipientInfo(f[0], f[1], f[2])
				assert.ErrorIs(t, err, domain.ErrInvalidContact)
				_, err = domain.NewOrder(1, "c", domain.RecipientInfo{Name: f[0], Phone: f[1], Address: f[2]}, tea)
				assert.ErrorIs(t, err, domain.ErrInvalidContact, "a recipient built without NewRecipientInfo")
			}
			o := newOrder(t)
			_, err = o.AddItem(domain.ItemSpec{Product: s, Quantity: 1})
			assert.ErrorIs(t, err, domain.ErrInvalidProduct)
			assert.ErrorIs(t, o.ApplyDiscount(1, s, 10), domain.ErrInvalidDiscountCode)
			assert.ErrorIs(t, o.ChangeRecipient(domain.RecipientInfo{Name: s, Address: "b"}), domain.ErrInvalidContact)
			assert.Equal(t, []item{{1, "tea", 2}, {2, "coffee", 1}}, itemsOf(o))
			assert.Empty(t, o.Items()[0].Discounts())
			assert.Equal(t, "Ada", o.Recipient().Name)
		})
	}

	o, err := domain.NewOrder(1, " "+longest+" ", domain.RecipientInfo{Name: longest, Phone: longest, Address: longest}, domain.ItemSpec{Product: longest, Quantity: 1})
	require.NoError(t, err, "the limit is in characters, once trimmed")
	assert.Equal(t, longest, o.Customer())
	require.NoError(t, o.ApplyDiscount(1, longest, 10))
	require.NoError(t, domain.CheckCustomer(longest))
	assert.ErrorIs(t, domain.CheckCustomer(" "), domain.ErrInvalidCustomer)
}
