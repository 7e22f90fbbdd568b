package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/dddkit/dddkit/ddd"
	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/internal/typeinfo"
	"github.com/dddkit/dddkit/repository"
)

// Store implements [repository.Hooks] for aggregates of type T (a pointer
// to the root struct) identified by ID, on a [DB] with a [Mapping]. It is
// safe for concurrent use.
type Store[T any, ID comparable] struct {
	db   *DB
	m    *Mapping[T]
	d    *dialect
	wrap bool // pgx: checked statements raise division_by_zero

	selectRoot  string
	lockSelect  string // selectRoot that locks the row, where the dialect can
	selectChild []string
	insertRoot  string
	deleteChild []string
	// deleteRoot is the root's DELETE: checked, unless lockRoot (the
	// checked SELECT ... FOR UPDATE that precedes the children's DELETEs)
	// is set.
	deleteRoot string
	lockRoot   string
}

// NewStore returns the store of m on db. A nil db or m makes every method
// fail.
func NewStore[T any, ID comparable](db *DB, m *Mapping[T]) *Store[T, ID] {
	s := &Store[T, ID]{db: db, m: m}
	if db.check() != nil || m == nil {
		return s
	}
	s.d, s.wrap = db.dialect, db.pgx != nil
	w := &builder{d: s.d}
	rt := &m.root
	key := rt.cols[rt.key].quoted

	w.s("SELECT ")
	columnList(w, rt.cols)
	w.s(" FROM " + rt.quoted + " WHERE " + key + " = ")
	w.p(nil)
	s.selectRoot = w.stmt(noCheck).sql
	s.lockSelect = s.selectRoot
	if s.d.forUpdate {
		s.lockSelect += " FOR UPDATE"
	}

	w.s("INSERT INTO " + rt.quoted + " (")
	columnList(w, rt.cols)
	w.s(") VALUES (")
	for i := range rt.cols {
		if i > 0 {
			w.s(", ")
		}
		w.p(nil)
	}
	w.s(")")
	s.insertRoot = w.stmt(noCheck).sql

	for _, c := range m.children {
		w.s("SELECT ")
		columnList(w, c.cols)
		w.s(" FROM " + c.quoted + " WHERE " + c.parentKey + " = ")
		w.p(nil)
		w.s(" ORDER BY " + c.cols[c.key].quoted)
		s.selectChild = append(s.selectChild, w.stmt(noCheck).sql)

		w.s("DELETE FROM " + c.quoted + " WHERE " + c.parentKey + " = ")
		w.p(nil)
		s.deleteChild = append(s.deleteChild, w.stmt(noCheck).sql)
	}

	// The root of an aggregate with children is deleted last (foreign
	// keys), so on PostgreSQL it is locked and checked first: a concurrent
	// save, which updates the root first, then waits for this delete
	// instead of deadlocking with it.
	where := func() {
		w.s(" WHERE " + key + " = ")
		w.p(nil)
		if rt.version >= 0 {
			w.s(" AND " + rt.cols[rt.version].quoted + " = ")
			w.p(nil)
		}
	}
	if len(m.children) > 0 && s.d.forUpdate {
		s.checked(w, func() {
			w.s("SELECT 1 FROM " + rt.quoted)
			where()
			w.s(" FOR UPDATE")
		}, false)
		s.lockRoot = w.stmt(checkRow).sql
		w.s("DELETE FROM " + rt.quoted)
		where()
		s.deleteRoot = w.stmt(noCheck).sql
	} else {
		s.checked(w, func() {
			w.s("DELETE FROM " + rt.quoted)
			where()
		}, true)
		s.deleteRoot = w.stmt(checkRows).sql
	}
	return s
}

// checked writes the statement of body so that finding no row fails it:
// on pgx, wrapped as WITH r AS (body) SELECT 1/count(*) FROM r.
func (s *Store[T, ID]) checked(w *builder, body func(), dml bool) {
	if !s.wrap {
		body()
		return
	}
	w.s("WITH r AS (")
	body()
	if dml {
		w.s(" RETURNING 1")
	}
	w.s(") SELECT 1/count(*) FROM r")
}

func columnList(w *builder, cols []column) {
	for i := range cols {
		if i > 0 {
			w.s(", ")
		}
		w.s(cols[i].quoted)
	}
}

func (s *Store[T, ID]) ready() error {
	if err := s.db.check(); err != nil {
		return err
	}
	if s.m == nil {
		return errors.New("nil *sqlstore.Mapping")
	}
	return nil
}

// fail wraps err with the operation and the root table.
func (s *Store[T, ID]) fail(op string, err error) error {
	name := "?"
	if s.m != nil {
		name = s.m.root.name
	}
	return fmt.Errorf("sqlstore: %s %s: %w", op, name, err)
}

// Select loads the aggregate with key id: the root row, then each child
// table's rows of that root in key order, in one round trip on pgx. It
// returns an error wrapping [repository.ErrNotFound] when there is no root
// row.
func (s *Store[T, ID]) Select(ctx context.Context, id ID) (T, error) {
	return s.selectAgg(ctx, "select", s.selectRoot, id)
}

// SelectForUpdate is [Store.Select] that also locks the root row until the
// end of the transaction of ctx: SELECT ... FOR UPDATE on PostgreSQL. On
// SQLite, whose write transactions hold the database's write lock from
// their start, it is Select. It fails when ctx carries no transaction of
// the store's DB ([DB.InTx]), where the lock would be released at once. It
// implements [repository.Locker].
func (s *Store[T, ID]) SelectForUpdate(ctx context.Context, id ID) (T, error) {
	if s.ready() == nil && s.db.txFrom(ctx) == nil {
		var zero T
		return zero, s.fail("select for update", errors.New("not in a transaction of this DB: the lock would be released at once"))
	}
	return s.selectAgg(ctx, "select for update", s.lockSelect, id)
}

// selectAgg loads the aggregate with key id, its root by the query root.
func (s *Store[T, ID]) selectAgg(ctx context.Context, op, root string, id ID) (T, error) {
	var zero T
	if err := s.ready(); err != nil {
		return zero, s.fail(op, err)
	}
	rt := &s.m.root
	rv := reflect.New(rt.typ)
	base := rv.UnsafePointer()
	found := 0
	dests := make([]any, len(rt.cols))
	for i := range rt.cols {
		dests[i] = rt.cols[i].dest(base)
	}
	stmts := make([]stmt, 0, 1+len(s.m.children))
	stmts = append(stmts, stmt{sql: root, args: []any{id}, scan: func(r rowScanner) error {
		if found++; found > 1 {
			return fmt.Errorf("more than one row has key %v", id)
		}
		return r.Scan(dests...)
	}})
	colls := make([]*collector, len(s.m.children))
	for i, c := range s.m.children {
		colls[i] = newCollector(c)
		stmts = append(stmts, stmt{sql: s.selectChild[i], args: []any{id}, scan: colls[i].scan})
	}
	if err := s.db.run(ctx, stmts, false); err != nil {
		return zero, s.fail(op, err)
	}
	if found == 0 {
		return zero, s.fail(op, fmt.Errorf("%w: key %v", repository.ErrNotFound, id))
	}
	for i, c := range s.m.children {
		reflect.NewAt(c.collType, unsafe.Add(base, c.offset)).Elem().Set(colls[i].v)
	}
	return rv.Interface().(T), nil
}

// collector builds a child collection from rows.
type collector struct {
	c     *child
	v     reflect.Value // the slice or map
	dests []any
}

func newCollector(c *child) *collector {
	k := &collector{c: c, dests: make([]any, len(c.cols))}
	if c.collType.Kind() == reflect.Map {
		k.v = reflect.MakeMap(c.collType)
	} else {
		k.v = reflect.Zero(c.collType)
	}
	return k
}

func (k *collector) scan(r rowScanner) error {
	c := k.c
	ev := reflect.New(c.typ)
	p := ev.UnsafePointer()
	for i := range c.cols {
		k.dests[i] = c.cols[i].dest(p)
	}
	if err := r.Scan(k.dests...); err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	k.add(ev, p)
	return nil
}

// add appends the element ev (a pointer to a new element struct, at p) to
// the collection.
func (k *collector) add(ev reflect.Value, p unsafe.Pointer) {
	c := k.c
	val := ev
	if !c.ptr {
		val = ev.Elem()
	}
	if k.v.Kind() == reflect.Map {
		at := p
		if c.ptr {
			at = unsafe.Pointer(&p)
		}
		id, _ := c.ident.Read(at)
		k.v.SetMapIndex(reflect.ValueOf(id), val)
		return
	}
	k.v = reflect.Append(k.v, val)
}

// Insert writes a new aggregate: the root row, then for each child table
// one multi-row INSERT of all its rows (more when the dialect's parameter
// limit requires), all or nothing.
func (s *Store[T, ID]) Insert(ctx context.Context, agg T) error {
	if err := s.ready(); err != nil {
		return s.fail("insert", err)
	}
	base := typeinfo.PtrOf(agg)
	if base == nil {
		return s.fail("insert", fmt.Errorf("%w: nil aggregate", repository.ErrUnsupported))
	}
	stmts, err := s.insertStmts(base)
	if err != nil {
		return s.fail("insert", err)
	}
	if err := s.db.run(ctx, stmts, true); err != nil {
		return s.fail("insert", err)
	}
	return nil
}

// insertStmts builds the statements of Insert.
func (s *Store[T, ID]) insertStmts(base unsafe.Pointer) ([]stmt, error) {
	rt := &s.m.root
	args := make([]any, len(rt.cols))
	for i := range rt.cols {
		args[i] = rt.cols[i].value(base)
	}
	stmts := []stmt{{sql: s.insertRoot, args: args, rootKey: rt.cols[rt.key].name}}
	key := args[rt.key]
	for _, c := range s.m.children {
		elems, err := c.elements(base)
		if err != nil {
			return nil, err
		}
		if err := c.unique(elems); err != nil {
			return nil, err
		}
		stmts = s.inserts(stmts, c, key, elems)
	}
	return stmts, nil
}

// unique checks that no two of elems, elements of c's collection, have the
// same identity: they would be two rows of one key, refused by a unique key
// or, without one, stored and then unusable.
func (c *child) unique(elems []unsafe.Pointer) error {
	if len(elems) < 2 {
		return nil
	}
	seen := make(map[any]struct{}, len(elems))
	for _, p := range elems {
		at := p
		if c.ptr {
			at = unsafe.Pointer(&p)
		}
		id, _ := c.ident.Read(at)
		if _, dup := seen[id]; dup {
			return fmt.Errorf("%s[id=%v]: %w", c.spec.Field, id, repository.ErrDuplicateID)
		}
		seen[id] = struct{}{}
	}
	return nil
}

// elements returns pointers to the elements of c's collection in the root
// at base, in collection order.
func (c *child) elements(base unsafe.Pointer) ([]unsafe.Pointer, error) {
	v := reflect.NewAt(c.collType, unsafe.Add(base, c.offset)).Elem()
	out := make([]unsafe.Pointer, 0, v.Len())
	add := func(e reflect.Value) error {
		if c.ptr {
			if e.IsNil() {
				return fmt.Errorf("%s: %w", c.spec.Field, repository.ErrNilEntity)
			}
			out = append(out, e.UnsafePointer())
			return nil
		}
		if !e.CanAddr() { // a map value: copy it
			cp := reflect.New(c.elem)
			cp.Elem().Set(e)
			e = cp.Elem()
		}
		out = append(out, e.Addr().UnsafePointer())
		return nil
	}
	if v.Kind() == reflect.Map {
		for it := v.MapRange(); it.Next(); {
			if err := add(it.Value()); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	for i := range v.Len() {
		if err := add(v.Index(i)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// inserts appends the multi-row INSERTs of elems into c's table.
func (s *Store[T, ID]) inserts(stmts []stmt, c *child, parent any, elems []unsafe.Pointer) []stmt {
	per := s.d.maxParams / (len(c.cols) + 1)
	for len(elems) > 0 {
		n := min(per, len(elems))
		w := &builder{d: s.d, args: make([]any, 0, n*(len(c.cols)+1))}
		w.s("INSERT INTO " + c.quoted + " (" + c.parentKey)
		for i := range c.cols {
			w.s(", " + c.cols[i].quoted)
		}
		w.s(") VALUES ")
		for r, p := range elems[:n] {
			if r > 0 {
				w.s(", ")
			}
			w.s("(")
			w.p(parent)
			for i := range c.cols {
				w.s(", ")
				w.p(c.cols[i].value(p))
			}
			w.s(")")
		}
		stmts = append(stmts, w.stmt(noCheck))
		elems = elems[n:]
	}
	return stmts
}

// elemPtr returns a pointer to the struct of an element value of a diff
// (v points to it, and must stay alive while the pointer is used).
func (c *child) elemPtr(v *any) (unsafe.Pointer, error) {
	if *v == nil {
		return nil, fmt.Errorf("%s: %w", c.spec.Field, repository.ErrNilEntity)
	}
	if t := reflect.TypeOf(*v); t != c.elem {
		return nil, fmt.Errorf("%s: element of type %v in the diff, want %v", c.spec.Field, t, c.elem)
	}
	if c.ptr {
		p := (*typeinfo.Eface)(unsafe.Pointer(v)).Data
		if p == nil {
			return nil, fmt.Errorf("%s: %w", c.spec.Field, repository.ErrNilEntity)
		}
		return p, nil
	}
	return typeinfo.DataOf(v, c.elem), nil
}

// childWork is what a save does to one child table.
type childWork struct {
	c        *child
	removed  []unsafe.Pointer
	modified []*diff.Element
	added    []unsafe.Pointer
}

// Update writes the changes of a tracked aggregate, all or nothing, in
// this order: the root UPDATE of the changed columns only, with the version
// check and bump (a change of children alone still bumps the version); per
// child table, one DELETE of the removed rows; per modified child, an
// UPDATE of its changed columns only; per child table, one multi-row INSERT
// of the added rows. A change that maps to no column is skipped. When the
// version check finds no row, Update fails with an error wrapping
// [repository.ErrConflict] and writes nothing.
func (s *Store[T, ID]) Update(ctx context.Context, agg T, ch repository.Changes) error {
	if err := s.ready(); err != nil {
		return s.fail("update", err)
	}
	base := typeinfo.PtrOf(agg)
	if base == nil {
		return s.fail("update", fmt.Errorf("%w: nil aggregate", repository.ErrUnsupported))
	}
	stmts, err := s.updates(base, &ch)
	if err != nil {
		return s.fail("update", err)
	}
	if err := s.db.run(ctx, stmts, true); err != nil {
		return s.fail("update", s.keyed(err, base, ch.Versioned, ch.OldVersion))
	}
	return nil
}

// keyed adds the key and version to a conflict.
func (s *Store[T, ID]) keyed(err error, base unsafe.Pointer, versioned bool, version int64) error {
	if !errors.Is(err, repository.ErrConflict) {
		return err
	}
	rt := &s.m.root
	key := rt.cols[rt.key].value(base)
	if versioned {
		return fmt.Errorf("key %v, version %d: %w", key, version, err)
	}
	return fmt.Errorf("key %v: %w", key, err)
}

// updates builds the statements of Update.
func (s *Store[T, ID]) updates(base unsafe.Pointer, ch *repository.Changes) ([]stmt, error) {
	rt := &s.m.root
	if ch.Versioned && rt.version < 0 {
		return nil, errors.New("the changes are versioned but the mapping has no version column")
	}
	var stmts []stmt
	key := rt.cols[rt.key].value(base)
	w := &builder{d: s.d}

	mark := rt.changedColumns(ch.Diff.Fields)
	if mark[rt.key] {
		return nil, fmt.Errorf("the key %s changed", rt.cols[rt.key].field)
	}
	if rt.version >= 0 {
		mark[rt.version] = false
	}
	if ch.Versioned || anyTrue(mark) {
		s.checked(w, func() {
			sep := w.updateSet(rt, mark, base)
			if ch.Versioned {
				w.s(sep + rt.cols[rt.version].quoted + " = ")
				w.p(ch.NewVersion)
			}
			w.s(" WHERE " + rt.cols[rt.key].quoted + " = ")
			w.p(key)
			if ch.Versioned {
				w.s(" AND " + rt.cols[rt.version].quoted + " = ")
				w.p(ch.OldVersion)
			}
		}, true)
		stmts = append(stmts, w.stmt(checkRows))
	}

	work := make([]childWork, len(s.m.children))
	for i := range ch.Diff.Collections {
		col := &ch.Diff.Collections[i]
		idx, ok := col.Path.FieldIndex()
		if !ok || len(idx) != 1 {
			continue
		}
		ci := -1
		for j, c := range s.m.children {
			if c.fieldIdx == idx[0] {
				ci = j
			}
		}
		if ci < 0 {
			continue // not mapped
		}
		cw := &work[ci]
		cw.c = s.m.children[ci]
		for j := range col.Elements {
			e := &col.Elements[j]
			switch e.Kind {
			case diff.Removed:
				p, err := cw.c.elemPtr(&e.Old)
				if err != nil {
					return nil, err
				}
				cw.removed = append(cw.removed, p)
			case diff.Added:
				p, err := cw.c.elemPtr(&e.New)
				if err != nil {
					return nil, err
				}
				cw.added = append(cw.added, p)
			case diff.Modified:
				cw.modified = append(cw.modified, e)
			}
		}
	}

	// Deletes first, so that a unique value a removed row held can be
	// taken by a modified or an added one.
	for i := range work {
		if cw := &work[i]; len(cw.removed) > 0 {
			stmts = s.deletes(stmts, cw.c, key, cw.removed)
		}
	}
	for i := range work {
		cw := &work[i]
		for _, e := range cw.modified {
			st, ok, err := s.childUpdate(w, cw.c, key, e)
			if err != nil {
				return nil, err
			}
			if ok {
				stmts = append(stmts, st)
			}
		}
	}
	for i := range work {
		if cw := &work[i]; len(cw.added) > 0 {
			stmts = s.inserts(stmts, cw.c, key, cw.added)
		}
	}
	return stmts, nil
}

func anyTrue(b []bool) bool {
	for _, v := range b {
		if v {
			return true
		}
	}
	return false
}

// deletes appends the DELETEs of the removed rows of c: one statement with
// an array parameter on PostgreSQL, IN lists within the parameter limit
// otherwise.
func (s *Store[T, ID]) deletes(stmts []stmt, c *child, parent any, removed []unsafe.Pointer) []stmt {
	kc := &c.cols[c.key]
	w := &builder{d: s.d}
	if s.d.anyArray {
		keys := reflect.MakeSlice(reflect.SliceOf(kc.typ), 0, len(removed))
		for _, p := range removed {
			keys = reflect.Append(keys, reflect.NewAt(kc.typ, unsafe.Add(p, kc.offset)).Elem())
		}
		w.s("DELETE FROM " + c.quoted + " WHERE " + c.parentKey + " = ")
		w.p(parent)
		w.s(" AND " + kc.quoted + " = ANY(")
		w.p(keys.Interface())
		w.s(")")
		return append(stmts, w.stmt(noCheck))
	}
	per := s.d.maxParams - 1
	for len(removed) > 0 {
		n := min(per, len(removed))
		w.s("DELETE FROM " + c.quoted + " WHERE " + c.parentKey + " = ")
		w.p(parent)
		w.s(" AND " + kc.quoted + " IN (")
		for i, p := range removed[:n] {
			if i > 0 {
				w.s(", ")
			}
			w.p(kc.value(p))
		}
		w.s(")")
		stmts = append(stmts, w.stmt(noCheck))
		removed = removed[n:]
	}
	return stmts
}

// changedColumns marks the columns of tb that the field changes touch.
func (tb *table) changedColumns(fields []diff.Change) []bool {
	mark := make([]bool, len(tb.cols))
	for i := range fields {
		if idx, ok := fields[i].Path.FieldIndex(); ok && len(idx) > 0 {
			tb.changed(idx, mark)
		}
	}
	return mark
}

// updateSet writes `UPDATE "table" SET "col" = $n, ...` for the marked
// columns of tb, read from the struct at base, and returns the separator
// that continues the list.
func (w *builder) updateSet(tb *table, mark []bool, base unsafe.Pointer) string {
	w.s("UPDATE " + tb.quoted + " SET ")
	sep := ""
	for i, m := range mark {
		if m {
			w.s(sep + tb.cols[i].quoted + " = ")
			w.p(tb.cols[i].value(base))
			sep = ", "
		}
	}
	return sep
}

// childUpdate builds the UPDATE of the changed columns of a modified
// child, or reports false when no mapped column changed.
func (s *Store[T, ID]) childUpdate(w *builder, c *child, parent any, e *diff.Element) (stmt, bool, error) {
	mark := c.changedColumns(e.Fields)
	if !anyTrue(mark) {
		return stmt{}, false, nil
	}
	if mark[c.key] {
		return stmt{}, false, fmt.Errorf("%s: the key %s of element %v changed", c.spec.Field, c.cols[c.key].field, e.ID)
	}
	p, err := c.elemPtr(&e.New)
	if err != nil {
		return stmt{}, false, err
	}
	w.updateSet(&c.table, mark, p)
	w.s(" WHERE " + c.parentKey + " = ")
	w.p(parent)
	w.s(" AND " + c.cols[c.key].quoted + " = ")
	w.p(c.cols[c.key].value(p))
	return w.stmt(noCheck), true, nil
}

// Delete removes the aggregate, all or nothing: each child table's rows of
// the root, then the root row, which must have the given version (when
// the root has one). On PostgreSQL the root row is first locked and checked
// with SELECT ... FOR UPDATE. When the root row is missing or has another
// version, Delete fails with an error wrapping [repository.ErrConflict].
func (s *Store[T, ID]) Delete(ctx context.Context, agg T, version int64) error {
	if err := s.ready(); err != nil {
		return s.fail("delete", err)
	}
	base := typeinfo.PtrOf(agg)
	if base == nil {
		return s.fail("delete", fmt.Errorf("%w: nil aggregate", repository.ErrUnsupported))
	}
	stmts := s.deleteStmts(base, version)
	if err := s.db.run(ctx, stmts, true); err != nil {
		return s.fail("delete", s.keyed(err, base, s.m.root.version >= 0, version))
	}
	return nil
}

// deleteStmts builds the statements of Delete.
func (s *Store[T, ID]) deleteStmts(base unsafe.Pointer, version int64) []stmt {
	rt := &s.m.root
	key := rt.cols[rt.key].value(base)
	keyArgs := []any{key}
	if rt.version >= 0 {
		keyArgs = []any{key, version}
	}
	stmts := make([]stmt, 0, len(s.deleteChild)+2)
	if s.lockRoot != "" {
		stmts = append(stmts, stmt{sql: s.lockRoot, args: keyArgs, check: checkRow})
	}
	for _, q := range s.deleteChild {
		stmts = append(stmts, stmt{sql: q, args: []any{key}})
	}
	if s.lockRoot != "" {
		return append(stmts, stmt{sql: s.deleteRoot, args: keyArgs})
	}
	return append(stmts, stmt{sql: s.deleteRoot, args: keyArgs, check: checkRows})
}

// Repository is the repository of aggregates of type T on a [DB]: the
// [repository.AggregateRepositorySupport] over a [Store] (Find, Save,
// Remove, Update, ...), with queries that return tracked aggregates.
type Repository[T ddd.Aggregate[ID], ID comparable] struct {
	*repository.AggregateRepositorySupport[T, ID]
	store *Store[T, ID]
}

// NewRepository returns the repository of aggregates of type T on db with
// mapping m, with db as its [repository.Transactor], so that
// [repository.AggregateRepositorySupport.Update] runs in a transaction of
// db. opts are passed to [repository.NewSupport] after that one.
func NewRepository[T ddd.Aggregate[ID], ID comparable](db *DB, m *Mapping[T], opts ...repository.Option) (*Repository[T, ID], error) {
	if err := db.check(); err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	if m == nil {
		return nil, errors.New("sqlstore: nil *sqlstore.Mapping")
	}
	st := NewStore[T, ID](db, m)
	sup, err := repository.NewSupport[T, ID](st, append([]repository.Option{repository.WithTransactor(db)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return &Repository[T, ID]{AggregateRepositorySupport: sup, store: st}, nil
}

// Store returns the repository's store.
func (r *Repository[T, ID]) Store() *Store[T, ID] { return r.store }

// FindAll returns the aggregates that q selects, children included, in q's
// order, tracked as [repository.AggregateRepositorySupport.Find] tracks
// the one it returns: within a unit of work, an aggregate already loaded
// in it is returned as that same instance. See [Store.SelectWhere] for the
// statements and round trips.
func (r *Repository[T, ID]) FindAll(ctx context.Context, q Query) ([]T, error) {
	found, err := r.store.SelectWhere(ctx, q)
	if err != nil {
		return nil, err
	}
	return r.Track(ctx, found)
}

// FindByIDs returns the aggregates with the given identities, tracked, in
// the order of ids; identities that no aggregate has are left out.
func (r *Repository[T, ID]) FindByIDs(ctx context.Context, ids []ID) ([]T, error) {
	found, err := r.store.SelectByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	return r.Track(ctx, found)
}

// Count returns how many aggregates q's conditions select.
func (r *Repository[T, ID]) Count(ctx context.Context, q Query) (int64, error) {
	return r.store.Count(ctx, q)
}

// Exists reports whether q's conditions select any aggregate.
func (r *Repository[T, ID]) Exists(ctx context.Context, q Query) (bool, error) {
	return r.store.Exists(ctx, q)
}
