package sqlstore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// TestUpdateOrCreate checks the get-or-create of an aggregate: a missing
// one is made, changed and inserted; an existing one is updated at the
// cost of an Update (two round trips on pgx).
func TestUpdateOrCreate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := b.repo(t)
		create := func(_ context.Context, id orderID) (*order, error) {
			return newOrder(id, "alice", &item{id: 1, sku: "A", quantity: 1}), nil
		}
		add := func(_ context.Context, o *order) error {
			o.setQuantity(1, o.item(1).quantity+1)
			return nil
		}
		require.NoError(t, repo.UpdateOrCreate(ctx, 1, create, add))
		got := b.load(t, 1)
		assert.Equal(t, 2, got.item(1).quantity, "made, changed, then inserted")
		assert.EqualValues(t, 0, got.version)
		stmts := b.log.take()
		assert.Zero(t, count(stmts, sqlSavepoint), "the insert is the last save: %q", sqls(stmts))

		require.NoError(t, repo.UpdateOrCreate(ctx, 1, create, add))
		stmts = b.log.take()
		if b.pgx {
			assert.Equal(t, 2, trips(stmts), "the load, then the save with the COMMIT: %q", sqls(stmts))
		}
		got = b.load(t, 1)
		assert.Equal(t, 3, got.item(1).quantity)
		assert.EqualValues(t, 1, got.version)

		// A change that fails writes nothing; a create that fails, or
		// makes another identity, neither.
		errStop := errors.New("stop")
		require.ErrorIs(t, repo.UpdateOrCreate(ctx, 2, create, func(context.Context, *order) error { return errStop }), errStop)
		require.ErrorIs(t, repo.UpdateOrCreate(ctx, 2, func(context.Context, orderID) (*order, error) { return nil, errStop }, add), errStop)
		require.Error(t, repo.UpdateOrCreate(ctx, 2, func(context.Context, orderID) (*order, error) { return create(ctx, 3) }, add))
		assert.False(t, b.exists(t, 2))
		assert.False(t, b.exists(t, 3))
	})
}

// TestUpdateOrCreateConcurrent checks that of 20 concurrent callers on a
// missing aggregate, exactly one inserts it and every other applies its
// change to it, once.
func TestUpdateOrCreateConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := b.repo(t)
		const n = 20
		var created atomic.Int32
		create := func(_ context.Context, id orderID) (*order, error) {
			created.Add(1)
			return newOrder(id, "alice", &item{id: 1, sku: "A", quantity: 1}), nil
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = repo.UpdateOrCreate(ctx, 7, create, func(_ context.Context, o *order) error {
					o.setQuantity(1, o.item(1).quantity+1)
					return nil
				})
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "caller %d", i)
		}
		got := b.load(t, 7)
		assert.Equal(t, 1+n, got.item(1).quantity, "each change applied once")
		assert.EqualValues(t, n-1, got.version, "one insert, then an update per other caller")
		assert.GreaterOrEqual(t, created.Load(), int32(1))
		t.Logf("made %d times", created.Load())
	})
}

// TestUpdateOrCreateGeneratedKey checks that a root whose key the
// database generates cannot be made by UpdateOrCreate: create must give
// the aggregate the identity asked for, and a set generated key on an
// aggregate not loaded is refused with ErrUntracked; nothing is written.
func TestUpdateOrCreateGeneratedKey(t *testing.T) {
	forEachBackendAndMySQLPath(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		m := kanbanSchema(t, b, "key-only")
		repo, err := NewRepository[*board, int64](b.db, m)
		require.NoError(t, err)
		create := func(_ context.Context, id int64) (*board, error) {
			return &board{id: id, name: "team"}, nil
		}
		err = repo.UpdateOrCreate(ctx, 7, create, func(context.Context, *board) error { return nil })
		require.ErrorIs(t, err, repository.ErrUntracked)
		assert.EqualValues(t, 0, b.raw.count(t, "SELECT count(*) FROM boards"))
	})
}
