package diff_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/diff"
)

// genRoot is a type that exercises every kind Compare handles: unexported
// fields, floats, value objects, value and entity collections (nested),
// pointers, maps, interfaces and times.
type genRoot struct {
	id      int64
	name    string
	score   float64
	flags   [3]bool
	tags    []string
	attrs   map[string]int
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
// of Compare (a reorder of entities, a time in another zone, nil vs empty).
func mutate(g *genRoot, seed uint64, n int) {
	r := rand.New(rand.NewPCG(seed, 7))
	for range n {
		switch r.IntN(16) {
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
		}
	}
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
		cmp.Diff(a, b, cmp.Exporter(func(reflect.Type) bool { return true }), cmpopts.EquateNaNs(), cmpopts.EquateEmpty()))
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
