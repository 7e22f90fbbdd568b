package tracking

// The copy engine.
//
// Copy runs on per-type plans, compiled once under compileMu and cached in
// plans, a sync.Map keyed by reflect.Type (with a small direct-mapped cache
// in front), in the manner of encoding/json's type encoders. A recursive
// type refers to its own plan, which is allocated before it is filled in;
// plans are published only once the whole compilation is done, so readers
// never see a half-built plan.
//
// A value is copied in two steps, as a programmer would write it: first a
// shallow copy, that is a plain assignment moving the whole value in bulk
// (reflect's typedmemmove, or typedslicecopy for a backing array), which
// copies every pointer-free field and shares every string and Equal value;
// then the plan's fix list, a flat list of ops at fixed offsets, which
// replaces each deep part (pointer, slice, map, interface) of the copy by a
// copy of its own and clears the ignored fields. The fix lists of nested
// structs, and of short arrays, are flattened into their parent's with
// summed offsets, so a struct with no deep part has an empty list and
// costs one allocation and one move, like a hand-written copy.
//
// Memory that holds pointers is only ever written with typed stores or by
// reflect (typedmemmove, typedslicecopy), so that the garbage collector's
// write barriers run; never through a uintptr. A new object is made by
// Value.Interface of the addressable original, which allocates an object of
// the value's type and moves the value into it in one step: the interface
// is not an extra box, its data word is the copy, and nothing else is
// allocated. (reflect.New followed by field-by-field ops measured slower on
// entity-like structs: New's lookup of the pointer type plus the op loop
// cost more than one bulk move.) Backing arrays come from Value.Grow, which
// allocates with the element type; a backing array of pointers is a
// []unsafe.Pointer, whose layout and pointer bitmap are those of any slice
// of pointers.
//
// Cycle detection costs only types that may contain themselves: plan.track
// is set, at compile time, on the plans of the types that reach a cycle of
// the type graph or an interface (an interface can hold anything, including
// the value that holds it), as the type's model in package typeinfo says
// (MayRecurCopy). Copying a tracked value keeps the values on the current
// path in a small stack and fails on a revisit; other values never touch
// it. The same stack, with a count of the interfaces on the path, bounds
// the depth of recursion at typeinfo.MaxDepth.

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dddkit/dddkit/ddd"
	"github.com/dddkit/dddkit/internal/typeinfo"
)

// Copy returns a deep copy of v, such as the snapshot a [Tracker] keeps of
// an aggregate. v is usually a pointer to a struct; a nil pointer copies to
// nil.
//
// What is copied: every struct field, exported or not, through nested
// structs, arrays, pointers (to new objects), slices (to new backing arrays
// holding the len elements; a nil slice stays nil and an empty one stays
// empty and non-nil), maps (to new maps: values are deep-copied, keys are
// assigned as they are) and interfaces (the dynamic value is deep-copied and
// boxed anew, unless no mutable memory is reachable from it, in which case
// the interface is shared as it is, boxed values being immutable).
//
// What is shared: immutable memory only, that is strings, boxed values
// that reach no pointer, slice or map, and map keys. The copy shares no
// pointer, slice backing array or map with v, so changing either never
// changes the other.
//
// A struct or array type with a method Equal(T) bool, such as a decimal
// type, is a value, which package diff compares by its method alone: Copy
// copies all of it, so that the copy is equal to it by the method and
// shares with it no memory a change made in place could reach. A value
// that holds no pointer is assigned; one that holds pointers is copied
// deeply, its pointers, slices and maps to new ones, and nothing inside it
// is refused or read as the aggregate's: a func, chan or unsafe.Pointer in
// it, which cannot be copied, is shared; a pointer cycle in it is copied
// as a cycle; its ddd tags are not read. time.Time is assigned as a whole
// (keeping its monotonic clock reading): its *Location is never changed.
// Pointer, slice and map types are always followed, even if they have
// such a method; and so is an entity, a struct with a `ddd:"id"` field or
// an ID method: its Equal method usually compares identities, so it is
// deep-copied, as diff compares it field by field. Copy and diff follow
// the same rule.
//
// Fields tagged `ddd:"-"` are not copied: they are left zero in the copy.
// Identity and version fields are copied like any other.
//
// Copy never panics. It returns an error wrapping [ddd.ErrUnsupported] for
// a type that holds a func, a chan or an unsafe.Pointer other than behind a
// field tagged `ddd:"-"` or inside a value with an Equal method (detected
// from the type, so even when the field is
// nil), or a malformed ddd tag or identity (an ID method returning an
// interface, which package diff refuses too), or for a value nested more
// than 100,000 deep (counting the pointers, slices, maps and interfaces
// entered one inside another: the limit package diff applies too, within
// which the copy fits in the default goroutine stack); and an error wrapping
// [ddd.ErrCycle] when v contains itself through pointers, slices, maps or
// interfaces, other than inside a value with an Equal method. Errors say where, as in "tracking: copy *shop.Order: field
// .handler: func() is not supported: unsupported type".
//
// Copy does not preserve sharing (but inside a value with an Equal method
// that is copied as a graph): a value reachable twice from v along
// different paths (a DAG) is copied twice, into two distinct values.
//
// A type is inspected once; later copies of it run on a cached plan and
// allocate nothing besides the new objects, backing arrays and maps (and,
// when T is not a pointer, the copy itself).
func Copy[T any](v T) (T, error) {
	t := reflect.TypeFor[T]()
	p := planOf(t)
	var out T
	var err error
	if p.kind == opPtr {
		// Pass the pointer itself, so that v does not escape.
		var np unsafe.Pointer
		np, err = copyPointer(p, *(*unsafe.Pointer)(unsafe.Pointer(&v)))
		*(*unsafe.Pointer)(unsafe.Pointer(&out)) = np
	} else {
		// c is the shallow copy, fixed in place. It escapes (see valueAt),
		// costing one more allocation for a root that is not a pointer.
		c := v
		err = copyValue(p, unsafe.Pointer(&c), unsafe.Pointer(&v))
		out = c
	}
	if err != nil {
		var zero T
		return zero, fmt.Errorf("tracking: copy %v: %w", t, err)
	}
	return out, nil
}

// copyPointer returns a copy of the pointer sp, of plan p.
func copyPointer(p *plan, sp unsafe.Pointer) (np unsafe.Pointer, err error) {
	if p.err != nil {
		return nil, p.err
	}
	if sp == nil {
		return nil, nil
	}
	if p.track {
		return copyPointerTracked(p, sp)
	}
	defer catch(&err)
	e := p.elem
	np = newShallow(e, sp)
	if len(e.fix) > 0 {
		err = runOps(e.fix, np, sp, nil)
	}
	return np, err
}

func copyPointerTracked(p *plan, sp unsafe.Pointer) (np unsafe.Pointer, err error) {
	defer catch(&err)
	var st state
	return newCopy(p.elem, sp, &st)
}

// copyValue fixes the shallow copy dst of the value src, of plan p.
func copyValue(p *plan, dst, src unsafe.Pointer) (err error) {
	if p.err != nil {
		return p.err
	}
	if len(p.fix) == 0 {
		return nil
	}
	if p.track {
		return copyValueTracked(p, dst, src)
	}
	defer catch(&err)
	return runOps(p.fix, dst, src, nil)
}

func copyValueTracked(p *plan, dst, src unsafe.Pointer) (err error) {
	defer catch(&err)
	var st state
	return runOps(p.fix, dst, src, &st)
}

// catch turns a panic into an error. No input is known to make Copy
// panic: this is a last line of defence, for a program that keeps running.
func catch(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("internal error: %v", r)
	}
}

// opKind says what an op does.
type opKind uint8

const (
	_ opKind = iota // no op: the zero kind is none of these
	// Deep parts, which the shallow copy shares with the original: each
	// op replaces one by a copy of its own.
	opPtr    // a pointer, by a pointer to a new copy of its target
	opSlice  // a slice, by one with a new backing array
	opMap    // a map, by a new map
	opIface  // an interface, by one boxing a copy of its value
	opArray  // an array too long to unroll, element by element
	opStruct // a struct or array still being compiled: its fixes
	opBad    // an unsupported type: never run (the plan has err)
	opGraph  // a Value that is not plain, copied as a graph (copyGraph)
	// Ignored fields, which the shallow copy copied: each op clears one.
	opClear       // pointer-free bytes
	opClearWord   // a pointer, map, chan, func or unsafe.Pointer
	opClearString // a string
	opClearSlice  // a slice header
	opClearIface  // an interface
	opClearTyped  // anything else (a long array holding pointers)
)

// op fixes one part of a shallow copy, at offset off from its start.
type op struct {
	kind opKind
	off  uintptr
	size uintptr // bytes, for opClear
	plan *plan   // the plan of the part, for the deep kinds and opClearTyped
	name string  // where the part is, for errors: ".a.b", "[2]"
}

// plan is how to copy values of one type: assign the value (a shallow
// copy, made in bulk with write barriers), then run fix on the copy.
type plan struct {
	typ     reflect.Type
	typePtr unsafe.Pointer // typeinfo.TypeKey(typ)
	kind    opKind         // for pointers, slices, maps, interfaces, arrays, bad types
	size    uintptr
	fix     []op           // replace the deep parts and clear the ignored fields
	elem    *plan          // pointer target, slice, array or map element
	key     *plan          // map key (for checks only: keys are assigned)
	n       int            // array length
	direct  bool           // stored directly in an interface's data word
	done    bool           // filled in (false while a recursive type is compiled)
	ptrWord unsafe.Pointer // type word of an interface holding a *typ
	mapWord unsafe.Pointer // for maps: type word of an interface holding one

	// shallow: copying is a plain assignment; nothing mutable is reachable
	// and no field is ignored.
	shallow bool
	// hasPtr: values hold pointers (typeinfo.HasPointers).
	hasPtr bool
	// track: copying may come back to a value of this type (the type reaches
	// a cycle of the type graph or an interface): pointers, slices and maps
	// leading to it are checked for cycles.
	track bool
	// err: what makes the type unsupported, relative to it; nil if none.
	err error
	// leaf: the error of an unsupported type itself (opBad).
	leaf *pathError
	// dyn: for interfaces, the plans of the dynamic types met so far, by
	// type word (type or itab pointer).
	dyn sync.Map
}

// zeroArray is where an empty, non-nil slice copy points.
var zeroArray [0]uint64

var (
	plans     sync.Map // reflect.Type -> *plan
	compileMu sync.Mutex
	// recent is a direct-mapped cache in front of plans, by type pointer:
	// a hit costs a few nanoseconds, less than a sync.Map lookup.
	recent [256]atomic.Pointer[plan]
)

// planOf returns the plan of t, compiling it on first use.
func planOf(t reflect.Type) *plan {
	tp := typeinfo.TypeKey(t)
	slot := &recent[(uintptr(tp)*0x9E3779B97F4A7C15)>>56]
	if p := slot.Load(); p != nil && p.typePtr == tp {
		return p
	}
	var p *plan
	if v, ok := plans.Load(t); ok {
		p = v.(*plan)
	} else {
		p = compile(t)
	}
	slot.Store(p)
	return p
}

func compile(t reflect.Type) *plan {
	compileMu.Lock()
	defer compileMu.Unlock()
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	c := compiler{building: make(map[reflect.Type]*plan)}
	p := c.compile(typeinfo.Of(t))
	c.finish()
	for _, q := range c.order {
		plans.Store(q.typ, q)
	}
	return p
}

// compiler compiles the plans of one type and of the types it reaches that
// have no plan yet.
type compiler struct {
	building map[reflect.Type]*plan
	order    []*plan
}

// maxUnroll is the most ops an array is unrolled into.
const maxUnroll = 16

// compile returns the plan of the type of model m, compiling it unless it
// is cached or being compiled.
func (c *compiler) compile(m *typeinfo.Type) *plan {
	t := m.Type
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	if p, ok := c.building[t]; ok {
		return p // being built: a recursive type
	}
	p := &plan{
		typ:     t,
		typePtr: typeinfo.TypeKey(t),
		size:    t.Size(),
		hasPtr:  typeinfo.HasPointers(t),
		direct:  typeinfo.DirectIface(t),
		ptrWord: typeinfo.TypeWord(reflect.PointerTo(t)),
		track:   m.MayRecurCopy,
	}
	c.building[t] = p
	c.order = append(c.order, p)
	c.fill(p, m)
	p.done = true
	return p
}

// fill fills p by m, the model of its type.
func (c *compiler) fill(p *plan, m *typeinfo.Type) {
	switch m.Kind {
	case typeinfo.KindTime:
		// Assigned as a whole, as diff compares it by its method: its
		// Location is never changed.
		p.shallow = true
		return
	case typeinfo.KindValue:
		if !m.CopyParts {
			// A value, by the rule package diff follows too, that holds
			// no memory a change in place could reach: assigned as a
			// whole, as diff compares it by its method.
			p.shallow = true
			return
		}
		// A value that holds pointers, slices or maps is copied deeply,
		// so that the snapshot shares none of them and a change made in
		// place is seen by the method: like any struct when it is plain,
		// else as a graph (see copyGraph), every part of it.
		if !m.Plain() {
			p.kind = opGraph
			p.fix = []op{{kind: opGraph, plan: p}}
			return
		}
		m = m.Structure
	}
	switch m.Kind {
	case typeinfo.KindScalar, typeinfo.KindFloat, typeinfo.KindString:
		p.shallow = true
	case typeinfo.KindPointer:
		p.kind = opPtr
		p.elem = c.compile(m.Elem)
		p.fix = []op{{kind: opPtr, plan: p}}
	case typeinfo.KindSlice:
		p.kind = opSlice
		p.elem = c.compile(m.Elem)
		p.fix = []op{{kind: opSlice, plan: p}}
	case typeinfo.KindMap:
		p.kind = opMap
		p.mapWord = typeinfo.TypeWord(p.typ)
		p.key = c.compile(m.Key)
		p.elem = c.compile(m.Elem)
		p.fix = []op{{kind: opMap, plan: p}}
	case typeinfo.KindInterface:
		p.kind = opIface
		p.fix = []op{{kind: opIface, plan: p}}
	case typeinfo.KindArray:
		c.fillArray(p, m)
	case typeinfo.KindStruct:
		c.fillStruct(p, m)
	case typeinfo.KindUnsupported:
		c.bad(p, m.Err)
	default:
		c.bad(p, fmt.Errorf("%v: internal error: no structure to copy (%v): %w", p.typ, m.Kind, ddd.ErrUnsupported))
	}
}

func (c *compiler) bad(p *plan, err error) {
	p.kind = opBad
	p.leaf = &pathError{err: err}
	p.fix = []op{{kind: opBad, plan: p}}
}

func (c *compiler) fillArray(p *plan, m *typeinfo.Type) {
	p.n = p.typ.Len()
	p.elem = c.compile(m.Elem)
	e := p.elem
	switch {
	case p.size == 0 || (e.done && e.shallow):
		p.shallow = true
	case !e.done:
		// The element is being compiled, and reaches this array: loop
		// over its fixes once it has them.
		p.kind = opArray
		p.fix = []op{{kind: opArray, plan: p}}
	case e.kind != opBad && p.n*len(e.fix) <= maxUnroll:
		// Unroll: the element is a value (an array cannot contain itself),
		// so its fixes are final.
		for i := range p.n {
			p.fix = appendOps(p.fix, e.fix, uintptr(i)*e.size, "["+strconv.Itoa(i)+"]")
		}
	default:
		p.kind = opArray
		p.fix = []op{{kind: opArray, plan: p}}
	}
}

func (c *compiler) fillStruct(p *plan, m *typeinfo.Type) {
	p.shallow = true
	for i, f := range m.Struct.Fields {
		if f.Type.Size() == 0 {
			continue // nothing to copy, and nothing can be reached from it
		}
		name := "." + f.Name
		if f.Ignored {
			p.shallow = false
			p.fix = appendOps(p.fix, clearOps(f.Type), f.Offset, name)
			continue
		}
		fp := c.compile(m.Fields[i])
		if !fp.done {
			// A type being compiled, which reaches this struct: a pointer,
			// slice or map to it, or a struct or array reaching it through
			// one. Refer to its plan, complete by the time it runs. It is
			// not shallow, being recursive.
			p.shallow = false
			k := opStruct
			switch f.Type.Kind() {
			case reflect.Pointer:
				k = opPtr
			case reflect.Slice:
				k = opSlice
			case reflect.Map:
				k = opMap
			}
			p.fix = append(p.fix, op{kind: k, off: f.Offset, plan: fp, name: name})
			continue
		}
		if !fp.shallow {
			p.shallow = false
			p.fix = appendOps(p.fix, fp.fix, f.Offset, name)
		}
	}
	p.fix = mergeClears(p.fix)
}

// clearOps returns the ops that set a value of type t, an ignored field,
// to zero. Pointers are cleared with typed stores.
func clearOps(t reflect.Type) []op {
	if !typeinfo.HasPointers(t) {
		return []op{{kind: opClear, size: t.Size()}}
	}
	switch t.Kind() {
	case reflect.String:
		return []op{{kind: opClearString}}
	case reflect.Pointer, reflect.Map, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return []op{{kind: opClearWord}}
	case reflect.Slice:
		return []op{{kind: opClearSlice}}
	case reflect.Interface:
		return []op{{kind: opClearIface}}
	case reflect.Struct:
		var ops []op
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Type.Size() > 0 {
				ops = appendOps(ops, clearOps(f.Type), f.Offset, "."+f.Name)
			}
		}
		return ops
	case reflect.Array:
		if t.Len() <= maxUnroll {
			var ops []op
			for i := range t.Len() {
				ops = appendOps(ops, clearOps(t.Elem()), uintptr(i)*t.Elem().Size(), "["+strconv.Itoa(i)+"]")
			}
			return ops
		}
	}
	// Not cached, not in the type graph: just what clearing needs.
	return []op{{kind: opClearTyped, plan: &plan{typ: t, ptrWord: typeinfo.TypeWord(reflect.PointerTo(t)), done: true}}}
}

func appendOps(dst, src []op, base uintptr, name string) []op {
	for _, o := range src {
		o.off += base
		o.name = name + o.name
		dst = append(dst, o)
	}
	return dst
}

// mergeClears merges adjacent ops clearing pointer-free bytes.
func mergeClears(ops []op) []op {
	out := ops[:0]
	for _, o := range ops {
		if n := len(out); n > 0 && o.kind == opClear && out[n-1].kind == opClear && out[n-1].off+out[n-1].size == o.off {
			out[n-1].size += o.size
			continue
		}
		out = append(out, o)
	}
	return out
}

// finish computes err for the plans just compiled.
func (c *compiler) finish() {
	for _, p := range c.order {
		if e := c.findErr(p, make(map[*plan]bool)); e != nil {
			p.err = e
		}
	}
}

// findErr returns the first unsupported part of p, with its path.
func (c *compiler) findErr(p *plan, seen map[*plan]bool) *pathError {
	if c.building[p.typ] != p {
		e, _ := p.err.(*pathError)
		return e
	}
	if seen[p] {
		return nil
	}
	seen[p] = true
	if p.leaf != nil {
		return p.leaf
	}
	for i := range p.fix {
		o := &p.fix[i]
		if o.plan == nil || o.plan == p || o.kind >= opClear {
			continue
		}
		if e := c.findErr(o.plan, seen); e != nil {
			return e.with(o.name)
		}
	}
	if p.key != nil {
		if e := c.findErr(p.key, seen); e != nil {
			return e.with("[key]")
		}
	}
	if p.elem != nil {
		step := "[]"
		if p.kind == opPtr {
			step = ""
		}
		if e := c.findErr(p.elem, seen); e != nil {
			return e.with(step)
		}
	}
	return nil
}

// pathError is an error at a path inside the copied value.
type pathError struct {
	steps []string // innermost first
	err   error
}

// with returns e with step prepended to its path. It does not change e,
// which may be a plan's cached error. It is for compiling; at run time,
// errors are made fresh (see fresh) and grow in place.
func (e *pathError) with(step string) *pathError {
	if step == "" {
		return e
	}
	steps := make([]string, len(e.steps), len(e.steps)+1)
	copy(steps, e.steps)
	return &pathError{steps: append(steps, step), err: e.err}
}

// Error formats the path, if any, then the error.
func (e *pathError) Error() string {
	if len(e.steps) == 0 {
		return e.err.Error()
	}
	var b strings.Builder
	for i := len(e.steps) - 1; i >= 0; i-- {
		if i == len(e.steps)-maxSteps/2 && len(e.steps) > maxSteps {
			// A very deep path: keep its two ends.
			fmt.Fprintf(&b, "...(%d more)...", len(e.steps)-maxSteps)
			i = maxSteps / 2
		}
		b.WriteString(e.steps[i])
	}
	path := b.String()
	if strings.HasPrefix(path, ".") {
		return "field " + path + ": " + e.err.Error()
	}
	return "at " + path + ": " + e.err.Error()
}

// Unwrap returns the error without its path: a sentinel error of package
// diff, possibly wrapped.
func (e *pathError) Unwrap() error { return e.err }

// maxSteps is the most steps of a path an error message shows.
const maxSteps = 64

// fresh returns a copy of e that the copy engine may change.
func (e *pathError) fresh() *pathError {
	return &pathError{steps: append([]string(nil), e.steps...), err: e.err}
}

// withStep adds step to the path of err, a fresh error of the engine, in
// place: unwinding a deep recursion stays linear.
func withStep(err error, step string) error {
	if e, ok := err.(*pathError); ok && step != "" {
		e.steps = append(e.steps, step)
	}
	return err
}

// Cycle detection.

// frame is a value on the current path: where it is, its length for a
// slice, and its plan.
type frame struct {
	p  unsafe.Pointer
	n  int
	pl *plan
}

// state holds the values on the current path of a copy of a tracked type:
// the first linearDepth in buf, searched linearly, the others in more and
// seen. It holds no pointer to itself, so that it stays on the stack.
type state struct {
	buf    [linearDepth]frame
	n      int // frames on the path
	ifaces int // interfaces on the path, which hold no frame
	more   []frame
	seen   map[frame]struct{}
}

// linearDepth is the depth up to which the path is searched linearly.
const linearDepth = 16

// tooDeep reports a value nested more than typeinfo.MaxDepth deep: the
// frames and interfaces on the path, one inside another, bound the depth of
// recursion, well before the goroutine stack limit.
func tooDeep() error {
	return &pathError{err: fmt.Errorf("values nested more than %d deep: %w", typeinfo.MaxDepth, ddd.ErrUnsupported)}
}

func (st *state) push(p unsafe.Pointer, n int, pl *plan) error {
	f := frame{p, n, pl}
	for i := range min(st.n, linearDepth) {
		if st.buf[i] == f {
			return cycleError(pl)
		}
	}
	if st.n+st.ifaces >= typeinfo.MaxDepth {
		return tooDeep()
	}
	if st.n < linearDepth {
		st.buf[st.n] = f
		st.n++
		return nil
	}
	if st.seen == nil {
		st.seen = make(map[frame]struct{})
	}
	if _, ok := st.seen[f]; ok {
		return cycleError(pl)
	}
	st.seen[f] = struct{}{}
	st.more = append(st.more, f)
	st.n++
	return nil
}

func (st *state) pop() {
	st.n--
	if st.n < linearDepth {
		st.buf[st.n] = frame{}
		return
	}
	last := len(st.more) - 1
	delete(st.seen, st.more[last])
	st.more = st.more[:last]
}

func cycleError(pl *plan) error {
	what := pl.typ.String()
	if pl.kind == opSlice {
		what = "backing array of " + what
	}
	return &pathError{err: fmt.Errorf("%s contains itself: %w", what, ddd.ErrCycle)}
}

// The copy itself. Each function fixes a destination that holds a shallow
// copy of its source: where the destination is new memory (a backing array
// from Grow, a map value's temporary), it is first made one.

// runOps runs the fixes ops on dst, a shallow copy of src.
func runOps(ops []op, dst, src unsafe.Pointer, st *state) error {
	for i := range ops {
		o := &ops[i]
		d, s := unsafe.Add(dst, o.off), unsafe.Add(src, o.off)
		switch o.kind {
		case opPtr:
			sp := *(*unsafe.Pointer)(s)
			if sp == nil {
				continue
			}
			np, err := newCopy(o.plan.elem, sp, st)
			if err != nil {
				return withStep(err, o.name)
			}
			*(*unsafe.Pointer)(d) = np
		case opSlice:
			h := *(*typeinfo.SliceHeader)(s)
			if h.Data == nil {
				continue // nil in the shallow copy too
			}
			var err error
			if e := o.plan.elem; e.kind == opPtr && !e.track && h.Len > 0 {
				err = copyPtrSlice(e.elem, d, h, st) // the common case, directly
			} else {
				err = copySlice(o.plan, d, s, st)
			}
			if err != nil {
				return withStep(err, o.name)
			}
		case opClear:
			clear(unsafe.Slice((*byte)(d), o.size))
		case opClearWord:
			*(*unsafe.Pointer)(d) = nil
		case opClearString:
			*(*string)(d) = ""
		case opClearSlice:
			*(*typeinfo.SliceHeader)(d) = typeinfo.SliceHeader{}
		case opClearIface:
			*(*typeinfo.Eface)(d) = typeinfo.Eface{}
		case opClearTyped:
			reflect.NewAt(o.plan.typ, d).Elem().SetZero()
		default:
			if err := copyOther(o, d, s, st); err != nil {
				return withStep(err, o.name)
			}
		}
	}
	return nil
}

func copyOther(o *op, d, s unsafe.Pointer, st *state) error {
	switch o.kind {
	case opMap:
		return copyMap(o.plan, d, s, st)
	case opIface:
		return copyIface(o.plan, d, s, st)
	case opArray:
		e := o.plan.elem
		for i := range o.plan.n {
			off := uintptr(i) * e.size
			if err := runOps(e.fix, unsafe.Add(d, off), unsafe.Add(s, off), st); err != nil {
				return withStep(err, "["+strconv.Itoa(i)+"]")
			}
		}
		return nil
	case opStruct:
		return runOps(o.plan.fix, d, s, st)
	case opGraph:
		return copyGraph(o.plan.typ, d, uintptr(s))
	}
	if e, ok := o.plan.err.(*pathError); ok {
		return e.fresh()
	}
	return &pathError{err: fmt.Errorf("%v is not supported: %w", o.plan.typ, ddd.ErrUnsupported)}
}

// valueAt returns the addressable reflect.Value of the value at p, whose
// pointer type has type word ptrWord. It is reflect.NewAt(t, p).Elem()
// without NewAt's lookup of the pointer type, but p escapes.
func valueAt(ptrWord, p unsafe.Pointer) reflect.Value {
	var x any
	*(*typeinfo.Eface)(unsafe.Pointer(&x)) = typeinfo.Eface{Type: ptrWord, Data: p}
	return reflect.ValueOf(x).Elem()
}

// newShallow returns a new value of plan e holding a shallow copy of the
// value at src, allocated with e's type and copied by typedmemmove.
func newShallow(e *plan, src unsafe.Pointer) unsafe.Pointer {
	if e.direct {
		// Value.Interface would not allocate: the value is one pointer.
		np := reflect.New(e.typ).UnsafePointer()
		*(*unsafe.Pointer)(np) = *(*unsafe.Pointer)(src)
		return np
	}
	if e.typ.Kind() == reflect.Interface {
		// Interface would return the value the interface holds, not a
		// new interface: make the new cell and assign it, typed.
		nv := reflect.New(e.typ)
		nv.Elem().Set(reflect.NewAt(e.typ, src).Elem())
		return nv.UnsafePointer()
	}
	// Interface copies an addressable value to a new object of its type.
	x := valueAt(e.ptrWord, src).Interface()
	return (*typeinfo.Eface)(unsafe.Pointer(&x)).Data
}

// newCopy returns a new deep copy of the value of plan e at sp.
func newCopy(e *plan, sp unsafe.Pointer, st *state) (unsafe.Pointer, error) {
	if e.track {
		if err := st.push(sp, 0, e); err != nil {
			return nil, err
		}
	}
	np := newShallow(e, sp)
	var err error
	if len(e.fix) > 0 {
		err = runOps(e.fix, np, sp, st)
	}
	if e.track {
		st.pop()
	}
	return np, err
}

func copySlice(p *plan, d, s unsafe.Pointer, st *state) error {
	h := *(*typeinfo.SliceHeader)(s)
	if h.Data == nil {
		return nil
	}
	n := h.Len
	if n == 0 {
		*(*typeinfo.SliceHeader)(d) = typeinfo.SliceHeader{Data: unsafe.Pointer(&zeroArray)}
		return nil
	}
	e := p.elem
	if e.track {
		if err := st.push(h.Data, n, p); err != nil {
			return err
		}
		defer st.pop()
	}
	if e.kind == opPtr {
		return copyPtrSlice(e.elem, d, h, st)
	}
	// A new, zeroed backing array of n elements (or a few more, up to the
	// size class), allocated with the element type.
	*(*typeinfo.SliceHeader)(d) = typeinfo.SliceHeader{}
	valueAt(p.ptrWord, d).Grow(n)
	dh := (*typeinfo.SliceHeader)(d)
	dh.Len = n
	switch {
	case e.size == 0:
	case !e.hasPtr:
		copy(unsafe.Slice((*byte)(dh.Data), uintptr(n)*e.size), unsafe.Slice((*byte)(h.Data), uintptr(n)*e.size))
	case e.typ == typeinfo.TimeType():
		copy(unsafe.Slice((*time.Time)(dh.Data), n), unsafe.Slice((*time.Time)(h.Data), n))
	case e.typ.Kind() == reflect.String:
		copy(unsafe.Slice((*string)(dh.Data), n), unsafe.Slice((*string)(h.Data), n))
	default:
		reflect.Copy(valueAt(p.ptrWord, d), reflect.NewAt(p.typ, unsafe.Pointer(&h)).Elem()) // typedslicecopy
	}
	for i := range n {
		if len(e.fix) == 0 {
			break
		}
		off := uintptr(i) * e.size
		if err := runOps(e.fix, unsafe.Add(dh.Data, off), unsafe.Add(h.Data, off), st); err != nil {
			return withStep(err, "["+strconv.Itoa(i)+"]")
		}
	}
	return nil
}

// copyPtrSlice copies the slice h of pointers to values of plan e (an
// entity collection, typically) to d, a slice of the same type.
func copyPtrSlice(e *plan, d unsafe.Pointer, h typeinfo.SliceHeader, st *state) error {
	// The new backing array: pointers, each replaced by a copy, nil ones
	// left zero. A []unsafe.Pointer has the layout, and the pointer bitmap,
	// of any slice of pointers.
	b := make([]unsafe.Pointer, h.Len)
	src := unsafe.Slice((*unsafe.Pointer)(h.Data), h.Len)
	if e.track || len(e.fix) > 0 || e.direct {
		for i, sp := range src {
			if sp == nil {
				continue
			}
			np, err := newCopy(e, sp, st)
			if err != nil {
				return withStep(err, "["+strconv.Itoa(i)+"]")
			}
			b[i] = np
		}
	} else {
		// Targets without deep parts: each copy is one allocation and
		// typedmemmove (newShallow, inlined).
		var x any
		xp := (*typeinfo.Eface)(unsafe.Pointer(&x))
		for i, sp := range src {
			if sp == nil {
				continue
			}
			*xp = typeinfo.Eface{Type: e.ptrWord, Data: sp} // x = sp as a *T
			c := reflect.ValueOf(x).Elem().Interface()
			b[i] = (*typeinfo.Eface)(unsafe.Pointer(&c)).Data
		}
	}
	*(*typeinfo.SliceHeader)(d) = typeinfo.SliceHeader{Data: unsafe.Pointer(unsafe.SliceData(b)), Len: h.Len, Cap: h.Len}
	return nil
}

func copyMap(p *plan, d, s unsafe.Pointer, st *state) error {
	sm := *(*unsafe.Pointer)(s)
	if sm == nil {
		return nil
	}
	m, err := newMap(p, sm, st)
	if err != nil {
		return err
	}
	*(*unsafe.Pointer)(d) = m
	return nil
}

// newMap returns a new copy of the map sm of plan p.
func newMap(p *plan, sm unsafe.Pointer, st *state) (unsafe.Pointer, error) {
	var x any
	*(*typeinfo.Eface)(unsafe.Pointer(&x)) = typeinfo.Eface{Type: p.mapWord, Data: sm}
	src := reflect.ValueOf(x)
	n := src.Len()
	m := reflect.MakeMapWithSize(p.typ, n)
	if n > 0 {
		e := p.elem
		if e.track {
			if err := st.push(sm, 0, p); err != nil {
				return nil, err
			}
			defer st.pop()
		}
		k := reflect.New(p.key.typ).Elem()
		v := reflect.New(e.typ).Elem()
		var it reflect.MapIter
		it.Reset(src)
		if e.shallow {
			for it.Next() {
				k.SetIterKey(&it)
				v.SetIterValue(&it)
				m.SetMapIndex(k, v)
			}
		} else {
			nv := reflect.New(e.typ).Elem()
			vp, np := v.Addr().UnsafePointer(), nv.Addr().UnsafePointer()
			for it.Next() {
				k.SetIterKey(&it)
				v.SetIterValue(&it)
				nv.SetIterValue(&it) // the shallow copy to fix
				if err := runOps(e.fix, np, vp, st); err != nil {
					return nil, withStep(err, fmt.Sprintf("[%v]", k))
				}
				m.SetMapIndex(k, nv)
			}
		}
	}
	return m.UnsafePointer(), nil
}

func copyIface(p *plan, d, s unsafe.Pointer, st *state) error {
	e := *(*typeinfo.Eface)(s)
	if e.Type == nil {
		return nil
	}
	var dp *plan
	if v, ok := p.dyn.Load(e.Type); ok {
		dp = v.(*plan)
	} else {
		dp = planOf(dynType(p.typ, s))
		p.dyn.Store(e.Type, dp)
	}
	if e, ok := dp.err.(*pathError); ok {
		return e.fresh()
	}
	// An interface holding a value is a step of depth, as a pointer is:
	// interfaces holding structs that hold interfaces nest without any
	// pointer.
	if st != nil && st.n+st.ifaces >= typeinfo.MaxDepth {
		return tooDeep()
	}
	if dp.shallow {
		return nil // boxed values are immutable: share it
	}
	if st != nil {
		st.ifaces++
	}
	data, err := copyIfaceData(dp, e.Data, st)
	if st != nil {
		st.ifaces--
	}
	if err != nil {
		return err
	}
	*(*typeinfo.Eface)(d) = typeinfo.Eface{Type: e.Type, Data: data}
	return nil
}

// copyIfaceData returns a copy of the value of plan dp held by an
// interface whose data word is data.
func copyIfaceData(dp *plan, data unsafe.Pointer, st *state) (unsafe.Pointer, error) {
	if dp.direct {
		// The data word is the value: a pointer, a map, or a struct or
		// array of one.
		return copyWord(dp.fix, data, st)
	}
	c := newShallow(dp, data)
	if err := runOps(dp.fix, c, data, st); err != nil {
		return nil, err
	}
	return c, nil
}

// copyWord returns a copy of w, a value of a pointer-shaped type (a
// pointer, a map, or a struct or array of one) whose fixes are fix.
func copyWord(fix []op, w unsafe.Pointer, st *state) (unsafe.Pointer, error) {
	for i := range fix { // at most one, at offset 0
		o := &fix[i]
		var err error
		switch o.kind {
		case opPtr:
			if w != nil {
				w, err = newCopy(o.plan.elem, w, st)
			}
		case opMap:
			if w != nil {
				w, err = newMap(o.plan, w, st)
			}
		case opStruct:
			w, err = copyWord(o.plan.fix, w, st)
		case opGraph:
			// Copy the value, one word, in memory of its type.
			c := reflect.New(o.plan.typ).UnsafePointer()
			*(*unsafe.Pointer)(c) = w
			if err = copyGraph(o.plan.typ, c, 0); err == nil {
				w = *(*unsafe.Pointer)(c)
			}
		default: // an ignored field
			w = nil
		}
		if err != nil {
			return nil, withStep(err, o.name)
		}
	}
	return w, nil
}

// dynType returns the dynamic type of the interface of type t at s, which
// holds a value.
func dynType(t reflect.Type, s unsafe.Pointer) reflect.Type {
	if t.NumMethod() == 0 {
		return reflect.TypeOf(*(*any)(s))
	}
	// Work on a copy, so that s does not escape.
	v := reflect.New(t)
	*(*typeinfo.Eface)(v.UnsafePointer()) = *(*typeinfo.Eface)(s)
	return v.Elem().Elem().Type()
}
