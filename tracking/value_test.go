package tracking_test

import (
	"context"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/tracking"
)

// rounded is a value with an Equal method that holds a pointer and a func,
// nil or not: the func is the method's to judge, not the engines'.
type rounded struct {
	mant  *big.Int
	round func(*big.Int) *big.Int
}

func (r rounded) Equal(o rounded) bool { return r.mant.Cmp(o.mant) == 0 }

// loop is a value with an Equal method that may hold a pointer cycle.
type loop struct {
	n    int
	next *loop
}

func (l loop) Equal(o loop) bool {
	return l.n == o.n && (l.next == nil) == (o.next == nil) && (l.next == nil || l.next.n == o.next.n)
}

// cached is a value with an Equal method and a field tagged ddd:"-": the
// aggregate's tags do not apply inside a value, its method decides.
type cached struct {
	parts []int
	memo  []int `ddd:"-"`
}

func (c cached) Equal(o cached) bool {
	return len(c.parts) == len(o.parts) && len(c.memo) == len(o.memo)
}

// oneWord is a value with an Equal method stored in an interface's data
// word, which holds itself.
type oneWord struct{ self *oneWord }

func (w oneWord) Equal(o oneWord) bool { return (w.self == nil) == (o.self == nil) }

type valueAgg struct {
	id    int
	price rounded
	ring  loop
	ring2 *loop
	memo  cached
	anys  []any
	byKey map[string]loop
}

func (a *valueAgg) ID() int { return a.id }

func newValueAgg() *valueAgg {
	a := &valueAgg{id: 1, price: rounded{mant: big.NewInt(1999)}}
	a.ring = loop{n: 1}
	a.ring.next = &a.ring // a value pointing to itself
	x, y := &loop{n: 2}, &loop{n: 3}
	x.next, y.next = y, x // a cycle of two
	a.ring2 = x
	a.memo = cached{parts: []int{1}, memo: []int{9}}
	w := &oneWord{}
	w.self = w
	a.anys = []any{*w, rounded{mant: big.NewInt(5)}}
	a.byKey = map[string]loop{"k": {n: 4, next: y}}
	return a
}

// TestValueWithEqualMethodCopied checks the one rule for a value with an
// Equal method that is not an entity: package diff compares it with its
// method alone, and Copy copies all of it deeply, sharing only what cannot
// be copied (a func) with the original. A nil func or a pointer cycle
// inside such a value neither fails Copy and Attach nor makes the
// snapshot differ, and a change made in place behind its pointers is seen.
func TestValueWithEqualMethodCopied(t *testing.T) {
	ctx := context.Background()
	a := newValueAgg()

	c, err := tracking.Copy(a)
	require.NoError(t, err, "a nil func and pointer cycles inside values with Equal methods are copied")
	eq, err := diff.Equal(a, c)
	require.NoError(t, err)
	assert.True(t, eq, "the copy equals the original, to package diff")

	// The copy shares no mutable memory with the original, and keeps its
	// shapes.
	assert.NotSame(t, a.price.mant, c.price.mant)
	assert.Same(t, &c.ring, c.ring.next, "a value pointing to itself is copied pointing to itself")
	assert.NotSame(t, a.ring2, c.ring2)
	assert.NotSame(t, a.ring2.next, c.ring2.next)
	assert.Same(t, c.ring2, c.ring2.next.next, "a cycle is copied as a cycle")
	assert.Equal(t, []int{9}, c.memo.memo, "a ddd tag inside a value is not the aggregate's: the value is copied whole")
	assert.NotSame(t, &a.memo.memo[0], &c.memo.memo[0])
	w := c.anys[0].(oneWord)
	assert.NotSame(t, a.anys[0].(oneWord).self, w.self)
	assert.Same(t, w.self, w.self.self)
	assert.NotSame(t, a.byKey["k"].next, c.byKey["k"].next)

	tr := tracking.NewTracker[*valueAgg]()
	require.NoError(t, tr.Attach(ctx, a), "Attach takes the snapshot")
	changed, err := tr.Changed(ctx, a)
	require.NoError(t, err)
	assert.False(t, changed, "right after Attach, nothing changed")

	for _, m := range []struct {
		name   string
		mutate func(a *valueAgg)
	}{
		{"in place behind a value's pointer", func(a *valueAgg) { a.price.mant.SetInt64(2000) }},
		{"in place inside a cycle", func(a *valueAgg) { a.ring2.next.n = 30 }},
		{"through a value's pointer to itself", func(a *valueAgg) { a.ring.next.n = 10 }},
		{"in a field tagged ddd:\"-\" inside a value", func(a *valueAgg) { a.memo.memo = append(a.memo.memo, 1) }},
	} {
		t.Run(m.name, func(t *testing.T) {
			a := newValueAgg()
			require.NoError(t, tr.Attach(ctx, a))
			m.mutate(a)
			changed, err := tr.Changed(ctx, a)
			require.NoError(t, err)
			assert.True(t, changed, "the snapshot shares nothing the change reached")
		})
	}

	// A func set in a value is shared by the copy.
	a.price.round = func(x *big.Int) *big.Int { return x }
	c, err = tracking.Copy(a)
	require.NoError(t, err)
	assert.NotNil(t, c.price.round)
}
