package repository_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/tracking"
)

// passing wraps hooks and does nothing but pass the calls on: only the
// methods of Hooks are promoted from the embedded interface, never those
// of the abilities of the hooks it wraps. It unwraps to them.
type passing[T any, ID comparable] struct{ repository.Hooks[T, ID] }

func (p passing[T, ID]) Unwrap() repository.Hooks[T, ID] { return p.Hooks }

// opaque is passing without Unwrap: the wrapper that hides what it wraps.
type opaque[T any, ID comparable] struct{ repository.Hooks[T, ID] }

// lockingWrapper is a wrapper that implements Locker itself.
type lockingWrapper struct {
	passing[*unversioned, orderID]
	calls *[]string
}

func (l lockingWrapper) SelectForUpdate(ctx context.Context, id orderID) (*unversioned, error) {
	*l.calls = append(*l.calls, "wrapper's select for update")
	inner, _ := repository.As[repository.Locker[*unversioned, orderID]](l.Unwrap())
	return inner.SelectForUpdate(ctx, id)
}

// TestWrapperKeepsLocker is the trap of a wrapper that does not implement
// Locker: Update of an aggregate without a version must still load it
// locked, through the wrapper's Unwrap.
func TestWrapperKeepsLocker(t *testing.T) {
	ctx := context.Background()
	increment := func(_ context.Context, u *unversioned) error { u.n++; return nil }

	t.Run("Unwrap", func(t *testing.T) {
		us := &unversionedStore{row: unversioned{id: 1}}
		repo, err := repository.NewSupport[*unversioned, orderID](us, repository.WrapHooks(func(h repository.Hooks[*unversioned, orderID]) repository.Hooks[*unversioned, orderID] {
			return passing[*unversioned, orderID]{h}
		}))
		require.NoError(t, err)
		require.NoError(t, repo.Update(ctx, 1, increment))
		assert.Equal(t, []string{"select for update"}, us.calls, "the store's Locker is found through Unwrap")
		assert.Equal(t, 1, us.row.n)
		_, err = repo.FindForUpdate(ctx, 1)
		require.NoError(t, err)
	})

	t.Run("without Unwrap", func(t *testing.T) {
		// What the trap would be: the store's Locker is hidden, and Update
		// loads without a lock, so that concurrent Updates may overwrite
		// each other's changes.
		us := &unversionedStore{row: unversioned{id: 1}}
		wrapped := opaque[*unversioned, orderID]{us}
		_, ok := repository.As[repository.Locker[*unversioned, orderID]](repository.Hooks[*unversioned, orderID](wrapped))
		assert.False(t, ok, "a wrapper without Unwrap hides the Locker of what it wraps")
		repo, err := repository.NewSupport[*unversioned, orderID](wrapped)
		require.NoError(t, err)
		require.NoError(t, repo.Update(ctx, 1, increment))
		assert.Equal(t, []string{"select"}, us.calls, "an unlocked load")
		_, err = repo.FindForUpdate(ctx, 1)
		assert.ErrorIs(t, err, repository.ErrUnsupported)
	})

	t.Run("wrapper's own Locker", func(t *testing.T) {
		// The outermost Locker is used: a wrapper that implements it takes
		// it over (a cache that reads the store under the lock, say).
		us := &unversionedStore{row: unversioned{id: 1}}
		repo, err := repository.NewSupport[*unversioned, orderID](us, repository.WrapHooks(func(h repository.Hooks[*unversioned, orderID]) repository.Hooks[*unversioned, orderID] {
			return lockingWrapper{passing[*unversioned, orderID]{h}, &us.calls}
		}))
		require.NoError(t, err)
		require.NoError(t, repo.Update(ctx, 1, increment))
		assert.Equal(t, []string{"wrapper's select for update", "select for update"}, us.calls)
	})
}

// rowLockStore holds one aggregate without a version, and locks it in
// SelectForUpdate until the unit of work of the load ends, as a
// database's row lock does. second is closed when a second load has
// read the row, or waits for its lock.
type rowLockStore struct {
	mu     sync.Mutex // guards row
	row    unversioned
	lock   sync.Mutex // the row lock
	loads  atomic.Int32
	second chan struct{}
}

func (s *rowLockStore) began() {
	if s.loads.Add(1) == 2 {
		close(s.second)
	}
}

func (s *rowLockStore) read() *unversioned {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.row
	return &c
}

func (s *rowLockStore) Select(context.Context, orderID) (*unversioned, error) {
	u := s.read()
	s.began() // after the read: the other load may write once told
	return u, nil
}

func (s *rowLockStore) SelectForUpdate(ctx context.Context, _ orderID) (*unversioned, error) {
	sc, ok := tracking.FromContext(ctx)
	if !ok {
		return nil, errors.New("not in a unit of work")
	}
	s.began() // before the lock, which the second load waits for
	s.lock.Lock()
	release := sync.OnceFunc(s.lock.Unlock)
	sc.OnCommit(release)
	sc.OnRollback(release)
	return s.read(), nil
}

func (s *rowLockStore) Insert(context.Context, *unversioned) error { return nil }
func (s *rowLockStore) Update(_ context.Context, u *unversioned, _ repository.Changes) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.row = *u
	return nil
}
func (s *rowLockStore) Delete(context.Context, *unversioned, int64) error { return nil }

// TestWrapperWithoutUnwrapLosesUpdates shows the trap that Unwrap closes,
// deterministically: two Updates of an aggregate without a version, each
// of which changes it only once both have begun to load it. Through a
// wrapper with Unwrap, the second load waits for the first Update's lock,
// and both increments land; through the same wrapper without Unwrap, the
// loads are not locked, both read 0, and one increment is lost.
func TestWrapperWithoutUnwrapLosesUpdates(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(repository.Hooks[*unversioned, orderID]) repository.Hooks[*unversioned, orderID]
		want int
	}{
		{"Unwrap", func(h repository.Hooks[*unversioned, orderID]) repository.Hooks[*unversioned, orderID] {
			return passing[*unversioned, orderID]{h}
		}, 2},
		{"without Unwrap", func(h repository.Hooks[*unversioned, orderID]) repository.Hooks[*unversioned, orderID] {
			return opaque[*unversioned, orderID]{h}
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &rowLockStore{row: unversioned{id: 1}, second: make(chan struct{})}
			repo, err := repository.NewSupport[*unversioned, orderID](store, repository.WrapHooks(tc.wrap))
			require.NoError(t, err)
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					assert.NoError(t, repo.Update(context.Background(), 1, func(_ context.Context, u *unversioned) error {
						<-store.second
						u.n++
						return nil
					}))
				})
			}
			wg.Wait()
			assert.Equal(t, tc.want, store.read().n)
		})
	}
}

// deletingStore is a memStore that deletes by identity.
type deletingStore struct{ *memStore }

func (d deletingStore) DeleteByID(_ context.Context, id orderID, _ *int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, fmt.Sprintf("delete by id %d", id))
	delete(d.rows, id)
	return nil
}

// TestWrapperIDDeleterOutermostOnly: a delete never goes past a wrapper.
// RemoveByID deletes by identity only when the outermost hooks can;
// otherwise it loads and deletes through the wrapper.
func TestWrapperIDDeleterOutermostOnly(t *testing.T) {
	ctx := context.Background()
	ds := deletingStore{newMemStore()}
	var through []string
	repo, err := repository.NewSupport[*order, orderID](ds, repository.WrapHooks(func(h repository.Hooks[*order, orderID]) repository.Hooks[*order, orderID] {
		return recording{passing[*order, orderID]{h}, &through}
	}))
	require.NoError(t, err)
	require.NoError(t, repo.Save(ctx, placeOrder(1)))
	ds.takeCalls()
	through = nil
	require.NoError(t, repo.RemoveByID(ctx, 1))
	assert.Equal(t, []string{"select 1", "delete 1 v0"}, ds.takeCalls(), "not the store's DeleteByID")
	assert.Equal(t, []string{"select", "delete"}, through, "the wrapper sees the delete")

	// Unwrapped, the store deletes by identity.
	direct, err := repository.NewSupport[*order, orderID](ds)
	require.NoError(t, err)
	require.NoError(t, direct.Save(ctx, placeOrder(2)))
	ds.takeCalls()
	require.NoError(t, direct.RemoveByID(ctx, 2))
	assert.Equal(t, []string{"delete by id 2"}, ds.takeCalls())
}

// recording is a wrapper that records the hooks called through it.
type recording struct {
	passing[*order, orderID]
	calls *[]string
}

func (r recording) Select(ctx context.Context, id orderID) (*order, error) {
	*r.calls = append(*r.calls, "select")
	return r.Hooks.Select(ctx, id)
}

func (r recording) Delete(ctx context.Context, o *order, version int64) error {
	*r.calls = append(*r.calls, "delete")
	return r.Hooks.Delete(ctx, o, version)
}

// writingBack writes a field into the aggregate in its update hook and
// says so.
type writingBack struct{ *memStore }

func (w writingBack) Update(ctx context.Context, o *order, ch repository.Changes) error {
	o.total = 1000 // as a store writes a value the database computed
	return w.memStore.Update(ctx, o, ch)
}

func (writingBack) WritesBack() bool { return true }

// TestWrapperKeepsWritesBack: the snapshot of a save through a wrapper
// holds what the store wrote into the aggregate.
func TestWrapperKeepsWritesBack(t *testing.T) {
	ctx := context.Background()
	for _, unwrap := range []bool{true, false} {
		store := writingBack{newMemStore()}
		repo, err := repository.NewSupport[*order, orderID](store, repository.WrapHooks(func(h repository.Hooks[*order, orderID]) repository.Hooks[*order, orderID] {
			if unwrap {
				return passing[*order, orderID]{h}
			}
			return opaque[*order, orderID]{h}
		}))
		require.NoError(t, err)
		o := placeOrder(1)
		require.NoError(t, repo.Save(ctx, o))
		o.setQuantity(1, 5)
		require.NoError(t, repo.Save(ctx, o))
		changed, err := repo.Tracker().Changed(ctx, o)
		require.NoError(t, err)
		assert.Equal(t, !unwrap, changed, "unwrap %v: the snapshot holds the value written back only when WritesBack is found", unwrap)
	}
}

func TestAs(t *testing.T) {
	us := &unversionedStore{}
	var h repository.Hooks[*unversioned, orderID] = passing[*unversioned, orderID]{passing[*unversioned, orderID]{us}}
	l, ok := repository.As[repository.Locker[*unversioned, orderID]](h)
	require.True(t, ok, "found two wrappers down")
	assert.Same(t, us, l)
	s, ok := repository.As[*unversionedStore](h)
	assert.True(t, ok, "a concrete type is found too")
	assert.Same(t, us, s)

	_, ok = repository.As[repository.IDDeleter[orderID]](h)
	assert.False(t, ok, "no hooks of the chain implement it")
	_, ok = repository.As[repository.Locker[*unversioned, orderID]](repository.Hooks[*unversioned, orderID](nil))
	assert.False(t, ok)
	_, ok = repository.As[repository.Locker[*unversioned, orderID]](repository.Hooks[*unversioned, orderID](passing[*unversioned, orderID]{}))
	assert.False(t, ok, "Unwrap returned nil")
	_, ok = repository.As[repository.Locker[*unversioned, orderID]](repository.Hooks[*unversioned, orderID](&selfish{}))
	assert.False(t, ok, "a wrapper that unwraps to itself ends the walk")
}

// selfish unwraps to itself.
type selfish struct{ unversionedHooksFor }

func (s *selfish) Unwrap() repository.Hooks[*unversioned, orderID] { return s }

type unversionedHooksFor struct{}

func (unversionedHooksFor) Select(context.Context, orderID) (*unversioned, error) {
	return &unversioned{id: 1}, nil
}
func (unversionedHooksFor) Insert(context.Context, *unversioned) error { return nil }
func (unversionedHooksFor) Update(context.Context, *unversioned, repository.Changes) error {
	return nil
}
func (unversionedHooksFor) Delete(context.Context, *unversioned, int64) error { return nil }

func TestWrapHooksOrderAndErrors(t *testing.T) {
	type h = repository.Hooks[*order, orderID]
	var made []string
	named := func(name string) func(h) h {
		return func(in h) h {
			made = append(made, name)
			return passing[*order, orderID]{in}
		}
	}
	store := newMemStore()
	_, err := repository.NewSupport[*order, orderID](store, repository.WrapHooks(named("inner")), repository.WrapHooks(named("outer")))
	require.NoError(t, err)
	assert.Equal(t, []string{"inner", "outer"}, made, "the last given wraps the others")

	_, err = repository.NewSupport[*order, orderID](store, repository.WrapHooks[*order, orderID](nil))
	assert.ErrorContains(t, err, "nil wrapper")
	_, err = repository.NewSupport[*order, orderID](store, repository.WrapHooks(func(h) h { return nil }))
	assert.ErrorContains(t, err, "returned nil hooks")
	_, err = repository.NewSupport[*order, orderID](store, repository.WrapHooks(func(in repository.Hooks[*unversioned, orderID]) repository.Hooks[*unversioned, orderID] {
		t.Error("a wrapper of other types is never called")
		return in
	}))
	assert.ErrorContains(t, err, "is not for Hooks[*repository_test.order, repository_test.orderID]")
}

// afterHooks is a wrapper that registers, with AfterCommit, a function
// per successful write, which records what it sees when it runs.
type afterHooks struct {
	passing[*order, orderID]
	mu   sync.Mutex
	ran  []string
	seen func(*order) string // what the function sees when it runs
}

func (a *afterHooks) after(ctx context.Context, what string, o *order) {
	repository.AfterCommit(ctx, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.ran = append(a.ran, fmt.Sprintf("%s %d%s", what, o.id, a.seen(o)))
	})
}

func (a *afterHooks) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.ran
	a.ran = nil
	return r
}

func (a *afterHooks) Insert(ctx context.Context, o *order) error {
	if err := a.Hooks.Insert(ctx, o); err != nil {
		return err
	}
	a.after(ctx, "insert", o)
	return nil
}

func (a *afterHooks) Update(ctx context.Context, o *order, ch repository.Changes) error {
	if err := a.Hooks.Update(ctx, o, ch); err != nil {
		return err
	}
	a.after(ctx, "update", o)
	return nil
}

func (a *afterHooks) Delete(ctx context.Context, o *order, version int64) error {
	if err := a.Hooks.Delete(ctx, o, version); err != nil {
		return err
	}
	a.after(ctx, "delete", o)
	return nil
}

// TestAfterCommit: the functions a wrapper registers run once the write
// is committed, after the snapshot advanced, whether or not the save is
// in a unit of work, and never when it is not committed.
func TestAfterCommit(t *testing.T) {
	bg := context.Background()
	store := newMemStore()
	tx := &fakeTx{}
	var repo *repository.AggregateRepositorySupport[*order, orderID]
	wrapper := &afterHooks{}
	// seen reports whether o differs from its committed snapshot, or is
	// not tracked, as the function sees it when it runs.
	wrapper.seen = func(o *order) string {
		if !repo.Tracker().Tracked(bg, o) {
			return " (untracked)"
		}
		changed, err := repo.Tracker().Changed(bg, o)
		if err != nil {
			return " " + err.Error()
		}
		return fmt.Sprintf(" (changed: %v)", changed)
	}
	var err error
	repo, err = repository.NewSupport[*order, orderID](store, repository.WithTransactor(tx), repository.WrapHooks(func(h repository.Hooks[*order, orderID]) repository.Hooks[*order, orderID] {
		wrapper.Hooks = h
		return wrapper
	}))
	require.NoError(t, err)

	t.Run("outside a unit of work", func(t *testing.T) {
		o := placeOrder(1)
		require.NoError(t, repo.Save(bg, o))
		assert.Equal(t, []string{"insert 1 (changed: false)"}, wrapper.take(), "run when Save returns, the snapshot taken")
		o.setQuantity(1, 2)
		require.NoError(t, repo.Save(bg, o))
		assert.Equal(t, []string{"update 1 (changed: false)"}, wrapper.take(), "run after the snapshot advanced")

		o.setQuantity(1, 3)
		store.fail = errors.New("the write failed")
		require.Error(t, repo.Save(bg, o))
		assert.Empty(t, wrapper.take(), "nothing written, nothing run")
		require.NoError(t, repo.Save(bg, o))
		wrapper.take()

		require.NoError(t, repo.Remove(bg, o))
		assert.Equal(t, []string{"delete 1 (untracked)"}, wrapper.take(), "run after the aggregate was detached")
		require.NoError(t, repo.Save(bg, o))
		wrapper.take()
		require.NoError(t, repo.RemoveByID(bg, 1))
		assert.Equal(t, []string{"delete 1 (untracked)"}, wrapper.take(), "RemoveByID, through the wrapper's Select and Delete")
	})

	t.Run("in a unit of work", func(t *testing.T) {
		o := placeOrder(2)
		require.NoError(t, repo.Save(bg, o))
		wrapper.take()

		// The in-memory store has no transactions: the rolled-back
		// writes are inserts of aggregates of their own, which leave o
		// as it was.
		err := tx.InTx(bg, func(ctx context.Context) error {
			if err := repo.Save(ctx, placeOrder(10)); err != nil {
				return err
			}
			assert.Empty(t, wrapper.take(), "nothing runs before the commit")
			return errors.New("a later step fails")
		})
		require.EqualError(t, err, "a later step fails")
		assert.Empty(t, wrapper.take(), "a rollback runs nothing")

		tx.failCommit = errors.New("the commit failed")
		err = tx.InTx(bg, func(ctx context.Context) error { return repo.Save(ctx, placeOrder(11)) })
		require.EqualError(t, err, "the commit failed")
		assert.Empty(t, wrapper.take(), "a failed commit runs nothing")
		tx.failCommit = nil

		o.setQuantity(1, 2)
		err = tx.InTx(bg, func(ctx context.Context) error {
			if err := repo.Save(ctx, o); err != nil {
				return err
			}
			// A nested unit of work joins the outer one.
			return tx.InTx(ctx, func(ctx context.Context) error {
				p := placeOrder(3)
				if err := repo.Save(ctx, p); err != nil {
					return err
				}
				assert.Empty(t, wrapper.take(), "the nested unit of work runs nothing when it returns")
				return nil
			})
		})
		require.NoError(t, err)
		assert.Equal(t, []string{"update 2 (changed: false)", "insert 3 (changed: false)"}, wrapper.take(), "run at the outermost commit, in order, after the snapshots advanced")

		require.NoError(t, repo.Update(bg, 2, func(_ context.Context, o *order) error { o.setQuantity(1, 7); return nil }))
		assert.Equal(t, []string{"update 2 (changed: false)"}, wrapper.take(), "Update commits its unit of work")
	})

	t.Run("elsewhere", func(t *testing.T) {
		var ran []string
		repository.AfterCommit(bg, func() { ran = append(ran, "no unit of work") })
		repository.AfterCommit(bg, nil)
		sc := tracking.NewScope()
		sc.Commit()
		repository.AfterCommit(tracking.WithScope(bg, sc), func() { ran = append(ran, "committed") })
		sc = tracking.NewScope()
		sc.Rollback()
		repository.AfterCommit(tracking.WithScope(bg, sc), func() { ran = append(ran, "rolled back") })
		assert.Equal(t, []string{"no unit of work", "committed"}, ran)
	})

	t.Run("context kept past the save", func(t *testing.T) {
		// A wrapper that registers with the context of a save that has
		// ended: the write is committed, so f runs at once.
		var kept context.Context
		keeper := &keeping{passing[*order, orderID]{newMemStore()}, &kept}
		r, err := repository.NewSupport[*order, orderID](keeper)
		require.NoError(t, err)
		require.NoError(t, r.Save(bg, placeOrder(1)))
		ran := false
		repository.AfterCommit(kept, func() { ran = true })
		assert.True(t, ran)
	})
}

// keeping keeps the context of its last insert.
type keeping struct {
	passing[*order, orderID]
	ctx *context.Context
}

func (k *keeping) Insert(ctx context.Context, o *order) error {
	*k.ctx = ctx
	return k.Hooks.Insert(ctx, o)
}
