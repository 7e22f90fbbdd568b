package sqlstore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// TestRemoveByID checks that RemoveByID deletes an aggregate, children
// first, without loading it; checks the version when one is given; and
// tells a missing aggregate (ErrNotFound) from one at another version
// (ErrConflict), writing nothing in either case.
func TestRemoveByID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		require.NoError(t, repo.Save(ctx, newOrder(2, "bob", &item{id: 1, sku: "A", quantity: 1})))
		v := b.load(t, 1).version
		b.log.take()

		err := repo.RemoveByID(ctx, 1, repository.IfVersion(v+1))
		require.ErrorIs(t, err, repository.ErrConflict)
		assert.NotErrorIs(t, err, repository.ErrNotFound)
		assert.True(t, b.exists(t, 1), "a conflict removes nothing")
		assert.Len(t, b.load(t, 1).items, 3)

		b.log.take()
		require.NoError(t, repo.RemoveByID(ctx, 1, repository.IfVersion(v)))
		stmts := b.log.take()
		assert.Zero(t, count(stmts, b.q("SELECT id, customer, total_amount, total_currency, version FROM orders WHERE id = ?")), "nothing is loaded: %q", sqls(stmts))
		if b.pgx {
			assert.Equal(t, 1, trips(stmts), "%q", sqls(stmts))
		}
		assert.False(t, b.exists(t, 1))
		assert.EqualValues(t, 0, b.raw.count(t, "SELECT count(*) FROM order_items WHERE order_id = ?", 1), "the children went first")

		err = repo.RemoveByID(ctx, 1)
		require.ErrorIs(t, err, repository.ErrNotFound)
		assert.NotErrorIs(t, err, repository.ErrConflict)
		err = repo.RemoveByID(ctx, 1, repository.IfVersion(v))
		require.ErrorIs(t, err, repository.ErrNotFound)
		assert.NotErrorIs(t, err, repository.ErrConflict)

		// Without a version, whatever the version; in a unit of work, the
		// instance loaded in it is no longer tracked.
		require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error {
			o, err := repo.Find(ctx, 2)
			require.NoError(t, err)
			require.NoError(t, repo.RemoveByID(ctx, 2))
			_, err = repo.Find(ctx, 2)
			require.ErrorIs(t, err, repository.ErrNotFound, "the unit of work forgot it")
			assert.False(t, repo.Tracker().Tracked(ctx, o))
			return nil
		}))
		assert.False(t, b.exists(t, 2))
		assert.EqualValues(t, 0, b.raw.count(t, "SELECT count(*) FROM order_items WHERE order_id = ?", 2))

		// In a unit of work, a failed RemoveByID leaves it usable.
		require.NoError(t, repo.Save(ctx, newOrder(3, "bob", &item{id: 1, sku: "A", quantity: 1})))
		require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error {
			require.ErrorIs(t, repo.RemoveByID(ctx, 3, repository.IfVersion(99)), repository.ErrConflict)
			require.ErrorIs(t, repo.RemoveByID(ctx, 4), repository.ErrNotFound)
			return repo.RemoveByID(ctx, 3)
		}))
		assert.False(t, b.exists(t, 3))
	})
}
