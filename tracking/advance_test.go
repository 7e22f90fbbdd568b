package tracking

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/diff"
)

// mutateOrder applies n random business changes to o.
func mutateOrder(o *Order, r *rand.Rand, n int) {
	for range n {
		switch r.IntN(9) {
		case 0:
			if len(o.items) > 0 {
				o.items[r.IntN(len(o.items))].quantity++
			}
		case 1:
			o.items = append(o.items, &OrderItem{id: itemID(10_000 + r.IntN(1_000_000)), name: "new", quantity: 1})
		case 2:
			if len(o.items) > 0 {
				i := r.IntN(len(o.items))
				o.items = append(o.items[:i:i], o.items[i+1:]...)
			}
		case 3:
			r.Shuffle(len(o.items), func(i, j int) { o.items[i], o.items[j] = o.items[j], o.items[i] })
		case 4:
			o.recipient.Phone += "9"
		case 5:
			o.total++
		case 6:
			o.items = nil
		case 7:
			if len(o.items) > 0 {
				it := *o.items[0]
				it.name = "replaced"
				o.items[0] = &it // same identity, new object
			}
		case 8:
			o.status = "shipped"
		}
	}
}

func hasDupItems(o *Order) bool {
	seen := map[itemID]bool{}
	for _, it := range o.items {
		if seen[it.id] {
			return true
		}
		seen[it.id] = true
	}
	return false
}

// TestNext checks that a snapshot built from the previous one and the
// diff equals a fresh copy, shares nothing with the aggregate, and leaves
// the previous snapshot untouched, over chains of random saves.
func TestNext(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 1))
		o := newOrder(r.IntN(20))
		tr := NewTracker[*Order]()
		require.NoError(t, tr.Attach(ctx, o))
		for range 5 {
			mutateOrder(o, r, 1+r.IntN(3))
			if hasDupItems(o) {
				break
			}
			snap, err := tr.Snapshot(ctx, o)
			require.NoError(t, err)
			before, err := Copy(snap)
			require.NoError(t, err)
			d, err := diff.Compare(snap, o)
			require.NoError(t, err)
			o.version++ // as a repository does
			advanceFrom(t, ctx, tr, o, snap, d)

			next, err := tr.Snapshot(ctx, o)
			require.NoError(t, err)
			checkSnapshot(t, o, next)
			if dd := cmpDiff(before, snap); dd != "" {
				t.Fatalf("seed %d: the previous snapshot changed:\n%s", seed, dd)
			}
			changed, err := tr.Changed(ctx, o)
			require.NoError(t, err)
			require.False(t, changed)
		}
	}
}

func TestNextInScope(t *testing.T) {
	bg := context.Background()
	o := newOrder(3)
	tr := NewTracker[*Order]()
	require.NoError(t, tr.Attach(bg, o))
	o.items[1].quantity = 9
	snap, _ := tr.Snapshot(bg, o)
	d, err := diff.Compare(snap, o)
	require.NoError(t, err)

	sc := NewScope()
	advanceFrom(t, WithScope(bg, sc), tr, o, snap, d)
	changed, _ := tr.Changed(bg, o)
	require.True(t, changed, "staged until the scope commits")
	sc.Commit()
	changed, _ = tr.Changed(bg, o)
	require.False(t, changed)
}

func cmpDiff[T any](a, b T) string { return cmp.Diff(a, b, cmpOpts...) }

func advanceFrom(t *testing.T, ctx context.Context, tr *Tracker[*Order], o, snap *Order, d diff.Result) {
	t.Helper()
	next, err := tr.Prepare(o, snap, d)
	require.NoError(t, err)
	require.NoError(t, next.Commit(ctx))
}

// checkSnapshot checks that snap equals o by the rules of package diff (a
// reorder of entities is no change) and shares no mutable memory with it.
func checkSnapshot(t *testing.T, o, snap *Order) {
	t.Helper()
	eq, err := diff.Equal(snap, o)
	require.NoError(t, err)
	if !eq {
		r, _ := diff.Compare(snap, o)
		t.Fatalf("the snapshot differs from the aggregate:\n%s", r)
	}
	require.Equal(t, o.version, snap.version, "the version follows the aggregate")
	require.NotSame(t, o, snap)
	live := map[*OrderItem]bool{}
	for _, it := range o.items {
		live[it] = true
	}
	for _, it := range snap.items {
		require.False(t, live[it], "the snapshot shares item %d with the aggregate", it.id)
	}
	if len(o.items) > 0 && len(snap.items) > 0 {
		require.NotSame(t, &o.items[0], &snap.items[0], "the snapshot shares the items' backing array")
	}
}

func TestNextManyModified(t *testing.T) {
	ctx := context.Background()
	o := newOrder(50)
	tr := NewTracker[*Order]()
	require.NoError(t, tr.Attach(ctx, o))
	for _, it := range o.items {
		it.quantity += 10 // more changes than a linear search is used for
	}
	o.items[3], o.items[7] = o.items[7], o.items[3]
	snap, _ := tr.Snapshot(ctx, o)
	d, err := diff.Compare(snap, o)
	require.NoError(t, err)
	require.Len(t, d.Collection("items"), 50)
	advanceFrom(t, ctx, tr, o, snap, d)
	next, _ := tr.Snapshot(ctx, o)
	checkSnapshot(t, o, next)
}

// TestCopyPointerToInterface copies a pointer to an interface: the copy is a
// new interface cell holding a copy of the value, and the original is left
// as it was.
func TestCopyPointerToInterface(t *testing.T) {
	var x any = []int{1, 2, 3}
	c, err := Copy(&x)
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3}, *c)
	require.Equal(t, []int{1, 2, 3}, x, "the original is unchanged")
	(*c).([]int)[0] = 9
	require.Equal(t, 1, x.([]int)[0], "the copy shares no memory with it")

	type node struct {
		_ [0]func() // pointer-shaped in an interface since Go 1.26, not a pointer
		p *int
	}
	n := 5
	var y any = node{p: &n}
	cy, err := Copy(&y)
	require.NoError(t, err)
	require.Equal(t, 5, *(*cy).(node).p)
	require.NotSame(t, &n, (*cy).(node).p)
}

// A board of columns of cards: entity collections two levels deep.
type board struct {
	id      int
	columns []*column
}

type column struct {
	id    int `ddd:"id"`
	title string
	cards []*card
}

type card struct {
	id   int `ddd:"id"`
	text string
	tags []string
}

// TestPrepareNested checks the snapshot prepared after a change two levels
// down: it equals the aggregate, shares no memory with it, and shares the
// unchanged cards of the changed column with the old snapshot, which no
// one changes, instead of copying them again.
func TestPrepareNested(t *testing.T) {
	var tr Tracker[*board]
	ctx := context.Background()
	b := &board{id: 1}
	for c := range 3 {
		col := &column{id: c, title: "col"}
		for k := range 50 {
			col.cards = append(col.cards, &card{id: k, text: "t", tags: []string{"a"}})
		}
		b.columns = append(b.columns, col)
	}
	require.NoError(t, tr.Attach(ctx, b))
	old, err := tr.Snapshot(ctx, b)
	require.NoError(t, err)

	b.columns[1].cards[7].text = "changed"
	b.columns[1].cards[7].tags[0] = "b"
	d, err := diff.Compare(old, b)
	require.NoError(t, err)
	p, err := tr.Prepare(b, old, d)
	require.NoError(t, err)
	next := p.Snapshot()

	eq, err := diff.Equal(next, b)
	require.NoError(t, err)
	require.True(t, eq, "the prepared snapshot equals the aggregate")
	require.Same(t, old.columns[0], next.columns[0], "an unchanged column is shared with the old snapshot")
	require.NotSame(t, old.columns[1], next.columns[1], "the changed column is new")
	require.Same(t, old.columns[1].cards[6], next.columns[1].cards[6], "an unchanged card of the changed column is shared with the old snapshot")
	require.NotSame(t, b.columns[1].cards[7], next.columns[1].cards[7], "the changed card is a copy")

	// No memory is shared with the live aggregate.
	b.columns[1].cards[7].tags[0] = "c"
	b.columns[1].cards[6].text = "live"
	require.Equal(t, "b", next.columns[1].cards[7].tags[0])
	require.Equal(t, "t", next.columns[1].cards[6].text)
	require.Equal(t, "a", old.columns[1].cards[7].tags[0], "the old snapshot is untouched")
}
