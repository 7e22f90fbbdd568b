package sqlstore

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// TestCommitWithInTx checks that a save marked with CommitWith in the
// function of the InTx that began the transaction carries the COMMIT:
// without a savepoint, and on pgx in the save's own round trip, for an
// update, an insert and a delete alike.
func TestCommitWithInTx(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)

		require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error {
			o, err := repo.FindForUpdate(ctx, 1)
			if err != nil {
				return err
			}
			o.setQuantity(1, 7)
			return repo.Save(b.db.CommitWith(ctx), o)
		}))
		stmts := b.log.take()
		assert.Zero(t, count(stmts, sqlSavepoint), "the last save needs no savepoint: %q", sqls(stmts))
		assert.Equal(t, 1, count(stmts, sqlCommit), "%q", sqls(stmts))
		if b.pgx {
			assert.Equal(t, 2, trips(stmts), "the load, then the save with the COMMIT: %q", sqls(stmts))
		}
		assert.Equal(t, 7, b.load(t, 1).item(1).quantity)

		require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error {
			return repo.Save(b.db.CommitWith(ctx), newOrder(2, "bob", &item{id: 1, sku: "A", quantity: 1}))
		}))
		stmts = b.log.take()
		assert.Zero(t, count(stmts, sqlSavepoint), "%q", sqls(stmts))
		if b.pgx {
			assert.Equal(t, 1, trips(stmts), "the insert with BEGIN and COMMIT: %q", sqls(stmts))
		}
		assert.True(t, b.exists(t, 2))

		require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error {
			o, err := repo.Find(ctx, 2)
			if err != nil {
				return err
			}
			return repo.Remove(b.db.CommitWith(ctx), o)
		}))
		stmts = b.log.take()
		assert.Zero(t, count(stmts, sqlSavepoint), "the delete is a save too: %q", sqls(stmts))
		if b.pgx {
			assert.Equal(t, 2, trips(stmts), "the load, then the delete with the COMMIT: %q", sqls(stmts))
		}
		assert.False(t, b.exists(t, 2))
	})
}

// TestCommitWithOutcome checks that a refused COMMIT is an error with
// nothing written, from the save itself on pgx, where the COMMIT rides
// with it; and that on pgx an operation after that save fails with
// ErrTxDone, and InTx then says that the transaction committed.
func TestCommitWithOutcome(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		v0 := b.load(t, 1).version

		var saveErr error
		err := b.db.InTx(ctx, func(ctx context.Context) error {
			o, err := repo.Find(ctx, 1)
			if err != nil {
				return err
			}
			o.customer = "nobody" // the deferred foreign key fails at COMMIT (at the UPDATE on MariaDB)
			saveErr = repo.Save(b.db.CommitWith(ctx), o)
			return saveErr
		})
		if b.pgx {
			require.Error(t, saveErr, "the COMMIT went with the save")
		}
		require.Error(t, err)
		assert.NotErrorIs(t, err, repository.ErrOutcomeUnknown)
		assert.Equal(t, "alice", b.load(t, 1).customer)
		assert.Equal(t, v0, b.load(t, 1).version)

		if !b.pgx {
			return // database/sql sends the COMMIT when the function returns
		}
		err = b.db.InTx(ctx, func(ctx context.Context) error {
			o, err := repo.Find(ctx, 1)
			if err != nil {
				return err
			}
			o.setQuantity(1, 4)
			if err := repo.Save(b.db.CommitWith(ctx), o); err != nil {
				return err
			}
			_, err = b.db.Exec(ctx, "DELETE FROM customers WHERE name = ?", "bob")
			assert.ErrorIs(t, err, ErrTxDone, "the unit of work ended with the save")
			return err
		})
		require.ErrorIs(t, err, repository.ErrOutcomeUnknown, "the transaction committed, then the function failed")
		assert.Equal(t, 4, b.load(t, 1).item(1).quantity)
		assert.Equal(t, v0+1, b.load(t, 1).version)
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM customers WHERE name = ?", "bob"))
	})
}

// TestCommitWithJoinedDoesNotCommit checks that CommitWith takes effect
// only in the function of the InTx that began the transaction: in a
// nested InTx, or in an Update's function, the save keeps its savepoint
// and the enclosing rollback undoes it.
func TestCommitWithJoinedDoesNotCommit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		require.NoError(t, repo.Save(ctx, newOrder(2, "bob", &item{id: 1, sku: "A", quantity: 1})))
		b.log.take()
		errStop := errors.New("stop")

		err := b.db.InTx(ctx, func(ctx context.Context) error {
			require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error {
				o, err := repo.Find(ctx, 1)
				require.NoError(t, err)
				o.setQuantity(1, 9)
				return repo.Save(b.db.CommitWith(ctx), o)
			}))
			return errStop
		})
		require.ErrorIs(t, err, errStop)
		assert.Equal(t, 1, b.load(t, 1).item(1).quantity, "the nested save did not commit")

		err = repo.Update(ctx, 1, func(ctx context.Context, o *order) error {
			o.setQuantity(1, 9)
			o2, err := repo.Find(ctx, 2)
			require.NoError(t, err)
			o2.setQuantity(1, 9)
			require.NoError(t, repo.Save(b.db.CommitWith(ctx), o2))
			return errStop
		})
		require.ErrorIs(t, err, errStop)
		assert.Equal(t, 1, b.load(t, 2).item(1).quantity, "a save in an Update's function did not commit")

		// Outside a transaction, CommitWith changes nothing.
		o, err := repo.Find(ctx, 2)
		require.NoError(t, err)
		o.setQuantity(1, 3)
		require.NoError(t, repo.Save(b.db.CommitWith(ctx), o))
		assert.Equal(t, 3, b.load(t, 2).item(1).quantity)
	})
}
