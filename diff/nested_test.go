package diff_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/diff"
)

// A cart whose lines hold a map of entities, and an order whose items hold
// a slice of entities: collections of entities inside entities.

type nestedSub struct {
	ID int64 `ddd:"id"`
	N  int
}

type nestedLine struct {
	ID    int64 `ddd:"id"`
	Parts map[int64]*nestedSub
}

type nestedCart struct {
	ID    int64 `ddd:"id"`
	Lines []*nestedLine
}

type nestedItem struct {
	ID   int64 `ddd:"id"`
	Subs []*nestedSub
}

type nestedOrder struct {
	ID    int64 `ddd:"id"`
	Items []*nestedItem
}

// nestedValueItem holds its sub-entities by value, and is held by value.
type nestedValueItem struct {
	ID   int64 `ddd:"id"`
	Subs []nestedSub
}

type nestedValueOrder struct {
	Items []nestedValueItem
}

func newNestedCart() *nestedCart {
	return &nestedCart{ID: 1, Lines: []*nestedLine{
		{ID: 1, Parts: map[int64]*nestedSub{1: {ID: 1, N: 1}, 2: {ID: 2, N: 2}}},
		{ID: 2, Parts: map[int64]*nestedSub{3: {ID: 3, N: 3}}},
	}}
}

func cloneNestedCart(c *nestedCart) *nestedCart {
	out := &nestedCart{ID: c.ID}
	for _, l := range c.Lines {
		nl := &nestedLine{ID: l.ID}
		if l.Parts != nil {
			nl.Parts = make(map[int64]*nestedSub, len(l.Parts))
		}
		for k, p := range l.Parts {
			np := *p
			nl.Parts[k] = &np
		}
		out.Lines = append(out.Lines, nl)
	}
	return out
}

func newNestedOrder() *nestedOrder {
	return &nestedOrder{ID: 1, Items: []*nestedItem{
		{ID: 1, Subs: []*nestedSub{{ID: 1, N: 1}, {ID: 2, N: 2}, {ID: 3, N: 3}}},
		{ID: 2, Subs: []*nestedSub{{ID: 4, N: 4}}},
	}}
}

func cloneNestedOrder(o *nestedOrder) *nestedOrder {
	out := &nestedOrder{ID: o.ID}
	for _, it := range o.Items {
		ni := &nestedItem{ID: it.ID}
		for _, s := range it.Subs {
			ns := *s
			ni.Subs = append(ni.Subs, &ns)
		}
		out.Items = append(out.Items, ni)
	}
	return out
}

func newNestedValueOrder() *nestedValueOrder {
	return &nestedValueOrder{Items: []nestedValueItem{
		{ID: 1, Subs: []nestedSub{{ID: 1, N: 1}, {ID: 2, N: 2}}},
		{ID: 2, Subs: []nestedSub{{ID: 3, N: 3}}},
	}}
}

func cloneNestedValueOrder(o *nestedValueOrder) *nestedValueOrder {
	out := &nestedValueOrder{}
	for _, it := range o.Items {
		it.Subs = append([]nestedSub(nil), it.Subs...)
		out.Items = append(out.Items, it)
	}
	return out
}

// TestCompareNestedEntityCollections checks that an element of an entity
// collection is reported as modified only when something inside it changed,
// whatever kind of entity collection it holds.
func TestCompareNestedEntityCollections(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		run    func() (diff.Result, bool, error, error)
		want   string
	}{{
		name:   "map of entities in a child, unchanged",
		reason: "a child holding a map of entities, compared with its copy, is unchanged; the map cannot be compared in order, and that must not make the child look modified",
		run: func() (diff.Result, bool, error, error) {
			o := newNestedCart()
			return compareBoth(o, cloneNestedCart(o))
		},
		want: "no changes",
	}, {
		name:   "map of entities in a child, changed inside",
		reason: "a change inside an entity of the map is reported under the child and the map",
		run: func() (diff.Result, bool, error, error) {
			o := newNestedCart()
			c := cloneNestedCart(o)
			c.Lines[0].Parts[2].N = 20
			return compareBoth(o, c)
		},
		want: "Lines[id=1]: modified\nLines[id=1].Parts[id=2]: modified\nLines[id=1].Parts[id=2].N: 2 -> 20",
	}, {
		name:   "map of entities in a child, entity added",
		reason: "an entity added to the map is reported under its child, and the other child is untouched",
		run: func() (diff.Result, bool, error, error) {
			o := newNestedCart()
			c := cloneNestedCart(o)
			c.Lines[1].Parts[9] = &nestedSub{ID: 9}
			return compareBoth(o, c)
		},
		want: "Lines[id=2]: modified\nLines[id=2].Parts[id=9]: added",
	}, {
		name:   "reorder of a nested slice of entities",
		reason: "swapping two entities of a child's collection is a change of order alone, which is not a change, at any depth",
		run: func() (diff.Result, bool, error, error) {
			o := newNestedOrder()
			c := cloneNestedOrder(o)
			c.Items[0].Subs[0], c.Items[0].Subs[2] = c.Items[0].Subs[2], c.Items[0].Subs[0]
			return compareBoth(o, c)
		},
		want: "no changes",
	}, {
		name:   "reorder of both levels",
		reason: "reordering the children and their own children is still no change",
		run: func() (diff.Result, bool, error, error) {
			o := newNestedOrder()
			c := cloneNestedOrder(o)
			c.Items[0].Subs[0], c.Items[0].Subs[1] = c.Items[0].Subs[1], c.Items[0].Subs[0]
			c.Items[0], c.Items[1] = c.Items[1], c.Items[0]
			return compareBoth(o, c)
		},
		want: "no changes",
	}, {
		name:   "reorder and a change",
		reason: "a reorder next to a real change reports the change only",
		run: func() (diff.Result, bool, error, error) {
			o := newNestedOrder()
			c := cloneNestedOrder(o)
			c.Items[0].Subs[0], c.Items[0].Subs[1] = c.Items[0].Subs[1], c.Items[0].Subs[0]
			c.Items[0].Subs[2].N = 30
			return compareBoth(o, c)
		},
		want: "Items[id=1]: modified\nItems[id=1].Subs[id=3]: modified\nItems[id=1].Subs[id=3].N: 3 -> 30",
	}, {
		name:   "reorder of entities held by value",
		reason: "entities stored by value in a child stored by value follow the same rule",
		run: func() (diff.Result, bool, error, error) {
			o := newNestedValueOrder()
			c := cloneNestedValueOrder(o)
			c.Items[0].Subs[0], c.Items[0].Subs[1] = c.Items[0].Subs[1], c.Items[0].Subs[0]
			return compareBoth(o, c)
		},
		want: "no changes",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, eq, err, eqErr := tt.run()
			require.NoError(t, err, tt.reason)
			require.NoError(t, eqErr, tt.reason)
			assert.Equal(t, tt.want, r.String(), tt.reason)
			assert.Equal(t, !r.Changed(), eq, "Equal agrees with Compare: %s", tt.reason)
			assertNoEmptyModified(t, r.Changes, tt.reason)
		})
	}
}

// compareBoth runs Compare and Equal on old and new.
func compareBoth[T any](old, new T) (diff.Result, bool, error, error) {
	r, err := diff.Compare(old, new)
	eq, eqErr := diff.Equal(old, new)
	return r, eq, err, eqErr
}

// assertNoEmptyModified checks that no modified element, at any depth, has
// empty changes of its own.
func assertNoEmptyModified(t *testing.T, c diff.Changes, reason string) {
	t.Helper()
	for _, col := range c.Collections {
		for _, e := range col.Elements {
			if e.Kind == diff.Modified {
				assert.False(t, e.Changes.Empty(), "%s[id=%v] is modified with no change inside it: %s", col.Path, e.ID, reason)
				assertNoEmptyModified(t, e.Changes, reason)
			}
		}
	}
}

type mapEnt struct {
	id   string `ddd:"id"`
	rate int
}

type mapHolder struct {
	byCode map[string]*mapEnt
}

// TestEqualEntityMapNoAllocs checks that two equal maps of entities are
// found equal by key, without building and sorting their entries (which
// cost two allocations per entry), and that changes and errors are still
// found.
func TestEqualEntityMapNoAllocs(t *testing.T) {
	a, b := &mapHolder{byCode: map[string]*mapEnt{}}, &mapHolder{byCode: map[string]*mapEnt{}}
	for i := range 100 {
		code := fmt.Sprintf("C%03d", i)
		a.byCode[code] = &mapEnt{id: code, rate: i}
		b.byCode[code] = &mapEnt{id: code, rate: i}
	}
	eq, err := diff.Equal(a, b)
	require.NoError(t, err)
	require.True(t, eq)
	allocs := testing.AllocsPerRun(100, func() { _, _ = diff.Equal(a, b) })
	assert.LessOrEqual(t, allocs, 3.0, "equal maps of entities of 100 entries are compared by key, in a few allocations that do not grow with them")

	// Still a change where one is, and still an error for a nil element.
	b.byCode["C007"] = &mapEnt{id: "C007", rate: 70}
	r, err := diff.Compare(a, b)
	require.NoError(t, err)
	assert.Equal(t, "byCode[id=C007]: modified\nbyCode[id=C007].rate: 7 -> 70", r.String())
	b.byCode["C007"], a.byCode["C007"] = nil, nil
	_, err = diff.Compare(a, b)
	assert.ErrorIs(t, err, diff.ErrNilEntity)
	// An element under another identity's key is matched by its own.
	a.byCode["C007"], b.byCode["C007"] = &mapEnt{id: "X", rate: 1}, &mapEnt{id: "X", rate: 1}
	r, err = diff.Compare(a, b)
	require.NoError(t, err)
	assert.False(t, r.Changed())
}

type ringItem struct {
	id   int `ddd:"id"`
	next *ringItem
}

type ringHolder struct {
	items map[int]*ringItem
}

// TestEqualEntityMapCycle checks that equal maps of entities that hold a
// pointer cycle are refused with ErrCycle, as before the fast path by key,
// instead of overflowing the stack.
func TestEqualEntityMapCycle(t *testing.T) {
	ring := func() *ringHolder {
		a, b := &ringItem{id: 1}, &ringItem{id: 2}
		a.next, b.next = b, a
		return &ringHolder{items: map[int]*ringItem{1: a, 2: b}}
	}
	_, err := diff.Equal(ring(), ring())
	assert.ErrorIs(t, err, diff.ErrCycle)
}
