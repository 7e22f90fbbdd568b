// Package model is the order aggregate every benchmark runs on: the shape of
// the order example (an order row with a recipient value object flattened
// into it, and a collection of items), with exported fields so that every
// contender (encoding/gob and r3labs/diff need exported fields) can take
// it as it is. It also holds the hand-written deep copy and comparison, the
// workloads, and the expected state after a number of saves.
package model

import (
	"sort"
	"strconv"
)

// OrderID identifies an order.
type OrderID int64

// ItemID identifies an item within its order.
type ItemID int64

// Recipient is a value object: who receives the order and where.
type Recipient struct {
	Name    string `db:"recipient_name"`
	Phone   string `db:"recipient_phone"`
	Address string `db:"recipient_address"`
}

// Item is an entity of the order, identified by its ID field.
type Item struct {
	ID        ItemID `db:"id" ddd:"id" diff:"id,identifier"`
	Product   string `db:"product" diff:"product"`
	Quantity  int    `db:"quantity" diff:"quantity"`
	UnitPrice int64  `db:"unit_price" diff:"unit_price"`
}

// Order is the aggregate root. Items are kept in ascending ID order.
type Order struct {
	Number    OrderID `db:"id" diff:"id"`
	Customer  string  `db:"customer" diff:"customer"`
	Recipient Recipient
	Items     []*Item `diff:"items"`
	Total     int64   `db:"total" diff:"total"`
	Status    string  `db:"status" diff:"status"`
	Version   int64   `db:"version" ddd:"version" diff:"-"`
}

// ID returns the order's identity.
func (o *Order) ID() OrderID { return o.Number }

// NewItem returns the item with identity id; its contents depend only on id.
func NewItem(id ItemID) *Item {
	return &Item{
		ID:        id,
		Product:   "product-" + strconv.FormatInt(int64(id), 10),
		Quantity:  1 + int(id)%5,
		UnitPrice: 199 + 100*(int64(id)%11),
	}
}

// New returns order id with items 1 to n, its total computed.
func New(id OrderID, n int) *Order {
	o := &Order{
		Number:   id,
		Customer: "alice",
		Recipient: Recipient{
			Name:    "Ada Lovelace",
			Phone:   "+44 20 7946 0000",
			Address: "12 St James's Square, London",
		},
		Items:  make([]*Item, n),
		Status: "placed",
	}
	for i := range o.Items {
		o.Items[i] = NewItem(ItemID(i + 1))
	}
	o.Recompute()
	return o
}

// Recompute sets the total to the sum of the items' subtotals.
func (o *Order) Recompute() {
	var t int64
	for _, it := range o.Items {
		t += int64(it.Quantity) * it.UnitPrice
	}
	o.Total = t
}

// Item returns the item with identity id, or nil.
func (o *Order) Item(id ItemID) *Item {
	i := sort.Search(len(o.Items), func(i int) bool { return o.Items[i].ID >= id })
	if i < len(o.Items) && o.Items[i].ID == id {
		return o.Items[i]
	}
	return nil
}

// CopyHand is the deep copy a programmer would write for Order: the floor
// of a snapshot.
func CopyHand(o *Order) *Order {
	if o == nil {
		return nil
	}
	c := *o
	if o.Items != nil {
		c.Items = make([]*Item, len(o.Items))
		for i, it := range o.Items {
			if it != nil {
				n := *it
				c.Items[i] = &n
			}
		}
	}
	return &c
}

// EqualHand is the field-by-field comparison a programmer would write for
// Order, by the rules of dddkit's diff.Equal for this type: the version is
// not compared, items are matched by identity (here in one pass, since
// both orders keep their items in ID order), and it stops at the first
// difference.
func EqualHand(a, b *Order) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Number != b.Number || a.Customer != b.Customer || a.Recipient != b.Recipient ||
		a.Total != b.Total || a.Status != b.Status || len(a.Items) != len(b.Items) {
		return false
	}
	for i, x := range a.Items {
		y := b.Items[i]
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

// Workload is the change made to an order before each save.
type Workload int

// The workloads.
const (
	// OneItem changes the quantity of one item (and so the total).
	OneItem Workload = iota
	// TenPercent changes the quantity of 10% of the items, adds one item
	// and removes one.
	TenPercent
)

// String returns the workload's name as the report prints it.
func (w Workload) String() string {
	if w == OneItem {
		return "one item changed"
	}
	return "10% changed, 1 added, 1 removed"
}

// Change is what one step of a workload did to an order: what a contender
// that knows it (the hand-written SQL) sends, and what every contender
// applies to its own in-memory model.
type Change struct {
	// Changed holds the items whose quantity changed, with their new
	// contents.
	Changed []Item
	// Removed holds the identities of the removed items.
	Removed []ItemID
	// Added holds the added items.
	Added []Item
	// Total is the order's new total.
	Total int64
}

// Step applies step k of workload w to o and returns what it did. The steps
// depend only on k, w and o's items, so that applying the same steps to
// equal orders gives equal orders.
func Step(o *Order, w Workload, k int) Change {
	var ch Change
	n := len(o.Items)
	switch w {
	case OneItem:
		it := o.Items[k%n]
		it.Quantity++
		ch.Changed = append(ch.Changed, *it)
	case TenPercent:
		// n/10 distinct items among positions 1 to n-1; position 0 (the
		// lowest identity) is removed, and a new highest one added.
		for j := 0; j < n/10; j++ {
			it := o.Items[(k+10*j)%(n-1)+1]
			it.Quantity++
			ch.Changed = append(ch.Changed, *it)
		}
		ch.Removed = append(ch.Removed, o.Items[0].ID)
		add := NewItem(o.Items[n-1].ID + 1)
		ch.Added = append(ch.Added, *add)
		o.Items = append(o.Items[1:len(o.Items):len(o.Items)], add)
	}
	o.Recompute()
	ch.Total = o.Total
	return ch
}

// Apply applies ch, made by Step on an equal order, to o.
func Apply(o *Order, ch Change) {
	for _, c := range ch.Changed {
		if it := o.Item(c.ID); it != nil {
			it.Quantity = c.Quantity
		}
	}
	if len(ch.Removed) > 0 {
		gone := make(map[ItemID]bool, len(ch.Removed))
		for _, id := range ch.Removed {
			gone[id] = true
		}
		kept := make([]*Item, 0, len(o.Items)+len(ch.Added))
		for _, it := range o.Items {
			if !gone[it.ID] {
				kept = append(kept, it)
			}
		}
		o.Items = kept
	}
	for _, a := range ch.Added {
		it := a
		o.Items = append(o.Items, &it)
	}
	o.Total = ch.Total
}
