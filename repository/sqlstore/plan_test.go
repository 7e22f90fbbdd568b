package sqlstore

import (
	"context"
	"testing"
	"unsafe"

	"github.com/jackc/pgx/v5"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/repository"
)

// These tests check the statements built for hand-made changes, without a
// database: they do not depend on the diff and copy engines.

// noBatches is a PGX that must not be used.
type noBatches struct{}

func (noBatches) SendBatch(context.Context, *pgx.Batch) pgx.BatchResults {
	panic("no database in statement tests")
}

// Backends whose statements differ.
const (
	bPGX    = "postgres/pgx"          // checks raise division_by_zero; arrays
	bPGSQL  = "postgres/database-sql" // checks count rows; arrays
	bSQLite = "sqlite"                // checks count rows; IN lists; ? placeholders
)

func planStores(t *testing.T) map[string]*Store[*order, orderID] {
	m := orderMapping(t)
	return map[string]*Store[*order, orderID]{
		bPGX:    NewStore[*order, orderID](&DB{pgx: noBatches{}, dialect: postgres}, m),
		bPGSQL:  NewStore[*order, orderID](&DB{sql: new(sqlx.DB), dialect: postgres}, m),
		bSQLite: NewStore[*order, orderID](&DB{sql: new(sqlx.DB), dialect: sqlite}, m),
	}
}

type want struct {
	sql   string
	args  []any
	check check
	rows  int64 // of a checked DELETE: how many rows it must delete
}

func field(steps ...diff.FieldStep) diff.Path {
	p := make(diff.Path, len(steps))
	for i, s := range steps {
		p[i] = s
	}
	return p
}

var (
	pTotalAmount = field(diff.FieldStep{Name: "total", Index: fOrderTotal}, diff.FieldStep{Name: "amount", Index: fMoneyAmount})
	pTotal       = field(diff.FieldStep{Name: "total", Index: fOrderTotal})
	pCustomer    = field(diff.FieldStep{Name: "customer", Index: fOrderCustomer})
	pNote        = field(diff.FieldStep{Name: "note", Index: fOrderNote})
	pID          = field(diff.FieldStep{Name: "id", Index: 0})
	pItems       = field(diff.FieldStep{Name: "items", Index: fOrderItems})
	pQuantity    = field(diff.FieldStep{Name: "quantity", Index: fItemQuantity})
	pSKU         = field(diff.FieldStep{Name: "sku", Index: fItemSKU})
)

func versioned(d diff.Result) repository.Changes {
	return repository.Changes{Diff: d, Versioned: true, OldVersion: 3, NewVersion: 4}
}

func stmtsOf(ss []stmt) []want {
	out := make([]want, len(ss))
	for i, s := range ss {
		out[i] = want{sql: s.sql, args: s.args, check: s.check, rows: s.rows}
	}
	return out
}

func TestStatements(t *testing.T) {
	stores := planStores(t)
	base := func() *order {
		return newOrder(1, "alice",
			&item{id: 1, sku: "A", quantity: 1},
			&item{id: 2, sku: "B", quantity: 2},
			&item{id: 3, sku: "C", quantity: 3})
	}
	tests := []struct {
		name   string
		reason string
		build  func(s *Store[*order, orderID]) ([]stmt, error)
		want   map[string][]want
	}{
		{
			name:   "insert with 3 children",
			reason: "the root, then all children in ONE multi-row INSERT, the parent key filled from the root; the value object is flattened, the unmapped and ignored fields are not written",
			build: func(s *Store[*order, orderID]) ([]stmt, error) {
				o := base()
				o.note, o.cache = "not mapped", map[string]string{"x": "y"}
				return first(s.insertStmts(unsafe.Pointer(o)))
			},
			want: map[string][]want{
				bPGX: {
					{sql: `INSERT INTO "orders" ("id", "customer", "total_amount", "total_currency", "version") VALUES ($1, $2, $3, $4, $5)`, args: []any{orderID(1), "alice", int64(600), "EUR", int64(0)}},
					{sql: `INSERT INTO "order_items" ("order_id", "id", "sku", "quantity") VALUES ($1, $2, $3, $4), ($5, $6, $7, $8), ($9, $10, $11, $12)`,
						args: []any{orderID(1), itemID(1), "A", 1, orderID(1), itemID(2), "B", 2, orderID(1), itemID(3), "C", 3}},
				},
				bSQLite: {
					{sql: `INSERT INTO "orders" ("id", "customer", "total_amount", "total_currency", "version") VALUES (?, ?, ?, ?, ?)`, args: []any{orderID(1), "alice", int64(600), "EUR", int64(0)}},
					{sql: `INSERT INTO "order_items" ("order_id", "id", "sku", "quantity") VALUES (?, ?, ?, ?), (?, ?, ?, ?), (?, ?, ?, ?)`,
						args: []any{orderID(1), itemID(1), "A", 1, orderID(1), itemID(2), "B", 2, orderID(1), itemID(3), "C", 3}},
				},
			},
		},
		{
			name:   "root field change",
			reason: "only the changed column is SET, with the version bump, on the condition of the old version; on pgx the check raises division_by_zero when no row matched, so the batch aborts",
			build: func(s *Store[*order, orderID]) ([]stmt, error) {
				o := base()
				o.total.amount, o.version = 900, 4
				return first(s.updates(unsafe.Pointer(o), ptr(versioned(diff.Result{Changes: diff.Changes{
					Fields: []diff.Change{{Path: pTotalAmount, Old: int64(600), New: int64(900)}},
				}}))))
			},
			want: map[string][]want{
				bPGX: {{sql: `WITH r AS (UPDATE "orders" SET "total_amount" = $1, "version" = $2 WHERE "id" = $3 AND "version" = $4 RETURNING 1) SELECT 1/count(*) FROM r`,
					args: []any{int64(900), int64(4), orderID(1), int64(3)}, check: checkRows}},
				bPGSQL: {{sql: `UPDATE "orders" SET "total_amount" = $1, "version" = $2 WHERE "id" = $3 AND "version" = $4`,
					args: []any{int64(900), int64(4), orderID(1), int64(3)}, check: checkRows}},
				bSQLite: {{sql: `UPDATE "orders" SET "total_amount" = ?, "version" = ? WHERE "id" = ? AND "version" = ?`,
					args: []any{int64(900), int64(4), orderID(1), int64(3)}, check: checkRows}},
			},
		},
		{
			name:   "value object replaced as a whole, customer changed, unmapped field changed",
			reason: "a change at the value object's path sets all its flattened columns; a path that maps to no column (note) is skipped; columns are in field order",
			build: func(s *Store[*order, orderID]) ([]stmt, error) {
				o := base()
				o.customer, o.total, o.note = "bob", money{amount: 1, currency: "USD"}, "n"
				return first(s.updates(unsafe.Pointer(o), ptr(versioned(diff.Result{Changes: diff.Changes{Fields: []diff.Change{
					{Path: pCustomer, Old: "alice", New: "bob"},
					{Path: pTotal},
					{Path: pNote, Old: "", New: "n"},
				}}}))))
			},
			want: map[string][]want{
				bSQLite: {{sql: `UPDATE "orders" SET "customer" = ?, "total_amount" = ?, "total_currency" = ?, "version" = ? WHERE "id" = ? AND "version" = ?`,
					args: []any{"bob", int64(1), "USD", int64(4), orderID(1), int64(3)}, check: checkRows}},
			},
		},
		{
			name:   "only an unmapped field changed",
			reason: "the repository bumped the version in memory, so the bump is written even though no column changed",
			build: func(s *Store[*order, orderID]) ([]stmt, error) {
				o := base()
				return first(s.updates(unsafe.Pointer(o), ptr(versioned(diff.Result{Changes: diff.Changes{Fields: []diff.Change{{Path: pNote, New: "n"}}}}))))
			},
			want: map[string][]want{
				bPGSQL: {{sql: `UPDATE "orders" SET "version" = $1 WHERE "id" = $2 AND "version" = $3`, args: []any{int64(4), orderID(1), int64(3)}, check: checkRows}},
			},
		},
		{
			name:   "child-only change",
			reason: "a change of a child alone still bumps the root's version (checked), then the child's UPDATE sets only its changed column, keyed by parent and key",
			build: func(s *Store[*order, orderID]) ([]stmt, error) {
				o := base()
				o.items[1].quantity = 5
				return first(s.updates(unsafe.Pointer(o), ptr(versioned(diff.Result{Changes: diff.Changes{Collections: []diff.Collection{{
					Path: pItems,
					Elements: []diff.Element{{Kind: diff.Modified, ID: itemID(2), Old: &item{id: 2, sku: "B", quantity: 2}, New: o.items[1],
						Changes: diff.Changes{Fields: []diff.Change{{Path: pQuantity, Old: 2, New: 5}}}}},
				}}}}))))
			},
			want: map[string][]want{
				bPGX: {
					{sql: `WITH r AS (UPDATE "orders" SET "version" = $1 WHERE "id" = $2 AND "version" = $3 RETURNING 1) SELECT 1/count(*) FROM r`, args: []any{int64(4), orderID(1), int64(3)}, check: checkRows},
					{sql: `WITH r AS (UPDATE "order_items" SET "quantity" = $1 WHERE "order_id" = $2 AND "id" = $3 RETURNING 1) SELECT 1/count(*) FROM r`, args: []any{5, orderID(1), itemID(2)}, check: checkRows},
				},
				bSQLite: {
					{sql: `UPDATE "orders" SET "version" = ? WHERE "id" = ? AND "version" = ?`, args: []any{int64(4), orderID(1), int64(3)}, check: checkRows},
					{sql: `UPDATE "order_items" SET "quantity" = ? WHERE "order_id" = ? AND "id" = ?`, args: []any{5, orderID(1), itemID(2)}, check: checkRows},
				},
			},
		},
		{
			name:   "add and remove",
			reason: "the removed rows are deleted (one statement, parent-scoped) BEFORE the added rows are inserted, so a new row may reuse a removed row's unique value; modified rows are updated in between",
			build: func(s *Store[*order, orderID]) ([]stmt, error) {
				o := base()
				gone1, gone3 := o.items[0], o.items[2]
				o.items[1].sku = "A"
				o.items = []*item{o.items[1], {id: 4, sku: "C", quantity: 4}}
				o.recompute()
				return first(s.updates(unsafe.Pointer(o), ptr(versioned(diff.Result{Changes: diff.Changes{
					Fields: []diff.Change{{Path: pTotalAmount, Old: int64(600), New: int64(600)}},
					Collections: []diff.Collection{{Path: pItems, Elements: []diff.Element{
						{Kind: diff.Removed, ID: itemID(1), Old: gone1},
						{Kind: diff.Removed, ID: itemID(3), Old: gone3},
						{Kind: diff.Modified, ID: itemID(2), Old: &item{id: 2, sku: "B", quantity: 2}, New: o.items[0],
							Changes: diff.Changes{Fields: []diff.Change{{Path: pSKU, Old: "B", New: "A"}}}},
						{Kind: diff.Added, ID: itemID(4), New: o.items[1]},
					}}},
				}}))))
			},
			want: map[string][]want{
				bPGX: {
					{sql: `WITH r AS (UPDATE "orders" SET "total_amount" = $1, "version" = $2 WHERE "id" = $3 AND "version" = $4 RETURNING 1) SELECT 1/count(*) FROM r`, args: []any{int64(600), int64(4), orderID(1), int64(3)}, check: checkRows},
					{sql: `WITH r AS (DELETE FROM "order_items" WHERE "order_id" = $1 AND "id" = ANY($2) RETURNING 1) SELECT 1/(count(*) = cardinality($2))::int FROM r`, args: []any{orderID(1), []itemID{1, 3}}, check: checkRows, rows: 2},
					{sql: `WITH r AS (UPDATE "order_items" SET "sku" = $1 WHERE "order_id" = $2 AND "id" = $3 RETURNING 1) SELECT 1/count(*) FROM r`, args: []any{"A", orderID(1), itemID(2)}, check: checkRows},
					{sql: `INSERT INTO "order_items" ("order_id", "id", "sku", "quantity") VALUES ($1, $2, $3, $4)`, args: []any{orderID(1), itemID(4), "C", 4}},
				},
				bSQLite: {
					{sql: `UPDATE "orders" SET "total_amount" = ?, "version" = ? WHERE "id" = ? AND "version" = ?`, args: []any{int64(600), int64(4), orderID(1), int64(3)}, check: checkRows},
					{sql: `DELETE FROM "order_items" WHERE "order_id" = ? AND "id" IN (?, ?)`, args: []any{orderID(1), itemID(1), itemID(3)}, check: checkRows, rows: 2},
					{sql: `UPDATE "order_items" SET "sku" = ? WHERE "order_id" = ? AND "id" = ?`, args: []any{"A", orderID(1), itemID(2)}, check: checkRows},
					{sql: `INSERT INTO "order_items" ("order_id", "id", "sku", "quantity") VALUES (?, ?, ?, ?)`, args: []any{orderID(1), itemID(4), "C", 4}},
				},
			},
		},
		{
			name:   "remove",
			reason: "removing a child bumps the version and deletes its row, scoped to the parent",
			build: func(s *Store[*order, orderID]) ([]stmt, error) {
				o := base()
				gone := o.items[2]
				o.remove(3)
				return first(s.updates(unsafe.Pointer(o), ptr(versioned(diff.Result{Changes: diff.Changes{
					Collections: []diff.Collection{{Path: pItems, Elements: []diff.Element{{Kind: diff.Removed, ID: itemID(3), Old: gone}}}},
				}}))))
			},
			want: map[string][]want{
				bPGSQL: {
					{sql: `UPDATE "orders" SET "version" = $1 WHERE "id" = $2 AND "version" = $3`, args: []any{int64(4), orderID(1), int64(3)}, check: checkRows},
					{sql: `DELETE FROM "order_items" WHERE "order_id" = $1 AND "id" = ANY($2)`, args: []any{orderID(1), []itemID{3}}, check: checkRows, rows: 1},
				},
				bSQLite: {
					{sql: `UPDATE "orders" SET "version" = ? WHERE "id" = ? AND "version" = ?`, args: []any{int64(4), orderID(1), int64(3)}, check: checkRows},
					{sql: `DELETE FROM "order_items" WHERE "order_id" = ? AND "id" IN (?)`, args: []any{orderID(1), itemID(3)}, check: checkRows, rows: 1},
				},
			},
		},
		{
			name:   "delete the aggregate",
			reason: "children go first (foreign keys); on PostgreSQL the root is locked and version-checked FIRST, so a concurrent save (which updates the root first) waits instead of deadlocking; on SQLite the root DELETE itself is checked",
			build: func(s *Store[*order, orderID]) ([]stmt, error) {
				return s.deleteStmts(unsafe.Pointer(base()), 3), nil
			},
			want: map[string][]want{
				bPGX: {
					{sql: `WITH r AS (SELECT 1 FROM "orders" WHERE "id" = $1 AND "version" = $2 FOR UPDATE) SELECT 1/count(*) FROM r`, args: []any{orderID(1), int64(3)}, check: checkRow},
					{sql: `DELETE FROM "order_items" WHERE "order_id" = $1`, args: []any{orderID(1)}},
					{sql: `DELETE FROM "orders" WHERE "id" = $1 AND "version" = $2`, args: []any{orderID(1), int64(3)}},
				},
				bPGSQL: {
					{sql: `SELECT 1 FROM "orders" WHERE "id" = $1 AND "version" = $2 FOR UPDATE`, args: []any{orderID(1), int64(3)}, check: checkRow},
					{sql: `DELETE FROM "order_items" WHERE "order_id" = $1`, args: []any{orderID(1)}},
					{sql: `DELETE FROM "orders" WHERE "id" = $1 AND "version" = $2`, args: []any{orderID(1), int64(3)}},
				},
				bSQLite: {
					{sql: `DELETE FROM "order_items" WHERE "order_id" = ?`, args: []any{orderID(1)}},
					{sql: `DELETE FROM "orders" WHERE "id" = ? AND "version" = ?`, args: []any{orderID(1), int64(3)}, check: checkRows},
				},
			},
		},
	}
	for _, tt := range tests {
		for backend, w := range tt.want {
			t.Run(tt.name+"/"+backend, func(t *testing.T) {
				t.Log(tt.reason)
				got, err := tt.build(stores[backend])
				require.NoError(t, err)
				assert.Equal(t, w, stmtsOf(got))
			})
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestStatementsSelect(t *testing.T) {
	stores := planStores(t)
	assert.Equal(t, `SELECT "id", "customer", "total_amount", "total_currency", "version" FROM "orders" WHERE "id" = $1`, stores[bPGX].selectRoot)
	assert.Equal(t, []string{`SELECT "id", "sku", "quantity" FROM "order_items" WHERE "order_id" = $1 ORDER BY "id"`}, stores[bPGX].selectChild)
	assert.Equal(t, `SELECT "id", "customer", "total_amount", "total_currency", "version" FROM "orders" WHERE "id" = ?`, stores[bSQLite].selectRoot)
	assert.Equal(t, []string{`SELECT "id", "sku", "quantity" FROM "order_items" WHERE "order_id" = ? ORDER BY "id"`}, stores[bSQLite].selectChild)
}

func TestStatementsErrors(t *testing.T) {
	s := planStores(t)[bSQLite]
	o := newOrder(1, "alice", &item{id: 1, sku: "A", quantity: 1})

	_, err := s.updates(unsafe.Pointer(o), ptr(versioned(diff.Result{Changes: diff.Changes{Fields: []diff.Change{{Path: pID, Old: orderID(1), New: orderID(2)}}}})))
	assert.ErrorContains(t, err, "the key id changed", "the key is the row's identity: a change to it cannot be an UPDATE")

	_, err = s.updates(unsafe.Pointer(o), ptr(versioned(diff.Result{Changes: diff.Changes{Collections: []diff.Collection{{Path: pItems, Elements: []diff.Element{
		{Kind: diff.Added, ID: itemID(9), New: item{id: 9}},
	}}}}})))
	assert.ErrorContains(t, err, "element of type sqlstore.item in the diff, want *sqlstore.item", "a diff of another type is refused, not read at the wrong offsets")

	_, err = s.updates(unsafe.Pointer(o), ptr(versioned(diff.Result{Changes: diff.Changes{Collections: []diff.Collection{{Path: pItems, Elements: []diff.Element{
		{Kind: diff.Added, ID: itemID(9), New: (*item)(nil)},
	}}}}})))
	assert.ErrorIs(t, err, repository.ErrNilEntity)

	o.items = append(o.items, nil)
	_, err = s.insertStmts(unsafe.Pointer(o))
	assert.ErrorIs(t, err, repository.ErrNilEntity)
}

// TestStatementsChunked checks that a multi-row INSERT and an IN list stay
// within the dialect's parameter limit.
func TestStatementsChunked(t *testing.T) {
	small := *sqlite
	small.maxParams = 9 // two rows of 4 parameters, or 8 keys and the parent
	s := NewStore[*order, orderID](&DB{sql: new(sqlx.DB), dialect: &small}, orderMapping(t))
	o := newOrder(1, "alice")
	for i := 1; i <= 10; i++ {
		o.items = append(o.items, &item{id: itemID(i), sku: string(rune('A' + i)), quantity: i})
	}
	got, err := first(s.insertStmts(unsafe.Pointer(o)))
	require.NoError(t, err)
	require.Len(t, got, 1+5, "root, then 10 children two by two")
	assert.Equal(t, `INSERT INTO "order_items" ("order_id", "id", "sku", "quantity") VALUES (?, ?, ?, ?), (?, ?, ?, ?)`, got[1].sql)

	var removed []diff.Element
	for _, it := range o.items {
		removed = append(removed, diff.Element{Kind: diff.Removed, ID: it.id, Old: it})
	}
	got, err = first(s.updates(unsafe.Pointer(o), ptr(versioned(diff.Result{Changes: diff.Changes{Collections: []diff.Collection{{Path: pItems, Elements: removed}}}}))))
	require.NoError(t, err)
	require.Len(t, got, 1+2, "version bump, then 10 keys as 8 + 2")
	assert.Equal(t, `DELETE FROM "order_items" WHERE "order_id" = ? AND "id" IN (?, ?, ?, ?, ?, ?, ?, ?)`, got[1].sql)
	assert.Equal(t, `DELETE FROM "order_items" WHERE "order_id" = ? AND "id" IN (?, ?)`, got[2].sql)
}

// An aggregate without a version: a change of children alone writes no
// root row, but locks and checks it.
type tag struct {
	id    int64   `db:"id"`
	label string  `db:"label"`
	notes []*note // child
}

func (t *tag) ID() int64 { return t.id }

type note struct {
	id   int64  `db:"id" ddd:"id"`
	text string `db:"text"`
}

func TestStatementsUnversioned(t *testing.T) {
	m, err := NewMapping[*tag](Table{Name: "app.tags"}, Child{Field: "notes", Table: "app.tag_notes", Key: "id", ParentKey: "tag_id"})
	require.NoError(t, err)
	s := NewStore[*tag, int64](&DB{pgx: noBatches{}, dialect: postgres}, m)
	tg := &tag{id: 7, label: "x", notes: []*note{{id: 1, text: "new"}}}
	got, err := first(s.updates(unsafe.Pointer(tg), &repository.Changes{Diff: diff.Result{Changes: diff.Changes{Collections: []diff.Collection{{
		Path: field(diff.FieldStep{Name: "notes", Index: 2}),
		Elements: []diff.Element{{Kind: diff.Modified, ID: int64(1), Old: &note{id: 1, text: "old"}, New: tg.notes[0],
			Changes: diff.Changes{Fields: []diff.Change{{Path: field(diff.FieldStep{Name: "text", Index: 1}), Old: "old", New: "new"}}}}},
	}}}}}))
	require.NoError(t, err)
	assert.Equal(t, []want{
		{sql: `WITH r AS (SELECT 1 FROM "app"."tags" WHERE "id" = $1 FOR NO KEY UPDATE) SELECT 1/count(*) FROM r`, args: []any{int64(7)}, check: checkRow},
		{sql: `WITH r AS (UPDATE "app"."tag_notes" SET "text" = $1 WHERE "tag_id" = $2 AND "id" = $3 RETURNING 1) SELECT 1/count(*) FROM r`, args: []any{"new", int64(7), int64(1)}, check: checkRows},
	}, stmtsOf(got),
		"no version: when only a child changed, the root is locked and checked, not written; schema-qualified names are quoted part by part")

	got = s.deleteStmts(unsafe.Pointer(tg), 0)
	assert.Equal(t, `WITH r AS (SELECT 1 FROM "app"."tags" WHERE "id" = $1 FOR UPDATE) SELECT 1/count(*) FROM r`, got[0].sql,
		"without a version the delete still checks that the root exists")
}

// first returns the statements of the first round trip of a save plan.
func first(pl *savePlan, err error) ([]stmt, error) {
	if err != nil {
		return nil, err
	}
	return pl.first, nil
}
