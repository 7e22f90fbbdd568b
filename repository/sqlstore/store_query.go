package sqlstore

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/dddkit/dddkit/internal/typeinfo"
)

// SelectWhere loads the aggregates that q selects, roots and children, in
// q's order: on pgx and on MySQL in one round trip (one batch: the roots'
// SELECT and one SELECT per child table restricted to the selected
// roots), elsewhere on database/sql one statement per table; outside a transaction all of them
// read one snapshot. Inside a transaction of PostgreSQL, MySQL or MariaDB
// at READ COMMITTED, whose statements each read the database as of their
// own start, the roots are locked as they are read (SELECT ... FOR SHARE,
// LOCK IN SHARE MODE on MySQL), and the children selected by the keys of
// the roots read, in a second round trip: no writer of a root read can
// commit before the transaction ends, so every root comes with its
// children, as they stood at one commit. On MySQL the children of a page
// of roots are selected by the page's query in a derived table, as MySQL
// takes no LIMIT in the subquery of an IN.
// The aggregates are not tracked: see [Repository.FindAll] for that.
func (s *Store[T, ID]) SelectWhere(ctx context.Context, q Query) ([]T, error) {
	if err := s.ready(); err != nil {
		return nil, s.fail("select", err)
	}
	rt := &s.m.root
	cq, err := rt.compile(q)
	if err != nil {
		return nil, s.fail("select", err)
	}

	w := &builder{d: s.d}
	w.s("SELECT ")
	columnList(w, rt.cols)
	w.s(" FROM " + rt.quoted)
	if err := cq.where(w); err != nil {
		return nil, s.fail("select", err)
	}
	cq.page(w)
	lk, err := s.rootLock(ctx, false)
	if err != nil {
		return nil, s.fail("select", err)
	}
	if lk == lockShare {
		w.s(s.d.shareSuffix)
	}
	rootStmt := w.stmt(noCheck)

	var roots []reflect.Value
	l := newLoader(s.m.children, s.wrap, false)
	dests := make([]any, len(rt.cols))
	kc := &rt.cols[rt.key]
	rootStmt.scan = func(r rowScanner) error {
		rv := reflect.New(rt.typ)
		base := rv.UnsafePointer()
		for i := range rt.cols {
			dests[i] = rt.cols[i].dest(base, s.wrap)
		}
		if err := r.Scan(dests...); err != nil {
			return err
		}
		rt.inUTC(base)
		l.root(base, kc.value(base))
		roots = append(roots, rv)
		return nil
	}
	stmts := []stmt{rootStmt}

	// In a PostgreSQL transaction at READ COMMITTED, each statement of a
	// batch sees the database as of its own start: a root committed or
	// changed between the roots' SELECT and a child's would shift the
	// selection. There the roots are locked as they are read (FOR SHARE),
	// so that no writer of theirs commits until the transaction ends, and
	// the children are read by the keys read: one more round trip.
	// Elsewhere all the statements read one snapshot (SQLite's
	// transactions, PostgreSQL's at REPEATABLE READ and above, and the
	// snapshot of a load outside a transaction), and the children's
	// selection repeats the roots' as a subquery, in the same batch.
	byKeys := lk == lockShare
	if byKeys {
		if err := s.db.run(ctx, stmts, false); err != nil {
			return nil, s.fail("select", err)
		}
		stmts = stmts[:0]
		if len(roots) == 0 || len(s.m.children) == 0 {
			return s.assemble(roots, l), nil
		}
	}
	var keys []any
	if byKeys {
		for _, base := range l.roots { // the roots read
			keys = append(keys, kc.value(base))
		}
	}
	lockKids := ""
	if byKeys {
		lockKids = s.kidsLock(ctx)
	}
	kids, err := s.childSelects(w, cq, keys, byKeys, lockKids)
	if err != nil {
		return nil, s.fail("select", err)
	}
	for i := range kids {
		kids[i].scan = l.scan(s.m.children[i])
	}
	stmts = append(stmts, kids...)
	if err := s.db.run(ctx, stmts, false); err != nil {
		return nil, s.fail("select", err)
	}
	return s.assemble(roots, l), nil
}

// childSelects returns the SELECT of each child table's rows under the
// roots that cq selects: the roots whose keys are keys when byKeys, else
// the roots of cq's selection, repeated as a subquery (in a derived table
// where the dialect takes no LIMIT in the subquery of an IN). lock ends
// each SELECT (see Store.kidsLock).
func (s *Store[T, ID]) childSelects(w *builder, cq *compiledQuery, keys []any, byKeys bool, lock string) ([]stmt, error) {
	rt := &s.m.root
	kc := &rt.cols[rt.key]
	theRoots := func(w *builder, cols []string) error {
		if byKeys {
			return inList(w, cols[0], kc, keys)
		}
		paged := cq.q.limit > 0 || cq.q.offset > 0
		// MySQL and MariaDB refuse a LIMIT in the subquery of an IN
		// (error 1235), and take it in a derived table.
		derived := paged && !s.d.limitInSubquery
		w.s(cols[0] + " IN (SELECT " + kc.quoted + " FROM ")
		if derived {
			w.s("(SELECT " + kc.quoted + " FROM ")
		}
		w.s(rt.quoted)
		if err := cq.where(w); err != nil {
			return err
		}
		if paged {
			cq.page(w)
		}
		if derived {
			w.s(") AS dddkit_page")
		}
		w.s(")")
		return nil
	}
	stmts := make([]stmt, 0, len(s.m.children))
	for _, c := range s.m.children {
		w.s("SELECT " + strings.Join(c.refCols, ", "))
		for i := range c.cols {
			w.s(", " + c.cols[i].quoted)
		}
		w.s(" FROM " + c.quoted + " WHERE ")
		if err := under(w, c, nil, theRoots); err != nil {
			return nil, err
		}
		w.s(" ORDER BY " + strings.Join(append(c.refCols[:len(c.refCols):len(c.refCols)], c.order()...), ", "))
		w.s(lock)
		stmts = append(stmts, w.stmt(noCheck))
	}
	return stmts, nil
}

// assemble sets the collections loaded for each root and returns the
// roots as aggregates.
func (s *Store[T, ID]) assemble(roots []reflect.Value, l *loader) []T {
	l.assemble(s.m.top)
	out := make([]T, len(roots))
	for i, rv := range roots {
		out[i] = rv.Interface().(T)
	}
	return out
}

// SelectByIDs loads the aggregates with the given keys, in the order of
// ids; keys that no aggregate has are left out, and a key given twice
// appears once. It is [Store.SelectWhere] with In on the key.
func (s *Store[T, ID]) SelectByIDs(ctx context.Context, ids []ID) ([]T, error) {
	if err := s.ready(); err != nil {
		return nil, s.fail("select", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rt := &s.m.root
	found, err := s.SelectWhere(ctx, Where(In(rt.cols[rt.key].name, args...)))
	if err != nil {
		return nil, err
	}
	byID := make(map[any]T, len(found))
	for _, agg := range found {
		byID[rt.cols[rt.key].value(typeinfo.PtrOf(agg))] = agg
	}
	out := make([]T, 0, len(found))
	kt := rt.cols[rt.key].typ
	for _, id := range ids {
		iv := reflect.ValueOf(id)
		if !iv.IsValid() || !iv.CanConvert(kt) || !sameKindFamily(iv.Kind(), kt.Kind()) || !fits(iv, kt) {
			return nil, s.fail("select", fmt.Errorf("%w: identity %v of type %T for a key column of type %v", ErrQuery, id, id, kt))
		}
		key := utcKey(iv.Convert(kt).Interface())
		if agg, ok := byID[key]; ok {
			out = append(out, agg)
			delete(byID, key)
		}
	}
	return out, nil
}

// Count returns how many aggregates q's conditions select; its order,
// limit and offset are ignored.
func (s *Store[T, ID]) Count(ctx context.Context, q Query) (int64, error) {
	var n int64
	err := s.aggregate(ctx, "count", q, "SELECT count(*) FROM ", "", &n)
	return n, err
}

// Exists reports whether q's conditions select any aggregate.
func (s *Store[T, ID]) Exists(ctx context.Context, q Query) (bool, error) {
	var ok bool
	err := s.aggregate(ctx, "exists", q, "SELECT EXISTS (SELECT 1 FROM ", ")", &ok)
	return ok, err
}

// aggregate runs prefix + the root table + q's WHERE + suffix and scans its
// one value into dest.
func (s *Store[T, ID]) aggregate(ctx context.Context, op string, q Query, prefix, suffix string, dest any) error {
	if err := s.ready(); err != nil {
		return s.fail(op, err)
	}
	rt := &s.m.root
	q.order, q.limit, q.offset, q.after = nil, 0, 0, nil
	cq, err := rt.compile(q)
	if err != nil {
		return s.fail(op, err)
	}
	w := &builder{d: s.d}
	w.s(prefix + rt.quoted)
	if err := cq.where(w); err != nil {
		return s.fail(op, err)
	}
	w.s(suffix)
	st := w.stmt(noCheck)
	st.scan = func(r rowScanner) error { return r.Scan(dest) }
	if err := s.db.run(ctx, []stmt{st}, false); err != nil {
		return s.fail(op, err)
	}
	return nil
}
