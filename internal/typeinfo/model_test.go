package typeinfo

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/ddd"
)

type mItem struct {
	id  int64 `ddd:"id"`
	qty int
}

type mOrder struct {
	id      int64
	items   []*mItem
	byKey   map[int64]mItem
	version int `ddd:"version"`
}

type mNode struct {
	v    int
	next *mNode
}

// mA and mB reach each other: a cycle of two types.
type mA struct{ b *mB }
type mB struct{ a []mA }

// mReachesCycle is not on a cycle but leads to one.
type mReachesCycle struct{ head *mNode }

type mWithIface struct{ x any }

type mIgnoredLoop struct {
	self *mIgnoredLoop `ddd:"-"`
	n    int
}

type mFunc struct{ f func() }

type mBadID struct{ n int }

func (mBadID) ID() any { return nil }

// mDecimal is a value holding a pointer, as decimal types do.
type mDecimal struct{ mant *[2]uint64 }

func (a mDecimal) Equal(b mDecimal) bool { return true }

// mRecValue is a value whose structure reaches itself.
type mRecValue struct{ next *mRecValue }

func (a mRecValue) Equal(b mRecValue) bool { return true }

type mHoldsRecValue struct{ v mRecValue }

type mEntityEq struct {
	id   int `ddd:"id"`
	next *mEntityEq
}

func (a mEntityEq) Equal(b mEntityEq) bool { return a.id == b.id }

type mNamedString string

func (a mNamedString) Equal(b mNamedString) bool { return a == b }

type mTimeHolder struct {
	at   time.Time
	when []time.Time
}

type mZero struct {
	none [0]func()
	n    int
}

func TestOfKinds(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		typ    reflect.Type
		want   Kind
	}{
		{"int", "integers are compared byte for byte", reflect.TypeFor[int32](), KindScalar},
		{"bool", "so are bools", reflect.TypeFor[bool](), KindScalar},
		{"uintptr", "and uintptrs: a number, not a pointer", reflect.TypeFor[uintptr](), KindScalar},
		{"float", "floats have the NaN rule", reflect.TypeFor[float64](), KindFloat},
		{"complex", "complex numbers too", reflect.TypeFor[complex64](), KindFloat},
		{"string", "strings are immutable values", reflect.TypeFor[string](), KindString},
		{"time", "time.Time is compared with Equal and copied whole", reflect.TypeFor[time.Time](), KindTime},
		{"value", "a struct with Equal(T) bool is a value", reflect.TypeFor[eqValue](), KindValue},
		{"value by pointer receiver", "the method may have a pointer receiver", reflect.TypeFor[eqPtrRecv](), KindValue},
		{"named number value", "a named number with Equal is a value", reflect.TypeFor[eqNumber](), KindValue},
		{"entity with Equal", "an entity's Equal compares identities: compared field by field", reflect.TypeFor[eqTagged](), KindStruct},
		{"entity by method with Equal", "an ID method makes an entity too", reflect.TypeFor[eqByMethod](), KindStruct},
		{"slice with Equal", "a slice is followed whatever its methods", reflect.TypeFor[eqSlice](), KindSlice},
		{"struct", "a plain struct", reflect.TypeFor[mOrder](), KindStruct},
		{"pointer", "a pointer", reflect.TypeFor[*mOrder](), KindPointer},
		{"slice", "a slice", reflect.TypeFor[[]int](), KindSlice},
		{"array", "an array", reflect.TypeFor[[3]string](), KindArray},
		{"map", "a map", reflect.TypeFor[map[string]int](), KindMap},
		{"interface", "an interface", reflect.TypeFor[any](), KindInterface},
		{"error", "a non-empty interface too", reflect.TypeFor[error](), KindInterface},
		{"func", "a func cannot be compared or copied", reflect.TypeFor[func()](), KindUnsupported},
		{"func with Equal", "whatever its methods", reflect.TypeFor[eqFunc](), KindUnsupported},
		{"chan", "nor can a chan", reflect.TypeFor[chan int](), KindUnsupported},
		{"unsafe.Pointer", "nor an unsafe.Pointer", reflect.TypeFor[unsafe.Pointer](), KindUnsupported},
		{"malformed tag", "a struct whose tags cannot be read", reflect.TypeFor[eqBadTag](), KindUnsupported},
		{"interface identity", "an identity that may not be comparable at run time", reflect.TypeFor[mBadID](), KindUnsupported},
		{"struct holding a func", "the struct itself is a struct: the func is a part of it", reflect.TypeFor[mFunc](), KindStruct},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Of(tt.typ)
			assert.Equal(t, tt.want, m.Kind, tt.reason)
			assert.Equal(t, tt.typ, m.Type)
			assert.Same(t, m, Of(tt.typ), "cached: one model per type")
		})
	}
}

func TestOfUnsupported(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		typ    reflect.Type
		msg    string
		tag    bool
	}{
		{"func", "the type is named in the reason", reflect.TypeFor[func()](), "func() is not supported: unsupported type", false},
		{"chan", "a chan", reflect.TypeFor[chan int](), "chan int is not supported: unsupported type", false},
		{"malformed tag", "the tag error is kept", reflect.TypeFor[eqBadTag](), "unsupported type: invalid ddd tag: typeinfo.eqBadTag.n", true},
		{"interface identity", "so is the identity error", reflect.TypeFor[mBadID](), "an identity must not be an interface", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Of(tt.typ)
			require.Equal(t, KindUnsupported, m.Kind)
			assert.ErrorIs(t, m.Err, ddd.ErrUnsupported, tt.reason)
			assert.ErrorContains(t, m.Err, tt.msg, tt.reason)
			assert.Equal(t, tt.tag, m.TagErr != nil, tt.reason)
			if tt.tag {
				assert.ErrorIs(t, m.Err, ErrTag, tt.reason)
				assert.ErrorIs(t, m.TagErr, ErrTag, tt.reason)
			}
		})
	}
}

func TestOfParts(t *testing.T) {
	o := Of(reflect.TypeFor[mOrder]())
	require.Equal(t, KindStruct, o.Kind)
	require.Len(t, o.Fields, 4)
	assert.Equal(t, KindScalar, o.Fields[0].Kind)
	items := o.Fields[1]
	require.Equal(t, KindSlice, items.Kind)
	require.NotNil(t, items.Identity, "a slice of pointers to entities is an entity collection")
	assert.True(t, items.Identity.Deref)
	assert.Equal(t, KindPointer, items.Elem.Kind)
	assert.Equal(t, KindStruct, items.Elem.Elem.Kind)
	byKey := o.Fields[2]
	require.Equal(t, KindMap, byKey.Kind)
	require.NotNil(t, byKey.Identity, "a map of entities is one too")
	assert.Equal(t, KindScalar, byKey.Key.Kind)
	assert.Nil(t, Of(reflect.TypeFor[[]mOrder]()).Identity, "mOrder has no identity")

	ign := Of(reflect.TypeFor[mIgnoredLoop]())
	assert.Nil(t, ign.Fields[0], "an ignored field has no model")
	assert.NotNil(t, ign.Fields[1])
	assert.Nil(t, Of(reflect.TypeFor[mZero]()).Fields[0], "nor has a field of size zero, even of an unsupported type")

	bad := Of(reflect.TypeFor[[]*eqBadTag]())
	assert.Nil(t, bad.Identity)
	assert.ErrorIs(t, bad.IdentityErr, ErrTag, "the collection says why its elements have no identity")
	assert.Equal(t, KindUnsupported, bad.Elem.Elem.Kind)

	n := Of(reflect.TypeFor[mNode]())
	assert.Same(t, n, n.Fields[1].Elem, "a recursive type refers to its own model")

	v := Of(reflect.TypeFor[eqValue]())
	require.Equal(t, KindValue, v.Kind)
	assert.Equal(t, "Equal", v.Equal.Name)
	require.NotNil(t, v.Structure)
	assert.Equal(t, KindStruct, v.Structure.Kind, "the structure of a value, ignoring its method")
	assert.Same(t, v.Type, v.Structure.Type)
	assert.False(t, v.CopyParts, "a value without pointers is copied whole")
	assert.True(t, Of(reflect.TypeFor[mDecimal]()).CopyParts, "a value holding pointers is copied part by part")
	assert.True(t, Of(reflect.TypeFor[mNamedString]()).CopyParts, "strings are pointers too")
	assert.Equal(t, KindString, Of(reflect.TypeFor[mNamedString]()).Structure.Kind)
}

func TestOfFacts(t *testing.T) {
	tests := []struct {
		name    string
		reason  string
		typ     reflect.Type
		compare bool // MayRecurCompare
		copy    bool // MayRecurCopy
		ents    bool // HasEntities
	}{
		{"flat struct", "nothing to come back to", reflect.TypeFor[notEntity](), false, false, false},
		{"tree of entities", "an aggregate without cycles needs no cycle check", reflect.TypeFor[*mOrder](), false, false, true},
		{"entity collection", "a collection of entities has entities", reflect.TypeFor[[]*mItem](), false, false, true},
		{"linked list", "a type that contains itself", reflect.TypeFor[mNode](), true, true, false},
		{"pointer to a linked list", "a pointer on the cycle", reflect.TypeFor[*mNode](), true, true, false},
		{"cycle of two types", "a cycle through two types and a slice", reflect.TypeFor[mA](), true, true, false},
		{"other type of the cycle", "every type on the cycle", reflect.TypeFor[mB](), true, true, false},
		{"leads to a cycle", "a type that reaches a cycle may recur too", reflect.TypeFor[mReachesCycle](), true, true, false},
		{"interface", "an interface may hold anything, the value itself and entities included", reflect.TypeFor[any](), true, true, true},
		{"struct with an interface", "what reaches an interface", reflect.TypeFor[mWithIface](), true, true, true},
		{"ignored loop", "an ignored field is not walked", reflect.TypeFor[mIgnoredLoop](), false, false, false},
		{"time", "time.Time is a leaf, its Location pointer included", reflect.TypeFor[mTimeHolder](), false, false, false},
		{"recursive value", "a value is compared by its method, but a copy follows its pointers", reflect.TypeFor[mRecValue](), false, true, false},
		{"holds a recursive value", "comparing stops at the value; copying does not", reflect.TypeFor[mHoldsRecValue](), false, true, false},
		{"value with pointers", "a decimal's pointer leads nowhere", reflect.TypeFor[mDecimal](), false, false, false},
		{"recursive entity with Equal", "an entity is walked, its Equal method notwithstanding", reflect.TypeFor[mEntityEq](), true, true, false},
		{"unsupported", "an unsupported type is a leaf", reflect.TypeFor[mFunc](), false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Of(tt.typ)
			assert.Equal(t, tt.compare, m.MayRecurCompare, "MayRecurCompare: "+tt.reason)
			assert.Equal(t, tt.copy, m.MayRecurCopy, "MayRecurCopy: "+tt.reason)
			assert.Equal(t, tt.ents, m.HasEntities, "HasEntities: "+tt.reason)
		})
	}

	rv := Of(reflect.TypeFor[mRecValue]())
	assert.True(t, rv.Structure.MayRecurCopy, "the structural check of a recursive value is not bounded")
	assert.False(t, Of(reflect.TypeFor[mDecimal]()).Structure.MayRecurCopy, "that of a decimal is")
}

// TestOfConcurrent: models built at once by several goroutines are one
// model per type, complete when returned.
func TestOfConcurrent(t *testing.T) {
	type c1 struct{ next *c1 }
	type c2 struct{ a []c1 }
	var wg sync.WaitGroup
	got := make([]*Type, 8)
	for i := range got {
		wg.Go(func() {
			got[i] = Of(reflect.TypeFor[c2]())
		})
	}
	wg.Wait()
	for _, m := range got {
		assert.Same(t, got[0], m)
		assert.True(t, m.MayRecurCompare)
	}
}

func TestKindString(t *testing.T) {
	assert.Equal(t, "Value", KindValue.String())
	assert.Equal(t, "Kind(0)", Kind(0).String())
	assert.True(t, errors.Is(Of(reflect.TypeFor[chan int]()).Err, ddd.ErrUnsupported))
}
