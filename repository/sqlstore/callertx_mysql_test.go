package sqlstore

import (
	"context"
	"database/sql"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// deadlockOn runs save, which must ask for the lock of order 2 while its
// transaction holds order 1's, into a deadlock with a transaction of
// another session that holds order 2 and asks for order 1, and returns
// save's error. The other transaction has written more rows, so that
// InnoDB rolls back save's (the one that wrote least). The order of the
// locks is forced by waiting for save to wait for its lock.
func (e *myEnv) deadlockOn(t *testing.T, save func() error) error {
	t.Helper()
	ctx := context.Background()
	blocker, err := e.admin.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer blocker.Rollback()
	_, err = blocker.Exec(`INSERT INTO customers (name)
		WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
		SELECT CONCAT('c', i) FROM n`)
	require.NoError(t, err)
	_, err = blocker.Exec("SELECT id FROM orders WHERE id = 2 FOR UPDATE")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- save() }()
	require.NoError(t, e.waitFor(1, lockWaits))
	_, err = blocker.Exec("SELECT id FROM orders WHERE id = 1 FOR UPDATE")
	require.NoError(t, err, "the server rolled back the other transaction, not the save's")
	return <-done
}

// TestMySQLDeadlockInCallersTx checks that a deadlock in a caller's
// transaction, which the server rolls back whole (the savepoint of the
// save with it), is not taken for the failure of one save: the error
// matches ErrConflict and ErrTxRolledBack, the unit of work refuses its
// further operations, Joined.Committed does not advance the snapshots of
// what the rolled back transaction held, and InSQLTx rolls back and
// returns the error, though its function ignored it and returned nil.
// Saved again afterwards, the change that was lost is written.
func TestMySQLDeadlockInCallersTx(t *testing.T) {
	for _, mode := range []string{"JoinSQL", "InSQLTx"} {
		t.Run(mode, func(t *testing.T) {
			e := newMyEnv(t, nil)
			ctx := context.Background()
			seedMy(t, e)
			require.NoError(t, e.repo.Save(ctx, newOrder(2, "bob", &item{id: 1, sku: "A", quantity: 1})))
			o1, o2 := e.load(t, 1), e.load(t, 2)
			tx, err := e.x.BeginTx(ctx, nil)
			require.NoError(t, err)
			defer tx.Rollback()

			var saveErr, afterErr error
			run := func(ctx context.Context) error {
				o1.customer = "bob"
				require.NoError(t, e.repo.Save(ctx, o1)) // locks order 1
				saveErr = e.deadlockOn(t, func() error {
					o2.customer = "alice"
					return e.repo.Save(ctx, o2)
				})
				_, afterErr = e.db.Exec(ctx, "DO 1")
				return nil // the errors ignored
			}
			switch mode {
			case "JoinSQL":
				jctx, j, err := e.db.JoinSQL(ctx, tx)
				require.NoError(t, err)
				require.NoError(t, run(jctx))
				// The server takes what the caller sends next, outside
				// any transaction, and its COMMIT, which commits nothing.
				_, err = tx.ExecContext(ctx, "DO 1")
				require.NoError(t, err)
				require.NoError(t, tx.Commit())
				j.Committed()
			case "InSQLTx":
				txErr := e.db.InSQLTx(ctx, tx, run)
				require.Error(t, txErr, "committed a transaction the server had rolled back")
				assert.ErrorIs(t, txErr, ErrTxRolledBack)
				assert.ErrorIs(t, txErr, repository.ErrConflict)
				assert.NotErrorIs(t, txErr, repository.ErrOutcomeUnknown)
				assert.ErrorIs(t, tx.Commit(), sql.ErrTxDone, "InSQLTx did not end the transaction")
			}

			require.ErrorIs(t, saveErr, repository.ErrConflict)
			require.ErrorIs(t, saveErr, ErrTxRolledBack)
			var me *mysql.MySQLError
			require.ErrorAs(t, saveErr, &me)
			assert.EqualValues(t, 1213, me.Number)
			assert.ErrorIs(t, afterErr, ErrTxRolledBack, "an operation ran after the transaction was rolled back")

			assert.Equal(t, "alice", e.load(t, 1).customer, "order 1 was rolled back")
			// The snapshot of order 1 did not advance past its lost
			// change: saved again, the change is written.
			require.NoError(t, e.repo.Save(ctx, o1))
			assert.Equal(t, "bob", e.load(t, 1).customer, "the change of order 1 was lost")
		})
	}
}
