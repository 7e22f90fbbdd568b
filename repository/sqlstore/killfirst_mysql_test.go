package sqlstore

import (
	"context"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// TestMySQLKillFirstStatement checks that the guard of a round trip
// interrupts a statement blocked on a lock that is the first of its round
// trip (a load in a unit of work already begun, a save marked by
// CommitWith, which sends no SAVEPOINT before it): once the caller's
// context is done, KILL QUERY stops it (error 1317) and the call returns
// an error that says nothing was written, rather than wait for the wait
// of WithCancelWait, cut the connection, and leave the outcome unknown.
// The context is cancelled once the statement waits for its lock.
func TestMySQLKillFirstStatement(t *testing.T) {
	cases := []struct {
		name string
		op   func(e *myEnv, ctx context.Context, o *order) error
	}{
		{"load", func(e *myEnv, ctx context.Context, _ *order) error {
			_, err := e.repo.FindForUpdate(ctx, 1)
			return err
		}},
		{"CommitWith save", func(e *myEnv, ctx context.Context, o *order) error {
			o.customer = "bob"
			return e.repo.Save(e.db.CommitWith(ctx), o)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newMyEnv(t, nil, WithCancelWait(time.Minute))
			seedMy(t, e)
			o := e.load(t, 1)
			blocker, err := e.admin.Beginx()
			require.NoError(t, err)
			defer blocker.Rollback()
			_, err = blocker.Exec("SELECT id FROM orders WHERE id = 1 FOR UPDATE")
			require.NoError(t, err)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var opErr error
			done := make(chan error, 1)
			go func() {
				done <- e.db.InTx(ctx, func(ctx context.Context) error {
					if _, err := e.db.Exec(ctx, "DO 1"); err != nil { // begins the transaction
						return err
					}
					opErr = c.op(e, ctx, o)
					return opErr
				})
			}()
			require.NoError(t, e.waitFor(1, lockWaits))
			cancel()
			txErr := <-done

			require.Error(t, opErr)
			assert.NotErrorIs(t, opErr, repository.ErrOutcomeUnknown)
			assert.ErrorIs(t, opErr, context.Canceled)
			var me *mysql.MySQLError
			require.ErrorAs(t, opErr, &me, "the statement was not interrupted: %v", opErr)
			assert.EqualValues(t, 1317, me.Number)
			assert.NotErrorIs(t, txErr, repository.ErrOutcomeUnknown)
			require.NoError(t, blocker.Rollback())
			assert.Equal(t, "alice", e.load(t, 1).customer)
		})
	}
}
