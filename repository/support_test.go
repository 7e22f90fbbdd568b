package repository_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/tracking"
)

type orderID int64

type order struct {
	id      orderID
	items   []*orderItem
	total   int64
	version int64 `ddd:"version"`
}

func (o *order) ID() orderID { return o.id }

type orderItem struct {
	id       int `ddd:"id"`
	quantity int
	price    int64
}

func (o *order) setQuantity(item, q int) {
	o.total = 0
	for _, it := range o.items {
		if it.id == item {
			it.quantity = q
		}
		o.total += int64(it.quantity) * it.price
	}
}

func placeOrder(id orderID) *order {
	o := &order{id: id, items: []*orderItem{{id: 1, quantity: 1, price: 100}, {id: 2, quantity: 3, price: 50}}}
	o.setQuantity(1, 1)
	return o
}

// memStore is an in-memory store that records the hook calls it gets and
// checks versions as a database would.
type memStore struct {
	mu      sync.Mutex
	rows    map[orderID]*order
	calls   []string
	updates []repository.Changes
	fail    error // returned by the next write hook
}

func newMemStore() *memStore { return &memStore{rows: map[orderID]*order{}} }

func (m *memStore) record(call string) error {
	m.calls = append(m.calls, call)
	if err := m.fail; err != nil {
		m.fail = nil
		return err
	}
	return nil
}

func (m *memStore) Select(_ context.Context, id orderID) (*order, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, fmt.Sprintf("select %d", id))
	o, ok := m.rows[id]
	if !ok {
		return nil, fmt.Errorf("order %d: %w", id, repository.ErrNotFound)
	}
	return tracking.Copy(o)
}

func (m *memStore) Insert(_ context.Context, o *order) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.record(fmt.Sprintf("insert %d", o.id)); err != nil {
		return err
	}
	c, err := tracking.Copy(o)
	m.rows[o.id] = c
	return err
}

func (m *memStore) Update(_ context.Context, o *order, ch repository.Changes) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.record(fmt.Sprintf("update %d v%d->v%d", o.id, ch.OldVersion, ch.NewVersion)); err != nil {
		return err
	}
	row, ok := m.rows[o.id]
	if !ok || row.version != ch.OldVersion {
		return repository.ErrConflict
	}
	m.updates = append(m.updates, ch)
	c, err := tracking.Copy(o)
	m.rows[o.id] = c
	return err
}

func (m *memStore) Delete(_ context.Context, o *order, version int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.record(fmt.Sprintf("delete %d v%d", o.id, version)); err != nil {
		return err
	}
	row, ok := m.rows[o.id]
	if !ok || row.version != version {
		return repository.ErrConflict
	}
	delete(m.rows, o.id)
	return nil
}

func (m *memStore) takeCalls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.calls
	m.calls = nil
	return c
}

func newRepo(t *testing.T, store *memStore, opts ...repository.Option) *repository.AggregateRepositorySupport[*order, orderID] {
	t.Helper()
	r, err := repository.NewSupport[*order, orderID](store, opts...)
	require.NoError(t, err)
	return r
}

func TestSaveInsertsThenUpdatesOnlyWhenChanged(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	repo := newRepo(t, store)

	o := placeOrder(1)
	require.NoError(t, repo.Save(ctx, o))
	assert.Equal(t, []string{"insert 1"}, store.takeCalls(), "an untracked aggregate is inserted")

	require.NoError(t, repo.Save(ctx, o))
	assert.Empty(t, store.takeCalls(), "an unchanged aggregate costs no hook call")

	// The scenario of the design we start from: the quantity of the second
	// item changes, so the total changes.
	o.setQuantity(2, 5)
	require.NoError(t, repo.Save(ctx, o))
	assert.Equal(t, []string{"update 1 v0->v1"}, store.takeCalls(), "the update hook is called once")
	require.Len(t, store.updates, 1)
	d := store.updates[0].Diff
	assert.True(t, d.RootModified(), "the total changed")
	items := d.Collection("items")
	require.Len(t, items, 1, "exactly one item changed")
	assert.Equal(t, diff.Modified, items[0].Kind)
	assert.Equal(t, 2, items[0].ID)
	assert.Equal(t, int64(1), o.version, "the version advanced once")

	require.NoError(t, repo.Save(ctx, o))
	assert.Empty(t, store.takeCalls(), "the snapshot advanced after the save")
}

func TestChildOnlyChangeAdvancesVersion(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	repo := newRepo(t, store)
	o := placeOrder(1)
	require.NoError(t, repo.Save(ctx, o))
	store.takeCalls()

	o.items[0].price = 90 // a child field alone, total left as is on purpose
	require.NoError(t, repo.Save(ctx, o))
	assert.Equal(t, []string{"update 1 v0->v1"}, store.takeCalls())
	ch := store.updates[0]
	assert.True(t, ch.Versioned)
	assert.False(t, ch.Diff.RootModified(), "only a child changed")
	assert.Equal(t, int64(1), o.version, "a child-only change advances the root's version")
}

func TestFailedHookLeavesSnapshotAndVersion(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	repo := newRepo(t, store)
	o := placeOrder(1)
	require.NoError(t, repo.Save(ctx, o))
	store.takeCalls()

	o.setQuantity(1, 4)
	boom := errors.New("connection reset")
	store.fail = boom
	err := repo.Save(ctx, o)
	require.ErrorIs(t, err, boom, "the hook's error is returned, wrapped")
	assert.Equal(t, int64(0), o.version, "the version is restored")

	require.NoError(t, repo.Save(ctx, o))
	assert.Equal(t, []string{"update 1 v0->v1", "update 1 v0->v1"}, store.takeCalls(), "the retry sends the same change")
}

func TestConflict(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	repo := newRepo(t, store)
	require.NoError(t, repo.Save(ctx, placeOrder(1)))

	// Two copies loaded separately, by two repositories (two processes).
	other := newRepo(t, store)
	a, err := repo.Find(ctx, 1)
	require.NoError(t, err)
	b, err := other.Find(ctx, 1)
	require.NoError(t, err)
	require.NotSame(t, a, b)

	a.setQuantity(1, 2)
	require.NoError(t, repo.Save(ctx, a))
	b.setQuantity(1, 7)
	err = other.Save(ctx, b)
	require.ErrorIs(t, err, repository.ErrConflict)
	assert.Equal(t, 2, store.rows[1].items[0].quantity, "the store holds the first save")
	assert.Equal(t, 7, b.items[0].quantity, "the losing copy keeps its change in memory")
	assert.Equal(t, int64(0), b.version, "and its version")
}

func TestRemove(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	repo := newRepo(t, store)
	o := placeOrder(1)
	require.NoError(t, repo.Save(ctx, o))
	o.setQuantity(1, 2)
	require.NoError(t, repo.Save(ctx, o))
	store.takeCalls()

	require.NoError(t, repo.Remove(ctx, o))
	assert.Equal(t, []string{"delete 1 v1"}, store.takeCalls(), "the delete is checked against the saved version")
	assert.False(t, repo.Tracker().Tracked(ctx, o), "a removed aggregate is no longer tracked")

	_, err := repo.Find(ctx, 1)
	require.ErrorIs(t, err, repository.ErrNotFound)
}

// TestRemoveByIDLoadsWithoutIDDeleter checks RemoveByID on hooks that
// cannot delete by identity: the aggregate is loaded, its version
// checked, then deleted; a missing one is ErrNotFound.
func TestRemoveByIDLoadsWithoutIDDeleter(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	repo := newRepo(t, store)
	o := placeOrder(1)
	require.NoError(t, repo.Save(ctx, o))
	o.setQuantity(1, 2)
	require.NoError(t, repo.Save(ctx, o))
	store.takeCalls()

	require.ErrorIs(t, repo.RemoveByID(ctx, 1, repository.IfVersion(0)), repository.ErrConflict)
	assert.Equal(t, []string{"select 1"}, store.takeCalls(), "nothing is deleted at another version")
	require.NoError(t, repo.RemoveByID(ctx, 1, repository.IfVersion(1)))
	assert.Equal(t, []string{"select 1", "delete 1 v1"}, store.takeCalls())
	err := repo.RemoveByID(ctx, 1)
	require.ErrorIs(t, err, repository.ErrNotFound)
	assert.NotErrorIs(t, err, repository.ErrConflict)

	require.NoError(t, repo.Save(ctx, placeOrder(2)))
	require.NoError(t, repo.RemoveByID(ctx, 2), "without a version, whatever the version")
	_, err = repo.Find(ctx, 2)
	require.ErrorIs(t, err, repository.ErrNotFound)
}

// bareOrder is an aggregate without a version field.
type bareOrder struct{ id orderID }

func (u *bareOrder) ID() orderID { return u.id }

type unversionedHooks struct{}

func (unversionedHooks) Select(context.Context, orderID) (*bareOrder, error) {
	return &bareOrder{id: 1}, nil
}
func (unversionedHooks) Insert(context.Context, *bareOrder) error { return nil }
func (unversionedHooks) Update(context.Context, *bareOrder, repository.Changes) error {
	return nil
}
func (unversionedHooks) Delete(context.Context, *bareOrder, int64) error { return nil }

// TestRemoveByIDVersionNeedsVersionField checks that a version given for
// an aggregate without a version field is refused, with nothing deleted.
func TestRemoveByIDVersionNeedsVersionField(t *testing.T) {
	repo, err := repository.NewSupport[*bareOrder, orderID](unversionedHooks{})
	require.NoError(t, err)
	require.ErrorIs(t, repo.RemoveByID(context.Background(), 1, repository.IfVersion(1)), repository.ErrUnsupported)
	require.NoError(t, repo.RemoveByID(context.Background(), 1))
}

func TestFindAttachesAndScopeIsIdentityMap(t *testing.T) {
	bg := context.Background()
	store := newMemStore()
	repo := newRepo(t, store)
	require.NoError(t, repo.Save(bg, placeOrder(1)))
	store.takeCalls()

	err := tracking.InScope(bg, func(ctx context.Context) error {
		a, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		b, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Same(t, a, b, "one instance per aggregate in a unit of work")
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"select 1"}, store.takeCalls(), "selected once")

	a, err := repo.Find(bg, 1)
	require.NoError(t, err)
	b, err := repo.Find(bg, 1)
	require.NoError(t, err)
	assert.NotSame(t, a, b, "without a scope every Find loads")
	assert.True(t, repo.Tracker().Tracked(bg, a))
}

func TestUpdate(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	repo := newRepo(t, store)
	require.NoError(t, repo.Save(ctx, placeOrder(1)))
	store.takeCalls()

	require.NoError(t, repo.Update(ctx, 1, func(_ context.Context, o *order) error {
		o.setQuantity(2, 9)
		return nil
	}))
	assert.Equal(t, []string{"select 1", "update 1 v0->v1"}, store.takeCalls())

	rule := errors.New("shipped orders cannot change")
	err := repo.Update(ctx, 1, func(_ context.Context, o *order) error {
		o.setQuantity(2, 1)
		return rule
	})
	require.ErrorIs(t, err, rule)
	assert.Equal(t, []string{"select 1"}, store.takeCalls(), "nothing saved when the change fails")

	err = repo.Update(ctx, 42, func(context.Context, *order) error { return nil })
	require.ErrorIs(t, err, repository.ErrNotFound)
}

// fakeTx is a Transactor over the in-memory store: it only opens a tracking
// scope, and can be told to fail the commit.
type fakeTx struct{ failCommit error }

func (f *fakeTx) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := tracking.FromContext(ctx); ok {
		return fn(ctx)
	}
	sc := tracking.NewScope()
	err := fn(tracking.WithScope(ctx, sc))
	if err == nil {
		err = f.failCommit
	}
	if err != nil {
		sc.Rollback()
		return err
	}
	sc.Commit()
	return nil
}

func TestRollbackKeepsChangesForRetry(t *testing.T) {
	bg := context.Background()
	store := newMemStore()
	tx := &fakeTx{}
	repo := newRepo(t, store, repository.WithTransactor(tx))
	o := placeOrder(1)
	require.NoError(t, repo.Save(bg, o))
	store.takeCalls()
	o.setQuantity(1, 3)

	tx.failCommit = errors.New("commit failed")
	err := tx.InTx(bg, func(ctx context.Context) error { return repo.Save(ctx, o) })
	require.Error(t, err)
	assert.Equal(t, int64(0), o.version, "the version is restored on rollback")
	// The in-memory store kept the write; a database would not have. Undo it
	// as the rollback would.
	store.rows[1].version = 0

	tx.failCommit = nil
	require.NoError(t, tx.InTx(bg, func(ctx context.Context) error { return repo.Save(ctx, o) }))
	assert.Equal(t, []string{"update 1 v0->v1", "update 1 v0->v1"}, store.takeCalls(), "the retry sends the same changes")
	require.Len(t, store.updates, 2)
	assert.Equal(t, store.updates[0].Diff.String(), store.updates[1].Diff.String())
	assert.Equal(t, int64(1), o.version)
}

func TestNewSupportErrors(t *testing.T) {
	_, err := repository.NewSupport[*order, orderID](nil)
	require.Error(t, err)

	_, err = repository.NewSupport[*badVersionAgg, orderID](badStore{})
	require.ErrorIs(t, err, repository.ErrUnsupported, "a malformed version tag is reported up front")
}

type badVersionAgg struct {
	id orderID
	v  string `ddd:"version"`
}

func (b *badVersionAgg) ID() orderID { return b.id }

type badStore struct{}

func (badStore) Select(context.Context, orderID) (*badVersionAgg, error) { return nil, nil }
func (badStore) Insert(context.Context, *badVersionAgg) error            { return nil }
func (badStore) Update(context.Context, *badVersionAgg, repository.Changes) error {
	return nil
}
func (badStore) Delete(context.Context, *badVersionAgg, int64) error { return nil }

func TestNilAggregate(t *testing.T) {
	ctx := context.Background()
	repo := newRepo(t, newMemStore())
	require.ErrorIs(t, repo.Save(ctx, nil), repository.ErrUnsupported)
	require.ErrorIs(t, repo.Remove(ctx, nil), repository.ErrUnsupported)
	require.ErrorIs(t, repo.Attach(ctx, nil), repository.ErrUnsupported)
	repo.Detach(ctx, nil)
}

func TestDuplicateChildIdentity(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	repo := newRepo(t, store)
	o := placeOrder(1)
	require.NoError(t, repo.Save(ctx, o))
	store.takeCalls()
	o.items = append(o.items, &orderItem{id: 1, quantity: 1})
	err := repo.Save(ctx, o)
	require.ErrorIs(t, err, repository.ErrDuplicateID)
	assert.Empty(t, store.takeCalls(), "nothing is written")
}

type noted struct {
	id      orderID
	note    any
	state   any
	version int64 `ddd:"version"`
}

func (n *noted) ID() orderID { return n.id }

type notedStore struct {
	rows    map[orderID]*noted
	updates int
}

func (m *notedStore) Select(_ context.Context, id orderID) (*noted, error) {
	r, ok := m.rows[id]
	if !ok {
		return nil, repository.ErrNotFound
	}
	return tracking.Copy(r)
}
func (m *notedStore) Insert(_ context.Context, n *noted) error {
	c, err := tracking.Copy(n)
	m.rows[n.id] = c
	return err
}
func (m *notedStore) Update(_ context.Context, n *noted, ch repository.Changes) error {
	m.updates++
	if m.rows[n.id].version != ch.OldVersion {
		return repository.ErrConflict
	}
	c, err := tracking.Copy(n)
	m.rows[n.id] = c
	return err
}
func (m *notedStore) Delete(context.Context, *noted, int64) error { return nil }

func TestSaveInterfaceFields(t *testing.T) {
	ctx := context.Background()
	store := &notedStore{rows: map[orderID]*noted{}}
	repo, err := repository.NewSupport[*noted, orderID](store)
	require.NoError(t, err)
	require.NoError(t, repo.Save(ctx, &noted{id: 1, note: "x"}))
	o, err := repo.Find(ctx, 1)
	require.NoError(t, err)

	o.note = []string{"b", "c"}
	require.NoError(t, repo.Save(ctx, o))
	assert.Equal(t, []string{"b", "c"}, o.note, "saving never writes into the aggregate")
	o.note.([]string)[0] = "changed"
	changed, err := repo.Tracker().Changed(ctx, o)
	require.NoError(t, err)
	assert.True(t, changed, "the snapshot does not share the slice held in the interface")

	// A value that cannot be snapshotted fails the save before any write.
	before := store.updates
	o.state = func() {}
	err = repo.Save(ctx, o)
	require.ErrorIs(t, err, repository.ErrUnsupported)
	assert.Equal(t, before, store.updates, "nothing was written")
	assert.Equal(t, int64(1), o.version, "the version is as it was")
	o.state = "fine"
	require.NoError(t, repo.Save(ctx, o), "the aggregate is not left in conflict")
}

// TestRepositoryValuesShareTracking: a repository built per request sees
// what another repository value of the same type loaded, in a unit of work
// and outside one, so a save updates instead of inserting again.
func TestRepositoryValuesShareTracking(t *testing.T) {
	bg := context.Background()
	store := newMemStore()
	require.NoError(t, newRepo(t, store).Save(bg, placeOrder(1)))
	store.takeCalls()

	o, err := newRepo(t, store).Find(bg, 1)
	require.NoError(t, err)
	o.setQuantity(1, 5)
	require.NoError(t, newRepo(t, store).Save(bg, o))
	assert.Equal(t, []string{"select 1", "update 1 v0->v1"}, store.takeCalls(), "outside a unit of work")

	require.NoError(t, tracking.InScope(bg, func(ctx context.Context) error {
		a, err := newRepo(t, store).Find(ctx, 1)
		require.NoError(t, err)
		b, err := newRepo(t, store).Find(ctx, 1)
		require.NoError(t, err)
		assert.Same(t, a, b, "one identity map per unit of work")
		b.setQuantity(2, 7)
		return newRepo(t, store).Save(ctx, b)
	}))
	assert.Equal(t, []string{"select 1", "update 1 v1->v2"}, store.takeCalls(), "in a unit of work")
}

// TestUpdateThatRemoves: a change function that removes the aggregate ends
// the update; the aggregate is not inserted again.
func TestUpdateThatRemoves(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	repo := newRepo(t, store, repository.WithTransactor(&fakeTx{}))
	require.NoError(t, repo.Save(ctx, placeOrder(1)))
	store.takeCalls()
	require.NoError(t, repo.Update(ctx, 1, func(ctx context.Context, o *order) error {
		return repo.Remove(ctx, o)
	}))
	assert.Equal(t, []string{"select 1", "delete 1 v0"}, store.takeCalls())
	_, ok := store.rows[1]
	assert.False(t, ok)
}

// TestUpdateOrCreateOnHooks checks UpdateOrCreate on plain hooks: a
// missing aggregate is made and inserted, an existing one updated, and an
// ErrExists that the insert did not raise is returned, not run again.
func TestUpdateOrCreateOnHooks(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	repo := newRepo(t, store)
	create := func(_ context.Context, id orderID) (*order, error) { return placeOrder(id), nil }
	set := func(q int) func(context.Context, *order) error {
		return func(_ context.Context, o *order) error {
			o.setQuantity(1, q)
			return nil
		}
	}
	require.NoError(t, repo.UpdateOrCreate(ctx, 1, create, set(5)))
	assert.Equal(t, []string{"select 1", "insert 1"}, store.takeCalls())
	require.NoError(t, repo.UpdateOrCreate(ctx, 1, create, set(6)))
	assert.Equal(t, []string{"select 1", "update 1 v0->v1"}, store.takeCalls())
	o, err := repo.Find(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, 6, o.items[0].quantity)

	runs := 0
	err = repo.UpdateOrCreate(ctx, 2, create, func(context.Context, *order) error {
		runs++
		return repository.ErrExists
	})
	require.ErrorIs(t, err, repository.ErrExists)
	assert.Equal(t, 1, runs)
	require.Error(t, repo.UpdateOrCreate(ctx, 2, nil, set(1)))
}

// An error names each package once: the operation's prefix is the
// repository's, and the sentinel inside it does not repeat it.
func TestErrorsNameThePackageOnce(t *testing.T) {
	r := newRepo(t, newMemStore())
	_, err := r.Find(context.Background(), 9)
	require.ErrorIs(t, err, repository.ErrNotFound)
	assert.Equal(t, "repository: find: order 9: aggregate not found", err.Error())
	assert.Equal(t, 1, strings.Count(err.Error(), "repository:"), "one prefix: %v", err)
}
