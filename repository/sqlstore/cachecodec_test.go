package sqlstore

import (
	"context"
	"database/sql"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/repository"
)

// The cache codec: what Decode makes of Encode of an aggregate loaded
// from the database equals that load, for every kind the mapping
// supports, on every backend.

type ccLevel string

type ccMoney struct {
	amount   int64  `db:"amount"`
	currency string `db:"currency"`
}

type ccAddr struct {
	street string  `db:"street"`
	zip    *string `db:"zip"`
}

// ccMeta is stored as JSON: exported fields only.
type ccMeta struct {
	Source string            `json:"source"`
	Seen   []time.Time       `json:"seen"`
	Attrs  map[string]string `json:"attrs"`
}

type ccRoot struct {
	id      int64          `db:"id,generated"`
	name    string         `db:"name"`
	note    *string        `db:"note"`
	blob    []byte         `db:"blob"`
	big     int64          `db:"big"`
	huge    uint64         `db:"huge"`
	tiny    int8           `db:"tiny"`
	ratio   float64        `db:"ratio"`
	small   float32        `db:"small"`
	flag    bool           `db:"flag"`
	at      time.Time      `db:"at"`
	until   *time.Time     `db:"until_at"`
	nick    sql.NullString `db:"nick"`
	seen    sql.NullTime   `db:"seen_at"`
	count   sql.NullInt64  `db:"count"`
	level   ccLevel        `db:"level"`
	total   ccMoney
	ship    ccAddr            `db:"ship_,prefix"`
	labels  map[string]int    `db:"labels,json"`
	meta    *ccMeta           `db:"meta,json"`
	lines   []*ccLine         // generated keys, positions, two levels below
	tags    map[string]ccTag  // a map keyed by identity
	version int64             `db:"version" ddd:"version"`
	extra   map[string]string `db:"-"`
}

func (r *ccRoot) ID() int64 { return r.id }

type ccLine struct {
	id   int64  `db:"id,generated" ddd:"id"`
	sku  string `db:"sku"`
	qty  int32  `db:"qty"`
	opts []ccOpt
}

type ccOpt struct {
	id    string `db:"id" ddd:"id"`
	text  string `db:"text"`
	notes []*ccNote
}

type ccNote struct {
	id   int64      `db:"id" ddd:"id"`
	body string     `db:"body"`
	at   *time.Time `db:"at"`
}

type ccTag struct {
	name  string `db:"name" ddd:"id"`
	score int16  `db:"score"`
}

func ccMapping(t testing.TB) *Mapping[*ccRoot] {
	t.Helper()
	m, err := NewMapping[*ccRoot](Table{Name: "cc_roots"},
		Child{Field: "lines", Table: "cc_lines", ParentKey: "root_id", Position: "pos", Children: []Child{
			{Field: "opts", Table: "cc_opts", ParentKey: "line_id", ParentKeyOnly: true, Position: "pos", Children: []Child{
				{Field: "notes", Table: "cc_notes", ParentKey: "opt_id"},
			}},
		}},
		Child{Field: "tags", Table: "cc_tags", Key: "name", ParentKey: "root_id"},
	)
	require.NoError(t, err)
	return m
}

// createTables creates the tables of m with its DDL.
func createTables[T any](t testing.TB, b *backend, m *Mapping[T]) {
	t.Helper()
	ddl, err := m.DDL(b.database())
	require.NoError(t, err)
	for _, s := range statements(ddl) {
		b.raw.exec(t, s)
	}
}

// ccFull returns an aggregate with a value of every kind, NULLs and
// extremes among them, and children at three levels.
func ccFull(big string) *ccRoot {
	at := time.Date(2024, 2, 29, 23, 59, 59, 123456000, time.FixedZone("X", 5*3600+1800))
	return &ccRoot{
		name: big, note: ptr("a note"), blob: []byte{0, 1, 2, 0xff, 0},
		big: math.MinInt64, huge: math.MaxInt64, tiny: -128, ratio: -math.MaxFloat64, small: math.SmallestNonzeroFloat32,
		flag: true, at: at, until: ptr(at.Add(time.Hour)),
		nick: sql.NullString{String: "nick", Valid: true}, seen: sql.NullTime{Time: at, Valid: true},
		level: "gold", total: ccMoney{amount: math.MaxInt64, currency: "EUR"},
		ship:   ccAddr{street: "Rue de l'Église 1", zip: ptr("75001")},
		labels: map[string]int{"a": 1, "é": -2, "": 0},
		meta:   &ccMeta{Source: "import", Seen: []time.Time{at.UTC()}, Attrs: map[string]string{"k": "v"}},
		lines: []*ccLine{
			{sku: "B", qty: math.MaxInt32, opts: []ccOpt{
				{id: "z", text: "last by key, first by position", notes: []*ccNote{{id: 2, body: "two"}, {id: 1, body: "one", at: ptr(at)}}},
				{id: "a", text: "", notes: nil},
			}},
			{sku: "A", qty: math.MinInt32},
			{sku: "C", qty: 0, opts: []ccOpt{{id: "m", text: strings.Repeat("x", 10_000)}}},
		},
		tags: map[string]ccTag{"red": {name: "red", score: math.MaxInt16}, "blue": {name: "blue", score: math.MinInt16}},
	}
}

// ccEmpty returns an aggregate whose every nullable column is NULL and
// every collection is empty.
func ccEmpty() *ccRoot {
	return &ccRoot{name: "", blob: []byte{}, at: time.Unix(0, 0).UTC()}
}

// roundTrip checks that Decode(Encode(loaded)) equals loaded, with
// diff.Equal and with reflect.DeepEqual.
func roundTrip[T any, ID comparable](t *testing.T, s *Store[T, ID], loaded T) []byte {
	t.Helper()
	b, err := s.Encode(loaded)
	require.NoError(t, err)
	got, err := s.Decode(b)
	require.NoError(t, err)
	same, err := diff.Equal(loaded, got)
	require.NoError(t, err)
	assert.True(t, same, "decoded:\n%+v\nloaded:\n%+v", got, loaded)
	assert.True(t, reflect.DeepEqual(loaded, got), "decoded:\n%+v\nloaded:\n%+v", got, loaded)
	// Read straight into the fields, as the replay through database/sql
	// reads it.
	assert.True(t, differ(t, s, b, "a loaded aggregate"), "the direct decoder reads it: %s", firstRefused(s, b))
	// What is decoded encodes to as many bytes (in another order where
	// a collection is a map), which decode to the same aggregate.
	again, err := s.Encode(got)
	require.NoError(t, err)
	assert.Len(t, again, len(b))
	got, err = s.Decode(again)
	require.NoError(t, err)
	assert.True(t, reflect.DeepEqual(loaded, got), "decoded twice:\n%+v\nloaded:\n%+v", got, loaded)
	return b
}

func TestCacheCodecRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		m := ccMapping(t)
		createTables(t, b, m)
		repo, err := NewRepository[*ccRoot, int64](b.db, m)
		require.NoError(t, err)
		s := NewStore[*ccRoot, int64](b.quiet, m)

		full := ccFull(rtMegabyte())
		if b.database() == PostgreSQL {
			full.huge = math.MaxUint64 // numeric(20); SQLite's integers stop at MaxInt64
		}
		for _, tc := range []struct {
			name string
			agg  *ccRoot
		}{
			{"every kind, a megabyte of text, extremes, three levels", full},
			{"NULLs and no children", ccEmpty()},
		} {
			t.Run(tc.name, func(t *testing.T) {
				require.NoError(t, repo.Save(ctx, tc.agg))
				require.NotZero(t, tc.agg.id)
				loaded, err := s.Select(ctx, tc.agg.id)
				require.NoError(t, err)
				roundTrip(t, s, loaded)
			})
		}

		// After changes: a reorder, an element moved, one removed, a
		// version advanced.
		agg := ccFull("changed")
		require.NoError(t, repo.Save(ctx, agg))
		got, err := repo.Find(ctx, agg.id)
		require.NoError(t, err)
		got.lines[0], got.lines[2] = got.lines[2], got.lines[0]
		got.lines[1].opts = append(got.lines[1].opts, got.lines[2].opts[1])
		got.lines[2].opts = got.lines[2].opts[:1]
		delete(got.tags, "red")
		got.note, got.meta, got.labels = nil, nil, nil
		require.NoError(t, repo.Save(ctx, got))
		loaded, err := s.Select(ctx, agg.id)
		require.NoError(t, err)
		require.Equal(t, int64(1), loaded.version)
		roundTrip(t, s, loaded)
	})
}

// ccArrays has array columns, which only PostgreSQL stores.
type ccArrays struct {
	id     int64       `db:"id"`
	ints   []int64     `db:"ints,array"`
	small  []int16     `db:"small,array"`
	strs   []string    `db:"strs,array"`
	floats []float64   `db:"floats,array"`
	bools  []bool      `db:"bools,array"`
	times  []time.Time `db:"times,array"`
	empty  []int32     `db:"empty,array"`
	none   []string    `db:"none,array"`
}

func (a *ccArrays) ID() int64 { return a.id }

func TestCacheCodecArrays(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		if b.database() != PostgreSQL {
			t.Skip("arrays are PostgreSQL's")
		}
		ctx := context.Background()
		m, err := NewMapping[*ccArrays](Table{Name: "cc_arrays"})
		require.NoError(t, err)
		createTables(t, b, m)
		b.raw.exec(t, `ALTER TABLE cc_arrays ALTER COLUMN none DROP NOT NULL`)
		repo, err := NewRepository[*ccArrays, int64](b.db, m)
		require.NoError(t, err)
		at := time.Date(2001, 2, 3, 4, 5, 6, 789000, time.UTC)
		a := &ccArrays{
			id: 1, ints: []int64{math.MinInt64, 0, math.MaxInt64}, small: []int16{-1, 1},
			strs:   []string{"", "a,b", `"quoted"`, `back\slash`, "NULL", "{braces}", " spaced ", "é😀"},
			floats: []float64{math.MaxFloat64, -0.5, math.SmallestNonzeroFloat64, 1.0 / 3},
			bools:  []bool{true, false}, times: []time.Time{at, at.Add(-time.Hour)},
			empty: []int32{},
		}
		require.NoError(t, repo.Save(ctx, a))
		s := NewStore[*ccArrays, int64](b.quiet, m)
		loaded, err := s.Select(ctx, 1)
		require.NoError(t, err)
		require.NotNil(t, loaded.empty, "an empty array loads as an empty slice")
		require.Nil(t, loaded.none, "a NULL array loads as a nil slice")
		roundTrip(t, s, loaded)
	})
}

// TestCacheCodecRefuses: what the store would not write, Encode refuses,
// and Decode refuses whatever is not an entry of its mapping, never
// panicking.
func TestCacheCodecRefuses(t *testing.T) {
	b := sqliteBackend(t)
	m := ccMapping(t)
	s := NewStore[*ccRoot, int64](b.db, m)

	_, err := s.Encode(nil)
	assert.ErrorIs(t, err, repository.ErrUnsupported, "a nil aggregate")
	dup := ccFull("dup")
	dup.lines[0].opts[1].id = dup.lines[0].opts[0].id
	_, err = s.Encode(dup)
	assert.ErrorIs(t, err, repository.ErrDuplicateID, "two elements of one identity")
	nilElem := ccFull("nil")
	nilElem.lines[1] = nil
	_, err = s.Encode(nilElem)
	assert.ErrorIs(t, err, repository.ErrNilEntity, "a nil element")

	good, err := s.Encode(ccFull("ok"))
	require.NoError(t, err)
	for n := range len(good) {
		_, err := s.Decode(good[:n])
		assert.ErrorIs(t, err, ErrCacheEntry, "cut to %d of %d bytes", n, len(good))
	}
	_, err = s.Decode(append(good[:len(good):len(good)], 0))
	assert.ErrorIs(t, err, ErrCacheEntry, "a byte past the end")
	bad := append([]byte(nil), good...)
	bad[0]++
	_, err = s.Decode(bad)
	assert.ErrorIs(t, err, ErrCacheEntry, "another format")

	// Another mapping of the same type: another fingerprint, refused.
	other, err := NewMapping[*ccRoot](Table{Name: "cc_roots"},
		Child{Field: "lines", Table: "cc_lines", ParentKey: "root_id", Children: []Child{
			{Field: "opts", Table: "cc_opts", ParentKey: "line_id", ParentKeyOnly: true, Position: "pos", Children: []Child{
				{Field: "notes", Table: "cc_notes", ParentKey: "opt_id"},
			}},
		}},
		Child{Field: "tags", Table: "cc_tags", Key: "name", ParentKey: "root_id"},
	)
	require.NoError(t, err)
	os := NewStore[*ccRoot, int64](b.db, other)
	assert.NotEqual(t, s.Fingerprint(), os.Fingerprint(), "a position column less")
	_, err = os.Decode(good)
	assert.ErrorIs(t, err, ErrCacheEntry)

	// A Scanner that refuses the value: its error, not a panic.
	_, err = NewStore[*ccRoot, int64](nil, m).Decode(good)
	assert.Error(t, err, "a store without a DB")
	assert.Empty(t, NewStore[*ccRoot, int64](nil, m).Fingerprint())
}

// TestCacheFingerprint: the fingerprint changes with the mapping and the
// types, and is the same for the same mapping on any backend.
func TestCacheFingerprint(t *testing.T) {
	b := sqliteBackend(t)
	fp := func(m *Mapping[*order]) string { return NewStore[*order, orderID](b.db, m).Fingerprint() }
	base := fp(orderMapping(t))
	require.Len(t, base, 16)
	assert.Equal(t, base, fp(orderMapping(t)), "the same mapping")
	renamed, err := NewMapping[*order](Table{Name: "orders"}, Child{Field: "items", Table: "order_lines", ParentKey: "order_id"})
	require.NoError(t, err)
	assert.NotEqual(t, base, fp(renamed), "a child table renamed")
	type v2 struct {
		id    int64  `db:"id"`
		label string `db:"name"`
	}
	m2, err := NewMapping[*v2](Table{Name: "t"})
	require.NoError(t, err)
	type v4 struct {
		id    int64 `db:"id"`
		label int64 `db:"name"`
	}
	m4, err := NewMapping[*v4](Table{Name: "t"})
	require.NoError(t, err)
	assert.NotEqual(t, NewStore[*v2, int64](b.db, m2).Fingerprint(), NewStore[*v4, int64](b.db, m4).Fingerprint(), "a column's type changed")
	// A pool that never connects: the fingerprint is the mapping's, not
	// the database's.
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	require.NoError(t, err)
	defer pool.Close()
	assert.Equal(t, base, NewStore[*order, orderID](NewPGX(pool), orderMapping(t)).Fingerprint(), "PostgreSQL's store, the same mapping")
}
