package typeinfo

import (
	"reflect"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

func TestUnsafeHelpers(t *testing.T) {
	n := new(int)
	assert.Equal(t, unsafe.Pointer(n), PtrOf(n), "PtrOf reads the address a pointer holds")
	assert.False(t, IsNil(n))
	assert.True(t, IsNil[*int](nil), "a nil pointer of any type")

	a, b := reflect.TypeFor[int](), reflect.TypeOf(0)
	assert.Equal(t, TypeKey(a), TypeKey(b), "one descriptor per type, however the type was obtained")
	assert.NotEqual(t, TypeKey(a), TypeKey(reflect.TypeFor[int64]()))

	var x any = n
	assert.Equal(t, (*Eface)(unsafe.Pointer(&x)).Type, TypeWord(reflect.TypeFor[*int]()), "the type word of an interface holding a *int")

	s := []int{1, 2, 3}
	h := (*SliceHeader)(unsafe.Pointer(&s))
	assert.Equal(t, unsafe.Pointer(&s[0]), h.Data)
	assert.Equal(t, 3, h.Len)
	assert.Equal(t, cap(s), h.Cap)
}
