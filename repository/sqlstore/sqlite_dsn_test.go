package sqlstore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// sqliteDSNOptions are the options of the SQLite DSN that the package doc
// and the README recommend.
const sqliteDSNOptions = "?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)"

// openSQLite opens a new SQLite file with the DSN options opts, creates
// the test schema, and returns the handle and a repository of orders.
func openSQLite(t *testing.T, opts string) (*sqlx.DB, *Repository[*order, orderID]) {
	t.Helper()
	x, err := sqlx.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "test.db")+opts)
	require.NoError(t, err)
	t.Cleanup(func() { x.Close() })
	for _, s := range schemaDDL {
		_, err := x.Exec(s)
		require.NoError(t, err, s)
	}
	db, err := NewSQL(x)
	require.NoError(t, err)
	repo, err := NewRepository[*order, orderID](db, orderMapping(t))
	require.NoError(t, err)
	return x, repo
}

// TestSQLiteDSNPragmas checks that the recommended DSN sets its pragmas on
// every connection of the pool, not only the first.
func TestSQLiteDSNPragmas(t *testing.T) {
	x, _ := openSQLite(t, sqliteDSNOptions)
	ctx := context.Background()
	for i := range 3 {
		c, err := x.Connx(ctx) // each held: the next is a new connection
		require.NoError(t, err)
		defer c.Close()
		var busy, fk int
		var journal string
		require.NoError(t, c.QueryRowxContext(ctx, "PRAGMA busy_timeout").Scan(&busy))
		require.NoError(t, c.QueryRowxContext(ctx, "PRAGMA foreign_keys").Scan(&fk))
		require.NoError(t, c.QueryRowxContext(ctx, "PRAGMA journal_mode").Scan(&journal))
		assert.Equal(t, 5000, busy, "connection %d", i)
		assert.Equal(t, 1, fk, "connection %d", i)
		assert.Equal(t, "wal", journal, "connection %d", i)
	}
}

// TestSQLiteDSNForeignKeys checks that with foreign_keys(1) a row that
// refers to nothing is refused, and that without it SQLite stores it.
func TestSQLiteDSNForeignKeys(t *testing.T) {
	ctx := context.Background()
	_, repo := openSQLite(t, sqliteDSNOptions)
	err := repo.Save(ctx, newOrder(1, "nobody"))
	assert.ErrorIs(t, err, repository.ErrConstraint, "orders.customer refers to no customer")

	x, repo := openSQLite(t, "?_pragma=busy_timeout(5000)")
	require.NoError(t, repo.Save(ctx, newOrder(1, "nobody")), "without foreign_keys(1), SQLite does not check references")
	var n int
	require.NoError(t, x.Get(&n, `SELECT COUNT(*) FROM orders WHERE customer = 'nobody'`))
	assert.Equal(t, 1, n)
}

// TestSQLiteDSNBusyTimeout checks that a save meeting the write lock of
// another unit of work fails at once without busy_timeout, and waits for
// it with the recommended DSN.
func TestSQLiteDSNBusyTimeout(t *testing.T) {
	for _, tc := range []struct {
		name, opts string
		want       error
	}{
		{"without busy_timeout", "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)", repository.ErrConflict},
		{"recommended", sqliteDSNOptions, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			_, repo := openSQLite(t, tc.opts)
			db := repo.Store().db
			locked, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			go func() {
				done <- db.InTx(ctx, func(ctx context.Context) error {
					if err := repo.Save(ctx, newOrder(1, "alice")); err != nil {
						close(locked)
						return err
					}
					close(locked) // the unit of work holds the write lock
					<-release
					return nil
				})
			}()
			<-locked
			second := make(chan error, 1)
			go func() { second <- repo.Save(ctx, newOrder(2, "bob")) }()
			if tc.want != nil {
				assert.ErrorIs(t, <-second, tc.want, "SQLITE_BUSY at once")
				close(release)
				require.NoError(t, <-done)
				return
			}
			close(release)
			require.NoError(t, <-done)
			assert.NoError(t, <-second, "the second writer waited for the first")
		})
	}
}

// TestSQLiteDSNWAL checks that with journal_mode(WAL) a save commits while
// a read transaction is open on another connection, where the default
// rollback journal makes it wait for the reader, here in vain.
func TestSQLiteDSNWAL(t *testing.T) {
	for _, tc := range []struct {
		name, opts string
		want       error
	}{
		{"rollback journal", "?_pragma=busy_timeout(50)&_pragma=foreign_keys(1)", repository.ErrConflict},
		{"recommended", sqliteDSNOptions, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			x, repo := openSQLite(t, tc.opts)
			require.NoError(t, repo.Save(ctx, newOrder(1, "alice")))
			rtx, err := x.BeginTxx(ctx, nil)
			require.NoError(t, err)
			defer rtx.Rollback()
			var n int
			require.NoError(t, rtx.Get(&n, `SELECT COUNT(*) FROM orders`))
			err = repo.Save(ctx, newOrder(2, "bob"))
			if tc.want != nil {
				assert.ErrorIs(t, err, tc.want)
				return
			}
			assert.NoError(t, err)
			require.NoError(t, rtx.Get(&n, `SELECT COUNT(*) FROM orders`))
			assert.Equal(t, 1, n, "the reader still sees its snapshot")
		})
	}
}

// TestSQLiteMemoryIsPerConnection checks why the DSN names a file: an
// in-memory database is one database per connection of the pool.
func TestSQLiteMemoryIsPerConnection(t *testing.T) {
	x, err := sqlx.Open("sqlite", ":memory:")
	require.NoError(t, err)
	defer x.Close()
	ctx := context.Background()
	c1, err := x.Connx(ctx)
	require.NoError(t, err)
	defer c1.Close()
	_, err = c1.ExecContext(ctx, `CREATE TABLE t (id INTEGER)`)
	require.NoError(t, err)
	c2, err := x.Connx(ctx)
	require.NoError(t, err)
	defer c2.Close()
	_, err = c2.ExecContext(ctx, `SELECT * FROM t`)
	assert.ErrorContains(t, err, "no such table", "another connection, another database")
}
