package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Round trips: what is saved is what is loaded, byte for byte, whatever
// the strings hold, and whatever sequence of changes led to it.

// rtNote stores text in a root column and in a child column of tables of
// its own, with no index on the text (a 1 MB value would not fit in a
// PostgreSQL btree entry).
type rtNote struct {
	id      int64  `db:"id"`
	body    string `db:"body"`
	lines   []*rtLine
	version int64 `db:"version" ddd:"version"`
}

func (n *rtNote) ID() int64 { return n.id }

type rtLine struct {
	id   int64  `db:"id" ddd:"id"`
	text string `db:"text"`
}

var rtDDL = []string{
	`CREATE TABLE rt_notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL, version BIGINT NOT NULL)`,
	`CREATE TABLE rt_note_lines (
		note_id BIGINT NOT NULL REFERENCES rt_notes (id),
		id BIGINT NOT NULL,
		text TEXT NOT NULL,
		PRIMARY KEY (note_id, id)
	)`,
}

func rtMapping(t testing.TB) *Mapping[*rtNote] {
	t.Helper()
	m, err := NewMapping[*rtNote](Table{Name: "rt_notes"}, Child{Field: "lines", Table: "rt_note_lines", ParentKey: "note_id"})
	require.NoError(t, err)
	return m
}

// rtStrings are strings that a statement built by formatting values into
// SQL text, or a driver that mangles what it binds, would not keep.
var rtStrings = []struct{ name, s string }{
	{"injection", `'); DROP TABLE orders; --`},
	{"injection in double quotes", `"); DROP TABLE rt_notes; --`},
	{"tautology", `' OR '1'='1`},
	{"single quote", `'`},
	{"two single quotes", `''`},
	{"double quote", `"`},
	{"backslash", `\`},
	{"escaped quote", `\'`},
	{"backslashes", `C:\new\table\\x00\n`},
	{"placeholders", `$1 ? :name %s %d {}`},
	{"empty", ""},
	{"spaces", "  leading and trailing  "},
	{"tab, newline, carriage return", "a\tb\nc\r\nd"},
	{"control characters", "\x01\x02\x07\x08\x0b\x0c\x1b\x1f\x7f"},
	{"latin", "Ærøskøbing, Zürich, façade"},
	{"emoji", "😀🎉"},
	{"family emoji", "👩‍👩‍👧‍👦"},
	{"non-BMP", "𝄞 𐍈 𠜎 \U0010FFFF"},
	{"byte order mark", "\uFEFFbom"},
	{"right-to-left override", "abc\u202Edef"},
	{"combining", "e\u0301 n\u0303"},
	{"line and paragraph separators", "\u2028\u2029"},
	{"replacement character", "\uFFFD"},
}

// rtMegabyte returns a string of 1 MiB (or a few bytes more, to end on a
// whole rune) made of all of rtStrings over and over, so that it is not a
// run of one byte.
func rtMegabyte() string {
	var b strings.Builder
	for b.Len() < 1<<20 {
		for _, s := range rtStrings {
			b.WriteString(s.s)
		}
	}
	return b.String()
}

// rtSame reports a mismatch of two strings by its first differing byte,
// not by printing a megabyte.
func rtSame(t testing.TB, what, want, got string) {
	t.Helper()
	if want == got {
		return
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	t.Errorf("%s: got %d bytes, want %d; they differ from byte %d: got %q, want %q",
		what, len(got), len(want), i, got[i:min(len(got), i+32)], want[i:min(len(want), i+32)])
}

func TestRoundTripStrings(t *testing.T) {
	big := rtMegabyte()
	require.True(t, utf8.ValidString(big))
	forEachBackend(t, func(t *testing.T, b *backend) {
		for _, s := range rtDDL {
			b.raw.exec(t, s)
		}
		ctx := context.Background()
		m := rtMapping(t)
		repo, err := NewRepository[*rtNote, int64](b.db, m)
		require.NoError(t, err)

		texts := make([]string, 0, len(rtStrings)+1)
		for _, s := range rtStrings {
			texts = append(texts, s.s)
		}
		texts = append(texts, big)
		name := func(i int) string {
			if i < len(rtStrings) {
				return rtStrings[i].name
			}
			return "1 MiB"
		}

		// Each string in a root column and in a child column, and, but
		// for the megabyte, in the fixture's sku column (which has a
		// unique index).
		for i, s := range texts {
			n := &rtNote{id: int64(i + 1), body: s, lines: []*rtLine{{id: 1, text: s}, {id: 2, text: s + s}}}
			require.NoError(t, repo.Save(ctx, n), name(i))
		}
		o := newOrder(1, "alice")
		for i, s := range texts[:len(rtStrings)] {
			o.add(&item{id: itemID(i + 1), sku: s, quantity: 1})
		}
		require.NoError(t, b.repo(t).Save(ctx, o))

		check := func(t *testing.T, id int64, body, line, line2 string) {
			t.Helper()
			got, err := NewStore[*rtNote, int64](b.quiet, rtMapping(t)).Select(ctx, id)
			require.NoError(t, err)
			rtSame(t, "body", body, got.body)
			require.Len(t, got.lines, 2)
			rtSame(t, "line 1", line, got.lines[0].text)
			rtSame(t, "line 2", line2, got.lines[1].text)
		}
		for i, s := range texts {
			t.Run("insert/"+name(i), func(t *testing.T) { check(t, int64(i+1), s, s, s+s) })
		}
		loaded, err := b.repo(t).Find(ctx, 1)
		require.NoError(t, err)
		require.Len(t, loaded.items, len(rtStrings))
		for i, it := range loaded.items {
			rtSame(t, "sku "+name(i), texts[i], it.sku)
		}

		// Changed through Update, in a transaction: each note takes the
		// next string, in the UPDATEs of a root and of a child column.
		fresh, err := NewRepository[*rtNote, int64](b.db, rtMapping(t))
		require.NoError(t, err)
		for i := range texts {
			next := texts[(i+1)%len(texts)]
			require.NoError(t, fresh.Update(ctx, int64(i+1), func(_ context.Context, n *rtNote) error {
				n.body = next
				n.lines[0].text = next
				return nil
			}), name(i))
		}
		for i, s := range texts {
			next := texts[(i+1)%len(texts)]
			t.Run("update/"+name(i), func(t *testing.T) { check(t, int64(i+1), next, next, s+s) })
		}

		// Nothing was taken for SQL: every table is still there, with its
		// rows.
		assert.EqualValues(t, 2, b.raw.count(t, "SELECT count(*) FROM customers"))
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM orders"))
		assert.EqualValues(t, len(rtStrings), b.raw.count(t, "SELECT count(*) FROM order_items"))
		assert.EqualValues(t, len(texts), b.raw.count(t, "SELECT count(*) FROM rt_notes"))
		assert.EqualValues(t, 2*len(texts), b.raw.count(t, "SELECT count(*) FROM rt_note_lines"))
	})
}

// TestRoundTripStringsNotUTF8 saves strings that are not valid UTF-8 text
// (a NUL byte, bytes that are not UTF-8). SQLite stores the bytes of a
// TEXT value as they are given, and modernc binds a string with its length,
// so they come back unchanged. PostgreSQL refuses both in a text column
// (SQLSTATE 22021, character_not_in_repertoire), so the save fails there,
// atomically. MariaDB stores a NUL and, in strict mode, refuses most bytes
// that are not UTF-8 (error 1366, incorrect string value), atomically too;
// what it stores comes back unchanged.
func TestRoundTripStringsNotUTF8(t *testing.T) {
	texts := []string{"x\x00y", "\x00", "a\xffb", "\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80"}
	forEachBackend(t, func(t *testing.T, b *backend) {
		for _, s := range rtDDL {
			b.raw.exec(t, s)
		}
		ctx := context.Background()
		repo, err := NewRepository[*rtNote, int64](b.db, rtMapping(t))
		require.NoError(t, err)
		for i, s := range texts {
			id := int64(i + 1)
			// The first line is valid text: on PostgreSQL only the second
			// row of the child INSERT fails, after the root's INSERT.
			err := repo.Save(ctx, &rtNote{id: id, body: "valid", lines: []*rtLine{{id: 1, text: "valid"}, {id: 2, text: s}}})
			if b.mysql() && (err == nil || utf8.ValidString(s)) {
				// Stored (a NUL, and some sequences that are not UTF-8):
				// then as it was given.
				require.NoError(t, err, "%q", s)
				got, err := NewStore[*rtNote, int64](b.quiet, rtMapping(t)).Select(ctx, id)
				require.NoError(t, err)
				require.Len(t, got.lines, 2)
				rtSame(t, fmt.Sprintf("%q", s), s, got.lines[1].text)
				continue
			}
			if b.mysql() {
				var me *mysql.MySQLError
				if assert.True(t, errors.As(err, &me), "%q: got %v, want a *mysql.MySQLError", s, err) {
					assert.EqualValues(t, 1366, me.Number, "%q: %v", s, err)
				}
				assert.EqualValues(t, 0, b.raw.count(t, "SELECT count(*) FROM rt_notes WHERE id = ?", id), "%q: the root row of a failed save", s)
				assert.EqualValues(t, 0, b.raw.count(t, "SELECT count(*) FROM rt_note_lines WHERE note_id = ?", id), "%q", s)
				continue
			}
			if b.postgres() {
				var pe *pgconn.PgError
				if assert.True(t, errors.As(err, &pe), "%q: got %v, want a *pgconn.PgError", s, err) {
					assert.Equal(t, "22021", pe.Code, "%q: %v", s, err)
				}
				assert.EqualValues(t, 0, b.raw.count(t, "SELECT count(*) FROM rt_notes WHERE id = ?", id), "%q: the root row of a failed save", s)
				assert.EqualValues(t, 0, b.raw.count(t, "SELECT count(*) FROM rt_note_lines WHERE note_id = ?", id), "%q", s)
				continue
			}
			require.NoError(t, err, "%q", s)
			got, err := NewStore[*rtNote, int64](b.quiet, rtMapping(t)).Select(ctx, id)
			require.NoError(t, err)
			require.Len(t, got.lines, 2)
			rtSame(t, fmt.Sprintf("%q", s), s, got.lines[1].text)
		}
	})
}

// The fuzzed aggregate: a root with mapped integers and text, an unmapped
// field, a version, and children with mapped and unmapped fields.

type fzCart struct {
	id      int64  `db:"id"`
	owner   string `db:"owner"`
	total   int64  `db:"total"`
	memo    string `db:"-"` // not stored
	lines   []*fzLine
	version int64 `db:"version" ddd:"version"`
}

func (c *fzCart) ID() int64 { return c.id }

type fzLine struct {
	id   int64  `db:"id" ddd:"id"`
	sku  string `db:"sku"`
	qty  int32  `db:"qty"`
	memo string `db:"-"` // not stored
}

var fzDDL = []string{
	`CREATE TABLE fz_carts (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, total INTEGER NOT NULL, version INTEGER NOT NULL)`,
	`CREATE TABLE fz_cart_lines (
		cart_id INTEGER NOT NULL REFERENCES fz_carts (id),
		id INTEGER NOT NULL,
		sku TEXT NOT NULL,
		qty INTEGER NOT NULL,
		PRIMARY KEY (cart_id, id)
	)`,
}

var fzCmp = cmp.AllowUnexported(fzCart{}, fzLine{})

// fzStored is c as the database stores it: without its unmapped fields,
// children in key order, no children as nil.
func fzStored(c *fzCart) *fzCart {
	s := *c
	s.memo, s.lines = "", nil
	for _, l := range c.lines {
		cp := *l
		cp.memo = ""
		s.lines = append(s.lines, &cp)
	}
	slices.SortFunc(s.lines, func(a, b *fzLine) int { return cmpInt(a.id, b.id) })
	return &s
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fzSame reports whether a and b hold the same values, children matched by
// identity whatever their order: what the repository must find changed or
// not.
func fzSame(a, b *fzCart) bool {
	x, y := *a, *b
	x.lines, y.lines = nil, nil
	x.version, y.version = 0, 0
	if !cmp.Equal(&x, &y, fzCmp) || len(a.lines) != len(b.lines) {
		return false
	}
	byID := make(map[int64]fzLine, len(a.lines))
	for _, l := range a.lines {
		byID[l.id] = *l
	}
	for _, l := range b.lines {
		if m, ok := byID[l.id]; !ok || m != *l {
			return false
		}
	}
	return true
}

// fzClone copies c, children included.
func fzClone(c *fzCart) *fzCart {
	s := *c
	s.lines = nil
	for _, l := range c.lines {
		cp := *l
		s.lines = append(s.lines, &cp)
	}
	return &s
}

// fzFreeID returns an identity derived from seed that no line of c has.
func fzFreeID(c *fzCart, seed int64) int64 {
	for {
		taken := false
		for _, l := range c.lines {
			taken = taken || l.id == seed
		}
		if !taken {
			return seed
		}
		seed++
	}
}

// fzBuild makes the aggregate of the fuzzed inputs: one child per
// comma-separated part of skus (eight at most), with identities derived
// from the parts, made distinct.
func fzBuild(id int64, owner string, total int64, skus string) *fzCart {
	c := &fzCart{id: id, owner: owner, total: total, memo: "memo of " + owner}
	if skus == "" {
		return c
	}
	for k, p := range strings.SplitN(skus, ",", 9)[:min(8, strings.Count(skus, ",")+1)] {
		lid := fzFreeID(c, int64(crc32.ChecksumIEEE([]byte(p)))-1<<31)
		c.lines = append(c.lines, &fzLine{id: lid, sku: p, qty: int32(total) ^ int32(k), memo: p})
	}
	return c
}

// fzMutate applies the changes that ops encode: change a child's mapped or
// unmapped field, add a child, remove one, reorder, change the root's
// fields. Each byte is one change; the low three bits choose it.
func fzMutate(c *fzCart, ops []byte) {
	for _, op := range ops {
		n := len(c.lines)
		k := int(op >> 3)
		switch op & 7 {
		case 0:
			if n > 0 {
				c.lines[k%n].sku += string([]byte{op}) // possibly not UTF-8
			}
		case 1:
			if n > 0 {
				c.lines[k%n].qty = c.lines[k%n].qty*31 + int32(op)
			}
		case 2, 3:
			if n < 16 {
				lid := fzFreeID(c, int64(op)*7919-1000)
				c.lines = append(c.lines, &fzLine{id: lid, sku: fmt.Sprintf("added %d", op), qty: int32(op)})
			}
		case 4:
			if n > 0 {
				c.lines = slices.Delete(c.lines, k%n, k%n+1)
			}
		case 5:
			if n > 1 {
				c.lines[0], c.lines[n-1] = c.lines[n-1], c.lines[0] // not a change
			}
			c.owner += string([]byte{op})
		case 6:
			c.total ^= int64(op) << (op % 56)
		case 7:
			if n > 0 && op&0x80 != 0 {
				c.lines[k%n].memo += "!"
			} else {
				c.memo += "!"
			}
		}
	}
}

// fzIDs makes every fuzz call's root key unique in the worker's database:
// the low 32 bits count the calls, the high ones come from the input.
var fzIDs atomic.Uint32

// FuzzSaveLoad saves an aggregate built from the fuzzed input through a
// repository, loads it back with a fresh Store, and compares it with the
// stored form of what was saved; then changes it, saves and compares
// again, twice: on the tracked aggregate itself, then in an Update of a
// fresh repository. Each save must advance the version exactly when
// something stored changed: a change of fields excluded with `db:"-"`
// alone is none.
//
// Strings are not normalized: SQLite keeps the bytes of TEXT values as
// they are bound, NUL bytes and invalid UTF-8 included (see
// TestRoundTripStringsNotUTF8), so the round trip holds for any Go string.
//
// The database is a SQLite file, created once per fuzzing process.
func FuzzSaveLoad(f *testing.F) {
	dsn := "file:" + filepath.Join(f.TempDir(), "fuzz.db") +
		"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)"
	x, err := sqlx.Open("sqlite", dsn)
	require.NoError(f, err)
	f.Cleanup(func() { x.Close() })
	for _, s := range fzDDL {
		_, err := x.Exec(s)
		require.NoError(f, err)
	}
	db, err := NewSQL(x)
	require.NoError(f, err)
	m, err := NewMapping[*fzCart](Table{Name: "fz_carts"}, Child{Field: "lines", Table: "fz_cart_lines", ParentKey: "cart_id"})
	require.NoError(f, err)
	raw := sqlRaw{x}

	f.Fuzz(func(t *testing.T, owner string, total int64, skus string, ops []byte) {
		ctx := context.Background()
		ops = ops[:min(len(ops), 64)]
		id := total&^0xffffffff | int64(fzIDs.Add(1))
		load := func() *fzCart {
			t.Helper()
			got, err := NewStore[*fzCart, int64](db, m).Select(ctx, id)
			require.NoError(t, err)
			return got
		}
		repo, err := NewRepository[*fzCart, int64](db, m)
		require.NoError(t, err)

		c := fzBuild(id, owner, total, skus)
		require.NoError(t, repo.Save(ctx, c))
		if d := cmp.Diff(fzStored(c), load(), fzCmp); d != "" {
			t.Fatalf("after the insert (-saved +loaded):\n%s", d)
		}

		// Change the tracked aggregate.
		half := len(ops) / 2
		before := fzClone(c)
		fzMutate(c, ops[:half])
		require.NoError(t, repo.Save(ctx, c))
		want := before.version
		if !fzSame(fzStored(before), fzStored(c)) {
			want++
		}
		assert.Equal(t, want, c.version, "the version advances once for a change, not at all without one")
		if d := cmp.Diff(fzStored(c), load(), fzCmp); d != "" {
			t.Fatalf("after the first change (-saved +loaded):\n%s", d)
		}

		// Change it as loaded, in an Update of a fresh repository.
		fresh, err := NewRepository[*fzCart, int64](db, m)
		require.NoError(t, err)
		var changed, loaded *fzCart
		require.NoError(t, fresh.Update(ctx, id, func(_ context.Context, c *fzCart) error {
			loaded = fzClone(c)
			fzMutate(c, ops[half:])
			changed = c
			return nil
		}))
		if d := cmp.Diff(fzStored(c), fzStored(loaded), fzCmp); d != "" {
			t.Fatalf("Update loaded (-saved +loaded):\n%s", d)
		}
		want = loaded.version
		if !fzSame(fzStored(loaded), fzStored(changed)) {
			want++
		}
		assert.Equal(t, want, changed.version, "the version of the Update's save")
		if d := cmp.Diff(fzStored(changed), load(), fzCmp); d != "" {
			t.Fatalf("after the Update (-saved +loaded):\n%s", d)
		}

		require.NoError(t, fresh.Remove(ctx, changed))
		assert.EqualValues(t, 0, raw.count(t, "SELECT count(*) FROM fz_carts WHERE id = ?", id))
		assert.EqualValues(t, 0, raw.count(t, "SELECT count(*) FROM fz_cart_lines WHERE cart_id = ?", id))
	})
}
