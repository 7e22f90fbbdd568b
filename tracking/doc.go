// Package tracking takes snapshots of aggregates and detects their changes.
//
// Its one job: remember how each loaded aggregate looked, so that a save
// can ask what changed since.
//
// A [Tracker] attaches an aggregate by taking a deep copy of it ([Copy]),
// reports the differences between the aggregate and that snapshot
// ([Tracker.Changes], built on package diff), and detaches it. After a save
// whose changes are known, [Tracker.Prepare] builds the next snapshot from
// the previous one, copying only what changed, and [Prepared.Commit]
// installs it once the save succeeded. Snapshots are held against weak
// pointers: an aggregate that becomes unreachable has its snapshot released
// without being detached.
//
// A [Scope] carried in a context.Context is a unit of work: snapshot
// changes made in it are staged and applied when it commits, and dropped
// when it rolls back, so a snapshot never advances past what the store has
// committed. [Scope.OnCommit] registers what must happen once the unit of
// work is durable (it runs after the snapshots advanced), and never after
// a rollback; [Scope.OnRollback], what undoes in-memory changes when it
// rolls back. Until the scope ends, [Tracker.Pending] reports an aggregate
// staged in it as unfinished ([ErrUnfinished]) anywhere else, so that a
// repository does not save its changes a second time. A scope is also an
// identity map ([Lookup], [Remember], [Forget]): within one unit of work,
// each aggregate is loaded once.
//
// Errors wrap the model errors of package ddd (ddd.ErrUnsupported,
// ddd.ErrCycle); a value nested deeper than 100,000 levels, the limit
// package diff applies too, is refused with ddd.ErrUnsupported.
package tracking
