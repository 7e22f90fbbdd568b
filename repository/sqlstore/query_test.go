package sqlstore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seedMany inserts orders 1..n: odd ones alice's, even ones bob's, order i
// with i%3+1 items of quantity i, so that totals differ.
func seedMany(t *testing.T, b *backend, n int) {
	t.Helper()
	repo := b.repo(t)
	for i := 1; i <= n; i++ {
		cust := "alice"
		if i%2 == 0 {
			cust = "bob"
		}
		var items []*item
		for j := 1; j <= i%3+1; j++ {
			items = append(items, &item{id: itemID(j), sku: string(rune('A' + j)), quantity: i})
		}
		require.NoError(t, repo.Save(context.Background(), newOrder(orderID(i), cust, items...)))
	}
	b.log.take()
}

func ids(os []*order) []orderID {
	out := make([]orderID, len(os))
	for i, o := range os {
		out[i] = o.id
	}
	return out
}

func TestFindAll(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seedMany(t, b, 12)
		repo := b.repo(t)

		got, err := repo.FindAll(ctx, Where(Eq("customer", "alice")).OrderByDesc("total_amount").Limit(3))
		require.NoError(t, err)
		assert.Equal(t, []orderID{11, 5, 7}, ids(got), "alice's three largest totals: 3300, 1500, 1400")
		for _, o := range got {
			assert.Equal(t, stored(o), b.load(t, o.id), "children loaded with their root")
			assert.Len(t, o.items, int(o.id)%3+1)
		}
		stmts := b.log.take()
		if b.pgx {
			assert.Equal(t, 1, trips(stmts), "roots and children in one round trip")
		}
		assert.Equal(t, 2, len(dml(stmts)), "one statement per table")

		// Tracked: a change of one is saved as a change, not an insert.
		got[0].setQuantity(1, 50)
		require.NoError(t, repo.Save(ctx, got[0]))
		assert.Equal(t, []string{
			`UPDATE "orders" SET "total_amount" = ?, "version" = ? WHERE "id" = ? AND "version" = ?`,
			`UPDATE "order_items" SET "quantity" = ? WHERE "order_id" = ? AND "id" = ?`,
		}, stripCheck(dml(b.log.take())))

		n, err := repo.Count(ctx, Where(Eq("customer", "bob")).Limit(1))
		require.NoError(t, err)
		assert.Equal(t, int64(6), n, "a count ignores the page")
		ok, err := repo.Exists(ctx, Where(Eq("customer", "carol")))
		require.NoError(t, err)
		assert.False(t, ok)
		ok, err = repo.Exists(ctx, Where(Gt("total_amount", 1000)))
		require.NoError(t, err)
		assert.True(t, ok)

		got, err = repo.FindAll(ctx, Where(In("id")))
		require.NoError(t, err)
		assert.Empty(t, got, "In with no values matches nothing")

		got, err = repo.FindAll(ctx, Where(RawWhere("customer = ? AND total_amount >= ?", "bob", 1000)).OrderBy("id"))
		require.NoError(t, err)
		assert.Equal(t, []orderID{8, 10, 12}, ids(got), "bob's totals of 1000 or more")

		got, err = repo.FindAll(ctx, Where(Eq("customer", "'); DROP TABLE orders; --")))
		require.NoError(t, err)
		assert.Empty(t, got, "a value is a parameter, never SQL")
		assert.True(t, b.exists(t, 1))
	})
}

func TestFindAllPaging(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seedMany(t, b, 11)
		repo := b.repo(t)
		q := Where(Ne("customer", "carol")).OrderBy("customer").Limit(4)

		var byOffset []orderID
		for off := 0; ; off += 4 {
			page, err := repo.FindAll(ctx, q.Offset(off))
			require.NoError(t, err)
			byOffset = append(byOffset, ids(page)...)
			if len(page) < 4 {
				break
			}
		}
		want := []orderID{1, 3, 5, 7, 9, 11, 2, 4, 6, 8, 10}
		assert.Equal(t, want, byOffset, "by customer, then by key")

		var byKey []orderID
		next := q
		for range 10 {
			page, err := repo.FindAll(ctx, next)
			require.NoError(t, err)
			byKey = append(byKey, ids(page)...)
			if len(page) < 4 {
				break
			}
			last := page[len(page)-1]
			next = q.After(last.customer, last.id)
		}
		assert.Equal(t, want, byKey, "keyset pages see every aggregate once")

		desc, err := repo.FindAll(ctx, Query{}.OrderByDesc("id").After(orderID(4)))
		require.NoError(t, err)
		assert.Equal(t, []orderID{3, 2, 1}, ids(desc))
	})
}

func TestFindByIDs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seedMany(t, b, 5)
		repo := b.repo(t)
		got, err := repo.FindByIDs(ctx, []orderID{4, 99, 2, 4})
		require.NoError(t, err)
		assert.Equal(t, []orderID{4, 2}, ids(got), "in the order asked, missing left out, once each")
		got, err = repo.FindByIDs(ctx, nil)
		require.NoError(t, err)
		assert.Empty(t, got)
	})
}

// TestFindAllIdentityMap: in a unit of work, an aggregate already loaded is
// returned as that instance, with its unsaved changes, not overwritten by
// the row just read.
func TestFindAllIdentityMap(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		seedMany(t, b, 3)
		repo := b.repo(t)
		err := b.db.InTx(context.Background(), func(ctx context.Context) error {
			one, err := repo.Find(ctx, 1)
			require.NoError(t, err)
			one.setQuantity(1, 77)
			all, err := b.repo(t).FindAll(ctx, Query{})
			require.NoError(t, err)
			require.Len(t, all, 3)
			assert.Same(t, one, all[0])
			assert.Equal(t, 77, all[0].item(1).quantity)
			again, err := b.repo(t).FindByIDs(ctx, []orderID{2})
			require.NoError(t, err)
			assert.Same(t, all[1], again[0])
			return b.repo(t).Save(ctx, all[0])
		})
		require.NoError(t, err)
		assert.Equal(t, 77, b.load(t, 1).item(1).quantity)
	})
}

func TestQueryErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := b.repo(t)
		for _, tt := range []struct {
			name string
			q    Query
		}{
			{"an unknown column", Where(Eq("nope", 1))},
			{"a column name that is SQL", Where(Eq(`id" = 1 OR "1`, 1))},
			{"ordering by an unknown column", Query{}.OrderBy("nope")},
			{"placeholders and arguments disagree", Where(RawWhere("id = ? AND id = ?", 1))},
			{"a keyset of the wrong length", Query{}.OrderBy("customer").After(1)},
			{"a keyset over mixed directions", Query{}.OrderBy("customer").OrderByDesc("id").After("a", 1)},
			{"a negative limit", Query{}.Limit(-1)},
			{"an empty condition", Where(Cond{})},
		} {
			_, err := repo.FindAll(ctx, tt.q)
			assert.ErrorIs(t, err, ErrQuery, tt.name)
		}
		_, err := repo.Count(ctx, Where(Eq("nope", 1)))
		assert.ErrorIs(t, err, ErrQuery)
		assert.Empty(t, dml(b.log.take()), "nothing sent")
	})
}

// stripCheck removes the pgx conflict-check wrapper of a root statement so
// that backends compare equal.
func stripCheck(stmts []string) []string {
	out := make([]string, len(stmts))
	for i, s := range stmts {
		const pre, post = "WITH r AS (", " RETURNING 1) SELECT 1/count(*) FROM r"
		if len(s) > len(pre)+len(post) && s[:len(pre)] == pre && s[len(s)-len(post):] == post {
			s = s[len(pre) : len(s)-len(post)]
		}
		out[i] = s
	}
	return out
}

// TestInValues: a value that does not fit the column's type is an error,
// not a narrowed number that matches other rows.
func TestInValues(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		seedMany(t, b, 3)
		repo := b.repo(t)
		ctx := context.Background()
		got, err := repo.FindAll(ctx, Where(In("id", int8(1), uint16(3))))
		require.NoError(t, err)
		assert.Equal(t, []orderID{1, 3}, ids(got), "integers of other sizes are converted")
		if b.pgx {
			_, err = repo.FindAll(ctx, Where(In("version", uint64(1)<<63)))
			assert.ErrorIs(t, err, ErrQuery, "a value that does not fit is refused")
		}
	})
}

// TestFindAllInTxByKeys: inside a PostgreSQL transaction, whose statements
// each see the database as of their own start, the children are selected
// by the keys of the roots read, so that a root committed meanwhile cannot
// shift the page and leave a root without its children.
func TestFindAllInTxByKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		seedMany(t, b, 6)
		repo := b.repo(t)
		err := b.db.InTx(context.Background(), func(ctx context.Context) error {
			got, err := repo.FindAll(ctx, Where(Eq("customer", "alice")).Limit(2))
			require.NoError(t, err)
			require.Equal(t, []orderID{1, 3}, ids(got))
			for _, o := range got {
				assert.Len(t, o.items, int(o.id)%3+1)
			}
			return nil
		})
		require.NoError(t, err)
		stmts := dml(b.log.take())
		require.Len(t, stmts, 2)
		switch {
		case b.postgres():
			assert.Contains(t, stmts[1], `WHERE "order_id" = ANY(`+"?"+`)`, "by the keys read")
		case b.mysql():
			assert.Contains(t, stmts[1], `WHERE "order_id" IN (?, ?)`, "by the keys read: MariaDB refuses a LIMIT in an IN subquery")
		default:
			assert.Contains(t, stmts[1], `IN (SELECT "id" FROM "orders"`, "one snapshot: by the same selection")
		}
	})
}

// TestInParamLimit: an In list is limited by the parameters of its whole
// statement, as the key lists of loads are: a list that fits runs, however
// long, and lists that together do not fit fail with ErrQuery before
// anything is sent.
func TestInParamLimit(t *testing.T) {
	small := *sqlite
	small.maxParams = 8
	tb := &orderMapping(t).root
	where := func(conds ...Cond) error {
		cq, err := tb.compile(Where(conds...))
		require.NoError(t, err)
		return cq.where(&builder{d: &small})
	}
	vals := func(n int) []any {
		var out []any
		for i := range n {
			out = append(out, int64(i))
		}
		return out
	}
	assert.NoError(t, where(In("id", vals(6)...)), "6 values, LIMIT and OFFSET fit in 8")
	assert.ErrorIs(t, where(In("id", vals(7)...)), ErrQuery, "7 values leave no room for LIMIT and OFFSET")
	assert.ErrorIs(t, where(In("id", vals(4)...), In("version", vals(4)...)), ErrQuery, "two lists of 4 do not fit in 8")
	assert.ErrorIs(t, where(Eq("customer", "x"), In("id", vals(8)...)), ErrQuery)

	forEachBackend(t, func(t *testing.T, b *backend) {
		seedMany(t, b, 3)
		repo := b.repo(t)
		ctx := context.Background()
		ids := vals(b.db.dialect.maxParams/2 + 100)
		got, err := repo.FindAll(ctx, Where(In("id", ids...)).OrderBy("id"))
		require.NoError(t, err, "a list of more than half the limit")
		assert.Len(t, got, 3)
	})
}
