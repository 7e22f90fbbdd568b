package diff_test

import (
	"errors"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/internal/typeinfo"
)

// list returns a linked list of n nodes whose last node is named last.
func list(n int, last string) *node {
	var head *node
	for i := range n {
		name := "x"
		if i == 0 {
			name = last
		}
		head = &node{Name: name, Next: head}
	}
	return head
}

// allocBytes returns the bytes f allocates, the least of a few runs.
func allocBytes(f func()) uint64 {
	best := ^uint64(0)
	for range 3 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		best = min(best, after.TotalAlloc-before.TotalAlloc)
	}
	return best
}

// TestCompareMemoryIsLinearInDepth checks that comparing values that differ
// deep inside allocates in proportion to their depth, not to its square:
// the path to the current value is not copied at every level.
func TestCompareMemoryIsLinearInDepth(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation measurements")
	}
	measure := func(depth int) uint64 {
		a, b := list(depth, "end"), list(depth, "END")
		return allocBytes(func() {
			r, err := diff.Compare(a, b)
			if err != nil || !r.Changed() {
				t.Fatalf("depth %d: want a change, got %v, %v", depth, r.Changed(), err)
			}
		})
	}
	small, large := measure(2000), measure(4000)
	t.Logf("2,000 levels: %d bytes; 4,000 levels: %d bytes", small, large)
	assert.Less(t, large, 3*small, "twice as deep must cost about twice as much memory, not four times")

	eqSmall := allocBytes(func() { _, _ = diff.Equal(list(2000, "a"), list(2000, "b")) })
	eqLarge := allocBytes(func() { _, _ = diff.Equal(list(4000, "a"), list(4000, "b")) })
	assert.Less(t, eqLarge, 3*eqSmall, "Equal, lists included, grows linearly too")
}

// TestCompareDepthLimit checks that values nested more than
// typeinfo.MaxDepth deep are refused with ErrUnsupported, as Copy refuses
// them, and that values just within the limit are compared, on the default
// goroutine stack.
func TestCompareDepthLimit(t *testing.T) {
	tests := []struct {
		name    string
		reason  string
		depth   int
		long    bool
		tooDeep bool
	}{
		{"at the limit", "a list of MaxDepth nodes is within the limit, and the stack holds it", typeinfo.MaxDepth, false, false},
		{"just under the limit", "well within the limit: compared as usual", typeinfo.MaxDepth - 10, false, false},
		{"one past the limit", "one more node than MaxDepth is refused, not walked", typeinfo.MaxDepth + 1, false, true},
		{"far past the limit", "a list deep enough to overflow the stack is refused, not a fatal error", 2_000_000, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.long && testing.Short() {
				t.Skip("builds a very deep list")
			}
			end := list(tt.depth, "end")
			for _, other := range []struct {
				last    string
				changed bool
			}{{"end", false}, {"END", true}} {
				b := list(tt.depth, other.last)
				r, err := diff.Compare(end, b)
				eq, eqErr := diff.Equal(end, b)
				if tt.tooDeep {
					require.Error(t, err, tt.reason)
					assert.ErrorIs(t, err, diff.ErrUnsupported, tt.reason)
					var de *diff.Error
					assert.True(t, errors.As(err, &de), "a *diff.Error: %s", tt.reason)
					assert.ErrorIs(t, eqErr, diff.ErrUnsupported, tt.reason)
					assert.False(t, eq, "Equal reports false with its error: %s", tt.reason)
					assert.Less(t, len(err.Error()), 2000, "the message of a deep path is kept short")
					continue
				}
				require.NoError(t, err, tt.reason)
				require.NoError(t, eqErr, tt.reason)
				assert.Equal(t, other.changed, r.Changed(), tt.reason)
				assert.Equal(t, !other.changed, eq, tt.reason)
				if other.changed {
					require.Len(t, r.Fields, 1, tt.reason)
					assert.Len(t, r.Fields[0].Path, tt.depth, "the change is at the far end: %s", tt.reason)
				}
			}
		})
	}
}
