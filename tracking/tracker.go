package tracking

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"weak"

	"github.com/dddkit/dddkit/ddd"
	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/internal/typeinfo"
)

// ErrNotTracked reports an aggregate that the tracker holds no snapshot of.
var ErrNotTracked = errors.New("aggregate is not tracked")

// ErrUnfinished reports an aggregate that has changes staged in a [Scope]
// that has not ended: until it commits or rolls back, what the store holds
// of the aggregate is unknown outside the scope, and a save there could
// write its changes twice. See [Tracker.Pending].
var ErrUnfinished = errors.New("the aggregate was saved in a unit of work that has not ended: end it (commit or roll back), or load the aggregate again")

// Tracker keeps a snapshot of each attached aggregate and reports how the
// aggregate differs from it. T is a pointer to a struct, such as *Order.
// The zero Tracker is empty and ready to use; [NewTracker] returns one too.
//
// A Tracker holds its aggregates weakly: an aggregate that becomes
// unreachable has its snapshot released, whether or not it was detached
// (see [Tracker.Len]). A Tracker is safe for concurrent use by many
// goroutines; an aggregate itself must not be changed while it is being
// attached, compared or advanced.
//
// The methods that read or change what is tracked take a context: when the
// context carries a [Scope], Attach, Detach and [Prepared.Commit] are
// staged in it and take effect when it commits, and Snapshot, Changes and
// Changed see what is staged in it.
type Tracker[T any] struct {
	mu      sync.RWMutex
	entries map[weak.Pointer[byte]]*entry[T]
	// pending holds the aggregates staged in a scope that has not ended.
	pending map[weak.Pointer[byte]]*pendingIn
	peak    int // the most entries since the map was last rebuilt
	once    sync.Once
	typeErr error
}

// shrinkBelow is the size under which an emptied map is not rebuilt.
const shrinkBelow = 1024

type entry[T any] struct {
	snap    T
	cleanup runtime.Cleanup
}

// stagedKey identifies one aggregate of one tracker inside a scope.
type stagedKey[T any] struct {
	t *Tracker[T]
	w weak.Pointer[byte]
}

// pendingIn is the scope an aggregate is staged in. The scope is held
// weakly: one dropped without ending leaves the aggregate pending for
// good, until the aggregate itself is dropped.
type pendingIn struct {
	scope   weak.Pointer[Scope]
	cleanup runtime.Cleanup
}

// stage stages st, the state of v (of handle w), in s, and records v as
// pending in s until s ends.
func (t *Tracker[T]) stage(s *Scope, v T, w weak.Pointer[byte], st *staged) {
	ws := weak.Make(s)
	st.mark = func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if p, ok := t.pending[w]; ok {
			if p.scope == ws {
				return
			}
			p.cleanup.Stop()
		}
		if t.pending == nil {
			t.pending = make(map[weak.Pointer[byte]]*pendingIn)
		}
		t.pending[w] = &pendingIn{scope: ws, cleanup: runtime.AddCleanup((*byte)(typeinfo.PtrOf(v)), t.settle, w)}
	}
	st.end = func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if p, ok := t.pending[w]; ok && p.scope == ws {
			p.cleanup.Stop()
			delete(t.pending, w)
		}
	}
	s.stage(stagedKey[T]{t, w}, st)
	runtime.KeepAlive(v)
}

// settle forgets a pending aggregate that is no longer reachable.
func (t *Tracker[T]) settle(w weak.Pointer[byte]) {
	t.mu.Lock()
	delete(t.pending, w)
	t.mu.Unlock()
}

// Pending returns an error wrapping [ErrUnfinished] when v has changes
// staged (attached, advanced or detached) in a scope that has not ended,
// other than the scope of ctx; nil otherwise. A repository calls it
// before it saves or removes v: a scope whose end is never told (a
// transaction of the caller's, committed or rolled back without saying
// so) must not let a later save outside it write v's changes, or insert
// v, a second time.
func (t *Tracker[T]) Pending(ctx context.Context, v T) error {
	p := typeinfo.PtrOf(v)
	if p == nil {
		return nil
	}
	w := weak.Make((*byte)(p))
	t.mu.RLock()
	pi, ok := t.pending[w]
	t.mu.RUnlock()
	if !ok {
		return nil
	}
	if s := pi.scope.Value(); s != nil {
		if cur, ok := FromContext(ctx); (ok && cur == s) || s.Done() {
			return nil
		}
	}
	return ErrUnfinished
}

// NewTracker returns an empty tracker.
func NewTracker[T any]() *Tracker[T] {
	return &Tracker[T]{}
}

func (t *Tracker[T]) check() error {
	t.once.Do(func() {
		rt := reflect.TypeFor[T]()
		if rt.Kind() != reflect.Pointer || rt.Elem().Kind() != reflect.Struct {
			t.typeErr = fmt.Errorf("tracking: %v: %w: a tracked aggregate must be a pointer to a struct", rt, ddd.ErrUnsupported)
			return
		}
		if rt.Elem().Size() == 0 {
			t.typeErr = fmt.Errorf("tracking: %v: %w: a tracked aggregate cannot be of size zero", rt, ddd.ErrUnsupported)
		}
	})
	return t.typeErr
}

// key returns the weak handle that identifies v. It is the same for every
// call with the same live object, and never equal to that of another object.
func key[T any](v T) (weak.Pointer[byte], error) {
	p := typeinfo.PtrOf(v)
	if p == nil {
		return weak.Pointer[byte]{}, fmt.Errorf("tracking: %w: nil aggregate", ddd.ErrUnsupported)
	}
	return weak.Make((*byte)(p)), nil
}

// Attach takes a snapshot of v and starts tracking it. Attaching a tracked
// aggregate replaces its snapshot by a copy of v as it is now. In a scope,
// the snapshot is staged until the scope commits.
func (t *Tracker[T]) Attach(ctx context.Context, v T) error {
	return t.put(ctx, v)
}

func (t *Tracker[T]) put(ctx context.Context, v T) error {
	if err := t.check(); err != nil {
		return err
	}
	w, err := key(v)
	if err != nil {
		return err
	}
	snap, err := Copy(v)
	if err != nil {
		return fmt.Errorf("tracking: snapshot: %w", err)
	}
	if s, ok := FromContext(ctx); ok {
		t.stage(s, v, w, &staged{snap: snap, apply: func() { t.install(v, w, snap) }})
		return nil
	}
	t.install(v, w, snap)
	return nil
}

func (t *Tracker[T]) install(v T, w weak.Pointer[byte], snap T) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.entries[w]; ok {
		e.snap = snap
		return
	}
	if t.entries == nil {
		t.entries = make(map[weak.Pointer[byte]]*entry[T])
	}
	e := &entry[T]{snap: snap}
	e.cleanup = runtime.AddCleanup((*byte)(typeinfo.PtrOf(v)), t.release, w)
	t.entries[w] = e
	t.peak = max(t.peak, len(t.entries))
	runtime.KeepAlive(v)
}

// release drops the entry of an aggregate that is no longer reachable.
func (t *Tracker[T]) release(w weak.Pointer[byte]) {
	t.mu.Lock()
	t.delete(w)
	t.mu.Unlock()
}

// delete removes the entry of w. A Go map never gives back the memory of
// its deleted entries, so once the map holds less than a quarter of its
// peak it is rebuilt at its present size: a burst of loaded aggregates
// leaves no memory behind when they are gone. t.mu must be held.
func (t *Tracker[T]) delete(w weak.Pointer[byte]) {
	delete(t.entries, w)
	if n := len(t.entries); t.peak >= shrinkBelow && n < t.peak/4 {
		m := make(map[weak.Pointer[byte]]*entry[T], n)
		for k, e := range t.entries {
			m[k] = e
		}
		t.entries, t.peak = m, n
	}
}

// Detach stops tracking v and releases its snapshot. Detaching an aggregate
// that is not tracked does nothing.
func (t *Tracker[T]) Detach(ctx context.Context, v T) {
	w, err := key(v)
	if err != nil {
		return
	}
	if s, ok := FromContext(ctx); ok {
		t.stage(s, v, w, &staged{detached: true, apply: func() { t.remove(v, w) }})
		return
	}
	t.remove(v, w)
}

func (t *Tracker[T]) remove(v T, w weak.Pointer[byte]) {
	t.mu.Lock()
	e, ok := t.entries[w]
	t.delete(w)
	t.mu.Unlock()
	if ok {
		e.cleanup.Stop()
	}
	runtime.KeepAlive(v)
}

// Tracked reports whether v is tracked, taking the scope in ctx into
// account.
func (t *Tracker[T]) Tracked(ctx context.Context, v T) bool {
	_, err := t.Snapshot(ctx, v)
	return err == nil
}

// Snapshot returns the snapshot v is compared against: the one staged in
// the scope in ctx, or else the committed one. It returns [ErrNotTracked]
// when there is none. The snapshot must not be changed.
func (t *Tracker[T]) Snapshot(ctx context.Context, v T) (T, error) {
	var zero T
	if err := t.check(); err != nil {
		return zero, err
	}
	p := typeinfo.PtrOf(v)
	if p == nil {
		return zero, ErrNotTracked
	}
	w := weak.Make((*byte)(p))
	if s, ok := FromContext(ctx); ok {
		if st, ok := s.pending(stagedKey[T]{t, w}); ok {
			if st.detached {
				return zero, ErrNotTracked
			}
			return st.snap.(T), nil
		}
	}
	t.mu.RLock()
	e, ok := t.entries[w]
	var snap T
	if ok {
		snap = e.snap // read under the lock: install replaces it
	}
	t.mu.RUnlock()
	if !ok {
		return zero, ErrNotTracked
	}
	return snap, nil
}

// Changes compares v with its snapshot and returns the differences. It
// returns [ErrNotTracked] when v is not tracked, and the errors of
// [diff.Compare].
func (t *Tracker[T]) Changes(ctx context.Context, v T) (diff.Result, error) {
	snap, err := t.Snapshot(ctx, v)
	if err != nil {
		return diff.Result{}, err
	}
	return diff.Compare(snap, v)
}

// Changed reports whether v differs from its snapshot. It is faster than
// [Tracker.Changes] and does not allocate when nothing changed.
func (t *Tracker[T]) Changed(ctx context.Context, v T) (bool, error) {
	snap, err := t.Snapshot(ctx, v)
	if err != nil {
		return false, err
	}
	eq, err := diff.Equal(snap, v)
	return !eq, err
}

// Len returns the number of aggregates tracked outside any scope.
func (t *Tracker[T]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.entries)
}

// shared holds the trackers of [Shared], by aggregate type.
var shared sync.Map // reflect.Type -> *Tracker[T]

// Shared returns the tracker of aggregates of type T that the whole program
// shares. Repositories use it, so that any two repository values for T
// (one built per request, say) see the same snapshots: an aggregate loaded
// through one and saved through another is updated, not inserted again.
// Snapshots belong to the aggregates, not to a repository: an aggregate has
// one snapshot, released when the aggregate becomes unreachable.
func Shared[T any]() *Tracker[T] {
	rt := reflect.TypeFor[T]()
	if t, ok := shared.Load(rt); ok {
		return t.(*Tracker[T])
	}
	t, _ := shared.LoadOrStore(rt, NewTracker[T]())
	return t.(*Tracker[T])
}
