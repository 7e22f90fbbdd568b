package infrastructure

import (
	"context"
	"fmt"

	"github.com/dddkit/dddkit/examples/order/application"
	"github.com/dddkit/dddkit/examples/order/domain"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

// OrderQueries reads orders for lists through projections of the orders
// table: it selects the columns a list shows, never the items, and tracks
// nothing. It implements [application.OrderQueries].
type OrderQueries struct {
	db *sqlstore.DB
	m  *sqlstore.Mapping[*domain.Order]
}

var _ application.OrderQueries = (*OrderQueries)(nil)

// NewOrderQueries returns the order queries on db.
func NewOrderQueries(db *sqlstore.DB) (*OrderQueries, error) {
	m, err := orderMapping()
	if err != nil {
		return nil, fmt.Errorf("order mapping: %w", err)
	}
	return &OrderQueries{db: db, m: m}, nil
}

// summaryRow is the projection of a row of orders that a list reads.
type summaryRow struct {
	ID       int64  `db:"id"`
	Customer string `db:"customer"`
	Status   string `db:"status"`
	Total    int64  `db:"total"`
	Version  int64  `db:"version"`
}

// ListOrders returns the orders that f selects with an identity greater
// than after, in the order of their identities, at most limit of them, and
// how many f selects in all. It pages by key: SELECT id, customer, status,
// total, version FROM orders WHERE ... AND id > ? ORDER BY id LIMIT ?, and
// SELECT count(*) FROM orders WHERE ..., in one round trip on pgx. Several
// statuses are an OR; a product is an EXISTS on the order's items.
func (q *OrderQueries) ListOrders(ctx context.Context, f application.OrderFilter, after domain.OrderID, limit int) ([]application.OrderSummary, int64, error) {
	var conds []sqlstore.Cond
	if f.Customer != "" {
		conds = append(conds, sqlstore.Eq("customer", f.Customer))
	}
	if len(f.Statuses) > 0 {
		or := make([]sqlstore.Cond, len(f.Statuses))
		for i, s := range f.Statuses {
			or[i] = sqlstore.Eq("status", string(s))
		}
		conds = append(conds, sqlstore.Or(or...))
	}
	if f.Product != "" {
		conds = append(conds, sqlstore.Has("items", sqlstore.Eq("product", f.Product)))
	}
	query := sqlstore.Where(conds...).OrderBy("id").Limit(max(limit, 0))
	if after > 0 {
		query = query.After(after)
	}
	rows, total, err := sqlstore.SelectPage[summaryRow](ctx, q.db, q.m, query)
	if err != nil {
		return nil, 0, err
	}
	out := make([]application.OrderSummary, len(rows))
	for i, r := range rows {
		out[i] = application.OrderSummary{
			ID:       domain.OrderID(r.ID),
			Customer: r.Customer,
			Status:   domain.Status(r.Status),
			Total:    domain.Money(r.Total),
			Version:  r.Version,
		}
	}
	return out, total, nil
}
