package sqlstore

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The nested contract: an invoice, its lines (a slice of pointers) and each
// line's taxes (a map of values), keyed by (invoice_id, line_id, code),
// with foreign keys at every level and no ON DELETE CASCADE; and a cart
// whose lines (a map) refer to it and whose options (a slice of values)
// refer to their line by the line's key alone (ParentKeyOnly).

type invoice struct {
	id       int64  `db:"id"`
	customer string `db:"customer"`
	lines    []*invLine
	version  int64 `db:"version" ddd:"version"`
}

func (i *invoice) ID() int64 { return i.id }

type invLine struct {
	id      int64  `db:"id" ddd:"id"`
	product string `db:"product"`
	taxes   map[string]invTax
}

type invTax struct {
	code string `db:"code" ddd:"id"`
	rate int    `db:"rate"`
}

var invoiceDDL = []string{
	`CREATE TABLE invoices (id BIGINT PRIMARY KEY, customer TEXT NOT NULL, version BIGINT NOT NULL)`,
	`CREATE TABLE invoice_lines (
		invoice_id BIGINT NOT NULL REFERENCES invoices (id),
		id BIGINT NOT NULL,
		product TEXT NOT NULL,
		PRIMARY KEY (invoice_id, id))`,
	`CREATE TABLE line_taxes (
		invoice_id BIGINT NOT NULL,
		line_id BIGINT NOT NULL,
		code TEXT NOT NULL,
		rate INTEGER NOT NULL CHECK (rate >= 0),
		PRIMARY KEY (invoice_id, line_id, code),
		FOREIGN KEY (invoice_id, line_id) REFERENCES invoice_lines (invoice_id, id))`,
}

func invoiceMapping(t testing.TB) *Mapping[*invoice] {
	t.Helper()
	m, err := NewMapping[*invoice](Table{Name: "invoices"},
		Child{Field: "lines", Table: "invoice_lines", ParentKey: "invoice_id", Children: []Child{
			{Field: "taxes", Table: "line_taxes", Key: "code", ParentKey: "line_id"},
		}})
	require.NoError(t, err)
	return m
}

func newInvoice(id int64) *invoice {
	return &invoice{id: id, customer: "alice", lines: []*invLine{
		{id: 1, product: "tea", taxes: map[string]invTax{"VAT": {code: "VAT", rate: 20}, "ECO": {code: "ECO", rate: 1}}},
		{id: 2, product: "milk", taxes: map[string]invTax{"VAT": {code: "VAT", rate: 5}}},
		{id: 3, product: "cups", taxes: map[string]invTax{}},
	}}
}

// invoiceRows returns the rows of every table, to compare with what the
// aggregate holds.
func invoiceRows(t *testing.T, b *backend) (lines, taxes int64) {
	return b.raw.count(t, "SELECT count(*) FROM invoice_lines"), b.raw.count(t, "SELECT count(*) FROM line_taxes")
}

func (i *invoice) line(id int64) *invLine {
	for _, l := range i.lines {
		if l.id == id {
			return l
		}
	}
	return nil
}

func TestNestedContract(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		for _, s := range invoiceDDL {
			b.raw.exec(t, s)
		}
		m := invoiceMapping(t)
		repo, err := NewRepository[*invoice, int64](b.db, m)
		require.NoError(t, err)
		load := func(id int64) *invoice {
			t.Helper()
			got, err := NewStore[*invoice, int64](b.quiet, m).Select(ctx, id)
			require.NoError(t, err)
			return got
		}

		// Insert: parents first, one multi-row INSERT per table.
		inv := newInvoice(1)
		b.log.take()
		require.NoError(t, repo.Save(ctx, inv))
		stmts := b.log.take()
		assert.Equal(t, []string{"INSERT INTO \"invoices\"", "INSERT INTO \"invoice_lines\"", "INSERT INTO \"line_taxes\""}, prefixes(dml(stmts), 3))
		if b.pgx {
			assert.Equal(t, 1, trips(stmts), "the save of all levels is one round trip")
		}
		assert.Equal(t, inv, load(1), "every level reads back")

		// Load: one round trip on pgx, every level.
		got, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		stmts = b.log.take()
		if b.pgx {
			assert.Equal(t, 1, trips(stmts), "the load of all levels is one round trip")
		}
		assert.Len(t, dml(stmts), 3)

		// Modify at each level: only the changed columns, keyed by every
		// level's key.
		got.customer = "bob"
		got.line(1).product = "green tea"
		tax := got.line(1).taxes["VAT"]
		tax.rate = 21
		got.line(1).taxes["VAT"] = tax
		require.NoError(t, repo.Save(ctx, got))
		writes := dml(b.log.take())
		require.Len(t, writes, 3, "%q", writes)
		assert.Contains(t, writes[0], `UPDATE "invoices" SET "customer" = ?, "version" = ?`)
		assert.Equal(t, b.checked(`UPDATE "invoice_lines" SET "product" = ? WHERE "invoice_id" = ? AND "id" = ?`), writes[1])
		assert.Equal(t, b.checked(`UPDATE "line_taxes" SET "rate" = ? WHERE "invoice_id" = ? AND "line_id" = ? AND "code" = ?`), writes[2])
		assert.Equal(t, got, load(1))

		// A change at the lowest level alone checks and bumps the version.
		tax = got.line(2).taxes["VAT"]
		tax.rate = 6
		got.line(2).taxes["VAT"] = tax
		require.NoError(t, repo.Save(ctx, got))
		writes = dml(b.log.take())
		require.Len(t, writes, 2, "%q", writes)
		assert.Contains(t, writes[0], `UPDATE "invoices" SET "version" = ?`)
		assert.EqualValues(t, 2, load(1).version)

		// Add at each level: a tax to a line, and a line with its taxes.
		got.line(3).taxes["VAT"] = invTax{code: "VAT", rate: 20}
		got.line(2).taxes["ECO"] = invTax{code: "ECO", rate: 2}
		got.lines = append(got.lines, &invLine{id: 4, product: "spoons", taxes: map[string]invTax{"VAT": {code: "VAT", rate: 20}, "LUX": {code: "LUX", rate: 3}}})
		require.NoError(t, repo.Save(ctx, got))
		writes = dml(b.log.take())
		assert.Equal(t, []string{"UPDATE \"invoices\"", "INSERT INTO \"invoice_lines\"", "INSERT INTO \"line_taxes\""}, prefixes(writes, 3), "one INSERT per table, parents first: %q", writes)
		assert.Equal(t, got, load(1))
		lines, taxes := invoiceRows(t, b)
		assert.EqualValues(t, 4, lines)
		assert.EqualValues(t, 7, taxes)

		// Remove at each level: a tax, and a line with its taxes, whose
		// taxes go first (the schema has no ON DELETE CASCADE).
		delete(got.line(1).taxes, "ECO")
		got.lines = slices.DeleteFunc(got.lines, func(l *invLine) bool { return l.id == 4 })
		require.NoError(t, repo.Save(ctx, got))
		writes = dml(b.log.take())
		require.Len(t, writes, 4, "%q", writes)
		assert.Contains(t, writes[1], `DELETE FROM "line_taxes" WHERE "invoice_id" = ? AND "line_id"`, "the removed line's taxes, first")
		assert.Contains(t, writes[2], `DELETE FROM "line_taxes" WHERE "invoice_id" = ? AND "line_id" = ? AND "code"`, "the removed tax")
		assert.Contains(t, writes[3], `DELETE FROM "invoice_lines" WHERE "invoice_id" = ? AND "id"`)
		assert.Equal(t, got, load(1))
		lines, taxes = invoiceRows(t, b)
		assert.EqualValues(t, 3, lines)
		assert.EqualValues(t, 4, taxes)

		// Move a grandchild between two parents: a remove and an add,
		// the remove first.
		eco := got.line(2).taxes["ECO"]
		delete(got.line(2).taxes, "ECO")
		got.line(1).taxes["ECO"] = eco
		require.NoError(t, repo.Save(ctx, got))
		writes = dml(b.log.take())
		assert.Equal(t, []string{"UPDATE \"invoices\"", "DELETE FROM \"line_taxes\"", "INSERT INTO \"line_taxes\""}, prefixes(writes, 3))
		assert.Equal(t, got, load(1))

		// A second aggregate and a query: each gets its own children.
		require.NoError(t, repo.Save(ctx, newInvoice(2)))
		found, err := repo.FindAll(ctx, Where(Ge("id", int64(1))))
		require.NoError(t, err)
		require.Len(t, found, 2)
		assert.Equal(t, load(1), found[0])
		assert.Equal(t, newInvoice(2).lines, found[1].lines)

		// Remove a whole aggregate: every level, bottom up.
		require.NoError(t, repo.Remove(ctx, found[0]))
		writes = dml(b.log.take())
		var tables []string
		for _, w := range writes {
			if len(w) > 6 && w[:6] == "DELETE" {
				tables = append(tables, w)
			}
		}
		require.GreaterOrEqual(t, len(tables), 3, "%q", writes)
		assert.Contains(t, tables[0], `"line_taxes"`)
		assert.Contains(t, tables[1], `"invoice_lines"`)
		assert.Contains(t, tables[2], `"invoices"`)
		lines, taxes = invoiceRows(t, b)
		assert.EqualValues(t, 3, lines, "only invoice 2's lines are left")
		assert.EqualValues(t, 3, taxes)
	})
}

var verbTableRE = regexp.MustCompile(`^(?:WITH r AS \()?((?:INSERT INTO|UPDATE|DELETE FROM) "[^"]+")`)

// prefixes returns the verb and table of the first n statements.
func prefixes(stmts []string, n int) []string {
	var out []string
	for _, s := range stmts[:min(n, len(stmts))] {
		m := verbTableRE.FindStringSubmatch(s)
		if m == nil {
			m = []string{"", s}
		}
		out = append(out, m[1])
	}
	return out
}

// A cart whose options refer to their line by the line's key alone.

type kart struct {
	id    int64  `db:"id"`
	owner string `db:"owner"`
	lines map[int64]*kartLine
}

func (k *kart) ID() int64 { return k.id }

type kartLine struct {
	id      int64  `db:"id" ddd:"id"`
	product string `db:"product"`
	opts    []kartOpt
}

type kartOpt struct {
	id   int64  `db:"id" ddd:"id"`
	name string `db:"name"`
}

var kartDDL = []string{
	`CREATE TABLE karts (id BIGINT PRIMARY KEY, owner TEXT NOT NULL)`,
	`CREATE TABLE kart_lines (id BIGINT PRIMARY KEY, kart_id BIGINT NOT NULL REFERENCES karts (id), product TEXT NOT NULL)`,
	`CREATE TABLE kart_opts (id BIGINT NOT NULL, line_id BIGINT NOT NULL REFERENCES kart_lines (id), name TEXT NOT NULL, PRIMARY KEY (line_id, id))`,
}

// TestNestedParentKeyOnly runs the nested contract on the layout where a
// level refers to its parent by the parent's key alone, with a map at the
// first level and a slice of values at the second.
func TestNestedParentKeyOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		for _, s := range kartDDL {
			b.raw.exec(t, s)
		}
		m, err := NewMapping[*kart](Table{Name: "karts"},
			Child{Field: "lines", Table: "kart_lines", ParentKey: "kart_id", Children: []Child{
				{Field: "opts", Table: "kart_opts", ParentKey: "line_id", ParentKeyOnly: true},
			}})
		require.NoError(t, err)
		repo, err := NewRepository[*kart, int64](b.db, m)
		require.NoError(t, err)
		load := func(id int64) *kart {
			t.Helper()
			got, err := NewStore[*kart, int64](b.quiet, m).Select(ctx, id)
			require.NoError(t, err)
			return got
		}
		k := &kart{id: 1, owner: "alice", lines: map[int64]*kartLine{
			10: {id: 10, product: "tea", opts: []kartOpt{{id: 1, name: "large"}, {id: 2, name: "hot"}}},
			11: {id: 11, product: "cake"},
		}}
		require.NoError(t, repo.Save(ctx, k))
		require.NoError(t, repo.Save(ctx, &kart{id: 2, owner: "bob", lines: map[int64]*kartLine{
			20: {id: 20, product: "coffee", opts: []kartOpt{{id: 1, name: "small"}}},
		}}))
		assert.Equal(t, k, load(1))
		b.log.take()

		got, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		stmts := b.log.take()
		assert.Contains(t, dml(stmts)[2], `WHERE "line_id" IN (SELECT "id" FROM "kart_lines" WHERE "kart_id" = ?)`, "the options are selected through their lines")

		got.lines[10].opts[1].name = "iced"
		got.lines[11].opts = append(got.lines[11].opts, kartOpt{id: 1, name: "plate"})
		require.NoError(t, repo.Save(ctx, got))
		writes := dml(b.log.take())
		assert.Contains(t, writes, b.checked(`UPDATE "kart_opts" SET "name" = ? WHERE "line_id" = ? AND "id" = ?`))
		assert.Equal(t, got, load(1))

		delete(got.lines, 10) // with its options
		require.NoError(t, repo.Save(ctx, got))
		writes = dml(b.log.take())
		require.Len(t, writes, 3, "%q", writes)
		assert.Contains(t, writes[0], `SELECT 1 FROM "karts" WHERE "id" = ?`, "the root, unversioned, is locked and checked")
		assert.Contains(t, writes[1], `DELETE FROM "kart_opts" WHERE "line_id"`)
		assert.Contains(t, writes[2], `DELETE FROM "kart_lines" WHERE "kart_id" = ? AND "id"`)
		assert.Equal(t, got, load(1))
		assert.EqualValues(t, 2, b.raw.count(t, "SELECT count(*) FROM kart_opts"), "the plate and kart 2's option")

		found, err := repo.FindAll(ctx, Where(Ge("id", int64(1))))
		require.NoError(t, err)
		require.Len(t, found, 2)
		assert.Equal(t, []kartOpt{{id: 1, name: "small"}}, found[1].lines[20].opts)
		assert.Equal(t, slices.Sorted(maps.Keys(got.lines)), slices.Sorted(maps.Keys(found[0].lines)))

		require.NoError(t, repo.Remove(ctx, found[1]))
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM kart_opts"))
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM kart_lines"))
	})
}
