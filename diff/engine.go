package diff

import (
	"fmt"
	"reflect"
	"sort"
	"sync"
	"unsafe"

	"github.com/dddkit/dddkit/internal/typeinfo"
)

// cycleDepth is how many pointers deep a comparison goes before it starts
// to look for cycles, as encoding/json does: values nested less deeply pay
// nothing for the check.
const cycleDepth = 1000

// compareFirstDepth is the depth up to which the elements of an entity
// collection of a recursive type are compared before they are walked.
const compareFirstDepth = 32

// errTooDeep reports a value nested more than typeinfo.MaxDepth deep.
var errTooDeep = fmt.Errorf("values nested more than %d deep: %w", typeinfo.MaxDepth, ErrUnsupported)

// walk is the state of one comparison. It comes from a pool, so that an
// equal pair of values is compared without allocating.
type walk struct {
	// depth counts the pointers, slices, maps and interfaces entered, one
	// inside another, on the way to the current value.
	depth  int
	onPath map[unsafe.Pointer]struct{}
	// containers on the path (slice arrays, maps, interface data), for the
	// cycles that go through them rather than through a pointer
	inside map[unsafe.Pointer]struct{}
	// deep reports that the walk went past cycleDepth, growing the maps
	// above, which are then not kept for the next walk.
	deep bool
	// path holds the steps from the root to the current value, one stack
	// shared by the whole walk: a Path is made from it only when a change
	// or an error is recorded, so that memory grows with the depth, not
	// with its square. base is where the steps of the entity that owns the
	// current value start: the paths of its changes are relative to it.
	path []Step
	base int
	err  *Error
}

var walkPool = sync.Pool{New: func() any { return new(walk) }}

func getWalk() *walk { return walkPool.Get().(*walk) }

func putWalk(w *walk) {
	w.reset()
	walkPool.Put(w)
}

// maxKeptPath is the longest path stack a pooled walk keeps.
const maxKeptPath = 1024

func (w *walk) reset() {
	w.depth = 0
	w.err = nil
	if w.deep {
		w.onPath, w.inside, w.deep = nil, nil, false
	} else {
		clear(w.onPath)
		clear(w.inside)
	}
	if cap(w.path) > maxKeptPath {
		w.path = nil
	} else {
		clear(w.path[:cap(w.path)])
		w.path = w.path[:0]
	}
	w.base = 0
}

// start prepares the walk of roots of plan pl: reached through a pointer,
// which is a step of depth if pl may recurse (see follow), or stored in
// place.
func (w *walk) start(pl *plan, isPtr bool) {
	if isPtr && pl.mayCycle {
		w.depth = 1
	}
}

// fail records e as the error of the walk, unless there is one already.
// e.Path, if any, is relative to the current value: the error's path is the
// current path followed by it. e is not changed (it may be cached).
func (w *walk) fail(e *Error) {
	if w.err != nil {
		return
	}
	var path Path
	if n := len(w.path) + len(e.Path); n > 0 {
		path = make(Path, 0, n)
		path = append(append(path, w.path...), e.Path...)
	}
	w.err = &Error{Path: path, Err: e.Err}
}

// failAt records err as the error of the walk at step s of the current
// value.
func (w *walk) failAt(s Step, err error) {
	w.fail(&Error{Path: Path{s}, Err: err})
}

// push adds step s to the path; pop removes it.
func (w *walk) push(s Step) { w.path = append(w.path, s) }

func (w *walk) pop() {
	w.path[len(w.path)-1] = nil
	w.path = w.path[:len(w.path)-1]
}

// relPath returns the path of the current value relative to the entity that
// owns it, as a Path of its own (nil when empty).
func (w *walk) relPath() Path {
	rel := w.path[w.base:]
	if len(rel) == 0 {
		return nil
	}
	return append(make(Path, 0, len(rel)), rel...)
}

// down notes a step into a pointer, slice, map or interface and reports
// false, having failed the walk, past typeinfo.MaxDepth. The caller undoes
// a successful step with w.depth--.
func (w *walk) down() bool {
	if w.depth >= typeinfo.MaxDepth {
		w.fail(&Error{Err: errTooDeep})
		return false
	}
	w.depth++
	if w.depth > cycleDepth {
		w.deep = true
	}
	return true
}

// onPathEnter notes the pointer pa on the path, for values nested past
// cycleDepth, and reports false, having failed the walk, when it is
// already there: a value that contains itself.
func (w *walk) onPathEnter(pa unsafe.Pointer) bool {
	if w.onPath == nil {
		w.onPath = make(map[unsafe.Pointer]struct{})
	}
	if _, ok := w.onPath[pa]; ok {
		w.fail(&Error{Err: ErrCycle})
		return false
	}
	w.onPath[pa] = struct{}{}
	return true
}

// compareRoot compares the roots; checked reports that the caller already
// found them unequal at first sight.
func compareRoot(t reflect.Type, p, q unsafe.Pointer, isPtr, checked bool) (Result, error) {
	pl, a, b, done, err := rootPlan(t, p, q, isPtr)
	if err != nil || done {
		return Result{}, err
	}
	if pl == nil { // one root pointer is nil, the other is not
		return Result{Changes{Fields: []Change{{Old: rootValue(t, p), New: rootValue(t, q)}}}}, nil
	}
	if !checked && !pl.mayCycle && pl.eq(nil, a, b) {
		return Result{}, nil
	}
	w := getWalk()
	defer putWalk(w)
	w.start(pl, isPtr)
	if pl.mayCycle && pl.eq(w, a, b) && w.err == nil {
		return Result{}, nil
	}
	w.reset()
	w.start(pl, isPtr)
	var r Result
	w.diffValue(pl, a, b, &r.Changes)
	if w.err != nil {
		return Result{}, w.err
	}
	return r, nil
}

func equalRoot(t reflect.Type, p, q unsafe.Pointer, isPtr bool) (bool, error) {
	pl, a, b, done, err := rootPlan(t, p, q, isPtr)
	if err != nil {
		return false, err
	}
	if done {
		return true, nil
	}
	if pl == nil {
		return false, nil
	}
	if !pl.mayCycle && pl.eq(nil, a, b) {
		return true, nil
	}
	w := getWalk()
	defer putWalk(w)
	w.start(pl, isPtr)
	if pl.mayCycle && pl.eq(w, a, b) && w.err == nil {
		return true, nil
	}
	// Not equal at first sight, or an error: the full walk tells a reorder
	// of entities from a change, and where a problem is.
	w.reset()
	w.start(pl, isPtr)
	var c Changes
	w.diffValue(pl, a, b, &c)
	if w.err != nil {
		return false, w.err
	}
	return c.Empty(), nil
}

// rootPlan returns the plan to compare the roots with and the addresses of
// the compared values. done reports the values equal without comparing; a
// nil plan with no error means one root pointer is nil and the other not.
func rootPlan(t reflect.Type, p, q unsafe.Pointer, isPtr bool) (pl *plan, a, b unsafe.Pointer, done bool, err error) {
	if !isPtr {
		pl, err := planOf(t)
		if err != nil {
			return nil, nil, nil, false, err
		}
		return pl, p, q, false, nil
	}
	pl, err = planOf(t.Elem())
	if err != nil {
		return nil, nil, nil, false, err
	}
	switch {
	case p == q:
		return pl, p, q, true, nil
	case p == nil || q == nil:
		return nil, nil, nil, false, nil
	}
	return pl, p, q, false, nil
}

func rootValue(t reflect.Type, p unsafe.Pointer) any {
	if p == nil {
		return reflect.Zero(t).Interface()
	}
	return reflect.NewAt(t.Elem(), p).Interface()
}

// valueOf returns the value of type t stored at p.
func valueOf(t reflect.Type, p unsafe.Pointer) any {
	return reflect.NewAt(t, p).Elem().Interface()
}

func (w *walk) ptrEq(elem *plan, a, b unsafe.Pointer) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	if w == nil { // a type that cannot recurse without end
		return elem.eq(nil, a, b)
	}
	if w.err != nil || !w.follow(elem, a) {
		return false
	}
	eq := elem.eq(w, a, b)
	w.unfollow(elem, a)
	return eq
}

// follow notes a step through a pointer to pa, a value of plan e, and
// reports false, having failed the walk, when pa is already on the path (a
// value that contains itself) or past typeinfo.MaxDepth. Only a value that
// may recurse is a step: the others nest no deeper than their type. Cycles
// are looked for only past cycleDepth. A successful step is undone by
// unfollow.
func (w *walk) follow(e *plan, pa unsafe.Pointer) bool {
	if !e.mayCycle {
		return true
	}
	if !w.down() {
		return false
	}
	if w.depth > cycleDepth && !w.onPathEnter(pa) {
		w.depth--
		return false
	}
	return true
}

// unfollow undoes follow(e, pa).
func (w *walk) unfollow(e *plan, pa unsafe.Pointer) {
	if !e.mayCycle {
		return
	}
	if w.depth > cycleDepth {
		delete(w.onPath, pa)
	}
	w.depth--
}

// enter notes a step into the container at p (a slice's array, a map, the
// data of an interface) holding values of plan e, as follow does for a
// pointer: it reports false, having failed the walk, when p is already on
// the path or past typeinfo.MaxDepth. A successful step is undone by leave.
func (w *walk) enter(e *plan, p unsafe.Pointer) bool {
	if !e.mayCycle {
		return true
	}
	if !w.down() {
		return false
	}
	if w.depth <= cycleDepth || p == nil {
		return true
	}
	if w.inside == nil {
		w.inside = make(map[unsafe.Pointer]struct{})
	}
	if _, ok := w.inside[p]; ok {
		w.fail(&Error{Err: ErrCycle})
		w.depth--
		return false
	}
	w.inside[p] = struct{}{}
	return true
}

// leave undoes enter(e, p).
func (w *walk) leave(e *plan, p unsafe.Pointer) {
	if !e.mayCycle {
		return
	}
	if w.depth > cycleDepth && p != nil {
		delete(w.inside, p)
	}
	w.depth--
}

func (w *walk) sliceEq(elem *plan, a, b unsafe.Pointer) bool {
	x, y := (*typeinfo.SliceHeader)(a), (*typeinfo.SliceHeader)(b)
	if x.Len != y.Len {
		return false
	}
	if x.Len == 0 || x.Data == y.Data {
		return true
	}
	if w != nil {
		if !w.enter(elem, x.Data) {
			return false
		}
		defer w.leave(elem, x.Data)
	}
	esz := elem.size
	switch elem.kind {
	case kindMem:
		n := uintptr(x.Len) * esz
		return unsafe.String((*byte)(x.Data), n) == unsafe.String((*byte)(y.Data), n)
	case kindPointer:
		if target := elem.elem; w == nil && target.kind == kindStruct {
			// The common case, []*Entity: compare the structs in line,
			// without a call per element.
			return ptrSliceEq(target, x, y)
		}
		for i := uintptr(0); i < uintptr(x.Len); i++ {
			pa := *(*unsafe.Pointer)(unsafe.Add(x.Data, i*esz))
			pb := *(*unsafe.Pointer)(unsafe.Add(y.Data, i*esz))
			if !w.ptrEq(elem.elem, pa, pb) {
				return false
			}
		}
		return true
	case kindStruct:
		ops := elem.ops
		for i := uintptr(0); i < uintptr(x.Len); i++ {
			if !opsEq(w, ops, unsafe.Add(x.Data, i*esz), unsafe.Add(y.Data, i*esz)) {
				return false
			}
		}
		return true
	}
	for i := uintptr(0); i < uintptr(x.Len); i++ {
		if !elem.eq(w, unsafe.Add(x.Data, i*esz), unsafe.Add(y.Data, i*esz)) {
			return false
		}
	}
	return true
}

// entitySliceEq compares two slices of entities: equal when they hold the
// same entities with equal contents, in any order.
func (w *walk) entitySliceEq(p *plan, a, b unsafe.Pointer) bool {
	if w.sliceEq(p.elem, a, b) {
		return true
	}
	x, y := (*typeinfo.SliceHeader)(a), (*typeinfo.SliceHeader)(b)
	if w == nil || x.Len != y.Len || w.err != nil {
		// Without a walk, report a possible difference: the walk that
		// builds the result tells a reorder from a change.
		return false
	}
	// Same length, not equal in order. Elements of the same identities at
	// the same positions were compared as identity would pair them, so the
	// slices differ; otherwise they are equal only if reordered.
	if alignedIDs(p, x, y) {
		return false
	}
	if !w.enter(p.elem, x.Data) {
		return false
	}
	var c Changes
	w.diffEntities(p, sliceElems(p, x), sliceElems(p, y), &c)
	w.leave(p.elem, x.Data)
	return w.err == nil && c.Empty()
}

// alignedIDs reports whether the entities of two slices of plan p, of the
// same length, have the same identities position by position.
func alignedIDs(p *plan, x, y *typeinfo.SliceHeader) bool {
	esz := p.elem.size
	for i := range uintptr(x.Len) {
		if !p.identity.Same(unsafe.Add(x.Data, i*esz), unsafe.Add(y.Data, i*esz)) {
			return false
		}
	}
	return true
}

// elems is the elements of a collection: of a slice, read in place, or of a
// map, copied out.
type elems struct {
	data unsafe.Pointer // slice: the backing array
	size uintptr        // slice: the element size
	ptrs []unsafe.Pointer
	n    int
}

func (e *elems) at(i int) unsafe.Pointer {
	if e.ptrs != nil {
		return e.ptrs[i]
	}
	return unsafe.Add(e.data, uintptr(i)*e.size)
}

func sliceElems(p *plan, h *typeinfo.SliceHeader) elems {
	return elems{data: h.Data, size: p.elem.size, n: h.Len}
}

func ptrElems(ptrs []unsafe.Pointer) elems {
	if ptrs == nil {
		ptrs = []unsafe.Pointer{}
	}
	return elems{ptrs: ptrs, n: len(ptrs)}
}

// entityMapEq reports whether the maps of entities ma and mb, of plan p
// and of the same length, hold equal elements under the same keys, each
// element under its own identity and none nil. False means possibly
// different.
func entityMapEq(p *plan, ma, mb reflect.Value) bool {
	ptr := p.elem.kind == kindPointer
	k := reflect.New(p.key).Elem()
	va, vb := reflect.New(p.t.Elem()).Elem(), reflect.New(p.t.Elem()).Elem()
	for it := ma.MapRange(); it.Next(); {
		k.SetIterKey(it)
		va.SetIterValue(it)
		v := mb.MapIndex(k)
		if !v.IsValid() {
			return false
		}
		vb.Set(v)
		pa, pb := va.Addr().UnsafePointer(), vb.Addr().UnsafePointer()
		if ptr && (va.IsNil() || vb.IsNil()) {
			return false
		}
		if !p.identity.Is(pa, k.Addr().UnsafePointer()) || !p.elem.eq(nil, pa, pb) {
			return false
		}
	}
	return true
}

// mapValues returns pointers to copies of the values of the map at a, and
// the keys by the same index.
func mapValues(p *plan, a unsafe.Pointer) ([]reflect.Value, []unsafe.Pointer) {
	m := reflect.NewAt(p.t, a).Elem()
	keys := make([]reflect.Value, 0, m.Len())
	vals := make([]unsafe.Pointer, 0, m.Len())
	it := m.MapRange()
	for it.Next() {
		k := reflect.New(p.key).Elem()
		k.SetIterKey(it)
		v := reflect.New(p.t.Elem())
		v.Elem().SetIterValue(it)
		keys = append(keys, k)
		vals = append(vals, v.UnsafePointer())
	}
	// Sort by key, so that results and errors do not depend on the order
	// in which the map is iterated.
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return keyLess(keys[idx[i]], keys[idx[j]]) })
	sk := make([]reflect.Value, len(keys))
	sv := make([]unsafe.Pointer, len(vals))
	for i, j := range idx {
		sk[i], sv[i] = keys[j], vals[j]
	}
	return sk, sv
}

// keyLess orders map keys: numbers and strings by value, other keys by
// their printed form.
func keyLess(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() < b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() < b.Uint()
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		return x < y || (x != x && y == y) // NaNs first
	case reflect.String:
		return a.String() < b.String()
	case reflect.Bool:
		return !a.Bool() && b.Bool()
	}
	return fmt.Sprint(a.Interface()) < fmt.Sprint(b.Interface())
}

func (w *walk) mapEq(p *plan, a, b unsafe.Pointer) bool {
	ma, mb := reflect.NewAt(p.t, a).Elem(), reflect.NewAt(p.t, b).Elem()
	if ma.Len() != mb.Len() {
		return false
	}
	if ma.Len() == 0 || ma.UnsafePointer() == mb.UnsafePointer() {
		return true
	}
	if w != nil {
		m := ma.UnsafePointer()
		if !w.enter(p.elem, m) {
			return false
		}
		defer w.leave(p.elem, m)
	}
	if p.identity != nil {
		// Entities are keyed by identity, so equal maps hold equal values
		// under the same keys, whatever the order: tried first, without
		// allocating. It cannot tell what an element holds in another
		// order (a reordered collection of entities inside), nor check a
		// nil element: for those, a walk matches the elements one by one.
		// Elements that may recur are left to the walk, which watches for
		// cycles, and so is a map keyed by another type than the identity.
		if !p.elem.mayCycle && p.key == p.identity.Type && entityMapEq(p, ma, mb) {
			return true
		}
		if w == nil {
			return false // possibly different; see entitySliceEq
		}
		_, va := mapValues(p, a)
		_, vb := mapValues(p, b)
		var c Changes
		w.diffEntities(p, ptrElems(va), ptrElems(vb), &c)
		return w.err == nil && c.Empty()
	}
	keys, va := mapValues(p, a)
	vb := reflect.New(p.t.Elem())
	var nans []int // the entries of a under a key holding a NaN
	for i, k := range keys {
		v := mb.MapIndex(k)
		if !v.IsValid() {
			if p.nanKeys && hasNaN(k) {
				nans = append(nans, i) // never found by lookup
				continue
			}
			return false
		}
		vb.Elem().Set(v)
		if !p.elem.eq(w, va[i], vb.UnsafePointer()) {
			return false
		}
	}
	// Every other key of a is in b, which has as many entries: what is
	// left of b is its entries under NaN keys, or keys a does not have.
	return len(nans) == 0 || w.nanEntriesEq(p, keys, va, nans, mb)
}

// nanEntriesEq compares the entries of map a under keys holding a NaN (at
// the indexes nans of keys and va, as returned by mapValues) with those of
// map mb. By the rule that a NaN equals a NaN, such an entry equals an entry
// of mb whose key is equal in that sense and whose value is equal; as such
// keys cannot be looked up, nor ordered, the entries are paired as a
// multiset: each with one of its own.
func (w *walk) nanEntriesEq(p *plan, keys []reflect.Value, va []unsafe.Pointer, nans []int, mb reflect.Value) bool {
	var bKeys []reflect.Value
	var bVals []unsafe.Pointer
	it := mb.MapRange()
	for it.Next() {
		k := reflect.New(p.key).Elem()
		k.SetIterKey(it)
		if !hasNaN(k) {
			continue
		}
		v := reflect.New(p.t.Elem())
		v.Elem().SetIterValue(it)
		bKeys, bVals = append(bKeys, k), append(bVals, v.UnsafePointer())
	}
	if len(bKeys) != len(nans) {
		return false // b has a key that a has not
	}
	used := make([]bool, len(bKeys))
	for _, i := range nans {
		found := false
		for j := range bKeys {
			if !used[j] && nanKeyEq(keys[i], bKeys[j]) && p.elem.eq(w, va[i], bVals[j]) {
				used[j], found = true, true
				break
			}
			if w != nil && w.err != nil {
				return false
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// mayHoldNaN reports whether a map key of type t may hold a NaN, and so
// not equal itself.
func mayHoldNaN(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128, reflect.Interface:
		return true
	case reflect.Array:
		return t.Len() > 0 && mayHoldNaN(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if mayHoldNaN(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

// hasNaN reports whether the map key k holds a NaN: whether it does not
// equal itself.
func hasNaN(k reflect.Value) bool {
	switch k.Kind() {
	case reflect.Float32, reflect.Float64:
		f := k.Float()
		return f != f
	case reflect.Complex64, reflect.Complex128:
		c := k.Complex()
		return real(c) != real(c) || imag(c) != imag(c)
	case reflect.Interface:
		return !k.IsNil() && hasNaN(k.Elem())
	case reflect.Array:
		for i := range k.Len() {
			if hasNaN(k.Index(i)) {
				return true
			}
		}
	case reflect.Struct:
		for i := range k.NumField() {
			if hasNaN(k.Field(i)) {
				return true
			}
		}
	}
	return false
}

// nanKeyEq reports whether the map keys a and b, of one comparable type,
// are equal as Go compares them, except that a NaN equals a NaN.
func nanKeyEq(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		return f64eq(a.Float(), b.Float())
	case reflect.Complex64, reflect.Complex128:
		x, y := a.Complex(), b.Complex()
		return f64eq(real(x), real(y)) && f64eq(imag(x), imag(y))
	case reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() && b.IsNil()
		}
		return a.Elem().Type() == b.Elem().Type() && nanKeyEq(a.Elem(), b.Elem())
	case reflect.Array:
		for i := range a.Len() {
			if !nanKeyEq(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := range a.NumField() {
			if !nanKeyEq(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	case reflect.String:
		return a.String() == b.String()
	case reflect.Pointer, reflect.Chan, reflect.UnsafePointer:
		return a.Pointer() == b.Pointer()
	}
	return false
}

// ifaceData returns a pointer to the value of dynamic type dt held by the
// interface stored at a.
func ifaceData(a unsafe.Pointer, dt reflect.Type) unsafe.Pointer {
	word := unsafe.Add(a, unsafe.Sizeof(uintptr(0)))
	if typeinfo.DirectIface(dt) {
		return word
	}
	return *(*unsafe.Pointer)(word)
}

func (w *walk) ifaceEq(p *plan, a, b unsafe.Pointer) bool {
	va, vb := reflect.NewAt(p.t, a).Elem(), reflect.NewAt(p.t, b).Elem()
	if va.IsNil() || vb.IsNil() {
		return va.IsNil() && vb.IsNil()
	}
	dt := va.Elem().Type()
	if dt != vb.Elem().Type() {
		return false
	}
	dp, err := planOf(dt)
	if err != nil {
		if w != nil {
			w.fail(err.(*Error))
		}
		return false
	}
	if w != nil {
		d := ifaceData(a, dt)
		if !w.enter(p, d) {
			return false
		}
		defer w.leave(p, d)
	}
	return dp.eq(w, ifaceData(a, dt), ifaceData(b, dt))
}

// diffValue reports how the values at a and b, of plan pl, differ, into out.
// It is called only for values that may differ. The current path is the
// path of the values.
func (w *walk) diffValue(pl *plan, a, b unsafe.Pointer, out *Changes) {
	if w.err != nil {
		return
	}
	switch pl.kind {
	case kindStruct:
		// Fields are walked without comparing them first: comparing and
		// then walking would visit deep values once per level.
		for i := range pl.fields {
			f := &pl.fields[i]
			x, y := unsafe.Add(a, f.off), unsafe.Add(b, f.off)
			// A field that cannot recurse without end is compared first, so
			// that an unchanged field costs no path and no walk. The others
			// are walked at once: comparing them first would visit a deep
			// value once per level. So are entity collections, whose walk
			// compares them in one pass.
			if !f.plan.mayCycle && f.plan.identity == nil && f.plan.eq(nil, x, y) {
				continue
			}
			w.push(f.step)
			w.diffValue(f.plan, x, y, out)
			w.pop()
			if w.err != nil {
				return
			}
		}
		return
	case kindPointer:
		pa, pb := *(*unsafe.Pointer)(a), *(*unsafe.Pointer)(b)
		if pa == pb {
			return
		}
		if pa != nil && pb != nil && pl.elem.kind == kindStruct {
			if w.follow(pl.elem, pa) {
				w.diffValue(pl.elem, pa, pb, out)
				w.unfollow(pl.elem, pa)
			}
			return
		}
	case kindSlice:
		if pl.identity != nil {
			x := (*typeinfo.SliceHeader)(a)
			if w.enter(pl.elem, x.Data) {
				w.diffEntities(pl, sliceElems(pl, x), sliceElems(pl, (*typeinfo.SliceHeader)(b)), out)
				w.leave(pl.elem, x.Data)
			}
			return
		}
	case kindMap:
		if pl.identity != nil {
			m := *(*unsafe.Pointer)(a)
			if w.enter(pl.elem, m) {
				_, va := mapValues(pl, a)
				_, vb := mapValues(pl, b)
				w.diffEntities(pl, ptrElems(va), ptrElems(vb), out)
				w.leave(pl.elem, m)
			}
			return
		}
	}
	if pl.eq(w, a, b) {
		return
	}
	if w.err != nil {
		return
	}
	out.Fields = append(out.Fields, Change{Path: w.relPath(), Old: valueOf(pl.t, a), New: valueOf(pl.t, b)})
}

// checkIDs checks the entity collections inside the value at a, of plan pl,
// for nil elements and duplicate identities: what comparing it with nothing
// would find. The current path is the path of the value.
func (w *walk) checkIDs(pl *plan, a unsafe.Pointer) {
	if w.err != nil || !pl.hasEntities {
		return
	}
	switch pl.kind {
	case kindStruct:
		for i := range pl.fields {
			f := &pl.fields[i]
			w.push(f.step)
			w.checkIDs(f.plan, unsafe.Add(a, f.off))
			w.pop()
		}
	case kindPointer:
		pa := *(*unsafe.Pointer)(a)
		if pa != nil && w.follow(pl.elem, pa) {
			w.checkIDs(pl.elem, pa)
			w.unfollow(pl.elem, pa)
		}
	case kindSlice, kindMap:
		var all elems
		var c unsafe.Pointer // the container, for cycles
		if pl.kind == kindSlice {
			h := (*typeinfo.SliceHeader)(a)
			all, c = sliceElems(pl, h), h.Data
		} else {
			_, ptrs := mapValues(pl, a)
			all, c = ptrElems(ptrs), *(*unsafe.Pointer)(a)
		}
		if !w.enter(pl.elem, c) {
			return
		}
		defer w.leave(pl.elem, c)
		if pl.identity == nil {
			for i := range all.n {
				w.checkIDs(pl.elem, all.at(i))
			}
			return
		}
		// Compared with nothing, every element is added: diffEntities
		// checks the identities and, through checkIDs, their insides.
		w.diffEntities(pl, ptrElems(nil), all, &Changes{})
	}
}

// keyReader returns a function that reads the identity of an entity stored
// at a pointer as a map key of type K, with false for a nil entity.
type keyReader[K comparable] func(ptr unsafe.Pointer) (K, bool)

// fieldOf returns the address of the tagged identity field of the entity at
// ptr, or nil for a nil entity.
func fieldOf(id *typeinfo.Identity, ptr unsafe.Pointer) unsafe.Pointer {
	if id.Deref {
		if ptr = *(*unsafe.Pointer)(ptr); ptr == nil {
			return nil
		}
	}
	return unsafe.Add(ptr, id.Offset)
}

// idOf returns the identity of the entity at ptr as a value of its own type.
func idOf(p *plan, ptr unsafe.Pointer) any {
	v, _ := p.identity.Read(ptr)
	return v
}

// diffEntities matches the entities at olds and news (pointers to elements
// of plan p's collection) by identity and appends their changes to out as
// one collection at the current path. Integer and string identities in a tagged field
// are matched in maps of their own kind, without boxing.
func (w *walk) diffEntities(p *plan, olds, news elems, out *Changes) {
	id := p.identity
	switch k := id.Type.Kind(); {
	case !id.Method && typeinfo.IsInteger(k):
		size := id.Type.Size()
		diffEntitiesBy(w, p, olds, news, out, func(ptr unsafe.Pointer) (uint64, bool) {
			f := fieldOf(id, ptr)
			if f == nil {
				return 0, false
			}
			switch size {
			case 8:
				return *(*uint64)(f), true
			case 4:
				return uint64(*(*uint32)(f)), true
			case 2:
				return uint64(*(*uint16)(f)), true
			}
			return uint64(*(*uint8)(f)), true
		})
	case !id.Method && k == reflect.String:
		diffEntitiesBy(w, p, olds, news, out, func(ptr unsafe.Pointer) (string, bool) {
			f := fieldOf(id, ptr)
			if f == nil {
				return "", false
			}
			return *(*string)(f), true
		})
	default:
		diffEntitiesBy(w, p, olds, news, out, id.Read)
	}
}

// fastAlignable reports whether fastAligned applies: slices of pointers to
// structs that cannot recurse, identified by a 64-bit integer field.
func fastAlignable(p *plan, olds, news elems) bool {
	id, e := p.identity, p.elem
	return !id.Method && id.Deref && id.Type.Size() == 8 && typeinfo.IsInteger(id.Type.Kind()) &&
		e.kind == kindPointer && e.elem.kind == kindStruct && !e.elem.mayCycle &&
		olds.ptrs == nil && news.ptrs == nil
}

// fastAligned matches the elements of two slices by position, checking
// that their identities (read into keys) agree, and returns the positions
// whose contents differ; aligned is false when an identity differs or an
// element is nil.
func fastAligned(p *plan, olds, news elems, keys []uint64) (changed []int, aligned bool) {
	off, t := p.identity.Offset, p.elem.elem
	for i := range news.n {
		pa := *(*unsafe.Pointer)(unsafe.Add(olds.data, uintptr(i)*ptrSize))
		pb := *(*unsafe.Pointer)(unsafe.Add(news.data, uintptr(i)*ptrSize))
		if pa == nil || pb == nil {
			return nil, false
		}
		k := *(*uint64)(unsafe.Add(pb, off))
		if *(*uint64)(unsafe.Add(pa, off)) != k {
			return nil, false
		}
		keys[i] = k
		if pa != pb && !structEq(t, pa, pb) {
			changed = append(changed, i)
		}
	}
	return changed, true
}

// duplicate returns the index of the first key seen before, or -1.
func duplicate[K comparable](keys []K) int {
	if ints, ok := any(keys).([]uint64); ok {
		if i, done := denseDuplicate(ints); done {
			return i
		}
	}
	seen := make(map[K]struct{}, len(keys))
	for i, k := range keys {
		if _, dup := seen[k]; dup {
			return i
		}
		seen[k] = struct{}{}
	}
	return -1
}

// denseDuplicate finds a duplicate among integer keys with a bit set, when
// they span a range of at most 64 times their number (sequences of line
// numbers, for example). It reports false when the keys are too sparse.
func denseDuplicate(keys []uint64) (int, bool) {
	if len(keys) == 0 {
		return -1, true
	}
	lo, hi := keys[0], keys[0]
	for _, k := range keys {
		lo, hi = min(lo, k), max(hi, k)
	}
	span := hi - lo
	if span/64 > uint64(len(keys)) {
		return -1, false
	}
	bits := make([]uint64, span/64+1)
	for i, k := range keys {
		d := k - lo
		if bits[d/64]&(1<<(d%64)) != 0 {
			return i, true
		}
		bits[d/64] |= 1 << (d % 64)
	}
	return -1, true
}

func diffEntitiesBy[K comparable](w *walk, p *plan, olds, news elems, out *Changes, read keyReader[K]) {
	elem := p.elem
	var elems []Element
	var seen map[K]struct{}
	// same compares a matched pair; for pointers to structs that cannot
	// recurse, without a call per element.
	same := func(pa, pb unsafe.Pointer) bool { return elem.eq(w, pa, pb) }
	if t := elem.elem; elem.kind == kindPointer && t.kind == kindStruct && !t.mayCycle {
		same = func(pa, pb unsafe.Pointer) bool {
			x, y := *(*unsafe.Pointer)(pa), *(*unsafe.Pointer)(pb)
			return x == y || (x != nil && y != nil && structEq(t, x, y))
		}
	}
	// Deep inside a value of a recursive type, pairs are walked without
	// comparing them first: comparing at every level, then walking, would
	// visit the levels below once per level above.
	compareFirst := !elem.mayCycle || w.depth < compareFirstDepth
	// modify records the change of a matched pair, if any.
	modify := func(pa, pb unsafe.Pointer) bool {
		if compareFirst && same(pa, pb) {
			return true
		}
		// An error of the comparison above is found again by the walk
		// below, with the path to where it is; it is kept if not.
		saved := w.err
		w.err = nil
		id := idOf(p, pb)
		w.push(ElementStep{ID: id})
		base := w.base
		w.base = len(w.path) // the element's changes are relative to it
		// The pair may be equal even so: the comparison above reports a
		// possible difference for what it cannot tell in order, such as a
		// reordered or map-held collection of entities inside. An element
		// is modified only when its own changes are not empty.
		var c Changes
		w.diffValue(elem, pa, pb, &c)
		w.base = base
		w.pop()
		if w.err == nil {
			w.err = saved
		}
		if w.err != nil {
			return false
		}
		if !c.Empty() {
			elems = append(elems, Element{Kind: Modified, ID: id, Old: valueOf(elem.t, pa), New: valueOf(elem.t, pb), Changes: c})
		}
		return true
	}
	newKey := func(pb unsafe.Pointer) (K, bool) {
		k, ok := read(pb)
		if !ok {
			w.fail(&Error{Err: ErrNilEntity})
			return k, false
		}
		if _, dup := seen[k]; dup {
			w.failAt(ElementStep{ID: idOf(p, pb)}, ErrDuplicateID)
			return k, false
		}
		seen[k] = struct{}{}
		return k, true
	}

	// The common case: the same entities in the same order, some changed.
	// Matched by position, checked by identity, then checked for
	// duplicates without a map when the identities are dense integers.
	if olds.n == news.n {
		keys := make([]K, news.n)
		aligned := true
		if ks, ok := any(keys).([]uint64); ok && fastAlignable(p, olds, news) {
			// The commonest shape, []*Entity keyed by a 64-bit integer
			// field, in one loop without calls: changed pairs are noted,
			// then reported in order.
			var changed []int
			changed, aligned = fastAligned(p, olds, news, ks)
			if aligned {
				for _, i := range changed {
					if !modify(olds.at(i), news.at(i)) {
						return
					}
				}
			}
		} else {
			for i := range news.n {
				pa, pb := olds.at(i), news.at(i)
				ka, oka := read(pa)
				kb, okb := read(pb)
				if !oka || !okb || ka != kb {
					aligned = false
					break
				}
				keys[i] = kb
				if !modify(pa, pb) {
					return
				}
			}
		}
		if aligned {
			if dup := duplicate(keys); dup >= 0 {
				w.failAt(ElementStep{ID: idOf(p, news.at(dup))}, ErrDuplicateID)
				return
			}
			if len(elems) > 0 {
				out.Collections = append(out.Collections, Collection{Path: w.relPath(), Elements: elems})
			}
			return
		}
		elems = nil // matched by identity below
	}

	seen = make(map[K]struct{}, news.n)
	index := make(map[K]int, olds.n)
	for i := range olds.n {
		pa := olds.at(i)
		k, ok := read(pa)
		if !ok {
			w.fail(&Error{Err: fmt.Errorf("old value: %w", ErrNilEntity)})
			return
		}
		if _, dup := index[k]; dup {
			w.failAt(ElementStep{ID: idOf(p, pa)}, fmt.Errorf("old value: %w", ErrDuplicateID))
			return
		}
		index[k] = i
	}
	matched := make([]bool, olds.n)
	for j := range news.n {
		pb := news.at(j)
		k, ok := newKey(pb)
		if !ok {
			return
		}
		i, ok := index[k]
		if !ok {
			id := idOf(p, pb)
			if elem.hasEntities {
				w.push(ElementStep{ID: id})
				w.checkIDs(elem, pb)
				w.pop()
				if w.err != nil {
					return
				}
			}
			elems = append(elems, Element{Kind: Added, ID: id, New: valueOf(elem.t, pb)})
			continue
		}
		matched[i] = true
		if !modify(olds.at(i), pb) {
			return
		}
	}
	var removed []Element
	for i, ok := range matched {
		if !ok {
			removed = append(removed, Element{Kind: Removed, ID: idOf(p, olds.at(i)), Old: valueOf(elem.t, olds.at(i))})
		}
	}
	if len(removed)+len(elems) > 0 {
		out.Collections = append(out.Collections, Collection{Path: w.relPath(), Elements: append(removed, elems...)})
	}
}
