package diff_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/diff"
)

// The order model of the design dddkit starts from: an order with items,
// unexported fields, a value object and a version.

type orderID int64
type itemID int64

type recipient struct {
	Name, Phone string
}

type order struct {
	id        orderID
	recipient recipient
	items     []*item
	total     int64
	createdAt time.Time
	version   int64 `ddd:"version"`
}

func (o *order) ID() orderID { return o.id }

type item struct {
	id       itemID `ddd:"id"`
	product  string
	quantity int
	price    int64
	parts    []*part
}

type part struct {
	Serial string `ddd:"id"`
	Note   string
}

func newOrder() *order {
	return &order{
		id:        1,
		recipient: recipient{Name: "Ann", Phone: "555"},
		items: []*item{
			{id: 1, product: "pen", quantity: 2, price: 150},
			{id: 2, product: "ink", quantity: 3, price: 400},
		},
		total:     2*150 + 3*400,
		createdAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		version:   7,
	}
}

// cloneOrder is a hand-written deep copy, so these tests do not depend on
// package tracking.
func cloneOrder(o *order) *order {
	c := *o
	c.items = nil
	if o.items != nil {
		c.items = make([]*item, len(o.items))
	}
	for i, it := range o.items {
		ci := *it
		ci.parts = nil
		for _, p := range it.parts {
			cp := *p
			ci.parts = append(ci.parts, &cp)
		}
		c.items[i] = &ci
	}
	return &c
}

func TestCompareOrder(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		change func(o *order)
		want   string
		root   bool
	}{{
		name:   "unchanged",
		reason: "a copy compared with its original has no changes",
		change: func(*order) {},
		want:   "no changes",
	}, {
		name:   "quantity of the second item",
		reason: "the scenario of the design we start from: one item modified, so the total changes; the root is modified and exactly one item is",
		change: func(o *order) {
			o.items[1].quantity = 5
			o.total = 2*150 + 5*400
		},
		want: "total: 1500 -> 2300\n" +
			"items[id=2]: modified\n" +
			"items[id=2].quantity: 3 -> 5",
		root: true,
	}, {
		name:   "child only",
		reason: "a change inside a child entity does not make the root's own fields modified",
		change: func(o *order) { o.items[0].product = "pencil" },
		want: "items[id=1]: modified\n" +
			`items[id=1].product: "pen" -> "pencil"`,
	}, {
		name:   "value object field",
		reason: "a value object's fields are reported with their path inside the root",
		change: func(o *order) { o.recipient.Phone = "556" },
		want:   `recipient.Phone: "555" -> "556"`,
		root:   true,
	}, {
		name:   "reorder",
		reason: "entities are matched by identity: a change of order alone is not a change",
		change: func(o *order) { o.items[0], o.items[1] = o.items[1], o.items[0] },
		want:   "no changes",
	}, {
		name:   "add and remove",
		reason: "removed elements come first, then added ones in new order",
		change: func(o *order) {
			o.items = append(o.items[1:], &item{id: 3, product: "pad", quantity: 1, price: 90})
		},
		want: "items[id=1]: removed\n" +
			"items[id=3]: added",
	}, {
		name:   "replace at same index",
		reason: "an element at the same index with another identity is a removal and an addition, not a modification",
		change: func(o *order) { o.items[0] = &item{id: 9, product: "pen", quantity: 2, price: 150} },
		want: "items[id=1]: removed\n" +
			"items[id=9]: added",
	}, {
		name:   "nested collection",
		reason: "an item's own child entities are matched by identity too, and reported under the item",
		change: func(o *order) { o.items[1].parts = append(o.items[1].parts, &part{Serial: "x1"}) },
		want: "items[id=2]: modified\n" +
			"items[id=2].parts[id=x1]: added",
	}, {
		name:   "monotonic clock",
		reason: "time.Time is compared with Equal: stripping the monotonic reading or changing the location is no change",
		change: func(o *order) { o.createdAt = o.createdAt.In(time.FixedZone("X", 3600)) },
		want:   "no changes",
	}, {
		name:   "time changed",
		reason: "a different instant is a change of the whole time value",
		change: func(o *order) { o.createdAt = o.createdAt.Add(time.Second) },
		want:   "createdAt: 2026-01-02 03:04:05 +0000 UTC -> 2026-01-02 03:04:06 +0000 UTC",
		root:   true,
	}, {
		name:   "version ignored",
		reason: "the version field is the repository's business and never a change",
		change: func(o *order) { o.version++ },
		want:   "no changes",
	}, {
		name:   "nil vs empty",
		reason: "a nil slice and an empty one store the same thing",
		change: func(o *order) { o.items[0].parts = []*part{} },
		want:   "no changes",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := newOrder()
			cur := cloneOrder(old)
			tt.change(cur)
			r, err := diff.Compare(old, cur)
			require.NoError(t, err, tt.reason)
			assert.Equal(t, tt.want, r.String(), tt.reason)
			assert.Equal(t, tt.root, r.RootModified(), tt.reason)
			assert.Equal(t, tt.want != "no changes", r.Changed(), tt.reason)
			eq, err := diff.Equal(old, cur)
			require.NoError(t, err)
			assert.Equal(t, !r.Changed(), eq, "Equal agrees with Compare: %s", tt.reason)
		})
	}
}

func TestCompareOrderScenarioDetails(t *testing.T) {
	old := newOrder()
	cur := cloneOrder(old)
	cur.items[1].quantity = 5
	cur.total = 2*150 + 5*400

	r, err := diff.Compare(old, cur)
	require.NoError(t, err)
	require.True(t, r.RootModified())
	total, ok := r.Field("total")
	require.True(t, ok)
	assert.Equal(t, int64(1500), total.Old)
	assert.Equal(t, int64(2300), total.New)
	idx, ok := total.Path.FieldIndex()
	require.True(t, ok)
	assert.Equal(t, []int{3}, idx, "the field index locates the column")

	items := r.Collection("items")
	require.Len(t, items, 1)
	e := items[0]
	assert.Equal(t, diff.Modified, e.Kind)
	assert.Equal(t, itemID(2), e.ID)
	assert.Same(t, old.items[1], e.Old)
	assert.Same(t, cur.items[1], e.New)
	require.Len(t, e.Fields, 1)
	assert.Equal(t, "quantity", e.Fields[0].Path.String())
	assert.Equal(t, 3, e.Fields[0].Old)
	assert.Equal(t, 5, e.Fields[0].New)
	assert.Empty(t, e.Collections)
}

type withFloat struct {
	F  float64
	G  float32
	C  complex128
	Fs []float64
}

type withIgnored struct {
	Name  string
	cache map[string]int `ddd:"-"`
	fn    func()         `ddd:"-"`
}

type withFunc struct {
	Name string
	fn   func()
}

type withChan struct{ C chan int }

type dupItems struct {
	Items []*part
}

type valueItems struct {
	Tags  []string
	Attrs map[string]int
	Grid  [2]int
	Any   any
	Blob  []byte
	Ptr   *int
	Inner *recipient
}

type entityMap struct {
	Parts map[string]*part
}

type node struct {
	Name string
	Next *node
}

type money struct{ cents int64 }

func (m money) Equal(o money) bool { return m.cents == o.cents }

type rounded struct {
	v float64
}

// Equal treats values that round to the same integer as equal.
func (r rounded) Equal(o rounded) bool { return math.Round(r.v) == math.Round(o.v) }

// amount has several methods, so that Equal is not the first of its
// method set, and a value receiver.
type amount struct{ cents, scale int64 }

func (a amount) Add(b amount) amount { return amount{a.cents + b.cents, a.scale} }
func (a amount) Equal(b amount) bool { return a.cents*b.scale == b.cents*a.scale }
func (a amount) Zero() bool          { return a.cents == 0 }
func (a *amount) Double() amount     { return amount{a.cents * 2, a.scale} }

type priced struct {
	Price rounded
	Cost  money
	Sum   amount
}

func TestCompareValues(t *testing.T) {
	one, two := 1, 2
	tests := []struct {
		name     string
		reason   string
		old, new any
		want     string
		wantErr  error
	}{{
		name:   "NaN equals NaN",
		reason: "an aggregate holding NaN must not look changed forever",
		old:    &withFloat{F: math.NaN(), G: float32(math.NaN()), C: complex(math.NaN(), 1), Fs: []float64{math.NaN()}},
		new:    &withFloat{F: math.NaN(), G: float32(math.NaN()), C: complex(math.NaN(), 1), Fs: []float64{math.NaN()}},
		want:   "no changes",
	}, {
		name:   "float change",
		reason: "floats are compared by value",
		old:    &withFloat{F: 1.5},
		new:    &withFloat{F: 2.5},
		want:   "F: 1.5 -> 2.5",
	}, {
		name:   "ignored fields",
		reason: "fields tagged ddd:\"-\" are not compared, funcs included",
		old:    &withIgnored{Name: "a", cache: map[string]int{"x": 1}},
		new:    &withIgnored{Name: "a", fn: func() {}},
		want:   "no changes",
	}, {
		name:    "func field",
		reason:  "a func cannot be compared: an error, not a panic",
		old:     &withFunc{},
		new:     &withFunc{},
		wantErr: diff.ErrUnsupported,
	}, {
		name:    "chan field",
		reason:  "a chan cannot be compared",
		old:     &withChan{},
		new:     &withChan{},
		wantErr: diff.ErrUnsupported,
	}, {
		name:    "duplicate identity",
		reason:  "two elements with one identity cannot be matched",
		old:     &dupItems{Items: []*part{{Serial: "a"}}},
		new:     &dupItems{Items: []*part{{Serial: "a"}, {Serial: "a", Note: "x"}}},
		wantErr: diff.ErrDuplicateID,
	}, {
		name:    "nil entity",
		reason:  "a nil element of an entity collection has no identity",
		old:     &dupItems{Items: []*part{{Serial: "a"}}},
		new:     &dupItems{Items: []*part{{Serial: "a"}, nil}},
		wantErr: diff.ErrNilEntity,
	}, {
		name:   "value collections change as a whole",
		reason: "slices and maps of values have no identity: one change of the field",
		old:    &valueItems{Tags: []string{"a"}, Attrs: map[string]int{"k": 1}},
		new:    &valueItems{Tags: []string{"a", "b"}, Attrs: map[string]int{"k": 2}},
		want:   `Tags: [a] -> [a b]` + "\n" + `Attrs: map[k:1] -> map[k:2]`,
	}, {
		name:   "equal maps and arrays",
		reason: "maps are compared by key, arrays element by element, []byte by content",
		old:    &valueItems{Attrs: map[string]int{"a": 1, "b": 2}, Grid: [2]int{1, 2}, Blob: []byte("hi"), Ptr: &one},
		new:    &valueItems{Attrs: map[string]int{"b": 2, "a": 1}, Grid: [2]int{1, 2}, Blob: []byte("hi"), Ptr: &one},
		want:   "no changes",
	}, {
		name:   "array, bytes, pointer",
		reason: "arrays, []byte and pointers to values change as a whole",
		old:    &valueItems{Grid: [2]int{1, 2}, Blob: []byte("hi"), Ptr: &one},
		new:    &valueItems{Grid: [2]int{1, 3}, Blob: []byte("ho"), Ptr: &two},
		want:   "Grid: [1 2] -> [1 3]\nBlob: 0x6869 -> 0x686f\nPtr: &1 -> &2",
	}, {
		name:   "pointer to value object",
		reason: "a pointer to a struct, non-nil on both sides, is followed",
		old:    &valueItems{Inner: &recipient{Name: "a"}},
		new:    &valueItems{Inner: &recipient{Name: "b"}},
		want:   `Inner.Name: "a" -> "b"`,
	}, {
		name:   "interfaces",
		reason: "interfaces holding equal concrete values are equal; a new dynamic value is a change",
		old:    &valueItems{Any: recipient{Name: "a"}},
		new:    &valueItems{Any: recipient{Name: "a"}},
		want:   "no changes",
	}, {
		name:   "interface changed",
		reason: "an interface changes as a whole",
		old:    &valueItems{Any: &recipient{Name: "a"}},
		new:    &valueItems{Any: &recipient{Name: "b"}},
		want:   `Any: &{Name:a Phone:} -> &{Name:b Phone:}`,
	}, {
		name:   "entity map",
		reason: "a map whose values are entities is matched by identity",
		old:    &entityMap{Parts: map[string]*part{"a": {Serial: "a"}, "b": {Serial: "b"}}},
		new:    &entityMap{Parts: map[string]*part{"a": {Serial: "a", Note: "n"}, "c": {Serial: "c"}}},
		want:   "Parts[id=b]: removed\nParts[id=a]: modified\nParts[id=a].Note: \"\" -> \"n\"\nParts[id=c]: added",
	}, {
		name:   "Equal methods",
		reason: "types with Equal(T) bool are compared with it, whatever their representation",
		old:    &priced{Price: rounded{1.1}, Cost: money{5}, Sum: amount{1, 10}},
		new:    &priced{Price: rounded{0.9}, Cost: money{5}, Sum: amount{10, 100}},
		want:   "no changes",
	}, {
		name:   "Equal method says changed",
		reason: "a value whose Equal method reports a difference changes as a whole",
		old:    &priced{Price: rounded{1.1}},
		new:    &priced{Price: rounded{2.1}},
		want:   "Price: {v:1.1} -> {v:2.1}",
	}, {
		name:   "root nil",
		reason: "a nil root against a non-nil one is one change of the root",
		old:    (*recipient)(nil),
		new:    &recipient{},
		want:   ": <nil> -> &{Name: Phone:}",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := compareAny(tt.old, tt.new)
			if tt.wantErr != nil {
				require.Error(t, err, tt.reason)
				assert.ErrorIs(t, err, tt.wantErr, tt.reason)
				var de *diff.Error
				assert.ErrorAs(t, err, &de)
				return
			}
			require.NoError(t, err, tt.reason)
			assert.Equal(t, tt.want, r.String(), tt.reason)
		})
	}
}

// compareAny calls Compare with the dynamic type of old and new.
func compareAny(old, new any) (diff.Result, error) {
	switch o := old.(type) {
	case *withFloat:
		return diff.Compare(o, new.(*withFloat))
	case *withIgnored:
		return diff.Compare(o, new.(*withIgnored))
	case *withFunc:
		return diff.Compare(o, new.(*withFunc))
	case *withChan:
		return diff.Compare(o, new.(*withChan))
	case *dupItems:
		return diff.Compare(o, new.(*dupItems))
	case *valueItems:
		return diff.Compare(o, new.(*valueItems))
	case *entityMap:
		return diff.Compare(o, new.(*entityMap))
	case *priced:
		return diff.Compare(o, new.(*priced))
	case *recipient:
		return diff.Compare(o, new.(*recipient))
	}
	panic("compareAny: add the type")
}

func TestCompareCycle(t *testing.T) {
	a := &node{Name: "a"}
	a.Next = a
	b := &node{Name: "a"}
	b.Next = b
	_, err := diff.Compare(a, b)
	require.ErrorIs(t, err, diff.ErrCycle, "a value that contains itself is an error, not a hang")

	// A long list without cycles is fine, and a change at its end is found.
	long := func(n int, last string) *node {
		head := &node{Name: "0"}
		cur := head
		for i := 1; i < n; i++ {
			cur.Next = &node{Name: "x"}
			cur = cur.Next
		}
		cur.Name = last
		return head
	}
	eq, err := diff.Equal(long(5000, "end"), long(5000, "end"))
	require.NoError(t, err)
	assert.True(t, eq)
	eq, err = diff.Equal(long(5000, "end"), long(5000, "END"))
	require.NoError(t, err)
	assert.False(t, eq)
}

func TestCompareNonPointerRoot(t *testing.T) {
	r, err := diff.Compare(recipient{Name: "a"}, recipient{Name: "b"})
	require.NoError(t, err)
	assert.Equal(t, `Name: "a" -> "b"`, r.String())

	r, err = diff.Compare([]string{"a"}, []string{"b"})
	require.NoError(t, err)
	assert.Equal(t, `: [a] -> [b]`, r.String())

	r, err = diff.Compare([]*part{{Serial: "a"}}, []*part{{Serial: "b"}})
	require.NoError(t, err)
	assert.Equal(t, "[id=a]: removed\n[id=b]: added", r.String(), "a root collection of entities is matched by identity")
}

func TestCompareUnchangedDoesNotAllocate(t *testing.T) {
	old := newOrder()
	for i := 0; i < 100; i++ {
		old.items = append(old.items, &item{id: itemID(100 + i), product: "p", quantity: i, price: int64(i)})
	}
	cur := cloneOrder(old)
	_, _ = diff.Compare(old, cur) // compile the plan
	allocs := testing.AllocsPerRun(100, func() {
		r, err := diff.Compare(old, cur)
		if err != nil || r.Changed() {
			t.Fatal("unexpected change")
		}
	})
	assert.Zero(t, allocs, "comparing an unchanged aggregate allocates nothing")
}

func TestErrorMessage(t *testing.T) {
	_, err := diff.Compare(&withFunc{}, &withFunc{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "fn", "the error names the field")
	assert.True(t, errors.Is(err, diff.ErrUnsupported))
}
