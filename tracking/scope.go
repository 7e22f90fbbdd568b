package tracking

import (
	"context"
	"sync"
)

// Scope is a unit of work carried in a [context.Context]. While a scope is
// in the context, a [Tracker] stages what it would otherwise apply at once
// (attaching, advancing and detaching snapshots) and applies it when the
// scope commits; a rollback drops it. A scope also holds an identity map:
// within one scope, each aggregate is loaded once.
//
// A transaction helper creates a scope with the transaction, puts it in the
// context with [WithScope], and commits the scope after the transaction
// commits, or rolls it back. A Scope is safe for concurrent use, and
// finished once committed or rolled back: later calls to Commit or Rollback
// do nothing.
//
// Code that must act once the unit of work is durable, and only then (a
// cache that drops what the unit of work changed, say), registers with
// [Scope.OnCommit]; code that must undo in-memory changes when it is not,
// with [Scope.OnRollback].
type Scope struct {
	mu        sync.Mutex
	done      bool
	committed bool            // done by Commit, not Rollback
	order     []any           // staged keys, in first-staged order
	staged    map[any]*staged // by stagedKey
	identity  map[any]any     // by identityKey
	undo      []func()
	after     []func() // OnCommit's, in registration order
}

// staged is one aggregate's pending state in a scope.
type staged struct {
	detached bool
	snap     any    // the pending snapshot (a T) when !detached
	apply    func() // applies this pending state to its tracker
	// mark, when set, is called once the state is staged, and end when
	// the scope ends, after apply when it commits (see Tracker.Pending).
	mark, end func()
}

// NewScope returns an empty scope.
func NewScope() *Scope {
	return &Scope{}
}

type scopeKey struct{}

// WithScope returns a copy of ctx that carries s.
func WithScope(ctx context.Context, s *Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// FromContext returns the scope carried by ctx, if any.
func FromContext(ctx context.Context) (*Scope, bool) {
	if ctx == nil {
		return nil, false
	}
	s, ok := ctx.Value(scopeKey{}).(*Scope)
	return s, ok && s != nil
}

// Commit applies the staged changes to their trackers, in the order they
// were first staged, ends the scope, and then runs the functions registered
// with [Scope.OnCommit], in the order they were registered.
func (s *Scope) Commit() {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	s.done, s.committed = true, true
	order, st, after := s.order, s.staged, s.after
	s.order, s.staged, s.identity, s.undo, s.after = nil, nil, nil, nil, nil
	s.mu.Unlock()
	for _, k := range order {
		st[k].apply()
	}
	ended(order, st)
	for _, f := range after {
		f()
	}
}

// ended tells the staged states of a scope that it ended.
func ended(order []any, st map[any]*staged) {
	for _, k := range order {
		if f := st[k].end; f != nil {
			f()
		}
	}
}

// Rollback drops the staged changes, undoes what the scope was told to undo
// (see [Scope.OnRollback]), and ends the scope. The functions registered
// with [Scope.OnCommit] are dropped without running.
func (s *Scope) Rollback() {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	s.done = true
	undo := s.undo
	order, st := s.order, s.staged
	s.order, s.staged, s.identity, s.undo, s.after = nil, nil, nil, nil, nil
	s.mu.Unlock()
	for i := len(undo) - 1; i >= 0; i-- {
		undo[i]()
	}
	ended(order, st)
}

// OnRollback registers f to run if the scope rolls back; functions run in
// reverse order of registration. A repository uses it to restore in-memory
// state it changed for a save, such as the aggregate's version. If the
// scope is already finished, OnRollback does nothing.
func (s *Scope) OnRollback(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		s.undo = append(s.undo, f)
	}
}

// OnCommit registers f to run once the scope commits, after the staged
// snapshots are applied and the scope has ended; functions run in the
// order they were registered, in the goroutine that calls Commit. f never
// runs if the scope rolls back. A transaction helper commits the scope
// only after the transaction committed, so f runs once the changes of the
// unit of work are in the store: it is where a cache drops or refreshes
// what the unit of work wrote. A panic in f goes on to the caller of
// Commit, and the functions registered after it do not run.
//
// If the scope is already finished, OnCommit runs f at once when the scope
// committed (its changes are in the store, which is all f waits for), and
// does nothing when it rolled back, as [Scope.OnRollback] does nothing
// then: a rolled-back unit of work never becomes durable.
func (s *Scope) OnCommit(f func()) {
	if f == nil {
		return
	}
	s.mu.Lock()
	if !s.done {
		s.after = append(s.after, f)
		s.mu.Unlock()
		return
	}
	committed := s.committed
	s.mu.Unlock()
	if committed {
		f()
	}
}

// Done reports whether the scope was committed or rolled back.
func (s *Scope) Done() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

func (s *Scope) stage(key any, st *staged) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		// A finished scope stages nothing: apply at once, as without one.
		st.apply()
		return
	}
	if s.staged == nil {
		s.staged = make(map[any]*staged)
	}
	_, ok := s.staged[key]
	if !ok {
		s.order = append(s.order, key)
	}
	s.staged[key] = st
	if st.mark != nil && !ok {
		st.mark()
	}
}

func (s *Scope) pending(key any) (*staged, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.staged[key]
	return st, ok
}

// identityKey is the key of an aggregate of type T in a scope's identity
// map: each type has its own key type, so identities of two types never
// collide.
type identityKey[T any, ID comparable] struct{ id ID }

// Lookup returns the aggregate of type T with identity id remembered in the
// scope carried by ctx (its identity map), if any.
func Lookup[T any, ID comparable](ctx context.Context, id ID) (T, bool) {
	var zero T
	s, ok := FromContext(ctx)
	if !ok {
		return zero, false
	}
	s.mu.Lock()
	v, ok := s.identity[identityKey[T, ID]{id}]
	s.mu.Unlock()
	if !ok {
		return zero, false
	}
	return v.(T), true
}

// Remember records v as the aggregate of type T with identity id in the
// scope carried by ctx, so that [Lookup] finds it for the rest of the
// scope. Without a scope, or in a finished one, it does nothing.
func Remember[T any, ID comparable](ctx context.Context, id ID, v T) {
	s, ok := FromContext(ctx)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	if s.identity == nil {
		s.identity = make(map[any]any)
	}
	s.identity[identityKey[T, ID]{id}] = v
}

// Forget removes the aggregate of type T with identity id from the
// identity map of the scope carried by ctx.
func Forget[T any, ID comparable](ctx context.Context, id ID) {
	if s, ok := FromContext(ctx); ok {
		s.mu.Lock()
		delete(s.identity, identityKey[T, ID]{id})
		s.mu.Unlock()
	}
}

// InScope runs fn with a new scope in its context, committing the scope
// when fn returns nil and rolling it back when fn returns an error or panics
// (the panic goes on). If ctx already carries a scope, fn joins it.
func InScope(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	if _, ok := FromContext(ctx); ok {
		return fn(ctx)
	}
	sc := NewScope()
	returned := false
	defer func() {
		if !returned {
			// fn panicked or called runtime.Goexit: roll back, and let
			// the panic (if any) go on.
			p := recover()
			sc.Rollback()
			if p != nil {
				panic(p)
			}
			return
		}
		if err != nil {
			sc.Rollback()
		} else {
			sc.Commit()
		}
	}()
	err = fn(WithScope(ctx, sc))
	returned = true
	return err
}
