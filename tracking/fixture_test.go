package tracking

import (
	"strconv"
	"time"
)

// The order model below is a realistic aggregate shared by the tests and
// benchmarks of this package: unexported fields, a value object, a slice of
// entities, a time and a version.

type orderID int64

type itemID int64

// RecipientInfo is a value object: it has no identity.
type RecipientInfo struct {
	Name, Address, Phone string
}

// Order is an aggregate root, identified by its ID method.
type Order struct {
	id         orderID
	customerID int64
	recipient  RecipientInfo
	items      []*OrderItem
	total      int64
	status     string
	createdAt  time.Time
	version    int64 `ddd:"version"`
}

// ID returns the order's identity.
func (o *Order) ID() orderID { return o.id }

// OrderItem is an entity of the Order aggregate, identified by a tag.
type OrderItem struct {
	id        itemID `ddd:"id"`
	productID int64
	name      string
	quantity  int
	unitPrice int64
}

// fixtureEpoch is the creation time of every fixture order, with a
// monotonic clock reading (time.Now) stripped to keep it deterministic.
var fixtureEpoch = time.Date(2024, 3, 1, 12, 30, 0, 0, time.UTC)

// newOrder returns an order with the given number of items; its contents
// depend only on items.
func newOrder(items int) *Order {
	o := &Order{
		id:         1000 + orderID(items),
		customerID: 42,
		recipient: RecipientInfo{
			Name:    "Ada Lovelace",
			Address: "12 St James's Square, London",
			Phone:   "+44 20 7946 0000",
		},
		status:    "placed",
		createdAt: fixtureEpoch.Add(time.Duration(items) * time.Minute),
		version:   3,
	}
	o.items = make([]*OrderItem, items)
	for i := range o.items {
		it := &OrderItem{
			id:        itemID(i + 1),
			productID: int64(500 + i%37),
			name:      "product " + strconv.Itoa(i%37),
			quantity:  1 + i%5,
			unitPrice: int64(199 + 100*(i%11)),
		}
		o.items[i] = it
		o.total += int64(it.quantity) * it.unitPrice
	}
	return o
}

// handCopyOrder is the deep copy a programmer would write for Order.
func handCopyOrder(o *Order) *Order {
	if o == nil {
		return nil
	}
	c := *o
	if o.items != nil {
		c.items = make([]*OrderItem, len(o.items))
		for i, it := range o.items {
			if it != nil {
				n := *it
				c.items[i] = &n
			}
		}
	}
	return &c
}

// handEqualOrder is the field-by-field comparison a programmer would write
// for Order: times compare with Equal, a nil slice equals an empty one, and
// the version is compared too.
func handEqualOrder(a, b *Order) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.id != b.id || a.customerID != b.customerID || a.recipient != b.recipient ||
		a.total != b.total || a.status != b.status || !a.createdAt.Equal(b.createdAt) ||
		a.version != b.version || len(a.items) != len(b.items) {
		return false
	}
	for i, x := range a.items {
		y := b.items[i]
		if x == nil || y == nil {
			if x != y {
				return false
			}
			continue
		}
		if *x != *y {
			return false
		}
	}
	return true
}
