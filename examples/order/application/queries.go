package application

import (
	"context"
	"errors"
	"fmt"

	"github.com/dddkit/dddkit/examples/order/domain"
)

// ErrInvalidStatus reports a status that no order has.
var ErrInvalidStatus = errors.New("application: invalid status")

// OrderSummary is an order as a list shows it: its root's columns, without
// its items. It is read, not loaded: it is not an aggregate and is never
// saved.
type OrderSummary struct {
	ID       domain.OrderID
	Customer string
	Status   domain.Status
	Total    domain.Money
	Version  int64
}

// OrderFilter selects orders. Its zero value selects them all.
type OrderFilter struct {
	// Customer, when not empty, keeps the orders of that customer.
	Customer string
	// Statuses, when not empty, keeps the orders in any of them.
	Statuses []domain.Status
	// Product, when not empty, keeps the orders with an item of it.
	Product string
}

// OrderQueries reads orders for lists, without loading them: the read
// side of the model, next to the domain's Repository, which writes.
type OrderQueries interface {
	// ListOrders returns the orders that f selects with an identity
	// greater than after, in the order of their identities, at most limit
	// of them, and how many orders f selects in all.
	ListOrders(ctx context.Context, f OrderFilter, after domain.OrderID, limit int) ([]OrderSummary, int64, error)
}

// Queries runs the order queries.
type Queries struct {
	orders OrderQueries
}

// NewQueries returns the queries over orders.
func NewQueries(orders OrderQueries) *Queries {
	return &Queries{orders: orders}
}

// SummaryPage is a page of order summaries.
type SummaryPage struct {
	// Orders are the orders of the page, in the order of their identities.
	Orders []OrderSummary
	// Next is the cursor of the next page, to pass as after; zero when
	// this page is the last.
	Next domain.OrderID
	// Total is how many orders the filter selects, on all pages.
	Total int64
}

// ListOrders returns the page of the orders that f selects that follows
// the order identified by after (from the first when after is zero), of at
// most limit orders (DefaultPageSize when limit is zero, at most
// MaxPageSize), with the total. A customer or product no order can have
// is refused with an error wrapping [domain.ErrInvalidCustomer] or
// [domain.ErrInvalidProduct], a status no order has with one wrapping
// [ErrInvalidStatus].
func (q *Queries) ListOrders(ctx context.Context, f OrderFilter, after domain.OrderID, limit int) (SummaryPage, error) {
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 0 || limit > MaxPageSize || after < 0 {
		return SummaryPage{}, fmt.Errorf("%w: limit %d (1 to %d), after %d", ErrInvalidPage, limit, MaxPageSize, after)
	}
	if f.Customer != "" {
		if err := domain.CheckCustomer(f.Customer); err != nil {
			return SummaryPage{}, fmt.Errorf("list orders: %w", err)
		}
	}
	if f.Product != "" {
		if err := domain.CheckProduct(f.Product); err != nil {
			return SummaryPage{}, fmt.Errorf("list orders: %w", err)
		}
	}
	for _, s := range f.Statuses {
		switch s {
		case domain.Placed, domain.Shipped, domain.Cancelled:
		default:
			return SummaryPage{}, fmt.Errorf("list orders: %w: %q (%s, %s or %s)", ErrInvalidStatus, s, domain.Placed, domain.Shipped, domain.Cancelled)
		}
	}
	// One order more than the page tells whether another page follows.
	orders, total, err := q.orders.ListOrders(ctx, f, after, limit+1)
	if err != nil {
		return SummaryPage{}, fmt.Errorf("list orders: %w", err)
	}
	p := SummaryPage{Orders: orders, Total: total}
	if len(orders) > limit {
		p.Orders = orders[:limit]
		p.Next = p.Orders[limit-1].ID
	}
	return p, nil
}
