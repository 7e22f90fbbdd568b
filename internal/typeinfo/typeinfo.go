// Package typeinfo is dddkit's one model of Go types: what comparing
// (package diff), copying (package tracking) and storing (the stores) need
// to know about a type, derived once per type, cached, and shared, so that
// the three follow the same rules. [Of] returns the model of a type: its
// kind, its fields with their offsets and ddd tags, its identity, the
// identity of the elements of an entity collection, and whether a walk of
// its values can recur. The package also holds the memory layouts the
// engines read with package unsafe (see unsafe.go).
package typeinfo

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/dddkit/dddkit/ddd"
)

// MaxDepth is the deepest nesting that copying (package tracking) and
// comparing (package diff) follow: the most pointers, slices, maps and
// interfaces entered one inside another on the way from the root to a
// value. A value nested deeper is refused with an error wrapping
// diff.ErrUnsupported, never by overflowing the goroutine stack: recursion
// this deep fits well within Go's default maximum stack of 1 GB.
const MaxDepth = 100_000

// ErrTag reports a malformed ddd struct tag.
var ErrTag = errors.New("invalid ddd tag")

// Field is one field of a struct, exported or not.
type Field struct {
	reflect.StructField
	Ignored bool // tagged `ddd:"-"`
	ID      bool // tagged `ddd:"id"`
	Version bool // tagged `ddd:"version"`
}

// Struct describes a struct type.
type Struct struct {
	Type    reflect.Type
	Fields  []Field
	IDField int // index into Fields of the `ddd:"id"` field, or -1
	Version int // index into Fields of the `ddd:"version"` field, or -1
}

var structCache sync.Map // reflect.Type -> *Struct or error

// StructOf returns the description of struct type t.
func StructOf(t reflect.Type) (*Struct, error) {
	if v, ok := structCache.Load(t); ok {
		if err, ok := v.(error); ok {
			return nil, err
		}
		return v.(*Struct), nil
	}
	s, err := buildStruct(t)
	if err != nil {
		structCache.Store(t, err)
		return nil, err
	}
	v, _ := structCache.LoadOrStore(t, s)
	return v.(*Struct), nil
}

func buildStruct(t reflect.Type) (*Struct, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%v is not a struct", t)
	}
	s := &Struct{Type: t, IDField: -1, Version: -1}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		f := Field{StructField: sf}
		tag, ok := sf.Tag.Lookup(ddd.TagName)
		if ok {
			switch strings.TrimSpace(tag) {
			case "-":
				f.Ignored = true
			case "id":
				if s.IDField >= 0 {
					return nil, fmt.Errorf("%w: %v has two fields tagged %s:\"id\"", ErrTag, t, ddd.TagName)
				}
				if !sf.Type.Comparable() || sf.Type.Kind() == reflect.Interface {
					return nil, fmt.Errorf("%w: %v.%s tagged %s:\"id\" is of a type that is not comparable, or an interface", ErrTag, t, sf.Name, ddd.TagName)
				}
				f.ID = true
				s.IDField = i
			case "version":
				if s.Version >= 0 {
					return nil, fmt.Errorf("%w: %v has two fields tagged %s:\"version\"", ErrTag, t, ddd.TagName)
				}
				if !IsInteger(sf.Type.Kind()) {
					return nil, fmt.Errorf("%w: %v.%s tagged %s:\"version\" must be an integer, not %v", ErrTag, t, sf.Name, ddd.TagName, sf.Type)
				}
				f.Version = true
				s.Version = i
			case "":
			default:
				return nil, fmt.Errorf("%w: %v.%s: %s:%q (want \"id\", \"version\" or \"-\")", ErrTag, t, sf.Name, ddd.TagName, tag)
			}
		}
		s.Fields = append(s.Fields, f)
	}
	return s, nil
}

// IsInteger reports whether k is a signed or unsigned integer kind.
func IsInteger(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	return false
}

// Identity tells how to read the identity of an entity type.
type Identity struct {
	// Type is the type of the identity value.
	Type reflect.Type
	// Offset is the offset of the `ddd:"id"` field from the start of the
	// struct, when Method is false.
	Offset uintptr
	// Method is true when the identity is read by calling ID().
	Method bool
	// Deref is true when the entity is stored as a pointer to its struct.
	Deref bool
	// Elem is the entity type as stored (a struct or a pointer to one).
	Elem reflect.Type
	// FieldIndex is the index of the tagged field, when Method is false.
	FieldIndex int
}

// IdentityOf reports how the identity of values of type t (a struct or a
// pointer to a struct, as stored in a collection) is read, or false when t
// is not an entity type.
func IdentityOf(t reflect.Type) (*Identity, bool, error) {
	st := t
	deref := false
	if t.Kind() == reflect.Pointer {
		st = t.Elem()
		deref = true
	}
	if st.Kind() != reflect.Struct {
		return nil, false, nil
	}
	s, err := StructOf(st)
	if err != nil {
		return nil, false, err
	}
	if s.IDField >= 0 {
		f := s.Fields[s.IDField]
		return &Identity{Type: f.Type, Offset: f.Offset, Deref: deref, Elem: t, FieldIndex: s.IDField}, true, nil
	}
	// A method ID() on the pointer covers methods on the value too.
	m, ok := reflect.PointerTo(st).MethodByName("ID")
	if !ok || m.Type.NumIn() != 1 || m.Type.NumOut() != 1 {
		return nil, false, nil
	}
	out := m.Type.Out(0)
	if !out.Comparable() {
		return nil, false, nil // not an identity: an ID method of another kind
	}
	if out.Kind() == reflect.Interface {
		// An identity held in an interface may not be comparable at run
		// time: refuse it rather than panic when matching.
		return nil, false, fmt.Errorf("%w: %v.ID returns %v: an identity must not be an interface", ErrTag, st, out)
	}
	return &Identity{Type: m.Type.Out(0), Method: true, Deref: deref, Elem: t, FieldIndex: -1}, true, nil
}

// Read returns the identity of the entity stored at p (p points to a value of
// type id.Elem). It returns false for a nil entity pointer.
func (id *Identity) Read(p unsafe.Pointer) (any, bool) {
	sp := p
	if id.Deref {
		sp = *(*unsafe.Pointer)(p)
		if sp == nil {
			return nil, false
		}
	}
	if !id.Method {
		return reflect.NewAt(id.Type, unsafe.Add(sp, id.Offset)).Elem().Interface(), true
	}
	st := id.Elem
	if id.Deref {
		st = st.Elem()
	}
	out := reflect.NewAt(st, sp).MethodByName("ID").Call(nil)
	return out[0].Interface(), true
}

// VersionOf returns the version field of struct type t, if it has one.
func VersionOf(t reflect.Type) (Field, bool, error) {
	s, err := StructOf(t)
	if err != nil {
		return Field{}, false, err
	}
	if s.Version < 0 {
		return Field{}, false, nil
	}
	return s.Fields[s.Version], true, nil
}

// ReadInt reads the integer of type t stored at p.
func ReadInt(t reflect.Type, p unsafe.Pointer) int64 {
	v := reflect.NewAt(t, p).Elem()
	if v.CanInt() {
		return v.Int()
	}
	return int64(v.Uint())
}

// WriteInt writes n as an integer of type t at p.
func WriteInt(t reflect.Type, p unsafe.Pointer, n int64) {
	v := reflect.NewAt(t, p).Elem()
	if v.CanInt() {
		v.SetInt(n)
		return
	}
	v.SetUint(uint64(n))
}

var timeType = reflect.TypeFor[time.Time]()

// TimeType is reflect.TypeFor[time.Time]().
func TimeType() reflect.Type { return timeType }

// ValueEqual is the rule, shared by copying and comparing, that says whether
// values of type t are values compared with their own method Equal(t) bool
// (by value or pointer receiver), such as time.Time or a decimal type. It
// returns the method, and true when it applies. Such a type is a value: it
// is compared by the method alone, and copied all of it, so that the copy
// shares no memory a change in place could reach (see [Type.CopyParts] and
// [Type.Plain]); nothing inside it is refused or read as the aggregate's.
//
// The method does not apply, and values are copied and compared part by
// part, to:
//   - pointer, slice, map and interface types, which are followed: their
//     method may not see what a copy changes;
//   - func, chan and unsafe.Pointer types, which are not supported;
//   - entities, structs with a `ddd:"id"` field or an ID method (see
//     [IdentityOf]), and structs with a malformed ddd tag: an entity's Equal
//     method usually compares identities only, and trusting it would hide
//     every change of the entity's contents.
func ValueEqual(t reflect.Type) (reflect.Method, bool) {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface,
		reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return reflect.Method{}, false
	}
	if _, isEntity, err := IdentityOf(t); isEntity || err != nil {
		return reflect.Method{}, false
	}
	return equalMethod(t)
}

// equalMethod reports whether t has a method Equal(t) bool, by value or by
// pointer receiver.
func equalMethod(t reflect.Type) (reflect.Method, bool) {
	for _, rt := range []reflect.Type{t, reflect.PointerTo(t)} {
		m, ok := rt.MethodByName("Equal")
		if !ok {
			continue
		}
		mt := m.Type
		if mt.NumIn() == 2 && mt.NumOut() == 1 && mt.In(1) == t && mt.Out(0).Kind() == reflect.Bool {
			return m, true
		}
	}
	return reflect.Method{}, false
}

// HasPointers reports whether values of t hold pointers the garbage
// collector must see.
func HasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	case reflect.Array:
		return t.Len() > 0 && HasPointers(t.Elem())
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if HasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	}
	return true
}

// Same reports whether the entities stored at p and q (values of type
// id.Elem, as stored in a collection) have the same identity. Nil entities
// are the same only as each other.
func (id *Identity) Same(p, q unsafe.Pointer) bool {
	sp, sq := p, q
	if id.Deref {
		sp, sq = *(*unsafe.Pointer)(p), *(*unsafe.Pointer)(q)
		if sp == nil || sq == nil {
			return sp == sq
		}
	}
	if !id.Method {
		fp, fq := unsafe.Add(sp, id.Offset), unsafe.Add(sq, id.Offset)
		switch id.Type.Kind() {
		case reflect.String:
			return *(*string)(fp) == *(*string)(fq)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			n := id.Type.Size()
			return unsafe.String((*byte)(fp), n) == unsafe.String((*byte)(fq), n)
		}
	}
	a, _ := id.Read(p)
	b, _ := id.Read(q)
	return a == b
}

// Is reports whether the entity stored at p (a value of type id.Elem, as
// stored in a collection, not nil) has the identity stored at k (a value of
// type id.Type), without allocating for string and integer identities.
func (id *Identity) Is(p, k unsafe.Pointer) bool {
	sp := p
	if id.Deref {
		sp = *(*unsafe.Pointer)(p)
		if sp == nil {
			return false
		}
	}
	if !id.Method {
		fp := unsafe.Add(sp, id.Offset)
		switch id.Type.Kind() {
		case reflect.String:
			return *(*string)(fp) == *(*string)(k)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			n := id.Type.Size()
			return unsafe.String((*byte)(fp), n) == unsafe.String((*byte)(k), n)
		}
	}
	a, _ := id.Read(p)
	return a == reflect.NewAt(id.Type, k).Elem().Interface()
}
