package sqlstore

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dddkit/dddkit/repository"
)

// TestStatementTarget checks the table and operation read from the
// statements sqlstore builds.
func TestStatementTarget(t *testing.T) {
	for q, want := range map[string]string{
		`INSERT INTO "order_items" ("order_id", "id") VALUES ($1, $2)`:                          "insert order_items",
		`UPDATE "sales"."orders" SET "x" = $1`:                                                  "update sales.orders",
		`WITH r AS (DELETE FROM "orders" WHERE "id" = $1 RETURNING 1) SELECT 1/count(*) FROM r`: "delete orders",
		`SELECT "a", "b" FROM "order_items" WHERE "order_id" = $1`:                              "select order_items",
		`SELECT 1`: " ",
		`COMMIT`:   " ",
	} {
		op, table := (&stmt{sql: q}).target()
		assert.Equal(t, want, op+" "+table, q)
	}
	var s *stmt
	op, table := s.target()
	assert.Empty(t, op+table)

	for q, want := range map[string]string{
		`INSERT INTO "t" ("a", "b", "c") VALUES ($1, $2, $3), ($4, $5, $6)`:                       "b",
		`UPDATE "t" SET "a" = $1, "b" = $10 WHERE "k" = $2`:                                       "a",
		`WITH r AS (UPDATE "t" SET "z" = $2 WHERE "k" = $1 RETURNING 1) SELECT 1/count(*) FROM r`: "z",
	} {
		i := 4
		if !strings.HasPrefix(q, "INSERT") {
			i = 1
		}
		if strings.HasPrefix(q, "UPDATE") {
			i = 0
		}
		assert.Equal(t, want, (&stmt{sql: q}).paramColumn(i), q)
	}
	assert.NotErrorIs(t, classify(nil, errors.New("x")), repository.ErrInvalidValue)
}
