package tracking_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/tracking"
)

func TestScopeOnCommit(t *testing.T) {
	bg := context.Background()
	tr := tracking.NewTracker[*cart]()
	c := newCart(1)
	require.NoError(t, tr.Attach(bg, c))

	// Commit: the functions run in registration order, once the staged
	// snapshots are applied and the scope has ended.
	sc := tracking.NewScope()
	ctx := tracking.WithScope(bg, sc)
	c.owner = "bob"
	require.NoError(t, tr.Attach(ctx, c))
	var ran []string
	sc.OnCommit(func() {
		ran = append(ran, "first")
		changed, err := tr.Changed(bg, c)
		assert.NoError(t, err)
		assert.False(t, changed, "the snapshot is applied before the functions run")
		assert.True(t, sc.Done(), "the scope has ended")
		assert.NoError(t, tr.Pending(bg, c), "the aggregate is no longer pending: a function may save it outside the scope")
	})
	sc.OnCommit(func() { ran = append(ran, "second") })
	sc.OnCommit(nil) // ignored
	assert.Empty(t, ran, "nothing runs before the commit")
	sc.Commit()
	assert.Equal(t, []string{"first", "second"}, ran)
	sc.Commit()
	sc.Rollback()
	assert.Equal(t, []string{"first", "second"}, ran, "a finished scope runs nothing twice")

	// Registered after the commit: the changes are durable, f runs at once.
	sc.OnCommit(func() { ran = append(ran, "late") })
	assert.Equal(t, []string{"first", "second", "late"}, ran)

	// Rollback: nothing runs, then or later.
	sc = tracking.NewScope()
	ctx = tracking.WithScope(bg, sc)
	c.owner = "carl"
	require.NoError(t, tr.Attach(ctx, c))
	sc.OnCommit(func() { t.Error("ran after a rollback") })
	sc.Rollback()
	sc.Commit()
	sc.OnCommit(func() { t.Error("ran when registered on a rolled-back scope") })
	changed, err := tr.Changed(bg, c)
	require.NoError(t, err)
	assert.True(t, changed, "the rollback dropped the staged snapshot")
}

func TestInScopeOnCommitAtOutermostCommit(t *testing.T) {
	bg := context.Background()
	var ran int
	err := tracking.InScope(bg, func(ctx context.Context) error {
		err := tracking.InScope(ctx, func(ctx context.Context) error {
			sc, _ := tracking.FromContext(ctx)
			sc.OnCommit(func() { ran++ })
			return nil
		})
		assert.Zero(t, ran, "the nested call joined the outer scope: nothing is committed when it returns")
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, 1, ran, "run once, at the outer commit")

	err = tracking.InScope(bg, func(ctx context.Context) error {
		_ = tracking.InScope(ctx, func(ctx context.Context) error {
			sc, _ := tracking.FromContext(ctx)
			sc.OnCommit(func() { ran++ })
			return nil
		})
		return errors.New("the outer unit of work fails")
	})
	require.Error(t, err)
	assert.Equal(t, 1, ran, "the outer rollback drops what the nested call registered")

	assert.Panics(t, func() {
		_ = tracking.InScope(bg, func(ctx context.Context) error {
			sc, _ := tracking.FromContext(ctx)
			sc.OnCommit(func() { ran++ })
			panic("boom")
		})
	})
	assert.Equal(t, 1, ran, "a panic rolls back")
}

// TestScopeOnCommitRacesCommit registers functions while the scope
// commits: each runs exactly once, whether it was registered before the
// commit (run by Commit) or after (run at once).
func TestScopeOnCommitRacesCommit(t *testing.T) {
	const n = 200
	sc := tracking.NewScope()
	counts := make([]atomic.Int32, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			sc.OnCommit(func() { counts[i].Add(1) })
		})
	}
	wg.Go(func() {
		<-start
		sc.Commit()
	})
	close(start)
	wg.Wait()
	for i := range counts {
		assert.EqualValues(t, 1, counts[i].Load(), "function %d", i)
	}
}
