package tracking

import (
	"context"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/dddkit/dddkit/ddd"
	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/internal/typeinfo"
)

// Prepare builds the snapshot v is to have after a save whose changes are
// known, without installing it: snap is the snapshot v was compared with
// (from [Tracker.Snapshot]) and d the result of that comparison
// (diff.Compare(snap, v)), as a repository has them before it writes.
// Instead of copying all of v, it builds the new snapshot from snap,
// copying from v only the fields and the entities that d reports changed:
// saving one changed item of an order of a thousand copies one item.
// Successive snapshots share their unchanged parts, which nothing ever
// modifies, and share no memory with v.
//
// Nothing changes until [Prepared.Commit], which a repository calls once
// the save succeeded. Preparing first makes a value that cannot be
// snapshotted fail the save before anything is written.
//
// The result equals a fresh copy of v by the rules of package diff. Given
// a d that does not describe v against snap, the snapshot is wrong; when in
// doubt, use [Tracker.Attach].
func (t *Tracker[T]) Prepare(v, snap T, d diff.Result) (Prepared[T], error) {
	if err := t.check(); err != nil {
		return Prepared[T]{}, err
	}
	if typeinfo.PtrOf(v) == nil || typeinfo.PtrOf(snap) == nil {
		return Prepared[T]{}, fmt.Errorf("tracking: prepare: %w: nil aggregate or snapshot", ddd.ErrUnsupported)
	}
	np, err := patch(reflect.TypeFor[T]().Elem(), typeinfo.PtrOf(snap), typeinfo.PtrOf(v), &d.Changes)
	if err != nil {
		return Prepared[T]{}, fmt.Errorf("tracking: snapshot: %w", err)
	}
	return Prepared[T]{t: t, v: v, next: *(*T)(unsafe.Pointer(&np))}, nil
}

// Prepared is a snapshot built by [Tracker.Prepare] and not yet installed.
// The zero Prepared commits nothing: its Commit fails.
type Prepared[T any] struct {
	t       *Tracker[T]
	v, next T
}

// Snapshot returns the prepared snapshot. A repository may set fields of
// it that it sets on the aggregate before writing (the version), and must
// not change it otherwise.
func (p Prepared[T]) Snapshot() T { return p.next }

// Commit makes the prepared snapshot the snapshot of the aggregate,
// attaching the aggregate if it was not tracked: at once, or, when ctx
// carries a [Scope], when the scope commits.
func (p Prepared[T]) Commit(ctx context.Context) error {
	if p.t == nil {
		return fmt.Errorf("tracking: commit: %w: nothing prepared", ddd.ErrUnsupported)
	}
	w, err := key(p.v)
	if err != nil {
		return err
	}
	t, v, next := p.t, p.v, p.next
	if s, ok := FromContext(ctx); ok {
		t.stage(s, v, w, &staged{snap: next, apply: func() { t.install(v, w, next) }})
		return nil
	}
	t.install(v, w, next)
	return nil
}

// patch returns a new struct of type rt: a shallow copy of the snapshot at
// old with the fields that ch reports changed copied from cur.
func patch(rt reflect.Type, old, cur unsafe.Pointer, ch *diff.Changes) (unsafe.Pointer, error) {
	info, err := typeinfo.StructOf(rt)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ddd.ErrUnsupported, err)
	}
	nv := reflect.New(rt)
	np := nv.UnsafePointer()
	nv.Elem().Set(reflect.NewAt(rt, old).Elem()) // typed copy: write barriers kept

	// Top-level fields to copy whole from cur, and entity collections to
	// rebuild element by element.
	whole := make(map[int]bool)
	colls := make(map[int]*diff.Collection)
	top := func(p diff.Path) (int, bool) {
		if len(p) == 0 {
			return 0, false
		}
		f, ok := p[0].(diff.FieldStep)
		return f.Index, ok
	}
	for _, f := range ch.Fields {
		i, ok := top(f.Path)
		if !ok {
			return copyWhole(rt, cur)
		}
		whole[i] = true
	}
	for i := range ch.Collections {
		c := &ch.Collections[i]
		idx, ok := top(c.Path)
		if !ok {
			return copyWhole(rt, cur)
		}
		if len(c.Path) == 1 {
			colls[idx] = c
		} else {
			whole[idx] = true // a collection inside a value object
		}
	}
	if info.Version >= 0 {
		whole[info.Version] = true
	}
	for idx := range whole {
		delete(colls, idx)
		if err := copyField(info.Fields[idx], np, cur); err != nil {
			return nil, err
		}
	}
	// Entity collections without changes keep the old slice: a reorder is
	// not a change, and the next comparison matches by identity.
	for idx, c := range colls {
		f := info.Fields[idx]
		if f.Type.Kind() != reflect.Slice || f.Type.Elem().Kind() != reflect.Pointer {
			if err := copyField(f, np, cur); err != nil {
				return nil, err
			}
			continue
		}
		if err := patchSlice(f, np, old, cur, c); err != nil {
			return nil, err
		}
	}
	return np, nil
}

func copyWhole(rt reflect.Type, cur unsafe.Pointer) (unsafe.Pointer, error) {
	return copyPointer(planOf(reflect.PointerTo(rt)), cur)
}

// copyField replaces field f of the struct at dst by a deep copy of the
// same field of the struct at src.
func copyField(f typeinfo.Field, dst, src unsafe.Pointer) error {
	fd, fs := unsafe.Add(dst, f.Offset), unsafe.Add(src, f.Offset)
	// Copy through a pointer to the field, as Copy does for a pointer root,
	// then assign the copy (a typed store).
	c, err := copyPointer(planOf(reflect.PointerTo(f.Type)), fs)
	if err != nil {
		return fmt.Errorf("field .%s: %w", f.Name, err)
	}
	reflect.NewAt(f.Type, fd).Elem().Set(reflect.NewAt(f.Type, c).Elem())
	return nil
}

// patchSlice rebuilds the entity slice field f (of pointers) of the new
// snapshot at np: elements c reports added or modified are copied from
// cur, the others are the old snapshot's elements of the same identity.
func patchSlice(f typeinfo.Field, np, old, cur unsafe.Pointer, c *diff.Collection) error {
	id := typeinfo.Of(f.Type).Identity
	if id == nil {
		return copyField(f, np, cur)
	}
	ptrPlan := planOf(f.Type.Elem())
	var changed map[unsafe.Pointer]bool
	if c != nil {
		changed = make(map[unsafe.Pointer]bool, len(c.Elements))
	}
	var list []diff.Element
	if c != nil {
		list = c.Elements
	}
	for i := range list {
		e := &list[i]
		if e.Kind == diff.Added || e.Kind == diff.Modified {
			// e.New holds the element, a pointer: the interface's data word.
			changed[(*typeinfo.Eface)(unsafe.Pointer(&e.New)).Data] = true
		}
	}
	olds := *(*typeinfo.SliceHeader)(unsafe.Add(old, f.Offset))
	cs := *(*typeinfo.SliceHeader)(unsafe.Add(cur, f.Offset))
	if cs.Len == 0 {
		return copyField(f, np, cur) // keeps nil and empty apart
	}
	if olds.Len == cs.Len && onlyModified(list) {
		return patchModified(f, np, olds, ptrPlan, list)
	}
	ns := reflect.MakeSlice(f.Type, cs.Len, cs.Len)
	data := ns.UnsafePointer()
	const word = unsafe.Sizeof(uintptr(0))
	var byID map[any]unsafe.Pointer
	for i := 0; i < cs.Len; i++ {
		slot := unsafe.Add(cs.Data, uintptr(i)*word)
		cp := *(*unsafe.Pointer)(slot)
		var p unsafe.Pointer
		var err error
		switch {
		case cp == nil:
		case changed[cp]:
			if p, err = copyPointer(ptrPlan, cp); err != nil {
				return fmt.Errorf("field .%s: %w", f.Name, err)
			}
		case i < olds.Len && id.Same(unsafe.Add(olds.Data, uintptr(i)*word), slot):
			p = *(*unsafe.Pointer)(unsafe.Add(olds.Data, uintptr(i)*word))
		default:
			if byID == nil {
				byID = make(map[any]unsafe.Pointer, olds.Len)
				for j := 0; j < olds.Len; j++ {
					oslot := unsafe.Add(olds.Data, uintptr(j)*word)
					if k, ok := id.Read(oslot); ok {
						byID[k] = *(*unsafe.Pointer)(oslot)
					}
				}
			}
			k, _ := id.Read(slot)
			if p = byID[k]; p == nil {
				if p, err = copyPointer(ptrPlan, cp); err != nil {
					return fmt.Errorf("field .%s: %w", f.Name, err)
				}
			}
		}
		*(*unsafe.Pointer)(unsafe.Add(data, uintptr(i)*word)) = p // typed store
	}
	reflect.NewAt(f.Type, unsafe.Add(np, f.Offset)).Elem().Set(ns)
	return nil
}

func onlyModified(list []diff.Element) bool {
	for i := range list {
		if list[i].Kind != diff.Modified {
			return false
		}
	}
	return true
}

// patchModified rebuilds the entity slice field f of the new snapshot at np
// when the collection only has modified elements: the old snapshot's
// elements, in their order, with each modified one replaced by a copy of
// its new value. Only pointers are compared to find them: no element is
// read.
func patchModified(f typeinfo.Field, np unsafe.Pointer, olds typeinfo.SliceHeader, ptrPlan *plan, list []diff.Element) error {
	ns := reflect.MakeSlice(f.Type, olds.Len, olds.Len)
	data := ns.UnsafePointer()
	reflect.Copy(ns, reflect.NewAt(f.Type, unsafe.Add(np, f.Offset)).Elem()) // typed copy of the old elements
	const word = unsafe.Sizeof(uintptr(0))
	slot := func(j int) *unsafe.Pointer { return (*unsafe.Pointer)(unsafe.Add(data, uintptr(j)*word)) }
	var index map[unsafe.Pointer]int // for many changes: old element -> position
	if len(list) > 8 {
		index = make(map[unsafe.Pointer]int, olds.Len)
		for j := 0; j < olds.Len; j++ {
			index[*slot(j)] = j
		}
	}
	st := f.Type.Elem().Elem()
	// An element that holds entity collections is patched as the root is:
	// what did not change inside it, a collection's unchanged elements
	// included, is shared with the old snapshot, which no one changes.
	// Another is copied, in one allocation.
	nested := typeinfo.Of(st).HasEntities
	for i := range list {
		e := &list[i]
		oldp := (*typeinfo.Eface)(unsafe.Pointer(&e.Old)).Data
		newp := (*typeinfo.Eface)(unsafe.Pointer(&e.New)).Data
		var c unsafe.Pointer
		var err error
		if nested {
			c, err = patch(st, oldp, newp, &e.Changes)
		} else {
			c, err = copyPointer(ptrPlan, newp)
		}
		if err != nil {
			return fmt.Errorf("field .%s: %w", f.Name, err)
		}
		j := -1
		if index != nil {
			if k, ok := index[oldp]; ok {
				j = k
			}
		} else {
			for k := 0; k < olds.Len; k++ {
				if *slot(k) == oldp {
					j = k
					break
				}
			}
		}
		if j < 0 {
			return fmt.Errorf("field .%s: %w: the changes do not match the snapshot", f.Name, ddd.ErrUnsupported)
		}
		*slot(j) = c // typed store
	}
	reflect.NewAt(f.Type, unsafe.Add(np, f.Offset)).Elem().Set(ns)
	return nil
}
