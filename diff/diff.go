// Package diff compares two values of the same type and reports what
// changed, matching entities by identity.
//
// [Compare] walks both values field by field, exported and unexported
// fields alike, through nested structs (value objects), pointers, arrays,
// slices, maps and interfaces, and returns a [Result]:
//
//   - the changed fields of the root, with old and new values, as a
//     column-level UPDATE needs them ([Changes.Fields]);
//   - for each collection (slice, or map value) of entities, which elements
//     were added, removed or modified, matched by identity, never by index
//     or by equality ([Changes.Collections]). A modified element carries its
//     own field changes and its own nested collections, to any depth. A
//     change of order alone is not a change. The elements of a map are
//     matched by their identity too; its keys are not compared.
//
// What counts as equal:
//
//   - A type with a method Equal(T) bool, such as time.Time or a decimal
//     type, is compared with it, so a monotonic clock reading or a different
//     internal representation of the same value is not a change. Such a type
//     is a value: it changes as a whole, and the method alone decides.
//     Compare does not look inside it, so what it holds, a func, a pointer
//     cycle or a field tagged `ddd:"-"` for example, is neither walked nor
//     refused (a field-by-field match is tried first, where the value's
//     structure is bounded and holds no such part, to spare the call).
//     Copy of package tracking follows the same rule: it copies such a
//     value deeply, all of it, so that a change made in place behind its
//     pointers shows. The method does not apply to
//     pointer, slice, map and interface types, which are followed, nor to
//     an entity: an entity's Equal method usually compares identities, so
//     an entity is always compared field by field, as Copy deep-copies it.
//   - A float NaN equals a NaN, so a value holding NaN is not changed
//     forever. So do map keys: the entries of a map under keys holding a
//     NaN, which no lookup finds, are paired by key and value in any
//     order, each with one of its own.
//   - A nil slice or map equals an empty one: both store nothing.
//   - A slice or map of values without identity, an array, an interface, and
//     a pointer that turned nil or non-nil, change as a whole, reported as
//     one [Change] of the field that holds them. A pointer to a struct that
//     is non-nil on both sides is followed, and its fields are reported.
//   - Fields tagged `ddd:"-"` and the version field tagged `ddd:"version"`
//     (the repository's business) are not compared.
//
// An entity is a struct type, or pointer to one, that has a field tagged
// `ddd:"id"` or a method ID() returning a comparable value; see package ddd.
//
// A value that contains itself, through pointers, slices, maps or
// interfaces, is reported with [ErrCycle] once the walk is deep enough to
// look for cycles (1,000 steps), never by overflowing the stack.
//
// A value nested more than 100,000 deep, counting the pointers (the root's
// included), slices, maps and interfaces entered one inside another, is
// refused with an error wrapping [ErrUnsupported], as Copy of package
// tracking refuses it: the limit is one for both, and a walk within it fits
// in the default maximum goroutine stack.
//
// An identity must be of a comparable type that is not an interface: an
// identity held in an interface may be incomparable at run time, and is
// refused with [ErrUnsupported].
//
// Comparison runs on per-type plans compiled on first use and cached, and
// does not allocate when the two values are equal and the compared type is
// a pointer (as aggregates are) and holds no maps or interfaces. Errors are
// returned, never panics: see [ErrDuplicateID], [ErrNilEntity],
// [ErrUnsupported] and [ErrCycle].
package diff

import (
	"reflect"
	"unsafe"

	"github.com/dddkit/dddkit/internal/diffat"
)

// Compare returns the differences between old and new. Both are values of
// the same type T, usually a pointer to an aggregate root. A nil pointer is
// compared as a value that is entirely absent: see [Result].
func Compare[T any](old, new T) (Result, error) {
	t := reflect.TypeFor[T]()
	var p, q unsafe.Pointer
	if t.Kind() == reflect.Pointer {
		// Pass the pointers themselves, so that old and new do not escape.
		p = *(*unsafe.Pointer)(unsafe.Pointer(&old))
		q = *(*unsafe.Pointer)(unsafe.Pointer(&new))
		if p == q {
			return Result{}, nil
		}
		// The common case, an unchanged aggregate, in as few steps as can be.
		pl := cachedElemPlan(t)
		fast := pl != nil && p != nil && q != nil && !pl.mayCycle
		if fast && pl.eq(nil, p, q) {
			return Result{}, nil
		}
		return compareRoot(t, p, q, true, fast)
	}
	o, n := old, new // only these escape, and only for a non-pointer T
	return compareRoot(t, unsafe.Pointer(&o), unsafe.Pointer(&n), false, false)
}

// Equal reports whether old and new are equal by the rules of [Compare].
// It is faster than Compare and does not allocate for the types Compare
// does not allocate for. Where Compare returns an error, Equal returns
// false with that error.
func Equal[T any](old, new T) (bool, error) {
	t := reflect.TypeFor[T]()
	if t.Kind() == reflect.Pointer {
		p := *(*unsafe.Pointer)(unsafe.Pointer(&old))
		q := *(*unsafe.Pointer)(unsafe.Pointer(&new))
		if p == q {
			return true, nil
		}
		if pl := cachedElemPlan(t); pl != nil && p != nil && q != nil && !pl.mayCycle && pl.eq(nil, p, q) {
			return true, nil
		}
		return equalRoot(t, p, q, true)
	}
	o, n := old, new
	return equalRoot(t, unsafe.Pointer(&o), unsafe.Pointer(&n), false)
}

func init() {
	diffat.Compare = func(t reflect.Type, old, cur unsafe.Pointer) (any, error) {
		if old == cur {
			return Result{}, nil
		}
		return compareRoot(reflect.PointerTo(t), old, cur, true, false)
	}
}
