package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// A projection reads rows into a struct of your own, by its db tags, for
// the read side of a service (a list page, a report): [Select] and
// [SelectPage] from a [Query] on the root table of a [Mapping], [SelectSQL]
// from SQL of your own. Projections are never tracked: a row is a value,
// not an aggregate, and nothing of it can be saved. They run in the unit of
// work of the context, as loads do: in its transaction when ctx carries
// one, else on the pool, the statements of one call reading one snapshot.
// They are reported to the observer like every statement.
//
// A field reads the column named exactly by its db tag (an untagged
// exported field, the column of its name in lower case, CustomerName
// reading "customername"; `db:"-"` skips it; the fields of an embedded
// struct are the row's own), unexported fields are ignored, and every
// column of the result must have a field and every field a column, the
// names matching exactly, on every backend: anything else fails the call
// with [ErrQuery], checked against the columns of the result even when it
// has no rows. Each row is scanned by the driver into the fields, so values
// are converted as the driver converts them; the time.Time and *time.Time
// fields are set to UTC, as in loaded aggregates.

// projection is the shape of a row type: its columns, and where its times
// are.
type projection struct {
	cols  []string // the column of each field, in order
	paths [][]int  // the index path of each field, as cols
	times [][]int  // the index paths of the time fields
}

var projections sync.Map // reflect.Type -> *projection or error

// projectionOf returns the projection of t, a struct type.
func projectionOf(t reflect.Type) (*projection, error) {
	if v, ok := projections.Load(t); ok {
		if err, ok := v.(error); ok {
			return nil, err
		}
		return v.(*projection), nil
	}
	p := &projection{}
	var err error
	if t.Kind() != reflect.Struct {
		err = fmt.Errorf("%w: a row of a projection must be a struct, not %v", ErrQuery, t)
	} else {
		err = p.fields(t, nil)
	}
	if err != nil {
		projections.Store(t, err)
		return nil, err
	}
	projections.Store(t, p)
	return p, nil
}

func (p *projection) fields(t reflect.Type, index []int) error {
	seen := map[string]bool{}
	for _, c := range p.cols {
		seen[c] = true
	}
	for i := range t.NumField() {
		f := t.Field(i)
		path := append(index[:len(index):len(index)], i)
		tag, tagged := f.Tag.Lookup("db")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && !tagged && f.Type.Kind() == reflect.Struct {
			if err := p.fields(f.Type, path); err != nil {
				return err
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if seen[name] {
			return fmt.Errorf("%w: row %v reads column %q into two fields", ErrQuery, t, name)
		}
		seen[name] = true
		p.cols = append(p.cols, name)
		p.paths = append(p.paths, path)
		if ft := f.Type; ft == timeType || (ft.Kind() == reflect.Pointer && ft.Elem() == timeType) {
			p.times = append(p.times, path)
		}
	}
	return nil
}

var timeType = reflect.TypeFor[time.Time]()

// inUTC sets the times of row to UTC.
func (p *projection) inUTC(row reflect.Value) {
	for _, path := range p.times {
		f := row.FieldByIndex(path)
		if f.Kind() == reflect.Pointer {
			if f.IsNil() {
				continue
			}
			f = f.Elem()
		}
		f.Set(reflect.ValueOf(f.Interface().(time.Time).UTC()))
	}
}

// rowsInto returns the head and the scan functions of a statement that
// appends each row it returns to out. head matches the columns of the
// result with the fields of R exactly, before the first row and when there
// is none; scan reads each row into the fields, by position.
func rowsInto[R any](p *projection, out *[]R) (head, scan func(r rowScanner) error) {
	var fields [][]int // the index path of the field of each column
	head = func(r rowScanner) error {
		var cols []string
		switch r := r.(type) {
		case pgx.Rows:
			if err := r.Err(); err != nil { // a failed query has no columns
				return err
			}
			for _, fd := range r.FieldDescriptions() {
				cols = append(cols, fd.Name)
			}
		case *sql.Rows:
			var err error
			if cols, err = r.Columns(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("sqlstore: rows of type %T", r)
		}
		var err error
		fields, err = p.match(cols)
		return err
	}
	scan = func(r rowScanner) error {
		var row R
		v := reflect.ValueOf(&row).Elem()
		dest := make([]any, len(fields))
		for i, path := range fields {
			dest[i] = v.FieldByIndex(path).Addr().Interface()
		}
		if err := r.Scan(dest...); err != nil {
			return err
		}
		p.inUTC(v)
		*out = append(*out, row)
		return nil
	}
	return head, scan
}

// match returns the index path of the field of each of cols, the columns
// of a result, or an error unless every column has a field and every
// field a column, the names matching exactly.
func (p *projection) match(cols []string) ([][]int, error) {
	fields := make([][]int, len(cols))
	seen := make(map[string]bool, len(cols))
	for i, c := range cols {
		j := slices.Index(p.cols, c)
		if j < 0 {
			return nil, fmt.Errorf("%w: the query returns column %q, which no field of the row reads (the db tag, or the field's name in lower case, names a column exactly)", ErrQuery, c)
		}
		if seen[c] {
			return nil, fmt.Errorf("%w: the query returns column %q twice", ErrQuery, c)
		}
		seen[c] = true
		fields[i] = p.paths[j]
	}
	for _, c := range p.cols {
		if !seen[c] {
			return nil, fmt.Errorf("%w: the query returns no column %q for a field of the row", ErrQuery, c)
		}
	}
	return fields, nil
}

// Select returns the rows that q selects from the root table of m, each
// read into an R by its db tags (see "Projections" in the package doc):
// the SELECT names the columns of R's fields, each of which must be a
// column of the root table, or the call fails with [ErrQuery] naming it,
// and nothing is sent. The conditions, order and paging of q apply as for
// aggregates. The rows are not tracked.
func Select[R, T any](ctx context.Context, db *DB, m *Mapping[T], q Query) ([]R, error) {
	rows, _, err := selectRows[R](ctx, db, m, q, false)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: select: %w", err)
	}
	return rows, nil
}

// SelectPage is [Select] that also returns how many rows q's conditions
// select in all, ignoring its limit, offset and keyset: the total of a
// paged list. The page's SELECT and a SELECT count(*) read one snapshot:
// on pgx they go in one batch, one round trip; on database/sql outside a
// transaction they run in a read-only transaction of their own (BEGIN,
// the two statements, COMMIT). In a transaction of PostgreSQL at READ
// COMMITTED each statement reads the database as of its own start, so a
// commit between them may make the total and the page disagree.
func SelectPage[R, T any](ctx context.Context, db *DB, m *Mapping[T], q Query) ([]R, int64, error) {
	rows, total, err := selectRows[R](ctx, db, m, q, true)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlstore: select page: %w", err)
	}
	return rows, total, nil
}

func selectRows[R, T any](ctx context.Context, db *DB, m *Mapping[T], q Query, count bool) ([]R, int64, error) {
	if err := db.check(); err != nil {
		return nil, 0, err
	}
	if m == nil {
		return nil, 0, fmt.Errorf("%w: nil mapping", ErrMapping)
	}
	p, err := projectionOf(reflect.TypeFor[R]())
	if err != nil {
		return nil, 0, err
	}
	tb := &m.root
	for _, c := range p.cols {
		if tb.column(c) < 0 {
			return nil, 0, fmt.Errorf("%w: %q, a field of %v, is not a column of %s", ErrQuery, c, reflect.TypeFor[R](), tb.name)
		}
	}
	cq, err := tb.compile(q)
	if err != nil {
		return nil, 0, err
	}
	w := &builder{d: db.dialect}
	w.s("SELECT ")
	for i, c := range p.cols {
		if i > 0 {
			w.s(", ")
		}
		w.ident(c)
	}
	w.s(" FROM ")
	w.ident(tb.name)
	if err := cq.where(w); err != nil {
		return nil, 0, err
	}
	cq.page(w)
	var out []R
	page := w.stmt(noCheck)
	page.head, page.scan = rowsInto(p, &out)
	stmts := []stmt{page}
	var total int64
	if count {
		cq := *cq
		cq.after = nil
		w.s("SELECT count(*) FROM ")
		w.ident(tb.name)
		if err := cq.where(w); err != nil {
			return nil, 0, err
		}
		st := w.stmt(noCheck)
		st.scan = func(r rowScanner) error { return r.Scan(&total) }
		stmts = append(stmts, st)
	}
	if err := db.run(ctx, stmts, false); err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// SelectSQL runs sql, a query of your own, with args bound to its ?
// placeholders (as for [DB.Exec]), and returns its rows, each read into
// an R by its db tags (see "Projections" in the package doc). It runs as
// [DB.Query] does, in the transaction of ctx when there is one. The rows
// are not tracked.
func SelectSQL[R any](ctx context.Context, db *DB, sql string, args ...any) ([]R, error) {
	if err := db.check(); err != nil {
		return nil, fmt.Errorf("sqlstore: select: %w", err)
	}
	p, err := projectionOf(reflect.TypeFor[R]())
	if err != nil {
		return nil, fmt.Errorf("sqlstore: select: %w", err)
	}
	text, err := db.dialect.rebind(sql, len(args))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: select: %w", err)
	}
	var out []R
	st := stmt{sql: text, args: args}
	st.head, st.scan = rowsInto(p, &out)
	if err := db.run(ctx, []stmt{st}, false); err != nil {
		return nil, fmt.Errorf("sqlstore: select: %w", err)
	}
	return out, nil
}
