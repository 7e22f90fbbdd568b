package tracking_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/tracking"
)

type cart struct {
	id      int
	owner   string
	lines   []*cartLine
	version int `ddd:"version"`
}

func (c *cart) ID() int { return c.id }

type cartLine struct {
	sku string `ddd:"id"`
	qty int
}

func newCart(id int) *cart {
	return &cart{id: id, owner: "ann", lines: []*cartLine{{sku: "a", qty: 1}, {sku: "b", qty: 2}}}
}

func TestTrackerLifecycle(t *testing.T) {
	ctx := context.Background()
	tr := tracking.NewTracker[*cart]()
	c := newCart(1)

	_, err := tr.Changes(ctx, c)
	require.ErrorIs(t, err, tracking.ErrNotTracked, "an aggregate never attached has no snapshot")

	require.NoError(t, tr.Attach(ctx, c))
	assert.True(t, tr.Tracked(ctx, c))
	assert.Equal(t, 1, tr.Len())
	r, err := tr.Changes(ctx, c)
	require.NoError(t, err)
	assert.False(t, r.Changed(), "just attached: nothing changed")

	c.lines[1].qty = 5
	r, err = tr.Changes(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, "lines[id=b]: modified\nlines[id=b].qty: 2 -> 5", r.String(),
		"the snapshot is a deep copy: changing the child does not change the snapshot")
	changed, err := tr.Changed(ctx, c)
	require.NoError(t, err)
	assert.True(t, changed)

	require.NoError(t, tr.Attach(ctx, c))
	r, err = tr.Changes(ctx, c)
	require.NoError(t, err)
	assert.False(t, r.Changed(), "after Advance the snapshot is the saved state")

	tr.Detach(ctx, c)
	assert.False(t, tr.Tracked(ctx, c))
	assert.Equal(t, 0, tr.Len())
	tr.Detach(ctx, c) // detaching twice does nothing
}

func TestTrackerRejectsNonPointer(t *testing.T) {
	tr := tracking.NewTracker[cart]()
	err := tr.Attach(context.Background(), cart{})
	require.ErrorIs(t, err, diff.ErrUnsupported)

	tp := tracking.NewTracker[*cart]()
	require.ErrorIs(t, tp.Attach(context.Background(), nil), diff.ErrUnsupported, "a nil aggregate is an error, not a panic")
}

func TestScopeCommitAndRollback(t *testing.T) {
	bg := context.Background()
	tr := tracking.NewTracker[*cart]()
	c := newCart(1)
	require.NoError(t, tr.Attach(bg, c))
	c.owner = "bob"

	// A save in a scope that rolls back: the snapshot must not advance, so
	// that a retry sends the same change again.
	sc := tracking.NewScope()
	ctx := tracking.WithScope(bg, sc)
	require.NoError(t, tr.Attach(ctx, c))
	r, err := tr.Changes(ctx, c)
	require.NoError(t, err)
	assert.False(t, r.Changed(), "inside the scope, the staged snapshot is current: a second save in the same unit of work sends nothing twice")
	r, err = tr.Changes(bg, c)
	require.NoError(t, err)
	assert.True(t, r.Changed(), "outside the scope, the committed snapshot is still the old one")
	sc.Rollback()
	assert.True(t, sc.Done())

	r, err = tr.Changes(bg, c)
	require.NoError(t, err)
	assert.Equal(t, `owner: "ann" -> "bob"`, r.String(), "after a rollback the same change is found again")

	// The retry commits.
	sc = tracking.NewScope()
	ctx = tracking.WithScope(bg, sc)
	require.NoError(t, tr.Attach(ctx, c))
	sc.Commit()
	sc.Rollback() // a finished scope ignores later calls
	r, err = tr.Changes(bg, c)
	require.NoError(t, err)
	assert.False(t, r.Changed(), "after the commit the snapshot advanced")
}

func TestScopeStagesAttachAndDetach(t *testing.T) {
	bg := context.Background()
	tr := tracking.NewTracker[*cart]()

	sc := tracking.NewScope()
	ctx := tracking.WithScope(bg, sc)
	c := newCart(1)
	require.NoError(t, tr.Attach(ctx, c))
	assert.True(t, tr.Tracked(ctx, c), "attached in the scope")
	assert.False(t, tr.Tracked(bg, c), "not yet outside it")
	sc.Rollback()
	assert.False(t, tr.Tracked(bg, c), "an insert rolled back leaves the aggregate untracked, so that a retry inserts it again")

	d := newCart(2)
	require.NoError(t, tr.Attach(bg, d))
	sc = tracking.NewScope()
	ctx = tracking.WithScope(bg, sc)
	tr.Detach(ctx, d)
	assert.False(t, tr.Tracked(ctx, d))
	assert.True(t, tr.Tracked(bg, d))
	sc.Commit()
	assert.False(t, tr.Tracked(bg, d), "a remove committed detaches")
}

func TestScopeOnRollback(t *testing.T) {
	sc := tracking.NewScope()
	var order []int
	sc.OnRollback(func() { order = append(order, 1) })
	sc.OnRollback(func() { order = append(order, 2) })
	sc.Rollback()
	assert.Equal(t, []int{2, 1}, order, "undo runs in reverse order")

	sc = tracking.NewScope()
	sc.OnRollback(func() { t.Fatal("must not run on commit") })
	sc.Commit()
	sc.Rollback()
}

func TestInScope(t *testing.T) {
	bg := context.Background()
	tr := tracking.NewTracker[*cart]()
	c := newCart(1)
	require.NoError(t, tr.Attach(bg, c))
	c.owner = "bob"

	err := tracking.InScope(bg, func(ctx context.Context) error {
		require.NoError(t, tr.Attach(ctx, c))
		return fmt.Errorf("business rule failed")
	})
	require.Error(t, err)
	changed, err := tr.Changed(bg, c)
	require.NoError(t, err)
	assert.True(t, changed, "an error rolls the scope back")

	assert.Panics(t, func() {
		_ = tracking.InScope(bg, func(ctx context.Context) error {
			_ = tr.Attach(ctx, c)
			panic("boom")
		})
	})
	changed, _ = tr.Changed(bg, c)
	assert.True(t, changed, "a panic rolls the scope back")

	require.NoError(t, tracking.InScope(bg, func(ctx context.Context) error {
		return tracking.InScope(ctx, func(inner context.Context) error {
			s1, _ := tracking.FromContext(ctx)
			s2, _ := tracking.FromContext(inner)
			assert.Same(t, s1, s2, "a nested call joins the outer scope")
			return tr.Attach(inner, c)
		})
	}))
	changed, _ = tr.Changed(bg, c)
	assert.False(t, changed, "committed")
}

func TestIdentityMap(t *testing.T) {
	bg := context.Background()
	c := newCart(7)
	tracking.Remember(bg, 7, c)
	_, ok := tracking.Lookup[*cart](bg, 7)
	assert.False(t, ok, "without a scope there is no identity map")

	ctx := tracking.WithScope(bg, tracking.NewScope())
	tracking.Remember(ctx, 7, c)
	got, ok := tracking.Lookup[*cart](ctx, 7)
	require.True(t, ok)
	assert.Same(t, c, got)
	_, ok = tracking.Lookup[*cart](ctx, int64(7))
	assert.False(t, ok, "an identity of another type is another key")
	_, ok = tracking.Lookup[*otherCart](ctx, 7)
	assert.False(t, ok, "identity maps are per aggregate type")
	tracking.Forget[*cart](ctx, 7)
	_, ok = tracking.Lookup[*cart](ctx, 7)
	assert.False(t, ok)
}

type otherCart struct{ id int }

func TestZeroTracker(t *testing.T) {
	var tr tracking.Tracker[*cart]
	c := newCart(1)
	require.NoError(t, tr.Attach(context.Background(), c))
	assert.Equal(t, 1, tr.Len())
	changed, err := tr.Changed(context.Background(), c)
	require.NoError(t, err)
	assert.False(t, changed)
}

func TestZeroPrepared(t *testing.T) {
	var p tracking.Prepared[*cart]
	assert.ErrorIs(t, p.Commit(context.Background()), diff.ErrUnsupported)
}

// TestSnapshotsAreReleased tracks many aggregates, drops them without
// detaching, and checks the tracker lets their snapshots go.
func TestSnapshotsAreReleased(t *testing.T) {
	const n = 100_000
	ctx := context.Background()
	tr := tracking.NewTracker[*cart]()
	func() {
		carts := make([]*cart, n)
		for i := range carts {
			carts[i] = newCart(i)
			require.NoError(t, tr.Attach(ctx, carts[i]))
		}
		require.Equal(t, n, tr.Len())
		runtime.KeepAlive(carts)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for tr.Len() > 0 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	assert.Zero(t, tr.Len(), "unreachable aggregates have their snapshots released")

	// A live aggregate keeps its snapshot through collections.
	live := newCart(1)
	require.NoError(t, tr.Attach(ctx, live))
	runtime.GC()
	runtime.GC()
	assert.True(t, tr.Tracked(ctx, live))
	runtime.KeepAlive(live)
}

func TestTrackerConcurrentUse(t *testing.T) {
	bg := context.Background()
	tr := tracking.NewTracker[*cart]()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				c := newCart(g*1000 + i)
				if err := tr.Attach(bg, c); err != nil {
					t.Error(err)
					return
				}
				c.lines[0].qty++
				r, err := tr.Changes(bg, c)
				if err != nil || !r.Changed() {
					t.Errorf("want a change, got %v, %v", r, err)
					return
				}
				ctx := tracking.WithScope(bg, tracking.NewScope())
				if err := tr.Attach(ctx, c); err != nil {
					t.Error(err)
				}
				sc, _ := tracking.FromContext(ctx)
				sc.Commit()
				if changed, _ := tr.Changed(bg, c); changed {
					t.Error("committed advance not applied")
				}
				tr.Detach(bg, c)
			}
		}()
	}
	wg.Wait()
	assert.Zero(t, tr.Len())
}

func TestShared(t *testing.T) {
	a, b := tracking.Shared[*cart](), tracking.Shared[*cart]()
	assert.Same(t, a, b, "one tracker per type")
	assert.NotSame(t, any(a), any(tracking.Shared[*otherCart]()))
	c := newCart(1)
	require.NoError(t, a.Attach(context.Background(), c))
	assert.True(t, b.Tracked(context.Background(), c))
	b.Detach(context.Background(), c)
}

// TestSnapshotWhileAttaching reads the snapshot of an aggregate while
// another goroutine attaches it again: under -race, the read and the
// replacement must not race.
func TestSnapshotWhileAttaching(t *testing.T) {
	var tr tracking.Tracker[*cart]
	c := newCart(1)
	ctx := context.Background()
	require.NoError(t, tr.Attach(ctx, c))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			_ = tr.Attach(ctx, c)
		}
	}()
	for range 200 {
		changed, err := tr.Changed(ctx, c)
		require.NoError(t, err)
		assert.False(t, changed)
	}
	<-done
}

// TestInScopeGoexit: a function that ends its goroutine with runtime.Goexit
// (as t.FailNow does) rolls its scope back.
func TestInScopeGoexit(t *testing.T) {
	var tr tracking.Tracker[*cart]
	c := newCart(1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tracking.InScope(context.Background(), func(ctx context.Context) error {
			_ = tr.Attach(ctx, c)
			runtime.Goexit()
			return nil
		})
	}()
	<-done
	assert.False(t, tr.Tracked(context.Background(), c), "staged work of an ended goroutine is not committed")
}

func TestPending(t *testing.T) {
	bg := context.Background()
	tr := tracking.NewTracker[*cart]()
	c, d := newCart(1), newCart(2)
	require.NoError(t, tr.Attach(bg, c))
	require.NoError(t, tr.Pending(bg, c), "attached outside any scope")

	sc := tracking.NewScope()
	ctx := tracking.WithScope(bg, sc)
	c.owner = "bob"
	require.NoError(t, tr.Attach(ctx, c))
	require.NoError(t, tr.Attach(ctx, d))
	assert.NoError(t, tr.Pending(ctx, c), "in its own scope")
	assert.ErrorIs(t, tr.Pending(bg, c), tracking.ErrUnfinished, "outside it, until it ends")
	assert.ErrorIs(t, tr.Pending(tracking.WithScope(bg, tracking.NewScope()), d), tracking.ErrUnfinished, "in another scope")
	snap, err := tr.Snapshot(bg, c)
	require.NoError(t, err)
	assert.Equal(t, "ann", snap.owner, "the committed snapshot is still readable")
	sc.Commit()
	assert.NoError(t, tr.Pending(bg, c))
	assert.NoError(t, tr.Pending(bg, d))

	sc = tracking.NewScope()
	tr.Detach(tracking.WithScope(bg, sc), c)
	assert.ErrorIs(t, tr.Pending(bg, c), tracking.ErrUnfinished)
	sc.Rollback()
	assert.NoError(t, tr.Pending(bg, c), "a rollback ends it too")
	assert.True(t, tr.Tracked(bg, c))
}
