package sqlstore

import (
	"fmt"
	"reflect"
	"unsafe"
)

// The child tables of an aggregate form a tree. This file holds what walks
// it: the conditions that select the rows under some rows of an ancestor
// table, and the loader that builds collections from the rows of every
// level.

// selector writes a condition on cols, columns of some table that identify
// rows of an ancestor table: all of the ancestor's identifying columns
// (its parent key columns, then its key), or its key alone.
type selector func(w *builder, cols []string) error

// under writes a condition on the rows of c that selects those under the
// rows of table a (nil for the root) that sel selects. A table refers to
// every level above it by columns of its own, unless a level refers to
// its parent by its key alone (Child.ParentKeyOnly): the condition then
// goes through that parent's table, in a subquery.
func under(w *builder, c, a *child, sel selector) error {
	p := c.parent
	if p == a {
		if p == nil || c.spec.ParentKeyOnly {
			return sel(w, c.refCols[len(c.refCols)-1:])
		}
		return sel(w, c.refCols)
	}
	if c.spec.ParentKeyOnly {
		w.s(c.parentKey + " IN (SELECT " + p.cols[p.key].quoted + " FROM " + p.quoted + " WHERE ")
		if err := under(w, p, a, sel); err != nil {
			return err
		}
		w.s(")")
		return nil
	}
	return under(w, p, a, sel)
}

// group is rows of one table with the same parent: the values of the
// columns that identify the parent, and the rows' keys.
type group struct {
	refs []any
	keys []any
}

// sel returns the selector of the rows of g, of table c.
func (g group) sel(c *child) selector {
	kc := &c.cols[c.key]
	return func(w *builder, cols []string) error {
		if len(cols) > 1 {
			for i, v := range g.refs {
				w.s(cols[i] + " = ")
				w.p(v)
				w.s(" AND ")
			}
		}
		return inList(w, cols[len(cols)-1], kc, g.keys)
	}
}

// chunks splits g, rows of table c, into groups whose statements keep
// within the dialect's parameter limit and, where maxBytes is not zero,
// the size of a statement with its arguments formatted into it (see
// argBytes); one group where the keys go in one array parameter.
func (g group) chunks(d *dialect, maxBytes int, c *child) []group {
	if d.anyArray && plainKind(c.cols[c.key].typ) {
		return []group{g}
	}
	per := max(d.maxParams-len(g.refs), 1)
	budget := 0
	if maxBytes > 0 {
		budget = maxBytes - stmtMargin
		for _, v := range g.refs {
			budget -= argBytes(v)
		}
	}
	var out []group
	for keys := g.keys; len(keys) > 0; {
		n := min(per, len(keys))
		if maxBytes > 0 {
			size := 0
			for i, k := range keys[:n] {
				size += len(", ") + argBytes(k)
				if i > 0 && size > budget {
					n = i
					break
				}
			}
		}
		out = append(out, group{refs: g.refs, keys: keys[:n]})
		keys = keys[n:]
	}
	return out
}

// childRow is a row of a child table to insert.
type childRow struct {
	c *child
	p unsafe.Pointer // the element
	// parent is the new row of the parent, when the parent is inserted
	// too: the values of the parent key columns are read from it (and
	// from the root) when the row is inserted, after the parent's key may
	// have been generated.
	parent *childRow
	refs   []any // the parent key values, when the parent exists already
	// stage is the round trip of the save that inserts the row: one more
	// than its parent's when the parent's key is generated.
	stage int
	pos   int // the element's index in its collection
	// keep: the key is generated, and known (the element was stored
	// under another parent): the row is inserted with it.
	keep bool
}

// refVals returns the values of r's parent key columns; rootKey reads the
// root's key.
func (r *childRow) refVals(rootKey func() any) []any {
	switch {
	case r.parent != nil:
		return r.c.refsFor(r.parent.c.ids(r.parent.refVals(rootKey), r.parent.p))
	case r.refs != nil:
		return r.refs
	}
	return []any{rootKey()}
}

// key returns the key of the element at p.
func (c *child) keyOf(p unsafe.Pointer) any { return c.cols[c.key].value(p) }

// refsFor returns the values of c's parent key columns for a parent whose
// identifying values are idv (its parent key values, then its key).
func (c *child) refsFor(idv []any) []any {
	if c.parent != nil && c.spec.ParentKeyOnly {
		return idv[len(idv)-1:]
	}
	return idv
}

// ids returns the identifying values of the element at p of c, a row
// whose parent key values are refs.
func (c *child) ids(refs []any, p unsafe.Pointer) []any {
	out := make([]any, len(refs)+1)
	copy(out, refs)
	out[len(refs)] = c.keyOf(p)
	return out
}

// subtree appends to rows the row of the element at p, of c, under the
// new row parent or, when parent is nil, under an existing parent whose
// key values are refs (nil: the root), inserted in round trip stage; and
// the rows of its descendants, checking that no collection holds two
// elements of one identity. known holds, per table with a generated key,
// the keys the elements of the aggregate were stored with (nil for a new
// aggregate): a row of such a key is inserted with it.
func (c *child) subtree(rows [][]*childRow, parent *childRow, refs []any, stage, pos int, p unsafe.Pointer, known []map[any]unsafe.Pointer) ([][]*childRow, error) {
	r := &childRow{c: c, p: p, parent: parent, refs: refs, stage: stage, pos: pos}
	if c.generated && known != nil && known[c.index] != nil {
		_, r.keep = known[c.index][c.keyOf(p)]
	}
	rows[c.index] = append(rows[c.index], r)
	if c.generated && !r.keep {
		stage++ // the children need the key the INSERT generates
	}
	for _, k := range c.kids {
		elems, err := k.elements(p)
		if err != nil {
			return nil, err
		}
		if err := k.unique(elems); err != nil {
			return nil, err
		}
		for i, e := range elems {
			if rows, err = k.subtree(rows, r, nil, stage, i, e, known); err != nil {
				return nil, err
			}
		}
	}
	return rows, nil
}

// loader builds aggregates from the rows of their tables: the roots, then
// each child table's rows, parents before children. Rows are matched to
// their parent by the parent key columns they hold.
type loader struct {
	children []*child
	native   bool
	// single: one root is loaded, and the tables of the first level are
	// selected without their parent key column, which holds its key.
	single   bool
	roots    []unsafe.Pointer
	rootOf   map[any]int // root key -> index in roots
	nodes    [][]node    // per child table, in row order
	byParent []map[nodeKey]int
	byKey    []map[any]int // for tables with ownKeys: key -> node
	refs     [][]any       // per child table: destinations of the parent key columns
	dests    [][]any
}

type node struct {
	v      reflect.Value // pointer to the element struct
	parent int           // index of the parent node, or of the root
}

type nodeKey struct {
	parent int
	key    any
}

func newLoader(children []*child, native, single bool) *loader {
	n := len(children)
	l := &loader{children: children, native: native, single: single, rootOf: map[any]int{},
		nodes: make([][]node, n), byParent: make([]map[nodeKey]int, n), byKey: make([]map[any]int, n),
		refs: make([][]any, n), dests: make([][]any, n)}
	for i, c := range children {
		l.byParent[i] = map[nodeKey]int{}
		if c.ownKeys {
			l.byKey[i] = map[any]int{}
		}
		if !l.bare(c) {
			l.refs[i] = make([]any, len(c.refTypes))
			for j, t := range c.refTypes {
				l.refs[i][j] = reflect.New(t).Interface()
			}
		}
		l.dests[i] = make([]any, len(l.refs[i])+len(c.cols))
		copy(l.dests[i], l.refs[i])
	}
	return l
}

// bare reports whether the rows of c are selected without their parent
// key columns.
func (l *loader) bare(c *child) bool { return l.single && c.parent == nil }

// root records a root read, at base, with key key.
func (l *loader) root(base unsafe.Pointer, key any) {
	l.rootOf[key] = len(l.roots)
	l.roots = append(l.roots, base)
}

// scan returns the scan function of the rows of c: its parent key
// columns, then its columns.
func (l *loader) scan(c *child) func(r rowScanner) error {
	return func(r rowScanner) error {
		ev := reflect.New(c.typ)
		p := ev.UnsafePointer()
		d := l.dests[c.index]
		nr := len(l.refs[c.index])
		for i := range c.cols {
			d[nr+i] = c.cols[i].dest(p, l.native)
		}
		if err := r.Scan(d...); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		c.inUTC(p)
		pi, ok := 0, true
		if nr > 0 {
			vals := make([]any, nr)
			for i, rp := range l.refs[c.index] {
				vals[i] = utcKey(reflect.ValueOf(rp).Elem().Interface())
			}
			pi, ok = l.resolve(c, vals)
		}
		if !ok {
			// A parent not in this result: a row committed after its
			// parent's SELECT, in a transaction that reads each statement
			// as of its own start.
			return nil
		}
		key := c.keyOf(p)
		at := len(l.nodes[c.index])
		l.nodes[c.index] = append(l.nodes[c.index], node{v: ev, parent: pi})
		l.byParent[c.index][nodeKey{pi, key}] = at
		if m := l.byKey[c.index]; m != nil {
			if _, dup := m[key]; dup {
				return fmt.Errorf("%s: key %v is held by two rows, and a table below refers to its rows by key alone (ParentKeyOnly)", c.name, key)
			}
			m[key] = at
		}
		return nil
	}
}

// resolve returns the index of the parent node of a row of c whose parent
// key columns hold vals, among the nodes of c's parent (or the roots).
func (l *loader) resolve(c *child, vals []any) (int, bool) {
	p := c.parent
	if p == nil {
		i, ok := l.rootOf[vals[0]]
		return i, ok
	}
	if c.spec.ParentKeyOnly {
		i, ok := l.byKey[p.index][vals[len(vals)-1]]
		return i, ok
	}
	gi, ok := l.resolve(p, vals[:len(vals)-1])
	if !ok {
		return 0, false
	}
	i, ok := l.byParent[p.index][nodeKey{gi, vals[len(vals)-1]}]
	return i, ok
}

// assemble puts every element into its parent's collection, the deepest
// levels first, so that an element stored by value is copied into its
// parent's collection with its own collections set.
func (l *loader) assemble(top []*child) {
	colls := make([][]reflect.Value, len(l.children)) // per table, by parent index
	setKids := func(kids []*child, base unsafe.Pointer, at int) {
		for _, k := range kids {
			if at < len(colls[k.index]) {
				if v := colls[k.index][at]; v.IsValid() {
					reflect.NewAt(k.collType, unsafe.Add(base, k.offset)).Elem().Set(v)
				}
			}
		}
	}
	for i := len(l.children) - 1; i >= 0; i-- {
		c := l.children[i]
		n := len(l.roots)
		if c.parent != nil {
			n = len(l.nodes[c.parent.index])
		}
		colls[i] = make([]reflect.Value, n)
		if c.collType.Kind() == reflect.Map {
			// A map collection loads as an empty map, never nil.
			for j := range colls[i] {
				colls[i][j] = c.newCollection()
			}
		}
		for j, nd := range l.nodes[i] {
			setKids(c.kids, nd.v.UnsafePointer(), j)
			v := colls[i][nd.parent]
			if !v.IsValid() {
				v = c.newCollection()
			}
			colls[i][nd.parent] = c.addTo(v, nd.v)
		}
	}
	for j, base := range l.roots {
		setKids(top, base, j)
	}
}

// newCollection returns an empty collection of c: a new map, or a nil
// slice.
func (c *child) newCollection() reflect.Value {
	if c.collType.Kind() == reflect.Map {
		return reflect.MakeMap(c.collType)
	}
	return reflect.Zero(c.collType)
}

// addTo adds the element ev (a pointer to a new element struct) to the
// collection v, and returns the collection.
func (c *child) addTo(v, ev reflect.Value) reflect.Value {
	val := ev
	if !c.ptr {
		val = ev.Elem()
	}
	if v.Kind() == reflect.Map {
		p := ev.UnsafePointer()
		at := p
		if c.ptr {
			at = unsafe.Pointer(&p)
		}
		id, _ := c.ident.Read(at)
		v.SetMapIndex(reflect.ValueOf(id), val)
		return v
	}
	return reflect.Append(v, val)
}

// below reports whether c is a table below a, at any depth.
func (c *child) below(a *child) bool {
	for p := c.parent; p != nil; p = p.parent {
		if p == a {
			return true
		}
	}
	return false
}

// order returns the columns that order the rows of c within their parent:
// the position, if c has one, then the key.
func (c *child) order() []string {
	if c.position != "" {
		return []string{c.position, c.cols[c.key].quoted}
	}
	return []string{c.cols[c.key].quoted}
}
