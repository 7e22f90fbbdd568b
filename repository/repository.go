// Package repository implements the Repository pattern with snapshot change
// tracking for aggregates.
//
// A concrete repository supplies four [Hooks] (select, insert, update with
// the diff, delete) and gets [Repository] from [AggregateRepositorySupport]:
//
//   - Find selects an aggregate and attaches it: a snapshot is taken by deep
//     copy. Within one unit of work (a tracking scope in the context), the
//     same aggregate is selected once and returned as the same instance.
//   - Save of an aggregate that is not tracked inserts it and starts
//     tracking it, unless the store can tell it is stored already (its
//     generated key is set): that is refused with [ErrUntracked], never
//     inserted a second time. Save of a tracked aggregate compares it with its snapshot
//     and calls the update hook with the differences, only when there are
//     some: an unchanged aggregate costs no statement. A save never reads
//     the store again.
//   - Remove deletes the aggregate and stops tracking it; RemoveByID
//     deletes it by identity, at a version when [IfVersion] gives one,
//     without loading it when the hooks implement [IDDeleter].
//   - Update loads, changes and saves an aggregate in one unit of work;
//     UpdateOrCreate makes the aggregate first when there is none, safely
//     under concurrency.
//
// # Versions
//
// If the root has an integer field tagged `ddd:"version"`, every save that
// changes anything in the aggregate, a child entity alone included, advances
// the version by one, and the hooks are told the version the store must find
// ([Changes.OldVersion]) so that they can check it and report a conflict
// with [ErrConflict]. The version field is set on the aggregate before the
// update hook runs and restored if the save fails or its unit of work rolls
// back.
//
// # Units of work
//
// A snapshot advances only when the save that carried it is committed. Give
// the support a [Transactor] (the SQL layer's transaction helper is one):
// it runs a function in a transaction and a tracking scope, and the
// snapshots staged by the saves in it are applied after the commit and
// dropped on a rollback, so that a retry sends the same changes again.
// Without a Transactor, each Save outside a scope advances the snapshot as
// soon as its hooks return. An aggregate saved in a unit of work cannot be
// saved or removed outside it until it ends ([ErrUnfinished]): what the
// store holds of it is unknown until then.
//
// # Wrapping the hooks
//
// A cache, a tracer or a counter goes between the support and the store's
// hooks without business code seeing it: [WrapHooks] makes [NewSupport]
// (and a store's constructor that passes its options on, such as
// sqlstore's NewRepository) run on the hooks the wrapper makes of the
// store's. A wrapper implements [Hooks] and a method
//
//	Unwrap() Hooks[T, ID]
//
// that returns the hooks it wraps. The optional abilities of the hooks
// ([Locker], [Orderer], [WritesBack], [Partial]) are then found through
// it, with [As]: on the outermost hooks that implement them. A wrapper
// that does not implement Locker defers to the store's, so that Update of
// an aggregate without a version still loads it locked; one that
// implements it is used instead, and must keep its promise (a cache reads
// the store, never itself, in SelectForUpdate). Without Unwrap, the
// abilities of the store are hidden: FindForUpdate fails with
// [ErrUnsupported], and Update loads an aggregate without a version
// unlocked, so that concurrent Updates may overwrite each other. [IDDeleter]
// is used only on the outermost hooks, so that no delete goes past a
// wrapper.
//
// A wrapper that must act on a write once it is durable, and never before
// (a cache dropping or refreshing what was written), calls [AfterCommit]
// from its hook once the hooks it wraps wrote: the function runs after the
// commit of the unit of work the write belongs to (see
// [tracking.Scope.OnCommit]), or when the save returns when it belongs to
// none, and never after a rollback.
package repository

import (
	"context"
	"errors"
	"fmt"

	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/tracking"
)

// Sentinel errors, usable with errors.Is.
var (
	// ErrNotFound reports that no aggregate has the requested identity. A
	// select hook returns it (possibly wrapped) when the store has no row.
	ErrNotFound = errors.New("aggregate not found")
	// ErrConflict reports an optimistic-lock conflict: the aggregate was
	// changed or removed in the store since it was loaded. Hooks return it
	// (possibly wrapped) when the version check finds no row.
	ErrConflict = errors.New("optimistic lock conflict")
	// ErrExists reports that a new aggregate could not be inserted because
	// the store already holds one with the same identity: another writer
	// inserted it first. Nothing of the insert was written. It is not a
	// conflict of versions, and a retry of the same insert fails the same
	// way, so [RetryPolicy] does not retry it.
	ErrExists = errors.New("an aggregate with this identity already exists")
	// ErrOutcomeUnknown reports a write whose outcome cannot be known: the
	// connection was lost after the statements were sent and before the
	// database answered, so the change may or may not have been committed.
	// The in-memory aggregate and its snapshot are left as if the write had
	// failed. A retry of Save applies the change at most once: when the
	// lost write did commit, the version check of the retry fails with
	// [ErrConflict] (for a versioned aggregate); load the aggregate again to
	// see which happened.
	ErrOutcomeUnknown = errors.New("outcome of the write unknown")
	// ErrUntracked reports a save of an aggregate that is not tracked but
	// is already stored: its key, which the store generates, is set. Such
	// an aggregate comes from a read that does not track (a store's own
	// select), or was detached; inserting it would store a copy under a new
	// key. Nothing was written. Load it with Find (or Attach it as soon as
	// it is read) and save that instance.
	ErrUntracked = errors.New("the aggregate is stored but not tracked: load it with Find, or Attach it when it is read, and save that")
)

// The errors of change detection are those of package diff; they are
// re-exported here so that callers of a repository need one import.
var (
	// ErrDuplicateID is [diff.ErrDuplicateID].
	ErrDuplicateID = diff.ErrDuplicateID
	// ErrNilEntity is [diff.ErrNilEntity].
	ErrNilEntity = diff.ErrNilEntity
	// ErrUnsupported is [diff.ErrUnsupported].
	ErrUnsupported = diff.ErrUnsupported
	// ErrCycle is [diff.ErrCycle].
	ErrCycle = diff.ErrCycle
)

// ErrUnfinished is [tracking.ErrUnfinished]: an aggregate saved in a unit
// of work that has not ended is saved or removed outside it.
var ErrUnfinished = tracking.ErrUnfinished

// Repository is a collection-like store of aggregates of type T (a pointer
// to the root) identified by ID.
type Repository[T any, ID comparable] interface {
	// Find returns the aggregate with identity id, or an error that wraps
	// ErrNotFound.
	Find(ctx context.Context, id ID) (T, error)
	// Save inserts a new aggregate or writes the changes of a loaded one.
	Save(ctx context.Context, agg T) error
	// Remove deletes the aggregate.
	Remove(ctx context.Context, agg T) error
}

// Hooks are what a concrete repository supplies to
// [AggregateRepositorySupport]: the store's own operations. Each runs in the
// context it is given, which carries the unit of work (transaction and
// tracking scope) of the call, if any.
type Hooks[T any, ID comparable] interface {
	// Select loads the aggregate with identity id. It returns an error
	// wrapping ErrNotFound when there is none.
	Select(ctx context.Context, id ID) (T, error)
	// Insert writes a new aggregate, root and children.
	Insert(ctx context.Context, agg T) error
	// Update writes the changes of a tracked aggregate, and only them. It
	// must not change the aggregate: the snapshot that follows the save is
	// prepared before it runs.
	Update(ctx context.Context, agg T, changes Changes) error
	// Delete removes the aggregate, children first. version is the version
	// the store must find, as in Changes.OldVersion.
	Delete(ctx context.Context, agg T, version int64) error
}

// Locker is implemented by hooks that can load an aggregate and lock it
// until the end of the transaction of ctx (SELECT ... FOR UPDATE), for
// [AggregateRepositorySupport.FindForUpdate]. It is found past wrappers
// that do not implement it (see [As]): a wrapper that does takes it over.
type Locker[T any, ID comparable] interface {
	// SelectForUpdate is Select that also locks the aggregate's root. It
	// fails when ctx carries no transaction, where the lock would be
	// released at once.
	SelectForUpdate(ctx context.Context, id ID) (T, error)
}

// IDDeleter is implemented by hooks that can delete an aggregate by its
// identity alone, without loading it, for
// [AggregateRepositorySupport.RemoveByID]. DeleteByID removes the
// aggregate with identity id, children first. When version is not nil,
// the store must find that version, and fail with ErrConflict when it
// finds another. When there is no aggregate with identity id, it fails
// with ErrNotFound, never ErrConflict. It is used only when the outermost
// hooks implement it, never past a wrapper (see [As]).
type IDDeleter[ID comparable] interface {
	DeleteByID(ctx context.Context, id ID, version *int64) error
}

// WritesBack is implemented by hooks that may write into the aggregate
// while they save it, such as keys that the database generates. When
// WritesBack reports true (it is asked once, by NewSupport), Save takes
// the next snapshot after the update hook ran, so that it holds what the
// hook wrote (the insert hook's writes are always in the snapshot, taken
// after it).
type WritesBack interface {
	WritesBack() bool
}

// Partial is implemented by hooks that leave some parts of an aggregate
// unstored, such as the fields sqlstore excludes with `db:"-"`: parts that
// are neither written nor loaded. Stores reports whether d, the changes
// of a save, touch anything the hooks store. When it reports false (and
// no stored order changed, see [Orderer]), Save writes nothing, leaves
// the version and the snapshot as they were, and returns nil: a change
// confined to unstored parts is no change to the store, and is not made
// to look like a saved one by a version bump.
type Partial interface {
	Stores(d diff.Result) bool
}

// Changes is what the update hook is given for one save.
type Changes struct {
	// Diff holds what changed since the aggregate was loaded or last saved.
	// It is empty only when the order of a collection changed and nothing
	// else did (see [Orderer]). The version field is not part of it.
	Diff diff.Result
	// Versioned reports whether the root has a version field. When it has,
	// the store must update the root's version from OldVersion to NewVersion
	// on the condition that it is OldVersion, and return ErrConflict when
	// no row matches; the aggregate's version field already holds NewVersion.
	Versioned bool
	// OldVersion is the version the aggregate had when loaded or last saved.
	OldVersion int64
	// NewVersion is OldVersion + 1.
	NewVersion int64
	// Old is the snapshot Diff was taken against (read-only): the
	// aggregate as loaded or last saved, of the repository's type T.
	Old any
}

// Orderer is implemented by hooks that store the order of some entity
// collections, such as a position column. A change of order alone is not
// a change to package diff, which matches entities by identity; Reordered
// reports whether old, the snapshot, and new differ in the order of such a
// collection, so that Save saves the aggregate even when the diff is
// empty. After a save with an Orderer, the snapshot is taken anew, so
// that it holds the order saved.
type Orderer[T any] interface {
	// Ordered reports whether the hooks store the order of any
	// collection; when false, Reordered is never called.
	Ordered() bool
	// Reordered reports whether the order of a stored collection differs
	// between old and new.
	Reordered(old, new T) bool
}

// Transactor runs fn in a unit of work: a transaction whose context carries
// a tracking scope, committed after fn returns nil and rolled back
// otherwise. A call made inside another joins it.
type Transactor interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
}

// opError wraps an error of a repository operation (from a hook, the
// tracker or the comparison) with the operation's name.
func opError(op string, err error) error {
	return fmt.Errorf("repository: %s: %w", op, err)
}
