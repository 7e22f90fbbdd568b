package sqlstore

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// onePrefix checks that err names the package once.
func onePrefix(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	assert.Equal(t, 1, strings.Count(err.Error(), "sqlstore: "), "%q", err.Error())
}

// TestNewPGXTxErr checks that a NewPGX given a transaction says so where
// the DB is built, with DB.Err, and that every use refuses it with that
// error, naming the package once.
func TestNewPGXTxErr(t *testing.T) {
	ctx := context.Background()
	db := NewPGX(fakeTx{})
	err := db.Err()
	require.ErrorIs(t, err, errTxAsConn)
	assert.ErrorContains(t, err, "a pgx.Tx (sqlstore.fakeTx) cannot be the connection")
	onePrefix(t, err)

	_, err = NewRepository[*order, orderID](db, orderMapping(t))
	assert.ErrorIs(t, err, errTxAsConn)
	onePrefix(t, err)
	_, err = NewStore[*order, orderID](db, orderMapping(t)).Select(ctx, 1)
	assert.ErrorIs(t, err, errTxAsConn)
	onePrefix(t, err)
	err = db.InTx(ctx, func(context.Context) error { return nil })
	assert.ErrorIs(t, err, errTxAsConn)
	onePrefix(t, err)
	_, err = db.Exec(ctx, "SELECT 1")
	assert.ErrorIs(t, err, errTxAsConn)
	onePrefix(t, err)
	err = db.Query(ctx, "SELECT 1").Each(func(func(...any) error) error { return nil })
	assert.ErrorIs(t, err, errTxAsConn)
	onePrefix(t, err)
	_, err = db.PGXTx(ctx)
	assert.ErrorIs(t, err, errTxAsConn)
	onePrefix(t, err)
	_, _, err = db.JoinPGX(ctx, nil)
	assert.ErrorIs(t, err, errTxAsConn)
	onePrefix(t, err)

	assert.NoError(t, NewPGX(noBatches{}).Err())
	onePrefix(t, NewPGX(nil).Err())
	onePrefix(t, (*DB)(nil).Err())
}

// TestErrorsNameThePackageOnce checks the errors of a unit of work that
// ended, of a context without one, and of a bad query.
func TestErrorsNameThePackageOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		assert.NoError(t, b.db.Err())
		var ended context.Context
		require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error { ended = ctx; return nil }))

		_, err := b.db.Exec(ended, "SELECT 1")
		assert.ErrorIs(t, err, ErrTxDone)
		onePrefix(t, err)
		err = b.db.Query(ended, "SELECT 1").Each(func(func(...any) error) error { return nil })
		assert.ErrorIs(t, err, ErrTxDone)
		onePrefix(t, err)
		_, err = b.repo(t).Find(ended, 1)
		assert.ErrorIs(t, err, ErrTxDone)
		onePrefix(t, err)

		if b.pgx {
			_, err = b.db.PGXTx(ctx)
			assert.ErrorIs(t, err, ErrNoTx)
			onePrefix(t, err)
			_, err = b.db.PGXTx(ended)
		} else {
			_, err = b.db.SQLTx(ctx)
			assert.ErrorIs(t, err, ErrNoTx)
			onePrefix(t, err)
			_, err = b.db.SQLTx(ended)
		}
		assert.ErrorIs(t, err, ErrTxDone)
		onePrefix(t, err)

		_, err = b.repo(t).FindAll(ctx, Where(Eq("nope", 1)))
		assert.ErrorIs(t, err, ErrQuery)
		onePrefix(t, err)
	})
}
