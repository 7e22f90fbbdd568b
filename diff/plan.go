package diff

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dddkit/dddkit/internal/typeinfo"
)

// A plan is what Compare knows about one type, compiled once and cached:
// how to tell two values of it equal without allocating (eq), and what it
// holds, for the slower walk that builds a Result.
type plan struct {
	t    reflect.Type
	kind planKind
	size uintptr

	eq func(w *walk, p, q unsafe.Pointer) bool

	ops []eqOp // struct: flat list of comparisons
	// struct made only of aligned words and strings: their offsets, for a
	// comparison without dispatch (simple is true then)
	simple      bool
	words, strs []uintptr
	fields      []fieldPlan // struct: compared fields, in order
	elem        *plan       // pointer, slice, array, map value
	key         reflect.Type
	nanKeys     bool // map: keys may hold a NaN, which lookup never finds

	// mayCycle reports whether comparing values of this type may recurse
	// without end (typeinfo's MayRecurCompare): the type is recursive or
	// holds an interface. Only such types need the cycle watch of a walk.
	mayCycle bool
	// preCheck (equal-method) reports that the structural check of inner
	// is a bounded walk, tried before the method (see finish).
	preCheck bool
	// hasEntities reports whether values of this type may hold entity
	// collections, whose identities must be checked even in added elements
	// (typeinfo's HasEntities).
	hasEntities bool

	identity *typeinfo.Identity             // slice or map of entities
	method   int                            // equal-method: index of Equal in the pointer's method set
	inner    *plan                          // equal-method: structural plan, nil if none
	call     func(a, b unsafe.Pointer) bool // equal-method: calls Equal
}

type planKind uint8

const (
	kindMem         planKind = iota + 1 // compared byte for byte
	kindFloat                           // float32, float64, complex64, complex128
	kindString                          //
	kindStruct                          //
	kindPointer                         //
	kindSlice                           //
	kindArray                           //
	kindMap                             //
	kindInterface                       //
	kindTime                            // time.Time, compared with Equal
	kindEqualMethod                     // a type with Equal(T) bool
)

// fieldPlan is one compared field of a struct.
type fieldPlan struct {
	name  string
	index int
	off   uintptr
	plan  *plan
	step  Step // FieldStep{name, index}, boxed once
}

// eqOp is one comparison of a struct's flat comparison list.
type eqOp struct {
	kind opKind
	off  uintptr
	size uintptr
	plan *plan
}

type opKind uint8

const (
	opMem opKind = iota
	opU64
	opU128
	opU32
	opString
	opF64
	opF32
	opTime
	opPtrSlice // a []*Struct of a type that cannot recurse, compared in line
	opPlan
)

// The cache of compiled plans is a map replaced whole on each insertion
// (copy on write), read without a lock: types are few and compiled once,
// and a lookup must cost next to nothing, since Compare does one per call.
// It is keyed by the type's runtime descriptor, which is unique per type.
var (
	planCache atomic.Pointer[map[unsafe.Pointer]cached]
	compileMu sync.Mutex
)

type cached struct {
	plan *plan
	err  *Error
}

// elemCache maps a pointer type to the plan of its element type, for the
// first step of Compare: a direct-mapped table of recently used types, read
// with one atomic load and no hashing.
var elemCache [64]atomic.Pointer[elemEntry]

type elemEntry struct {
	key  unsafe.Pointer
	plan *plan
}

// cachedElemPlan returns the plan of pointer type t's element, or nil when
// it is not compiled yet or cannot be.
func cachedElemPlan(t reflect.Type) *plan {
	k := typeinfo.TypeKey(t)
	slot := &elemCache[(uintptr(k)>>5)%uintptr(len(elemCache))]
	if e := slot.Load(); e != nil && e.key == k {
		return e.plan
	}
	pl, err := planOf(t.Elem())
	if err != nil {
		return nil
	}
	slot.Store(&elemEntry{key: k, plan: pl})
	return pl
}

func lookup(t reflect.Type) (cached, bool) {
	if m := planCache.Load(); m != nil {
		c, ok := (*m)[typeinfo.TypeKey(t)]
		return c, ok
	}
	return cached{}, false
}

// store adds entries to the cache; the caller holds compileMu.
func store(entries map[reflect.Type]cached) {
	old := planCache.Load()
	m := make(map[unsafe.Pointer]cached, len(entries)+8)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	for t, c := range entries {
		if _, ok := m[typeinfo.TypeKey(t)]; !ok {
			m[typeinfo.TypeKey(t)] = c
		}
	}
	planCache.Store(&m)
}

// planOf returns the plan of t, compiling it on first use.
func planOf(t reflect.Type) (*plan, error) {
	if c, ok := lookup(t); ok {
		if c.err != nil {
			return nil, c.err
		}
		return c.plan, nil
	}
	compileMu.Lock()
	defer compileMu.Unlock()
	if c, ok := lookup(t); ok {
		if c.err != nil {
			return nil, c.err
		}
		return c.plan, nil
	}
	c := &compiler{inProgress: make(map[reflect.Type]*plan)}
	p, err := c.compile(typeinfo.Of(t), nil)
	if err != nil {
		store(map[reflect.Type]cached{t: {err: err}})
		return nil, err
	}
	// Publish every plan compiled on the way, now that all are complete.
	entries := make(map[reflect.Type]cached, len(c.inProgress))
	for pt, pp := range c.inProgress {
		finish(pp)
		entries[pt] = cached{plan: pp}
	}
	store(entries)
	return p, nil
}

type compiler struct {
	// inProgress holds the plans compiled in this session, complete or not,
	// so that a recursive type refers to its own (placeholder) plan.
	inProgress map[reflect.Type]*plan
}

// compile returns the plan of the type of model m, compiling it unless it
// is cached or being compiled.
func (c *compiler) compile(m *typeinfo.Type, path Path) (*plan, *Error) {
	t := m.Type
	if ce, ok := lookup(t); ok {
		if ce.err != nil {
			return nil, &Error{Path: append(path[:len(path):len(path)], ce.err.Path...), Err: ce.err.Err}
		}
		return ce.plan, nil
	}
	if p, ok := c.inProgress[t]; ok {
		return p, nil
	}
	p := newPlan(m)
	c.inProgress[t] = p
	if err := c.fill(p, m, path); err != nil {
		delete(c.inProgress, t)
		return nil, err
	}
	return p, nil
}

// newPlan returns an empty plan of model m, with the facts of the model.
func newPlan(m *typeinfo.Type) *plan {
	return &plan{t: m.Type, size: m.Type.Size(), mayCycle: m.MayRecurCompare, hasEntities: m.HasEntities}
}

func unsupported(path Path, format string, args ...any) *Error {
	return &Error{Path: path, Err: fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrUnsupported)}
}

// fill fills p by m, the model of its type: by the rule Copy follows too, a
// Value is compared with its Equal method; an entity, a pointer, slice or
// map is compared part by part.
func (c *compiler) fill(p *plan, m *typeinfo.Type, path Path) *Error {
	switch m.Kind {
	case typeinfo.KindTime:
		p.kind = kindTime
		p.eq = func(_ *walk, a, b unsafe.Pointer) bool { return (*time.Time)(a).Equal(*(*time.Time)(b)) }
		return nil
	case typeinfo.KindValue:
		return c.fillEqualMethod(p, m, path)
	}
	return c.fillKind(p, m, path)
}

// fillKind fills p by the kind of m, the model of its type, which is not a
// Value nor a time.Time: for a Value, the model of its structure.
func (c *compiler) fillKind(p *plan, m *typeinfo.Type, path Path) *Error {
	t := p.t
	switch m.Kind {
	case typeinfo.KindScalar:
		p.kind = kindMem
		p.eq = memEq(p.size)
	case typeinfo.KindFloat:
		p.kind = kindFloat
		switch t.Kind() {
		case reflect.Float32:
			p.eq = func(_ *walk, a, b unsafe.Pointer) bool { return f32eq(*(*float32)(a), *(*float32)(b)) }
		case reflect.Float64:
			p.eq = func(_ *walk, a, b unsafe.Pointer) bool { return f64eq(*(*float64)(a), *(*float64)(b)) }
		case reflect.Complex64:
			p.eq = func(_ *walk, a, b unsafe.Pointer) bool {
				x, y := *(*[2]float32)(a), *(*[2]float32)(b)
				return f32eq(x[0], y[0]) && f32eq(x[1], y[1])
			}
		default: // complex128
			p.eq = func(_ *walk, a, b unsafe.Pointer) bool {
				x, y := *(*[2]float64)(a), *(*[2]float64)(b)
				return f64eq(x[0], y[0]) && f64eq(x[1], y[1])
			}
		}
	case typeinfo.KindString:
		p.kind = kindString
		p.eq = func(_ *walk, a, b unsafe.Pointer) bool { return strEq(*(*string)(a), *(*string)(b)) }
	case typeinfo.KindStruct:
		return c.fillStruct(p, m, path)
	case typeinfo.KindPointer:
		elem, err := c.compile(m.Elem, path)
		if err != nil {
			return err
		}
		p.kind = kindPointer
		p.elem = elem
		p.eq = func(w *walk, a, b unsafe.Pointer) bool {
			return w.ptrEq(elem, *(*unsafe.Pointer)(a), *(*unsafe.Pointer)(b))
		}
	case typeinfo.KindSlice:
		elem, err := c.compile(m.Elem, path)
		if err != nil {
			return err
		}
		p.kind = kindSlice
		p.elem = elem
		if m.Identity != nil {
			p.identity = m.Identity
			p.eq = func(w *walk, a, b unsafe.Pointer) bool { return w.entitySliceEq(p, a, b) }
		} else {
			p.eq = func(w *walk, a, b unsafe.Pointer) bool { return w.sliceEq(elem, a, b) }
		}
	case typeinfo.KindArray:
		elem, err := c.compile(m.Elem, path)
		if err != nil {
			return err
		}
		p.kind = kindArray
		p.elem = elem
		if elem.kind == kindMem {
			p.kind = kindMem
			p.eq = memEq(p.size)
			break
		}
		n, esz := uintptr(t.Len()), t.Elem().Size()
		p.eq = func(w *walk, a, b unsafe.Pointer) bool {
			for i := uintptr(0); i < n; i++ {
				if !elem.eq(w, unsafe.Add(a, i*esz), unsafe.Add(b, i*esz)) {
					return false
				}
			}
			return true
		}
	case typeinfo.KindMap:
		elem, err := c.compile(m.Elem, path)
		if err != nil {
			return err
		}
		p.kind = kindMap
		p.elem = elem
		p.key = t.Key()
		p.nanKeys = mayHoldNaN(p.key)
		p.identity = m.Identity
		p.eq = func(w *walk, a, b unsafe.Pointer) bool { return w.mapEq(p, a, b) }
	case typeinfo.KindInterface:
		p.kind = kindInterface
		p.eq = func(w *walk, a, b unsafe.Pointer) bool { return w.ifaceEq(p, a, b) }
	case typeinfo.KindUnsupported:
		if m.TagErr != nil {
			return unsupported(path, "%v: %v", t, m.TagErr)
		}
		return unsupported(path, "%v cannot be compared (tag the field `ddd:\"-\"` to ignore it)", t)
	default:
		return unsupported(path, "%v: internal error: no structure to compare (%v)", t, m.Kind)
	}
	return nil
}

func (c *compiler) fillEqualMethod(p *plan, vm *typeinfo.Type, path Path) *Error {
	m := vm.Equal
	p.kind = kindEqualMethod
	// The method is called on a pointer to the value: take its index in
	// the pointer's method set, which holds the value's methods too.
	if pm, ok := reflect.PointerTo(p.t).MethodByName(m.Name); ok {
		m = pm
	}
	p.method = m.Index
	// Values that are identical field by field are Equal: that is tried
	// first, where it can be (see finish), as it needs no call and no
	// allocation. It can be when the value is plain (typeinfo's
	// Type.Plain): its structure is bounded, and the check sees every
	// part of it, no ddd tag of the aggregate's hiding one. Any other
	// value is compared with its method alone, as Copy copies it whole.
	if vm.Plain() {
		inner := newPlan(vm.Structure)
		if err := c.fillKind(inner, vm.Structure, path); err == nil {
			p.inner = inner
			// The check enters the values with Equal methods inside by
			// their own plans: bounded too.
			p.preCheck = true
		}
	}
	t, idx := p.t, m.Index
	p.call = func(a, b unsafe.Pointer) bool {
		out := reflect.NewAt(t, a).Method(idx).Call([]reflect.Value{reflect.NewAt(t, b).Elem()})
		return out[0].Bool()
	}
	p.eq = func(_ *walk, a, b unsafe.Pointer) bool { return p.call(a, b) }
	return nil
}

func (c *compiler) fillStruct(p *plan, m *typeinfo.Type, path Path) *Error {
	p.kind = kindStruct
	for i, f := range m.Struct.Fields {
		fm := m.Fields[i]
		if fm == nil || f.Version { // ignored, empty, or a version
			continue
		}
		fpath := append(path[:len(path):len(path)], FieldStep{Name: f.Name, Index: i})
		fp, err := c.compile(fm, fpath)
		if err != nil {
			return err
		}
		p.fields = append(p.fields, fieldPlan{name: f.Name, index: i, off: f.Offset, plan: fp, step: FieldStep{Name: f.Name, Index: i}})
	}
	// The flat list is built when the compile session ends (see planOf): a
	// field's plan may still be a placeholder of a recursive type now.
	p.eq = func(w *walk, a, b unsafe.Pointer) bool { return opsEq(w, p.ops, a, b) }
	return nil
}

// finish completes a plan once every plan it refers to is complete.
func finish(p *plan) {
	if p.kind == kindStruct && p.ops == nil {
		p.ops = flatten(p)
		p.simple = true
		for _, op := range p.ops {
			switch op.kind {
			case opU64:
				p.words = append(p.words, op.off)
			case opU128:
				p.words = append(p.words, op.off, op.off+8)
			case opString:
				p.strs = append(p.strs, op.off)
			default:
				p.simple = false
			}
		}
	}
	if p.kind == kindEqualMethod && p.inner != nil {
		finish(p.inner)
		// The structural check first, but only when it is a bounded walk:
		// the method alone decides, so a value that may recurse (a pointer
		// cycle behind it, say) is not walked into.
		if inner, call := p.inner, p.call; p.preCheck {
			p.eq = func(_ *walk, a, b unsafe.Pointer) bool { return inner.eq(nil, a, b) || call(a, b) }
		}
	}
}

// flatten turns the fields of struct plan p into a flat list of comparisons:
// nested structs are inlined with their offsets, and adjacent fields
// compared byte for byte are merged into one range.
func flatten(p *plan) []eqOp {
	var ops []eqOp
	var add func(sp *plan, base uintptr)
	add = func(sp *plan, base uintptr) {
		for _, f := range sp.fields {
			off := base + f.off
			fp := f.plan
			switch fp.kind {
			case kindStruct:
				if fp != p { // never inline a struct into itself
					add(fp, off)
					continue
				}
				ops = append(ops, eqOp{kind: opPlan, off: off, plan: fp})
			case kindMem:
				if n := len(ops); n > 0 && ops[n-1].kind == opMem && ops[n-1].off+ops[n-1].size == off {
					ops[n-1].size += fp.size
					continue
				}
				ops = append(ops, eqOp{kind: opMem, off: off, size: fp.size})
			case kindString:
				ops = append(ops, eqOp{kind: opString, off: off})
			case kindTime:
				ops = append(ops, eqOp{kind: opTime, off: off})
			case kindSlice:
				if e := fp.elem; e.kind == kindPointer && e.elem.kind == kindStruct && !fp.mayCycle {
					ops = append(ops, eqOp{kind: opPtrSlice, off: off, plan: fp})
				} else {
					ops = append(ops, eqOp{kind: opPlan, off: off, plan: fp})
				}
			case kindFloat:
				switch fp.t.Kind() {
				case reflect.Float64:
					ops = append(ops, eqOp{kind: opF64, off: off})
				case reflect.Float32:
					ops = append(ops, eqOp{kind: opF32, off: off})
				default:
					ops = append(ops, eqOp{kind: opPlan, off: off, plan: fp})
				}
			default:
				ops = append(ops, eqOp{kind: opPlan, off: off, plan: fp})
			}
		}
	}
	add(p, 0)
	// Byte ranges made of aligned words are compared a word at a time.
	var out []eqOp
	for _, op := range ops {
		switch {
		case op.kind == opMem && op.off%8 == 0 && op.size == 8:
			out = append(out, eqOp{kind: opU64, off: op.off})
		case op.kind == opMem && op.off%8 == 0 && op.size == 16:
			out = append(out, eqOp{kind: opU128, off: op.off})
		case op.kind == opMem && op.size == 4 && op.off%4 == 0:
			out = append(out, eqOp{kind: opU32, off: op.off})
		default:
			out = append(out, op)
		}
	}
	return out
}

func opsEq(w *walk, ops []eqOp, a, b unsafe.Pointer) bool {
	for i := range ops {
		op := &ops[i]
		x, y := unsafe.Add(a, op.off), unsafe.Add(b, op.off)
		switch op.kind {
		case opU64:
			if *(*uint64)(x) != *(*uint64)(y) {
				return false
			}
		case opString:
			if !strEq(*(*string)(x), *(*string)(y)) {
				return false
			}
		case opU128:
			if *(*[2]uint64)(x) != *(*[2]uint64)(y) {
				return false
			}
		case opU32:
			if *(*uint32)(x) != *(*uint32)(y) {
				return false
			}
		case opMem:
			if unsafe.String((*byte)(x), op.size) != unsafe.String((*byte)(y), op.size) {
				return false
			}
		case opF64:
			if !f64eq(*(*float64)(x), *(*float64)(y)) {
				return false
			}
		case opF32:
			if !f32eq(*(*float32)(x), *(*float32)(y)) {
				return false
			}
		case opTime:
			if !(*time.Time)(x).Equal(*(*time.Time)(y)) {
				return false
			}
		case opPtrSlice:
			if w != nil {
				if !op.plan.eq(w, x, y) {
					return false
				}
				continue
			}
			// Equal in order; a reorder of entities is found by the walk
			// that follows a false.
			hx, hy := (*typeinfo.SliceHeader)(x), (*typeinfo.SliceHeader)(y)
			if hx.Len != hy.Len {
				return false
			}
			if hx.Data == hy.Data {
				continue
			}
			if !ptrSliceEq(op.plan.elem.elem, hx, hy) {
				return false
			}
		case opPlan:
			if !op.plan.eq(w, x, y) {
				return false
			}
		}
	}
	return true
}

const ptrSize = unsafe.Sizeof(uintptr(0))

// structEq compares the structs of plan sp (which cannot recurse) at a and
// b: a simple struct without dispatch, others by their flat list.
func structEq(sp *plan, a, b unsafe.Pointer) bool {
	if !sp.simple {
		return opsEq(nil, sp.ops, a, b)
	}
	for _, off := range sp.words {
		if *(*uint64)(unsafe.Add(a, off)) != *(*uint64)(unsafe.Add(b, off)) {
			return false
		}
	}
	for _, off := range sp.strs {
		if !strEq(*(*string)(unsafe.Add(a, off)), *(*string)(unsafe.Add(b, off))) {
			return false
		}
	}
	return true
}

// ptrSliceEq compares, in order, two slices of pointers to structs of plan
// sp, which cannot recurse.
func ptrSliceEq(sp *plan, hx, hy *typeinfo.SliceHeader) bool {
	for i := 0; i < hx.Len; i++ {
		pa := *(*unsafe.Pointer)(unsafe.Add(hx.Data, uintptr(i)*ptrSize))
		pb := *(*unsafe.Pointer)(unsafe.Add(hy.Data, uintptr(i)*ptrSize))
		if pa == pb {
			continue
		}
		if pa == nil || pb == nil {
			return false
		}
		if !structEq(sp, pa, pb) {
			return false
		}
	}
	return true
}

func memEq(size uintptr) func(*walk, unsafe.Pointer, unsafe.Pointer) bool {
	switch size {
	case 1:
		return func(_ *walk, a, b unsafe.Pointer) bool { return *(*uint8)(a) == *(*uint8)(b) }
	case 2:
		return func(_ *walk, a, b unsafe.Pointer) bool { return *(*uint16)(a) == *(*uint16)(b) }
	case 4:
		return func(_ *walk, a, b unsafe.Pointer) bool { return *(*uint32)(a) == *(*uint32)(b) }
	case 8:
		return func(_ *walk, a, b unsafe.Pointer) bool { return *(*uint64)(a) == *(*uint64)(b) }
	}
	return func(_ *walk, a, b unsafe.Pointer) bool {
		return unsafe.String((*byte)(a), size) == unsafe.String((*byte)(b), size)
	}
}

// strEq compares strings, without a call when they share their bytes, as a
// snapshot's strings do with the aggregate's until they are reassigned.
func strEq(a, b string) bool {
	return len(a) == len(b) && (unsafe.StringData(a) == unsafe.StringData(b) || a == b)
}

func f64eq(a, b float64) bool { return a == b || (a != a && b != b) }
func f32eq(a, b float32) bool { return a == b || (a != a && b != b) }
