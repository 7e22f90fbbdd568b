package tracking

import (
	stdcmp "cmp"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/internal/typeinfo"
)

// Types copied by the tests.

type point struct{ x, y int }

type withUnexported struct {
	Public  string
	private int
	secret  []byte
}

// money is a value object.
type money struct {
	amount   int64
	currency string
}

type line struct {
	total, unit money
	label       string
	at          struct{ day, month int8 }
}

type ptrs struct {
	n    *int
	pp   **point
	nilp *point
	zs   *struct{}
}

type colls struct {
	nilSlice, emptySlice []int
	capSlice             []int
	nilMap, emptyMap     map[string]int
}

type mapPtrs struct {
	m   map[string]*point
	mm  map[int]map[string][]int
	nil map[point]*point
}

type arrays struct {
	small  [3]*int
	big    [40]*point
	slices [2][]int
	vals   [4]point
	strs   [30]string
	empty  [0]*int
}

// label and ptrLabel implement fmt.Stringer, by value and by pointer.
type label string

// String implements fmt.Stringer by value.
func (l label) String() string { return string(l) }

type ptrLabel struct{ parts []string }

// String implements fmt.Stringer by pointer.
func (p *ptrLabel) String() string { return strings.Join(p.parts, "/") }

type ifaces struct {
	ptr    any
	num    any
	str    any
	boxed  any // a struct value holding a slice
	vo     any // a struct value without references
	mp     any
	nilAny any
	s      fmt.Stringer
	ps     fmt.Stringer
	list   []any
}

type bytesT struct{ b []byte }

type timed struct {
	at   time.Time
	ptr  *time.Time
	list []time.Time
}

type cached struct {
	name    string
	cache   map[string]int `ddd:"-"`
	scratch []byte         `ddd:"-"`
	ptr     *point         `ddd:"-"`
	n       int64
	flag    bool  `ddd:"-"`
	m       int64 // merged with n only around the ignored flag: must not be
}

type withFunc struct {
	name    string
	handler func()
}

type withChan struct{ events chan int }

type withUnsafe struct{ p unsafe.Pointer }

type badTag struct {
	a int `ddd:"key"`
}

// ifaceID is an entity whose identity is an interface, which may not be
// comparable at run time.
type ifaceID struct{ key any }

func (e *ifaceID) ID() any { return e.key }

type withIfaceID struct{ items []*ifaceID }

type ignoredFunc struct {
	handler func()         `ddd:"-"`
	events  chan int       `ddd:"-"`
	raw     unsafe.Pointer `ddd:"-"`
	n       int
}

type deepFunc struct {
	items []*withFunc
}

type funcKey struct {
	m map[chan int]int
}

type node struct {
	val  int
	next *node
}

type tree struct {
	label string
	kids  []*tree
	up    *tree `ddd:"-"`
}

type graphNode struct {
	name  string
	edges map[string]*graphNode
}

type boxNode struct{ v any }

type sliceNode struct {
	n    int
	kids []sliceNode
}

// outer reaches inner by pointer, and inner holds outer by value: inner's
// plan is compiled while outer's is being built.
type outer struct {
	name string
	in   *inner
}

type inner struct {
	o   outer
	arr [2]outer
}

// decimal is a value with an Equal method that holds a pointer: it is
// assigned, its *big.Int shared.
type decimal struct {
	mant *big.Int
	exp  int32
}

// Equal compares numerically.
func (d decimal) Equal(e decimal) bool { return d.exp == e.exp && d.mant.Cmp(e.mant) == 0 }

// ipLike is a slice type with an Equal method: it is still deep-copied.
type ipLike []byte

// Equal compares the bytes.
func (a ipLike) Equal(b ipLike) bool { return string(a) == string(b) }

type priced struct {
	price decimal
	ip    ipLike
	when  [2]time.Time
}

type dag struct{ a, b *point }

// scratch has ignored fields of every kind, set in the shallow copy and
// cleared by the fixes.
type scratch struct {
	id    int
	s     string         `ddd:"-"`
	b     []byte         `ddd:"-"`
	x     any            `ddd:"-"`
	p     *point         `ddd:"-"`
	ptrs  [20]*int       `ddd:"-"`
	nums  [3]int64       `ddd:"-"`
	t     time.Time      `ddd:"-"`
	inner money          `ddd:"-"`
	f     func() int     `ddd:"-"`
	str   fmt.Stringer   `ddd:"-"`
	m     map[string]int `ddd:"-"`
	name  string
}

// scratchHolder reaches scratch values in every way.
type scratchHolder struct {
	ptr   *scratch
	val   scratch
	list  []scratch
	plist []*scratch
	m     map[string]scratch
	iface any
	arr   [2]scratch
}

// withFuncValue is a value with an Equal method that holds a func: its
// func is shared by a copy, which cannot copy it.
type withFuncValue struct {
	f func()
	n int
}

// Equal compares n only.
func (a withFuncValue) Equal(b withFuncValue) bool { return a.n == b.n }

type sliceKinds struct {
	vos    []RecipientInfo
	nested [][]int
	maps   []map[string]*point
	anys   []any
	times  []time.Time
	strs   []string
	empty  []struct{}
	dirs   []*[]int
}

type rich struct {
	i8      int8
	u16     uint16
	f64     float64
	c       complex128
	ok      bool
	s       string
	bs      []byte
	ints    []int
	arr     [3]int32
	parr    [2]*point
	ptr     *point
	pp      **int
	vals    []point
	pvals   []*point
	m       map[string]int
	mp      map[int]*point
	ms      map[string][]string
	vo      RecipientInfo
	t       time.Time
	pt      *time.Time
	iface   any
	ifaces  []any
	str     fmt.Stringer
	nested  struct{ a, b *int }
	order   *Order
	cache   map[string]int `ddd:"-"`
	cb      func()         `ddd:"-"`
	version int64          `ddd:"version"`
}

// Oracle and invariants.

// isIgnored reports whether the last step of p is a field tagged ddd:"-".
func isIgnored(p cmp.Path) bool {
	sf, ok := p.Last().(cmp.StructField)
	if !ok {
		return false
	}
	return p.Index(-2).Type().Field(sf.Index()).Tag.Get("ddd") == "-"
}

var cmpOpts = []cmp.Option{
	cmp.Exporter(func(reflect.Type) bool { return true }),
	cmpopts.EquateNaNs(),
	cmp.FilterPath(isIgnored, cmp.Ignore()),
	cmp.Comparer(func(a, b *big.Int) bool { return a.Cmp(b) == 0 }),
	cmp.Transformer("entries", floatEntries),
}

// floatEntry is an entry of a map[float64]int.
type floatEntry struct {
	K float64
	V int
}

// floatEntries flattens a map with float keys into its entries in order
// (NaN keys first, by value), as go-cmp cannot compare maps with NaN keys.
func floatEntries(m map[float64]int) []floatEntry {
	if m == nil {
		return nil
	}
	out := make([]floatEntry, 0, len(m))
	for k, v := range m {
		out = append(out, floatEntry{k, v})
	}
	slices.SortFunc(out, func(a, b floatEntry) int {
		if c := stdcmp.Compare(a.K, b.K); c != 0 { // NaNs first
			return c
		}
		return stdcmp.Compare(a.V, b.V)
	})
	return out
}

// checkCopy checks that c is a faithful, independent copy of orig: equal to
// it but for ignored fields, which are zero, and sharing no mutable memory.
func checkCopy[T any](t *testing.T, orig, c T) {
	t.Helper()
	if d := cmp.Diff(orig, c, cmpOpts...); d != "" {
		t.Fatalf("copy differs (-orig +copy):\n%s", d)
	}
	w := aliasWalker{seen: make(map[[2]unsafe.Pointer]bool)}
	typ := reflect.TypeFor[T]()
	w.walk(typ, unsafe.Pointer(&orig), unsafe.Pointer(&c), typ.String())
	for _, p := range w.problems {
		t.Error(p)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// aliasWalker walks an original and its copy side by side and records
// every pointer, non-empty slice backing array or map they share, and every
// ignored field that is not zero in the copy.
type aliasWalker struct {
	seen     map[[2]unsafe.Pointer]bool
	problems []string
}

func (w *aliasWalker) fail(path, format string, args ...any) {
	w.problems = append(w.problems, path+": "+fmt.Sprintf(format, args...))
}

// immutable reports whether nothing mutable can be reached from a value of
// type t, so that it may be shared.
func immutable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Struct, reflect.Array:
		if _, ok := typeinfo.ValueEqual(t); ok {
			return true
		}
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface,
		reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return false
	case reflect.Array:
		return t.Len() == 0 || immutable(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Tag.Get("ddd") == "-" || !immutable(f.Type) {
				return false
			}
		}
	}
	return true
}

func (w *aliasWalker) walk(t reflect.Type, a, b unsafe.Pointer, path string) {
	switch t.Kind() {
	case reflect.Struct, reflect.Array:
		if _, ok := typeinfo.ValueEqual(t); ok {
			return // a value, assigned: sharing its insides is allowed
		}
	}
	switch t.Kind() {
	case reflect.Pointer:
		pa, pb := *(*unsafe.Pointer)(a), *(*unsafe.Pointer)(b)
		if pa == nil || pb == nil {
			return
		}
		if pa == pb && t.Elem().Size() > 0 {
			w.fail(path, "pointer %p shared", pa)
			return
		}
		if w.seen[[2]unsafe.Pointer{pa, pb}] {
			return
		}
		w.seen[[2]unsafe.Pointer{pa, pb}] = true
		w.walk(t.Elem(), pa, pb, "(*"+path+")")
	case reflect.Slice:
		ha, hb := (*typeinfo.SliceHeader)(a), (*typeinfo.SliceHeader)(b)
		n := min(ha.Len, hb.Len)
		if n > 0 && ha.Data == hb.Data && t.Elem().Size() > 0 {
			w.fail(path, "backing array %p shared", ha.Data)
			return
		}
		for i := range n {
			off := uintptr(i) * t.Elem().Size()
			w.walk(t.Elem(), unsafe.Add(ha.Data, off), unsafe.Add(hb.Data, off), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		ma, mb := *(*unsafe.Pointer)(a), *(*unsafe.Pointer)(b)
		if ma == nil || mb == nil {
			return
		}
		if ma == mb {
			w.fail(path, "map %p shared", ma)
			return
		}
		va, vb := reflect.NewAt(t, a).Elem(), reflect.NewAt(t, b).Elem()
		it := va.MapRange()
		for it.Next() {
			y := vb.MapIndex(it.Key())
			if !y.IsValid() {
				continue // a NaN key
			}
			// Map values are not addressable: walk copies of them, which
			// hold the same references.
			xa, xb := reflect.New(t.Elem()), reflect.New(t.Elem())
			xa.Elem().Set(it.Value())
			xb.Elem().Set(y)
			w.walk(t.Elem(), xa.UnsafePointer(), xb.UnsafePointer(), fmt.Sprintf("%s[%v]", path, it.Key()))
		}
	case reflect.Interface:
		va, vb := reflect.NewAt(t, a).Elem(), reflect.NewAt(t, b).Elem()
		if va.IsNil() || vb.IsNil() {
			return
		}
		da, db := va.Elem().Type(), vb.Elem().Type()
		if da != db {
			w.fail(path, "dynamic types differ: %v, %v", da, db)
			return
		}
		if immutable(da) {
			return
		}
		w.walk(da, typeinfo.DataOf((*any)(a), da), typeinfo.DataOf((*any)(b), da), path+".("+da.String()+")")
	case reflect.Array:
		for i := range t.Len() {
			off := uintptr(i) * t.Elem().Size()
			w.walk(t.Elem(), unsafe.Add(a, off), unsafe.Add(b, off), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			fa, fb := unsafe.Add(a, f.Offset), unsafe.Add(b, f.Offset)
			if f.Tag.Get("ddd") == "-" {
				if !reflect.NewAt(f.Type, fb).Elem().IsZero() {
					w.fail(path+"."+f.Name, "ignored field not zero in the copy")
				}
				continue
			}
			w.walk(f.Type, fa, fb, path+"."+f.Name)
		}
	}
}

// Table tests.

type copyTest struct {
	name   string
	reason string
	run    func(t *testing.T)
}

// okCase copies the value made by mk, checks the invariants, then runs the
// checks of the case.
func okCase[T any](name, reason string, mk func() T, checks ...func(t *testing.T, orig, c T)) copyTest {
	return copyTest{name: name, reason: reason, run: func(t *testing.T) {
		orig := mk()
		c, err := Copy(orig)
		require.NoError(t, err)
		checkCopy(t, orig, c)
		for _, check := range checks {
			check(t, orig, c)
		}
	}}
}

// errCase copies the value made by mk and expects an error that wraps want
// and whose message holds each of msgs.
func errCase[T any](name, reason string, mk func() T, want error, msgs ...string) copyTest {
	return copyTest{name: name, reason: reason, run: func(t *testing.T) {
		c, err := Copy(mk())
		require.Error(t, err)
		assert.ErrorIs(t, err, want)
		for _, m := range msgs {
			assert.Contains(t, err.Error(), m)
		}
		assert.True(t, reflect.ValueOf(&c).Elem().IsZero(), "a failed copy returns the zero value")
	}}
}

func intp(n int) *int { return &n }

// TestCopy copies one value of each case and checks the copy: equal to the
// original, sharing no mutable memory with it, and as the case says; or the
// error the case expects.
func TestCopy(t *testing.T) {
	now := time.Now() // with a monotonic clock reading
	tests := []copyTest{
		okCase("Int", "a basic kind is copied by value",
			func() int { return 42 },
			func(t *testing.T, o, c int) { assert.Equal(t, 42, c) }),
		okCase("String", "a string is shared, being immutable",
			func() string { return "hello" }),
		okCase("Floats", "floats, NaN included, are copied bit for bit",
			func() [3]float64 { return [3]float64{1.5, math.Inf(-1), math.NaN()} }),
		okCase("Complex", "complex numbers are pointer-free memory",
			func() *struct{ c complex64 } { return &struct{ c complex64 }{3 + 4i} }),
		okCase("Unexported", "unexported fields are copied like exported ones",
			func() *withUnexported { return &withUnexported{"pub", 7, []byte("s3cr3t")} },
			func(t *testing.T, o, c *withUnexported) {
				assert.Equal(t, 7, c.private)
				assert.Equal(t, []byte("s3cr3t"), c.secret)
			}),
		okCase("ValueObjects", "nested structs are flattened into their parent and copied",
			func() *line {
				return &line{total: money{300, "EUR"}, unit: money{100, "EUR"}, label: "x3", at: struct{ day, month int8 }{3, 4}}
			}),
		okCase("Pointers", "each pointer points to a new copy of its target",
			func() *ptrs {
				p := &point{1, 2}
				return &ptrs{n: intp(5), pp: &p, zs: &struct{}{}}
			},
			func(t *testing.T, o, c *ptrs) {
				assert.NotSame(t, o.n, c.n)
				assert.NotSame(t, *o.pp, *c.pp)
				assert.Nil(t, c.nilp)
				assert.NotNil(t, c.zs)
			}),
		okCase("NilAndEmpty", "a nil slice or map stays nil, an empty one stays empty and non-nil",
			func() *colls {
				return &colls{emptySlice: []int{}, capSlice: make([]int, 0, 10), emptyMap: map[string]int{}}
			},
			func(t *testing.T, o, c *colls) {
				assert.Nil(t, c.nilSlice)
				assert.NotNil(t, c.emptySlice)
				assert.Empty(t, c.emptySlice)
				assert.NotNil(t, c.capSlice)
				assert.Nil(t, c.nilMap)
				assert.NotNil(t, c.emptyMap)
			}),
		okCase("SliceCapacity", "a slice copy holds the len elements, not what lies beyond",
			func() []int { return make([]int, 3, 100) },
			func(t *testing.T, o, c []int) { assert.Len(t, c, 3) }),
		okCase("MapsOfPointers", "map values are deep-copied, keys assigned",
			func() *mapPtrs {
				return &mapPtrs{
					m:  map[string]*point{"a": {1, 2}, "b": {3, 4}, "nil": nil},
					mm: map[int]map[string][]int{1: {"x": {1, 2}}, 2: nil, 3: {}},
				}
			},
			func(t *testing.T, o, c *mapPtrs) {
				assert.NotSame(t, o.m["a"], c.m["a"])
				assert.Nil(t, c.m["nil"])
				assert.Contains(t, c.m, "nil")
			}),
		okCase("Arrays", "arrays are copied element by element, unrolled or in a loop",
			func() *arrays {
				a := &arrays{}
				a.small[1] = intp(3)
				for i := range a.big {
					if i%3 != 0 {
						a.big[i] = &point{i, -i}
					}
				}
				a.slices[0] = []int{1, 2}
				a.vals[2] = point{5, 6}
				for i := range a.strs {
					a.strs[i] = fmt.Sprint(i)
				}
				return a
			}),
		okCase("Interfaces", "interfaces holding references are deep-copied and reboxed, immutable ones shared",
			func() *ifaces {
				return &ifaces{
					ptr:   &point{1, 2},
					num:   3,
					str:   "s",
					boxed: bytesT{[]byte("boxed")},
					vo:    money{5, "USD"},
					mp:    map[string]*point{"p": {7, 8}},
					s:     label("lbl"),
					ps:    &ptrLabel{[]string{"a", "b"}},
					list:  []any{1, &point{3, 4}, nil, []string{"x"}},
				}
			},
			func(t *testing.T, o, c *ifaces) {
				assert.NotSame(t, o.ptr.(*point), c.ptr.(*point))
				assert.Equal(t, 3, c.num)
				assert.NotSame(t, &o.boxed.(bytesT).b[0], &c.boxed.(bytesT).b[0])
				assert.NotSame(t, o.ps.(*ptrLabel), c.ps.(*ptrLabel))
				assert.Equal(t, "a/b", c.ps.String())
				assert.Nil(t, c.nilAny)
			}),
		okCase("InterfaceRoot", "an interface root is copied through its dynamic value",
			func() any { return &point{1, 2} },
			func(t *testing.T, o, c any) { assert.NotSame(t, o.(*point), c.(*point)) }),
		okCase("Bytes", "a []byte gets a new backing array in one copy",
			func() *bytesT { return &bytesT{[]byte("hello, world")} }),
		okCase("Time", "time.Time is assigned, monotonic clock reading and location kept",
			func() *timed {
				at := now.In(time.FixedZone("X", 3600))
				return &timed{at: now, ptr: &at, list: []time.Time{now, at, {}}}
			},
			func(t *testing.T, o, c *timed) {
				assert.True(t, o.at == c.at, "== holds: same wall, monotonic and location")
				assert.Contains(t, c.at.String(), "m=+", "the monotonic reading is kept")
				assert.NotSame(t, o.ptr, c.ptr)
				assert.True(t, *o.ptr == *c.ptr)
				assert.True(t, o.list[0] == c.list[0])
			}),
		okCase("EqualTypes", "a struct with an Equal method is assigned as a whole; a slice type with one is still deep-copied",
			func() *priced {
				return &priced{price: decimal{big.NewInt(1999), -2}, ip: ipLike{10, 0, 0, 1}, when: [2]time.Time{now}}
			},
			func(t *testing.T, o, c *priced) {
				assert.NotSame(t, o.price.mant, c.price.mant, "a value with an Equal method that holds pointers is deep-copied: a change in place must show")
				assert.Equal(t, 0, o.price.mant.Cmp(c.price.mant))
				assert.NotSame(t, &o.ip[0], &c.ip[0])
			}),
		okCase("Ignored", "fields tagged ddd:\"-\" are left zero, and memory copies do not span them",
			func() *cached {
				return &cached{name: "n", cache: map[string]int{"a": 1}, scratch: []byte("x"), ptr: &point{}, n: 1, flag: true, m: 2}
			},
			func(t *testing.T, o, c *cached) {
				assert.Equal(t, cached{name: "n", n: 1, m: 2}, *c)
			}),
		okCase("IgnoredUnsupported", "func, chan and unsafe.Pointer fields tagged ddd:\"-\" are fine",
			func() *ignoredFunc {
				return &ignoredFunc{handler: func() {}, events: make(chan int), raw: unsafe.Pointer(new(int)), n: 3}
			},
			func(t *testing.T, o, c *ignoredFunc) {
				assert.Nil(t, c.handler)
				assert.Nil(t, c.events)
				assert.Nil(t, c.raw)
				assert.Equal(t, 3, c.n)
			}),
		errCase("Func", "a func field is unsupported, even when nil: the type decides",
			func() *withFunc { return &withFunc{name: "x"} }, diff.ErrUnsupported,
			"tracking: copy *tracking.withFunc: field .handler: func() is not supported"),
		errCase("Chan", "a chan field is unsupported",
			func() *withChan { return &withChan{events: make(chan int)} }, diff.ErrUnsupported,
			"field .events: chan int is not supported"),
		errCase("UnsafePointer", "an unsafe.Pointer field is unsupported",
			func() withUnsafe { return withUnsafe{} }, diff.ErrUnsupported,
			"field .p: unsafe.Pointer is not supported"),
		errCase("DeepFunc", "an unsupported type anywhere in the type graph is reported with its path",
			func() *deepFunc { return &deepFunc{} }, diff.ErrUnsupported,
			"field .items[].handler: func()"),
		errCase("FuncMapKey", "map keys are checked too",
			func() funcKey { return funcKey{} }, diff.ErrUnsupported, "field .m[key]: chan int"),
		errCase("FuncRoot", "a func root is unsupported",
			func() func() { return nil }, diff.ErrUnsupported, "func() is not supported"),
		errCase("BadTag", "a malformed ddd tag is unsupported",
			func() *badTag { return &badTag{} }, diff.ErrUnsupported, "invalid ddd tag"),
		errCase("InterfaceIdentity", "an identity of interface type is refused, as diff refuses it, with the path to it",
			func() *withIfaceID { return &withIfaceID{items: []*ifaceID{{key: 1}}} }, diff.ErrUnsupported,
			"field .items[]: unsupported type: invalid ddd tag: tracking.ifaceID.ID returns interface {}"),
		errCase("FuncInInterface", "a func met in an interface is unsupported, with the path to it",
			func() *ifaces { return &ifaces{list: []any{1, func() {}}} }, diff.ErrUnsupported,
			"field .list[1]: func() is not supported"),
		okCase("LinkedList", "a recursive type is copied",
			func() *node {
				var head *node
				for i := range 100 {
					head = &node{i, head}
				}
				return head
			},
			func(t *testing.T, o, c *node) {
				n := 0
				for p := c; p != nil; p = p.next {
					n++
				}
				assert.Equal(t, 100, n)
			}),
		okCase("LongList", "a list deeper than the linear cycle search is copied",
			func() *node {
				var head *node
				for i := range 5000 {
					head = &node{i, head}
				}
				return head
			}),
		okCase("Tree", "a tree is copied; its ignored back-pointers are not",
			func() *tree {
				root := &tree{label: "root"}
				for i := range 3 {
					k := &tree{label: fmt.Sprint(i), up: root}
					k.kids = []*tree{{label: "leaf", up: k}}
					root.kids = append(root.kids, k)
				}
				return root
			},
			func(t *testing.T, o, c *tree) { assert.Nil(t, c.kids[0].up) }),
		okCase("MutualRecursion", "a struct compiled while its container is being compiled is copied in full",
			func() *outer {
				return &outer{name: "a", in: &inner{o: outer{name: "b", in: &inner{}}, arr: [2]outer{{name: "c"}}}}
			}),
		okCase("SliceNotACycle", "a slice sharing a prefix of its parent's backing array is not a cycle",
			func() []sliceNode {
				s := make([]sliceNode, 2)
				s[0].n = 1
				s[1].kids = s[0:1]
				return s
			},
			func(t *testing.T, o, c []sliceNode) {
				assert.Equal(t, 1, c[1].kids[0].n)
				assert.NotSame(t, &c[0], &c[1].kids[0], "sharing is not preserved")
			}),
		okCase("IgnoredEverywhere", "ignored fields are cleared wherever their struct is reached",
			func() *scratchHolder {
				full := func(id int) scratch {
					x := scratch{id: id, s: "s", b: []byte("b"), x: &point{}, p: &point{}, nums: [3]int64{1, 2, 3},
						t: now, inner: money{1, "EUR"}, f: func() int { return 1 }, str: label("l"),
						m: map[string]int{"a": 1}, name: "n"}
					for i := range x.ptrs {
						x.ptrs[i] = intp(i)
					}
					return x
				}
				f1, f2 := full(1), full(2)
				return &scratchHolder{
					ptr: &f1, val: full(3), list: []scratch{full(4), full(5)}, plist: []*scratch{&f2, nil},
					m: map[string]scratch{"a": full(6)}, iface: full(7), arr: [2]scratch{full(8), full(9)},
				}
			},
			func(t *testing.T, o, c *scratchHolder) {
				assert.Equal(t, scratch{id: 1, name: "n"}, *c.ptr)
				assert.Equal(t, scratch{id: 7, name: "n"}, c.iface)
				assert.Equal(t, scratch{id: 6, name: "n"}, c.m["a"])
				assert.NotNil(t, o.ptr.f, "the original keeps its ignored fields")
			}),
		okCase("EqualValueWithFunc", "a value with an Equal method is the method's to judge: a func in it is shared, not refused",
			func() *struct{ v withFuncValue } { return &struct{ v withFuncValue }{withFuncValue{func() {}, 3}} },
			func(t *testing.T, o, c *struct{ v withFuncValue }) {
				assert.NotNil(t, c.v.f)
				assert.Equal(t, 3, c.v.n)
			}),
		okCase("SliceKinds", "slices of every kind of element get new backing arrays",
			func() *sliceKinds {
				return &sliceKinds{
					vos:    []RecipientInfo{{"a", "b", "c"}, {"d", "e", "f"}},
					nested: [][]int{{1}, nil, {}, {2, 3}},
					maps:   []map[string]*point{{"p": {1, 2}}, nil},
					anys:   []any{1, "x", &point{}, []int{1}, nil, now},
					times:  []time.Time{now, {}},
					strs:   []string{"a", "", "c"},
					empty:  make([]struct{}, 3),
					dirs:   []*[]int{{1, 2}, nil},
				}
			},
			func(t *testing.T, o, c *sliceKinds) {
				assert.Nil(t, c.nested[1])
				assert.NotNil(t, c.nested[2])
				assert.Len(t, c.empty, 3)
			}),
		okCase("DAG", "a value reachable twice is copied twice: sharing is not preserved",
			func() *dag {
				p := &point{1, 2}
				return &dag{p, p}
			},
			func(t *testing.T, o, c *dag) {
				assert.NotSame(t, c.a, c.b)
				assert.Equal(t, *c.a, *c.b)
			}),
		errCase("SelfCycle", "a node pointing to itself is a cycle",
			func() *node {
				n := &node{}
				n.next = n
				return n
			}, diff.ErrCycle, "field .next: tracking.node contains itself"),
		errCase("LongCycle", "a cycle through three nodes is found",
			func() *node {
				a := &node{val: 1}
				a.next = &node{val: 2, next: &node{val: 3, next: a}}
				return a
			}, diff.ErrCycle, ".next.next.next"),
		errCase("DeepCycle", "a cycle deeper than the linear search is found",
			func() *node {
				last := &node{}
				head := last
				for i := range 100 {
					head = &node{i, head}
				}
				last.next = head
				return head
			}, diff.ErrCycle),
		errCase("SliceCycle", "a slice holding itself is a cycle",
			func() []sliceNode {
				s := make([]sliceNode, 1)
				s[0].kids = s
				return s
			}, diff.ErrCycle, "backing array of []tracking.sliceNode contains itself"),
		errCase("MapCycle", "a map reaching itself is a cycle",
			func() *graphNode {
				g := &graphNode{name: "g", edges: map[string]*graphNode{}}
				g.edges["h"] = &graphNode{name: "h", edges: map[string]*graphNode{"g": g}}
				return g
			}, diff.ErrCycle, "field .edges[h].edges[g]"),
		errCase("InterfaceCycle", "an interface holding its container is a cycle",
			func() *boxNode {
				b := &boxNode{}
				b.v = b
				return b
			}, diff.ErrCycle),
		okCase("NilRoot", "a nil pointer copies to nil without error",
			func() *Order { return nil },
			func(t *testing.T, o, c *Order) { assert.Nil(t, c) }),
		okCase("OrderValue", "a struct root (not a pointer) is copied",
			func() Order { return *newOrder(3) }),
		okCase("Order", "the fixture aggregate is copied",
			func() *Order { return newOrder(5) },
			func(t *testing.T, o, c *Order) { assert.True(t, handEqualOrder(o, c)) }),
		okCase("OrderNilItem", "a nil element of a slice of pointers stays nil",
			func() *Order {
				o := newOrder(3)
				o.items[1] = nil
				return o
			}),
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.reason == "" {
				t.Fatal("reason must be provided")
			}
			defer func() {
				if t.Failed() {
					t.Logf("reason: %s", tt.reason)
				}
			}()
			tt.run(t)
		})
	}
}

// TestCopyTooDeep checks that a recursion deeper than typeinfo.MaxDepth is an error,
// not a stack overflow.
func TestCopyTooDeep(t *testing.T) {
	var head *node
	for i := range typeinfo.MaxDepth + 10 {
		head = &node{i, head}
	}
	_, err := Copy(head)
	require.Error(t, err)
	assert.ErrorIs(t, err, diff.ErrUnsupported)
	assert.Contains(t, err.Error(), "nested more than")
}

// TestCopyIndependent changes every part of a copy and checks that the
// original is unchanged, and the other way round.
func TestCopyIndependent(t *testing.T) {
	o := newOrder(4)
	want := handCopyOrder(o)
	c, err := Copy(o)
	require.NoError(t, err)
	c.items[0].quantity = 99
	c.items = append(c.items[:1], c.items[2:]...)
	c.recipient.Name = "changed"
	c.version++
	assert.True(t, handEqualOrder(want, o), "changing the copy changed the original")

	c, err = Copy(o)
	require.NoError(t, err)
	o.items[1].name = "changed"
	o.items[2] = nil
	assert.True(t, handEqualOrder(want, c), "changing the original changed the copy")
}

// TestCopyErrorsAreConsistent checks that an unsupported type is an error
// every time, whatever the value.
func TestCopyErrorsAreConsistent(t *testing.T) {
	for range 3 {
		_, err := Copy(&withFunc{handler: func() {}})
		assert.ErrorIs(t, err, diff.ErrUnsupported)
		_, err = Copy(&withFunc{})
		assert.ErrorIs(t, err, diff.ErrUnsupported)
	}
}

// TestCopyAllocs checks that Copy allocates the copy and nothing else.
func TestCopyAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	o := newOrder(10)
	_, _ = Copy(o)
	n := testing.AllocsPerRun(100, func() { _, _ = Copy(o) })
	assert.Equal(t, float64(2+10), n, "the order, the slice and each item, nothing else")

	var head *node
	for i := range 10 {
		head = &node{i, head}
	}
	_, _ = Copy(head)
	n = testing.AllocsPerRun(100, func() { _, _ = Copy(head) })
	assert.Equal(t, float64(10), n, "the nodes; cycle tracking allocates nothing")

	p := &point{1, 2}
	n = testing.AllocsPerRun(100, func() { _, _ = Copy(p) })
	assert.Equal(t, float64(1), n)

	ov := *o
	_, _ = Copy(ov)
	n = testing.AllocsPerRun(100, func() { _, _ = Copy(ov) })
	assert.Equal(t, float64(1+1+10), n, "a root that is not a pointer costs one more allocation")

	box := &ifaces{ptr: &point{}, num: 1, s: label("x")}
	_, _ = Copy(box)
	n = testing.AllocsPerRun(100, func() { _, _ = Copy(box) })
	assert.Equal(t, float64(2), n, "the struct and the point; immutable interfaces are shared")

	tm := &timed{at: time.Now(), list: []time.Time{{}, {}}}
	_, _ = Copy(tm)
	n = testing.AllocsPerRun(100, func() { _, _ = Copy(tm) })
	assert.Equal(t, float64(2), n, "the struct and the backing array")
}

// TestCopyConcurrent copies values of types compiled concurrently, for the
// race detector.
func TestCopyConcurrent(t *testing.T) {
	type c1 struct{ a []*point }
	type c2 struct {
		b map[string]c1
		n *node
	}
	type c3 struct {
		c  [3]c2
		ok any
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for range 20 {
				v := generate[*c3](r, 4)
				c, err := Copy(v)
				assert.NoError(t, err)
				assert.Empty(t, cmp.Diff(v, c, cmpOpts...))
			}
		})
	}
	wg.Wait()
}

// Property tests.

// gen fills values with random contents. Its random source may be a byte
// stream (see FuzzCopy), which may run dry: it then produces zeros, nil
// pointers and empty collections, so that generation always ends.
type gen struct {
	r *rand.Rand
}

// generate returns a random value of type T, nested at most depth levels.
func generate[T any](r *rand.Rand, depth int) T {
	var v T
	g := gen{r}
	g.fill(reflect.ValueOf(&v).Elem(), depth)
	return v
}

// dynamicTypes are the dynamic types put into interfaces.
var dynamicTypes = []reflect.Type{
	reflect.TypeFor[int](),
	reflect.TypeFor[string](),
	reflect.TypeFor[*point](),
	reflect.TypeFor[point](),
	reflect.TypeFor[[]int](),
	reflect.TypeFor[map[string]int](),
	reflect.TypeFor[time.Time](),
	reflect.TypeFor[money](),
	reflect.TypeFor[bytesT](),
	reflect.TypeFor[*node](),
	reflect.TypeFor[label](),
	reflect.TypeFor[*ptrLabel](),
	reflect.TypeFor[[]any](),
}

var letters = []rune("abcxyzé€ ")

func (g *gen) fill(v reflect.Value, depth int) {
	r := g.r
	t := v.Type()
	if t == typeinfo.TimeType() {
		tm := time.Unix(g.int64n(1<<33)-1<<32, g.int64n(1e9))
		switch g.intn(3) {
		case 1:
			tm = tm.In(time.FixedZone("Z", 3600*(g.intn(24)-12)))
		case 2:
			tm = time.Now().Add(time.Duration(g.int64n(1 << 40))) // monotonic
		}
		v.Set(reflect.ValueOf(tm))
		return
	}
	switch t.Kind() {
	case reflect.Bool:
		v.SetBool(g.intn(2) == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(r.Uint64()) >> g.intn(64))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(r.Uint64() >> g.intn(64))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(g.float())
	case reflect.Complex64, reflect.Complex128:
		// Not NaN: cmpopts.EquateNaNs does not apply to complex numbers.
		v.SetComplex(complex(g.r.NormFloat64(), g.r.NormFloat64()))
	case reflect.String:
		b := make([]rune, g.intn(8))
		for i := range b {
			b[i] = letters[g.intn(len(letters))]
		}
		v.SetString(string(b))
	case reflect.Pointer:
		if depth <= 0 || g.intn(5) == 0 {
			return
		}
		p := reflect.New(t.Elem())
		g.fill(p.Elem(), depth-1)
		v.Set(p)
	case reflect.Slice:
		switch k := g.intn(6); {
		case k == 0 || depth <= 0:
			// nil
		case k == 1:
			v.Set(reflect.MakeSlice(t, 0, g.intn(3)))
		default:
			n := 1 + g.intn(4)
			s := reflect.MakeSlice(t, n, n+g.intn(3))
			for i := range n {
				g.fill(s.Index(i), depth-1)
			}
			v.Set(s)
		}
	case reflect.Map:
		switch k := g.intn(5); {
		case k == 0 || depth <= 0:
		case k == 1:
			v.Set(reflect.MakeMap(t))
		default:
			m := reflect.MakeMap(t)
			for range 1 + g.intn(4) {
				key, val := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
				g.fill(key, depth-1)
				g.fill(val, depth-1)
				m.SetMapIndex(key, val)
			}
			v.Set(m)
		}
	case reflect.Array:
		for i := range v.Len() {
			g.fill(v.Index(i), depth)
		}
	case reflect.Struct:
		for i := range t.NumField() {
			f := v.Field(i)
			// Unexported fields are set through their address.
			g.fill(reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem(), depth)
		}
	case reflect.Interface:
		if depth <= 0 || g.intn(5) == 0 {
			return
		}
		var ok []reflect.Type
		for _, dt := range dynamicTypes {
			if dt.Implements(t) {
				ok = append(ok, dt)
			}
		}
		if len(ok) == 0 {
			return
		}
		x := reflect.New(ok[g.intn(len(ok))]).Elem()
		g.fill(x, depth-1)
		v.Set(x)
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		// Left nil: only ever in ignored fields.
	}
}

// intn returns a number in [0, n). Unlike rand.Rand.IntN it ends whatever
// the source yields, an all-zero source included.
func (g *gen) intn(n int) int { return int(g.r.Uint64() % uint64(n)) }

func (g *gen) int64n(n int64) int64 { return int64(g.r.Uint64() % uint64(n)) }

func (g *gen) float() float64 {
	switch g.intn(10) {
	case 0:
		return math.NaN()
	case 1:
		return math.Inf(1)
	case 2:
		return 0
	}
	return g.r.NormFloat64() * 1e3
}

// checkRandom copies n random values of type T and checks each copy.
func checkRandom[T any](t *testing.T, n, depth int) {
	t.Run(reflect.TypeFor[T]().String(), func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, uint64(n)))
		for i := range n {
			v := generate[T](r, depth)
			c, err := Copy(v)
			require.NoError(t, err, "value %d", i)
			checkCopy(t, v, c)
		}
	})
}

// TestCopyProperties copies random values of several types, with go-cmp as
// the oracle of equality.
func TestCopyProperties(t *testing.T) {
	checkRandom[*Order](t, 200, 3)
	checkRandom[Order](t, 100, 3)
	checkRandom[*rich](t, 300, 4)
	checkRandom[[]rich](t, 50, 3)
	checkRandom[*tree](t, 200, 6)
	checkRandom[*node](t, 200, 20)
	checkRandom[map[string]*graphNode](t, 100, 5)
	checkRandom[*ifaces](t, 200, 4)
	checkRandom[*arrays](t, 100, 3)
	checkRandom[*colls](t, 100, 3)
	checkRandom[*cached](t, 100, 3)
	checkRandom[*line](t, 50, 3)
	checkRandom[[]any](t, 200, 4)
	checkRandom[*outer](t, 100, 5)
	checkRandom[*scratchHolder](t, 100, 3)
	checkRandom[*sliceKinds](t, 200, 4)
	checkRandom[*priced](t, 100, 3)
}

// TestCopyUnsupportedIsNotPanic checks a dynamic value of an unsupported
// type, met only while copying.
func TestCopyUnsupportedIsNotPanic(t *testing.T) {
	// A chan inside an interface is only met while copying.
	_, err := Copy([]any{make(chan int)})
	assert.True(t, errors.Is(err, diff.ErrUnsupported), "got %v", err)
	assert.Contains(t, err.Error(), "at [0]: chan int is not supported")
}
