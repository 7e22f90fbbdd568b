// Package application holds the order use cases. Each loads the order
// through the domain's Repository, lets the domain apply the change, and
// saves it; the repository writes only what changed. Lists are read, not
// loaded: [Queries] reads summaries of orders through [OrderQueries].
package application

import (
	"context"
	"errors"
	"fmt"

	"github.com/dddkit/dddkit/examples/order/domain"
)

// Page sizes of [Service.ListByCustomer].
const (
	// DefaultPageSize is the size of a page when none is asked for.
	DefaultPageSize = 20
	// MaxPageSize is the largest page.
	MaxPageSize = 100
)

// ErrInvalidPage reports a page size or cursor out of range.
var ErrInvalidPage = errors.New("application: invalid page")

// Service runs the order use cases.
type Service struct {
	orders domain.Repository
}

// NewService returns a service over orders.
func NewService(orders domain.Repository) *Service {
	return &Service{orders: orders}
}

// PlaceOrder creates and saves an order; the order numbers its items.
func (s *Service) PlaceOrder(ctx context.Context, id domain.OrderID, customer string, recipient domain.RecipientInfo, items ...domain.ItemSpec) (*domain.Order, error) {
	o, err := domain.NewOrder(id, customer, recipient, items...)
	if err != nil {
		return nil, fmt.Errorf("place order %d: %w", id, err)
	}
	if err := s.orders.Save(ctx, o); err != nil {
		return nil, fmt.Errorf("place order %d: %w", id, err)
	}
	return o, nil
}

// Get returns an order.
func (s *Service) Get(ctx context.Context, id domain.OrderID) (*domain.Order, error) {
	o, err := s.orders.Find(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get order %d: %w", id, err)
	}
	return o, nil
}

// Page is a page of orders.
type Page struct {
	// Orders are the orders of the page, in the order of their identities.
	Orders []*domain.Order
	// Next is the cursor of the next page, to pass as after; zero when
	// this page is the last.
	Next domain.OrderID
}

// ListByCustomer returns the page of the orders of customer that follows
// the order identified by after (from the first when after is zero), of at
// most limit orders (DefaultPageSize when limit is zero, at most
// MaxPageSize). A customer that no order can have (see
// [domain.CheckCustomer]) is refused with an error wrapping
// [domain.ErrInvalidCustomer].
func (s *Service) ListByCustomer(ctx context.Context, customer string, after domain.OrderID, limit int) (Page, error) {
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 0 || limit > MaxPageSize || after < 0 {
		return Page{}, fmt.Errorf("%w: limit %d (1 to %d), after %d", ErrInvalidPage, limit, MaxPageSize, after)
	}
	// A customer no order can have is refused, not looked for: the
	// stores cannot take every text as a query's argument (PostgreSQL
	// refuses a NUL or invalid UTF-8).
	if err := domain.CheckCustomer(customer); err != nil {
		return Page{}, fmt.Errorf("list the orders of a customer: %w", err)
	}
	// One order more than the page tells whether another page follows.
	orders, err := s.orders.ListByCustomer(ctx, customer, after, limit+1)
	if err != nil {
		return Page{}, fmt.Errorf("list the orders of %q: %w", customer, err)
	}
	p := Page{Orders: orders}
	if len(orders) > limit {
		p.Orders = orders[:limit]
		p.Next = p.Orders[limit-1].ID()
	}
	return p, nil
}

// ChangeQuantity sets the quantity of one item, in one transaction, and
// returns the order as saved.
func (s *Service) ChangeQuantity(ctx context.Context, id domain.OrderID, item domain.ItemID, quantity int) (*domain.Order, error) {
	return s.update(ctx, "change the quantity of an item of", id, func(o *domain.Order) error {
		return o.ChangeQuantity(item, quantity)
	})
}

// AddItem adds an item to an order, in one transaction, and returns the
// order as saved and the identity the order gave the item.
func (s *Service) AddItem(ctx context.Context, id domain.OrderID, spec domain.ItemSpec) (*domain.Order, domain.ItemID, error) {
	var added domain.ItemID
	o, err := s.update(ctx, "add an item to", id, func(o *domain.Order) (err error) {
		added, err = o.AddItem(spec)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return o, added, nil
}

// RemoveItem removes an item of an order, in one transaction, and returns
// the order as saved.
func (s *Service) RemoveItem(ctx context.Context, id domain.OrderID, item domain.ItemID) (*domain.Order, error) {
	return s.update(ctx, "remove an item of", id, func(o *domain.Order) error {
		return o.RemoveItem(item)
	})
}

// AdjustItems adds and removes items in one change of the order, in one
// transaction, and returns the order as saved. The items are added first,
// so that the order is never left without items in between.
func (s *Service) AdjustItems(ctx context.Context, id domain.OrderID, add []domain.ItemSpec, remove []domain.ItemID) (*domain.Order, error) {
	return s.update(ctx, "adjust the items of", id, func(o *domain.Order) error {
		for _, spec := range add {
			if _, err := o.AddItem(spec); err != nil {
				return err
			}
		}
		for _, item := range remove {
			if err := o.RemoveItem(item); err != nil {
				return err
			}
		}
		return nil
	})
}

// ApplyDiscount puts a discount of percent, named by code, on one item of
// an order, in one transaction, and returns the order as saved, in which
// the discount has the identity the database gave it.
func (s *Service) ApplyDiscount(ctx context.Context, id domain.OrderID, item domain.ItemID, code string, percent int) (*domain.Order, error) {
	return s.update(ctx, "apply a discount to", id, func(o *domain.Order) error {
		return o.ApplyDiscount(item, code, percent)
	})
}

// RemoveDiscount removes the discount named code from one item of an
// order, in one transaction, and returns the order as saved.
func (s *Service) RemoveDiscount(ctx context.Context, id domain.OrderID, item domain.ItemID, code string) (*domain.Order, error) {
	return s.update(ctx, "remove a discount of", id, func(o *domain.Order) error {
		return o.RemoveDiscount(item, code)
	})
}

// Ship marks an order shipped, in one transaction, and returns the order as
// saved.
func (s *Service) Ship(ctx context.Context, id domain.OrderID) (*domain.Order, error) {
	return s.update(ctx, "ship", id, (*domain.Order).Ship)
}

// Cancel cancels an order that has not shipped, in one transaction, and
// returns the order as saved: the order stays, with the status cancelled.
func (s *Service) Cancel(ctx context.Context, id domain.OrderID) (*domain.Order, error) {
	return s.update(ctx, "cancel", id, (*domain.Order).Cancel)
}

// update runs change on the order through the repository's Update (load,
// change and save in one transaction) and returns the order it saved. It
// is the one caller of Update. what names the use case in errors.
func (s *Service) update(ctx context.Context, what string, id domain.OrderID, change func(*domain.Order) error) (*domain.Order, error) {
	var saved *domain.Order
	err := s.orders.Update(ctx, id, func(o *domain.Order) error {
		if err := change(o); err != nil {
			return err
		}
		saved = o
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s order %d: %w", what, id, err)
	}
	return saved, nil
}
