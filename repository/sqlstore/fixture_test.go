package sqlstore

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The test aggregate: a root with unexported fields, a value object, an
// unmapped field, a version, an ignored field, and a child collection.

type orderID int64

type itemID int64

type money struct {
	amount   int64  `db:"total_amount"`
	currency string `db:"total_currency"`
}

type order struct {
	id       orderID `db:"id"`
	customer string  `db:"customer"`
	total    money
	note     string `db:"-"` // not stored
	items    []*item
	version  int64             `db:"version" ddd:"version"`
	cache    map[string]string `ddd:"-"`
}

func (o *order) ID() orderID { return o.id }

type item struct {
	id       itemID `db:"id" ddd:"id"`
	sku      string `db:"sku"`
	quantity int    `db:"quantity"`
}

// Field indexes, as diff paths carry them.
const (
	fOrderCustomer = 1
	fOrderTotal    = 2
	fMoneyAmount   = 0
	fOrderNote     = 3
	fOrderItems    = 4
	fItemSKU       = 1
	fItemQuantity  = 2
)

func orderMapping(t testing.TB) *Mapping[*order] {
	t.Helper()
	m, err := NewMapping[*order](
		Table{Name: "orders"},
		Child{Field: "items", Table: "order_items", ParentKey: "order_id"},
	)
	require.NoError(t, err)
	return m
}

func newOrder(id orderID, customer string, items ...*item) *order {
	o := &order{id: id, customer: customer, total: money{currency: "EUR"}, items: items}
	o.recompute()
	return o
}

func (o *order) recompute() {
	o.total.amount = 0
	for _, it := range o.items {
		o.total.amount += int64(it.quantity) * 100
	}
}

func (o *order) item(id itemID) *item {
	for _, it := range o.items {
		if it.id == id {
			return it
		}
	}
	return nil
}

func (o *order) setQuantity(id itemID, q int) {
	o.item(id).quantity = q
	o.recompute()
}

func (o *order) add(it *item) {
	o.items = append(o.items, it)
	o.recompute()
}

func (o *order) remove(id itemID) {
	for i, it := range o.items {
		if it.id == id {
			o.items = append(o.items[:i:i], o.items[i+1:]...)
		}
	}
	o.recompute()
}
