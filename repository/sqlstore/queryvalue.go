package sqlstore

import (
	"database/sql/driver"
	"fmt"
	"math"
	"reflect"
	"sync"

	"github.com/dddkit/dddkit/internal/typeinfo"
)

// The values of a query's conditions are checked against the Go type of
// the column they are compared with before any SQL is sent, so that a
// value the column cannot hold is an error on every database: PostgreSQL
// refuses "abc" for a bigint, SQLite would compare it as text and match
// nothing.

// family is the sort of value a column holds, as a condition compares it.
type family uint8

const (
	famOther family = iota // not told: values are passed as given
	famInt
	famFloat
	famString
	famBool
	famBytes
	famTime
)

var familyNames = [...]string{famOther: "value", famInt: "integer", famFloat: "number", famString: "string", famBool: "boolean", famBytes: "bytes", famTime: "time"}

// valueKind is what a value of a column's type is compared as: its family
// and, for numbers, the type a value must fit.
type valueKind struct {
	fam family
	num reflect.Type // the numeric type of famInt and famFloat
}

// kinds caches kindOf, which may call a Value method.
var kinds sync.Map // reflect.Type -> valueKind

// kindOf returns the valueKind of values of type t: a pointer is a
// nullable value of its element; a type implementing driver.Valuer is
// compared as the value it gives (sql.NullString as a string, a UUID
// type whose Value is text as a string).
func kindOf(t reflect.Type) valueKind {
	if k, ok := kinds.Load(t); ok {
		return k.(valueKind)
	}
	k := findKind(t)
	kinds.Store(t, k)
	return k
}

func findKind(t reflect.Type) valueKind {
	if t.Kind() == reflect.Pointer && !t.Implements(valuerType) {
		t = t.Elem()
	}
	if t == typeinfo.TimeType() {
		return valueKind{fam: famTime}
	}
	if t.Implements(valuerType) || reflect.PointerTo(t).Implements(valuerType) {
		return valuerKind(t)
	}
	return plainKindOf(t)
}

func plainKindOf(t reflect.Type) valueKind {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return valueKind{fam: famInt, num: t}
	case reflect.Float32, reflect.Float64:
		return valueKind{fam: famFloat, num: t}
	case reflect.String:
		return valueKind{fam: famString}
	case reflect.Bool:
		return valueKind{fam: famBool}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return valueKind{fam: famBytes}
		}
	}
	if t == typeinfo.TimeType() {
		return valueKind{fam: famTime}
	}
	return valueKind{}
}

// valuerKind returns the valueKind of t, a driver.Valuer: a struct of a
// Valid bool and one other field (sql.NullString, sql.Null[T], pgtype.Int8)
// is compared as that field; another type as the value its zero value
// gives.
func valuerKind(t reflect.Type) valueKind {
	if t.Kind() == reflect.Struct && t.NumField() == 2 {
		for i := range 2 {
			v, o := t.Field(i), t.Field(1-i)
			if v.Name == "Valid" && v.Type.Kind() == reflect.Bool {
				if k := plainKindOf(o.Type); k.fam != famOther {
					return k
				}
			}
		}
	}
	zero := reflect.New(t)
	var vr driver.Valuer
	if t.Implements(valuerType) {
		vr, _ = zero.Elem().Interface().(driver.Valuer)
	} else {
		vr, _ = zero.Interface().(driver.Valuer)
	}
	if vr == nil {
		return valueKind{}
	}
	v, err := func() (v driver.Value, err error) {
		defer func() {
			if recover() != nil {
				v, err = nil, fmt.Errorf("panic")
			}
		}()
		return vr.Value()
	}()
	if err != nil || v == nil {
		return valueKind{}
	}
	return plainKindOf(reflect.TypeOf(v))
}

// condArg checks v, a value compared with column col by the condition
// named what ("Eq", "In", ...), and returns the value to bind: v itself, or
// a number converted to the column's type.
func condArg(col *column, what string, v any) (any, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && rv.IsNil() {
		rv = reflect.Value{}
	}
	if !rv.IsValid() {
		if what == "After" {
			return nil, fmt.Errorf("%w: After(%q): a nil value: a row compared with NULL is never after anything (order columns must hold no NULL)", ErrQuery, col.name)
		}
		return nil, fmt.Errorf("%w: %s(%q) with nil matches no row, as a comparison with NULL is never true: use IsNull(%q)", ErrQuery, what, col.name, col.name)
	}
	if rv.Kind() == reflect.Pointer && !rv.Type().Implements(valuerType) {
		rv = rv.Elem()
	}
	ct := col.typ
	if ct.Kind() == reflect.Pointer && !ct.Implements(valuerType) {
		ct = ct.Elem()
	}
	if rv.Type() == ct {
		return v, nil
	}
	want := kindOf(ct)
	if want.fam == famOther || col.codec != codecPlain {
		return v, nil // a value the check cannot judge: the database will
	}
	have := kindOf(rv.Type())
	bad := func() (any, error) {
		return nil, fmt.Errorf("%w: %s(%q): %v (%T) for a column of type %v, which holds %s values", ErrQuery, what, col.name, v, v, col.typ, familyNames[want.fam])
	}
	switch {
	case want.num != nil && have.num != nil && rv.Kind() != reflect.Struct:
		out, ok := convertNumber(rv, want.num)
		if !ok {
			return nil, fmt.Errorf("%w: %s(%q): %v does not fit a column of type %v", ErrQuery, what, col.name, v, col.typ)
		}
		return out, nil
	case have.fam == want.fam:
		return v, nil
	}
	return bad()
}

// convertNumber returns the number rv as a value of the numeric type t,
// and whether it is the same number there.
func convertNumber(rv reflect.Value, t reflect.Type) (any, bool) {
	z := reflect.New(t).Elem()
	switch {
	case rv.CanInt() || rv.CanUint():
		if z.CanFloat() {
			var f float64
			if rv.CanInt() {
				f = float64(rv.Int())
				if int64(f) != rv.Int() || math.Abs(f) >= 1<<63 {
					return nil, false
				}
			} else {
				f = float64(rv.Uint())
				if f >= 1<<64 || uint64(f) != rv.Uint() {
					return nil, false
				}
			}
			if z.OverflowFloat(f) {
				return nil, false
			}
			z.SetFloat(f)
			return z.Interface(), true
		}
		if !fits(rv, t) {
			return nil, false
		}
		return rv.Convert(t).Interface(), true
	case rv.CanFloat():
		f := rv.Float()
		if z.CanFloat() {
			if z.OverflowFloat(f) {
				return nil, false
			}
			z.SetFloat(f)
			return z.Interface(), true
		}
		if f != math.Trunc(f) || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, false
		}
		switch {
		case z.CanInt():
			if f < -(1<<63) || f >= 1<<63 || z.OverflowInt(int64(f)) {
				return nil, false
			}
			z.SetInt(int64(f))
		case z.CanUint():
			if f < 0 || f >= 1<<64 || z.OverflowUint(uint64(f)) {
				return nil, false
			}
			z.SetUint(uint64(f))
		}
		return z.Interface(), true
	}
	return nil, false
}

// condName is the name of the function that makes a condition of op.
func condName(op string) string {
	switch op {
	case "=":
		return "Eq"
	case "<>":
		return "Ne"
	case "<":
		return "Lt"
	case "<=":
		return "Le"
	case ">":
		return "Gt"
	case ">=":
		return "Ge"
	case "IN":
		return "In"
	case "LIKE":
		return "Like"
	case "FOLD":
		return "EqualFold"
	}
	return op
}
