package typeinfo

import (
	"errors"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type tagged struct {
	id      int64 `ddd:"id"`
	name    string
	cache   []int `ddd:"-"`
	version int32 `ddd:"version"`
}

type byMethod struct{ key string }

func (b *byMethod) ID() string { return b.key }

type notEntity struct{ N int }

func TestStructOfTags(t *testing.T) {
	s, err := StructOf(reflect.TypeFor[tagged]())
	require.NoError(t, err)
	assert.Equal(t, 0, s.IDField)
	assert.Equal(t, 3, s.Version)
	assert.True(t, s.Fields[2].Ignored)

	tests := []struct {
		name   string
		reason string
		typ    reflect.Type
	}{
		{"two ids", "one identity per entity", reflect.TypeFor[struct {
			A int `ddd:"id"`
			B int `ddd:"id"`
		}]()},
		{"string version", "a version is an integer", reflect.TypeFor[struct {
			V string `ddd:"version"`
		}]()},
		{"unknown", "a misspelt tag is an error, not ignored", reflect.TypeFor[struct {
			V int `ddd:"ID"`
		}]()},
		{"non-comparable id", "an identity must be usable as a map key", reflect.TypeFor[struct {
			V []int `ddd:"id"`
		}]()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := StructOf(tt.typ)
			assert.True(t, errors.Is(err, ErrTag), tt.reason)
		})
	}
}

func TestIdentity(t *testing.T) {
	id, ok, err := IdentityOf(reflect.TypeFor[*tagged]())
	require.NoError(t, err)
	require.True(t, ok)
	assert.False(t, id.Method, "the tag wins")
	a, b := &tagged{id: 7}, &tagged{id: 7}
	v, ok := id.Read(unsafe.Pointer(&a))
	require.True(t, ok)
	assert.Equal(t, int64(7), v)
	assert.True(t, id.Same(unsafe.Pointer(&a), unsafe.Pointer(&b)))
	b.id = 8
	assert.False(t, id.Same(unsafe.Pointer(&a), unsafe.Pointer(&b)))
	var nilp *tagged
	_, ok = id.Read(unsafe.Pointer(&nilp))
	assert.False(t, ok, "a nil entity has no identity")

	mid, ok, err := IdentityOf(reflect.TypeFor[byMethod]())
	require.NoError(t, err)
	require.True(t, ok, "a method on the pointer makes the value an entity too")
	assert.True(t, mid.Method)
	x := byMethod{key: "k"}
	v, _ = mid.Read(unsafe.Pointer(&x))
	assert.Equal(t, "k", v)

	_, ok, err = IdentityOf(reflect.TypeFor[notEntity]())
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestDirectIface(t *testing.T) {
	assert.True(t, DirectIface(reflect.TypeFor[*int]()))
	assert.True(t, DirectIface(reflect.TypeFor[struct{ p *int }]()))
	assert.False(t, DirectIface(reflect.TypeFor[struct{ a, b *int }]()))
	assert.False(t, DirectIface(reflect.TypeFor[string]()))
	assert.False(t, HasPointers(reflect.TypeFor[[4]int]()))
	assert.True(t, HasPointers(reflect.TypeFor[struct{ s string }]()))
}

func TestVersion(t *testing.T) {
	f, ok, err := VersionOf(reflect.TypeFor[tagged]())
	require.NoError(t, err)
	require.True(t, ok)
	v := tagged{version: 41}
	p := unsafe.Add(unsafe.Pointer(&v), f.Offset)
	assert.Equal(t, int64(41), ReadInt(f.Type, p))
	WriteInt(f.Type, p, 42)
	assert.Equal(t, int32(42), v.version)
}

type eqValue struct{ cents int64 }

func (a eqValue) Equal(b eqValue) bool { return a.cents == b.cents }

type eqPtrRecv struct{ n int }

func (a *eqPtrRecv) Equal(b eqPtrRecv) bool { return a.n == b.n }

type eqTagged struct {
	id   int `ddd:"id"`
	tags []string
}

func (a eqTagged) Equal(b eqTagged) bool { return a.id == b.id }

type eqByMethod struct{ key string }

func (e *eqByMethod) ID() string             { return e.key }
func (e eqByMethod) Equal(o eqByMethod) bool { return e.key == o.key }

type eqBadTag struct {
	n int `ddd:"ID"`
}

func (a eqBadTag) Equal(b eqBadTag) bool { return true }

type eqSlice []int

func (a eqSlice) Equal(b eqSlice) bool { return len(a) == len(b) }

type eqFunc func()

func (eqFunc) Equal(eqFunc) bool { return true }

type eqNumber float64

func (a eqNumber) Equal(b eqNumber) bool { return a == b }

type eqOther struct{ n int }

func (a eqOther) Equal(b eqValue) bool { return true }

type eqArray [2]int

func (a eqArray) Equal(b eqArray) bool { return a[0] == b[0] }

func TestValueEqual(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		typ    reflect.Type
		want   bool
	}{
		{"value receiver", "a value object with Equal(T) bool is compared by it", reflect.TypeFor[eqValue](), true},
		{"pointer receiver", "a method on the pointer applies to the value too", reflect.TypeFor[eqPtrRecv](), true},
		{"array", "an array type may be a value", reflect.TypeFor[eqArray](), true},
		{"number", "so may a named number", reflect.TypeFor[eqNumber](), true},
		{"time", "time.Time is the standard example", reflect.TypeFor[time.Time](), true},
		{"tagged entity", "an entity is never a value: its Equal method usually compares identities", reflect.TypeFor[eqTagged](), false},
		{"entity by method", "an ID method makes an entity as a tag does", reflect.TypeFor[eqByMethod](), false},
		{"malformed tag", "a struct whose tags cannot be read is not trusted as a value", reflect.TypeFor[eqBadTag](), false},
		{"slice", "slices are followed: their method may not see what a copy changes", reflect.TypeFor[eqSlice](), false},
		{"pointer", "pointers are followed too", reflect.TypeFor[*eqValue](), false},
		{"func", "a func is unsupported, whatever its methods", reflect.TypeFor[eqFunc](), false},
		{"other argument", "Equal must take the type itself", reflect.TypeFor[eqOther](), false},
		{"no method", "a plain struct is compared part by part", reflect.TypeFor[notEntity](), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := ValueEqual(tt.typ)
			assert.Equal(t, tt.want, ok, tt.reason)
			if ok {
				assert.Equal(t, "Equal", m.Name, tt.reason)
			}
		})
	}
}
