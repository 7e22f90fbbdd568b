package diff_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/diff"
)

type nanKey struct {
	F float64
	S string
}

type nanMaps struct {
	Floats  map[float64]int
	Anys    map[any]int
	Structs map[nanKey]string
	Nested  map[float32][]float64
}

// TestCompareNaNMapKeys checks that maps with NaN keys, which Go cannot look
// up, compare by the rule "NaN equals NaN": their NaN-keyed entries are
// paired in any order, by key and value.
func TestCompareNaNMapKeys(t *testing.T) {
	nan := math.NaN()
	nan32 := float32(math.NaN())
	tests := []struct {
		name     string
		reason   string
		old, new nanMaps
		changed  bool
	}{{
		name:   "float key",
		reason: "a map with a NaN key equals its copy, so a value holding one is not changed forever",
		old:    nanMaps{Floats: map[float64]int{nan: 1, 2: 2}},
		new:    nanMaps{Floats: map[float64]int{nan: 1, 2: 2}},
	}, {
		name:   "interface key",
		reason: "a NaN held by an interface key is a NaN key too",
		old:    nanMaps{Anys: map[any]int{nan: 1, "a": 2}},
		new:    nanMaps{Anys: map[any]int{nan: 1, "a": 2}},
	}, {
		name:   "struct key",
		reason: "a key holding a NaN field is never found by lookup either",
		old:    nanMaps{Structs: map[nanKey]string{{nan, "a"}: "x", {1, "b"}: "y"}},
		new:    nanMaps{Structs: map[nanKey]string{{nan, "a"}: "x", {1, "b"}: "y"}},
	}, {
		name:   "float32 key, slice value",
		reason: "a float32 NaN key is matched too, and its value compared by the rules of its type",
		old:    nanMaps{Floats: map[float64]int{nan: 1}, Nested: map[float32][]float64{nan32: {1}}},
		new:    nanMaps{Floats: map[float64]int{nan: 1}, Nested: map[float32][]float64{nan32: {1}}},
	}, {
		name:    "NaN-keyed value changed",
		reason:  "the value under a NaN key is compared",
		old:     nanMaps{Floats: map[float64]int{nan: 1, 2: 2}},
		new:     nanMaps{Floats: map[float64]int{nan: 3, 2: 2}},
		changed: true,
	}, {
		name:    "NaN key replaced by a number",
		reason:  "a NaN key and a number key are different keys",
		old:     nanMaps{Floats: map[float64]int{nan: 1, 2: 2}},
		new:     nanMaps{Floats: map[float64]int{3: 1, 2: 2}},
		changed: true,
	}, {
		name:    "number key replaced by a NaN",
		reason:  "the same, the other way round: the NaN of the new map must be matched too",
		old:     nanMaps{Floats: map[float64]int{3: 1, 2: 2}},
		new:     nanMaps{Floats: map[float64]int{nan: 1, 2: 2}},
		changed: true,
	}, {
		name:    "NaN of another type",
		reason:  "an interface key holding a float32 NaN is not a float64 NaN",
		old:     nanMaps{Anys: map[any]int{nan: 1}},
		new:     nanMaps{Anys: map[any]int{nan32: 1}},
		changed: true,
	}, {
		name:    "struct key with NaN, other field changed",
		reason:  "NaN keys are paired by their whole key, not only by being NaN",
		old:     nanMaps{Structs: map[nanKey]string{{nan, "a"}: "x"}},
		new:     nanMaps{Structs: map[nanKey]string{{nan, "b"}: "x"}},
		changed: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, eq, err, eqErr := compareBoth(&tt.old, &tt.new)
			require.NoError(t, err, tt.reason)
			require.NoError(t, eqErr, tt.reason)
			assert.Equal(t, tt.changed, r.Changed(), "%s\n%s", tt.reason, r)
			assert.Equal(t, !tt.changed, eq, "Equal agrees: %s", tt.reason)
		})
	}
}

// TestCompareNaNMapKeysMultiset checks maps with several NaN keys, which a
// literal cannot build: each assignment of a NaN key adds an entry.
func TestCompareNaNMapKeysMultiset(t *testing.T) {
	build := func(vals ...int) map[float64]int {
		m := map[float64]int{0: -1}
		for _, v := range vals {
			m[math.NaN()] = v
		}
		return m
	}
	tests := []struct {
		name     string
		reason   string
		old, new []int
		changed  bool
	}{
		{"same values", "the same NaN-keyed values, inserted in the same order", []int{1, 2, 2}, []int{1, 2, 2}, false},
		{"other order", "iteration order of NaN keys means nothing: values are paired in any order", []int{1, 2, 3}, []int{3, 1, 2}, false},
		{"one value differs", "as many entries, but one value has no partner", []int{1, 2, 2}, []int{1, 2, 3}, true},
		{"multiplicity differs", "a multiset: two 2s are not a 2 and a 1", []int{1, 2, 2}, []int{1, 1, 2}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, new := &nanMaps{Floats: build(tt.old...)}, &nanMaps{Floats: build(tt.new...)}
			r, eq, err, eqErr := compareBoth(old, new)
			require.NoError(t, err, tt.reason)
			require.NoError(t, eqErr, tt.reason)
			assert.Equal(t, tt.changed, r.Changed(), "%s\n%s", tt.reason, r)
			assert.Equal(t, !tt.changed, eq, "Equal agrees: %s", tt.reason)
			if tt.changed {
				_, ok := r.Field("Floats")
				assert.True(t, ok, "the map changes as a whole: %s", tt.reason)
			}
		})
	}
	m := build(1, 2)
	eq, err := diff.Equal(m, m)
	require.NoError(t, err)
	assert.True(t, eq, "a map with NaN keys equals itself")
}
