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

// TestRemoveByIDCommitWith checks that RemoveByID marked with CommitWith in
// a unit of work tells a missing aggregate (ErrNotFound, with no word of a
// version when none was given) from one at another version (ErrConflict),
// though on pgx the failed statement ended the transaction it was to
// commit.
func TestRemoveByIDCommitWith(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		v := b.load(t, 1).version

		for _, tc := range []struct {
			name string
			id   orderID
			opts []repository.RemoveOption
			want error
			not  error
		}{
			{"missing", 9, nil, repository.ErrNotFound, repository.ErrConflict},
			{"missing at a version", 9, []repository.RemoveOption{repository.IfVersion(v)}, repository.ErrNotFound, repository.ErrConflict},
			{"another version", 1, []repository.RemoveOption{repository.IfVersion(v + 1)}, repository.ErrConflict, repository.ErrNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var err error
				txErr := b.db.InTx(ctx, func(ctx context.Context) error {
					err = repo.RemoveByID(b.db.CommitWith(ctx), tc.id, tc.opts...)
					return err
				})
				require.ErrorIs(t, txErr, tc.want)
				require.ErrorIs(t, err, tc.want)
				assert.NotErrorIs(t, err, tc.not)
				assert.NotErrorIs(t, err, repository.ErrOutcomeUnknown)
				if len(tc.opts) == 0 {
					assert.NotContains(t, err.Error(), "version")
				}
			})
		}
		assert.True(t, b.exists(t, 1), "a conflict removes nothing")
		assert.Len(t, b.load(t, 1).items, 3)

		// Outside a unit of work too.
		err := repo.RemoveByID(ctx, 9)
		require.ErrorIs(t, err, repository.ErrNotFound)
		assert.NotContains(t, err.Error(), "version")
	})
}
