// Package infrastructure stores the order model with dddkit: the
// [OrderRepository], and [Open], which opens the database (an embedded
// SQLite database, or PostgreSQL through pgx) and creates the tables of the
// embedded schema files.
//
// An order is one row of the table orders (its RecipientInfo value object
// flattened into the recipient_* columns) and one row of order_items per
// item. The repository writes only what changed since the order was loaded.
package infrastructure

import (
	"sync"

	"github.com/dddkit/dddkit/examples/order/domain"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

// OrderRepository stores orders. It implements [domain.Repository]: Find,
// Save, Remove and Update come from the embedded sqlstore repository.
type OrderRepository struct {
	*sqlstore.Repository[*domain.Order, domain.OrderID]
}

var _ domain.Repository = (*OrderRepository)(nil)

// orderMapping maps an Order to its tables. It is built once: a mapping is
// immutable and shared.
var orderMapping = sync.OnceValues(func() (*sqlstore.Mapping[*domain.Order], error) {
	return sqlstore.NewMapping[*domain.Order](
		sqlstore.Table{Name: "orders"},
		sqlstore.Child{Field: "items", Table: "order_items", ParentKey: "order_id"},
	)
})

// NewOrderRepository returns a repository of orders on db. Its Update runs
// in a transaction of db. Repositories are cheap: all of them share the
// tracking of the orders loaded or saved, so one may be built per request.
func NewOrderRepository(db *sqlstore.DB) (*OrderRepository, error) {
	m, err := orderMapping()
	if err != nil {
		return nil, err
	}
	s, err := sqlstore.NewRepository[*domain.Order, domain.OrderID](db, m)
	if err != nil {
		return nil, err
	}
	return &OrderRepository{s}, nil
}
