package tracking

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/dddkit/dddkit/internal/typeinfo"
)

// A value with an Equal method (a Value of package typeinfo) that is not
// plain is copied as a graph: it is not the aggregate's, so neither its
// ddd tags nor the aggregate's limits (no func, no cycle) apply inside it.
// Every part is copied, deeply, as the value holds it: pointers to new
// objects, slices to new backing arrays, maps to new maps, interfaces to
// new boxes. A pointer, slice or map met twice is copied once, so that a
// pointer cycle is copied as a cycle and a walk of it ends. What cannot be
// copied is shared: funcs (immutable), chans and unsafe.Pointers (whose
// identity is their value), and map keys, as everywhere. time.Time is
// assigned, its Location being never changed. Such values are rare: a
// decimal holding a *big.Int is plain, and copied by its plan.

// graphKey is a part of the source already copied: a pointer, slice
// backing array (with its length) or map, of its type.
type graphKey struct {
	p   unsafe.Pointer
	n   int
	typ reflect.Type
}

type graph struct {
	memo map[graphKey]reflect.Value
	// root is the address of the value copied, and self a pointer to its
	// copy: a pointer to the value from inside it points to the copy.
	root    uintptr
	rootTyp reflect.Type
	self    reflect.Value
}

// copyGraph turns dst, a shallow copy of the value of type t at address
// src, into a deep copy, sharing only immutable memory and what cannot be
// copied. The value is read from dst, which holds the same words, so that
// src, only compared, does not escape.
func copyGraph(t reflect.Type, dst unsafe.Pointer, src uintptr) (err error) {
	defer catch(&err)
	g := graph{memo: make(map[graphKey]reflect.Value), root: src, rootTyp: reflect.PointerTo(t), self: reflect.NewAt(t, dst)}
	s := reflect.New(t).Elem()
	s.Set(g.self.Elem())
	return g.fix(g.self.Elem(), s, 0)
}

// settable returns v, addressable, without the read-only flag of an
// unexported field.
func settable(v reflect.Value) reflect.Value {
	return reflect.NewAt(v.Type(), v.Addr().UnsafePointer()).Elem()
}

// fix turns d, addressable and holding a shallow copy of s, addressable
// too, into a deep copy. depth counts the pointers, slices, maps and
// interfaces entered, bounded as everywhere by typeinfo.MaxDepth.
func (g *graph) fix(d, s reflect.Value, depth int) error {
	t := d.Type()
	if !typeinfo.HasPointers(t) || t == typeinfo.TimeType() {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			if !typeinfo.HasPointers(t.Field(i).Type) {
				continue
			}
			if err := g.fix(settable(d.Field(i)), settable(s.Field(i)), depth); err != nil {
				return withStep(err, "."+t.Field(i).Name)
			}
		}
	case reflect.Array:
		for i := range t.Len() {
			if err := g.fix(d.Index(i), s.Index(i), depth); err != nil {
				return withStep(err, fmt.Sprintf("[%d]", i))
			}
		}
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		if s.IsNil() {
			return nil
		}
		if depth >= typeinfo.MaxDepth {
			return tooDeep()
		}
		return g.fixRef(d, s, depth+1)
	}
	// Strings, funcs, chans and unsafe.Pointers: shared, as assigned.
	return nil
}

// fixRef copies the non-nil pointer, slice, map or interface s into d.
func (g *graph) fixRef(d, s reflect.Value, depth int) error {
	t := d.Type()
	if t.Kind() == reflect.Interface {
		// A box is immutable: a new one holds a copy of the value.
		e := s.Elem()
		if !typeinfo.HasPointers(e.Type()) {
			return nil
		}
		sv := reflect.New(e.Type()).Elem()
		sv.Set(e)
		nv := reflect.New(e.Type()).Elem()
		nv.Set(e)
		if err := g.fix(nv, sv, depth); err != nil {
			return err
		}
		d.Set(nv)
		return nil
	}
	key := graphKey{p: s.UnsafePointer(), typ: t}
	if t.Kind() == reflect.Slice {
		key.n = s.Len()
	}
	if c, ok := g.memo[key]; ok {
		d.Set(c)
		return nil
	}
	if t == g.rootTyp && uintptr(key.p) == g.root {
		d.Set(g.self)
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		if t.Elem().Size() == 0 {
			return nil // nothing to copy: shared, as a copy would be
		}
		c := reflect.New(t.Elem())
		c.Elem().Set(s.Elem())
		g.memo[key] = c
		d.Set(c)
		return g.fix(c.Elem(), s.Elem(), depth)
	case reflect.Slice:
		n := s.Len()
		c := reflect.MakeSlice(t, n, n)
		reflect.Copy(c, s)
		g.memo[key] = c
		d.Set(c)
		for i := range n {
			if err := g.fix(c.Index(i), s.Index(i), depth); err != nil {
				return withStep(err, fmt.Sprintf("[%d]", i))
			}
		}
	case reflect.Map:
		c := reflect.MakeMapWithSize(t, s.Len())
		g.memo[key] = c
		d.Set(c)
		sv := reflect.New(t.Elem()).Elem()
		it := s.MapRange()
		for it.Next() {
			sv.SetIterValue(it)
			nv := reflect.New(t.Elem()).Elem()
			nv.Set(sv)
			if err := g.fix(nv, sv, depth); err != nil {
				return withStep(err, fmt.Sprintf("[%v]", it.Key()))
			}
			c.SetMapIndex(it.Key(), nv)
		}
	}
	return nil
}
