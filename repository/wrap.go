package repository

import (
	"context"
	"sync"

	"github.com/dddkit/dddkit/tracking"
)

// WrapHooks makes [NewSupport] use wrap(hooks) in place of the hooks it is
// given: a wrapper (a cache, a tracer, a counter) sits between the
// repository and the store, and business code still calls Find, Save,
// Remove and Update on the repository. Given several times, each wraps
// what the ones before made: the last given is the outermost. A store's
// constructor that passes its options to NewSupport (sqlstore's
// NewRepository does) takes it too.
//
// The wrapper should have a method Unwrap() Hooks[T, ID] that returns the
// hooks it wraps, so that the abilities of the hooks under it are found
// (see [As]). NewSupport fails when wrap is nil, returns nil, or is for
// hooks of other types than NewSupport's.
func WrapHooks[T any, ID comparable](wrap func(Hooks[T, ID]) Hooks[T, ID]) Option {
	return func(o *options) { o.wraps = append(o.wraps, wrap) }
}

// maxUnwrap bounds the chain of Unwrap that [As] walks, against hooks that
// unwrap to themselves.
const maxUnwrap = 100

// As returns the first hooks of the chain of h that implement C: h itself
// when it does, else the hooks its method Unwrap() Hooks[T, ID] returns,
// and so on, as net/http's ResponseController finds the abilities of a
// wrapped ResponseWriter. It reports false when no hooks of the chain
// implement C (a chain of more than 100 is cut there). C is an interface
// (such as [Locker]) or a concrete type of hooks:
//
//	l, ok := repository.As[repository.Locker[*Order, OrderID]](hooks)
//
// [NewSupport] finds with As the abilities that it may use past a wrapper
// without missing anything the wrapper does with writes: [Locker],
// [Orderer], [WritesBack] and [Partial]. Hence a wrapper that does not
// implement one defers to the hooks under it (a wrapper that forgets
// Locker never turns Update of an aggregate without a version into an
// unlocked load), and one that implements it is used instead, and must do
// what the ability promises: a cache that implements Locker must read the
// store, under the lock, in SelectForUpdate, never the cache. [IDDeleter]
// is used only when the outermost hooks implement it, since a delete that
// went past a wrapper would go past what the wrapper does with writes (a
// cache's invalidation): otherwise RemoveByID loads the aggregate and
// deletes it through the wrapper's Select and Delete.
func As[C any, T any, ID comparable](h Hooks[T, ID]) (C, bool) {
	for range maxUnwrap {
		if h == nil {
			break
		}
		if c, ok := h.(C); ok {
			return c, true
		}
		u, ok := h.(interface{ Unwrap() Hooks[T, ID] })
		if !ok {
			break
		}
		h = u.Unwrap()
	}
	var zero C
	return zero, false
}

// AfterCommit arranges for f to run once what the hooks are writing with
// ctx is committed: the one way for a wrapper of hooks (see [WrapHooks])
// to act on a write once it is durable, and never before, whether or not
// the write belongs to a unit of work. Call it from a hook, with the
// hook's context, once the hooks it wraps have written without error:
//
//   - In a unit of work (a tracking scope in ctx, as [Transactor] and the
//     SQL layer's transactions carry), f runs when the unit of work
//     commits, after the snapshots of its saves advanced, with the
//     functions of [tracking.Scope.OnCommit]; a unit of work joined by a
//     nested one runs f at the outermost commit. f never runs when the
//     unit of work rolls back, its commit fails, or the answer to its
//     commit is lost ([ErrOutcomeUnknown]): a wrapper that must act then
//     too (a cache dropping an entry, which is always safe) registers with
//     [tracking.Scope.OnRollback] as well. A scope with no transaction
//     under it ([tracking.InScope] around writes that each commit on their
//     own) counts as a unit of work too: f waits for it, and does not run
//     when it rolls back, though the writes stay.
//   - In a save of [AggregateRepositorySupport] outside a unit of work
//     (Save, Remove or RemoveByID with no scope in ctx), the hooks' write
//     commits before they return: f runs when the save returns, after its
//     snapshot advanced, if its hook returned nil, even when the snapshot
//     then failed (the write is in the store).
//   - Elsewhere (no unit of work and no save of a repository, or a unit of
//     work that has ended), f runs at once when what ctx belongs to has
//     committed, or was never a unit of work, and never when it rolled
//     back.
//
// Functions run in the order they were registered, in the goroutine that
// ends the unit of work or the save. A nil f is ignored.
func AfterCommit(ctx context.Context, f func()) {
	if f == nil {
		return
	}
	sc, scoped := tracking.FromContext(ctx)
	if scoped && !sc.Done() {
		sc.OnCommit(f)
		return
	}
	if a, ok := ctx.Value(afterKey{}).(*afterSave); ok {
		a.add(f)
		return
	}
	if scoped {
		sc.OnCommit(f) // ended: runs f at once if it committed
		return
	}
	f()
}

// afterKey is the context key of the afterSave of a save outside a unit
// of work.
type afterKey struct{}

// afterSave holds the functions that AfterCommit registers in a save made
// outside a unit of work, run when the save ends if its hook wrote.
type afterSave struct {
	mu    sync.Mutex
	fs    []func()
	wrote bool // the save's hook returned nil
	done  bool // the save ended
}

// saveContext returns the context for the hooks of a save: when ctx
// carries no unit of work (no scope, or one that ended), one that carries
// a new afterSave, returned too; ctx and nil otherwise.
func saveContext(ctx context.Context) (context.Context, *afterSave) {
	if sc, ok := tracking.FromContext(ctx); ok && !sc.Done() {
		return ctx, nil
	}
	a := &afterSave{}
	return context.WithValue(ctx, afterKey{}, a), a
}

func (a *afterSave) add(f func()) {
	a.mu.Lock()
	if !a.done {
		a.fs = append(a.fs, f)
		a.mu.Unlock()
		return
	}
	wrote := a.wrote
	a.mu.Unlock()
	if wrote {
		f() // registered after its save ended, with a context kept past it
	}
}

// written records that the save's hook wrote without error.
func (a *afterSave) written() {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.wrote = true
	a.mu.Unlock()
}

// end ends the save: the functions registered run if its hook wrote.
func (a *afterSave) end() {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.done = true
	fs, wrote := a.fs, a.wrote
	a.fs = nil
	a.mu.Unlock()
	if wrote {
		for _, f := range fs {
			f()
		}
	}
}
