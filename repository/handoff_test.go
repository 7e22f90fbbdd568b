package repository_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/internal/handoff"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/tracking"
)

// keeper holds one order it never hands out, and returns copies of it,
// offering the kept one as their snapshot, as a cache's near hit does.
type keeper struct {
	kept *memOrder
	// offerFor, when set, is offered for instead of what Select returns.
	offerFor func(*memOrder) any
}

func (k *keeper) OffersSnapshots() {}

func (k *keeper) Select(ctx context.Context, _ memOrderID) (*memOrder, error) {
	out, err := tracking.Copy(k.kept)
	if err != nil {
		return nil, err
	}
	var agg any = out
	if k.offerFor != nil {
		agg = k.offerFor(out)
	}
	handoff.Offer(ctx, k, agg, k.kept)
	return out, nil
}
func (k *keeper) Insert(context.Context, *memOrder) error                     { return nil }
func (k *keeper) Update(context.Context, *memOrder, repository.Changes) error { return nil }
func (k *keeper) Delete(context.Context, *memOrder, int64) error              { return nil }

// changing wraps hooks and changes what they load on its way up.
type changing struct {
	repository.Hooks[*memOrder, memOrderID]
}

func (c changing) Unwrap() repository.Hooks[*memOrder, memOrderID] { return c.Hooks }
func (c changing) Select(ctx context.Context, id memOrderID) (*memOrder, error) {
	o, err := c.Hooks.Select(ctx, id)
	if err == nil {
		o.customer = "changed on the way"
	}
	return o, err
}

// TestHandoffSnapshot: the snapshot the outermost hooks offer for the
// aggregate they return is taken, sharing the kept aggregate's memory,
// which a save then never changes; an offer made for another aggregate,
// or by hooks that others wrap (and may change what they load), is not
// taken: the load copies what it returns.
func TestHandoffSnapshot(t *testing.T) {
	ctx := context.Background()
	kept := memPlace(1, 3)
	shared := func(s *repository.AggregateRepositorySupport[*memOrder, memOrderID], o *memOrder) bool {
		snap, err := s.Tracker().Snapshot(ctx, o)
		require.NoError(t, err)
		return snap.items[0] == kept.items[0]
	}

	k := &keeper{kept: kept}
	s, err := repository.NewSupport[*memOrder, memOrderID](k)
	require.NoError(t, err)
	o, err := s.Find(ctx, 1)
	require.NoError(t, err)
	assert.True(t, shared(s, o), "the kept aggregate is the snapshot: no second copy")
	o.items[0].quantity = 99
	o.customer = "bob"
	ch, err := s.Tracker().Changes(ctx, o)
	require.NoError(t, err)
	assert.Equal(t, 1, len(ch.Fields))
	assert.Equal(t, 1, len(ch.Collections))
	require.NoError(t, s.Save(ctx, o))
	assert.Equal(t, int64(1), o.version)
	assert.Equal(t, memPlace(1, 3), kept, "the save left the kept aggregate as it was")

	k.offerFor = func(*memOrder) any { return kept }
	o, err = s.Find(ctx, 1)
	require.NoError(t, err)
	assert.False(t, shared(s, o), "an offer for another aggregate")
	k.offerFor = nil

	wrapped, err := repository.NewSupport[*memOrder, memOrderID](k, repository.WrapHooks(func(h repository.Hooks[*memOrder, memOrderID]) repository.Hooks[*memOrder, memOrderID] {
		return changing{h}
	}))
	require.NoError(t, err)
	o, err = wrapped.Find(ctx, 1)
	require.NoError(t, err)
	assert.False(t, shared(wrapped, o), "an offer of wrapped hooks")
	ch, err = wrapped.Tracker().Changes(ctx, o)
	require.NoError(t, err)
	assert.False(t, ch.Changed(), "the snapshot is what the load returned: %s", ch.String())

	// The same with a wrapper that is the offering hooks' type: the offer
	// names the hooks that made it.
	embedding, err := repository.NewSupport[*memOrder, memOrderID](changingKeeper{k})
	require.NoError(t, err)
	o, err = embedding.Find(ctx, 1)
	require.NoError(t, err)
	assert.False(t, shared(embedding, o), "an offer of wrapped hooks")
	ch, err = embedding.Tracker().Changes(ctx, o)
	require.NoError(t, err)
	assert.False(t, ch.Changed(), "the snapshot is what the load returned: %s", ch.String())
}

// changingKeeper is a keeper that changes what it loads on its way up.
type changingKeeper struct{ *keeper }

func (c changingKeeper) Select(ctx context.Context, id memOrderID) (*memOrder, error) {
	o, err := c.keeper.Select(ctx, id)
	if err == nil {
		o.customer = "changed on the way"
	}
	return o, err
}
