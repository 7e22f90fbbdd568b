package diff_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ring is a value compared with its Equal method whose insides may hold a
// pointer cycle.
type ring struct {
	n    int
	next *ring
}

func (r ring) Equal(o ring) bool { return r.n == o.n }

type withRing struct {
	Name string
	R    ring
}

// TestCompareEqualMethodIsOpaque checks that a type with an Equal method is
// compared by the method alone: diff does not walk into it, so a pointer
// cycle inside it is no error, as Copy accepts it.
func TestCompareEqualMethodIsOpaque(t *testing.T) {
	cyclic := func(n int) *withRing {
		w := &withRing{Name: "a", R: ring{n: n}}
		w.R.next = &w.R
		return w
	}
	tests := []struct {
		name     string
		reason   string
		old, new *withRing
		want     string
	}{{
		name:   "cycle inside, equal",
		reason: "the Equal method says equal; the cycle behind it is not looked at",
		old:    cyclic(1),
		new:    cyclic(1),
		want:   "no changes",
	}, {
		name:   "cycle inside, unequal",
		reason: "the Equal method says unequal: the value changes as a whole",
		old:    cyclic(1),
		new:    cyclic(2),
		want:   "R: {n:1 next:",
	}, {
		name:   "a long chain, equal",
		reason: "the method decides even when the chain behind it is deep and differs",
		old:    &withRing{R: ring{n: 1, next: &ring{n: 5}}},
		new:    &withRing{R: ring{n: 1, next: &ring{n: 6}}},
		want:   "no changes",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, eq, err, eqErr := compareBoth(tt.old, tt.new)
			require.NoError(t, err, tt.reason)
			require.NoError(t, eqErr, tt.reason)
			assert.Contains(t, r.String(), tt.want, tt.reason)
			assert.Equal(t, !r.Changed(), eq, tt.reason)
		})
	}
}

// yin and yang are values with Equal methods that hold each other.
type yin struct {
	n int
	y *yang
}

func (a yin) Equal(b yin) bool { return a.n == b.n }

type yang struct {
	n int
	y *yin
}

func (a yang) Equal(b yang) bool { return a.n == b.n }

type withYin struct{ Y yin }

// TestCompareMutuallyRecursiveValues: values with Equal methods that reach
// each other through pointers, in a cycle, are compared by their methods,
// whichever of the two types is met first.
func TestCompareMutuallyRecursiveValues(t *testing.T) {
	cyclic := func(n int) *withYin {
		w := &withYin{Y: yin{n: n}}
		w.Y.y = &yang{n: n, y: &w.Y}
		return w
	}
	r, eq, err, eqErr := compareBoth(cyclic(1), cyclic(1))
	require.NoError(t, err)
	require.NoError(t, eqErr)
	assert.False(t, r.Changed(), "equal by the method, the cycle behind it not looked at")
	assert.True(t, eq)

	r, eq, err, eqErr = compareBoth(cyclic(1), cyclic(2))
	require.NoError(t, err)
	require.NoError(t, eqErr)
	assert.True(t, r.Changed(), "unequal by the method")
	assert.False(t, eq)
}
