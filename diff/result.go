package diff

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/dddkit/dddkit/ddd"
)

// Errors returned by [Compare], wrapped in an [*Error] that says where.
// They are the model errors of package ddd, so that one errors.Is works
// whichever package found the problem.
var (
	// ErrDuplicateID is [ddd.ErrDuplicateID]: two elements with the same
	// identity in one entity collection.
	ErrDuplicateID = ddd.ErrDuplicateID
	// ErrNilEntity is [ddd.ErrNilEntity]: a nil pointer stored in an entity
	// collection.
	ErrNilEntity = ddd.ErrNilEntity
	// ErrUnsupported is [ddd.ErrUnsupported]: a type that cannot be
	// compared or copied (a func, chan or unsafe.Pointer field not tagged
	// `ddd:"-"`, or a malformed ddd tag), or a value nested more than
	// 100,000 deep.
	ErrUnsupported = ddd.ErrUnsupported
	// ErrCycle is [ddd.ErrCycle]: a value that contains itself.
	ErrCycle = ddd.ErrCycle
)

// Error is the error type of this package: what went wrong and where.
type Error struct {
	// Path is where the problem is, relative to the compared value.
	Path Path
	// Err is one of the package's sentinel errors, possibly wrapping more.
	Err error
}

// maxShownSteps is the most steps of a path an error message shows.
const maxShownSteps = 64

// Error implements error. A very deep path is shown by its two ends.
func (e *Error) Error() string {
	if len(e.Path) == 0 {
		return "diff: " + e.Err.Error()
	}
	if n := len(e.Path); n > maxShownSteps {
		var b strings.Builder
		b.WriteString(e.Path[:maxShownSteps/2].String())
		fmt.Fprintf(&b, "...(%d more)...", n-maxShownSteps)
		for _, s := range e.Path[n-maxShownSteps/2:] {
			b.WriteString(s.String())
		}
		return fmt.Sprintf("diff: %s: %v", b.String(), e.Err)
	}
	return fmt.Sprintf("diff: %s: %v", e.Path, e.Err)
}

// Unwrap returns e.Err, so that errors.Is(err, ErrDuplicateID) works.
func (e *Error) Unwrap() error { return e.Err }

// Kind says what happened to an element of an entity collection.
type Kind uint8

// The kinds of element change.
const (
	// Added is an element present only in the new collection.
	Added Kind = iota + 1
	// Removed is an element present only in the old collection.
	Removed
	// Modified is an element present in both with changed contents.
	Modified
)

// String returns "added", "removed" or "modified".
func (k Kind) String() string {
	switch k {
	case Added:
		return "added"
	case Removed:
		return "removed"
	case Modified:
		return "modified"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Step is one step of a [Path]: a [FieldStep] or an [ElementStep].
type Step interface {
	// String formats the step as it appears in a path.
	String() string
	isStep()
}

// FieldStep selects a field of a struct.
type FieldStep struct {
	// Name is the field's name, as declared (exported or not).
	Name string
	// Index is the field's index in its struct (reflect.Type.Field).
	Index int
}

// String returns ".Name".
func (s FieldStep) String() string { return "." + s.Name }
func (FieldStep) isStep()          {}

// ElementStep selects an element of an entity collection by identity.
type ElementStep struct {
	// ID is the element's identity.
	ID any
}

// String returns "[id=ID]".
func (s ElementStep) String() string { return fmt.Sprintf("[id=%v]", s.ID) }
func (ElementStep) isStep()          {}

// Path locates a value inside the compared value, as a sequence of steps
// from it. Pointers are followed without a step of their own.
type Path []Step

// String formats the path as in Go source, without a leading dot:
// "Items[id=2].Quantity". The empty path is "".
func (p Path) String() string {
	var b strings.Builder
	for i, s := range p {
		str := s.String()
		if i == 0 {
			str = strings.TrimPrefix(str, ".")
		}
		b.WriteString(str)
	}
	return b.String()
}

// Last returns the last step of the path, or nil for the empty path.
func (p Path) Last() Step {
	if len(p) == 0 {
		return nil
	}
	return p[len(p)-1]
}

// FieldIndex returns the struct field indexes of a path made only of field
// steps (a field inside nested value objects), and false when the path holds
// an element step.
func (p Path) FieldIndex() ([]int, bool) {
	idx := make([]int, 0, len(p))
	for _, s := range p {
		f, ok := s.(FieldStep)
		if !ok {
			return nil, false
		}
		idx = append(idx, f.Index)
	}
	return idx, true
}

// Change is one changed value: a field, or a field inside a value object
// (a struct field not itself an entity collection). Values without identity
// (slices and maps of values, arrays, interfaces, pointers that turned nil
// or non-nil) change as a whole.
type Change struct {
	// Path is relative to the entity that owns the field, for example
	// "Recipient.Name" for a field of a value object held by the root.
	Path Path
	// Old and New are the values before and after.
	Old, New any
}

// Changes holds the changes of one entity: its own fields, and its entity
// collections.
type Changes struct {
	// Fields lists the changed fields of the entity itself, in field order.
	Fields []Change
	// Collections lists the entity collections with changed elements, in
	// field order.
	Collections []Collection
}

// Empty reports whether there are no changes.
func (c *Changes) Empty() bool { return len(c.Fields) == 0 && len(c.Collections) == 0 }

// Field returns the change of the field at path (as printed by
// [Path.String], for example "Recipient.Name"), if it changed.
func (c *Changes) Field(path string) (Change, bool) {
	for _, f := range c.Fields {
		if f.Path.String() == path {
			return f, true
		}
	}
	return Change{}, false
}

// Collection returns the element changes of the entity collection at path
// (its field name, for example "Items" or "items"), or nil when it has none.
func (c *Changes) Collection(path string) []Element {
	for _, col := range c.Collections {
		if col.Path.String() == path {
			return col.Elements
		}
	}
	return nil
}

// Collection is the changes of one collection (slice or map) of entities,
// matched by identity.
type Collection struct {
	// Path is the collection's field path within its owner, e.g. "Items".
	Path Path
	// Elements lists removed elements first (in old order), then modified
	// and added elements in new order. A change of order alone is not a
	// change.
	Elements []Element
}

// Element is the change of one element of an entity collection.
type Element struct {
	// Kind says whether the element was added, removed or modified.
	Kind Kind
	// ID is the element's identity.
	ID any
	// Old is the element before (nil when added); New is the element after
	// (nil when removed). They are the collection's element values, for
	// example *OrderItem.
	Old, New any
	// Changes holds the element's own changes when it was modified.
	Changes
}

// Result is the difference between an old and a new value, as returned by
// [Compare]. Its zero value means no difference.
type Result struct {
	Changes
}

// Changed reports whether anything differs, child collections included.
func (r *Result) Changed() bool { return !r.Empty() }

// RootModified reports whether the root's own fields changed (value objects
// included), as opposed to only its entity collections.
func (r *Result) RootModified() bool { return len(r.Fields) > 0 }

// String returns a readable report, one change per line, for example:
//
//	Total: 1500 -> 2100
//	Items[id=2]: modified
//	Items[id=2].Quantity: 3 -> 5
//	Items[id=4]: added
//
// An unchanged result prints as "no changes".
func (r Result) String() string {
	if r.Empty() {
		return "no changes"
	}
	var b strings.Builder
	writeChanges(&b, nil, &r.Changes)
	return strings.TrimSuffix(b.String(), "\n")
}

func writeChanges(b *strings.Builder, prefix Path, c *Changes) {
	for _, f := range c.Fields {
		fmt.Fprintf(b, "%s: %s -> %s\n", join(prefix, f.Path), format(f.Old), format(f.New))
	}
	for _, col := range c.Collections {
		base := join(prefix, col.Path)
		for i := range col.Elements {
			e := &col.Elements[i]
			p := append(base[:len(base):len(base)], ElementStep{ID: e.ID})
			fmt.Fprintf(b, "%s: %s\n", p, e.Kind)
			if e.Kind == Modified {
				writeChanges(b, p, &e.Changes)
			}
		}
	}
}

func join(prefix, p Path) Path {
	out := make(Path, 0, len(prefix)+len(p))
	return append(append(out, prefix...), p...)
}

func format(v any) string {
	switch x := v.(type) {
	case nil:
		return "<nil>"
	case string:
		return fmt.Sprintf("%q", x)
	case []byte:
		return fmt.Sprintf("%#x", x)
	case fmt.Stringer:
		return x.String()
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() && rv.Elem().Kind() != reflect.Struct {
		return "&" + format(rv.Elem().Interface())
	}
	return fmt.Sprintf("%+v", v)
}
