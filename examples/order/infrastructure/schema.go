package infrastructure

import (
	"context"
	"fmt"

	"github.com/dddkit/dddkit/repository/sqlstore"
)

// CheckSchema checks that the database of db has the tables and columns
// that orders are mapped to, of types that hold them; the error lists
// every difference, and wraps [sqlstore.ErrSchema] when there are some.
func CheckSchema(ctx context.Context, db *sqlstore.DB) error {
	m, err := orderMapping()
	if err != nil {
		return fmt.Errorf("order mapping: %w", err)
	}
	if err := m.Check(ctx, db); err != nil {
		return fmt.Errorf("order tables: %w", err)
	}
	return nil
}

// SchemaDDL returns the CREATE TABLE statements that sqlstore writes from
// the mapping of orders, for database d: the starting point of the schema
// files, which add the domain's CHECK and UNIQUE constraints and an index.
func SchemaDDL(d sqlstore.Database) (string, error) {
	m, err := orderMapping()
	if err != nil {
		return "", fmt.Errorf("order mapping: %w", err)
	}
	return m.DDL(d)
}
