package sqlstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type orderRow struct {
	ID       int64  `db:"id"`
	Customer string `db:"customer"`
	Total    int64  `db:"total_amount"`
}

// TestSelect: a projection reads the columns of its row type, from a
// Query on the root table, on every backend, in one statement reported to
// the observer.
func TestSelect(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seedMany(t, b, 5)
		m := orderMapping(t)
		b.log.take()
		rows, err := Select[orderRow](ctx, b.db, m, Where(Gt("id", 1)).OrderByDesc("id").Limit(2))
		require.NoError(t, err)
		require.Len(t, rows, 2)
		assert.Equal(t, int64(5), rows[0].ID)
		assert.Equal(t, int64(4), rows[1].ID)
		assert.NotEmpty(t, rows[0].Customer)
		log := b.log.take()
		require.Len(t, log, 1)
		assert.True(t, strings.HasPrefix(canonical(log[0].SQL), `SELECT "id", "customer", "total_amount" FROM "orders" WHERE`), log[0].SQL)

		// Conditions on children and combinations apply as for aggregates.
		rows, err = Select[orderRow](ctx, b.db, m, Where(Or(Eq("id", 2), Has("items", Eq("quantity", 4)))).OrderBy("id"))
		require.NoError(t, err)
		require.Len(t, rows, 2)
		assert.Equal(t, []int64{2, 4}, []int64{rows[0].ID, rows[1].ID})
		b.log.take()

		// An unknown column is named, and nothing is sent.
		type bad struct {
			ID    int64  `db:"id"`
			Owner string `db:"owner"`
		}
		_, err = Select[bad](ctx, b.db, m, Query{})
		require.ErrorIs(t, err, ErrQuery)
		assert.ErrorContains(t, err, `"owner"`)
		_, err = Select[orderRow](ctx, b.db, m, Where(Eq("nope", 1)))
		require.ErrorIs(t, err, ErrQuery)
		_, err = Select[int](ctx, b.db, m, Query{})
		require.ErrorIs(t, err, ErrQuery)
		assert.Empty(t, b.log.take(), "nothing sent")
	})
}

// TestSelectPage: the page and the total of its conditions, in one round
// trip on pgx.
func TestSelectPage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seedMany(t, b, 7)
		m := orderMapping(t)
		b.log.take()
		rows, total, err := SelectPage[orderRow](ctx, b.db, m, Where(Ge("id", 2)).OrderBy("id").Limit(2).Offset(2))
		require.NoError(t, err)
		assert.Equal(t, int64(6), total)
		require.Len(t, rows, 2)
		assert.Equal(t, []int64{4, 5}, []int64{rows[0].ID, rows[1].ID})
		if b.pgx {
			assert.Equal(t, 1, trips(b.log.take()), "one round trip")
		}

		// Past the end: no rows, and the total still.
		rows, total, err = SelectPage[orderRow](ctx, b.db, m, Query{}.OrderBy("id").After(int64(7)).Limit(3))
		require.NoError(t, err)
		assert.Empty(t, rows)
		assert.Equal(t, int64(7), total)
	})
}

// TestSelectSQL: a projection of SQL of your own, with ? placeholders,
// joins and aggregates; a field without a column, or a column without a
// field, fails with ErrQuery on every backend.
func TestSelectSQL(t *testing.T) {
	type customerRow struct {
		Name   string `db:"name"`
		Orders int64  `db:"orders"`
		Items  int64  `db:"items"`
	}
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		rows, err := SelectSQL[customerRow](ctx, b.db, `
			SELECT c.name AS name,
				(SELECT count(*) FROM orders o WHERE o.customer = c.name) AS orders,
				(SELECT count(*) FROM order_items i JOIN orders o ON o.id = i.order_id WHERE o.customer = c.name) AS items
			FROM customers c WHERE c.name <> ? ORDER BY c.name`, "nobody")
		require.NoError(t, err)
		assert.Equal(t, []customerRow{{"alice", 1, 3}, {"bob", 0, 0}}, rows)

		_, err = SelectSQL[customerRow](ctx, b.db, `SELECT name, 1 AS orders FROM customers`)
		assert.ErrorIs(t, err, ErrQuery, "a field without a column")
		_, err = SelectSQL[customerRow](ctx, b.db, `SELECT name, 1 AS orders, 2 AS items, 3 AS more FROM customers`)
		assert.ErrorIs(t, err, ErrQuery, "a column without a field")
		_, err = SelectSQL[customerRow](ctx, b.db, `SELECT name FROM customers WHERE name = $1`, "bob")
		assert.ErrorIs(t, err, ErrQuery)
	})
}

// TestSelectInUnitOfWork: a projection in a unit of work sees its
// uncommitted writes.
func TestSelectInUnitOfWork(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := b.repo(t)
		m := orderMapping(t)
		require.ErrorIs(t, b.db.InTx(ctx, func(ctx context.Context) error {
			require.NoError(t, repo.Save(ctx, newOrder(9, "bob", threeItems()...)))
			rows, total, err := SelectPage[orderRow](ctx, b.db, m, Where(Eq("customer", "bob")))
			require.NoError(t, err)
			assert.Equal(t, int64(1), total)
			assert.Equal(t, []orderRow{{ID: 9, Customer: "bob", Total: newOrder(9, "bob", threeItems()...).total.amount}}, rows)
			return errUndo
		}), errUndo)
		rows, err := Select[orderRow](ctx, b.db, m, Query{})
		require.NoError(t, err)
		assert.Empty(t, rows)
	})
}

// TestSelectTimesUTC: the times of projected rows are in UTC on every
// backend, as in loaded aggregates.
func TestSelectTimesUTC(t *testing.T) {
	type eventRow struct {
		At   time.Time  `db:"at"`
		Due  *time.Time `db:"due"`
		Name string     `db:"name"`
	}
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := timeSchema(t, b)
		at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.FixedZone("X", 3600))
		require.NoError(t, repo.Save(ctx, &tEvent{at: at, name: "a", due: &at}))
		m, err := NewMapping[*tEvent](Table{Name: "t_events", Key: "at"},
			Child{Field: "slots", Table: "t_slots", Key: "start", ParentKey: "event_at"})
		require.NoError(t, err)
		rows, err := Select[eventRow](ctx, b.db, m, Query{})
		require.NoError(t, err)
		require.Len(t, rows, 1)
		assert.True(t, rows[0].At.Equal(at))
		assert.Equal(t, time.UTC, rows[0].At.Location())
		assert.Equal(t, time.UTC, rows[0].Due.Location())
		rows, err = SelectSQL[eventRow](ctx, b.db, "SELECT at, due, name FROM t_events WHERE at >= ?", at)
		require.NoError(t, err)
		require.Len(t, rows, 1)
		assert.Equal(t, time.UTC, rows[0].At.Location())
	})
}

// TestSelectColumnsExact: a field reads the column of its db tag, else of
// its name in lower case, exactly and on every backend: no backend matches
// a column whose name differs in case or by underscores. The columns are
// checked even when the result has no rows.
func TestSelectColumnsExact(t *testing.T) {
	type untagged struct {
		CustomerName string
	}
	type upper struct {
		Name string `db:"CUSTOMER"`
	}
	type nameRow struct {
		Name   string `db:"name"`
		Orders int64  `db:"orders"`
	}
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		rows, err := SelectSQL[untagged](ctx, b.db, `SELECT name AS customername FROM customers WHERE name = ?`, "bob")
		require.NoError(t, err)
		assert.Equal(t, []untagged{{"bob"}}, rows)

		_, err = SelectSQL[untagged](ctx, b.db, `SELECT name AS customer_name FROM customers`)
		assert.ErrorIs(t, err, ErrQuery, "customer_name is not the column of CustomerName")
		assert.ErrorContains(t, err, `"customer_name"`)
		_, err = SelectSQL[upper](ctx, b.db, `SELECT customer FROM orders`)
		assert.ErrorIs(t, err, ErrQuery, `customer is not the column "CUSTOMER"`)

		// No rows: the columns of the result are checked all the same.
		_, err = SelectSQL[nameRow](ctx, b.db, `SELECT name FROM customers WHERE 1 = 0`)
		assert.ErrorIs(t, err, ErrQuery, "a field without a column, no rows")
		_, err = SelectSQL[nameRow](ctx, b.db, `SELECT name, 1 AS orders, 2 AS more FROM customers WHERE 1 = 0`)
		assert.ErrorIs(t, err, ErrQuery, "a column without a field, no rows")
		rows2, err := SelectSQL[nameRow](ctx, b.db, `SELECT name, 1 AS orders FROM customers WHERE 1 = 0`)
		require.NoError(t, err)
		assert.Empty(t, rows2)
	})
}
