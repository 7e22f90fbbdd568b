package repository_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/tracking"
)

// Memory: snapshots are held against weak pointers, so an aggregate that
// is dropped without Detach gives its snapshot back to the garbage
// collector; and a snapshot costs at most the aggregate's own size, as it
// shares the aggregate's strings.

type memOrderID int64

type memMoney struct {
	amount   int64
	currency string
}

// memOrder has the shape of the README's order: a root with a value
// object, a version and a collection of child entities.
type memOrder struct {
	id       memOrderID
	customer string
	total    memMoney
	items    []*memItem
	version  int64 `ddd:"version"`
}

func (o *memOrder) ID() memOrderID { return o.id }

type memItem struct {
	id       int `ddd:"id"`
	sku      string
	name     string
	quantity int
	price    int64
}

// memPlace returns order id with n items, every string allocated anew.
func memPlace(id memOrderID, n int) *memOrder {
	o := &memOrder{id: id, customer: memName("customer-", int(id), "", 0), total: memMoney{currency: strings.Clone("EUR")}}
	o.items = make([]*memItem, n)
	for i := range o.items {
		o.items[i] = &memItem{
			id:       i + 1,
			sku:      memName("SKU-", int(id), "-", i),
			name:     memName("a name of some forty bytes, of order ", int(id), ", item ", i),
			quantity: 1 + i%5,
			price:    int64(100 * (i + 1)),
		}
		o.total.amount += int64(o.items[i].quantity) * o.items[i].price
	}
	return o
}

// memName returns prefix, a, infix and b as one new string: fmt.Sprintf
// without its cost, which would dominate the loads.
func memName(prefix string, a int, infix string, b int) string {
	buf := make([]byte, 0, len(prefix)+len(infix)+16)
	buf = strconv.AppendInt(append(buf, prefix...), int64(a), 10)
	buf = strconv.AppendInt(append(buf, infix...), int64(b), 10)
	return string(buf)
}

// memStrings returns the bytes of o's strings.
func memStrings(o *memOrder) int {
	n := len(o.customer) + len(o.total.currency)
	for _, it := range o.items {
		n += len(it.sku) + len(it.name)
	}
	return n
}

// memAggregate is an aggregate of memOrder's shape.
type memAggregate interface {
	ID() memOrderID
	order() *memOrder
}

func (o *memOrder) order() *memOrder { return o }

// memFresh is memOrder under a type of its own, so that it has a tracker
// of its own (a repository's tracker is shared by aggregate type): what is
// measured with it does not depend on what other tests tracked before.
type memFresh struct{ memOrder }

// memHooks is an in-memory store with version checks. An order it holds
// no row for is generated from its identity, with three items, so that
// loading many orders costs no memory in the store itself.
type memHooks[T memAggregate] struct {
	mu   sync.Mutex
	rows map[memOrderID]T
	gen  func(memOrderID) T
}

func newMemHooks[T memAggregate](gen func(memOrderID) T) *memHooks[T] {
	return &memHooks[T]{rows: map[memOrderID]T{}, gen: gen}
}

func (m *memHooks[T]) Select(_ context.Context, id memOrderID) (T, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.rows[id]; ok {
		return tracking.Copy(o)
	}
	if id <= 0 {
		var zero T
		return zero, fmt.Errorf("order %d: %w", id, repository.ErrNotFound)
	}
	return m.gen(id), nil
}

func (m *memHooks[T]) Insert(_ context.Context, o T) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := tracking.Copy(o)
	m.rows[o.ID()] = c
	return err
}

func (m *memHooks[T]) Update(_ context.Context, o T, ch repository.Changes) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if row, ok := m.rows[o.ID()]; ok && row.order().version != ch.OldVersion {
		return repository.ErrConflict
	}
	c, err := tracking.Copy(o)
	m.rows[o.ID()] = c
	return err
}

func (m *memHooks[T]) Delete(_ context.Context, o T, version int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if row, ok := m.rows[o.ID()]; ok && row.order().version != version {
		return repository.ErrConflict
	}
	delete(m.rows, o.ID())
	return nil
}

func memRepo[T memAggregate](t *testing.T, gen func(memOrderID) T) *repository.AggregateRepositorySupport[T, memOrderID] {
	t.Helper()
	repo, err := repository.NewSupport[T, memOrderID](newMemHooks(gen))
	require.NoError(t, err)
	return repo
}

func memGen(id memOrderID) *memOrder { return memPlace(id, 3) }

func memGenFresh(id memOrderID) *memFresh { return &memFresh{*memPlace(id, 3)} }

// memLiveHeap returns the bytes of live heap objects, after collecting
// garbage.
func memLiveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// memWaitUntracked collects garbage until tr tracks nothing, for at most
// ten seconds: a dropped aggregate's snapshot is released by a cleanup
// that runs after the collection that found the aggregate unreachable.
func memWaitUntracked[T any](t *testing.T, tr *tracking.Tracker[T]) time.Duration {
	t.Helper()
	start := time.Now()
	for i := 0; tr.Len() > 0 && i < 1000; i++ {
		if i%10 == 0 {
			runtime.GC()
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.Zero(t, tr.Len(), "aggregates still tracked %v after they were dropped", time.Since(start))
	return time.Since(start)
}

// memWarmUp compiles the copy and comparison plans of T and fills the
// pools of a save: what a long-running program has paid once.
func memWarmUp[T memAggregate](t *testing.T, repo *repository.AggregateRepositorySupport[T, memOrderID]) {
	t.Helper()
	ctx := context.Background()
	for id := memOrderID(1); id <= 100; id++ {
		o, err := repo.Find(ctx, id)
		require.NoError(t, err)
		o.order().items[0].quantity++
		require.NoError(t, repo.Save(ctx, o))
		require.NoError(t, repo.Remove(ctx, o))
	}
	memWaitUntracked(t, repo.Tracker())
}

// memCycle loads len(aggs) aggregates through Find, drops them all without
// Detach and waits until the tracker has released them. It returns the
// live heap while they were tracked.
func memCycle[T memAggregate](t *testing.T, repo *repository.AggregateRepositorySupport[T, memOrderID], aggs []T) (peak uint64, took time.Duration) {
	t.Helper()
	ctx := context.Background()
	var err error
	for i := range aggs {
		aggs[i], err = repo.Find(ctx, memOrderID(i+1))
		require.NoError(t, err)
	}
	require.Equal(t, len(aggs), repo.Tracker().Len())
	peak = memLiveHeap()
	require.Equal(t, len(aggs), repo.Tracker().Len(), "a live aggregate keeps its snapshot")
	clear(aggs)
	return peak, memWaitUntracked(t, repo.Tracker())
}

const memMany = 100_000

// TestMemoryDroppedAggregatesAreReleased loads 100,000 aggregates through
// Find, drops them all without Detach, and checks that the tracker lets go
// of every snapshot and that the heap gives back what the aggregates and
// their snapshots held.
func TestMemoryDroppedAggregatesAreReleased(t *testing.T) {
	repo := memRepo(t, memGen)
	memWarmUp(t, repo)

	aggs := make([]*memOrder, memMany)
	start := memLiveHeap()
	peak, took := memCycle(t, repo, aggs)
	end := memLiveHeap()
	held := float64(peak) - float64(start)
	left := float64(end) - float64(start)
	t.Logf("live heap %d B at the start, %d B with %d aggregates tracked (%.0f B each, aggregate and snapshot), %d B once they were dropped (all released after %v): %.1f%% of it left",
		start, peak, memMany, held/memMany, end, took.Round(time.Millisecond), 100*left/held)
	assert.Less(t, left, 0.05*held, "at least 95%% of what the tracked aggregates held is given back")
	runtime.KeepAlive(aggs)
}

// TestMemoryHeapReturnsToStart is the strict form of the test above: once
// 100,000 aggregates loaded through Find are dropped and released, the
// live heap must be back within 10% of where it was before they were
// loaded, the tracker's own bookkeeping included. Its aggregate type is
// tracked by no other test.
func TestMemoryHeapReturnsToStart(t *testing.T) {
	repo := memRepo(t, memGenFresh)
	memWarmUp(t, repo)

	aggs := make([]*memFresh, memMany)
	start := memLiveHeap()
	peak, took := memCycle(t, repo, aggs)
	end := memLiveHeap()
	t.Logf("live heap: %d B at the start, %d B with %d aggregates tracked, %d B once they were dropped and released (after %v): %d B more than at the start, %.1f B per aggregate that was tracked",
		start, peak, memMany, end, took.Round(time.Millisecond), int64(end)-int64(start), (float64(end)-float64(start))/memMany)
	assert.LessOrEqual(t, float64(end), 1.10*float64(start), "the live heap must come back within 10%% of its start")
	runtime.KeepAlive(aggs)
}

// TestMemorySnapshotOverhead measures what tracking costs per aggregate:
// the live heap with N aggregates tracked, minus the live heap with the
// same N aggregates untracked, divided by N; against the aggregate's own
// size, measured the same way. A snapshot copies every struct and slice
// but shares the strings, so it must cost less than the aggregate by about
// the bytes of its strings.
func TestMemorySnapshotOverhead(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ items, n int }{{10, 20_000}, {100, 2_000}} {
		t.Run(fmt.Sprintf("%d items", tc.items), func(t *testing.T) {
			repo := memRepo(t, memGen)
			tr := repo.Tracker()
			memWarmUp(t, repo)

			aggs := make([]*memOrder, tc.n)
			base := memLiveHeap()
			for i := range aggs {
				aggs[i] = memPlace(memOrderID(i+1), tc.items)
			}
			untracked := memLiveHeap()
			for _, o := range aggs {
				require.NoError(t, repo.Attach(ctx, o))
			}
			tracked := memLiveHeap()
			require.Equal(t, tc.n, tr.Len())

			own := float64(untracked-base) / float64(tc.n)
			snap := float64(tracked-untracked) / float64(tc.n)
			strs := float64(memStrings(aggs[0]))
			t.Logf("%d items: the aggregate %.0f B (of which %.0f B of strings), its tracking %.0f B (%.0f%% of the aggregate, %.0f B per item)",
				tc.items, own, strs, snap, 100*snap/own, snap/float64(tc.items))

			assert.Positive(t, snap, "a snapshot costs memory")
			// A snapshot that copied the strings too would cost the
			// aggregate's size or more: the 256 bytes are the tracker's own
			// entry (map slot, entry, weak handle).
			assert.Less(t, snap+strs, own+256, "the snapshot must share the aggregate's strings")

			clear(aggs)
			memWaitUntracked(t, tr)
			runtime.KeepAlive(aggs)
		})
	}
}
