package sqlstore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// findIDs runs q through FindAll, Count and Exists, checks that they
// agree, and returns the keys found, in key order.
func findIDs(t *testing.T, repo *Repository[*order, orderID], q Query) []orderID {
	t.Helper()
	ctx := context.Background()
	got, err := repo.FindAll(ctx, q.OrderBy("id"))
	require.NoError(t, err)
	n, err := repo.Count(ctx, q)
	require.NoError(t, err)
	assert.EqualValues(t, len(got), n, "Count agrees with FindAll")
	ok, err := repo.Exists(ctx, q)
	require.NoError(t, err)
	assert.Equal(t, len(got) > 0, ok, "Exists agrees with FindAll")
	for _, o := range got {
		assert.Len(t, o.items, int(o.id)%3+1, "every aggregate comes with all its children")
	}
	return ids(got)
}

// TestCondCombinators: And, Or and Not combine conditions, nest, and Not
// selects exactly the rows its condition does not, those where the
// condition is NULL included.
func TestCondCombinators(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		seedMany(t, b, 12) // totals: i * 100 * (i%3+1)
		repo := b.repo(t)
		for _, tt := range []struct {
			name string
			q    Query
			want []orderID
		}{
			{"Or", Where(Or(Eq("id", 2), Eq("id", 5), Gt("id", 11))), []orderID{2, 5, 12}},
			{"Or of And", Where(Or(And(Eq("customer", "alice"), Lt("id", 4)), And(Eq("customer", "bob"), Gt("id", 9)))), []orderID{1, 3, 10, 12}},
			{"And of Or, with a root condition", Where(Lt("id", 7), And(Or(Eq("id", 1), Eq("id", 6)), Or(Eq("customer", "bob"), In("id", 1)))), []orderID{1, 6}},
			{"Not", Where(Not(Eq("customer", "alice")), Le("id", 6)), []orderID{2, 4, 6}},
			{"Not of Or", Where(Not(Or(Lt("id", 10), Eq("id", 11)))), []orderID{10, 12}},
			{"Not of Not", Where(Not(Not(In("id", 3, 4)))), []orderID{3, 4}},
			{"a raw fragment in Or", Where(Or(RawWhere("id = ?", 7), Eq("id", 8))), []orderID{7, 8}},
			{"And of nothing", Where(And(), Lt("id", 3)), []orderID{1, 2}},
			{"Or of nothing", Where(Or()), []orderID{}},
			{"Not of Or of nothing", Where(Not(Or()), Lt("id", 3)), []orderID{1, 2}},
			// NULL for order 1, id > 5 for the others: NOT of NULL is NULL,
			// which selects nothing, but Not selects what the condition
			// does not, order 1 included.
			{"NULL", Where(RawWhere("CASE WHEN id = ? THEN NULL ELSE id > ? END", 1, 5)), []orderID{6, 7, 8, 9, 10, 11, 12}},
			{"Not of NULL", Where(Not(RawWhere("CASE WHEN id = ? THEN NULL ELSE id > ? END", 1, 5))), []orderID{1, 2, 3, 4, 5}},
		} {
			assert.Equal(t, tt.want, findIDs(t, repo, tt.q), tt.name)
		}

		// Keyset paging over a combined condition.
		got, err := repo.FindAll(context.Background(), Where(Or(Eq("customer", "bob"), Eq("id", 3))).OrderBy("id").After(orderID(4)).Limit(3))
		require.NoError(t, err)
		assert.Equal(t, []orderID{6, 8, 10}, ids(got))
	})
}

// TestCondHas: conditions on the children of the root, alone or combined
// with root conditions, loaded with all their children, counted, and
// checked against the child's mapping.
func TestCondHas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		// Order i has items 1..i%3+1 with skus B, C, D and quantity i.
		seedMany(t, b, 12)
		repo := b.repo(t)
		for _, tt := range []struct {
			name string
			q    Query
			want []orderID
		}{
			{"an item with sku D", Where(Has("items", Eq("sku", "D"))), []orderID{2, 5, 8, 11}},
			{"several conditions on one item", Where(Has("items", Eq("sku", "C"), Gt("quantity", 7))), []orderID{8, 10, 11}},
			{"two items, each with its condition", Where(Has("items", Eq("sku", "C")), Has("items", Eq("sku", "D")), Lt("id", 9)), []orderID{2, 5, 8}},
			{"any item", Where(Has("items"), Le("id", 2)), []orderID{1, 2}},
			{"no item", Where(Not(Has("items"))), []orderID{}},
			{"every item has sku B", Where(Not(Has("items", Ne("sku", "B")))), []orderID{3, 6, 9, 12}},
			{"with a root condition in Or", Where(Or(Eq("customer", "bob"), Has("items", Eq("sku", "D")))), []orderID{2, 4, 5, 6, 8, 10, 11, 12}},
			{"Or inside Has", Where(Has("items", Or(Eq("quantity", 1), Eq("quantity", 12)))), []orderID{1, 12}},
			{"In and a text match inside Has", Where(Has("items", In("quantity", 2, 3, int8(4)), HasPrefix("sku", "D"))), []orderID{2}},
			{"a raw fragment inside Has, on the child's columns", Where(Has("items", RawWhere("quantity * 2 = ?", 6))), []orderID{3}},
		} {
			assert.Equal(t, tt.want, findIDs(t, repo, tt.q), tt.name)
		}

		// Inside a transaction, where PostgreSQL reads the children by
		// the keys of the roots read.
		require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error {
			got, err := repo.FindAll(ctx, Where(Has("items", Eq("sku", "D"))).OrderByDesc("id").Limit(2))
			require.NoError(t, err)
			assert.Equal(t, []orderID{11, 8}, ids(got))
			for _, o := range got {
				assert.Equal(t, stored(o), b.load(t, o.id))
			}
			return nil
		}))

		b.log.take()
		for _, tt := range []struct {
			name string
			q    Query
		}{
			{"an unknown collection", Where(Has("lines"))},
			{"a table name for the collection", Where(Has("order_items"))},
			{"an unknown column of the child", Where(Has("items", Eq("nope", 1)))},
			{"a root column inside Has", Where(Has("items", Eq("customer", "alice")))},
			{"a child column outside Has", Where(Eq("sku", "B"))},
			{"a value the child's column cannot hold", Where(Has("items", Eq("quantity", "x")))},
			{"a nil inside Has", Where(Has("items", Eq("sku", nil)))},
			{"an empty Cond inside Or", Where(Or(Eq("id", 1), Cond{}))},
			{"an empty Cond inside Not", Where(Not(Cond{}))},
			{"a bad raw fragment inside And", Where(And(RawWhere("id = ?")))},
			{"a nested collection the items do not have", Where(Has("items", Has("options")))},
		} {
			_, err := repo.FindAll(ctx, tt.q)
			assert.ErrorIs(t, err, ErrQuery, tt.name)
			_, err = repo.Count(ctx, tt.q)
			assert.ErrorIs(t, err, ErrQuery, tt.name)
		}
		assert.Empty(t, dml(b.log.take()), "nothing sent")
	})
}

// TestCondHasNested: Has at every depth, in the layout keyed by every
// level's parent key, where the keys of lines repeat across invoices, so
// that a tax must be matched through its invoice as well as its line.
func TestCondHasNested(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		for _, s := range invoiceDDL {
			b.raw.exec(t, s)
		}
		repo, err := NewRepository[*invoice, int64](b.db, invoiceMapping(t))
		require.NoError(t, err)
		require.NoError(t, repo.Save(ctx, newInvoice(1))) // line 1 tea: VAT 20, ECO 1; line 2 milk: VAT 5; line 3 cups
		second := &invoice{id: 2, customer: "bob", lines: []*invLine{
			{id: 1, product: "coffee", taxes: map[string]invTax{}},
			{id: 2, product: "tea", taxes: map[string]invTax{"VAT": {code: "VAT", rate: 7}}},
		}}
		require.NoError(t, repo.Save(ctx, second))
		find := func(q Query) []int64 {
			t.Helper()
			got, err := repo.FindAll(ctx, q.OrderBy("id"))
			require.NoError(t, err)
			n, err := repo.Count(ctx, q)
			require.NoError(t, err)
			assert.EqualValues(t, len(got), n)
			out := []int64{}
			for _, inv := range got {
				out = append(out, inv.id)
			}
			return out
		}
		assert.Equal(t, []int64{1}, find(Where(Has("lines", Has("taxes", Eq("code", "ECO"))))), "line 1's ECO tax belongs to invoice 1 alone")
		assert.Equal(t, []int64{}, find(Where(Has("lines", Eq("product", "coffee"), Has("taxes")))), "invoice 2's coffee has no tax")
		assert.Equal(t, []int64{1, 2}, find(Where(Has("lines", Eq("product", "tea"), Has("taxes", Eq("code", "VAT"))))))
		assert.Equal(t, []int64{2}, find(Where(Has("lines", Has("taxes", Lt("rate", 10), Gt("rate", 5))))))
		assert.Equal(t, []int64{1}, find(Where(Has("lines", Not(Has("taxes")), Eq("id", 3)))), "a line without taxes")
		assert.Equal(t, []int64{2}, find(Where(Not(Has("lines", Has("taxes", Ge("rate", 10)))))))
		assert.Equal(t, []int64{1}, find(Where(Has("lines", Has("taxes", EqualFold("code", "eco"))))))

		_, err = repo.FindAll(ctx, Where(Has("lines", Has("taxes", Eq("product", "tea")))))
		assert.ErrorIs(t, err, ErrQuery, "a column of the line inside the taxes' Has")
		_, err = repo.FindAll(ctx, Where(Has("lines", Has("taxes", Eq("rate", "x")))))
		assert.ErrorIs(t, err, ErrQuery, "a value the tax's column cannot hold")
	})
}

// TestCondHasLayouts: Has three levels down, in the layouts where a level
// refers to its parent by the parent's key alone, by every level's parent
// key, and a mix of both.
func TestCondHasLayouts(t *testing.T) {
	for _, layout := range []string{"key-only", "full-path", "mixed"} {
		t.Run(layout, func(t *testing.T) {
			forEachBackendAndMySQLPath(t, func(t *testing.T, b *backend) {
				ctx := context.Background()
				m := kanbanSchema(t, b, layout)
				repo, err := NewRepository[*board, int64](b.db, m)
				require.NoError(t, err)
				one := &board{name: "one", columns: []*kcolumn{
					{title: "todo", cards: []*kcard{{title: "write", items: []kitem{{text: "tea"}, {text: "cake"}}}}},
					{title: "done", cards: []*kcard{{title: "read"}}},
				}}
				two := &board{name: "two", columns: []*kcolumn{
					{title: "todo", cards: []*kcard{{title: "tea", items: []kitem{{text: "coffee"}}}}},
				}}
				three := &board{name: "three", columns: []*kcolumn{{title: "empty"}}}
				for _, bd := range []*board{one, two, three} {
					require.NoError(t, repo.Save(ctx, bd))
				}
				find := func(q Query) []string {
					t.Helper()
					got, err := repo.FindAll(ctx, q.OrderBy("id"))
					require.NoError(t, err)
					n, err := repo.Count(ctx, q)
					require.NoError(t, err)
					assert.EqualValues(t, len(got), n)
					out := []string{}
					for _, bd := range got {
						out = append(out, bd.name)
					}
					return out
				}
				items := func(c ...Cond) Cond { return Has("columns", Has("cards", Has("items", c...))) }
				assert.Equal(t, []string{"one"}, find(Where(items(Eq("text", "tea")))))
				assert.Equal(t, []string{"two"}, find(Where(Has("columns", Has("cards", Eq("title", "tea"))))))
				assert.Equal(t, []string{"one", "two"}, find(Where(items())))
				assert.Equal(t, []string{"three"}, find(Where(Not(Has("columns", Has("cards"))))))
				assert.Equal(t, []string{"one"}, find(Where(Has("columns", Eq("title", "done"), Has("cards", Not(Has("items")))))))
				assert.Equal(t, []string{}, find(Where(Has("columns", Eq("title", "done"), Has("cards", Has("items"))))), "the cards with items are in another column")
				assert.Equal(t, []string{"one", "two"}, find(Where(Or(items(Contains("text", "ake")), Has("columns", Has("cards", HasPrefix("title", "te")))))))
			})
		})
	}
}

// TestLikeEscapeAndCase: Like runs the same on every database: a
// backslash escapes %, _ and itself, and the match is case-sensitive (on
// SQLite too, whose LIKE ignores the case of ASCII letters).
func TestLikeEscapeAndCase(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := textInvoices(t, b)
		for _, tt := range []struct {
			pattern string
			want    []int64
		}{
			{"50%", []int64{1, 2}},
			{`50\%`, []int64{1}},
			{`a\_b`, []int64{3}},
			{"a_b", []int64{3, 4, 11}},
			{`back\\slash`, []int64{5}},
			{"A%", []int64{6, 7}},
			{"%lic%", []int64{6, 8}},
			{"a*b", []int64{11}},
			{"a[b]", []int64{12}},
			{"%", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		} {
			got, err := repo.FindAll(ctx, Where(Like("customer", tt.pattern)).OrderBy("id"))
			require.NoError(t, err, tt.pattern)
			assert.Equal(t, tt.want, invoiceIDs(got), "Like(%q)", tt.pattern)
		}
	})
}

// textInvoices saves invoices whose customers hold the characters that
// patterns treat specially, in several cases.
func textInvoices(t *testing.T, b *backend) *Repository[*invoice, int64] {
	t.Helper()
	for _, s := range invoiceDDL {
		b.raw.exec(t, s)
	}
	repo, err := NewRepository[*invoice, int64](b.db, invoiceMapping(t))
	require.NoError(t, err)
	for i, c := range []string{"50%", "50x", "a_b", "axb", `back\slash`, "Alice", "ALICE", "alice", "Émile", "émile", "a*b", "a[b]"} {
		inv := &invoice{id: int64(i + 1), customer: c, lines: []*invLine{{id: 1, product: c + " tea"}}}
		require.NoError(t, repo.Save(context.Background(), inv))
	}
	return repo
}

func invoiceIDs(got []*invoice) []int64 {
	out := []int64{}
	for _, inv := range got {
		out = append(out, inv.id)
	}
	return out
}

// TestTextMatch: Contains, HasPrefix and EqualFold match the same rows on
// every database: the first two case-sensitively, with %, _, \ and the
// characters of GLOB patterns taken as they are; EqualFold folding the
// ASCII letters alone.
func TestTextMatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := textInvoices(t, b)
		for _, tt := range []struct {
			name string
			c    Cond
			want []int64
		}{
			{"Contains %", Contains("customer", "50%"), []int64{1}},
			{"Contains _", Contains("customer", "_"), []int64{3}},
			{`Contains \`, Contains("customer", `\`), []int64{5}},
			{"Contains is case-sensitive", Contains("customer", "lic"), []int64{6, 8}},
			{"Contains [", Contains("customer", "[b]"), []int64{12}},
			{"Contains *", Contains("customer", "*"), []int64{11}},
			{"Contains nothing", Contains("customer", ""), []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
			{"HasPrefix", HasPrefix("customer", "a"), []int64{3, 4, 8, 11, 12}},
			{"HasPrefix is case-sensitive", HasPrefix("customer", "AL"), []int64{7}},
			{"HasPrefix a*", HasPrefix("customer", "a*"), []int64{11}},
			{"HasPrefix 50%", HasPrefix("customer", "50%"), []int64{1}},
			{"HasPrefix ?", HasPrefix("customer", "?"), []int64{}},
			{"HasPrefix, not a suffix", HasPrefix("customer", "b"), []int64{5}},
			{"EqualFold", EqualFold("customer", "aLiCe"), []int64{6, 7, 8}},
			{"EqualFold is whole", EqualFold("customer", "alic"), []int64{}},
			{"EqualFold folds ASCII alone", EqualFold("customer", "ÉMILE"), []int64{9}},
			{"EqualFold does not fold É", EqualFold("customer", "émile"), []int64{10}},
			{"EqualFold takes % as itself", EqualFold("customer", "50%"), []int64{1}},
			{"EqualFold takes _ as itself", EqualFold("customer", "A_B"), []int64{3}},
			{"EqualFold minds a trailing space (MySQL's = would not)", EqualFold("customer", "alice "), []int64{}},
			{`EqualFold takes a last \ as itself, as it takes no pattern`, EqualFold("customer", `back\`), []int64{}},
			{`EqualFold with \`, EqualFold("customer", `BACK\SLASH`), []int64{5}},
			{"on a child's column", Has("lines", Contains("product", "% t"), Not(HasPrefix("product", "5"))), []int64{}},
			{"on a child's column, found", Has("lines", HasPrefix("product", "50% "), EqualFold("product", "50% TEA")), []int64{1}},
		} {
			got, err := repo.FindAll(ctx, Where(tt.c).OrderBy("id"))
			require.NoError(t, err, tt.name)
			assert.Equal(t, tt.want, invoiceIDs(got), tt.name)
			n, err := repo.Count(ctx, Where(Not(tt.c)))
			require.NoError(t, err, tt.name)
			assert.EqualValues(t, 12-len(tt.want), n, "Not: %s", tt.name)
		}

		b.log.take()
		for _, tt := range []struct {
			name string
			c    Cond
		}{
			{"Contains on an integer column", Contains("version", "1")},
			{"HasPrefix on an integer column", HasPrefix("id", "1")},
			{"EqualFold on an integer column", EqualFold("version", "1")},
			{"Like on an integer column", Like("id", "1%")},
			{"a pattern ending in a lone backslash", Like("customer", `a\`)},
			{"an unknown column", Contains("nope", "a")},
		} {
			_, err := repo.FindAll(ctx, Where(tt.c))
			assert.ErrorIs(t, err, ErrQuery, tt.name)
		}
		assert.Empty(t, dml(b.log.take()), "nothing sent")
	})
}

func TestEscapeLike(t *testing.T) {
	assert.Equal(t, `50\% of a\_b in c:\\d`, EscapeLike(`50% of a_b in c:\d`))
	assert.Equal(t, "plain", EscapeLike("plain"))
	for p, want := range map[string]string{
		`50\%`: "50%", "a_b%": "a?b*", `a\\b`: `a\b`, "x*?[y]": "x[*][?][[]y]", `\a`: "a",
	} {
		g, ok := likeToGlob(p)
		assert.True(t, ok)
		assert.Equal(t, want, g, p)
	}
	_, ok := likeToGlob(`ab\`)
	assert.False(t, ok)
}

// TestTextMatchEncoded: a text match on a column stored as JSON, or as a
// PostgreSQL array, fails with ErrQuery on every backend, and nothing is
// sent.
func TestTextMatchEncoded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		ddl := `CREATE TABLE profiles (id BIGINT PRIMARY KEY, addrs TEXT, attrs TEXT, tags TEXT, version BIGINT NOT NULL)`
		if !b.sqlite() {
			ddl = `CREATE TABLE profiles (id BIGINT PRIMARY KEY, addrs JSONB, attrs JSONB, tags JSONB, version BIGINT NOT NULL)`
		}
		b.raw.exec(t, ddl)
		m, err := NewMapping[*profile](Table{Name: "profiles"})
		require.NoError(t, err)
		repo, err := NewRepository[*profile, int64](b.db, m)
		require.NoError(t, err)
		require.NoError(t, repo.Save(ctx, &profile{id: 1, tags: []string{"tea"}}))
		conds := []Cond{Like("tags", "%tea%"), Contains("tags", "tea"), HasPrefix("attrs", "{"), EqualFold("tags", "TEA")}
		if b.db.dialect.anyArray {
			b.raw.exec(t, `CREATE TABLE tagged (id BIGINT PRIMARY KEY, tags TEXT[])`)
			am, err := NewMapping[*tagged](Table{Name: "tagged"})
			require.NoError(t, err)
			arepo, err := NewRepository[*tagged, int64](b.db, am)
			require.NoError(t, err)
			require.NoError(t, arepo.Save(ctx, &tagged{id: 1, tags: []string{"tea"}}))
			b.log.take()
			for _, c := range []Cond{Like("tags", "%tea%"), Contains("tags", "tea")} {
				_, err := arepo.FindAll(ctx, Where(c))
				assert.ErrorIs(t, err, ErrQuery, "%s on an array column", condFunc(c))
			}
			assert.Empty(t, b.log.take(), "nothing sent")
		}
		b.log.take()
		for _, c := range conds {
			_, err := repo.FindAll(ctx, Where(c))
			assert.ErrorIs(t, err, ErrQuery, "%s on a JSON column", condFunc(c))
			assert.ErrorContains(t, err, "is not text")
		}
		assert.Empty(t, b.log.take(), "nothing sent")
	})
}
