package sqlstore

import (
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/jackc/pgx/v5/pgtype"
)

// ErrMapping is wrapped by every error of [NewMapping]: a mapping that
// cannot be built, or that would lose a change (see NewMapping).
var ErrMapping = errors.New("invalid mapping of")

// jsonValue is the argument of a JSON column: the field's value, encoded
// when the driver asks for it.
type jsonValue struct{ v any }

// Value implements driver.Valuer: the JSON text of the value.
func (j jsonValue) Value() (driver.Value, error) {
	b, err := json.Marshal(j.v)
	if err != nil {
		return nil, fmt.Errorf("json column: %w", err)
	}
	return string(b), nil
}

// jsonDest scans a JSON column into the field p points to. A NULL leaves
// the field's zero value.
type jsonDest struct{ p any }

// Scan implements sql.Scanner.
func (j jsonDest) Scan(src any) error {
	var b []byte
	switch src := src.(type) {
	case nil:
		reflect.ValueOf(j.p).Elem().SetZero()
		return nil
	case string:
		b = []byte(src)
	case []byte:
		b = src
	default:
		return fmt.Errorf("json column: cannot read %T", src)
	}
	v := reflect.ValueOf(j.p).Elem()
	v.SetZero() // decode into a fresh value, not over the old one
	if err := json.Unmarshal(b, j.p); err != nil {
		return fmt.Errorf("json column: %w", err)
	}
	return nil
}

// arrayDest scans a PostgreSQL array into the slice p points to, with
// pgx's text and binary decoders, for database/sql too, whose drivers hand
// arrays over as text.
type arrayDest struct{ p any }

// pgtypeMaps holds pgtype Maps, which are not safe for concurrent use.
var pgtypeMaps = sync.Pool{New: func() any { return pgtype.NewMap() }}

// Scan implements sql.Scanner.
func (a arrayDest) Scan(src any) error {
	m := pgtypeMaps.Get().(*pgtype.Map)
	defer pgtypeMaps.Put(m)
	return m.SQLScanner(a.p).Scan(src)
}

// arrayType reports whether pgx knows the PostgreSQL array type of slice
// type t.
func arrayType(t reflect.Type) bool {
	m := pgtypeMaps.Get().(*pgtype.Map)
	defer pgtypeMaps.Put(m)
	_, ok := m.TypeForValue(reflect.New(t).Interface())
	return ok
}
