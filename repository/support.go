package repository

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/dddkit/dddkit/ddd"
	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/internal/handoff"
	"github.com/dddkit/dddkit/internal/lastwrite"
	"github.com/dddkit/dddkit/internal/typeinfo"
	"github.com/dddkit/dddkit/tracking"
)

// Option configures an [AggregateRepositorySupport].
type Option func(*options)

type options struct {
	tx    Transactor
	retry RetryPolicy
	wraps []any // of WrapHooks: func(Hooks[T, ID]) Hooks[T, ID]
}

// WithRetry makes [AggregateRepositorySupport.Update] run its unit of work
// again, on a freshly loaded aggregate, when it fails with an error that p
// retries (by default [ErrConflict]). Update's function must then be safe
// to run more than once: see [RetryPolicy].
func WithRetry(p RetryPolicy) Option {
	return func(o *options) { o.retry = p }
}

// WithTransactor makes [AggregateRepositorySupport.Update] run in a unit of
// work of tx (for example the SQL layer's database handle), so that loading,
// changing and saving happen in one transaction.
func WithTransactor(tx Transactor) Option {
	return func(o *options) { o.tx = tx }
}

// AggregateRepositorySupport implements [Repository] on top of [Hooks],
// with snapshot change tracking. T is a pointer to the aggregate root's
// struct, whose identity, of type ID, is its method ID() or its field
// tagged `ddd:"id"` (see [NewSupport]). It is safe for concurrent use.
type AggregateRepositorySupport[T any, ID comparable] struct {
	hooks   Hooks[T, ID]
	id      func(T) ID // the root's identity
	tracker *tracking.Tracker[T]
	tx      Transactor
	retry   RetryPolicy
	version *typeinfo.Field // nil when the root has no version field
	order   Orderer[T]      // the hooks, when they store an order
	// writesBack: the hooks may write into the aggregate (WritesBack).
	writesBack bool
	partial    Partial       // the hooks, when they leave some fields unstored
	locker     Locker[T, ID] // the hooks, when they can lock a load
	deleter    IDDeleter[ID] // the outermost hooks, when they delete by id
}

// NewSupport returns a repository support for T on top of hooks. It fails
// with an error wrapping [ErrUnsupported] when T is not a pointer to a
// struct, its ddd tags are malformed, or its root has no identity of type
// ID.
//
// The root's identity is read as an entity's is (see package ddd): from
// its field tagged `ddd:"id"`, which must be of type ID, or else from its
// method ID() ID (T implements [ddd.Aggregate]). The tag is the way for a
// root whose accessor has another name, such as UUID().
//
// With [WrapHooks], the support runs on the hooks the wrappers make of
// hooks. The optional abilities of the hooks ([Locker], [Orderer],
// [WritesBack], [Partial]) are found once, here, with [As]: on the
// outermost hooks that implement them, through the wrappers' Unwrap;
// [IDDeleter] only on the outermost hooks.
func NewSupport[T any, ID comparable](hooks Hooks[T, ID], opts ...Option) (*AggregateRepositorySupport[T, ID], error) {
	if hooks == nil {
		return nil, errors.New("repository: nil hooks")
	}
	rt := reflect.TypeFor[T]()
	if rt.Kind() != reflect.Pointer || rt.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("repository: %v: %w: an aggregate must be a pointer to a struct", rt, ErrUnsupported)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	id, err := identity[T, ID](rt)
	if err != nil {
		return nil, fmt.Errorf("repository: %v: %w", rt, err)
	}
	for _, w := range o.wraps {
		wrap, ok := w.(func(Hooks[T, ID]) Hooks[T, ID])
		if !ok {
			return nil, fmt.Errorf("repository: %v: WrapHooks: the wrapper, a %T, is not for Hooks[%v, %v]", rt, w, rt, reflect.TypeFor[ID]())
		}
		if wrap == nil {
			return nil, fmt.Errorf("repository: %v: WrapHooks: nil wrapper", rt)
		}
		if hooks = wrap(hooks); hooks == nil {
			return nil, fmt.Errorf("repository: %v: WrapHooks: the wrapper returned nil hooks", rt)
		}
	}
	s := &AggregateRepositorySupport[T, ID]{hooks: hooks, id: id, tracker: tracking.Shared[T](), tx: o.tx, retry: o.retry}
	f, ok, err := typeinfo.VersionOf(rt.Elem())
	if err != nil {
		return nil, fmt.Errorf("repository: %v: %w: %w", rt, ErrUnsupported, err)
	}
	if ok {
		s.version = &f
	}
	if o, ok := As[Orderer[T]](hooks); ok && o.Ordered() {
		s.order = o
	}
	if wb, ok := As[WritesBack](hooks); ok {
		s.writesBack = wb.WritesBack()
	}
	if p, ok := As[Partial](hooks); ok {
		s.partial = p
	}
	if l, ok := As[Locker[T, ID]](hooks); ok {
		s.locker = l
	}
	if d, ok := hooks.(IDDeleter[ID]); ok {
		s.deleter = d
	}
	return s, nil
}

// identity returns the function that reads the identity of a root of
// type T, rt, a pointer to a struct: its field tagged `ddd:"id"`, or its
// method ID.
func identity[T any, ID comparable](rt reflect.Type) (func(T) ID, error) {
	st, err := typeinfo.StructOf(rt.Elem())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	idt := reflect.TypeFor[ID]()
	if st.IDField >= 0 {
		f := st.Fields[st.IDField]
		if f.Type != idt {
			return nil, fmt.Errorf("%w: its identity, field %s tagged `ddd:\"id\"`, is of type %v, not %v", ErrUnsupported, f.Name, f.Type, idt)
		}
		off := f.Offset
		return func(v T) ID { return *(*ID)(unsafe.Add(typeinfo.PtrOf(v), off)) }, nil
	}
	var zero T
	if _, ok := any(zero).(ddd.Entity[ID]); ok {
		return func(v T) ID { return any(v).(ddd.Entity[ID]).ID() }, nil
	}
	return nil, fmt.Errorf("%w: it has no identity of type %v: tag the field that holds it `ddd:\"id\"`, or give it a method ID() %v", ErrUnsupported, idt, idt)
}

// Tracker returns the tracker that holds the snapshots of this repository's
// aggregates: [tracking.Shared], which every repository of T shares.
func (s *AggregateRepositorySupport[T, ID]) Tracker() *tracking.Tracker[T] { return s.tracker }

func (s *AggregateRepositorySupport[T, ID]) readVersion(v T) int64 {
	if s.version == nil {
		return 0
	}
	return typeinfo.ReadInt(s.version.Type, unsafe.Add(typeinfo.PtrOf(v), s.version.Offset))
}

func (s *AggregateRepositorySupport[T, ID]) writeVersion(v T, n int64) {
	if s.version == nil {
		return
	}
	typeinfo.WriteInt(s.version.Type, unsafe.Add(typeinfo.PtrOf(v), s.version.Offset), n)
}

// noScope hides the scope of ctx, for tracking that is not tied to a write.
func noScope(ctx context.Context) context.Context {
	if _, ok := tracking.FromContext(ctx); ok {
		return tracking.WithScope(ctx, nil)
	}
	return ctx
}

// Find returns the aggregate with identity id and tracks it. Within a
// tracking scope, an aggregate already found or saved in it is returned
// without calling the select hook again.
func (s *AggregateRepositorySupport[T, ID]) Find(ctx context.Context, id ID) (T, error) {
	if agg, ok := tracking.Lookup[T](ctx, id); ok {
		return agg, nil
	}
	return s.load(ctx, "find", id, s.hooks.Select)
}

// FindForUpdate is [AggregateRepositorySupport.Find] that also locks the
// aggregate in the store until the end of the transaction of ctx, so that
// no concurrent writer can change it in between: what a read-modify-write
// of an aggregate without a version field needs. The hooks must implement
// [Locker]; otherwise FindForUpdate fails with an error wrapping
// [ErrUnsupported]. An aggregate already loaded in the unit of work is
// locked and returned as the same instance, with its unsaved changes, when
// the store still holds what was loaded; when another writer changed it
// in between, FindForUpdate fails with [ErrConflict].
func (s *AggregateRepositorySupport[T, ID]) FindForUpdate(ctx context.Context, id ID) (T, error) {
	var zero T
	l := s.locker
	if l == nil {
		return zero, fmt.Errorf("repository: find for update: %w: the hooks %T do not implement Locker, nor do the hooks they unwrap to", ErrUnsupported, s.hooks)
	}
	if agg, ok := tracking.Lookup[T](ctx, id); ok {
		// Loaded earlier in this unit of work, without the lock: what the
		// store holds now must still be what was loaded, or a change made
		// in between would be overwritten.
		locked, err := l.SelectForUpdate(ctx, id)
		if err != nil {
			return zero, opError("find for update", err)
		}
		snap, err := s.tracker.Snapshot(ctx, agg)
		if err != nil {
			return zero, opError("find for update", err)
		}
		same, err := diff.Equal(snap, locked)
		if err != nil {
			return zero, opError("find for update", err)
		}
		if !same || s.readVersion(snap) != s.readVersion(locked) {
			return zero, opError("find for update", fmt.Errorf("%w: %v changed in the store since it was loaded in this unit of work", ErrConflict, id))
		}
		return agg, nil
	}
	return s.load(ctx, "find for update", id, l.SelectForUpdate)
}

// load selects the aggregate with identity id through sel and tracks it.
func (s *AggregateRepositorySupport[T, ID]) load(ctx context.Context, op string, id ID, sel func(context.Context, ID) (T, error)) (T, error) {
	var zero T
	var slot *handoff.Slot
	sctx := ctx
	if _, ok := s.hooks.(handoff.Offerer); ok {
		sctx, slot = handoff.With(ctx)
	}
	agg, err := sel(sctx, id)
	if err != nil {
		return zero, opError(op, err)
	}
	if typeinfo.IsNil(agg) {
		return zero, opError(op, fmt.Errorf("%w: %v", ErrNotFound, id))
	}
	if err := s.attachLoaded(ctx, agg, slot); err != nil {
		return zero, opError(op, err)
	}
	tracking.Remember(ctx, s.id(agg), agg)
	return agg, nil
}

// attachLoaded starts tracking agg, just loaded: with the snapshot the
// outermost hooks offered in slot for it, if any (a cache's kept copy,
// which needs no copying), else with a copy of it.
func (s *AggregateRepositorySupport[T, ID]) attachLoaded(ctx context.Context, agg T, slot *handoff.Slot) error {
	if snap, ok := slot.Take(s.hooks, agg); ok {
		if snap, ok := snap.(T); ok && !typeinfo.IsNil(snap) {
			// The snapshot is a new root struct that shares the rest of
			// the offered one, as the snapshot after a save shares what
			// did not change.
			p, err := s.tracker.Prepare(agg, snap, diff.Result{})
			if err == nil {
				return p.Commit(noScope(ctx))
			}
		}
	}
	return s.tracker.Attach(noScope(ctx), agg)
}

// Attach starts tracking agg, loaded by a query of the concrete repository's
// own, as if it had been returned by Find.
func (s *AggregateRepositorySupport[T, ID]) Attach(ctx context.Context, agg T) error {
	if typeinfo.IsNil(agg) {
		return fmt.Errorf("repository: attach: %w: nil aggregate", ErrUnsupported)
	}
	if err := s.tracker.Attach(noScope(ctx), agg); err != nil {
		return fmt.Errorf("repository: attach: %w", err)
	}
	tracking.Remember(ctx, s.id(agg), agg)
	return nil
}

// Track adopts aggregates loaded by a query of the concrete repository's
// own, as Find does the one it loads: in the unit of work of ctx, an
// aggregate already loaded in it is replaced by that instance (which keeps
// its unsaved changes; the row just read is dropped), and the others are
// attached and remembered. It returns the aggregates to hand out, in the
// order of loaded.
func (s *AggregateRepositorySupport[T, ID]) Track(ctx context.Context, loaded []T) ([]T, error) {
	out := make([]T, len(loaded))
	for i, agg := range loaded {
		if typeinfo.IsNil(agg) {
			return nil, fmt.Errorf("repository: track: %w: nil aggregate at %d", ErrUnsupported, i)
		}
		if known, ok := tracking.Lookup[T](ctx, s.id(agg)); ok {
			out[i] = known
			continue
		}
		if err := s.tracker.Attach(noScope(ctx), agg); err != nil {
			return nil, opError("track", err)
		}
		tracking.Remember(ctx, s.id(agg), agg)
		out[i] = agg
	}
	return out, nil
}

// Detach stops tracking agg: a later Save inserts it again (or, where
// the store generates the key and agg holds one, refuses it with
// [ErrUntracked]).
func (s *AggregateRepositorySupport[T, ID]) Detach(ctx context.Context, agg T) {
	if typeinfo.IsNil(agg) {
		return
	}
	s.tracker.Detach(noScope(ctx), agg)
	tracking.Forget[T](ctx, s.id(agg))
}

// Save writes agg. An aggregate that is not tracked is inserted and then
// tracked; the store's insert hook refuses one that it can tell is stored
// already (the SQL store does when the database generates the key and agg
// holds one), with an error wrapping [ErrUntracked]: an aggregate read
// without tracking is saved by loading it with Find, or attaching it with
// Attach as soon as it is read, never by saving the untracked copy. A
// tracked one is compared with its snapshot: when nothing changed, or
// nothing that the hooks store (see [Partial]), Save returns nil without
// calling any hook and leaves the version and the snapshot as they were;
// otherwise it advances
// the version (if any), calls the update hook with the differences, and
// advances the snapshot, at once or, in a tracking scope, when the scope
// commits. When a hook fails, the snapshot and the version are left as they
// were.
//
// An aggregate saved in a unit of work that has not ended (a transaction
// of the caller's whose end was never told, say) cannot be saved or
// removed outside it: Save and Remove fail with an error wrapping
// [ErrUnfinished] and write nothing, until the unit of work ends.
//
// Outside a unit of work, the functions that the hooks register with
// [AfterCommit] run when Save returns, after the snapshot advanced.
func (s *AggregateRepositorySupport[T, ID]) Save(ctx context.Context, agg T) error {
	ctx, after := saveContext(ctx)
	err := s.save(ctx, agg, after)
	after.end()
	return err
}

// save is Save; after, when not nil, is told when a hook wrote.
func (s *AggregateRepositorySupport[T, ID]) save(ctx context.Context, agg T, after *afterSave) error {
	if typeinfo.IsNil(agg) {
		return fmt.Errorf("repository: save: %w: nil aggregate", ErrUnsupported)
	}
	if err := s.tracker.Pending(ctx, agg); err != nil {
		return opError("save", err)
	}
	snap, err := s.tracker.Snapshot(ctx, agg)
	if errors.Is(err, tracking.ErrNotTracked) {
		return s.insert(ctx, agg, after)
	}
	if err != nil {
		return opError("save", err)
	}
	d, err := diff.Compare(snap, agg)
	if err != nil {
		return opError("save", err)
	}
	stored := d.Changed() && (s.partial == nil || s.partial.Stores(d))
	if !stored && (s.order == nil || !s.order.Reordered(snap, agg)) {
		return nil
	}
	// The next snapshot is built before anything is written, so that a
	// value that cannot be snapshotted fails the save with nothing
	// written. It is made from the old one and the diff: only what changed
	// is copied.
	next, err := s.tracker.Prepare(agg, snap, d)
	if err != nil {
		return opError("save", err)
	}
	ch := Changes{Diff: d, Old: snap}
	before := s.readVersion(agg)
	if s.version != nil {
		ch.Versioned = true
		ch.OldVersion = s.readVersion(snap)
		ch.NewVersion = ch.OldVersion + 1
		s.writeVersion(agg, ch.NewVersion)
		s.writeVersion(next.Snapshot(), ch.NewVersion)
		if sc, ok := tracking.FromContext(ctx); ok {
			sc.OnRollback(func() { s.writeVersion(agg, before) })
		}
	}
	if err := s.hooks.Update(ctx, agg, ch); err != nil {
		s.writeVersion(agg, before)
		return opError("save", err)
	}
	after.written()
	if s.writesBack {
		// Again, now that the hook wrote into the aggregate: this cannot
		// fail where the first one succeeded, the types being the same.
		if next, err = s.tracker.Prepare(agg, snap, d); err != nil {
			return opError("save", fmt.Errorf("written, but not snapshotted: %w", err))
		}
	}
	if s.order != nil {
		// The snapshot takes the order saved, which a patch from the diff
		// would not: a reorder is not a change to it.
		if err := s.tracker.Attach(ctx, agg); err != nil {
			return opError("save", fmt.Errorf("written, but not snapshotted: %w", err))
		}
		return nil
	}
	if err := next.Commit(ctx); err != nil {
		return opError("save", err)
	}
	return nil
}

func (s *AggregateRepositorySupport[T, ID]) insert(ctx context.Context, agg T, after *afterSave) error {
	// Copy first: a type that cannot be tracked must fail before any write.
	if _, err := tracking.Copy(agg); err != nil {
		return opError("save", err)
	}
	if err := s.hooks.Insert(ctx, agg); err != nil {
		return opError("save", err)
	}
	after.written()
	// The snapshot is taken after the insert, which may have set fields
	// (a creation time, say) of the aggregate.
	if err := s.tracker.Attach(ctx, agg); err != nil {
		return opError("save", err)
	}
	tracking.Remember(ctx, s.id(agg), agg)
	return nil
}

// Remove deletes agg and stops tracking it (in a tracking scope, when the
// scope commits). The delete hook is given the version to check: the
// snapshot's when agg is tracked, else agg's own. Outside a unit of work,
// the functions that the hooks register with [AfterCommit] run when Remove
// returns.
func (s *AggregateRepositorySupport[T, ID]) Remove(ctx context.Context, agg T) error {
	ctx, after := saveContext(ctx)
	err := s.remove(ctx, agg, after)
	after.end()
	return err
}

func (s *AggregateRepositorySupport[T, ID]) remove(ctx context.Context, agg T, after *afterSave) error {
	if typeinfo.IsNil(agg) {
		return fmt.Errorf("repository: remove: %w: nil aggregate", ErrUnsupported)
	}
	if err := s.tracker.Pending(ctx, agg); err != nil {
		return opError("remove", err)
	}
	version := s.readVersion(agg)
	if snap, err := s.tracker.Snapshot(ctx, agg); err == nil {
		version = s.readVersion(snap)
	}
	if err := s.hooks.Delete(ctx, agg, version); err != nil {
		return opError("remove", err)
	}
	after.written()
	s.tracker.Detach(ctx, agg)
	tracking.Forget[T](ctx, s.id(agg))
	return nil
}

// RemoveOption configures [AggregateRepositorySupport.RemoveByID].
type RemoveOption func(*removeOptions)

type removeOptions struct {
	version *int64
}

// IfVersion makes [AggregateRepositorySupport.RemoveByID] remove the
// aggregate only when it has version v: when it has another, it fails
// with [ErrConflict] and removes nothing.
func IfVersion(v int64) RemoveOption {
	return func(o *removeOptions) { o.version = &v }
}

// RemoveByID deletes the aggregate with identity id, children first, all
// or nothing, and stops tracking the instance loaded in the unit of work
// of ctx, if there is one. It fails with an error wrapping [ErrNotFound]
// when there is no such aggregate. With [IfVersion], it removes the
// aggregate only at that version, and fails with [ErrConflict] otherwise;
// the aggregate must then have a version field ([ErrUnsupported]
// otherwise). Without it, the aggregate is removed whatever its version.
//
// When the hooks implement [IDDeleter] (the outermost hooks, when they
// are wrapped: see [As]), the aggregate is deleted without being loaded
// (the SQL store does so in one round trip on pgx); otherwise it is loaded with the select hook, then deleted with the
// delete hook at the version it was loaded with. Outside a unit of work,
// the functions that the hooks register with [AfterCommit] run when
// RemoveByID returns.
func (s *AggregateRepositorySupport[T, ID]) RemoveByID(ctx context.Context, id ID, opts ...RemoveOption) error {
	ctx, after := saveContext(ctx)
	err := s.removeByID(ctx, id, after, opts)
	after.end()
	return err
}

func (s *AggregateRepositorySupport[T, ID]) removeByID(ctx context.Context, id ID, after *afterSave, opts []RemoveOption) error {
	var o removeOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.version != nil && s.version == nil {
		return opError("remove", fmt.Errorf("%w: a version is given, and the aggregate has no version field", ErrUnsupported))
	}
	known, tracked := tracking.Lookup[T](ctx, id)
	if tracked {
		if err := s.tracker.Pending(ctx, known); err != nil {
			return opError("remove", err)
		}
	}
	if d := s.deleter; d != nil {
		if err := d.DeleteByID(ctx, id, o.version); err != nil {
			return opError("remove", err)
		}
		after.written()
	} else {
		agg, err := s.hooks.Select(ctx, id)
		if err != nil {
			return opError("remove", err)
		}
		if typeinfo.IsNil(agg) {
			return opError("remove", fmt.Errorf("%w: %v", ErrNotFound, id))
		}
		version := s.readVersion(agg)
		if o.version != nil && *o.version != version {
			return opError("remove", fmt.Errorf("%w: %v has version %d, not %d", ErrConflict, id, version, *o.version))
		}
		if err := s.hooks.Delete(ctx, agg, version); err != nil {
			return opError("remove", err)
		}
		after.written()
	}
	if tracked {
		s.tracker.Detach(ctx, known)
		tracking.Forget[T](ctx, id)
	}
	return nil
}

// Update loads the aggregate with identity id, runs change on it, and saves
// it, in one unit of work: in a transaction of the [Transactor] given with
// [WithTransactor], or else in a tracking scope. change is given the unit
// of work's context, to load other aggregates or run statements of its own
// in the same transaction. If change returns an error, nothing is saved
// and the error is returned as is.
//
// An aggregate with a version field is protected by its version: a
// concurrent change makes the save fail with [ErrConflict]. One without is
// loaded with [AggregateRepositorySupport.FindForUpdate] when the hooks
// implement [Locker], so that concurrent Updates of it queue instead of
// overwriting each other; hooks that cannot lock must serialize writers
// themselves (SQLite's store does: its transactions take the write lock
// when they begin).
//
// The load is marked as that of an aggregate about to be written, so that
// a store that reads in several statements can lock the root as it reads
// it (see package sqlstore): change is then handed the aggregate as it
// stood at one commit, and concurrent Updates of it queue.
//
// With [WithRetry], a failed unit of work runs again on a freshly loaded
// aggregate, so change must be safe to run more than once.
//
// When Update begins the transaction itself, its save is the last
// operation of the unit of work, and the transactor is told so: the SQL
// layer then sends it without a savepoint, and on pgx with the COMMIT in
// the same batch (see package sqlstore).
func (s *AggregateRepositorySupport[T, ID]) Update(ctx context.Context, id ID, change func(ctx context.Context, agg T) error) error {
	if change == nil {
		return errors.New("repository: update: nil function")
	}
	return s.update(ctx, id, nil, change, nil)
}

// createRaces bounds how many times UpdateOrCreate goes again after its
// insert lost a race with another writer's.
const createRaces = 10

// UpdateOrCreate is [AggregateRepositorySupport.Update] that, when there
// is no aggregate with identity id, makes one with create, runs change on
// it, and inserts it, in the unit of work of the load: the get-or-create
// of an aggregate. create must return a new aggregate with identity id.
//
// A root whose key the database generates cannot be made this way: create
// must set the identity, and a store refuses to insert an aggregate whose
// generated key is set and which it did not load (the sqlstore fails with
// [ErrUntracked], writing nothing). Find, then Save a new aggregate, for
// such a root.
//
// It is safe under concurrency: when another writer inserts the same
// aggregate first, the insert fails with [ErrExists], nothing of this
// unit of work is kept, and UpdateOrCreate runs again, now as an update
// of the aggregate the other writer inserted. Of concurrent callers on a
// missing identity, exactly one inserts, and each of the others applies
// its change to what is stored. create and change must therefore be safe
// to run more than once (see [RetryPolicy]). When the aggregate exists,
// it costs what Update costs: on pgx, the load, then the save with the
// COMMIT.
//
// An ErrExists that the insert of this unit of work did not raise (one
// from change, say) is returned as is. After 10 lost races in a row, the
// last ErrExists is returned.
func (s *AggregateRepositorySupport[T, ID]) UpdateOrCreate(ctx context.Context, id ID, create func(ctx context.Context, id ID) (T, error), change func(ctx context.Context, agg T) error) error {
	if create == nil || change == nil {
		return errors.New("repository: update or create: nil function")
	}
	var err error
	for range createRaces {
		raced := false
		if err = s.update(ctx, id, create, change, &raced); !raced {
			return err
		}
	}
	return err
}

// create makes the aggregate with identity id with create.
func (s *AggregateRepositorySupport[T, ID]) create(ctx context.Context, id ID, create func(ctx context.Context, id ID) (T, error)) (T, error) {
	agg, err := create(ctx, id)
	if err != nil {
		return agg, err
	}
	if typeinfo.IsNil(agg) {
		return agg, fmt.Errorf("repository: create: %w: nil aggregate", ErrUnsupported)
	}
	if got := s.id(agg); got != id {
		return agg, fmt.Errorf("repository: create: the aggregate made for %v has identity %v", id, got)
	}
	return agg, nil
}

// update is Update, and UpdateOrCreate when create is not nil: it then
// reports in raced that the insert of the aggregate made failed with
// ErrExists.
func (s *AggregateRepositorySupport[T, ID]) update(ctx context.Context, id ID, create func(ctx context.Context, id ID) (T, error), change func(ctx context.Context, agg T) error, raced *bool) error {
	find := s.Find
	if s.locker != nil && s.version == nil {
		find = s.FindForUpdate
	}
	// The save is the last operation of a unit of work that Update begins
	// itself: the token lets the transactor send the commit with it.
	tok := &lastwrite.Token{For: s.tx}
	run := func(ctx context.Context) error {
		// The load is marked as that of an aggregate about to be written:
		// the SQL layer may lock its root as it reads it.
		agg, err := find(lastwrite.ForWrite(ctx), id)
		if err != nil {
			if create == nil || !errors.Is(err, ErrNotFound) {
				return err
			}
			if agg, err = s.create(ctx, id, create); err != nil {
				return err
			}
			if err := change(ctx, agg); err != nil {
				return err
			}
			err = s.Save(lastwrite.Last(ctx, tok), agg)
			if errors.Is(err, ErrExists) {
				*raced = true
			}
			return err
		}
		if err := change(ctx, agg); err != nil {
			return err
		}
		if !s.tracker.Tracked(ctx, agg) {
			return nil // change removed it: nothing left to save
		}
		return s.Save(lastwrite.Last(ctx, tok), agg)
	}
	return s.retry.Run(ctx, func(ctx context.Context) error {
		if s.tx != nil {
			return s.tx.InTx(lastwrite.Own(ctx, tok), run)
		}
		if _, ok := tracking.FromContext(ctx); ok {
			return run(ctx)
		}
		return tracking.InScope(ctx, run)
	})
}
