package typeinfo

// The layouts read with package unsafe.
//
// dddkit reads values of types it learns at run time without reflect's
// per-call cost, so it addresses memory through unsafe.Pointer. Every use
// rests on layouts that the Go specification or the runtime fixes and that
// reflect itself depends on: a slice is a header of a pointer, a length and
// a capacity (reflect.SliceHeader, which unsafe.Slice and unsafe.SliceData
// match); an interface value is two words, a type word (a type or itab
// pointer) and a data word that is the value itself for pointer-shaped
// types and points to it otherwise; a reflect.Type is an interface whose
// data word is the type's unique runtime descriptor; a pointer, map or chan
// is one word. The helpers below are the one place those layouts are
// spelled out.
//
// Memory is read freely, but memory that holds pointers is written only
// with typed stores through a typed pointer (*unsafe.Pointer, *string, a
// *SliceHeader whose Data is an unsafe.Pointer) or by reflect
// (typedmemmove, typedslicecopy), so that the garbage collector's write
// barriers run; never through a uintptr. A pointer is never kept as a
// uintptr, so the garbage collector sees every pointer it must.

import (
	"reflect"
	"sync"
	"unsafe"
)

// SliceHeader is the layout of a slice value.
type SliceHeader struct {
	Data unsafe.Pointer
	Len  int
	Cap  int
}

// Eface is the layout of an interface value: its type word and its data
// word.
type Eface struct {
	Type unsafe.Pointer
	Data unsafe.Pointer
}

// TypeKey returns the address of t's runtime type descriptor, which is
// unique per type: a map key or cache tag cheaper than t itself.
func TypeKey(t reflect.Type) unsafe.Pointer {
	return (*Eface)(unsafe.Pointer(&t)).Data
}

// TypeWord returns the type word of an empty interface holding a value of
// type t, which is not an interface type.
func TypeWord(t reflect.Type) unsafe.Pointer {
	x := reflect.Zero(t).Interface()
	return (*Eface)(unsafe.Pointer(&x)).Type
}

// PtrOf returns the address held by v, whose type T is a pointer type.
func PtrOf[T any](v T) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&v))
}

// IsNil reports whether v, whose type T is a pointer type, is nil.
func IsNil[T any](v T) bool {
	return PtrOf(v) == nil
}

// DirectIface reports whether a value of t is stored directly in the data
// word of an interface (pointer-shaped types) rather than behind a pointer.
// The rule is the compiler's and has changed between Go releases, so it is
// observed rather than restated: boxing the zero value of a direct type
// leaves a nil data word, while an indirect one points at a zero value.
func DirectIface(t reflect.Type) bool {
	if v, ok := directCache.Load(t); ok {
		return v.(bool)
	}
	z := reflect.Zero(t).Interface()
	d := (*Eface)(unsafe.Pointer(&z)).Data == nil && t.Size() == unsafe.Sizeof(uintptr(0))
	directCache.Store(t, d)
	return d
}

var directCache sync.Map // reflect.Type -> bool

// DataOf returns a pointer to the value held by interface a, which has the
// dynamic type t. For pointer-shaped types it returns a pointer to the data
// word of *ap, so ap must stay alive and unchanged while it is used.
func DataOf(ap *any, t reflect.Type) unsafe.Pointer {
	e := (*Eface)(unsafe.Pointer(ap))
	if DirectIface(t) {
		return unsafe.Pointer(&e.Data)
	}
	return e.Data
}
