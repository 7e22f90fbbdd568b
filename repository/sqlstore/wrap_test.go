package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// unwrapping wraps hooks and passes the calls on: only the methods of
// repository.Hooks are promoted from the embedded interface, never the
// store's abilities (SelectForUpdate, DeleteByID, ...). It unwraps to the
// hooks it wraps.
type unwrapping[T any, ID comparable] struct{ repository.Hooks[T, ID] }

func (p unwrapping[T, ID]) Unwrap() repository.Hooks[T, ID] { return p.Hooks }

// hiding is unwrapping without Unwrap.
type hiding[T any, ID comparable] struct{ repository.Hooks[T, ID] }

// TestWrapperKeepsUpdateLocked: a wrapper that implements only the hooks
// and Unwrap keeps Update of an aggregate without a version locked, so
// that concurrent Updates lose no increment.
func TestWrapperKeepsUpdateLocked(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		b.raw.exec(t, `CREATE TABLE counters (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)`)
		m, err := NewMapping[*counter](Table{Name: "counters"})
		require.NoError(t, err)
		wrap := func(h repository.Hooks[*counter, int64]) repository.Hooks[*counter, int64] {
			return unwrapping[*counter, int64]{h}
		}
		hide := func(h repository.Hooks[*counter, int64]) repository.Hooks[*counter, int64] {
			return hiding[*counter, int64]{h}
		}
		lockSelect := NewStore[*counter, int64](b.db, m).lockSelect
		increment := func(_ context.Context, c *counter) error { c.n++; return nil }

		// The load of Update is the store's locking one.
		repo, err := NewRepository[*counter, int64](b.db, m, repository.WrapHooks(wrap))
		require.NoError(t, err)
		require.NoError(t, repo.Save(ctx, &counter{id: 1}))
		b.log.take()
		require.NoError(t, repo.Update(ctx, 1, increment))
		assert.Contains(t, sqls(b.log.take()), lockSelect, "Update loads with SelectForUpdate, found through Unwrap")
		_, err = repo.FindForUpdate(ctx, 1)
		assert.NotErrorIs(t, err, repository.ErrUnsupported)

		// Concurrent Updates queue.
		quiet, err := NewRepository[*counter, int64](b.quiet, m, repository.WrapHooks(wrap))
		require.NoError(t, err)
		const workers = 20
		var wg sync.WaitGroup
		var ok atomic.Int64
		for range workers {
			wg.Go(func() {
				err := quiet.Update(ctx, 1, func(_ context.Context, c *counter) error {
					c.n++
					time.Sleep(2 * time.Millisecond) // let the others load meanwhile
					return nil
				})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, repository.ErrConflict):
				default:
					t.Errorf("update: %v", err)
				}
			})
		}
		wg.Wait()
		n := b.raw.count(t, "SELECT n FROM counters WHERE id = 1")
		assert.Equal(t, 1+ok.Load(), n, "every successful increment is kept")
		assert.Equal(t, int64(1+workers), n, "no writer failed: they queued on the lock")

		// The same wrapper without Unwrap hides the store's Locker: Update
		// would load with the plain Select. Here that alone loses nothing,
		// because the store has two more defences (on PostgreSQL at READ
		// COMMITTED, the load of an Update locks its root through Select
		// too; on SQLite, BEGIN IMMEDIATE queues the writers), so what is
		// checked is that the ability is lost; on hooks without such
		// defences, increments would be lost.
		hidden, err := NewRepository[*counter, int64](b.db, m, repository.WrapHooks(hide))
		require.NoError(t, err)
		_, err = hidden.FindForUpdate(ctx, 1)
		assert.ErrorIs(t, err, repository.ErrUnsupported, "the Locker is not found")
		// (On MySQL the load of an Update at READ COMMITTED locks its
		// root FOR UPDATE too: the two loads cannot be told apart.)
		if (b.pgx || strings.HasSuffix(lockSelect, " FOR UPDATE")) && b.db.dialect.writeSuffix != b.db.dialect.lockSuffix {
			b.log.take()
			require.NoError(t, hidden.Update(ctx, 1, increment))
			assert.NotContains(t, sqls(b.log.take()), lockSelect, "Update loads without SelectForUpdate")
		}
	})
}

// committing is a wrapper that registers, with repository.AfterCommit, a
// function per successful write, which records what the database and the
// tracker hold when it runs.
type committing struct {
	unwrapping[*order, orderID]
	b    *backend
	tb   testing.TB
	repo func() *Repository[*order, orderID]
	mu   sync.Mutex
	ran  []string
}

func (c *committing) after(ctx context.Context, op string, o *order) {
	repository.AfterCommit(ctx, func() {
		// Read on a connection of its own: only what is committed.
		n := c.b.raw.count(c.tb, "SELECT count(*) FROM orders WHERE id = ?", int64(o.id))
		var v int64 = -1
		if n > 0 {
			v = c.b.raw.count(c.tb, "SELECT version FROM orders WHERE id = ?", int64(o.id))
		}
		snap := "untracked"
		if changed, err := c.repo().Tracker().Changed(context.Background(), o); err == nil {
			snap = fmt.Sprintf("changed %v", changed)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.ran = append(c.ran, fmt.Sprintf("%s %d: stored v%d, %s", op, o.id, v, snap))
	})
}

func (c *committing) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.ran
	c.ran = nil
	return r
}

func (c *committing) Insert(ctx context.Context, o *order) error {
	if err := c.Hooks.Insert(ctx, o); err != nil {
		return err
	}
	c.after(ctx, "insert", o)
	return nil
}

func (c *committing) Update(ctx context.Context, o *order, ch repository.Changes) error {
	if err := c.Hooks.Update(ctx, o, ch); err != nil {
		return err
	}
	c.after(ctx, "update", o)
	return nil
}

func (c *committing) Delete(ctx context.Context, o *order, version int64) error {
	if err := c.Hooks.Delete(ctx, o, version); err != nil {
		return err
	}
	c.after(ctx, "delete", o)
	return nil
}

// TestAfterCommitOnEveryUnitOfWork: the functions a wrapper registers
// with repository.AfterCommit run once the write is committed, after the
// snapshots advanced, in every kind of unit of work of the DB, at the
// outermost commit only, and never when the unit of work does not commit.
func TestAfterCommitOnEveryUnitOfWork(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		var repo *Repository[*order, orderID]
		w := &committing{b: b, tb: t, repo: func() *Repository[*order, orderID] { return repo }}
		var err error
		repo, err = NewRepository[*order, orderID](b.db, orderMapping(t), repository.WrapHooks(func(h repository.Hooks[*order, orderID]) repository.Hooks[*order, orderID] {
			w.Hooks = h
			return w
		}))
		require.NoError(t, err)

		// Outside a unit of work: when the save returns.
		o := newOrder(1, "alice", threeItems()...)
		require.NoError(t, repo.Save(ctx, o))
		assert.Equal(t, []string{"insert 1: stored v0, changed false"}, w.take())

		// InTx, with a nested InTx: at the outer commit, in order.
		err = b.db.InTx(ctx, func(ctx context.Context) error {
			o.setQuantity(1, 2)
			if err := repo.Save(ctx, o); err != nil {
				return err
			}
			err := b.db.InTx(ctx, func(ctx context.Context) error {
				return repo.Save(ctx, newOrder(2, "bob"))
			})
			assert.Empty(t, w.take(), "nothing runs before the outer commit")
			return err
		})
		require.NoError(t, err)
		assert.Equal(t, []string{"update 1: stored v1, changed false", "insert 2: stored v0, changed false"}, w.take())

		// InTx rolled back, or whose COMMIT fails (the customer's deferred
		// foreign key): nothing runs.
		err = b.db.InTx(ctx, func(ctx context.Context) error {
			o.setQuantity(1, 3)
			if err := repo.Save(ctx, o); err != nil {
				return err
			}
			return errors.New("a later step fails")
		})
		require.Error(t, err)
		err = b.db.InTx(ctx, func(ctx context.Context) error {
			return repo.Save(ctx, newOrder(3, "nobody"))
		})
		require.Error(t, err, "the foreign key fails at COMMIT")
		assert.False(t, b.exists(t, 3))
		assert.Empty(t, w.take(), "a rollback runs nothing")

		// Update: on pgx its save carries the COMMIT.
		require.NoError(t, repo.Update(ctx, 2, func(_ context.Context, o *order) error {
			o.customer = "alice"
			return nil
		}))
		assert.Equal(t, []string{"update 2: stored v1, changed false"}, w.take())

		// A function that fails after its last save was sent with
		// CommitWith: on pgx and MySQL the COMMIT went with the save, and
		// the function runs; on database/sql elsewhere the COMMIT was never
		// sent.
		err = b.db.InTx(ctx, func(ctx context.Context) error {
			if err := repo.Save(b.db.CommitWith(ctx), o); err != nil { // quantity 3, still unsaved
				return err
			}
			return errors.New("a later step fails")
		})
		require.Error(t, err)
		if b.pgx || b.mysql() {
			require.ErrorIs(t, err, repository.ErrOutcomeUnknown)
			assert.Equal(t, []string{"update 1: stored v2, changed false"}, w.take())
		} else {
			assert.Empty(t, w.take())
			require.NoError(t, repo.Save(ctx, o))
			assert.Equal(t, []string{"update 1: stored v2, changed false"}, w.take())
		}

		// A caller's transaction joined: when the caller says it
		// committed, not before.
		tx := b.begin(t)
		jctx, j, err := tx.join(ctx)
		require.NoError(t, err)
		o.setQuantity(2, 5)
		require.NoError(t, repo.Save(jctx, o))
		require.NoError(t, tx.commit())
		assert.Empty(t, w.take(), "the joined unit of work has not been told")
		j.Committed()
		assert.Equal(t, []string{"update 1: stored v3, changed false"}, w.take())

		tx = b.begin(t)
		jctx, j, err = tx.join(ctx)
		require.NoError(t, err)
		o.setQuantity(2, 6)
		require.NoError(t, repo.Save(jctx, o))
		tx.rollback()
		j.RolledBack()
		assert.Empty(t, w.take())

		// InPGXTx and InSQLTx: after the caller's transaction committed.
		tx = b.begin(t)
		inCaller := func(fn func(ctx context.Context) error) error {
			if tx.pgx != nil {
				return b.db.InPGXTx(ctx, tx.pgx, fn)
			}
			return b.db.InSQLTx(ctx, tx.sql, fn)
		}
		require.NoError(t, inCaller(func(ctx context.Context) error {
			if err := repo.Save(ctx, o); err != nil {
				return err
			}
			assert.Empty(t, w.take())
			return nil
		}))
		assert.Equal(t, []string{"update 1: stored v4, changed false"}, w.take())

		// Remove and RemoveByID outside a unit of work: when they return.
		require.NoError(t, repo.Remove(ctx, o))
		assert.Equal(t, []string{"delete 1: stored v-1, untracked"}, w.take())
		err = b.db.InTx(ctx, func(ctx context.Context) error { return repo.RemoveByID(ctx, 2) })
		require.NoError(t, err)
		assert.Equal(t, []string{"delete 2: stored v-1, untracked"}, w.take(), "RemoveByID goes through the wrapper's Select and Delete, not the store's DeleteByID")
	})
}
