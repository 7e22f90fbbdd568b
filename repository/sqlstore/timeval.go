package sqlstore

import (
	"database/sql/driver"
	"fmt"
	"reflect"
	"time"
	"unsafe"

	"github.com/dddkit/dddkit/internal/typeinfo"
	"github.com/dddkit/dddkit/repository"
)

// Times are compared by instant on every backend. PostgreSQL's timestamptz
// does it by itself. SQLite has no time type: a time is text, compared as
// text, so sqlstore sends every time.Time to a dialect with timeText in
// one form, whatever its location: UTC, with nine fractional digits, a
// fixed width (timeTextLayout). Text order is then instant order, for
// keys, conditions, keyset pages and ORDER BY alike.
//
// Loaded times are in UTC on every backend: pgx reads a timestamptz in
// the Local location, the SQLite driver in the location of the text.

// timeTextLayout is the text of a time on a dialect with timeText:
// "2006-01-02 15:04:05.000000000Z", which SQLite's date and time functions
// read, and the modernc driver parses back (as UTC) from a column declared
// DATETIME, TIMESTAMP or DATE.
const timeTextLayout = "2006-01-02 15:04:05.000000000Z"

// timeText returns t in timeTextLayout. A year outside 0 to 9999 has no
// text of the same width, and is refused.
func timeText(t time.Time) (string, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return "", fmt.Errorf("sqlstore: %w: time %v: only the years 0 to 9999 are stored as text that sorts by instant", repository.ErrUnsupported, t)
	}
	return t.Format(timeTextLayout), nil
}

// bindArgs returns args as d sends them: on a dialect with timeText, each
// time (a time.Time, a pointer to one, or a driver.Valuer whose value is
// one, such as sql.NullTime) as its text in timeTextLayout. args itself is
// never modified.
func (d *dialect) bindArgs(args []any) ([]any, error) {
	if !d.timeText {
		return args, nil
	}
	var out []any
	for i, a := range args {
		v, ok, err := timeArg(a)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if out == nil {
			out = append(make([]any, 0, len(args)), args...)
		}
		out[i] = v
	}
	if out == nil {
		return args, nil
	}
	return out, nil
}

// timeArg returns the argument to send for a, and whether it differs
// from a: the text of a time, or the value of a driver.Valuer, read once.
func timeArg(a any) (any, bool, error) {
	switch v := a.(type) {
	case time.Time:
		s, err := timeText(v)
		return s, true, err
	case *time.Time:
		if v == nil {
			return nil, false, nil
		}
		s, err := timeText(*v)
		return s, true, err
	case jsonValue, nil:
		return nil, false, nil
	case driver.Valuer:
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return nil, false, nil // database/sql's rule for nil pointers
		}
		dv, err := v.Value()
		if err != nil {
			return nil, false, nil // reported by database/sql, as usual
		}
		if t, ok := dv.(time.Time); ok {
			s, err := timeText(t)
			return s, true, err
		}
		if driver.IsValue(dv) {
			return dv, true, nil // not asked for again
		}
	}
	return nil, false, nil
}

// timeCols returns the indexes in cols of the columns that hold a
// time.Time or a *time.Time.
func timeCols(cols []column) []int {
	var out []int
	for i := range cols {
		t := cols[i].typ
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t == typeinfo.TimeType() && cols[i].codec == codecPlain {
			out = append(out, i)
		}
	}
	return out
}

// inUTC sets the times of the row of tb at base, just read, to UTC.
func (tb *table) inUTC(base unsafe.Pointer) {
	for _, i := range tb.times {
		tb.cols[i].inUTC(base)
	}
}

// inUTC sets the time of column c (a time.Time or a *time.Time) in the
// struct at base to UTC.
func (c *column) inUTC(base unsafe.Pointer) {
	p := unsafe.Add(base, c.offset)
	if c.typ.Kind() == reflect.Pointer {
		p = unsafe.Pointer(*(**time.Time)(p))
		if p == nil {
			return
		}
	}
	t := (*time.Time)(p)
	*t = t.UTC()
}

// utcKey returns v, a key value, in UTC if it is a time, so that keys
// that are the same instant are equal map keys.
func utcKey(v any) any {
	if t, ok := v.(time.Time); ok {
		return t.UTC()
	}
	return v
}
