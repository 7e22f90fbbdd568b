package sqlstore

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
)

// ErrQuery reports a query that cannot be run as written: an unknown
// column, a value that the column's Go type cannot hold (a string for an
// integer column, a number that does not fit), a nil value in a
// comparison or an In list (a comparison with NULL matches no row: use
// [IsNull]), a keyset that does not fit the order, a raw fragment whose
// placeholders and arguments disagree, a negative limit or offset. Errors
// of queries wrap it, on every backend, and nothing is sent to the
// database.
var ErrQuery = errors.New("invalid query")

// Query selects aggregates by conditions on the mapped columns of their
// root table and of their child collections (see [Has]), in an order, a page at a time. Build one with [Where] (or
// start from the zero Query, which selects every aggregate) and refine it
// with its methods, each of which returns a new Query: a Query is a value
// and can be shared.
//
// Column names are the root's db tags (inside Has, those of the
// collection's element); each is checked against the mapping
// when the query runs, and so is every value against the Go type of the
// field its column maps: a number may be of another numeric type if it
// converts without changing (Eq("total", 5) for an int64 field, 2.0 for
// an integer), a string is compared with string fields only, a time.Time
// with time.Time fields; a pointer is its element, and a type implementing
// driver.Valuer is compared as the value it gives (sql.NullString as a
// string). Values of JSON and array columns, and of Valuer types whose
// value cannot be told, are passed as given. Every value is a bind
// parameter: no value is ever formatted into SQL. Results are ordered by the columns of OrderBy
// and OrderByDesc and then by the key, so that pages are stable.
type Query struct {
	conds  []Cond
	order  []orderTerm
	limit  int
	offset int
	after  []any
}

type orderTerm struct {
	column string
	desc   bool
}

// Cond is a condition that a query puts on the rows of a table: the
// root's, or a child collection's inside [Has]. Make one with [Eq], [Ne],
// [Lt], [Le], [Gt], [Ge], [In], [IsNull], [Like], [Contains],
// [HasPrefix], [EqualFold] or [RawWhere], on a column of that table, and
// combine conditions with [And], [Or], [Not] and [Has]. A comparison with
// nil (Eq("coupon", nil)) would match no row, as SQL compares nothing
// equal to NULL: it is refused with [ErrQuery]; select NULL with IsNull.
type Cond struct {
	column string // the column; of Has, the collection's Field
	// op is "=", "<>", "<", "<=", ">", ">=", "IN", "IS NULL", "LIKE",
	// "FOLD", "AND", "OR", "NOT", "HAS", or "" for raw.
	op    string
	name  string // the function that made it, for messages, where op does not tell
	args  []any
	raw   string
	conds []Cond // of And, Or, Not and Has
}

// Eq is column = v.
func Eq(column string, v any) Cond { return Cond{column: column, op: "=", args: []any{v}} }

// Ne is column <> v.
func Ne(column string, v any) Cond { return Cond{column: column, op: "<>", args: []any{v}} }

// Lt is column < v.
func Lt(column string, v any) Cond { return Cond{column: column, op: "<", args: []any{v}} }

// Le is column <= v.
func Le(column string, v any) Cond { return Cond{column: column, op: "<=", args: []any{v}} }

// Gt is column > v.
func Gt(column string, v any) Cond { return Cond{column: column, op: ">", args: []any{v}} }

// Ge is column >= v.
func Ge(column string, v any) Cond { return Cond{column: column, op: ">=", args: []any{v}} }

// In is column IN (values...). With no values it matches nothing; a nil
// among them is refused (use [IsNull]).
func In(column string, values ...any) Cond {
	return Cond{column: column, op: "IN", args: values}
}

// IsNull is column IS NULL.
func IsNull(column string) Cond { return Cond{column: column, op: "IS NULL"} }

// RawWhere is the escape hatch: a WHERE fragment of your own, such as
// "total > ? AND customer <> ?", with ? as the placeholder of each
// argument, in order, whatever the database (sqlstore numbers them for
// PostgreSQL), as in all SQL of your own (see [DB.Exec]): a ? in a string
// literal is not a placeholder, ?? is a literal ?, and $1 is refused. The
// fragment is put in parentheses and combined with the other conditions
// like any condition; inside [Has], a column it names without a table is
// the child table's. The columns it names are not checked. Never build a
// fragment from input: pass values as
// arguments.
func RawWhere(fragment string, args ...any) Cond {
	return Cond{raw: fragment, args: args}
}

// Where returns a query of the aggregates that meet all of conds.
func Where(conds ...Cond) Query { return Query{}.Where(conds...) }

// Where returns q that also requires conds.
func (q Query) Where(conds ...Cond) Query {
	q.conds = append(q.conds[:len(q.conds):len(q.conds)], conds...)
	return q
}

// OrderBy returns q ordered by column, ascending, after the orders q has.
func (q Query) OrderBy(column string) Query {
	q.order = append(q.order[:len(q.order):len(q.order)], orderTerm{column: column})
	return q
}

// OrderByDesc returns q ordered by column, descending, after the orders q
// has.
func (q Query) OrderByDesc(column string) Query {
	q.order = append(q.order[:len(q.order):len(q.order)], orderTerm{column: column, desc: true})
	return q
}

// Limit returns q that returns at most n aggregates. Limit(0), like the
// zero Query, means no limit; a negative n makes the query fail with
// [ErrQuery], as a negative [Query.Offset] does.
func (q Query) Limit(n int) Query { q.limit = n; return q }

// Offset returns q that skips the first n aggregates of its order: paging
// by offset. Prefer [Query.After] for deep pages.
func (q Query) Offset(n int) Query { q.offset = n; return q }

// After returns q that starts after the aggregate whose order columns hold
// values: paging by key (keyset). values are those of the columns of
// OrderBy and OrderByDesc, in order, followed by the key, which ends every
// order; a query ordered by nothing but its key takes the key alone. The
// order columns must all be ascending or all descending, and hold no
// NULL: a row compared with NULL is never after anything, so a page after
// a row with a NULL order column would be empty.
func (q Query) After(values ...any) Query {
	q.after = append([]any(nil), values...)
	return q
}

// compiledQuery is a Query checked against a table, ready to be written.
type compiledQuery struct {
	q     Query
	tb    *table
	conds []Cond      // q's, with values checked against their columns
	order []orderTerm // with the key last
	after []any       // q's, checked likewise
}

func (tb *table) compile(q Query) (*compiledQuery, error) {
	conds := make([]Cond, len(q.conds))
	for i, c := range q.conds {
		var err error
		if conds[i], err = tb.checkCond(c); err != nil {
			return nil, err
		}
	}
	cq := &compiledQuery{q: q, tb: tb, conds: conds}
	key := tb.cols[tb.key].name
	hasKey := false
	for _, o := range q.order {
		if tb.column(o.column) < 0 {
			return nil, fmt.Errorf("%w: cannot order by %q: not a column of %s", ErrQuery, o.column, tb.name)
		}
		cq.order = append(cq.order, o)
		if o.column == key {
			hasKey = true
			break // the key is unique: later terms cannot matter
		}
	}
	if !hasKey {
		desc := len(cq.order) > 0 && cq.order[len(cq.order)-1].desc
		cq.order = append(cq.order, orderTerm{column: key, desc: desc})
	}
	if q.after != nil {
		if len(q.after) != len(cq.order) {
			return nil, fmt.Errorf("%w: After has %d values for the %d columns of the order (%s)", ErrQuery, len(q.after), len(cq.order), orderNames(cq.order))
		}
		for _, o := range cq.order {
			if o.desc != cq.order[0].desc {
				return nil, fmt.Errorf("%w: After needs an order that is all ascending or all descending", ErrQuery)
			}
		}
		cq.after = make([]any, len(q.after))
		for i, o := range cq.order {
			v, err := condArg(&tb.cols[tb.column(o.column)], "After", q.after[i])
			if err != nil {
				return nil, err
			}
			cq.after[i] = v
		}
	}
	if q.limit < 0 || q.offset < 0 {
		return nil, fmt.Errorf("%w: negative limit or offset", ErrQuery)
	}
	return cq, nil
}

func orderNames(o []orderTerm) string {
	names := make([]string, len(o))
	for i := range o {
		names[i] = o[i].column
	}
	return strings.Join(names, ", ")
}

// where writes the WHERE clause of q, if any. The root table must be in
// the FROM clause under its own name, which the conditions on children
// refer to.
func (cq *compiledQuery) where(w *builder) error {
	sep := " WHERE "
	for _, c := range cq.conds {
		w.s(sep)
		sep = " AND "
		if err := writeCond(w, cq.tb, "", c); err != nil {
			return err
		}
	}
	if cq.after != nil {
		w.s(sep + "(")
		for i, o := range cq.order {
			if i > 0 {
				w.s(", ")
			}
			w.ident(cq.tb.cols[cq.tb.column(o.column)].name)
		}
		if cq.order[0].desc {
			w.s(") < (")
		} else {
			w.s(") > (")
		}
		for i, v := range cq.after {
			if i > 0 {
				w.s(", ")
			}
			w.p(v)
		}
		w.s(")")
	}
	if len(w.args)+pageParams > w.d.maxParams {
		return fmt.Errorf("%w: the conditions take %d parameters, more than %s takes in one statement (%d) with a LIMIT and an OFFSET", ErrQuery, len(w.args), w.d.title, w.d.maxParams)
	}
	return nil
}

// pageParams is how many parameters page writes at most.
const pageParams = 2

// inList writes column = ANY(keys) (an IN list where the dialect binds no
// arrays), keys being values of the column kc's type. It serves the key
// lists of loads and deletes and the In condition alike.
//
// An IN list takes a parameter per value, and the dialect's limit is on
// all the parameters of the statement: those written before the list (a
// parent's key columns, other conditions) count with it. A fixed share of
// the limit would refuse lists that fit and pass lists that do not (two
// lists of half the limit each); the parameters written after it (more
// conditions, a keyset, LIMIT and OFFSET) are checked by where.
func inList(w *builder, column string, kc *column, keys []any) error {
	w.s(column)
	return inValues(w, column, kc, keys)
}

// inValues writes what inList writes after the column, named column in
// messages.
func inValues(w *builder, column string, kc *column, keys []any) error {
	if w.d.anyArray && plainKind(kc.typ) {
		arr, err := typedSlice(kc, keys)
		if err != nil {
			return err
		}
		w.s(" = ANY(")
		w.p(arr)
		w.s(")")
		return nil
	}
	if len(w.args)+len(keys) > w.d.maxParams {
		return fmt.Errorf("%w: %s IN a list of %d values, with %d other parameters, is more than %s takes in one statement (%d)", ErrQuery, column, len(keys), len(w.args), w.d.title, w.d.maxParams)
	}
	w.s(" IN (")
	for i, k := range keys {
		if i > 0 {
			w.s(", ")
		}
		w.p(k)
	}
	w.s(")")
	return nil
}

// page writes the ORDER BY, LIMIT and OFFSET of q.
func (cq *compiledQuery) page(w *builder) {
	w.s(" ORDER BY ")
	for i, o := range cq.order {
		if i > 0 {
			w.s(", ")
		}
		w.ident(cq.tb.cols[cq.tb.column(o.column)].name)
		if o.desc {
			w.s(" DESC")
		}
	}
	if cq.q.limit > 0 {
		w.s(" LIMIT ")
		w.p(cq.q.limit)
	}
	if cq.q.offset > 0 {
		if cq.q.limit <= 0 {
			w.s(w.d.offsetAll) // SQLite needs a LIMIT before an OFFSET
		}
		w.s(" OFFSET ")
		w.p(cq.q.offset)
	}
}

// typedSlice returns values as a slice of the column's Go type, which pgx
// encodes as an array of the column's type.
func typedSlice(col *column, values []any) (any, error) {
	out := reflect.MakeSlice(reflect.SliceOf(col.typ), len(values), len(values))
	for i, v := range values {
		rv := reflect.ValueOf(v)
		switch {
		case !rv.IsValid():
			return nil, fmt.Errorf("%w: In(%q): a nil value never matches; use IsNull", ErrQuery, col.name)
		case rv.Type() == col.typ:
		case rv.CanConvert(col.typ) && sameKindFamily(rv.Kind(), col.typ.Kind()):
			if !fits(rv, col.typ) {
				return nil, fmt.Errorf("%w: In(%q): value %v does not fit a column of type %v", ErrQuery, col.name, v, col.typ)
			}
			rv = rv.Convert(col.typ)
		default:
			return nil, fmt.Errorf("%w: In(%q): value %v of type %T for a column of type %v", ErrQuery, col.name, v, v, col.typ)
		}
		out.Index(i).Set(rv)
	}
	return out.Interface(), nil
}

// fits reports whether the number rv converts to type t without changing
// its value.
func fits(rv reflect.Value, t reflect.Type) bool {
	z := reflect.New(t).Elem()
	switch {
	case rv.CanInt():
		n := rv.Int()
		if z.CanUint() {
			return n >= 0 && !z.OverflowUint(uint64(n))
		}
		return !z.CanInt() || !z.OverflowInt(n)
	case rv.CanUint():
		n := rv.Uint()
		if z.CanInt() {
			return n <= math.MaxInt64 && !z.OverflowInt(int64(n))
		}
		return !z.CanUint() || !z.OverflowUint(n)
	case rv.CanFloat():
		return !z.CanFloat() || !z.OverflowFloat(rv.Float())
	}
	return true
}

// plainKind reports whether t is a number, string or bool type that pgx
// encodes in an array as it is: a column of another type (a pointer, a
// driver.Valuer) is matched with an IN list instead.
func plainKind(t reflect.Type) bool {
	if t.Implements(valuerType) || reflect.PointerTo(t).Implements(valuerType) {
		return false
	}
	return sameKindFamily(t.Kind(), reflect.Int) || sameKindFamily(t.Kind(), reflect.Float64) ||
		t.Kind() == reflect.String || t.Kind() == reflect.Bool
}

// sameKindFamily reports whether a value of kind a converts to kind b
// without changing its meaning: integers to integers, strings to strings.
func sameKindFamily(a, b reflect.Kind) bool {
	family := func(k reflect.Kind) int {
		switch k {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			return 1
		case reflect.Float32, reflect.Float64:
			return 2
		case reflect.String:
			return 3
		case reflect.Bool:
			return 4
		}
		return int(k) + 100
	}
	return family(a) == family(b)
}
