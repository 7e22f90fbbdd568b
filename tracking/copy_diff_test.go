package tracking

import (
	"context"
	"math"
	"math/big"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/internal/typeinfo"
)

// These tests check that Copy and package diff follow the same rules: a
// snapshot compares equal to what it was taken of, and a change made after
// the snapshot is found.

// tagLine is an entity whose Equal method compares identities only, as
// entities often define it.
type tagLine struct {
	id   int64 `ddd:"id"`
	tags []string
}

func (l tagLine) Equal(o tagLine) bool { return l.id == o.id }

// keyLine is identified by its ID method, and has an Equal method too.
type keyLine struct {
	key  string
	tags []string
}

func (l *keyLine) ID() string { return l.key }

func (l keyLine) Equal(o keyLine) bool { return l.key == o.key }

type tagCart struct {
	id      int64 `ddd:"id"`
	ptrs    []*tagLine
	values  []tagLine
	byKey   map[string]*keyLine
	version int `ddd:"version"`
}

func newTagCart() *tagCart {
	return &tagCart{
		id:     1,
		ptrs:   []*tagLine{{id: 1, tags: []string{"a", "b"}}},
		values: []tagLine{{id: 2, tags: []string{"c"}}},
		byKey:  map[string]*keyLine{"k": {key: "k", tags: []string{"d"}}},
	}
}

// TestCopyEntityWithEqualMethod checks that an entity is deep-copied and
// compared field by field even when it has an Equal method: such a method
// usually compares identities, and trusting it would hide every change of
// the entity's contents.
func TestCopyEntityWithEqualMethod(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		mutate func(c *tagCart)
		read   func(c *tagCart) string
		want   string
	}{{
		name:   "pointer to a tagged entity",
		reason: "the snapshot must not share the line's slice, or changing the line changes the snapshot too and is never saved",
		mutate: func(c *tagCart) { c.ptrs[0].tags[0] = "x" },
		read:   func(c *tagCart) string { return c.ptrs[0].tags[0] },
		want:   "ptrs[id=1]: modified\nptrs[id=1].tags: [a b] -> [x b]",
	}, {
		name:   "tagged entity held by value",
		reason: "an entity stored by value in a slice follows the same rule",
		mutate: func(c *tagCart) { c.values[0].tags[0] = "x" },
		read:   func(c *tagCart) string { return c.values[0].tags[0] },
		want:   "values[id=2]: modified\nvalues[id=2].tags: [c] -> [x]",
	}, {
		name:   "entity identified by its ID method",
		reason: "an ID method makes an entity as a tag does",
		mutate: func(c *tagCart) { c.byKey["k"].tags[0] = "x" },
		read:   func(c *tagCart) string { return c.byKey["k"].tags[0] },
		want:   "byKey[id=k]: modified\nbyKey[id=k].tags: [d] -> [x]",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTagCart()
			snap, err := Copy(c)
			require.NoError(t, err)
			checkCopy(t, c, snap)
			before := tt.read(snap)
			tt.mutate(c)
			assert.Equal(t, before, tt.read(snap), "the snapshot is unchanged: %s", tt.reason)
			r, err := diff.Compare(snap, c)
			require.NoError(t, err, tt.reason)
			assert.Equal(t, tt.want, r.String(), tt.reason)
		})
	}
}

// TestEqualRuleIsShared checks Copy and Compare against the one rule that
// says whether an Equal method applies to a type.
func TestEqualRuleIsShared(t *testing.T) {
	_, ok := typeinfo.ValueEqual(reflect.TypeFor[tagLine]())
	assert.False(t, ok, "an entity is never a value because of its Equal method")
	_, ok = typeinfo.ValueEqual(reflect.TypeFor[keyLine]())
	assert.False(t, ok, "nor an entity identified by an ID method")
	_, ok = typeinfo.ValueEqual(reflect.TypeFor[decimal]())
	assert.True(t, ok, "a value object with an Equal method is a value")

	// A value holding a pointer: copied deeply (its pointer not shared),
	// compared by Equal.
	p := &priced{price: decimal{mant: big.NewInt(5), exp: 1}}
	c, err := Copy(p)
	require.NoError(t, err)
	assert.NotSame(t, p.price.mant, c.price.mant, "the snapshot shares no pointer with the aggregate")
	eq, err := diff.Equal(c, p)
	require.NoError(t, err)
	assert.True(t, eq, "compared with its method: another *big.Int of the same number is equal")

	// A change made in place behind the pointer is seen.
	p.price.mant.SetInt64(6)
	eq, err = diff.Equal(c, p)
	require.NoError(t, err)
	assert.False(t, eq, "a change in place inside a value with an Equal method is a change")
}

// mapCart is the shape of an aggregate whose children hold a map of
// entities.
type mapSub struct {
	ID int64 `ddd:"id"`
	N  int
}

type mapLine struct {
	ID    int64 `ddd:"id"`
	Parts map[int64]*mapSub
}

type mapCart struct {
	ID    int64 `ddd:"id"`
	Lines []*mapLine
}

type nanHolder struct {
	floats map[float64]int
	anys   map[any]int
}

// ringValue has an Equal method and may hold a pointer cycle.
type ringValue struct {
	n    int
	next *ringValue
}

func (r ringValue) Equal(o ringValue) bool { return r.n == o.n }

type ringHolder struct{ r ringValue }

// TestSnapshotEqualsOriginal checks that a fresh snapshot compares equal
// to the value it was taken of, for shapes that once made it look changed
// or made diff refuse what Copy accepts.
func TestSnapshotEqualsOriginal(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		reason string
		check  func(t *testing.T) (equal bool, err error)
	}{{
		name:   "map of entities in a child",
		reason: "an unchanged aggregate whose children hold a map of entities is not changed (no UPDATE, no version bump)",
		check: func(t *testing.T) (bool, error) {
			o := &mapCart{ID: 1, Lines: []*mapLine{{ID: 1, Parts: map[int64]*mapSub{1: {ID: 1, N: 1}}}}}
			tr := NewTracker[*mapCart]()
			require.NoError(t, tr.Attach(ctx, o))
			changed, err := tr.Changed(ctx, o)
			require.NoError(t, err)
			assert.False(t, changed, "right after Attach, nothing changed")
			return copyEqual(o)
		},
	}, {
		name:   "NaN map keys",
		reason: "maps with NaN keys equal their copies, as NaN equals NaN",
		check: func(*testing.T) (bool, error) {
			return copyEqual(&nanHolder{floats: map[float64]int{math.NaN(): 1, 1: 2}, anys: map[any]int{math.NaN(): 1, "a": 2}})
		},
	}, {
		name:   "Equal method over a pointer cycle",
		reason: "diff asks the method alone and does not walk into the cycle; Copy copies the value as a graph, the cycle as a cycle of its own, sharing nothing with the aggregate",
		check: func(t *testing.T) (bool, error) {
			h := &ringHolder{r: ringValue{n: 1}}
			h.r.next = &h.r
			c, err := Copy(h)
			require.NoError(t, err, "Copy copies the cycle")
			assert.Same(t, &c.r, c.r.next, "the copy is a cycle of its own")
			return diff.Equal(h, c)
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eq, err := tt.check(t)
			require.NoError(t, err, tt.reason)
			assert.True(t, eq, tt.reason)
		})
	}
}

// copyEqual copies v and compares the copy with v.
func copyEqual[T any](v T) (bool, error) {
	c, err := Copy(v)
	if err != nil {
		return false, err
	}
	return diff.Equal(v, c)
}

// chain returns a value nested depth deep from its root pointer, counting
// pointers and interfaces as MaxDepth counts them, in the given shape.
func chain(shape string, depth int) any {
	switch shape {
	case "pointers":
		var head *node
		for i := range depth {
			head = &node{val: i, next: head}
		}
		return head
	case "interfaces":
		// The root pointer, then one interface per level.
		var v any
		for range depth - 1 {
			v = boxNode{v: v}
		}
		return &boxNode{v: v}
	}
	panic("unknown shape")
}

// TestDepthLimitIsShared checks that Copy and Compare refuse the same
// values for being nested too deep, and accept the same ones.
func TestDepthLimitIsShared(t *testing.T) {
	tests := []struct {
		name    string
		reason  string
		shape   string
		depth   int
		tooDeep bool
	}{
		{"pointers at the limit", "MaxDepth pointers one inside another are copied and compared", "pointers", typeinfo.MaxDepth, false},
		{"pointers past the limit", "one pointer more is refused by both", "pointers", typeinfo.MaxDepth + 1, true},
		{"interfaces at the limit", "interfaces count as pointers do, in both", "interfaces", typeinfo.MaxDepth, false},
		{"interfaces past the limit", "a chain of interfaces holding values, without pointers, is refused too, not a stack overflow", "interfaces", typeinfo.MaxDepth + 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var copyErr, cmpErr error
			switch v := chain(tt.shape, tt.depth).(type) {
			case *node:
				_, copyErr = Copy(v)
				_, cmpErr = diff.Compare(v, chain(tt.shape, tt.depth).(*node))
			case *boxNode:
				_, copyErr = Copy(v)
				_, cmpErr = diff.Compare(v, chain(tt.shape, tt.depth).(*boxNode))
			}
			if tt.tooDeep {
				assert.ErrorIs(t, copyErr, diff.ErrUnsupported, "Copy: %s", tt.reason)
				assert.ErrorIs(t, cmpErr, diff.ErrUnsupported, "Compare: %s", tt.reason)
				return
			}
			assert.NoError(t, copyErr, "Copy: %s", tt.reason)
			assert.NoError(t, cmpErr, "Compare: %s", tt.reason)
		})
	}
}

// TestCopyErrAgrees checks that typeinfo.CopyErr, which the stores ask
// about a field's type, refuses exactly what Copy refuses.
func TestCopyErrAgrees(t *testing.T) {
	type withFunc struct{ f func() }
	type ignoredFunc struct {
		f func() `ddd:"-"`
	}
	type chanKey struct{ m map[chan int]int }
	type nested struct{ p *[]withFunc }
	type inIface struct{ v any }
	check := func(name string, typeErr error, copyErr error) {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, copyErr == nil, typeErr == nil, "CopyErr %v, Copy %v", typeErr, copyErr)
		})
	}
	for _, c := range []struct {
		name string
		typ  reflect.Type
		copy func() error
	}{
		{"func", reflect.TypeFor[withFunc](), func() error { _, err := Copy((*withFunc)(nil)); return err }},
		{"ignored func", reflect.TypeFor[ignoredFunc](), func() error { _, err := Copy((*ignoredFunc)(nil)); return err }},
		{"chan key", reflect.TypeFor[chanKey](), func() error { _, err := Copy((*chanKey)(nil)); return err }},
		{"nested", reflect.TypeFor[nested](), func() error { _, err := Copy((*nested)(nil)); return err }},
		{"interface", reflect.TypeFor[inIface](), func() error { _, err := Copy((*inIface)(nil)); return err }},
		{"value with a func", reflect.TypeFor[withFuncValue](), func() error { _, err := Copy((*withFuncValue)(nil)); return err }},
		{"value with a cycle", reflect.TypeFor[ringHolder](), func() error { _, err := Copy((*ringHolder)(nil)); return err }},
	} {
		check(c.name, typeinfo.CopyErr(c.typ), c.copy())
	}
}
