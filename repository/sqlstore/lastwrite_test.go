package sqlstore

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// The last save of an Update that begins its own transaction carries the
// COMMIT on pgx and needs no savepoint on any backend. These tests check
// that the shortcut is taken only there, and that every outcome stays
// truthful.

// TestUpdateLastSave checks the statements of an Update, and that a save
// in a caller's unit of work keeps its savepoint.
func TestUpdateLastSave(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		require.NoError(t, repo.Update(ctx, 1, func(_ context.Context, o *order) error {
			o.setQuantity(1, 7)
			return nil
		}))
		stmts := b.log.take()
		assert.Zero(t, count(stmts, sqlSavepoint), "the last save needs no savepoint: %q", sqls(stmts))
		assert.Equal(t, 1, count(stmts, sqlCommit), "%q", sqls(stmts))
		if b.pgx {
			assert.Equal(t, 2, trips(stmts), "the load, then the save with the COMMIT: %q", sqls(stmts))
		}
		assert.Equal(t, 7, b.load(t, 1).item(1).quantity)

		// In a unit of work of the caller's, a save is not the last
		// operation: it keeps its savepoint, so that a failure leaves the
		// transaction usable.
		require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error {
			return repo.Update(ctx, 1, func(_ context.Context, o *order) error {
				o.setQuantity(1, 8)
				return nil
			})
		}))
		stmts = b.log.take()
		assert.Equal(t, 1, count(stmts, sqlSavepoint), "%q", sqls(stmts))
		assert.Equal(t, 8, b.load(t, 1).item(1).quantity)
	})
}

// TestUpdateInUnitOfWorkDoesNotCommit checks that an Update run in an
// enclosing unit of work, or nested in another Update's change, never
// commits the transaction it joined: a rollback of the enclosing unit of
// work undoes it.
func TestUpdateInUnitOfWorkDoesNotCommit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		require.NoError(t, repo.Save(ctx, newOrder(2, "bob", &item{id: 1, sku: "A", quantity: 1})))
		errStop := errors.New("stop")

		err := b.db.InTx(ctx, func(ctx context.Context) error {
			require.NoError(t, repo.Update(ctx, 1, func(_ context.Context, o *order) error {
				o.setQuantity(1, 9)
				return nil
			}))
			return errStop
		})
		require.ErrorIs(t, err, errStop)
		assert.Equal(t, 1, b.load(t, 1).item(1).quantity, "the enclosing rollback undid the Update")

		err = repo.Update(ctx, 1, func(ctx context.Context, o *order) error {
			o.setQuantity(1, 9)
			// The nested Update's last save is not the last of the
			// transaction, which the outer Update began.
			require.NoError(t, repo.Update(ctx, 2, func(_ context.Context, o2 *order) error {
				o2.setQuantity(1, 9)
				return nil
			}))
			return errStop
		})
		require.ErrorIs(t, err, errStop)
		assert.Equal(t, 1, b.load(t, 1).item(1).quantity)
		assert.Equal(t, 1, b.load(t, 2).item(1).quantity, "the nested Update was rolled back with the outer one")

		// The nested Update commits with the outer one when it succeeds.
		require.NoError(t, repo.Update(ctx, 1, func(ctx context.Context, o *order) error {
			o.setQuantity(1, 5)
			return repo.Update(ctx, 2, func(_ context.Context, o2 *order) error {
				o2.setQuantity(1, 6)
				return nil
			})
		}))
		assert.Equal(t, 5, b.load(t, 1).item(1).quantity)
		assert.Equal(t, 6, b.load(t, 2).item(1).quantity)
	})
}

// TestUpdateLastSaveFails checks the failures of a last save: a statement
// refused, and a COMMIT refused (the deferred foreign key of
// orders.customer, which MariaDB checks at the UPDATE instead). Each returns an error that says nothing was written,
// leaves the database, the version and the snapshot as they were, and lets
// the next Update apply its change exactly once.
func TestUpdateLastSaveFails(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		v0 := b.load(t, 1).version
		cases := []struct {
			name   string
			change func(o *order)
		}{
			{"statement refused (CHECK quantity > 0)", func(o *order) { o.setQuantity(1, 0) }},
			{"COMMIT refused (deferred foreign key)", func(o *order) { o.customer = "nobody" }},
		}
		for _, c := range cases {
			err := repo.Update(ctx, 1, func(_ context.Context, o *order) error {
				c.change(o)
				return nil
			})
			require.Error(t, err, c.name)
			assert.NotErrorIs(t, err, repository.ErrOutcomeUnknown, c.name)
			got := b.load(t, 1)
			assert.Equal(t, "alice", got.customer, c.name)
			assert.Equal(t, 1, got.item(1).quantity, c.name)
			assert.Equal(t, v0, got.version, c.name)
		}
		require.NoError(t, repo.Update(ctx, 1, func(_ context.Context, o *order) error {
			o.setQuantity(1, o.item(1).quantity+1)
			return nil
		}))
		got := b.load(t, 1)
		assert.Equal(t, 2, got.item(1).quantity)
		assert.Equal(t, v0+1, got.version)
	})
}

// TestDoneContextSendsNothing checks that an operation in a unit of work
// whose context is already done sends nothing and says why.
func TestDoneContextSendsNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		seed(t, b)
		repo := b.repo(t)
		ctx, cancel := context.WithCancel(context.Background())
		err := b.db.InTx(ctx, func(ctx context.Context) error {
			o, err := repo.Find(ctx, 1)
			require.NoError(t, err)
			b.log.take()
			cancel()
			o.setQuantity(1, 3)
			err = repo.Save(ctx, o)
			require.ErrorIs(t, err, context.Canceled)
			_, err = b.db.Exec(ctx, "DELETE FROM customers WHERE name = ?", "bob")
			require.ErrorIs(t, err, context.Canceled)
			assert.Empty(t, dml(b.log.take()), "nothing is sent once the context is done")
			return err
		})
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, 1, b.load(t, 1).item(1).quantity)
	})
}

// auditing is a transactor that wraps a DB's and writes a row of its own
// after the unit of work's function.
type auditing struct {
	db    *DB
	query string // the INSERT, in the DB's placeholders
}

func (a auditing) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return a.db.InTx(ctx, func(ctx context.Context) error {
		if err := fn(ctx); err != nil {
			return err
		}
		_, err := a.db.Exec(ctx, a.query, "audited")
		return err
	})
}

// TestUpdateThroughWrappingTransactor checks that an Update handed to a
// transactor that wraps the DB's, and does more after the function, does
// not commit with its save: the transactor's own row is written in the
// same transaction, and no connection is left behind.
func TestUpdateThroughWrappingTransactor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo, err := NewRepository[*order, orderID](b.db, orderMapping(t), repository.WithTransactor(auditing{b.db, "INSERT INTO customers (name) VALUES (?)"}))
		require.NoError(t, err)
		require.NoError(t, repo.Update(ctx, 1, func(_ context.Context, o *order) error {
			o.setQuantity(1, 6)
			return nil
		}))
		assert.Equal(t, 6, b.load(t, 1).item(1).quantity)
		assert.EqualValues(t, 1, b.raw.count(t, "SELECT count(*) FROM customers WHERE name = ?", "audited"))
		stmts := b.log.take()
		assert.Equal(t, 2, count(stmts, sqlSavepoint), "the save is not the last operation: it keeps its savepoint, as the audit row does: %q", sqls(stmts))
		assert.Equal(t, sqlCommit, stmts[len(stmts)-1].SQL, "the COMMIT comes after the transactor's own row")
		if pool, ok := b.raw.(pgxRaw); ok {
			assert.Zero(t, pool.p.Stat().AcquiredConns(), "no connection is left acquired")
		}
	})
}
