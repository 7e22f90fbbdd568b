package model

// Sealed is the order as a domain model writes it, as in the order
// example: the same fields, unexported, identities returned by methods.
// The benchmarks run on it the contenders that can read unexported fields
// from another package, to show what that costs them.
type Sealed struct {
	id        OrderID
	customer  string
	recipient sealedRecipient
	items     []*SealedItem
	total     int64
	status    string
	version   int64 `ddd:"version"`
}

type sealedRecipient struct {
	name, phone, address string
}

// SealedItem is an item of a [Sealed] order.
type SealedItem struct {
	id        ItemID
	product   string
	quantity  int
	unitPrice int64
}

// ID returns the order's identity.
func (o *Sealed) ID() OrderID { return o.id }

// ID returns the item's identity.
func (i *SealedItem) ID() ItemID { return i.id }

// Seal returns o as a [Sealed] order.
func Seal(o *Order) *Sealed {
	s := &Sealed{id: o.Number, customer: o.Customer,
		recipient: sealedRecipient{o.Recipient.Name, o.Recipient.Phone, o.Recipient.Address},
		total:     o.Total, status: o.Status, version: o.Version}
	for _, it := range o.Items {
		s.items = append(s.items, &SealedItem{id: it.ID, product: it.Product, quantity: it.Quantity, unitPrice: it.UnitPrice})
	}
	return s
}

// SealedTypes returns a value of each struct type of a [Sealed] order, as
// go-cmp's AllowUnexported wants them.
func SealedTypes() []any { return []any{Sealed{}, SealedItem{}, sealedRecipient{}} }
