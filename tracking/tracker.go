package tracking

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"unsafe"
	"weak"

	"github.com/dddkit/dddkit/diff"
)

// ErrNotTracked reports an aggregate that the tracker holds no snapshot of.
var ErrNotTracked = errors.New("tracking: aggregate is not tracked")

// Tracker keeps a snapshot of each attached aggregate and reports how the
// aggregate differs from it. T is a pointer to a struct, such as *Order.
//
// A Tracker holds its aggregates weakly: an aggregate that becomes
// unreachable has its snapshot released, whether or not it was detached
// (see [Tracker.Len]). A Tracker is safe for concurrent use by many
// goroutines; an aggregate itself must not be changed while it is being
// attached, compared or advanced.
//
// Every method takes a context: when the context carries a [Scope], Attach,
// Advance and Detach are staged in it and take effect when it commits, and
// Changes compares against the snapshot staged in the scope, if any.
type Tracker[T any] struct {
	mu      sync.RWMutex
	entries map[weak.Pointer[byte]]*entry[T]
	once    sync.Once
	typeErr error
}

type entry[T any] struct {
	snap    T
	cleanup runtime.Cleanup
}

// stagedKey identifies one aggregate of one tracker inside a scope.
type stagedKey[T any] struct {
	t *Tracker[T]
	w weak.Pointer[byte]
}

// NewTracker returns an empty tracker.
func NewTracker[T any]() *Tracker[T] {
	return &Tracker[T]{entries: make(map[weak.Pointer[byte]]*entry[T])}
}

func (t *Tracker[T]) check() error {
	t.once.Do(func() {
		rt := reflect.TypeFor[T]()
		if rt.Kind() != reflect.Pointer || rt.Elem().Kind() != reflect.Struct {
			t.typeErr = fmt.Errorf("tracking: %v: %w: a tracked aggregate must be a pointer to a struct", rt, diff.ErrUnsupported)
			return
		}
		if rt.Elem().Size() == 0 {
			t.typeErr = fmt.Errorf("tracking: %v: %w: a tracked aggregate cannot be of size zero", rt, diff.ErrUnsupported)
		}
	})
	return t.typeErr
}

// ptrOf returns the address held by v, a pointer.
func ptrOf[T any](v T) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&v))
}

// key returns the weak handle that identifies v. It is the same for every
// call with the same live object, and never equal to that of another object.
func key[T any](v T) (weak.Pointer[byte], error) {
	p := ptrOf(v)
	if p == nil {
		return weak.Pointer[byte]{}, fmt.Errorf("tracking: %w: nil aggregate", diff.ErrUnsupported)
	}
	return weak.Make((*byte)(p)), nil
}

// Attach takes a snapshot of v and starts tracking it. Attaching a tracked
// aggregate replaces its snapshot.
func (t *Tracker[T]) Attach(ctx context.Context, v T) error {
	return t.put(ctx, v)
}

// Advance replaces the snapshot of v by a copy of v as it is now: what a
// repository does after it saved v. In a scope, the new snapshot is staged
// until the scope commits.
func (t *Tracker[T]) Advance(ctx context.Context, v T) error {
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
		s.stage(stagedKey[T]{t, w}, &staged{snap: snap, apply: func() { t.install(v, w, snap) }})
		runtime.KeepAlive(v)
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
	e := &entry[T]{snap: snap}
	e.cleanup = runtime.AddCleanup((*byte)(ptrOf(v)), t.release, w)
	t.entries[w] = e
	runtime.KeepAlive(v)
}

// release drops the entry of an aggregate that is no longer reachable.
func (t *Tracker[T]) release(w weak.Pointer[byte]) {
	t.mu.Lock()
	delete(t.entries, w)
	t.mu.Unlock()
}

// Detach stops tracking v and releases its snapshot. Detaching an aggregate
// that is not tracked does nothing.
func (t *Tracker[T]) Detach(ctx context.Context, v T) {
	w, err := key(v)
	if err != nil {
		return
	}
	if s, ok := FromContext(ctx); ok {
		s.stage(stagedKey[T]{t, w}, &staged{detached: true, apply: func() { t.remove(v, w) }})
		return
	}
	t.remove(v, w)
}

func (t *Tracker[T]) remove(v T, w weak.Pointer[byte]) {
	t.mu.Lock()
	e, ok := t.entries[w]
	delete(t.entries, w)
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
	p := ptrOf(v)
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
	t.mu.RUnlock()
	if !ok {
		return zero, ErrNotTracked
	}
	return e.snap, nil
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

// Lookup returns the aggregate remembered under id in the scope carried by
// ctx (the identity map), if any.
func (t *Tracker[T]) Lookup(ctx context.Context, id any) (T, bool) {
	var zero T
	s, ok := FromContext(ctx)
	if !ok {
		return zero, false
	}
	v, ok := s.lookup(t, id)
	if !ok {
		return zero, false
	}
	return v.(T), true
}

// Remember records v under id in the scope carried by ctx, so that
// [Tracker.Lookup] finds it for the rest of the scope. Without a scope it
// does nothing.
func (t *Tracker[T]) Remember(ctx context.Context, id any, v T) {
	if s, ok := FromContext(ctx); ok {
		s.remember(t, id, v)
	}
}

// Forget removes id from the identity map of the scope carried by ctx.
func (t *Tracker[T]) Forget(ctx context.Context, id any) {
	if s, ok := FromContext(ctx); ok {
		s.forget(t, id)
	}
}
