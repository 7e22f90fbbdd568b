package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dddkit/dddkit/internal/typeinfo"
	"github.com/dddkit/dddkit/repository"
)

// The cache codec: an aggregate as the rows a load of the store reads,
// for a cache to hold (see Store.Encode). What the mapping can read, the
// codec can hold, unexported fields, value objects, JSON and array
// columns included: the rows are read back by the store's own loader,
// the loader of a database/sql load, through database/sql's own
// conversions, so that a decoded aggregate is assembled exactly as one
// loaded from the database.
//
// An entry is
//
//	format (1 byte) | fingerprint (8 bytes, little endian) | root row | children
//
// where a row is the values of the table's columns, in mapping order, and
// the children of a row (the root's or an element's) are, for each of its
// collections in mapping order, the number of elements (uvarint) followed
// by each element's row and children. The parent key columns and the
// position columns are left out: the first come from the parents' keys,
// and the second are the order of the elements. A value is a tag byte
// and its bytes:
//
//	0 NULL   1 false   2 true   3 int64 (zigzag varint)
//	4 float64 (8 bytes, IEEE 754, little endian)
//	5 string, 6 []byte (uvarint length, bytes)
//	7 time in UTC, 8 time in the Local location (varint Unix seconds,
//	  uvarint nanoseconds), 9 time in another zone (the same, then the
//	  offset in seconds as a varint and the zone's name as a string)
//	10 uint64 above the int64 range (uvarint)

// cacheFormat is the version of the encoding; a change of it changes the
// fingerprint too.
const cacheFormat = 1

// Tags of the values of an entry.
const (
	tagNull byte = iota
	tagFalse
	tagTrue
	tagInt
	tagFloat
	tagString
	tagBytes
	tagTimeUTC
	tagTimeLocal
	tagTimeZone
	tagUint
)

// cacheState is what a store's codec computes once.
type cacheState struct {
	fp  uint64
	hex string
	// plan decodes an entry straight into an aggregate; nil when a
	// column is of a type it leaves to the replay.
	plan *decodePlan
}

// cacheState returns the codec state of s, computed on first use.
func (s *Store[T, ID]) cacheState() (*cacheState, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	if c := s.cache.Load(); c != nil {
		return c, nil
	}
	h := fnv.New64a()
	_, _ = io.WriteString(h, s.m.describe())
	c := &cacheState{fp: h.Sum64(), plan: newDecodePlan(&s.m.root, s.m.top)}
	c.hex = fmt.Sprintf("%016x", c.fp)
	s.cache.Store(c)
	return c, nil
}

// Fingerprint returns a digest (16 hexadecimal digits) of the mapping as
// [Store.Encode] writes it: the format of the encoding, the aggregate's
// type, and every table, column (its name, the Go path and type of its
// field, and how it is stored) and child collection of the mapping, in
// order. A change of any of them changes it. A cache puts it in its keys,
// so that a deploy that changes the mapping never reads the entries the
// mapping before it wrote. It does not see a change of what a column's
// driver.Valuer writes, or of a JSON column's type's own encoding: change
// the schema version of the cache when such a change is not read back
// from the rows stored before it. It is empty when the store cannot be
// used.
func (s *Store[T, ID]) Fingerprint() string {
	c, err := s.cacheState()
	if err != nil {
		return ""
	}
	return c.hex
}

// describe returns the text that the fingerprint of m digests.
func (m *Mapping[T]) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dddkit/sqlstore cache format %d\n%s\n", cacheFormat, typeName(reflect.TypeFor[T]()))
	table := func(tb *table) {
		fmt.Fprintf(&b, "table %q key %d version %d generated %t\n", tb.name, tb.key, tb.version, tb.generated)
		for i := range tb.cols {
			c := &tb.cols[i]
			fmt.Fprintf(&b, "\tcolumn %q field %q type %s codec %d\n", c.name, c.field, typeName(c.typ), c.codec)
		}
	}
	table(&m.root)
	for _, c := range m.children {
		parent := -1
		if c.parent != nil {
			parent = c.parent.index
		}
		fmt.Fprintf(&b, "child %d parent %d field %q collection %s element %s refs %q position %t\n",
			c.index, parent, c.spec.Field, typeName(c.collType), typeName(c.elem), c.refNames, c.spec.Position != "")
		table(&c.table)
	}
	return b.String()
}

// typeName names t with the paths of its packages.
func typeName(t reflect.Type) string {
	if t.Name() != "" && t.PkgPath() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return "*" + typeName(t.Elem())
	case reflect.Slice:
		return "[]" + typeName(t.Elem())
	case reflect.Array:
		return "[" + strconv.Itoa(t.Len()) + "]" + typeName(t.Elem())
	case reflect.Map:
		return "map[" + typeName(t.Key()) + "]" + typeName(t.Elem())
	}
	return t.String()
}

// Encode returns agg as the rows of its tables, in a compact binary form,
// for a cache to hold: each column's value as the store writes it (a
// JSON column's text, an array column's PostgreSQL text, a
// driver.Valuer's value), without the parent key and position columns,
// which the structure gives. [Store.Decode] reads it back into the
// aggregate that a load of those rows from the database returns.
//
// Encode an aggregate as the store loaded it: the rows must be what the
// database would return. A value the database would store otherwise than
// the aggregate holds it (a time of a finer precision than the column's,
// say) is held as the aggregate holds it, and the children of a
// collection without a position column are held in the aggregate's order,
// which is the database's only after a load.
//
// It fails, with an error wrapping [repository.ErrUnsupported], on a
// value that the store could not write either (a nil element, two
// elements of one identity), and on a driver.Valuer whose value is of a
// type the encoding has no tag for.
func (s *Store[T, ID]) Encode(agg T) ([]byte, error) {
	c, err := s.cacheState()
	if err != nil {
		return nil, s.fail("encode", err)
	}
	base := typeinfo.PtrOf(agg)
	if base == nil {
		return nil, s.fail("encode", fmt.Errorf("%w: nil aggregate", repository.ErrUnsupported))
	}
	e := rowEncoder{buf: make([]byte, 0, 256)}
	e.buf = append(e.buf, cacheFormat)
	e.buf = binary.LittleEndian.AppendUint64(e.buf, c.fp)
	if err := e.row(&s.m.root, base); err != nil {
		return nil, s.fail("encode", err)
	}
	if err := e.kids(s.m.top, base); err != nil {
		return nil, s.fail("encode", err)
	}
	return e.buf, nil
}

// rowEncoder appends rows to buf.
type rowEncoder struct {
	buf []byte
}

// row appends the values of the columns of tb in the struct at p.
func (e *rowEncoder) row(tb *table, p unsafe.Pointer) error {
	for i := range tb.cols {
		c := &tb.cols[i]
		v, err := cacheValue(c, c.value(p))
		if err != nil {
			return fmt.Errorf("%s.%s: %w", tb.name, c.name, err)
		}
		if err := e.value(v); err != nil {
			return fmt.Errorf("%s.%s: %w", tb.name, c.name, err)
		}
	}
	return nil
}

// kids appends the collections kids of the struct at p: per collection,
// its length, then each element's row and collections.
func (e *rowEncoder) kids(kids []*child, p unsafe.Pointer) error {
	for _, c := range kids {
		elems, err := c.elements(p)
		if err != nil {
			return err
		}
		if err := c.unique(elems); err != nil {
			return err
		}
		e.buf = binary.AppendUvarint(e.buf, uint64(len(elems)))
		for _, ep := range elems {
			if err := e.row(&c.table, ep); err != nil {
				return err
			}
			if err := e.kids(c.kids, ep); err != nil {
				return err
			}
		}
	}
	return nil
}

// cacheValue returns v, the value of column c as the store writes it,
// as a driver value: nil, bool, int64, float64, string, []byte or
// time.Time, or a uint64 above the range of int64.
func cacheValue(c *column, v any) (any, error) {
	switch c.codec {
	case codecJSON:
		return v.(jsonValue).Value()
	case codecArray:
		return arrayText(v)
	}
	dv, err := driver.DefaultParameterConverter.ConvertValue(v)
	if err != nil {
		// database/sql's converter refuses the uint64 values above the
		// range of int64, which pgx writes.
		if rv := reflect.ValueOf(v); rv.IsValid() && (rv.Kind() == reflect.Uint64 || rv.Kind() == reflect.Uint) {
			return rv.Uint(), nil
		}
		for rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil(); rv = rv.Elem() {
			if k := rv.Elem().Kind(); k == reflect.Uint64 || k == reflect.Uint {
				return rv.Elem().Uint(), nil
			}
		}
		return nil, fmt.Errorf("%w: %w", repository.ErrUnsupported, err)
	}
	return dv, nil
}

// arrayText returns the slice v in PostgreSQL's text form of arrays, as
// the database hands it to database/sql, or nil for a nil slice.
func arrayText(v any) (any, error) {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
		return nil, nil
	}
	m := pgtypeMaps.Get().(*pgtype.Map)
	defer pgtypeMaps.Put(m)
	t, ok := m.TypeForValue(v)
	if !ok {
		return nil, fmt.Errorf("%w: pgx knows no PostgreSQL array type for %T", repository.ErrUnsupported, v)
	}
	b, err := m.Encode(t.OID, pgtype.TextFormatCode, v, nil)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, nil
	}
	return string(b), nil
}

// value appends v, a driver value of cacheValue, with its tag.
func (e *rowEncoder) value(v any) error {
	switch v := v.(type) {
	case nil:
		e.buf = append(e.buf, tagNull)
	case bool:
		if v {
			e.buf = append(e.buf, tagTrue)
		} else {
			e.buf = append(e.buf, tagFalse)
		}
	case int64:
		e.buf = binary.AppendVarint(append(e.buf, tagInt), v)
	case uint64:
		if v <= math.MaxInt64 {
			e.buf = binary.AppendVarint(append(e.buf, tagInt), int64(v))
		} else {
			e.buf = binary.AppendUvarint(append(e.buf, tagUint), v)
		}
	case float64:
		e.buf = binary.LittleEndian.AppendUint64(append(e.buf, tagFloat), math.Float64bits(v))
	case string:
		e.buf = append(binary.AppendUvarint(append(e.buf, tagString), uint64(len(v))), v...)
	case []byte:
		if v == nil {
			e.buf = append(e.buf, tagNull) // as the drivers write it
			break
		}
		e.buf = append(binary.AppendUvarint(append(e.buf, tagBytes), uint64(len(v))), v...)
	case time.Time:
		tag := tagTimeZone
		switch v.Location() {
		case time.UTC:
			tag = tagTimeUTC
		case time.Local:
			tag = tagTimeLocal
		}
		e.buf = append(e.buf, tag)
		e.buf = binary.AppendVarint(e.buf, v.Unix())
		e.buf = binary.AppendUvarint(e.buf, uint64(v.Nanosecond()))
		if tag == tagTimeZone {
			name, off := v.Zone()
			e.buf = binary.AppendVarint(e.buf, int64(off))
			e.buf = append(binary.AppendUvarint(e.buf, uint64(len(name))), name...)
		}
	default:
		return fmt.Errorf("%w: a value of type %T (from a driver.Valuer) cannot be cached", repository.ErrUnsupported, v)
	}
	return nil
}

// ErrCacheEntry is wrapped by the error of [Store.Decode] given bytes
// that are not an entry of the store's mapping: of another format or
// mapping (a fingerprint that differs), or cut short or corrupted.
var ErrCacheEntry = errors.New("not a cache entry of this mapping")

// Decode returns the aggregate that b, written by [Store.Encode] with the
// same mapping, holds: what a load of those rows from the database
// through database/sql returns, with database/sql's conversions into the
// fields and the mapping's readers of JSON and array columns. It is new,
// and not tracked. It fails with an error wrapping [ErrCacheEntry] when b
// was written for another mapping or format, or is cut short or
// corrupted, and with the error of a column's reader (a sql.Scanner's,
// say) that refuses its value.
//
// The rows are read straight into the fields, with the conversions that
// database/sql applies to the values and field types that Encode writes;
// a mapping with a column of another type (one database/sql converts
// through reflection, such as an integer type that implements
// driver.Valuer only), and a value Decode leaves to database/sql, have
// the rows replayed through database/sql itself and the store's loader,
// as a load reads them.
func (s *Store[T, ID]) Decode(b []byte) (T, error) {
	var zero T
	c, err := s.cacheState()
	if err != nil {
		return zero, s.fail("decode", err)
	}
	if len(b) < 9 || b[0] != cacheFormat || binary.LittleEndian.Uint64(b[1:9]) != c.fp {
		return zero, s.fail("decode", fmt.Errorf("%w: another format or mapping", ErrCacheEntry))
	}
	if c.plan != nil {
		if p, err := c.plan.decode(b[9:]); err == nil {
			return reflect.NewAt(s.m.root.typ, p).Interface().(T), nil
		}
		// Whatever the direct decoder refuses, the replay decides: it
		// converts what the direct decoder does not, and its errors are
		// those of a load.
	}
	return s.decodeReplay(b)
}

// decodeReplay is Decode through the replay of the rows: the rows handed
// to database/sql by a driver of their own, and read by the loader of a
// load from the database.
func (s *Store[T, ID]) decodeReplay(b []byte) (T, error) {
	var zero T
	d := rowDecoder{b: b[9:]}
	rt := &s.m.root
	root := make([]any, len(rt.cols))
	if err := d.values(root); err != nil {
		return zero, s.fail("decode", err)
	}
	// sets holds the rows of each table as a load selects them, one
	// after the other: the root's, then each child table's, with its
	// parent key columns first below the first level.
	sets := make([][]any, 1+len(s.m.children))
	sets[0] = root
	if err := d.kids(s.m.top, []any{root[rt.key]}, sets[1:]); err != nil {
		return zero, s.fail("decode", err)
	}
	if len(d.b) != 0 {
		return zero, s.fail("decode", fmt.Errorf("%w: %d bytes past its end", ErrCacheEntry, len(d.b)))
	}
	agg, err := s.replay(sets)
	if err != nil {
		return zero, s.fail("decode", err)
	}
	return agg, nil
}

// rowDecoder reads the rows that rowEncoder wrote.
type rowDecoder struct {
	b []byte
}

func errCut(what string) error {
	return fmt.Errorf("%w: cut short in %s", ErrCacheEntry, what)
}

// kids reads the collections kids of a row whose identifying values (its
// parent key values, then its key) are ids, appending the rows of each
// child table c to sets[c.index].
func (d *rowDecoder) kids(kids []*child, ids []any, sets [][]any) error {
	for _, c := range kids {
		n, k := binary.Uvarint(d.b)
		if k <= 0 {
			return errCut("a length")
		}
		d.b = d.b[k:]
		if n > uint64(len(d.b)) {
			return fmt.Errorf("%w: %d elements in %d bytes", ErrCacheEntry, n, len(d.b))
		}
		refs := c.refsFor(ids)
		var lead []any // the parent key columns the load selects
		if c.parent != nil {
			lead = refs
		}
		for range n {
			at := len(sets[c.index])
			sets[c.index] = append(sets[c.index], lead...)
			sets[c.index] = append(sets[c.index], make([]any, len(c.cols))...)
			row := sets[c.index][at:]
			if err := d.values(row[len(lead):]); err != nil {
				return err
			}
			if len(c.kids) == 0 {
				continue
			}
			own := append(refs[:len(refs):len(refs)], row[len(lead)+c.key])
			if err := d.kids(c.kids, own, sets); err != nil {
				return err
			}
		}
	}
	return nil
}

// values reads len(out) values into out.
func (d *rowDecoder) values(out []any) error {
	for i := range out {
		v, err := d.value()
		if err != nil {
			return err
		}
		out[i] = v
	}
	return nil
}

func (d *rowDecoder) varint() (int64, error) {
	v, k := binary.Varint(d.b)
	if k <= 0 {
		return 0, errCut("a number")
	}
	d.b = d.b[k:]
	return v, nil
}

func (d *rowDecoder) uvarint() (uint64, error) {
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		return 0, errCut("a number")
	}
	d.b = d.b[k:]
	return v, nil
}

// bytes reads a length and that many bytes.
func (d *rowDecoder) bytes() ([]byte, error) {
	n, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.b)) {
		return nil, errCut("a string")
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out, nil
}

func (d *rowDecoder) value() (any, error) {
	if len(d.b) == 0 {
		return nil, errCut("a row")
	}
	tag := d.b[0]
	d.b = d.b[1:]
	switch tag {
	case tagNull:
		return nil, nil
	case tagFalse:
		return false, nil
	case tagTrue:
		return true, nil
	case tagInt:
		return d.varint()
	case tagUint:
		return d.uvarint()
	case tagFloat:
		if len(d.b) < 8 {
			return nil, errCut("a float")
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
		d.b = d.b[8:]
		return v, nil
	case tagString:
		b, err := d.bytes()
		return string(b), err
	case tagBytes:
		b, err := d.bytes()
		if err != nil {
			return nil, err
		}
		return append(make([]byte, 0, len(b)), b...), nil // empty, not NULL
	case tagTimeUTC, tagTimeLocal, tagTimeZone:
		sec, err := d.varint()
		if err != nil {
			return nil, err
		}
		ns, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		if ns >= 1e9 {
			return nil, fmt.Errorf("%w: %d nanoseconds", ErrCacheEntry, ns)
		}
		t := time.Unix(sec, int64(ns))
		switch tag {
		case tagTimeUTC:
			return t.UTC(), nil
		case tagTimeLocal:
			return t, nil
		}
		off, err := d.varint()
		if err != nil {
			return nil, err
		}
		name, err := d.bytes()
		if err != nil {
			return nil, err
		}
		if off < math.MinInt32 || off > math.MaxInt32 {
			return nil, fmt.Errorf("%w: zone offset %d", ErrCacheEntry, off)
		}
		return t.In(time.FixedZone(string(name), int(off))), nil
	}
	return nil, fmt.Errorf("%w: unknown tag %d", ErrCacheEntry, tag)
}

// replay loads the aggregate from sets, the rows of the root table and of
// each child table, as selectAgg does from the database on database/sql:
// the rows are handed out by a database/sql driver of their own, and
// read with sql.Rows.Scan into the same destinations.
func (s *Store[T, ID]) replay(sets [][]any) (T, error) {
	var zero T
	db, err := replayDB()
	if err != nil {
		return zero, err
	}
	rows, err := db.QueryContext(context.Background(), "", &replayRows{sets: sets, widths: s.replayWidths()})
	if err != nil {
		return zero, err
	}
	defer rows.Close()
	rt := &s.m.root
	rv := reflect.New(rt.typ)
	base := rv.UnsafePointer()
	dests := make([]any, len(rt.cols))
	for i := range rt.cols {
		dests[i] = rt.cols[i].dest(base, false)
	}
	l := newLoader(s.m.children, false, true)
	if !rows.Next() {
		return zero, fmt.Errorf("%w: no root row", ErrCacheEntry)
	}
	if err := rows.Scan(dests...); err != nil {
		return zero, fmt.Errorf("%s: %w", rt.name, err)
	}
	rt.inUTC(base)
	l.root(base, rt.cols[rt.key].value(base))
	for _, c := range s.m.children {
		if !rows.NextResultSet() {
			return zero, fmt.Errorf("%w: the rows of %s are missing", ErrCacheEntry, c.name)
		}
		scan := l.scan(c)
		for rows.Next() {
			if err := scan(rows); err != nil {
				return zero, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return zero, err
	}
	l.assemble(s.m.top)
	return rv.Interface().(T), nil
}

// replayWidths returns the number of columns of each table's rows as a
// load selects them: the root's, then each child table's.
func (s *Store[T, ID]) replayWidths() []int {
	out := make([]int, 1+len(s.m.children))
	out[0] = len(s.m.root.cols)
	for i, c := range s.m.children {
		out[1+i] = len(c.cols)
		if c.parent != nil {
			out[1+i] += len(c.refCols)
		}
	}
	return out
}

// replayDB is the database/sql handle of the replay driver, whose only
// query returns the result sets of the *replayRows given as its argument.
var replayDB = sync.OnceValues(func() (*sql.DB, error) {
	db := sql.OpenDB(replayConnector{})
	db.SetMaxIdleConns(64)
	return db, nil
})

type replayConnector struct{}

func (replayConnector) Connect(context.Context) (driver.Conn, error) { return replayConn{}, nil }
func (replayConnector) Driver() driver.Driver                        { return replayDriver{} }

type replayDriver struct{}

func (replayDriver) Open(string) (driver.Conn, error) { return replayConn{}, nil }

// replayConn is a connection of the replay driver.
type replayConn struct{}

var errReplayOnly = errors.New("sqlstore: the cache's replay driver only replays rows")

func (replayConn) Prepare(string) (driver.Stmt, error) { return nil, errReplayOnly }
func (replayConn) Close() error                        { return nil }
func (replayConn) Begin() (driver.Tx, error)           { return nil, errReplayOnly }

// CheckNamedValue takes the *replayRows argument as it is.
func (replayConn) CheckNamedValue(*driver.NamedValue) error { return nil }

// QueryContext returns the rows given as the argument.
func (replayConn) QueryContext(_ context.Context, _ string, args []driver.NamedValue) (driver.Rows, error) {
	if len(args) != 1 {
		return nil, errReplayOnly
	}
	r, ok := args[0].Value.(*replayRows)
	if !ok {
		return nil, errReplayOnly
	}
	return r, nil
}

// replayRows hands out sets, one result set per table: the values of its
// rows one after the other, widths[i] values a row of sets[i].
type replayRows struct {
	sets   [][]any
	widths []int
	set    int
	row    int
	names  []string
}

func (r *replayRows) Columns() []string {
	n := r.widths[r.set]
	if len(r.names) < n {
		r.names = make([]string, n)
	}
	return r.names[:n]
}

func (r *replayRows) Close() error { return nil }

func (r *replayRows) Next(dest []driver.Value) error {
	vals, w := r.sets[r.set], r.widths[r.set]
	if r.row+w > len(vals) || w == 0 {
		return io.EOF
	}
	for i, v := range vals[r.row : r.row+w] {
		dest[i] = v
	}
	r.row += w
	return nil
}

func (r *replayRows) HasNextResultSet() bool { return r.set+1 < len(r.sets) }

func (r *replayRows) NextResultSet() error {
	if !r.HasNextResultSet() {
		return io.EOF
	}
	r.set++
	r.row = 0
	return nil
}

// The direct decoder. A decodePlan reads an entry straight into a new
// aggregate, without boxing its values, without database/sql and without
// the loader's matching of rows to their parents by key: the entry holds
// each element's row and collections where they belong. Each column's
// setter applies what database/sql's conversion (convertAssign) does
// with the values Encode writes for a field of that type, and leaves
// every other value to the replay (errReplay); a column of a type whose
// conversion it does not know leaves the whole mapping to the replay (no
// plan). The replay stays the reference: the tests hold the two to the
// same results.

// errReplay is the direct decoder's refusal of a value it leaves to the
// replay.
var errReplay = errors.New("sqlstore: left to the replay")

// setter reads one value of d into the field at p.
type setter func(d *rowDecoder, p unsafe.Pointer) error

// decodePlan is the direct decoder of a mapping.
type decodePlan struct {
	root tablePlan
	top  []*childPlan
	// tables is the number of child tables, for the keys of ownKeys.
	tables int
}

// tablePlan reads the rows of a table.
type tablePlan struct {
	tb   *table
	sets []setter // per column
}

// childPlan reads the collections of a child table.
type childPlan struct {
	tablePlan
	c    *child
	kids []*childPlan
	// size is the element struct's size, for slices of structs.
	size uintptr
}

// newDecodePlan returns the direct decoder of the mapping whose root
// table is root and whose top collections are top, or nil when a column
// is of a type it leaves to the replay.
func newDecodePlan(root *table, top []*child) *decodePlan {
	rp, ok := newTablePlan(root)
	if !ok {
		return nil
	}
	p := &decodePlan{root: rp}
	var kids func(cs []*child) ([]*childPlan, bool)
	kids = func(cs []*child) ([]*childPlan, bool) {
		var out []*childPlan
		for _, c := range cs {
			tp, ok := newTablePlan(&c.table)
			if !ok {
				return nil, false
			}
			cp := &childPlan{tablePlan: tp, c: c, size: c.typ.Size()}
			if cp.kids, ok = kids(c.kids); !ok {
				return nil, false
			}
			p.tables = max(p.tables, c.index+1)
			out = append(out, cp)
		}
		return out, true
	}
	if p.top, ok = kids(top); !ok {
		return nil
	}
	return p
}

func newTablePlan(tb *table) (tablePlan, bool) {
	p := tablePlan{tb: tb, sets: make([]setter, len(tb.cols))}
	for i := range tb.cols {
		c := &tb.cols[i]
		if p.sets[i] = newSetter(c.typ, c.codec, 0); p.sets[i] == nil {
			return tablePlan{}, false
		}
	}
	return p, true
}

var (
	bytesType = reflect.TypeFor[[]byte]()
	byteType  = reflect.TypeFor[byte]()
	rawType   = reflect.TypeFor[sql.RawBytes]()
)

// newSetter returns the setter of a field of type t stored with codec,
// behind depth pointers, or nil when the direct decoder leaves the type to
// the replay.
func newSetter(t reflect.Type, cd codec, depth int) setter {
	switch cd {
	case codecJSON:
		return func(d *rowDecoder, p unsafe.Pointer) error {
			dest := jsonDest{reflect.NewAt(t, p).Interface()}
			switch tag, err := d.tag(); {
			case err != nil:
				return err
			case tag == tagNull:
				return dest.Scan(nil)
			case tag == tagString:
				b, err := d.bytes()
				if err != nil {
					return err
				}
				return dest.Scan(b) // as the text: json.Unmarshal keeps none of it
			}
			return errReplay
		}
	case codecArray:
		return func(d *rowDecoder, p unsafe.Pointer) error {
			dest := arrayDest{reflect.NewAt(t, p).Interface()}
			switch tag, err := d.tag(); {
			case err != nil:
				return err
			case tag == tagNull:
				return dest.Scan(nil)
			case tag == tagString:
				b, err := d.bytes()
				if err != nil {
					return err
				}
				return dest.Scan(string(b))
			}
			return errReplay
		}
	}
	if reflect.PointerTo(t).Implements(scannerType) {
		// database/sql hands the value to the Scanner: so does this, boxed
		// as the replay's driver hands it.
		return func(d *rowDecoder, p unsafe.Pointer) error {
			v, err := d.value()
			if err != nil {
				return err
			}
			return reflect.NewAt(t, p).Interface().(sql.Scanner).Scan(v)
		}
	}
	switch {
	case t == typeinfo.TimeType():
		// A time.Time, or the one behind a *time.Time: the loader sets
		// both to UTC (timeCols), so the zone is read and dropped.
		return setTime
	case t == rawType:
		return nil // database/sql's own buffer
	}
	switch t.Kind() {
	case reflect.Pointer:
		if depth > 0 {
			return nil
		}
		et := t.Elem()
		elem := newSetter(et, codecPlain, depth+1)
		if elem == nil {
			return nil
		}
		// NULL is a nil pointer; another value goes into a new one.
		return func(d *rowDecoder, p unsafe.Pointer) error {
			if len(d.b) > 0 && d.b[0] == tagNull {
				d.b = d.b[1:]
				*(*unsafe.Pointer)(p) = nil
				return nil
			}
			np := reflect.New(et).UnsafePointer()
			if err := elem(d, np); err != nil {
				return err
			}
			*(*unsafe.Pointer)(p) = np
			return nil
		}
	case reflect.String:
		// A string or []byte is set (assigned, or converted to a string
		// type); database/sql refuses NULL, and writes other values as
		// text into a *string only.
		return func(d *rowDecoder, p unsafe.Pointer) error {
			switch tag, err := d.tag(); {
			case err != nil:
				return err
			case tag == tagString || tag == tagBytes:
				b, err := d.bytes()
				if err != nil {
					return err
				}
				*(*string)(p) = string(b)
				return nil
			}
			return errReplay
		}
	case reflect.Bool:
		return func(d *rowDecoder, p unsafe.Pointer) error {
			switch tag, err := d.tag(); {
			case err != nil:
				return err
			case tag == tagFalse || tag == tagTrue:
				*(*bool)(p) = tag == tagTrue
				return nil
			}
			return errReplay
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		// An int64 is assigned, or converted to another int64 type, or
		// written as text and parsed at the field's size: the same value,
		// or an error (left to the replay) when it does not fit.
		bits := t.Bits()
		lo, hi := int64(math.MinInt64)>>(64-bits), int64(math.MaxInt64)>>(64-bits)
		return func(d *rowDecoder, p unsafe.Pointer) error {
			switch tag, err := d.tag(); {
			case err != nil:
				return err
			case tag == tagInt:
				v, err := d.varint()
				if err != nil {
					return err
				}
				if v < lo || v > hi {
					return errReplay
				}
				switch bits {
				case 8:
					*(*int8)(p) = int8(v)
				case 16:
					*(*int16)(p) = int16(v)
				case 32:
					*(*int32)(p) = int32(v)
				default:
					*(*int64)(p) = v
				}
				return nil
			}
			return errReplay
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		// An int64 at or above zero, or a uint64 above the range of int64,
		// parsed at the field's size, or assigned or converted.
		bits := t.Bits()
		hi := uint64(math.MaxUint64) >> (64 - bits)
		return func(d *rowDecoder, p unsafe.Pointer) error {
			var v uint64
			switch tag, err := d.tag(); {
			case err != nil:
				return err
			case tag == tagInt:
				n, err := d.varint()
				if err != nil {
					return err
				}
				if n < 0 {
					return errReplay
				}
				v = uint64(n)
			case tag == tagUint:
				if v, err = d.uvarint(); err != nil {
					return err
				}
			default:
				return errReplay
			}
			if v > hi {
				return errReplay
			}
			switch bits {
			case 8:
				*(*uint8)(p) = uint8(v)
			case 16:
				*(*uint16)(p) = uint16(v)
			case 32:
				*(*uint32)(p) = uint32(v)
			default:
				*(*uint64)(p) = v
			}
			return nil
		}
	case reflect.Float32, reflect.Float64:
		bits := t.Bits()
		return func(d *rowDecoder, p unsafe.Pointer) error {
			switch tag, err := d.tag(); {
			case err != nil:
				return err
			case tag == tagFloat:
				if len(d.b) < 8 {
					return errCut("a float")
				}
				v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
				d.b = d.b[8:]
				if bits == 64 {
					*(*float64)(p) = v
					return nil
				}
				// A float32: database/sql writes the float64 as text and
				// parses it at 32 bits.
				f, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', -1, 64), 32)
				if err != nil {
					return errReplay
				}
				*(*float32)(p) = float32(f)
				return nil
			}
			return errReplay
		}
	case reflect.Slice:
		if t.Elem() != byteType {
			return nil
		}
		// A []byte is copied; NULL and a string set a []byte only, not a
		// type of its own.
		exact := t == bytesType
		return func(d *rowDecoder, p unsafe.Pointer) error {
			switch tag, err := d.tag(); {
			case err != nil:
				return err
			case tag == tagBytes || (exact && tag == tagString):
				b, err := d.bytes()
				if err != nil {
					return err
				}
				*(*[]byte)(p) = append(make([]byte, 0, len(b)), b...)
				return nil
			case exact && tag == tagNull:
				*(*[]byte)(p) = nil
				return nil
			}
			return errReplay
		}
	}
	return nil
}

// setTime reads a time into the time.Time at p, in UTC.
func setTime(d *rowDecoder, p unsafe.Pointer) error {
	tag, err := d.tag()
	if err != nil {
		return err
	}
	if tag != tagTimeUTC && tag != tagTimeLocal && tag != tagTimeZone {
		return errReplay
	}
	sec, err := d.varint()
	if err != nil {
		return err
	}
	ns, err := d.uvarint()
	if err != nil {
		return err
	}
	if ns >= 1e9 {
		return fmt.Errorf("%w: %d nanoseconds", ErrCacheEntry, ns)
	}
	if tag == tagTimeZone {
		off, err := d.varint()
		if err != nil {
			return err
		}
		if _, err := d.bytes(); err != nil {
			return err
		}
		if off < math.MinInt32 || off > math.MaxInt32 {
			return fmt.Errorf("%w: zone offset %d", ErrCacheEntry, off)
		}
	}
	*(*time.Time)(p) = time.Unix(sec, int64(ns)).UTC()
	return nil
}

// tag reads the tag of the next value.
func (d *rowDecoder) tag() (byte, error) {
	if len(d.b) == 0 {
		return 0, errCut("a row")
	}
	t := d.b[0]
	d.b = d.b[1:]
	return t, nil
}

// row reads a row of p's table into the struct at base. Its times are in
// UTC, as the loader sets them (setTime).
func (p *tablePlan) row(d *rowDecoder, base unsafe.Pointer) error {
	for i, set := range p.sets {
		if err := set(d, unsafe.Add(base, p.tb.cols[i].offset)); err != nil {
			return err
		}
	}
	return nil
}

// decode reads the entry b (past its header) into a new aggregate, and
// returns the pointer to its root struct.
func (p *decodePlan) decode(b []byte) (unsafe.Pointer, error) {
	d := rowDecoder{b: b}
	base := reflect.New(p.root.tb.typ).UnsafePointer()
	if err := p.root.row(&d, base); err != nil {
		return nil, err
	}
	var owned []map[any]struct{}
	if err := p.kids(&d, p.top, base, &owned); err != nil {
		return nil, err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes past its end", ErrCacheEntry, len(d.b))
	}
	return base, nil
}

// kids reads the collections kids of the struct at base. owned holds, per
// table whose key a table below refers to alone, the keys read.
func (p *decodePlan) kids(d *rowDecoder, kids []*childPlan, base unsafe.Pointer, owned *[]map[any]struct{}) error {
	for _, k := range kids {
		c := k.c
		n, err := d.uvarint()
		if err != nil {
			return err
		}
		if n > uint64(len(d.b)) {
			return fmt.Errorf("%w: %d elements in %d bytes", ErrCacheEntry, n, len(d.b))
		}
		// Two elements of one identity (the loader matches rows to their
		// parents by key) are left to the replay, whose loader decides.
		var seen map[any]struct{}
		if c.ownKeys {
			if *owned == nil {
				*owned = make([]map[any]struct{}, p.tables)
			}
			if (*owned)[c.index] == nil {
				(*owned)[c.index] = map[any]struct{}{}
			}
			seen = (*owned)[c.index]
		} else if len(k.kids) > 0 && n > 1 {
			seen = make(map[any]struct{}, n)
		}
		elem := func(ep unsafe.Pointer) error {
			if err := k.row(d, ep); err != nil {
				return err
			}
			if seen != nil {
				key := c.keyOf(ep)
				if _, dup := seen[key]; dup {
					return errReplay
				}
				seen[key] = struct{}{}
			}
			return p.kids(d, k.kids, ep, owned)
		}
		field := unsafe.Add(base, c.offset)
		if c.collType.Kind() == reflect.Map {
			m := reflect.MakeMapWithSize(c.collType, int(n))
			for range n {
				ev := reflect.New(c.typ)
				ep := ev.UnsafePointer()
				if err := elem(ep); err != nil {
					return err
				}
				at := ep
				if c.ptr {
					at = unsafe.Pointer(&ep)
				}
				id, _ := c.ident.Read(at)
				val := ev
				if !c.ptr {
					val = ev.Elem()
				}
				m.SetMapIndex(reflect.ValueOf(id), val)
			}
			reflect.NewAt(c.collType, field).Elem().Set(m)
			continue
		}
		if n == 0 {
			continue // a nil slice, as a load leaves it
		}
		s := reflect.MakeSlice(c.collType, int(n), int(n))
		at := s.UnsafePointer()
		for i := range uintptr(n) {
			if !c.ptr {
				if err := elem(unsafe.Add(at, i*k.size)); err != nil {
					return err
				}
				continue
			}
			ep := reflect.New(c.typ).UnsafePointer()
			if err := elem(ep); err != nil {
				return err
			}
			*(*unsafe.Pointer)(unsafe.Add(at, i*unsafe.Sizeof(ep))) = ep
		}
		reflect.NewAt(c.collType, field).Elem().Set(s)
	}
	return nil
}
