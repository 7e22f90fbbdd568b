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

// walk is the state of one comparison. It comes from a pool, so that an
// equal pair of values is compared without allocating.
type walk struct {
	depth  int
	onPath map[unsafe.Pointer]struct{}
	// containers on the path (slice arrays, maps, interface data), for the
	// cycles that go through them rather than through a pointer
	inside map[unsafe.Pointer]struct{}
	err    *Error
}

var walkPool = sync.Pool{New: func() any { return new(walk) }}

func getWalk() *walk { return walkPool.Get().(*walk) }

func putWalk(w *walk) {
	w.reset()
	walkPool.Put(w)
}

func (w *walk) reset() {
	w.depth = 0
	w.err = nil
	clear(w.onPath)
	clear(w.inside)
}

func (w *walk) fail(e *Error) {
	if w.err == nil {
		w.err = e
	}
}

type sliceHeader struct {
	data unsafe.Pointer
	len  int
	cap  int
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
	if pl.mayCycle && pl.eq(w, a, b) && w.err == nil {
		return Result{}, nil
	}
	w.reset()
	var r Result
	w.diffValue(pl, a, b, nil, &r.Changes)
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
	if pl.mayCycle && pl.eq(w, a, b) && w.err == nil {
		return true, nil
	}
	// Not equal at first sight, or an error: the full walk tells a reorder
	// of entities from a change, and where a problem is.
	w.reset()
	var c Changes
	w.diffValue(pl, a, b, nil, &c)
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
	if w.err != nil {
		return false
	}
	w.depth++
	var eq bool
	if w.depth <= cycleDepth {
		eq = elem.eq(w, a, b)
	} else {
		eq = w.trackedEq(elem, a, b)
	}
	w.depth--
	return eq
}

// trackedEq compares deeply nested values, watching for cycles.
func (w *walk) trackedEq(elem *plan, a, b unsafe.Pointer) bool {
	if w.onPath == nil {
		w.onPath = make(map[unsafe.Pointer]struct{})
	}
	if _, ok := w.onPath[a]; ok {
		w.fail(&Error{Err: ErrCycle})
		return false
	}
	w.onPath[a] = struct{}{}
	eq := elem.eq(w, a, b)
	delete(w.onPath, a)
	return eq
}

// enter notes a step into the container at p (a slice's array, a map, the
// data of an interface) and reports false, having failed the walk, when p
// is already on the path: a value that contains itself. Like pointers,
// containers are watched only past cycleDepth.
func (w *walk) enter(p unsafe.Pointer) bool {
	w.depth++
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

// leave undoes enter(p).
func (w *walk) leave(p unsafe.Pointer) {
	if w.depth > cycleDepth && p != nil {
		delete(w.inside, p)
	}
	w.depth--
}

func (w *walk) sliceEq(elem *plan, a, b unsafe.Pointer) bool {
	if w != nil {
		x := (*sliceHeader)(a)
		if !w.enter(x.data) {
			return false
		}
		defer w.leave(x.data)
	}
	x, y := (*sliceHeader)(a), (*sliceHeader)(b)
	if x.len != y.len {
		return false
	}
	if x.len == 0 || x.data == y.data {
		return true
	}
	esz := elem.size
	switch elem.kind {
	case kindMem:
		n := uintptr(x.len) * esz
		return unsafe.String((*byte)(x.data), n) == unsafe.String((*byte)(y.data), n)
	case kindPointer:
		if target := elem.elem; w == nil && target.kind == kindStruct {
			// The common case, []*Entity: compare the structs in line,
			// without a call per element.
			return ptrSliceEq(target, x, y)
		}
		for i := uintptr(0); i < uintptr(x.len); i++ {
			pa := *(*unsafe.Pointer)(unsafe.Add(x.data, i*esz))
			pb := *(*unsafe.Pointer)(unsafe.Add(y.data, i*esz))
			if !w.ptrEq(elem.elem, pa, pb) {
				return false
			}
		}
		return true
	case kindStruct:
		ops := elem.ops
		for i := uintptr(0); i < uintptr(x.len); i++ {
			if !opsEq(w, ops, unsafe.Add(x.data, i*esz), unsafe.Add(y.data, i*esz)) {
				return false
			}
		}
		return true
	}
	for i := uintptr(0); i < uintptr(x.len); i++ {
		if !elem.eq(w, unsafe.Add(x.data, i*esz), unsafe.Add(y.data, i*esz)) {
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
	x, y := (*sliceHeader)(a), (*sliceHeader)(b)
	if w == nil || x.len != y.len || w.err != nil {
		// Without a walk, report a possible difference: the walk that
		// builds the result tells a reorder from a change.
		return false
	}
	// Same length, not equal in order: equal only if reordered.
	var c Changes
	w.diffEntities(p, sliceElems(p, x), sliceElems(p, y), nil, &c)
	return w.err == nil && c.Empty()
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

func sliceElems(p *plan, h *sliceHeader) elems {
	return elems{data: h.data, size: p.elem.size, n: h.len}
}

func ptrElems(ptrs []unsafe.Pointer) elems {
	if ptrs == nil {
		ptrs = []unsafe.Pointer{}
	}
	return elems{ptrs: ptrs, n: len(ptrs)}
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
		return a.Float() < b.Float()
	case reflect.String:
		return a.String() < b.String()
	case reflect.Bool:
		return !a.Bool() && b.Bool()
	}
	return fmt.Sprint(a.Interface()) < fmt.Sprint(b.Interface())
}

func (w *walk) mapEq(p *plan, a, b unsafe.Pointer) bool {
	ma, mb := reflect.NewAt(p.t, a).Elem(), reflect.NewAt(p.t, b).Elem()
	if w != nil {
		m := ma.UnsafePointer()
		if !w.enter(m) {
			return false
		}
		defer w.leave(m)
	}
	if ma.Len() != mb.Len() {
		return false
	}
	if ma.Len() == 0 || ma.UnsafePointer() == mb.UnsafePointer() {
		return true
	}
	if p.identity != nil {
		if w == nil {
			return false // possibly different; see entitySliceEq
		}
		_, va := mapValues(p, a)
		_, vb := mapValues(p, b)
		var c Changes
		w.diffEntities(p, ptrElems(va), ptrElems(vb), nil, &c)
		return w.err == nil && c.Empty()
	}
	keys, va := mapValues(p, a)
	vb := reflect.New(p.t.Elem())
	for i, k := range keys {
		v := mb.MapIndex(k)
		if !v.IsValid() {
			return false
		}
		vb.Elem().Set(v)
		if !p.elem.eq(w, va[i], vb.UnsafePointer()) {
			return false
		}
	}
	return true
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
		if !w.enter(d) {
			return false
		}
		defer w.leave(d)
	}
	return dp.eq(w, ifaceData(a, dt), ifaceData(b, dt))
}

func appendPath(p Path, s Step) Path {
	return append(p[:len(p):len(p)], s)
}

// diffValue reports how the values at a and b, of plan pl, differ, into out.
// It is called only for values that may differ.
func (w *walk) diffValue(pl *plan, a, b unsafe.Pointer, path Path, out *Changes) {
	if w.err != nil {
		return
	}
	switch pl.kind {
	case kindStruct:
		// Fields are walked without comparing them first: comparing and
		// then walking would visit deep values once per level.
		for _, f := range pl.fields {
			x, y := unsafe.Add(a, f.off), unsafe.Add(b, f.off)
			// A field that cannot recurse without end is compared first, so
			// that an unchanged field costs no path and no walk. The others
			// are walked at once: comparing them first would visit a deep
			// value once per level. So are entity collections, whose walk
			// compares them in one pass.
			if !f.plan.mayCycle && f.plan.identity == nil && f.plan.eq(nil, x, y) {
				continue
			}
			w.diffValue(f.plan, x, y, appendPath(path, FieldStep{Name: f.name, Index: f.index}), out)
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
			w.depth++
			defer func() { w.depth-- }()
			if w.depth > cycleDepth {
				if w.onPath == nil {
					w.onPath = make(map[unsafe.Pointer]struct{})
				}
				if _, ok := w.onPath[pa]; ok {
					w.fail(&Error{Path: path, Err: ErrCycle})
					return
				}
				w.onPath[pa] = struct{}{}
				defer delete(w.onPath, pa)
			}
			w.diffValue(pl.elem, pa, pb, path, out)
			return
		}
	case kindSlice:
		if pl.identity != nil {
			var c Changes
			w.diffEntities(pl, sliceElems(pl, (*sliceHeader)(a)), sliceElems(pl, (*sliceHeader)(b)), path, &c)
			if w.err == nil && len(c.Collections) > 0 {
				out.Collections = append(out.Collections, Collection{Path: path, Elements: c.Collections[0].Elements})
			}
			return
		}
	case kindMap:
		if pl.identity != nil {
			_, va := mapValues(pl, a)
			_, vb := mapValues(pl, b)
			var c Changes
			w.diffEntities(pl, ptrElems(va), ptrElems(vb), path, &c)
			if w.err == nil && len(c.Collections) > 0 {
				out.Collections = append(out.Collections, Collection{Path: path, Elements: c.Collections[0].Elements})
			}
			return
		}
	}
	if pl.eq(w, a, b) {
		return
	}
	if w.err != nil {
		if w.err.Path == nil {
			w.err.Path = path
		}
		return
	}
	out.Fields = append(out.Fields, Change{Path: path, Old: valueOf(pl.t, a), New: valueOf(pl.t, b)})
}

// checkIDs checks the entity collections inside the value at a, of plan pl,
// for nil elements and duplicate identities: what comparing it with nothing
// would find.
func (w *walk) checkIDs(pl *plan, a unsafe.Pointer, path Path) {
	if w.err != nil || !pl.hasEntities {
		return
	}
	switch pl.kind {
	case kindStruct:
		for _, f := range pl.fields {
			w.checkIDs(f.plan, unsafe.Add(a, f.off), appendPath(path, FieldStep{Name: f.name, Index: f.index}))
		}
	case kindPointer:
		if pa := *(*unsafe.Pointer)(a); pa != nil {
			w.depth++
			if w.depth > cycleDepth {
				if w.onPath == nil {
					w.onPath = make(map[unsafe.Pointer]struct{})
				}
				if _, ok := w.onPath[pa]; ok {
					w.fail(&Error{Path: path, Err: ErrCycle})
					w.depth--
					return
				}
				w.onPath[pa] = struct{}{}
				w.checkIDs(pl.elem, pa, path)
				delete(w.onPath, pa)
			} else {
				w.checkIDs(pl.elem, pa, path)
			}
			w.depth--
		}
	case kindSlice, kindMap:
		var all elems
		if pl.kind == kindSlice {
			all = sliceElems(pl, (*sliceHeader)(a))
		} else {
			_, ptrs := mapValues(pl, a)
			all = ptrElems(ptrs)
		}
		if pl.identity == nil {
			for i := range all.n {
				w.checkIDs(pl.elem, all.at(i), path)
			}
			return
		}
		// Compared with nothing, every element is added: diffEntities
		// checks the identities and, through checkIDs, their insides.
		w.diffEntities(pl, ptrElems(nil), all, path, &Changes{})
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
// one collection at path. Integer and string identities in a tagged field
// are matched in maps of their own kind, without boxing.
func (w *walk) diffEntities(p *plan, olds, news elems, path Path, out *Changes) {
	id := p.identity
	switch k := id.Type.Kind(); {
	case !id.Method && typeinfo.IsInteger(k):
		size := id.Type.Size()
		diffEntitiesBy(w, p, olds, news, path, out, func(ptr unsafe.Pointer) (uint64, bool) {
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
		diffEntitiesBy(w, p, olds, news, path, out, func(ptr unsafe.Pointer) (string, bool) {
			f := fieldOf(id, ptr)
			if f == nil {
				return "", false
			}
			return *(*string)(f), true
		})
	default:
		diffEntitiesBy(w, p, olds, news, path, out, id.Read)
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

func diffEntitiesBy[K comparable](w *walk, p *plan, olds, news elems, path Path, out *Changes, read keyReader[K]) {
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
	// modify records the change of a matched pair, if any.
	modify := func(pa, pb unsafe.Pointer) bool {
		if same(pa, pb) {
			return true
		}
		id := idOf(p, pb)
		epath := appendPath(path, ElementStep{ID: id})
		if w.err != nil {
			if w.err.Path == nil {
				w.err.Path = epath
			}
			return false
		}
		// The pair may be equal even so: the comparison above reports a
		// possible difference for what it cannot tell in order, such as a
		// reordered or map-held collection of entities inside. An element
		// is modified only when its own changes are not empty.
		var c Changes
		w.diffValue(elem, pa, pb, nil, &c)
		if w.err != nil {
			w.err.Path = append(epath, w.err.Path...)
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
			w.fail(&Error{Path: path, Err: ErrNilEntity})
			return k, false
		}
		if _, dup := seen[k]; dup {
			w.fail(&Error{Path: appendPath(path, ElementStep{ID: idOf(p, pb)}), Err: ErrDuplicateID})
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
				w.fail(&Error{Path: appendPath(path, ElementStep{ID: idOf(p, news.at(dup))}), Err: ErrDuplicateID})
				return
			}
			if len(elems) > 0 {
				out.Collections = append(out.Collections, Collection{Path: path, Elements: elems})
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
			w.fail(&Error{Path: path, Err: fmt.Errorf("old value: %w", ErrNilEntity)})
			return
		}
		if _, dup := index[k]; dup {
			w.fail(&Error{Path: appendPath(path, ElementStep{ID: idOf(p, pa)}), Err: fmt.Errorf("old value: %w", ErrDuplicateID)})
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
				w.checkIDs(elem, pb, appendPath(path, ElementStep{ID: id}))
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
		out.Collections = append(out.Collections, Collection{Path: path, Elements: append(removed, elems...)})
	}
}
