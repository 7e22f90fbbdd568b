// Package infrastructure stores the order model with dddkit: the
// [OrderRepository], which implements the domain's Repository, the
// [OrderQueries], which read lists of orders through projections, and [Open],
// which opens the database (an embedded SQLite database, or PostgreSQL
// through pgx) and creates the tables of the embedded schema files.
//
// An order is one row of the table orders (its RecipientInfo value object
// flattened into the recipient_* columns), one row of order_items per
// item, and one row of item_discounts per discount of an item, keyed by
// order_id and item_id, which sqlstore fills, and by an identity that the
// database generates: the INSERT of a discount reads it back (RETURNING
// "id") into the order. The repository writes only what changed since the
// order was loaded.
//
// On PostgreSQL the example works in a schema of its own, [DefaultSchema]
// unless told otherwise, and never drops a schema it did not create: a
// missing schema is created and marked as the example's with a comment;
// only a marked schema is ever dropped, when [Config.Fresh] asks to start
// afresh; an existing schema without the mark is refused, untouched (see
// [OpenPostgres]).
package infrastructure

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dddkit/dddkit/examples/order/domain"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

// OrderRepository stores orders on a sqlstore database. It implements
// [domain.Repository], and Remove. Its errors wrap both the domain's
// errors and those of package repository, such as
// [domain.ErrOrderNotFound] and [repository.ErrNotFound].
type OrderRepository struct {
	orders *sqlstore.Repository[*domain.Order, domain.OrderID]
}

var _ domain.Repository = (*OrderRepository)(nil)

// orderMapping maps an Order to its tables. It is built once: a mapping is
// immutable and shared.
var orderMapping = sync.OnceValues(func() (*sqlstore.Mapping[*domain.Order], error) {
	return sqlstore.NewMapping[*domain.Order](
		sqlstore.Table{Name: "orders"},
		sqlstore.Child{Field: "items", Table: "order_items", ParentKey: "order_id", Children: []sqlstore.Child{
			{Field: "discounts", Table: "item_discounts", ParentKey: "item_id"},
		}},
	)
})

// updateRetry is how Update runs again when a concurrent change of the
// order won: at once, then after a short wait that doubles.
var updateRetry = repository.RetryPolicy{Attempts: 5, Backoff: 2 * time.Millisecond}

// NewOrderRepository returns a repository of orders on db. Its Update runs
// in a transaction of db. Repositories are cheap: all of them share the
// tracking of the orders loaded or saved, so one may be built per request.
// opts are more options of the repository, such as [CacheOrders].
func NewOrderRepository(db *sqlstore.DB, opts ...repository.Option) (*OrderRepository, error) {
	m, err := orderMapping()
	if err != nil {
		return nil, fmt.Errorf("order mapping: %w", err)
	}
	r, err := sqlstore.NewRepository[*domain.Order, domain.OrderID](db, m, append([]repository.Option{repository.WithRetry(updateRetry)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("order repository: %w", err)
	}
	return &OrderRepository{orders: r}, nil
}

// Find returns the order with identity id, and tracks it.
func (r *OrderRepository) Find(ctx context.Context, id domain.OrderID) (*domain.Order, error) {
	o, err := r.orders.Find(ctx, id)
	if err != nil {
		return nil, domainError(err)
	}
	return o, nil
}

// Save inserts a new order, or writes what changed in a tracked one: only
// the changed rows and columns, or nothing.
func (r *OrderRepository) Save(ctx context.Context, o *domain.Order) error {
	return domainError(r.orders.Save(ctx, o))
}

// Remove deletes an order, its items and their discounts.
func (r *OrderRepository) Remove(ctx context.Context, o *domain.Order) error {
	return domainError(r.orders.Remove(ctx, o))
}

// Update loads the order with identity id, applies change and saves it, in
// one transaction of the repository's database. When a concurrent change
// of the order wins, it runs again on the order loaded afresh, up to five
// times in all; then it fails with an error wrapping
// [domain.ErrConcurrentChange].
func (r *OrderRepository) Update(ctx context.Context, id domain.OrderID, change func(*domain.Order) error) error {
	return domainError(r.orders.Update(ctx, id, func(_ context.Context, o *domain.Order) error { return change(o) }))
}

// ListByCustomer returns the orders of customer with an identity greater
// than after, in the order of their identities, at most limit of them (all
// when limit <= 0), children included, and tracks them. It pages by key:
// one SELECT of the orders WHERE customer = ? AND id > ? ORDER BY id LIMIT
// ?, one of their items and one of the items' discounts, in one round
// trip on pgx.
func (r *OrderRepository) ListByCustomer(ctx context.Context, customer string, after domain.OrderID, limit int) ([]*domain.Order, error) {
	q := sqlstore.Where(sqlstore.Eq("customer", customer)).OrderBy("id").Limit(max(limit, 0))
	if after > 0 {
		q = q.After(after)
	}
	orders, err := r.orders.FindAll(ctx, q)
	if err != nil {
		return nil, domainError(err)
	}
	return orders, nil
}

// domainError wraps err, an error of package repository or sqlstore, with
// the domain's error of the same meaning, if any.
func domainError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, repository.ErrNotFound):
		return fmt.Errorf("%w: %w", domain.ErrOrderNotFound, err)
	case errors.Is(err, repository.ErrExists):
		return fmt.Errorf("%w: %w", domain.ErrOrderExists, err)
	case errors.Is(err, repository.ErrConflict):
		return fmt.Errorf("%w: %w", domain.ErrConcurrentChange, err)
	}
	return err
}
