package sqlstore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// TestFailedLastSaveNeverCommits checks that a save marked as the last of
// its unit of work (CommitWith), which runs without a savepoint, and fails
// after some of its statements ran, leaves nothing of itself committed,
// even when the function ignores the error and returns nil: the unit of
// work then refuses its COMMIT and rolls back. Loads still run in it.
func TestFailedLastSaveNeverCommits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		version := b.load(t, 1).version
		var saveErr error
		err := b.db.InTx(ctx, func(ctx context.Context) error {
			o, err := repo.FindForUpdate(ctx, 1)
			require.NoError(t, err)
			o.customer = "bob"   // the root's UPDATE runs first
			o.setQuantity(3, -1) // then the item's fails its CHECK
			saveErr = repo.Save(b.db.CommitWith(ctx), o)
			if !b.pgx {
				// The transaction is still open on database/sql: a load
				// runs in it.
				_, err := repo.Find(ctx, 1)
				assert.NoError(t, err)
			}
			return nil // the error ignored
		})
		require.ErrorIs(t, saveErr, repository.ErrConstraint)
		require.Error(t, err, "the unit of work must not commit")
		assert.NotErrorIs(t, err, repository.ErrOutcomeUnknown)
		got := b.load(t, 1)
		assert.Equal(t, "alice", got.customer, "the root's UPDATE was not committed")
		assert.Equal(t, version, got.version)
		assert.Equal(t, 3, got.item(3).quantity)
	})
}
