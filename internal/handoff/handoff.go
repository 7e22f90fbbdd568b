// Package handoff lets the hooks under a repository hand the load that
// called them the snapshot of the aggregate they return, when they hold
// it already: a cache that keeps an aggregate that it never hands out
// and never changes returns a copy of it, and offers the one it keeps as
// the copy's snapshot, which the repository then takes instead of copying
// the aggregate a second time. Snapshots are never changed (package
// tracking builds a new one for every save, sharing what did not
// change), so one kept aggregate may be the snapshot of many loads.
//
// The repository's load asks for an offer only from outermost hooks that
// implement [Offerer], with a context from [With], and takes it only when
// those very hooks made it, for the very aggregate the load returned:
// hooks that wrap the offering ones could change the aggregate on its
// way up, and their offer is not taken.
package handoff

import "context"

// Offerer is implemented by hooks that may offer snapshots.
type Offerer interface {
	OffersSnapshots()
}

type slotKey struct{}

// Slot holds the offer made to one load.
type Slot struct {
	by, agg, snap any
}

// With returns ctx carrying a new slot for the offer of a load, and the
// slot.
func With(ctx context.Context) (context.Context, *Slot) {
	s := &Slot{}
	return context.WithValue(ctx, slotKey{}, s), s
}

// Offer offers snap as the snapshot of agg, which the hooks by return
// from the load of ctx: snap must equal agg, share no memory with it, and
// never change.
func Offer(ctx context.Context, by, agg, snap any) {
	if s, ok := ctx.Value(slotKey{}).(*Slot); ok {
		s.by, s.agg, s.snap = by, agg, snap
	}
}

// Take returns the snapshot offered for agg by the hooks by, if any; s
// may be nil.
func (s *Slot) Take(by, agg any) (any, bool) {
	if s == nil || s.by == nil || s.by != by || s.agg != agg {
		return nil, false
	}
	return s.snap, true
}
