package sqlstore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRebind(t *testing.T) {
	cases := []struct {
		in, pg, lite string
		n            int
	}{
		{"SELECT 1", "SELECT 1", "SELECT 1", 0},
		{"a = ? AND b = ?", "a = $1 AND b = $2", "a = ? AND b = ?", 2},
		{"a = '?' AND b = ?", "a = '?' AND b = $1", "a = '?' AND b = ?", 1},
		{`"odd?" = ? -- what?` + "\n AND c = ?", `"odd?" = $1 -- what?` + "\n AND c = $2", `"odd?" = ? -- what?` + "\n AND c = ?", 2},
		{"/* ? /* ? */ */ x = ?", "/* ? /* ? */ */ x = $1", "/* ? /* ? */ */ x = ?", 1},
		{"data ?? 'k' AND x = ?", "data ? 'k' AND x = $1", "data ? 'k' AND x = ?", 1},
		{"x = 'it''s ?' AND y = ?", "x = 'it''s ?' AND y = $1", "x = 'it''s ?' AND y = ?", 1},
		{`x = E'\'?' AND y = ?`, `x = E'\'?' AND y = $1`, `x = E'\'?' AND y = ?`, 1},
		{"x = $$ $1 ? $$ AND y = ?", "x = $$ $1 ? $$ AND y = $1", "x = $$ $1 ? $$ AND y = ?", 1},
		{"x = $t$ ? $t$ AND y = ?::int", "x = $t$ ? $t$ AND y = $1::int", "x = $t$ ? $t$ AND y = ?::int", 1},
	}
	for _, c := range cases {
		got, err := postgres.rebind(c.in, c.n)
		require.NoError(t, err, c.in)
		assert.Equal(t, c.pg, got, c.in)
		got, err = sqlite.rebind(c.in, c.n)
		require.NoError(t, err, c.in)
		assert.Equal(t, c.lite, got, c.in)
	}
	for _, bad := range []struct {
		in string
		n  int
	}{
		{"a = $1", 1},
		{"a = ?1", 1},
		{"a = ? AND b = ?", 1},
		{"a = ?", 2},
		{"a = '?'", 1},
	} {
		_, err := postgres.rebind(bad.in, bad.n)
		assert.ErrorIs(t, err, ErrQuery, bad.in)
		_, err = sqlite.rebind(bad.in, bad.n)
		assert.ErrorIs(t, err, ErrQuery, bad.in)
	}
}

// TestRebindMySQL: SQL of the caller's is read as MySQL and its driver
// read it, so that the placeholders sqlstore counts are the ones the
// driver formats the arguments into.
func TestRebindMySQL(t *testing.T) {
	for _, c := range []struct {
		in, why string
		n       int
	}{
		{`x = 'it\'s ?' AND y = ?`, "a backslash escapes the quote in a literal", 1},
		{`x = "say \"?\"" AND y = ?`, "and in a double-quoted literal", 1},
		{"`odd?` = ? AND y = ?", "a name in backticks", 2},
		{"x = ? # what?\n AND y = ?", "# starts a comment", 2},
		{"x = 1 --1 AND y = ?", "-- before no space is two minuses", 1},
		{"x = ? -- what?\n AND y = ?", "-- before a space is a comment", 2},
		{"/* ? /* ? */ x = ?", "comments do not nest", 1},
		{"x = $1 AND y = ?", "a dollar sign is nothing special", 1},
	} {
		got, err := mysqlDialect.rebind(c.in, c.n)
		require.NoError(t, err, c.why)
		assert.Equal(t, c.in, got, c.why)
	}
	_, err := mysqlDialect.rebind("data ?? 'k' AND x = ?", 1)
	assert.ErrorIs(t, err, ErrQuery, "?? would reach the driver as a placeholder")
}

// TestOwnSQLPlaceholders: Exec, Query, QueryRow and SelectSQL take ? on
// every backend, and refuse the database's numbered placeholders and a
// count of arguments that differs from the placeholders' with ErrQuery,
// sending nothing.
func TestOwnSQLPlaceholders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		n, err := b.db.Exec(ctx, "INSERT INTO customers (name) VALUES (?), ('what?')", "carol")
		require.NoError(t, err)
		assert.Equal(t, int64(2), n)
		var name string
		require.NoError(t, b.db.QueryRow(ctx, "SELECT name FROM customers WHERE name = ? OR name = ?", "carol", "nobody").Scan(&name))
		assert.Equal(t, "carol", name)
		var names []string
		require.NoError(t, b.db.Query(ctx, "SELECT name FROM customers WHERE name <> ? ORDER BY name", "bob").Each(func(scan func(...any) error) error {
			var s string
			names = append(names, s)
			return scan(&names[len(names)-1])
		}))
		assert.Equal(t, []string{"alice", "carol", "what?"}, names)

		b.log.take()
		_, err = b.db.Exec(ctx, "DELETE FROM customers WHERE name = $1", "carol")
		assert.ErrorIs(t, err, ErrQuery)
		assert.ErrorContains(t, err, "$1")
		err = b.db.QueryRow(ctx, "SELECT name FROM customers WHERE name = $1", "carol").Scan(&name)
		assert.ErrorIs(t, err, ErrQuery)
		err = b.db.Query(ctx, "SELECT name FROM customers WHERE name = ?").Each(func(func(...any) error) error { return nil })
		assert.ErrorIs(t, err, ErrQuery)
		_, err = b.db.Exec(ctx, "DELETE FROM customers WHERE name = ?", "carol", "bob")
		assert.ErrorIs(t, err, ErrQuery)
		assert.Empty(t, b.log.take(), "nothing sent")
		assert.Equal(t, int64(4), b.raw.count(t, "SELECT count(*) FROM customers"))
	})
}

// TestRawWhereLiteralQuestionMark: a ? inside a string literal of a
// RawWhere fragment is not a placeholder, on every backend, and a
// numbered placeholder is refused with ErrQuery.
func TestRawWhereLiteralQuestionMark(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		got, err := repo.FindAll(ctx, Where(RawWhere("customer <> 'who?' AND customer = ?", "alice")))
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Equal(t, orderID(1), got[0].id)
		_, err = repo.FindAll(ctx, Where(RawWhere("customer = $1", "alice")))
		assert.ErrorIs(t, err, ErrQuery)
	})
}
