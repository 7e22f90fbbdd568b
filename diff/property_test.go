package diff_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/diff"
)

// genRoot is a type that exercises every kind Compare handles: unexported
// fields, floats, value objects, value and entity collections (nested, in
// slices and maps), pointers, maps (with NaN keys too), interfaces and
// times.
type genRoot struct {
	id      int64
	name    string
	score   float64
	flags   [3]bool
	tags    []string
	attrs   map[string]int
	weights map[float64]int
	addr    *genAddr
	where   genAddr
	blob    []byte
	when    time.Time
	extra   any
	lines   []*genLine
	byKey   map[int]*genLine
	skipped chan int `ddd:"-"`
	version int      `ddd:"version"`
}

type genAddr struct {
	Street string
	Zip    int32
	Geo    [2]float32
}

type genLine struct {
	ID    int `ddd:"id"`
	qty   int
	price float64
	notes []string
	subs  []genSub
	parts map[int]*genPart // keyed by the part's identity
}

type genPart struct {
	ID int `ddd:"id"`
	n  int
}

type genSub struct {
	key string `ddd:"id"`
	val int8
}

// gen builds a value from a seed: the same seed gives equal values that
// share no memory.
func gen(seed uint64) *genRoot {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	word := func() string { return []string{"", "a", "b", "héllo", "zz"}[r.IntN(5)] }
	fl := func() float64 {
		switch r.IntN(6) {
		case 0:
			return math.NaN()
		case 1:
			return 0
		}
		return float64(r.IntN(100)) / 4
	}
	g := &genRoot{
		id:      r.Int64N(1000),
		name:    word(),
		score:   fl(),
		flags:   [3]bool{r.IntN(2) == 0, r.IntN(2) == 0, r.IntN(2) == 0},
		where:   genAddr{Street: word(), Zip: r.Int32N(99), Geo: [2]float32{float32(fl()), 1}},
		when:    time.Unix(r.Int64N(1e9), 0),
		version: r.IntN(5),
	}
	if r.IntN(3) > 0 {
		for n := r.IntN(4); n > 0; n-- {
			g.tags = append(g.tags, word())
		}
	}
	if r.IntN(2) == 0 {
		g.attrs = map[string]int{}
		for n := r.IntN(4); n > 0; n-- {
			g.attrs[word()] = r.IntN(3)
		}
	}
	if r.IntN(2) == 0 {
		g.weights = map[float64]int{}
		for n := r.IntN(4); n > 0; n-- {
			g.weights[fl()] = r.IntN(3) // each NaN key is an entry of its own
		}
	}
	if r.IntN(2) == 0 {
		g.addr = &genAddr{Street: word(), Zip: r.Int32N(9)}
	}
	if r.IntN(2) == 0 {
		g.blob = []byte(word())
	}
	switch r.IntN(4) {
	case 1:
		g.extra = word()
	case 2:
		g.extra = &genAddr{Street: word()}
	case 3:
		g.extra = r.IntN(3)
	}
	for i := range r.IntN(6) {
		l := &genLine{ID: i * 10, qty: r.IntN(4), price: fl()}
		for n := r.IntN(3); n > 0; n-- {
			l.notes = append(l.notes, word())
		}
		for j := range r.IntN(3) {
			l.subs = append(l.subs, genSub{key: fmt.Sprint(j), val: int8(r.IntN(3))})
		}
		if r.IntN(2) == 0 {
			l.parts = map[int]*genPart{}
			for j := range r.IntN(3) {
				l.parts[j] = &genPart{ID: j, n: r.IntN(3)}
			}
		}
		g.lines = append(g.lines, l)
	}
	if r.IntN(2) == 0 {
		g.byKey = map[int]*genLine{}
		for i := range r.IntN(4) {
			g.byKey[i] = &genLine{ID: i, qty: r.IntN(3)}
		}
	}
	return g
}

// mutate applies n random edits to g. Some edits change nothing by the rules
// of Compare (a reorder of entities, a time in another zone, nil vs empty,
// a map rebuilt with the same NaN-keyed entries).
func mutate(g *genRoot, seed uint64, n int) {
	r := rand.New(rand.NewPCG(seed, 7))
	for range n {
		switch r.IntN(22) {
		case 0:
			g.name += "x"
		case 1:
			g.score = math.NaN()
		case 2:
			g.flags[r.IntN(3)] = !g.flags[r.IntN(3)]
		case 3:
			g.tags = append(g.tags, "t")
		case 4:
			if g.attrs == nil {
				g.attrs = map[string]int{}
			} else {
				g.attrs["k"]++
			}
		case 5:
			if g.addr != nil {
				g.addr.Zip++
			} else {
				g.addr = &genAddr{}
			}
		case 6:
			g.where.Geo[1] = float32(r.IntN(3))
		case 7:
			g.when = g.when.In(time.FixedZone("Z", 3600)) // the same instant
		case 8:
			g.extra = r.IntN(2)
		case 9:
			r.Shuffle(len(g.lines), func(i, j int) { g.lines[i], g.lines[j] = g.lines[j], g.lines[i] })
		case 10:
			if len(g.lines) > 0 {
				g.lines[r.IntN(len(g.lines))].qty++
			}
		case 11:
			g.lines = append(g.lines, &genLine{ID: 1000 + r.IntN(1000)})
		case 12:
			if len(g.lines) > 0 {
				i := r.IntN(len(g.lines))
				g.lines = append(g.lines[:i:i], g.lines[i+1:]...)
			}
		case 13:
			if len(g.lines) > 0 {
				l := g.lines[r.IntN(len(g.lines))]
				l.subs = append(l.subs, genSub{key: "n"})
			}
		case 14:
			if len(g.tags) == 0 {
				g.tags = []string{} // nil and empty are the same
			}
		case 15:
			g.version++ // not compared
		case 16:
			if g.weights == nil {
				g.weights = map[float64]int{}
			}
			g.weights[math.NaN()] = r.IntN(3) // one more NaN-keyed entry
		case 17:
			// The same entries in a new map, one value changed, maybe.
			bump := r.IntN(2) == 0
			m := make(map[float64]int, len(g.weights))
			for k, v := range g.weights {
				if bump && k != k {
					v, bump = v+1, false
				}
				m[k] = v
			}
			g.weights = m
		case 18:
			if len(g.lines) > 0 {
				l := g.lines[r.IntN(len(g.lines))]
				r.Shuffle(len(l.subs), func(i, j int) { l.subs[i], l.subs[j] = l.subs[j], l.subs[i] })
			}
		case 19:
			if len(g.lines) > 0 {
				for _, p := range g.lines[r.IntN(len(g.lines))].parts {
					p.n++
					break
				}
			}
		case 20:
			if len(g.lines) > 0 {
				l := g.lines[r.IntN(len(g.lines))]
				if l.parts == nil {
					l.parts = map[int]*genPart{}
				}
				id := 100 + r.IntN(3)
				l.parts[id] = &genPart{ID: id}
			}
		case 21:
			if len(g.lines) > 0 {
				l := g.lines[r.IntN(len(g.lines))]
				for k := range l.parts {
					delete(l.parts, k)
					break
				}
			}
		}
	}
}

// floatEntries compares maps with float keys by their entries, unless both
// are empty, which cmpopts.EquateEmpty compares.
var floatEntries = cmp.FilterValues(func(x, y map[float64]int) bool { return len(x)+len(y) > 0 },
	cmp.Transformer("entries", floatPairs))

// floatPair is an entry of a map[float64]int, for the oracle.
type floatPair struct {
	K float64
	V int
}

// floatPairs flattens a map with float keys, NaNs included, into its
// entries in order: go-cmp cannot compare maps with NaN keys.
func floatPairs(m map[float64]int) []floatPair {
	if m == nil {
		return nil
	}
	out := make([]floatPair, 0, len(m))
	for k, v := range m {
		out = append(out, floatPair{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if na, nb := a.K != a.K, b.K != b.K; na || nb {
			if na && nb {
				return a.V < b.V // NaN keys, by value
			}
			return na // NaNs first
		}
		return a.K < b.K
	})
	return out
}

// oracle tells whether a and b are equal by go-cmp, set up with the rules of
// package diff: unexported fields compared, Equal methods used, NaNs equal,
// nil equal to empty, entities matched by identity in any order, ignored and
// version fields skipped.
func oracle(a, b *genRoot) bool {
	return cmp.Equal(a, b,
		cmp.Exporter(func(reflect.Type) bool { return true }),
		cmpopts.EquateNaNs(),
		cmpopts.EquateEmpty(),
		floatEntries,
		cmpopts.SortSlices(func(x, y *genLine) bool { return x.ID < y.ID }),
		cmpopts.SortSlices(func(x, y genSub) bool { return x.key < y.key }),
		cmpopts.IgnoreFields(genRoot{}, "skipped", "version"),
	)
}

// hasDuplicates reports whether a mutation created two lines or subs with
// one identity, which Compare rightly refuses.
func hasDuplicates(g *genRoot) bool {
	seen := map[int]bool{}
	for _, l := range g.lines {
		if seen[l.ID] {
			return true
		}
		seen[l.ID] = true
		subs := map[string]bool{}
		for _, s := range l.subs {
			if subs[s.key] {
				return true
			}
			subs[s.key] = true
		}
	}
	return false
}

func checkProperties(t *testing.T, seed, mseed uint64, n int) {
	t.Helper()
	a := gen(seed)

	// A value compared with an equal, separately built value is unchanged.
	r, err := diff.Compare(a, gen(seed))
	require.NoError(t, err)
	require.False(t, r.Changed(), "seed %d: a value differs from its twin:\n%s", seed, r)
	r, err = diff.Compare(a, a)
	require.NoError(t, err)
	require.False(t, r.Changed(), "a value diffed against itself is empty")

	b := gen(seed)
	mutate(b, mseed, n)
	if hasDuplicates(b) {
		_, err := diff.Compare(a, b)
		require.ErrorIs(t, err, diff.ErrDuplicateID)
		return
	}
	r, err = diff.Compare(a, b)
	require.NoError(t, err)
	want := oracle(a, b)
	require.Equal(t, want, !r.Changed(), "seed %d/%d: go-cmp equal=%v, diff:\n%s\ncmp diff:\n%s", seed, mseed, want, r,
		cmp.Diff(a, b, cmp.Exporter(func(reflect.Type) bool { return true }), cmpopts.EquateNaNs(), cmpopts.EquateEmpty(), floatEntries))
	eq, err := diff.Equal(a, b)
	require.NoError(t, err)
	require.Equal(t, want, eq, "Equal agrees with go-cmp")
}

func TestPropertiesAgainstGoCmp(t *testing.T) {
	for seed := uint64(0); seed < 1000; seed++ {
		checkProperties(t, seed, seed*31+1, int(seed%4))
	}
}

func FuzzCompare(f *testing.F) {
	f.Add(uint64(1), uint64(2), uint8(0))
	f.Add(uint64(3), uint64(4), uint8(1))
	f.Add(uint64(42), uint64(9), uint8(3))
	f.Add(uint64(7), uint64(7), uint8(8))
	f.Fuzz(func(t *testing.T, seed, mseed uint64, n uint8) {
		checkProperties(t, seed, mseed, int(n%10))
	})
}
