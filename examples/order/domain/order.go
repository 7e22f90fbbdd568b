// Package domain is the order model: the Order aggregate root, its
// OrderItem child entities and the RecipientInfo value object, with the
// business rules. It knows nothing of databases; the struct tags only tell
// the persistence layer which column a field goes to.
package domain

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Business rule violations.
var (
	ErrInvalidQuantity = errors.New("order: quantity must be positive")
	ErrInvalidPrice    = errors.New("order: price must not be negative")
	ErrShipped         = errors.New("order: a shipped order cannot change")
	ErrNoItems         = errors.New("order: an order needs at least one item")
	ErrItemNotFound    = errors.New("order: no such item")
	ErrDuplicateItem   = errors.New("order: item already in the order")
	// ErrDuplicateProduct reports a product that is already an item of
	// the order: change that item's quantity instead.
	ErrDuplicateProduct = errors.New("order: product already in the order")
	ErrInvalidContact   = errors.New("order: recipient needs a name and an address")
)

// OrderID identifies an order.
type OrderID int64

// ItemID identifies an item within its order.
type ItemID int64

// Money is an amount in cents.
type Money int64

// String formats m as units and cents, such as "12.50" or "-0.05".
func (m Money) String() string {
	sign, n := "", int64(m)
	if n < 0 {
		sign, n = "-", -n
	}
	return fmt.Sprintf("%s%d.%02d", sign, n/100, n%100)
}

// Status is where an order is in its life.
type Status string

// The statuses of an order.
const (
	Placed  Status = "placed"
	Shipped Status = "shipped"
)

// RecipientInfo is a value object: who receives the order and where.
type RecipientInfo struct {
	Name    string `db:"recipient_name"`
	Phone   string `db:"recipient_phone"`
	Address string `db:"recipient_address"`
}

// NewRecipientInfo validates and returns a recipient.
func NewRecipientInfo(name, phone, address string) (RecipientInfo, error) {
	r := RecipientInfo{Name: strings.TrimSpace(name), Phone: strings.TrimSpace(phone), Address: strings.TrimSpace(address)}
	if r.Name == "" || r.Address == "" {
		return RecipientInfo{}, ErrInvalidContact
	}
	return r, nil
}

// OrderItem is a child entity of Order: a product, its quantity and price.
type OrderItem struct {
	id        ItemID `db:"id" ddd:"id"`
	product   string `db:"product"`
	quantity  int    `db:"quantity"`
	unitPrice Money  `db:"unit_price"`
}

// NewOrderItem validates and returns an item.
func NewOrderItem(id ItemID, product string, quantity int, unitPrice Money) (*OrderItem, error) {
	if quantity <= 0 {
		return nil, ErrInvalidQuantity
	}
	if unitPrice < 0 {
		return nil, ErrInvalidPrice
	}
	return &OrderItem{id: id, product: product, quantity: quantity, unitPrice: unitPrice}, nil
}

// ID returns the item's identity within its order.
func (i *OrderItem) ID() ItemID { return i.id }

// Product returns the product's name.
func (i *OrderItem) Product() string { return i.product }

// Quantity returns how many units are ordered.
func (i *OrderItem) Quantity() int { return i.quantity }

// UnitPrice returns the price of one unit.
func (i *OrderItem) UnitPrice() Money { return i.unitPrice }

// Subtotal returns quantity times unit price.
func (i *OrderItem) Subtotal() Money { return Money(i.quantity) * i.unitPrice }

// Order is the aggregate root. Its total always follows its items.
type Order struct {
	id        OrderID       `db:"id"`
	customer  string        `db:"customer"`
	recipient RecipientInfo // a value object, stored in the order's row
	items     []*OrderItem
	total     Money  `db:"total"`
	status    Status `db:"status"`
	version   int64  `db:"version" ddd:"version"`
}

// NewOrder places an order with at least one item.
func NewOrder(id OrderID, customer string, recipient RecipientInfo, items ...*OrderItem) (*Order, error) {
	if len(items) == 0 {
		return nil, ErrNoItems
	}
	o := &Order{id: id, customer: customer, recipient: recipient, status: Placed}
	for _, it := range items {
		if err := o.AddItem(it); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// ID returns the order's identity.
func (o *Order) ID() OrderID { return o.id }

// Customer returns who placed the order.
func (o *Order) Customer() string { return o.customer }

// Recipient returns who receives the order.
func (o *Order) Recipient() RecipientInfo { return o.recipient }

// Total returns the sum of the items' subtotals.
func (o *Order) Total() Money { return o.total }

// Status returns the order's status.
func (o *Order) Status() Status { return o.status }

// Version returns the optimistic-lock version.
func (o *Order) Version() int64 { return o.version }

// Items returns the order's items.
func (o *Order) Items() []*OrderItem { return append([]*OrderItem(nil), o.items...) }

// Item returns the item with identity id.
func (o *Order) Item(id ItemID) (*OrderItem, error) {
	for _, it := range o.items {
		if it.id == id {
			return it, nil
		}
	}
	return nil, fmt.Errorf("%w: %d", ErrItemNotFound, id)
}

// NextItemID returns an identity no item of the order has.
func (o *Order) NextItemID() ItemID {
	var max ItemID
	for _, it := range o.items {
		max = maxID(max, it.id)
	}
	return max + 1
}

func maxID(a, b ItemID) ItemID {
	if a > b {
		return a
	}
	return b
}

func (o *Order) changeable() error {
	if o.status == Shipped {
		return ErrShipped
	}
	return nil
}

// AddItem adds an item. Its identity and its product must be new to the
// order: a product appears on one item only.
func (o *Order) AddItem(it *OrderItem) error {
	if err := o.changeable(); err != nil {
		return err
	}
	if _, err := o.Item(it.id); err == nil {
		return fmt.Errorf("%w: %d", ErrDuplicateItem, it.id)
	}
	for _, x := range o.items {
		if x.product == it.product {
			return fmt.Errorf("%w: %s", ErrDuplicateProduct, it.product)
		}
	}
	o.items = append(o.items, it)
	o.recompute()
	return nil
}

// RemoveItem removes an item; the last one cannot be removed.
func (o *Order) RemoveItem(id ItemID) error {
	if err := o.changeable(); err != nil {
		return err
	}
	for i, it := range o.items {
		if it.id == id {
			if len(o.items) == 1 {
				return ErrNoItems
			}
			o.items = append(o.items[:i:i], o.items[i+1:]...)
			o.recompute()
			return nil
		}
	}
	return fmt.Errorf("%w: %d", ErrItemNotFound, id)
}

// ChangeQuantity sets the quantity of an item.
func (o *Order) ChangeQuantity(id ItemID, quantity int) error {
	if err := o.changeable(); err != nil {
		return err
	}
	if quantity <= 0 {
		return ErrInvalidQuantity
	}
	it, err := o.Item(id)
	if err != nil {
		return err
	}
	it.quantity = quantity
	o.recompute()
	return nil
}

// ChangeRecipient sets who receives the order.
func (o *Order) ChangeRecipient(r RecipientInfo) error {
	if err := o.changeable(); err != nil {
		return err
	}
	o.recipient = r
	return nil
}

// Ship marks the order shipped; it cannot change afterwards.
func (o *Order) Ship() error {
	if err := o.changeable(); err != nil {
		return err
	}
	o.status = Shipped
	return nil
}

func (o *Order) recompute() {
	var t Money
	for _, it := range o.items {
		t += it.Subtotal()
	}
	o.total = t
}

// Repository is what the application needs of order storage.
type Repository interface {
	// Find returns the order with identity id.
	Find(ctx context.Context, id OrderID) (*Order, error)
	// Save inserts a new order or writes the changes of a loaded one.
	Save(ctx context.Context, o *Order) error
	// Remove deletes an order.
	Remove(ctx context.Context, o *Order) error
	// Update loads an order, applies change and saves it, in one
	// transaction.
	Update(ctx context.Context, id OrderID, change func(*Order) error) error
}
