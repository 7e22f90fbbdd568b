package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/internal/typeinfo"
)

// The direct decoder against the replay through database/sql, which is
// the reference: for every field type the direct decoder reads and every
// value an entry can hold, either the direct decoder leaves the value to
// the replay, or it returns what the replay returns.

type dxString string
type dxBytes []byte
type dxBool bool
type dxInt int
type dxInt64 int64
type dxInt8 int8
type dxUint16 uint16
type dxFloat32 float32

// dxScanner is a sql.Scanner and driver.Valuer of its own: it records
// what it was given, and writes it back.
type dxScanner struct{ got string }

func (s dxScanner) Value() (driver.Value, error) { return s.got, nil }

func (s *dxScanner) Scan(src any) error {
	if b, ok := src.([]byte); ok && string(b) == "refuse" {
		return errors.New("dxScanner refuses")
	}
	s.got = fmt.Sprintf("%T:%v", src, src)
	return nil
}

// dxRow has a column of each type the direct decoder reads.
type dxRow struct {
	id    int64            `db:"id"`
	s     string           `db:"s"`
	ns    dxString         `db:"ns"`
	b     []byte           `db:"b"`
	nb    dxBytes          `db:"nb"`
	raw   json.RawMessage  `db:"raw"`
	bo    bool             `db:"bo"`
	nbo   dxBool           `db:"nbo"`
	i     int              `db:"i"`
	ni    dxInt            `db:"ni"`
	i8    int8             `db:"i8"`
	ni8   dxInt8           `db:"ni8"`
	i16   int16            `db:"i16"`
	i32   int32            `db:"i32"`
	i64   int64            `db:"i64"`
	ni64  dxInt64          `db:"ni64"`
	u     uint             `db:"u"`
	u8    uint8            `db:"u8"`
	nu16  dxUint16         `db:"nu16"`
	u32   uint32           `db:"u32"`
	u64   uint64           `db:"u64"`
	f32   float32          `db:"f32"`
	nf32  dxFloat32        `db:"nf32"`
	f64   float64          `db:"f64"`
	t     time.Time        `db:"t"`
	pt    *time.Time       `db:"pt"`
	ps    *string          `db:"ps"`
	pi    *int64           `db:"pi"`
	pu8   *uint8           `db:"pu8"`
	pb    *[]byte          `db:"pb"`
	pns   *dxString        `db:"pns"`
	nstr  sql.NullString   `db:"nstr"`
	ntime sql.NullTime     `db:"ntime"`
	nint  sql.NullInt64    `db:"nint"`
	nflt  sql.NullFloat64  `db:"nflt"`
	nbool sql.NullBool     `db:"nbool"`
	nbyte sql.NullByte     `db:"nbyte"`
	gen   sql.Null[int16]  `db:"gen"`
	pnull *sql.NullString  `db:"pnull"`
	own   dxScanner        `db:"own"`
	js    map[string]int   `db:"js,json"`
	pjs   *ccMeta          `db:"pjs,json"`
	arr   []int64          `db:"arr,array"`
	strs  []string         `db:"strs,array"`
	kids  []*dxKid         // pointers in a slice
	vals  []dxVal          // structs in a slice
	byKey map[string]dxVal // structs in a map
}

func (r *dxRow) ID() int64 { return r.id }

type dxKid struct {
	id   int64      `db:"id" ddd:"id"`
	at   *time.Time `db:"at"`
	name dxString   `db:"name"`
	subs []dxSub
}

type dxSub struct {
	id  int32  `db:"id" ddd:"id"`
	n   uint64 `db:"n"`
	tag string `db:"tag"`
}

type dxVal struct {
	key  string   `db:"key" ddd:"id"`
	f    float32  `db:"f"`
	kids []*dxSub // a level below a struct held by value
}

func dxMapping(t testing.TB) *Mapping[*dxRow] {
	t.Helper()
	m, err := NewMapping[*dxRow](Table{Name: "dx"},
		Child{Field: "kids", Table: "dx_kids", ParentKey: "root_id", Position: "pos", Children: []Child{
			{Field: "subs", Table: "dx_subs", ParentKey: "kid_id"},
		}},
		Child{Field: "vals", Table: "dx_vals", Key: "key", ParentKey: "root_id", Children: []Child{
			{Field: "kids", Table: "dx_val_kids", ParentKey: "val_key"},
		}},
		Child{Field: "byKey", Table: "dx_by_key", Key: "key", ParentKey: "root_id", Children: []Child{
			{Field: "kids", Table: "dx_by_key_kids", ParentKey: "val_key"},
		}},
	)
	require.NoError(t, err)
	return m
}

// offlinePG returns a DB of PostgreSQL that never connects: the codec
// needs none, and the mapping's array columns are PostgreSQL's.
func offlinePG(t testing.TB) *DB {
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return NewPGX(pool)
}

// dxValues are values of every tag an entry holds, extremes among them.
func dxValues() []any {
	zone := time.FixedZone("Z", -(3*3600 + 1800))
	at := time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.UTC)
	return []any{
		nil, false, true,
		int64(0), int64(1), int64(-1), int64(42), int64(127), int64(128), int64(-128), int64(-129),
		int64(255), int64(256), int64(32767), int64(65535), int64(65536), int64(math.MaxInt32), int64(math.MinInt32),
		int64(math.MaxUint32), int64(math.MaxUint32 + 1), int64(math.MaxInt64), int64(math.MinInt64),
		uint64(math.MaxInt64) + 1, uint64(math.MaxUint64),
		0.0, 1.5, -2.0, 0.1, 16777217.0, 3.4028234663852886e38, 3.5e38, 1e-46, math.SmallestNonzeroFloat64,
		-math.MaxFloat64, math.Inf(1),
		"", "abc", "42", "-7", "1.5", "true", "1", "refuse", "2024-01-02T03:04:05Z", `{"a":1}`, `{"source":"x"}`,
		"{1,2,3}", `{"a","b,c"}`, "null", "é😀",
		[]byte{}, []byte("xyz"), []byte("12"), []byte("refuse"), []byte(`{"b":2}`), []byte{0, 0xff},
		at, at.Local(), at.In(zone), time.Unix(0, 0).UTC(), time.Unix(-62135596800, 0).UTC(),
	}
}

// dxEntry writes an entry of s by hand: the root's values (in column
// order), then the collections as given, already encoded.
func dxEntry(t testing.TB, fp uint64, root []any, rest []byte) []byte {
	t.Helper()
	e := rowEncoder{buf: []byte{cacheFormat}}
	e.buf = binary.LittleEndian.AppendUint64(e.buf, fp)
	for _, v := range root {
		require.NoError(t, e.value(v))
	}
	return append(e.buf, rest...)
}

// differ decodes b both ways and checks that the direct decoder agrees
// with the replay, and Decode with both; it reports whether the direct
// decoder read it.
func differ[T any, ID comparable](t *testing.T, s *Store[T, ID], b []byte, what string) bool {
	t.Helper()
	c, err := s.cacheState()
	require.NoError(t, err)
	require.NotNil(t, c.plan, "the mapping has a direct decoder")
	want, wantErr := s.decodeReplay(b)
	got, err := s.Decode(b)
	if wantErr != nil {
		require.Error(t, err, "%s: the replay fails (%v), Decode must too", what, wantErr)
		assert.Equal(t, wantErr.Error(), err.Error(), what)
	} else {
		require.NoError(t, err, what)
		require.True(t, reflect.DeepEqual(want, got), "%s:\ndecoded: %+v\nreplay:  %+v", what, got, want)
	}
	p, err := c.plan.decode(b[9:])
	if err != nil {
		return false
	}
	require.NoError(t, wantErr, "%s: the direct decoder reads what the replay refuses", what)
	direct := reflect.NewAt(s.m.root.typ, p).Interface().(T)
	require.True(t, reflect.DeepEqual(want, direct), "%s:\ndirect: %+v\nreplay: %+v", what, direct, want)
	return true
}

// dxFull returns a row with a value in every column.
func dxFull() *dxRow {
	at := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.FixedZone("W", 3600))
	return &dxRow{
		id: 1, s: "s", ns: "ns", b: []byte("b"), nb: dxBytes("nb"), raw: json.RawMessage(`{"r":1}`), bo: true, nbo: true,
		i: -1, ni: 2, i8: -8, ni8: 8, i16: -16, i32: -32, i64: math.MinInt64, ni64: 64, u: 1, u8: 255, nu16: 16, u32: 32,
		u64: math.MaxUint64, f32: 0.1, nf32: -3.25, f64: math.Pi, t: at, pt: &at, ps: ptr("ps"), pi: ptr(int64(-3)),
		pu8: ptr(uint8(9)), pb: ptr([]byte("pb")), pns: ptr(dxString("pns")),
		nstr: sql.NullString{String: "n", Valid: true}, ntime: sql.NullTime{Time: at, Valid: true},
		nint: sql.NullInt64{Int64: 7, Valid: true}, nflt: sql.NullFloat64{Float64: 0.5, Valid: true},
		nbool: sql.NullBool{Bool: true, Valid: true}, nbyte: sql.NullByte{Byte: 200, Valid: true},
		gen: sql.Null[int16]{V: -7, Valid: true}, pnull: &sql.NullString{String: "p", Valid: true},
		js: map[string]int{"a": 1}, pjs: &ccMeta{Source: "x"}, arr: []int64{1, -2}, strs: []string{"a", "b,c", ""},
	}
}

// natural returns the values Encode writes for the root row of agg.
func natural[T any, ID comparable](t testing.TB, s *Store[T, ID], agg T) []any {
	out := make([]any, len(s.m.root.cols))
	for i := range s.m.root.cols {
		col := &s.m.root.cols[i]
		v, err := cacheValue(col, col.value(typeinfo.PtrOf(agg)))
		require.NoError(t, err, col.name)
		out[i] = v
	}
	return out
}

// TestCacheDecodeDirectColumns: each column of each type, with each value
// an entry can hold, the others as Encode writes them: the direct decoder
// reads what Encode writes, and either leaves a value to the replay or
// agrees with it, NULLs, overflows, other types and refusing Scanners
// included.
func TestCacheDecodeDirectColumns(t *testing.T) {
	s := NewStore[*dxRow, int64](offlinePG(t), dxMapping(t))
	c, err := s.cacheState()
	require.NoError(t, err)
	require.NotNil(t, c.plan)

	kidsNone := []byte{0, 0, 0} // three empty collections
	// The zero row, but for the byte slices of types of their own: NULL
	// cannot be read into them (database/sql refuses it).
	zero := &dxRow{nb: dxBytes{}, raw: json.RawMessage("null")}
	for _, base := range []*dxRow{dxFull(), zero} {
		row := natural(t, s, base)
		entry := dxEntry(t, c.fp, row, kidsNone)
		require.True(t, differ(t, s, entry, "the values Encode writes"),
			"the direct decoder reads every value Encode writes: %v", firstRefused(s, entry))
		for i := range row {
			for _, v := range dxValues() {
				r := append([]any(nil), row...)
				r[i] = v
				differ(t, s, dxEntry(t, c.fp, r, kidsNone), fmt.Sprintf("column %s = %T %#v", s.m.root.cols[i].name, v, v))
			}
		}
	}
}

// firstRefused names the first column of the root row of entry that the
// direct decoder refuses, and why.
func firstRefused[T any, ID comparable](s *Store[T, ID], entry []byte) string {
	c, err := s.cacheState()
	if err != nil {
		return err.Error()
	}
	d := rowDecoder{b: entry[9:]}
	base := reflect.New(s.m.root.typ).UnsafePointer()
	for i, set := range c.plan.root.sets {
		if err := set(&d, unsafe.Add(base, s.m.root.cols[i].offset)); err != nil {
			return fmt.Sprintf("column %s: %v", s.m.root.cols[i].name, err)
		}
	}
	return "none"
}

// TestCacheDecodeDirectRandom: random aggregates, with collections of
// pointers, of structs and maps of structs, two levels deep, and random
// values in random columns, read both ways.
func TestCacheDecodeDirectRandom(t *testing.T) {
	s := NewStore[*dxRow, int64](offlinePG(t), dxMapping(t))
	c, err := s.cacheState()
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	values := dxValues()
	pick := func(natural any, odds int) any {
		if rng.IntN(odds) == 0 {
			return values[rng.IntN(len(values))]
		}
		return natural
	}
	at := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	read := 0
	const trials = 1000
	for trial := range trials {
		var rest rowEncoder
		row := func(vals ...any) {
			for _, v := range vals {
				require.NoError(t, rest.value(pick(v, 30)))
			}
		}
		count := func(max int) int {
			n := rng.IntN(max + 1)
			rest.buf = binary.AppendUvarint(rest.buf, uint64(n))
			return n
		}
		// kids: id, at, name; then subs: id, n, tag.
		for k := range count(4) {
			row(int64(k+1), at.Add(time.Duration(k)*time.Hour), fmt.Sprintf("kid %d", k))
			for j := range count(3) {
				row(int64(j+1), uint64(j)<<62, strings.Repeat("t", j))
			}
		}
		// vals, then byKey: key, f; then kids: id, n, tag.
		for range 2 {
			for k := range count(3) {
				row(fmt.Sprintf("k%d", k), float64(k)/3)
				for j := range count(2) {
					row(int64(j+1), uint64(j), "x")
				}
			}
		}
		root := natural(t, s, dxFull())
		for i := range root {
			root[i] = pick(root[i], 4*len(root))
		}
		root[s.m.root.key] = int64(trial + 1)
		if differ(t, s, dxEntry(t, c.fp, root, rest.buf), fmt.Sprintf("trial %d", trial)) {
			read++
		}
	}
	t.Logf("the direct decoder read %d of %d entries; the replay the others", read, trials)
}

// TestCacheDecodeDirectDuplicates: elements of one identity, which Encode
// refuses but an entry may hold, are read as the replay's loader reads
// them (it matches the rows below to the last of them).
func TestCacheDecodeDirectDuplicates(t *testing.T) {
	s := NewStore[*dxRow, int64](offlinePG(t), dxMapping(t))
	c, err := s.cacheState()
	require.NoError(t, err)
	at := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	var e rowEncoder
	rows := func(vals ...any) {
		for _, v := range vals {
			require.NoError(t, e.value(v))
		}
	}
	n := func(n int) { e.buf = binary.AppendUvarint(e.buf, uint64(n)) }
	n(2) // two kids of id 1, with a sub each
	rows(int64(1), at, "first")
	n(1)
	rows(int64(1), uint64(1), "a")
	rows(int64(1), at, "second")
	n(1)
	rows(int64(2), uint64(2), "b")
	n(0)
	n(2) // two values of key "k" in a map, without subs, the last wins
	rows("k", 1.0)
	n(0)
	rows("k", 2.0)
	n(0)
	entry := dxEntry(t, c.fp, natural(t, s, dxFull()), e.buf)
	differ(t, s, entry, "duplicates")
	got, err := s.Decode(entry)
	require.NoError(t, err)
	require.Len(t, got.kids, 2)
	assert.Empty(t, got.kids[0].subs, "the loader gives both subs to the last kid of id 1")
	assert.Len(t, got.kids[1].subs, 2)
	assert.Equal(t, map[string]dxVal{"k": {key: "k", f: 2}}, got.byKey)

	// Keys that a table below refers to alone (ParentKeyOnly): two lines
	// of one generated key, not yet stored, which Encode takes; the
	// loader refuses them.
	cs := NewStore[*ccRoot, int64](offlinePG(t), ccMapping(t))
	agg := ccFull("dup")
	agg.lines[2].opts = []ccOpt{{id: "o"}}
	b, err := cs.Encode(agg)
	require.NoError(t, err)
	_, err = cs.Decode(b)
	assert.ErrorContains(t, err, "is held by two rows")
	differ(t, cs, b, "a key held by two rows")

	// The same two levels down, under two parents.
	type dxC struct {
		id int64 `db:"id" ddd:"id"`
	}
	type dxB struct {
		id int64 `db:"id" ddd:"id"`
		cs []*dxC
	}
	type dxA struct {
		id int64 `db:"id" ddd:"id"`
		bs []*dxB
	}
	type dxTop struct {
		id int64 `db:"id" ddd:"id"`
		as []*dxA
	}
	m, err := NewMapping[*dxTop](Table{Name: "top"}, Child{Field: "as", Table: "as", ParentKey: "top_id", Children: []Child{
		{Field: "bs", Table: "bs", ParentKey: "a_id", Children: []Child{
			{Field: "cs", Table: "cs", ParentKey: "b_id", ParentKeyOnly: true},
		}},
	}})
	require.NoError(t, err)
	ts := NewStore[*dxTop, int64](offlinePG(t), m)
	top := &dxTop{id: 1, as: []*dxA{
		{id: 1, bs: []*dxB{{id: 7, cs: []*dxC{{id: 1}}}}},
		{id: 2, bs: []*dxB{{id: 7, cs: []*dxC{{id: 2}}}}},
	}}
	b, err = ts.Encode(top)
	require.NoError(t, err)
	_, err = ts.Decode(b)
	assert.ErrorContains(t, err, "is held by two rows")
	differ(t, ts, b, "a key held by two rows under two parents")
}

// TestCacheDecodeDirectNotUsed: a mapping with a column whose type the
// direct decoder leaves to the replay has no direct decoder, and decodes
// through the replay.
func TestCacheDecodeDirectNotUsed(t *testing.T) {
	type deep struct {
		id int64   `db:"id"`
		pp **int64 `db:"pp"`
	}
	m, err := NewMapping[*deep](Table{Name: "deep"})
	require.NoError(t, err)
	b := sqliteBackend(t)
	s := NewStore[*deep, int64](b.db, m)
	c, err := s.cacheState()
	require.NoError(t, err)
	assert.Nil(t, c.plan, "**int64 is left to the replay")
	n := ptr(int64(7))
	got, err := s.Decode(dxEntry(t, c.fp, []any{int64(1), int64(7)}, nil))
	require.NoError(t, err)
	assert.Equal(t, &deep{id: 1, pp: &n}, got)
}
