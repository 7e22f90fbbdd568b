package sqlstore

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seedBulk stores n orders as seedMany makes them (order i: alice when i
// is odd, bob when even, with i%3+1 items of quantity i), in a few
// statements, and returns them as the database holds them.
func seedBulk(t *testing.T, b *backend, n int) []*order {
	t.Helper()
	var want []*order
	for i := 1; i <= n; i++ {
		cust := "alice"
		if i%2 == 0 {
			cust = "bob"
		}
		var items []*item
		for j := 1; j <= i%3+1; j++ {
			items = append(items, &item{id: itemID(j), sku: string(rune('A' + j)), quantity: i})
		}
		o := newOrder(orderID(i), cust, items...)
		o.version = 1
		want = append(want, stored(o))
	}
	for lo := 0; lo < n; lo += 500 {
		hi := min(lo+500, n)
		var roots, kids []string
		for _, o := range want[lo:hi] {
			roots = append(roots, fmt.Sprintf("(%d, '%s', %d, 'EUR', 1)", o.id, o.customer, o.total.amount))
			for _, it := range o.items {
				kids = append(kids, fmt.Sprintf("(%d, %d, '%s', %d)", o.id, it.id, it.sku, it.quantity))
			}
		}
		b.raw.exec(t, "INSERT INTO orders (id, customer, total_amount, total_currency, version) VALUES "+strings.Join(roots, ", "))
		b.raw.exec(t, "INSERT INTO order_items (order_id, id, sku, quantity) VALUES "+strings.Join(kids, ", "))
	}
	return want
}

// rootSelects counts the statements that read the roots.
func rootSelects(stmts []Statement) int {
	n := 0
	for _, s := range stmts {
		if strings.HasPrefix(canonical(s.SQL), `SELECT "id", "customer"`) {
			n++
		}
	}
	return n
}

// TestFindEach: 1,050 aggregates streamed a page of 100 at a time are all
// yielded once, in order, children whole, untracked, one load per page.
func TestFindEach(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		want := seedBulk(t, b, 1050)
		repo := b.repo(t)
		b.log.take()

		var got []*order
		for o, err := range repo.FindEach(ctx, Query{}, PageSize(100)) {
			require.NoError(t, err)
			assert.False(t, repo.Tracker().Tracked(ctx, o), "not tracked by default")
			got = append(got, o)
		}
		require.Len(t, got, 1050)
		for i := range want {
			require.Equal(t, want[i], stored(got[i]), "aggregate %d whole, in key order", i+1)
		}
		assert.Equal(t, 11, rootSelects(b.log.take()), "ten full pages and one of 50")

		// Descending by a column and then by the key.
		sorted := append([]*order(nil), want...)
		sort.SliceStable(sorted, func(i, j int) bool {
			if sorted[i].customer != sorted[j].customer {
				return sorted[i].customer > sorted[j].customer
			}
			return sorted[i].id > sorted[j].id
		})
		got = got[:0]
		for o, err := range repo.FindEach(ctx, Query{}.OrderByDesc("customer"), PageSize(100)) {
			require.NoError(t, err)
			got = append(got, o)
		}
		assert.Equal(t, ids(sorted), ids(got))

		// The default page size.
		b.log.take()
		n := 0
		for _, err := range repo.FindEach(ctx, Query{}) {
			require.NoError(t, err)
			n++
		}
		assert.Equal(t, 1050, n)
		assert.Equal(t, 3, rootSelects(b.log.take()), "pages of 500")
	})
}

// TestFindEachBreak: breaking out of the loop reads no further page and
// leaves nothing open: a write that follows in a transaction of its own
// runs, on every backend.
func TestFindEachBreak(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seedBulk(t, b, 1050)
		repo := b.repo(t)
		b.log.take()
		var got []orderID
		for o, err := range repo.FindEach(ctx, Query{}, PageSize(100)) {
			require.NoError(t, err)
			got = append(got, o.id)
			if len(got) == 150 {
				break
			}
		}
		assert.Len(t, got, 150)
		assert.Equal(t, orderID(150), got[149])
		assert.Equal(t, 2, rootSelects(b.log.take()), "two pages read")

		assert.Zero(t, inUse(b), "no connection held after the break")

		// Many more loops broken early hold no connection between them.
		for range 20 {
			for _, err := range repo.FindEach(ctx, Query{}, PageSize(10)) {
				require.NoError(t, err)
				assert.Zero(t, inUse(b), "no connection held while the loop body runs")
				break
			}
		}
		assert.Zero(t, inUse(b))
		require.NoError(t, repo.Update(ctx, 7, func(_ context.Context, o *order) error {
			o.customer = "bob"
			return nil
		}))
		assert.Equal(t, "bob", b.load(t, 7).customer)
	})
}

// inUse is the number of connections of b's pool in use.
func inUse(b *backend) int {
	switch r := b.raw.(type) {
	case sqlRaw:
		return r.x.Stats().InUse
	case pgxRaw:
		return int(r.p.Stat().AcquiredConns())
	}
	return 0
}

// TestFindEachCancel: the iteration stops with ctx.Err() when ctx is done,
// before a page or between pages.
func TestFindEachCancel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		seedBulk(t, b, 1050)
		repo := b.repo(t)

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		n := 0
		for o, err := range repo.FindEach(ctx, Query{}, PageSize(100)) {
			require.ErrorIs(t, err, context.Canceled)
			assert.Nil(t, o)
			n++
		}
		assert.Equal(t, 1, n, "one error, then the end")

		ctx, cancel = context.WithCancel(context.Background())
		defer cancel()
		var errs []error
		yielded := 0
		for _, err := range repo.FindEach(ctx, Query{}, PageSize(100)) {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			yielded++
			if yielded == 120 {
				cancel()
			}
		}
		assert.Equal(t, 200, yielded, "the page in hand is yielded to its end")
		require.Len(t, errs, 1)
		assert.ErrorIs(t, errs[0], context.Canceled)
	})
}

// TestFindEachTracked: with Tracked, each aggregate is tracked as it is
// yielded, an aggregate already loaded in the unit of work is yielded as
// that instance, and one never reached is not tracked.
func TestFindEachTracked(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		seedBulk(t, b, 30)
		repo := b.repo(t)
		require.NoError(t, b.db.InTx(context.Background(), func(ctx context.Context) error {
			first, err := repo.Find(ctx, 2)
			require.NoError(t, err)
			var got []*order
			for o, err := range repo.FindEach(ctx, Query{}, PageSize(10), Tracked()) {
				require.NoError(t, err)
				assert.True(t, repo.Tracker().Tracked(ctx, o), "tracked when yielded")
				got = append(got, o)
				if len(got) == 5 {
					break
				}
			}
			assert.Same(t, first, got[1], "the instance of the unit of work")

			// The sixth was read with the page but never yielded: not
			// remembered, so Find loads it.
			b.log.take()
			sixth, err := repo.Find(ctx, 6)
			require.NoError(t, err)
			assert.Equal(t, 1, rootSelects(b.log.take()), "loaded, not remembered")
			assert.True(t, repo.Tracker().Tracked(ctx, sixth))

			// A tracked one saves as a change.
			got[0].customer = "bob"
			b.log.take()
			require.NoError(t, repo.Save(ctx, got[0]))
			for _, s := range dml(b.log.take()) {
				assert.False(t, strings.HasPrefix(s, "INSERT"), s)
			}
			return nil
		}))
		assert.Equal(t, "bob", b.load(t, 1).customer)
	})
}

// TestFindEachWhere: conditions, Or and Has select as for FindAll; Limit
// caps the number yielded and Offset skips on the first page; a mixed
// order, a NULL-free check and a bad page size are refused.
func TestFindEachWhere(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		want := seedBulk(t, b, 1050)
		repo := b.repo(t)

		q := Where(Or(Eq("customer", "bob"), Has("items", Eq("sku", "D"))), Gt("id", 10)).OrderBy("total_amount")
		all, err := repo.FindAll(ctx, q)
		require.NoError(t, err)
		var expect []orderID
		for _, o := range want {
			if o.id > 10 && (o.id%2 == 0 || o.id%3 == 2) {
				expect = append(expect, o.id)
			}
		}
		assert.ElementsMatch(t, expect, ids(all))
		var got []*order
		for o, err := range repo.FindEach(ctx, q, PageSize(100)) {
			require.NoError(t, err)
			got = append(got, o)
		}
		assert.Equal(t, ids(all), ids(got), "same aggregates, same order")
		for i := range got {
			assert.Equal(t, stored(all[i]), stored(got[i]))
		}

		got = got[:0]
		for o, err := range repo.FindEach(ctx, q.Offset(5).Limit(250), PageSize(100)) {
			require.NoError(t, err)
			got = append(got, o)
		}
		assert.Equal(t, ids(all[5:255]), ids(got))

		refused := func(q Query, opts ...EachOption) {
			t.Helper()
			b.log.take()
			n := 0
			for o, err := range repo.FindEach(ctx, q, opts...) {
				require.ErrorIs(t, err, ErrQuery)
				assert.Nil(t, o)
				n++
			}
			assert.Equal(t, 1, n)
			assert.Empty(t, b.log.take(), "nothing sent")
		}
		refused(Query{}.OrderBy("customer").OrderByDesc("total_amount"))
		refused(Query{}, PageSize(0))
		refused(Where(Eq("nope", 1)))
	})
}
