// Package application holds the order use cases. Each loads the order
// through the domain's Repository, lets the domain apply the change, and
// saves it; the repository writes only what changed.
package application

import (
	"context"
	"fmt"

	"github.com/dddkit/dddkit/examples/order/domain"
)

// Service runs the order use cases.
type Service struct {
	orders domain.Repository
}

// NewService returns a service over orders.
func NewService(orders domain.Repository) *Service {
	return &Service{orders: orders}
}

// NewItem describes an item to add to an order.
type NewItem struct {
	Product   string
	Quantity  int
	UnitPrice domain.Money
}

// PlaceOrder creates and saves an order.
func (s *Service) PlaceOrder(ctx context.Context, id domain.OrderID, customer string, recipient domain.RecipientInfo, items ...NewItem) (*domain.Order, error) {
	its := make([]*domain.OrderItem, 0, len(items))
	for i, ni := range items {
		it, err := domain.NewOrderItem(domain.ItemID(i+1), ni.Product, ni.Quantity, ni.UnitPrice)
		if err != nil {
			return nil, err
		}
		its = append(its, it)
	}
	o, err := domain.NewOrder(id, customer, recipient, its...)
	if err != nil {
		return nil, err
	}
	if err := s.orders.Save(ctx, o); err != nil {
		return nil, fmt.Errorf("place order %d: %w", id, err)
	}
	return o, nil
}

// ChangeQuantity sets the quantity of one item, in one transaction, and
// returns the order as saved.
func (s *Service) ChangeQuantity(ctx context.Context, id domain.OrderID, item domain.ItemID, quantity int) (*domain.Order, error) {
	return s.update(ctx, id, func(o *domain.Order) error {
		return o.ChangeQuantity(item, quantity)
	})
}

// AdjustItems adds and removes items in one change of the order, in one
// transaction, and returns the order as saved.
func (s *Service) AdjustItems(ctx context.Context, id domain.OrderID, add []NewItem, remove []domain.ItemID) (*domain.Order, error) {
	return s.update(ctx, id, func(o *domain.Order) error {
		for _, ni := range add {
			it, err := domain.NewOrderItem(o.NextItemID(), ni.Product, ni.Quantity, ni.UnitPrice)
			if err != nil {
				return err
			}
			if err := o.AddItem(it); err != nil {
				return err
			}
		}
		for _, rid := range remove {
			if err := o.RemoveItem(rid); err != nil {
				return err
			}
		}
		return nil
	})
}

// Ship marks an order shipped, in one transaction, and returns the order as
// saved.
func (s *Service) Ship(ctx context.Context, id domain.OrderID) (*domain.Order, error) {
	return s.update(ctx, id, func(o *domain.Order) error { return o.Ship() })
}

// update runs change on the order through the repository's Update (load,
// change and save in one transaction) and returns the order it saved.
func (s *Service) update(ctx context.Context, id domain.OrderID, change func(*domain.Order) error) (*domain.Order, error) {
	var saved *domain.Order
	err := s.orders.Update(ctx, id, func(o *domain.Order) error {
		if err := change(o); err != nil {
			return err
		}
		saved = o
		return nil
	})
	if err != nil {
		return nil, err
	}
	return saved, nil
}

// Get returns an order.
func (s *Service) Get(ctx context.Context, id domain.OrderID) (*domain.Order, error) {
	return s.orders.Find(ctx, id)
}

// Cancel removes an order that has not shipped.
func (s *Service) Cancel(ctx context.Context, id domain.OrderID) error {
	o, err := s.orders.Find(ctx, id)
	if err != nil {
		return err
	}
	if o.Status() == domain.Shipped {
		return domain.ErrShipped
	}
	return s.orders.Remove(ctx, o)
}
