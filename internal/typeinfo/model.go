package typeinfo

import (
	"fmt"
	"reflect"
	"sync"

	"github.com/dddkit/dddkit/ddd"
)

// Kind is what a type is to dddkit: how its values are compared (package
// diff), copied (package tracking) and stored (the stores).
type Kind uint8

// The kinds of types. The zero Kind is none of them.
const (
	// KindScalar is a bool, an integer or a uintptr: copied by assignment,
	// equal when its bytes are.
	KindScalar Kind = iota + 1
	// KindFloat is a float or complex number: copied by assignment, compared
	// by value, a NaN equal to a NaN.
	KindFloat
	// KindString is a string: copied by assignment (strings are immutable),
	// compared by value.
	KindString
	// KindTime is time.Time: copied by assignment as a whole (keeping its
	// monotonic clock reading and sharing its Location, which is never
	// changed), compared with its Equal method.
	KindTime
	// KindValue is a type other than time.Time that [ValueEqual] applies to:
	// compared with its Equal method alone. It is assigned as a whole by a
	// copy, unless it holds pointers (see [Type.CopyParts]): then the copy
	// is deep, and shares no memory with the value but what is immutable
	// or cannot be copied (see [Type.Plain]).
	KindValue
	// KindStruct is a struct type, compared and copied field by field.
	KindStruct
	// KindPointer is a pointer type, followed.
	KindPointer
	// KindSlice is a slice type, whose elements are followed.
	KindSlice
	// KindArray is an array type, element by element.
	KindArray
	// KindMap is a map type, whose values are followed; keys are compared and
	// copied as they are.
	KindMap
	// KindInterface is an interface type, followed into its dynamic value.
	KindInterface
	// KindUnsupported is a type that cannot be compared, copied or stored: a
	// func, a chan or an unsafe.Pointer, or a struct with a malformed ddd
	// tag or identity. [Type.Err] says why.
	KindUnsupported
)

var kindNames = [...]string{
	KindScalar: "Scalar", KindFloat: "Float", KindString: "String", KindTime: "Time", KindValue: "Value",
	KindStruct: "Struct", KindPointer: "Pointer", KindSlice: "Slice", KindArray: "Array", KindMap: "Map",
	KindInterface: "Interface", KindUnsupported: "Unsupported",
}

// String returns the name of k.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Type is the model of a Go type: what package diff, package tracking and
// the stores need to know to compare, copy and store its values, derived
// once, in one place, by one set of rules. Get it with [Of]. A Type is
// immutable once returned; a recursive type refers to itself.
type Type struct {
	// Type is the Go type.
	Type reflect.Type
	// Kind says what the type is.
	Kind Kind

	// Err (KindUnsupported) says why the type is not supported, in words
	// that name the type; it wraps ddd.ErrUnsupported, and TagErr when
	// set.
	Err error
	// TagErr (KindUnsupported) is the malformed ddd tag or identity of a
	// struct type, an error wrapping [ErrTag] from [StructOf] or
	// [IdentityOf]; it is nil for a func, chan or unsafe.Pointer type.
	TagErr error

	// Struct (KindStruct) describes the fields.
	Struct *Struct
	// Fields (KindStruct) holds the model of each field of Struct.Fields,
	// by the same index, or nil for a field with nothing to compare or
	// copy: tagged `ddd:"-"`, or of size zero.
	Fields []*Type
	// Elem (KindPointer, KindSlice, KindArray, KindMap) is the model of
	// the element type: the pointer's target, the slice's, array's or
	// map's element.
	Elem *Type
	// Key (KindMap) is the model of the key type.
	Key *Type
	// Identity (KindSlice, KindMap) tells how to read the identity of the
	// elements, when the collection is an entity collection (its element
	// type is an entity, see [IdentityOf]); nil otherwise.
	Identity *Identity
	// IdentityErr (KindSlice, KindMap) is the error of reading the
	// element type's identity: a malformed ddd tag or identity of the
	// element's struct.
	IdentityErr error

	// Equal (KindValue) is the Equal method, as [ValueEqual] returns it.
	Equal reflect.Method
	// Structure (KindValue) is the model of the same type by its
	// structure, ignoring its Equal method (a KindStruct, KindArray,
	// KindScalar...). It is what a copy follows when CopyParts is true,
	// and what package diff compares first, without a call, when that
	// walk is bounded (see MayRecurCopy).
	Structure *Type
	// CopyParts (KindValue) reports that a copy copies the value deeply
	// rather than assigning it as a whole: the value holds pointers
	// (strings included), and sharing them would let a change made in
	// place reach the copy unseen by the Equal method. It is copied by its
	// Structure when it is plain (see [Type.Plain]), else as a graph.
	CopyParts bool

	// MayRecurCompare reports whether comparing two values of this type
	// part by part may come back to a value of a type it is already in,
	// or enter an interface, which can hold anything, the value itself
	// included: the type reaches a cycle of the type graph or an
	// interface. The walk follows struct fields (other than ignored and
	// version fields), pointers, and the elements of slices, arrays and
	// maps; it stops at a Value, compared by its method alone, which is
	// why it is false for a Value. A comparison of a type for which it is
	// false is bounded by the type and needs no cycle check.
	MayRecurCompare bool
	// MayRecurCopy is MayRecurCompare for a walk that follows every part,
	// as a deep copy does: version fields too, and a Value whose
	// CopyParts is true, through its Structure (a Value without pointers
	// reaches no cycle and no interface). A copy of a type for which it
	// is false needs no cycle check. Package diff reads it on a Value's
	// Structure: comparing a Value's structure first enters the Values
	// inside it by their structures too, so that check is bounded only
	// when this is false.
	MayRecurCopy bool
	// HasEntities reports whether values of this type may hold entity
	// collections, whose identities must be checked even where there is
	// nothing to compare them with: the type reaches, by the walk of
	// MayRecurCompare, a slice or map with an Identity, or an interface.
	HasEntities bool
}

// Plain reports whether a Value (KindValue) is copied by the engines part
// by part as any struct is, through its Structure: its structure is
// bounded (MayRecurCopy of the Structure is false: no cycle, no
// interface), and every part of it is one the engines follow by the
// aggregate's rules, that is no func, chan or unsafe.Pointer, no field
// tagged `ddd:"-"` or `ddd:"version"`, and no malformed ddd tag.
//
// A Value is what its Equal method says it is: ddd tags inside it are not
// the aggregate's, and nothing inside it is refused. So when Plain is
// false, package tracking copies it as a graph, every part of it, the
// parts that cannot be copied (funcs, chans, unsafe.Pointers) shared and
// a pointer cycle copied as a cycle; and package diff compares it with
// its method alone, without the structural check it makes first when
// Plain is true. Plain is false for any other kind.
func (m *Type) Plain() bool {
	if m.Kind != KindValue {
		return false
	}
	return !m.Structure.MayRecurCopy && plainParts(m.Structure)
}

// plainParts reports whether every part of a value of m, reached by the
// walk of copyParts, is one the engines follow by the aggregate's rules.
// It is called on a bounded structure, whose walk ends.
func plainParts(m *Type) bool {
	switch m.Kind {
	case KindUnsupported:
		return false
	case KindStruct:
		for i, f := range m.Struct.Fields {
			if (f.Ignored || f.Version) && f.Type.Size() > 0 {
				return false
			}
			if fm := m.Fields[i]; fm != nil && !plainParts(fm) {
				return false
			}
		}
	case KindPointer, KindSlice, KindArray:
		return plainParts(m.Elem)
	case KindMap:
		return plainParts(m.Key) && plainParts(m.Elem)
	}
	// Scalars, strings, times; a Value inside is copied and compared by
	// its own model.
	return true
}

var (
	models  sync.Map // reflect.Type -> *Type, complete
	modelMu sync.Mutex
)

// Of returns the model of t, building it on first use together with the
// models of the types t reaches. Models are cached: a type is inspected
// once. As encoding/json does for its encoders, a recursive type refers to
// its own model, allocated before it is filled in as a placeholder; models
// are published only once all of them are complete, with their facts
// computed, so a caller never sees a half-built one.
func Of(t reflect.Type) *Type {
	if m, ok := models.Load(t); ok {
		return m.(*Type)
	}
	modelMu.Lock()
	defer modelMu.Unlock()
	if m, ok := models.Load(t); ok {
		return m.(*Type)
	}
	b := builder{building: make(map[reflect.Type]*Type)}
	m := b.model(t)
	b.facts()
	for _, n := range b.nodes {
		if b.building[n.Type] == n { // not a Structure, which shares its type
			models.Store(n.Type, n)
		}
	}
	return m
}

// builder builds the models of one type and of the types it reaches that
// have no model yet.
type builder struct {
	building map[reflect.Type]*Type
	// nodes are the models built, in the order they were started, the
	// Structures of Values included.
	nodes []*Type
}

// model returns the model of t: cached, being built, or built now.
func (b *builder) model(t reflect.Type) *Type {
	if m, ok := models.Load(t); ok {
		return m.(*Type)
	}
	if m, ok := b.building[t]; ok {
		return m // being built: a recursive type
	}
	m := &Type{Type: t}
	b.building[t] = m
	b.nodes = append(b.nodes, m)
	b.fill(m, true)
	return m
}

// fill classifies m.Type, by the rule of ValueEqual when value is true.
func (b *builder) fill(m *Type, value bool) {
	t := m.Type
	if t == timeType {
		m.Kind = KindTime
		return
	}
	switch t.Kind() {
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		m.Kind = KindUnsupported
		m.Err = fmt.Errorf("%v is not supported: %w", t, ddd.ErrUnsupported)
		return
	case reflect.Struct:
		_, err := StructOf(t)
		if err == nil {
			_, _, err = IdentityOf(t)
		}
		if err != nil {
			m.Kind = KindUnsupported
			m.TagErr = err
			m.Err = fmt.Errorf("%w: %w", ddd.ErrUnsupported, err)
			return
		}
	}
	if value {
		if meth, ok := ValueEqual(t); ok {
			m.Kind = KindValue
			m.Equal = meth
			m.CopyParts = HasPointers(t)
			m.Structure = &Type{Type: t}
			b.nodes = append(b.nodes, m.Structure)
			b.fill(m.Structure, false)
			return
		}
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		m.Kind = KindScalar
	case reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		m.Kind = KindFloat
	case reflect.String:
		m.Kind = KindString
	case reflect.Struct:
		m.Kind = KindStruct
		m.Struct, _ = StructOf(t) // checked above
		m.Fields = make([]*Type, len(m.Struct.Fields))
		for i, f := range m.Struct.Fields {
			if !f.Ignored && f.Type.Size() > 0 {
				m.Fields[i] = b.model(f.Type)
			}
		}
	case reflect.Pointer:
		m.Kind = KindPointer
		m.Elem = b.model(t.Elem())
	case reflect.Array:
		m.Kind = KindArray
		m.Elem = b.model(t.Elem())
	case reflect.Slice, reflect.Map:
		m.Kind = KindSlice
		if t.Kind() == reflect.Map {
			m.Kind = KindMap
			m.Key = b.model(t.Key())
		}
		m.Elem = b.model(t.Elem())
		m.Identity, _, m.IdentityErr = IdentityOf(t.Elem())
	case reflect.Interface:
		m.Kind = KindInterface
	}
}

// compareParts calls f with each part a comparison follows from a value of
// m: the walk of MayRecurCompare.
func compareParts(m *Type, f func(*Type)) {
	switch m.Kind {
	case KindStruct:
		for i, fm := range m.Fields {
			if fm != nil && !m.Struct.Fields[i].Version {
				f(fm)
			}
		}
	case KindPointer, KindSlice, KindArray, KindMap:
		f(m.Elem)
	}
}

// copyParts calls f with each part a copy follows from a value of m: the
// walk of MayRecurCopy.
func copyParts(m *Type, f func(*Type)) {
	switch m.Kind {
	case KindStruct:
		for _, fm := range m.Fields {
			if fm != nil {
				f(fm)
			}
		}
	case KindPointer, KindSlice, KindArray, KindMap:
		f(m.Elem)
	case KindValue:
		if m.CopyParts {
			f(m.Structure)
		}
	}
}

// facts computes the cycle and entity facts of the models just built.
// Models built before cannot reach the new ones, so their facts are final
// and are read as they are.
func (b *builder) facts() {
	b.reach(compareParts,
		func(m *Type) bool { return m.Kind == KindInterface }, true,
		func(m *Type) *bool { return &m.MayRecurCompare })
	b.reach(copyParts,
		func(m *Type) bool { return m.Kind == KindInterface }, true,
		func(m *Type) *bool { return &m.MayRecurCopy })
	b.reach(compareParts,
		func(m *Type) bool { return m.Identity != nil || m.Kind == KindInterface }, false,
		func(m *Type) *bool { return &m.HasEntities })
}

// reach sets, on every new model, the fact that the walk parts leads from
// it to a model for which seed holds or, when cycles is true, to a cycle:
// a model that reaches itself. It finds the strongly connected components
// of the walk's graph (Tarjan's algorithm), which come out after every
// component they reach, so a component's fact is known from its own models
// and the facts of what it leads to.
func (b *builder) reach(parts func(*Type, func(*Type)), seed func(*Type) bool, cycles bool, fact func(*Type) *bool) {
	type mark struct{ index, low int }
	marks := make(map[*Type]*mark, len(b.nodes))
	isNew := make(map[*Type]bool, len(b.nodes))
	for _, n := range b.nodes {
		isNew[n] = true
	}
	var stack []*Type
	onStack := make(map[*Type]bool)
	next := 0
	var visit func(m *Type) *mark
	visit = func(m *Type) *mark {
		mk := &mark{next, next}
		next++
		marks[m] = mk
		stack = append(stack, m)
		onStack[m] = true
		parts(m, func(q *Type) {
			if !isNew[q] {
				return
			}
			if qm, ok := marks[q]; !ok {
				mk.low = min(mk.low, visit(q).low)
			} else if onStack[q] {
				mk.low = min(mk.low, qm.index)
			}
		})
		if mk.low != mk.index {
			return mk
		}
		// m is the root of a component: pop it.
		i := len(stack) - 1
		for stack[i] != m {
			i--
		}
		comp := stack[i:]
		stack = stack[:i]
		in := make(map[*Type]bool, len(comp))
		for _, n := range comp {
			onStack[n] = false
			in[n] = true
		}
		v := false
		for _, n := range comp {
			if seed(n) {
				v = true
			}
			parts(n, func(q *Type) {
				if in[q] {
					v = v || cycles // a cycle: len(comp) > 1, or n reaches itself
				} else {
					v = v || *fact(q)
				}
			})
		}
		for _, n := range comp {
			*fact(n) = v
		}
		return mk
	}
	for _, n := range b.nodes {
		if _, ok := marks[n]; !ok {
			visit(n)
		}
	}
}

// CopyErr returns why values of t cannot be copied by package tracking,
// as the type tells: the error of an unsupported type (a func, chan or
// unsafe.Pointer, or a struct with a malformed ddd tag or identity) that a
// copy reaches, through struct fields other than those tagged `ddd:"-"`,
// pointers, arrays, slices and map keys and values; nil if there is none.
// A copy does not look into an interface, whose dynamic value is known
// only at run time, nor refuse anything inside a Value (see [Type.Plain]).
func CopyErr(t reflect.Type) error {
	return copyErr(Of(t), make(map[*Type]bool))
}

func copyErr(m *Type, seen map[*Type]bool) error {
	if seen[m] {
		return nil
	}
	seen[m] = true
	switch m.Kind {
	case KindUnsupported:
		return m.Err
	case KindStruct:
		for i, fm := range m.Fields {
			if fm == nil {
				continue
			}
			if err := copyErr(fm, seen); err != nil {
				return fmt.Errorf("field %s: %w", m.Struct.Fields[i].Name, err)
			}
		}
	case KindPointer, KindSlice, KindArray:
		return copyErr(m.Elem, seen)
	case KindMap:
		if err := copyErr(m.Key, seen); err != nil {
			return err
		}
		return copyErr(m.Elem, seen)
	}
	return nil
}
