package sqlstore

import (
	"context"
	"database/sql"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// backticked returns a copy of d that quotes identifiers with backticks.
func backticked(d *dialect) *dialect {
	bt := *d
	bt.quoteChar = '`'
	return &bt
}

// quoteWorkload saves, updates, loads, queries and removes aggregates of
// two mappings on db, whose tables exist: between them, a schema-qualified
// root with a version and a generated key, a position column, a second
// level, a generated child key and a level that refers to its parent by
// its key alone.
func quoteWorkload(t *testing.T, db *DB, shelves *Mapping[*shelf], kits *Mapping[*kit]) {
	t.Helper()
	ctx := context.Background()
	r, err := NewRepository[*shelf, int64](db, shelves)
	require.NoError(t, err)
	note := "top"
	s := &shelf{name: "fiction", note: &note, size: dims{width: 1.5, height: 3},
		books: []*book{
			{id: 2, title: "b", added: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), notes: []*bookNote{{id: 1, text: "x"}, {id: 2, text: "y"}}},
			{id: 1, title: "a", added: time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)},
		},
		tags: []*shelfTag{{id: "t", label: []byte{1}}},
	}
	require.NoError(t, r.Save(ctx, s))
	require.NoError(t, r.Update(ctx, s.id, func(_ context.Context, s *shelf) error {
		s.name = "fact"
		s.books[0], s.books[1] = s.books[1], s.books[0] // a reorder
		s.books[1].title = "bb"
		s.books[1].notes = s.books[1].notes[:1]
		s.books[0].notes = append(s.books[0].notes, &bookNote{id: 3, text: "z", done: true})
		s.tags = append(s.tags, &shelfTag{id: "u", label: []byte{2}})
		return nil
	}))
	got, err := r.Find(ctx, s.id)
	require.NoError(t, err)
	require.Equal(t, "fact", got.name)
	require.Equal(t, []int64{1, 2}, []int64{got.books[0].id, got.books[1].id})
	require.Len(t, got.books[0].notes, 1)
	require.Len(t, got.tags, 2)

	q := Where(Eq("name", "fact"), Like("name", "f%"), EqualFold("name", "FACT"), In("id", s.id, s.id+1),
		Not(IsNull("note")), Or(Gt("width", 1.0), Le("height", 0)),
		Has("books", HasPrefix("title", "b"), Has("notes", Eq("done", false))),
		Not(Has("tags", Contains("id", "zz")))).OrderByDesc("name").Limit(5)
	found, err := r.FindAll(ctx, q)
	require.NoError(t, err)
	require.Len(t, found, 1)
	found, err = r.FindAll(ctx, Where(Eq("name", "fact")).OrderBy("name").After("a", int64(0)).Offset(0))
	require.NoError(t, err)
	require.Len(t, found, 1)
	byIDs, err := r.FindByIDs(ctx, []int64{s.id})
	require.NoError(t, err)
	require.Len(t, byIDs, 1)
	n, err := r.Count(ctx, q)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	ok, err := r.Exists(ctx, q)
	require.NoError(t, err)
	require.True(t, ok)
	type shelfRow struct {
		ID   int64  `db:"id"`
		Name string `db:"name"`
	}
	rows, total, err := SelectPage[shelfRow](ctx, db, shelves, q)
	require.NoError(t, err)
	require.Equal(t, []shelfRow{{s.id, "fact"}}, rows)
	require.Equal(t, int64(1), total)
	require.NoError(t, r.Update(ctx, s.id, func(context.Context, *shelf) error { return nil }))
	require.NoError(t, db.InTx(ctx, func(ctx context.Context) error {
		_, err := r.FindForUpdate(ctx, s.id)
		return err
	}))
	require.NoError(t, r.Remove(ctx, got))
	require.NoError(t, r.Save(ctx, &shelf{name: "x"}))
	all, err := r.FindAll(ctx, Query{})
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.NoError(t, r.RemoveByID(ctx, all[0].id, repository.IfVersion(all[0].version)))

	k, err := NewRepository[*kit, string](db, kits)
	require.NoError(t, err)
	w := int32(7)
	require.NoError(t, k.Save(ctx, &kit{id: "k", label: sql.NullString{String: "x", Valid: true}, parts: []*kitPart{
		{id: -1, weight: &w, screws: []*screw{{id: 1, size: 3}}, bolts: []*screw{{id: 2, size: 4}}},
	}}))
	require.NoError(t, k.Update(ctx, "k", func(_ context.Context, k *kit) error {
		k.parts[0].bolts[0].size = 5
		k.parts[0].screws = nil
		return nil
	}))
	kf, err := k.FindAll(ctx, Where(Has("parts", Has("bolts", Eq("size", 5)))))
	require.NoError(t, err)
	require.Len(t, kf, 1)
	require.Equal(t, uint32(5), kf[0].parts[0].bolts[0].size)
	require.NoError(t, k.Remove(ctx, kf[0]))
}

// quoteMappings returns the mappings of quoteWorkload and their DDL on
// SQLite.
func quoteMappings(t *testing.T) (*Mapping[*shelf], *Mapping[*kit], string) {
	shelves := shelfMapping(t, "main.")
	kits, err := NewMapping[*kit](Table{Name: "kits"},
		Child{Field: "parts", Table: "kit_parts", ParentKey: "kit_id", Children: []Child{
			{Field: "screws", Table: "part_screws", ParentKey: "part_id"},
			{Field: "bolts", Table: "part_bolts", ParentKey: "part_id", ParentKeyOnly: true},
		}})
	require.NoError(t, err)
	ddl1, err := shelves.DDL(SQLite)
	require.NoError(t, err)
	ddl2, err := kits.DDL(SQLite)
	require.NoError(t, err)
	return shelves, kits, ddl1 + ddl2
}

// identifiers returns the names of the tables (each part of a qualified
// one) and columns of the mappings.
func identifiers(tables ...[]*table) []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, ts := range tables {
		for _, tb := range ts {
			for part := range strings.SplitSeq(tb.name, ".") {
				add(part)
			}
			for _, c := range tb.cols {
				add(c.name)
			}
		}
	}
	for _, n := range []string{"shelf_id", "book_id", "pos", "kit_id", "part_id"} {
		add(n)
	}
	return out
}

// requireBackticked checks that stmts name no identifier in double quotes
// and every identifier of names in backticks.
func requireBackticked(t *testing.T, stmts []string, names []string) {
	t.Helper()
	require.NotEmpty(t, stmts)
	bare := make([]*regexp.Regexp, len(names))
	for i, n := range names {
		// The name as a word, not enclosed in backticks.
		bare[i] = regexp.MustCompile("(^|[^`\\w])" + regexp.QuoteMeta(n) + "\\b|\\b" + regexp.QuoteMeta(n) + "($|[^`\\w])")
	}
	for _, s := range stmts {
		require.NotContains(t, s, `"`, "a double-quoted identifier")
		for i, re := range bare {
			require.False(t, re.MatchString(s), "identifier %s not in backticks: %s", names[i], s)
		}
	}
}

// TestQuoteWithDialect runs saves, updates, loads, queries and deletes
// through a dialect that quotes identifiers with backticks, which SQLite
// reads too: every statement names every table and column in backticks,
// none in double quotes, and the statements work.
func TestQuoteWithDialect(t *testing.T) {
	b := sqliteBackend(t)
	shelves, kits, ddl := quoteMappings(t)
	for _, s := range statements(ddl) {
		b.raw.exec(t, s)
	}
	b.db.dialect = backticked(b.db.dialect)
	b.log.take()
	quoteWorkload(t, b.db, shelves, kits)

	var stmts []string
	for _, s := range b.log.take() {
		if !control[s.SQL] {
			stmts = append(stmts, s.SQL)
		}
	}
	for _, want := range []string{"INSERT INTO", "UPDATE ", "DELETE FROM", "SELECT count(*)", "EXISTS (SELECT 1 FROM `main`.`books` WHERE"} {
		require.True(t, strings.Contains(strings.Join(stmts, "\n"), want), "no statement with %q", want)
	}
	requireBackticked(t, stmts, identifiers(shelves.tables(), kits.tables()))
}

// TestQuoteStoreStatements checks the statements that a store builds once,
// as a database that locks the root before deleting it and checks row
// counts in SQL (PostgreSQL's way) builds them, with backticks: the
// statements of TestQuoteWithDialect that SQLite does not run.
func TestQuoteStoreStatements(t *testing.T) {
	b := sqliteBackend(t)
	shelves, kits, _ := quoteMappings(t)
	b.db.dialect = backticked(postgres)
	b.db.pgx = nil
	s := NewStore[*shelf, int64](b.db, shelves)
	require.NoError(t, s.err)
	s.wrap = true // as on pgx
	var stmts []string
	v := reflect.ValueOf(s).Elem()
	collect := func() {
		for i := range v.NumField() {
			f := v.Field(i)
			switch {
			case f.Kind() == reflect.String && f.String() != "":
				stmts = append(stmts, f.String())
			case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
				for j := range f.Len() {
					stmts = append(stmts, f.Index(j).String())
				}
			}
		}
	}
	collect()
	w := &builder{d: s.d}
	lock, del := s.deleteSQL(w, true, true)
	require.Contains(t, lock, "SELECT CASE WHEN count(*) > 0 THEN 1 WHEN EXISTS (SELECT 1 FROM `main`.`shelves` WHERE `id` = ")
	stmts = append(stmts, lock, del)
	require.Greater(t, len(stmts), 12)
	requireBackticked(t, stmts, identifiers(shelves.tables(), kits.tables()))
	// The mapping itself holds names only.
	for _, tb := range shelves.tables() {
		require.Empty(t, tb.quoted)
	}
	require.Equal(t, "`main`.`shelves`", s.m.root.quoted)
}

// TestDialectsQuote checks that every dialect names a quote character,
// the one its database reads identifiers in.
func TestDialectsQuote(t *testing.T) {
	for driver, want := range map[string]string{"pgx": `"a"."b"`, "postgres": `"a"."b"`, "sqlite": `"a"."b"`, "mysql": "`a`.`b`"} {
		d, err := dialectFor(driver)
		require.NoError(t, err, driver)
		require.Equal(t, want, d.quote("a.b"), driver)
	}
}
