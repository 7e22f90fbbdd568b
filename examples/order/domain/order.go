// Package domain is the order model: the Order aggregate root, its
// OrderItem child entities, each with its Discount child entities, and the
// RecipientInfo value object, with the business rules, and the Repository
// the application stores orders in. It
// knows nothing of databases; the struct tags only tell the persistence
// layer which column a field goes to.
//
// An order assigns the identities of its items itself, from 1, in the
// order they are added, and never gives an identity twice: the item added
// after item 3 was removed is item 4, not 3 again, so that an identity a
// client kept always names the same item or none.
//
// A discount takes a percentage off one item's subtotal. Its identity is
// given by the database when the order is saved; the order names its
// discounts by their codes, unique within an item.
//
// An order is placed, then shipped or cancelled; a shipped or cancelled
// order cannot change any more. Cancelling is a change of status, kept in
// the store like any other: the order stays, with status cancelled.
//
// Every value of an order is one that every store of the example holds,
// and a change that would break that is refused, never stored altered:
// a quantity is 1 to [MaxQuantity]; a text (customer, product, discount
// code, the recipient's fields) is valid UTF-8 without NUL, of at most
// [MaxTextLength] characters once trimmed; amounts are computed without
// overflow, and a subtotal or a total that [Money] cannot hold is refused
// with [ErrAmountTooLarge].
package domain

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// Limits of an order's values.
const (
	// MaxQuantity is the largest quantity of an item: what a 32-bit
	// integer column holds.
	MaxQuantity = math.MaxInt32
	// MaxTextLength is the largest number of characters (Unicode code
	// points) of a customer, a product name, a discount code and each field
	// of a recipient, once trimmed. At 4 bytes a character at most, such a
	// text stays far below the 2,704 bytes of an entry of a PostgreSQL
	// index, which the customer, the product and the code are part of.
	MaxTextLength = 200
)

// Business rule violations.
var (
	// ErrInvalidQuantity reports a quantity that is not 1 to
	// [MaxQuantity].
	ErrInvalidQuantity = fmt.Errorf("order: quantity must be 1 to %d", MaxQuantity)
	// ErrInvalidPrice reports a negative unit price.
	ErrInvalidPrice = errors.New("order: price must not be negative")
	// ErrAmountTooLarge reports a change after which an item's quantity
	// times its unit price, or the order's total, would not fit in
	// [Money]: the change is refused rather than made with a wrong amount.
	ErrAmountTooLarge = errors.New("order: amount too large")
	// ErrInvalidProduct reports an item without a product name, or with
	// one that is not a valid text (see [MaxTextLength]).
	ErrInvalidProduct = errors.New("order: an item needs a product")
	// ErrInvalidOrderID reports an order identity that is not positive.
	ErrInvalidOrderID = errors.New("order: an order identity must be positive")
	// ErrInvalidCustomer reports an order without a customer, or with one
	// that is not a valid text (see [MaxTextLength]).
	ErrInvalidCustomer = errors.New("order: an order needs a customer")
	// ErrShipped reports a change of a shipped order.
	ErrShipped = errors.New("order: a shipped order cannot change")
	// ErrCancelled reports a change of a cancelled order, cancelling it
	// again included.
	ErrCancelled = errors.New("order: a cancelled order cannot change")
	// ErrNoItems reports an order left without items: placed without any,
	// or by the removal of its last one.
	ErrNoItems = errors.New("order: an order needs at least one item")
	// ErrItemNotFound reports an item identity the order does not have.
	ErrItemNotFound = errors.New("order: no such item")
	// ErrDuplicateProduct reports a product that is already an item of
	// the order: change that item's quantity instead.
	ErrDuplicateProduct = errors.New("order: product already in the order")
	// ErrInvalidContact reports a recipient without a name or an address,
	// or with a field that is not a valid text (see [MaxTextLength]).
	ErrInvalidContact = errors.New("order: recipient needs a name and an address")
	// ErrInvalidDiscountCode reports a discount without a code, or with
	// one that is not a valid text (see [MaxTextLength]).
	ErrInvalidDiscountCode = errors.New("order: a discount needs a code")
	// ErrInvalidPercent reports a discount percent outside 1 to 100.
	ErrInvalidPercent = errors.New("order: a discount percent must be 1 to 100")
	// ErrDuplicateDiscount reports a discount code the item already has.
	ErrDuplicateDiscount = errors.New("order: discount code already on the item")
	// ErrDiscountTooLarge reports discounts of an item that would add up
	// to more than 100 percent.
	ErrDiscountTooLarge = errors.New("order: an item's discounts cannot exceed 100 percent")
	// ErrDiscountNotFound reports a discount code the item does not have.
	ErrDiscountNotFound = errors.New("order: no such discount")
)

// Errors of a [Repository]. An implementation wraps them around its own
// errors, so that errors.Is finds both.
var (
	// ErrOrderNotFound reports that no order has the identity asked for.
	ErrOrderNotFound = errors.New("order: no such order")
	// ErrOrderExists reports a new order whose identity another order has.
	ErrOrderExists = errors.New("order: an order with this identity exists")
	// ErrConcurrentChange reports an order changed by someone else since it
	// was loaded: load it again and retry.
	ErrConcurrentChange = errors.New("order: changed concurrently")
)

// OrderID identifies an order.
type OrderID int64

// ItemID identifies an item within its order.
type ItemID int64

// DiscountID identifies a discount. The database gives it when the
// discount is first saved; until then it is a negative placeholder.
type DiscountID int64

// Money is an amount in cents.
type Money int64

// String formats m as units and cents, such as "12.50" or "-0.05".
func (m Money) String() string {
	sign, n := "", uint64(m)
	if m < 0 {
		sign, n = "-", -n // two's complement: right for the lowest Money too
	}
	return fmt.Sprintf("%s%d.%02d", sign, n/100, n%100)
}

// subtotal returns quantity*price*(100-percent)/100, rounded down, for a
// quantity and a price not negative and a percent of 0 to 100, or
// [ErrAmountTooLarge] when quantity*price does not fit in Money. The
// products are computed on 128 bits, so that nothing wraps.
func subtotal(quantity int, price Money, percent int) (Money, error) {
	if quantity < 0 || price < 0 || percent < 0 || percent > 100 {
		return 0, fmt.Errorf("order: subtotal of %d x %d less %d%%: out of range", quantity, price, percent)
	}
	hi, gross := bits.Mul64(uint64(quantity), uint64(price))
	if hi != 0 || gross > math.MaxInt64 {
		return 0, fmt.Errorf("%w: %d x %s", ErrAmountTooLarge, quantity, price)
	}
	// gross < 2^63 and the factor <= 100: hi < 50, so the division by 100
	// cannot overflow, and its quotient is at most gross.
	hi, lo := bits.Mul64(gross, uint64(100-percent))
	q, _ := bits.Div64(hi, lo, 100)
	return Money(q), nil
}

// addMoney returns a+b, for amounts not negative, or [ErrAmountTooLarge]
// when the sum does not fit in Money.
func addMoney(a, b Money) (Money, error) {
	if b > math.MaxInt64-a {
		return 0, fmt.Errorf("%w: a total over %s", ErrAmountTooLarge, Money(math.MaxInt64))
	}
	return a + b, nil
}

// checkText reports why s, a text of the order once trimmed, cannot be
// kept, naming it what: not valid UTF-8, a NUL in it, or more than
// [MaxTextLength] characters. The stores cannot hold the first two, nor
// index a long text.
func checkText(what, s string) error {
	switch {
	case !utf8.ValidString(s):
		return fmt.Errorf("the %s is not valid UTF-8", what)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("the %s holds a NUL character", what)
	case utf8.RuneCountInString(s) > MaxTextLength:
		return fmt.Errorf("the %s is longer than %d characters", what, MaxTextLength)
	}
	return nil
}

// CheckCustomer reports whether customer, once trimmed, is one an order
// can have: not empty, and a valid text (see [MaxTextLength]). The error
// wraps [ErrInvalidCustomer].
func CheckCustomer(customer string) error {
	customer = strings.TrimSpace(customer)
	if customer == "" {
		return ErrInvalidCustomer
	}
	if err := checkText("customer", customer); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCustomer, err)
	}
	return nil
}

// Status is where an order is in its life.
type Status string

// The statuses of an order: Placed first, then Shipped or Cancelled, which
// are final.
const (
	Placed    Status = "placed"
	Shipped   Status = "shipped"
	Cancelled Status = "cancelled"
)

// RecipientInfo is a value object: who receives the order and where.
type RecipientInfo struct {
	Name    string `db:"recipient_name"`    // who receives it; required
	Phone   string `db:"recipient_phone"`   // how to reach them; may be empty
	Address string `db:"recipient_address"` // where; required
}

// NewRecipientInfo validates and returns a recipient, its fields trimmed:
// a name and an address are required, and each field is a valid text (see
// [MaxTextLength]).
func NewRecipientInfo(name, phone, address string) (RecipientInfo, error) {
	r := RecipientInfo{Name: strings.TrimSpace(name), Phone: strings.TrimSpace(phone), Address: strings.TrimSpace(address)}
	if err := r.validate(); err != nil {
		return RecipientInfo{}, err
	}
	return r, nil
}

// validate reports why r cannot be an order's recipient, if it cannot.
func (r RecipientInfo) validate() error {
	if strings.TrimSpace(r.Name) == "" || strings.TrimSpace(r.Address) == "" {
		return ErrInvalidContact
	}
	for _, f := range []struct{ what, s string }{{"recipient's name", r.Name}, {"recipient's phone", r.Phone}, {"recipient's address", r.Address}} {
		if err := checkText(f.what, f.s); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidContact, err)
		}
	}
	return nil
}

// ItemSpec describes an item to add to an order: the product, how many
// units and the price of one. The order gives the item its identity.
type ItemSpec struct {
	Product   string // the product's name, not empty
	Quantity  int    // how many units, 1 to MaxQuantity
	UnitPrice Money  // the price of one unit, not negative
}

// OrderItem is a child entity of Order: a product, its quantity and price,
// and the discounts on it. Items are made by their order ([NewOrder],
// [Order.AddItem]).
type OrderItem struct {
	id        ItemID `db:"id" ddd:"id"`
	product   string `db:"product"`
	quantity  int    `db:"quantity"`
	unitPrice Money  `db:"unit_price"`
	discounts []*Discount
}

// Discount is a child entity of OrderItem: a percentage off the item's
// subtotal, named by a code unique within the item. Discounts are made by
// their order ([Order.ApplyDiscount]).
type Discount struct {
	// id is made by the database when the discount is inserted.
	id      DiscountID `db:"id,generated" ddd:"id"`
	code    string     `db:"code"`
	percent int        `db:"percent"`
}

// ID returns the discount's identity: positive once saved, a negative
// placeholder before.
func (d *Discount) ID() DiscountID { return d.id }

// Code returns the discount's code.
func (d *Discount) Code() string { return d.code }

// Percent returns how many percent the discount takes off, 1 to 100.
func (d *Discount) Percent() int { return d.percent }

// CheckProduct reports whether product, once trimmed, is one an item can
// have: not empty, and a valid text (see [MaxTextLength]). The error wraps
// [ErrInvalidProduct].
func CheckProduct(product string) error {
	product = strings.TrimSpace(product)
	if product == "" {
		return ErrInvalidProduct
	}
	if err := checkText("product name", product); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidProduct, err)
	}
	return nil
}

// newItem validates spec and returns the item of identity id.
func newItem(id ItemID, spec ItemSpec) (*OrderItem, error) {
	product := strings.TrimSpace(spec.Product)
	if err := CheckProduct(product); err != nil {
		return nil, err
	}
	switch {
	case spec.Quantity <= 0 || spec.Quantity > MaxQuantity:
		return nil, ErrInvalidQuantity
	case spec.UnitPrice < 0:
		return nil, ErrInvalidPrice
	}
	it := &OrderItem{id: id, product: product, quantity: spec.Quantity, unitPrice: spec.UnitPrice}
	if _, err := it.subtotal(); err != nil {
		return nil, err
	}
	return it, nil
}

// ID returns the item's identity within its order.
func (i *OrderItem) ID() ItemID { return i.id }

// Product returns the product's name.
func (i *OrderItem) Product() string { return i.product }

// Quantity returns how many units are ordered.
func (i *OrderItem) Quantity() int { return i.quantity }

// UnitPrice returns the price of one unit.
func (i *OrderItem) UnitPrice() Money { return i.unitPrice }

// Discounts returns the item's discounts, in the order they were applied.
func (i *OrderItem) Discounts() []*Discount { return append([]*Discount(nil), i.discounts...) }

// discountPercent returns the sum of the item's discount percents.
func (i *OrderItem) discountPercent() int {
	sum := 0
	for _, d := range i.discounts {
		sum += d.percent
	}
	return sum
}

// Subtotal returns quantity times unit price, less the item's discounts:
// quantity*unitPrice*(100-percents)/100, rounded down to the cent. The
// order's rules keep quantity times unit price within [Money]; should an
// item hold more (one loaded from a store written around those rules),
// Subtotal returns the largest Money, never a wrapped amount.
func (i *OrderItem) Subtotal() Money {
	s, err := i.subtotal()
	if err != nil {
		return math.MaxInt64
	}
	return s
}

// subtotal is Subtotal, or [ErrAmountTooLarge].
func (i *OrderItem) subtotal() (Money, error) {
	return subtotal(i.quantity, i.unitPrice, i.discountPercent())
}

// placeholderID returns the identity of a new discount of the item until
// the database gives it one: a negative number, one below the lowest
// placeholder the item holds, so that the discounts not saved yet have
// distinct identities (the persistence layer tells elements apart by
// their identities).
func (i *OrderItem) placeholderID() DiscountID {
	id := DiscountID(-1)
	for _, d := range i.discounts {
		if d.id <= id {
			id = d.id - 1
		}
	}
	return id
}

// Order is the aggregate root. Its total always follows its items.
type Order struct {
	id        OrderID       `db:"id"`
	customer  string        `db:"customer"`
	recipient RecipientInfo // a value object, stored in the order's row
	items     []*OrderItem
	// lastItemID is the highest identity given to an item so far, kept
	// when that item is removed, so that no identity is given twice.
	lastItemID ItemID `db:"last_item_id"`
	total      Money  `db:"total"`
	status     Status `db:"status"`
	version    int64  `db:"version" ddd:"version"`
}

// NewOrder places an order of identity id (positive) for customer with at
// least one item, numbering the items from 1 in the order given.
func NewOrder(id OrderID, customer string, recipient RecipientInfo, items ...ItemSpec) (*Order, error) {
	if id <= 0 {
		return nil, ErrInvalidOrderID
	}
	if err := CheckCustomer(customer); err != nil {
		return nil, err
	}
	customer = strings.TrimSpace(customer)
	if err := recipient.validate(); err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, ErrNoItems
	}
	o := &Order{id: id, customer: customer, recipient: recipient, status: Placed}
	for _, spec := range items {
		if _, err := o.AddItem(spec); err != nil {
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

// nextItemID returns the identity of the next item: one more than any
// given so far.
func (o *Order) nextItemID() ItemID {
	last := o.lastItemID
	for _, it := range o.items {
		last = max(last, it.id)
	}
	return last + 1
}

// changeable reports why the order cannot change, if it cannot.
func (o *Order) changeable() error {
	switch o.status {
	case Shipped:
		return ErrShipped
	case Cancelled:
		return ErrCancelled
	}
	return nil
}

// AddItem adds an item described by spec and returns the identity the
// order gave it. A product appears on one item only: adding it again fails
// with [ErrDuplicateProduct].
func (o *Order) AddItem(spec ItemSpec) (ItemID, error) {
	if err := o.changeable(); err != nil {
		return 0, err
	}
	id := o.nextItemID()
	it, err := newItem(id, spec)
	if err != nil {
		return 0, err
	}
	for _, x := range o.items {
		if x.product == it.product {
			return 0, fmt.Errorf("%w: %s", ErrDuplicateProduct, it.product)
		}
	}
	items := append(o.items[:len(o.items):len(o.items)], it)
	total, err := totalOf(items)
	if err != nil {
		return 0, err
	}
	o.items, o.total = items, total
	o.lastItemID = id
	return id, nil
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
			items := append(o.items[:i:i], o.items[i+1:]...)
			total, err := totalOf(items)
			if err != nil {
				return err
			}
			o.items, o.total = items, total
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
	if quantity <= 0 || quantity > MaxQuantity {
		return ErrInvalidQuantity
	}
	it, err := o.Item(id)
	if err != nil {
		return err
	}
	old := it.quantity
	it.quantity = quantity
	if err := o.recompute(); err != nil {
		it.quantity = old
		return err
	}
	return nil
}

// ChangeRecipient sets who receives the order. r must hold what
// [NewRecipientInfo] accepts.
func (o *Order) ChangeRecipient(r RecipientInfo) error {
	if err := o.changeable(); err != nil {
		return err
	}
	if err := r.validate(); err != nil {
		return err
	}
	o.recipient = r
	return nil
}

// ApplyDiscount puts a discount of percent (1 to 100) on an item, named by
// code (trimmed, not empty), which must be new on the item. The item's
// discounts cannot add up to more than 100 percent. The discount's
// identity is a placeholder until the order is saved.
func (o *Order) ApplyDiscount(item ItemID, code string, percent int) error {
	if err := o.changeable(); err != nil {
		return err
	}
	code = strings.TrimSpace(code)
	if code == "" {
		return ErrInvalidDiscountCode
	}
	if err := checkText("discount code", code); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidDiscountCode, err)
	}
	if percent < 1 || percent > 100 {
		return ErrInvalidPercent
	}
	it, err := o.Item(item)
	if err != nil {
		return err
	}
	for _, d := range it.discounts {
		if d.code == code {
			return fmt.Errorf("%w: %s", ErrDuplicateDiscount, code)
		}
	}
	if it.discountPercent()+percent > 100 {
		return fmt.Errorf("%w: %d%% more on item %d, which has %d%%", ErrDiscountTooLarge, percent, item, it.discountPercent())
	}
	old := it.discounts
	it.discounts = append(it.discounts[:len(old):len(old)], &Discount{id: it.placeholderID(), code: code, percent: percent})
	if err := o.recompute(); err != nil {
		it.discounts = old
		return err
	}
	return nil
}

// RemoveDiscount removes the discount named code (trimmed) from an item.
func (o *Order) RemoveDiscount(item ItemID, code string) error {
	if err := o.changeable(); err != nil {
		return err
	}
	it, err := o.Item(item)
	if err != nil {
		return err
	}
	code = strings.TrimSpace(code)
	for i, d := range it.discounts {
		if d.code == code {
			// The subtotal grows back: the total may no longer fit.
			old := it.discounts
			it.discounts = append(it.discounts[:i:i], it.discounts[i+1:]...)
			if err := o.recompute(); err != nil {
				it.discounts = old
				return err
			}
			return nil
		}
	}
	return fmt.Errorf("%w: %q on item %d", ErrDiscountNotFound, code, item)
}

// Ship marks the order shipped; it cannot change afterwards.
func (o *Order) Ship() error {
	if err := o.changeable(); err != nil {
		return err
	}
	o.status = Shipped
	return nil
}

// Cancel cancels the order; it cannot change afterwards. A shipped order
// cannot be cancelled: [ErrShipped]. An order is cancelled once: cancelling
// a cancelled order fails with [ErrCancelled], like any other change of
// it, so that the caller learns that its request changed nothing.
func (o *Order) Cancel() error {
	if err := o.changeable(); err != nil {
		return err
	}
	o.status = Cancelled
	return nil
}

// recompute sets the total from the items, or reports
// [ErrAmountTooLarge] and leaves it.
func (o *Order) recompute() error {
	t, err := totalOf(o.items)
	if err != nil {
		return err
	}
	o.total = t
	return nil
}

// totalOf returns the sum of the subtotals of items, or
// [ErrAmountTooLarge].
func totalOf(items []*OrderItem) (Money, error) {
	var t Money
	for _, it := range items {
		s, err := it.subtotal()
		if err != nil {
			return 0, err
		}
		if t, err = addMoney(t, s); err != nil {
			return 0, err
		}
	}
	return t, nil
}

// Repository is what the application needs of order storage. Its methods
// return errors wrapping [ErrOrderNotFound], [ErrOrderExists] and
// [ErrConcurrentChange] where those apply.
type Repository interface {
	// Find returns the order with identity id.
	Find(ctx context.Context, id OrderID) (*Order, error)
	// Save inserts a new order or writes the changes of a loaded one.
	Save(ctx context.Context, o *Order) error
	// Update loads an order, applies change and saves it, in one
	// transaction. When change fails, nothing is saved and its error is
	// returned. Update may run change more than once, each time on the
	// order loaded afresh, when a concurrent change of the order won: what
	// change does must follow from the order it is given.
	Update(ctx context.Context, id OrderID, change func(*Order) error) error
	// ListByCustomer returns the orders of customer whose identity is
	// greater than after, in the order of their identities, at most limit
	// of them (all of them when limit <= 0). Passing the identity of the
	// last order of a page as after returns the next page.
	ListByCustomer(ctx context.Context, customer string, after OrderID, limit int) ([]*Order, error)
}
