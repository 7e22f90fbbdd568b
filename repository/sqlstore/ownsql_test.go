package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// q writes the placeholders ? of s as the backend's own.
func (b *backend) q(s string) string {
	if !b.db.dialect.dollar {
		return s
	}
	var out strings.Builder
	n := 0
	for _, r := range s {
		if r == '?' {
			n++
			out.WriteString("$" + string(rune('0'+n)))
			continue
		}
		out.WriteRune(r)
	}
	return out.String()
}

var errUndo = errors.New("undo")

func customers(t *testing.T, ctx context.Context, db *DB) []string {
	t.Helper()
	var names []string
	require.NoError(t, db.Query(ctx, "SELECT name FROM customers ORDER BY name").Each(func(scan func(dest ...any) error) error {
		var n string
		if err := scan(&n); err != nil {
			return err
		}
		names = append(names, n)
		return nil
	}))
	return names
}

func TestOwnSQLOnThePool(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		n, err := b.db.Exec(ctx, "INSERT INTO customers (name) VALUES (?), (?)", "carol", "dave")
		require.NoError(t, err)
		assert.Equal(t, int64(2), n)
		assert.Equal(t, int64(1), b.raw.count(t, "SELECT count(*) FROM customers WHERE name = ?", "carol"), "committed")
		assert.Contains(t, sqls(b.log.take()), b.q("INSERT INTO customers (name) VALUES (?), (?)"), "reported")

		assert.Equal(t, []string{"alice", "bob", "carol", "dave"}, customers(t, ctx, b.db))

		var name string
		require.NoError(t, b.db.QueryRow(ctx, "SELECT name FROM customers WHERE name > ? ORDER BY name", "b").Scan(&name))
		assert.Equal(t, "bob", name, "the first row")

		err = b.db.QueryRow(ctx, "SELECT name FROM customers WHERE name = ?", "nobody").Scan(&name)
		assert.ErrorIs(t, err, ErrNoRows)
		assert.ErrorIs(t, err, sql.ErrNoRows)

		n, err = b.db.Exec(ctx, "DELETE FROM customers WHERE name = ?", "nobody")
		require.NoError(t, err)
		assert.Zero(t, n)

		_, err = b.db.Exec(ctx, "INSERT INTO customers (name) VALUES (?)", "alice")
		assert.Error(t, err, "a unique violation")

		stop := errors.New("stop")
		calls := 0
		err = b.db.Query(ctx, "SELECT name FROM customers").Each(func(func(dest ...any) error) error {
			calls++
			return stop
		})
		assert.ErrorIs(t, err, stop)
		assert.Equal(t, 1, calls)
		// The rows were closed: the pool is still usable.
		assert.Len(t, customers(t, ctx, b.db), 4)
	})
}

func TestOwnSQLJoinsTheUnitOfWork(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := b.repo(t)
		work := func(ctx context.Context, id orderID, customer string) {
			n, err := b.db.Exec(ctx, "INSERT INTO customers (name) VALUES (?)", customer)
			require.NoError(t, err)
			require.Equal(t, int64(1), n)
			require.NoError(t, repo.Save(ctx, newOrder(id, customer, &item{id: 1, sku: "a", quantity: 1})))
			var c int64
			require.NoError(t, b.db.QueryRow(ctx, "SELECT count(*) FROM orders o JOIN customers c ON c.name = o.customer WHERE c.name = ?", customer).Scan(&c))
			assert.Equal(t, int64(1), c, "the unit of work sees its own writes")
			assert.Contains(t, customers(t, ctx, b.db), customer)
		}

		err := b.db.InTx(ctx, func(ctx context.Context) error {
			work(ctx, 1, "carol")
			return errUndo
		})
		require.ErrorIs(t, err, errUndo)
		assert.Zero(t, b.raw.count(t, "SELECT count(*) FROM customers WHERE name = ?", "carol"), "the Exec rolled back")
		assert.False(t, b.exists(t, 1), "the Save rolled back")

		b.log.take()
		require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error {
			work(ctx, 2, "dave")
			return nil
		}))
		log := b.log.take()
		assert.Equal(t, 1, count(log, sqlCommit), "%q", sqls(log))
		assert.Equal(t, 1, count(log, sqlBegin)+count(log, sqlBeginImmediate)+count(log, sqlStartTransaction), "one transaction: %q", sqls(log))
		assert.Equal(t, int64(1), b.raw.count(t, "SELECT count(*) FROM customers WHERE name = ?", "dave"))
		assert.True(t, b.exists(t, 2))

		// A failed Exec leaves the transaction usable, like a failed save.
		require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error {
			_, err := b.db.Exec(ctx, "INSERT INTO customers (name) VALUES (?)", "alice")
			require.Error(t, err)
			_, err = b.db.Exec(ctx, "INSERT INTO customers (name) VALUES (?)", "erin")
			return err
		}))
		assert.Equal(t, int64(1), b.raw.count(t, "SELECT count(*) FROM customers WHERE name = ?", "erin"))

		var ctxDone context.Context
		require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error {
			ctxDone = ctx
			return nil
		}))
		_, err = b.db.Exec(ctxDone, "DELETE FROM customers")
		assert.ErrorIs(t, err, ErrTxDone)
	})
}

func TestOwnSQLTxEscapeHatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := b.repo(t)
		insert := "INSERT INTO orders (id, customer, total_amount, total_currency, version) VALUES (?, ?, ?, ?, ?)"

		_, err := b.db.PGXTx(ctx)
		if b.pgx {
			assert.ErrorIs(t, err, ErrNoTx)
			_, err = b.db.SQLTx(ctx)
			assert.ErrorContains(t, err, "NewSQL")
		} else {
			assert.ErrorContains(t, err, "NewPGX")
			_, err = b.db.SQLTx(ctx)
			assert.ErrorIs(t, err, ErrNoTx)
		}

		err = b.db.InTx(ctx, func(ctx context.Context) error {
			require.NoError(t, repo.Save(ctx, newOrder(1, "alice")))
			if b.pgx {
				tx, err := b.db.PGXTx(ctx)
				require.NoError(t, err)
				_, err = tx.Exec(ctx, b.q(insert), 7, "bob", 0, "EUR", 1)
				require.NoError(t, err)
				var n int64
				require.NoError(t, tx.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n))
				assert.Equal(t, int64(2), n, "the transaction sees the repository's save")
			} else {
				tx, err := b.db.SQLTx(ctx)
				require.NoError(t, err)
				_, err = tx.ExecContext(ctx, b.q(insert), 7, "bob", 0, "EUR", 1)
				require.NoError(t, err)
				var n int64
				require.NoError(t, tx.QueryRowContext(ctx, "SELECT count(*) FROM orders").Scan(&n))
				assert.Equal(t, int64(2), n, "the transaction sees the repository's save")
			}
			o, err := repo.Find(ctx, 7)
			require.NoError(t, err, "the repository sees the row inserted on the transaction")
			assert.Equal(t, "bob", o.customer)
			return errUndo
		})
		require.ErrorIs(t, err, errUndo)
		assert.False(t, b.exists(t, 7), "rolled back with the unit of work")
		assert.False(t, b.exists(t, 1))

		// The escape hatch begins the transaction when nothing was sent.
		require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error {
			if b.pgx {
				tx, err := b.db.PGXTx(ctx)
				require.NoError(t, err)
				_, err = tx.Exec(ctx, b.q(insert), 8, "bob", 0, "EUR", 1)
				return err
			}
			tx, err := b.db.SQLTx(ctx)
			require.NoError(t, err)
			_, err = tx.ExecContext(ctx, b.q(insert), 8, "bob", 0, "EUR", 1)
			return err
		}))
		assert.True(t, b.exists(t, 8), "committed with the unit of work")

		// A failed save's savepoint is restored before the transaction is
		// handed out.
		require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error {
			require.ErrorIs(t, repo.Save(ctx, newOrder(8, "bob")), repository.ErrExists)
			if b.pgx {
				tx, err := b.db.PGXTx(ctx)
				require.NoError(t, err)
				_, err = tx.Exec(ctx, b.q(insert), 9, "bob", 0, "EUR", 1)
				return err
			}
			tx, err := b.db.SQLTx(ctx)
			require.NoError(t, err)
			_, err = tx.ExecContext(ctx, b.q(insert), 9, "bob", 0, "EUR", 1)
			return err
		}))
		assert.True(t, b.exists(t, 9))
	})
}

func TestOwnSQLTxOptions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		pg := b.postgres()
		b.log.take()
		var n int64
		require.NoError(t, b.db.InTxWith(ctx, TxOptions{ReadOnly: true}, func(ctx context.Context) error {
			return b.db.QueryRow(ctx, "SELECT count(*) FROM customers").Scan(&n)
		}), "a read-only transaction reads")
		assert.Equal(t, int64(2), n)
		log := sqls(b.log.take())
		if pg {
			assert.Contains(t, log, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
				"a read-only transaction reads one snapshot: it cannot lock what it loads")
			err := b.db.InTxWith(ctx, TxOptions{ReadOnly: true}, func(ctx context.Context) error {
				_, err := b.db.Exec(ctx, "INSERT INTO customers (name) VALUES ('carol')")
				return err
			})
			var pe *pgconn.PgError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, "25006", pe.Code, "read_only_sql_transaction")
		} else if b.mysql() {
			err := b.db.InTxWith(ctx, TxOptions{ReadOnly: true}, func(ctx context.Context) error {
				_, err := b.db.Exec(ctx, "INSERT INTO customers (name) VALUES ('carol')")
				return err
			})
			var me *mysql.MySQLError
			require.ErrorAs(t, err, &me)
			assert.EqualValues(t, 1792, me.Number, "ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION")
		} else {
			assert.Contains(t, log, sqlBegin, "a deferred BEGIN")
			assert.NotContains(t, log, sqlBeginImmediate)
		}

		// Nested units of work join when the outer transaction satisfies
		// them.
		require.NoError(t, b.db.InTx(ctx, func(ctx context.Context) error {
			return b.db.InTxWith(ctx, TxOptions{ReadOnly: true}, func(context.Context) error { return nil })
		}))
		err := b.db.InTxWith(ctx, TxOptions{ReadOnly: true}, func(ctx context.Context) error {
			return b.db.InTxWith(ctx, TxOptions{}, func(context.Context) error {
				t.Error("ran in a read-only transaction")
				return nil
			})
		})
		assert.ErrorContains(t, err, "read-only")

		if b.sqlite() {
			assert.NoError(t, b.db.InTxWith(ctx, TxOptions{Isolation: sql.LevelRepeatableRead}, func(ctx context.Context) error {
				return b.db.InTxWith(ctx, TxOptions{Isolation: sql.LevelSerializable}, func(context.Context) error { return nil })
			}), "SQLite is serializable")
			assert.Error(t, b.db.InTxWith(ctx, TxOptions{Isolation: sql.LevelLinearizable}, func(context.Context) error {
				t.Error("ran")
				return nil
			}))
			return
		}
		assert.Error(t, b.db.InTxWith(ctx, TxOptions{Isolation: sql.LevelSnapshot}, func(context.Context) error {
			t.Error("ran")
			return nil
		}), "PostgreSQL and MariaDB have no snapshot level")
		err = b.db.InTxWith(ctx, TxOptions{Isolation: sql.LevelRepeatableRead}, func(ctx context.Context) error {
			return b.db.InTxWith(ctx, TxOptions{Isolation: sql.LevelSerializable}, func(context.Context) error {
				t.Error("ran in a weaker transaction")
				return nil
			})
		})
		assert.ErrorContains(t, err, "isolation level")

		// Repeatable read: the transaction reads one snapshot.
		b.log.take()
		require.NoError(t, b.db.InTxWith(ctx, TxOptions{Isolation: sql.LevelRepeatableRead}, func(ctx context.Context) error {
			var level string
			if pg {
				require.NoError(t, b.db.QueryRow(ctx, "SHOW transaction_isolation").Scan(&level))
				assert.Equal(t, "repeatable read", level)
			} else {
				require.NoError(t, b.db.QueryRow(ctx, "SELECT @@tx_isolation").Scan(&level))
				assert.Equal(t, "REPEATABLE-READ", level)
			}
			before := customers(t, ctx, b.db)
			b.raw.exec(t, "INSERT INTO customers (name) VALUES ('zoe')")
			assert.Equal(t, before, customers(t, ctx, b.db), "the commit of another transaction is not seen")
			return b.db.InTxWith(ctx, TxOptions{Isolation: sql.LevelReadCommitted}, func(context.Context) error { return nil })
		}))
		if pg {
			assert.Contains(t, sqls(b.log.take()), "BEGIN ISOLATION LEVEL REPEATABLE READ")
		}
		assert.Equal(t, int64(1), b.raw.count(t, "SELECT count(*) FROM customers WHERE name = 'zoe'"))
	})
}

// fakeTx has the methods of a pgx.Tx that NewPGX detects.
type fakeTx struct{}

func (fakeTx) SendBatch(context.Context, *pgx.Batch) pgx.BatchResults { return nil }
func (fakeTx) Begin(context.Context) (pgx.Tx, error)                  { return nil, nil }
func (fakeTx) Commit(context.Context) error                           { return nil }
func (fakeTx) Rollback(context.Context) error                         { return nil }
func (fakeTx) Conn() *pgx.Conn                                        { return nil }

func TestOwnSQLNewPGXRefusesATx(t *testing.T) {
	refused := func(t *testing.T, db *DB) {
		ctx := context.Background()
		_, err := NewRepository[*order, orderID](db, orderMapping(t))
		require.ErrorIs(t, err, errTxAsConn)
		assert.ErrorContains(t, err, "a pgx.Tx")
		assert.ErrorContains(t, err, "pass its pool")
		_, err = NewStore[*order, orderID](db, orderMapping(t)).Select(ctx, 1)
		assert.ErrorIs(t, err, errTxAsConn)
		assert.ErrorIs(t, db.InTx(ctx, func(context.Context) error { return nil }), errTxAsConn)
		_, err = db.Exec(ctx, "SELECT 1")
		assert.ErrorIs(t, err, errTxAsConn)
	}
	t.Run("fake", func(t *testing.T) { refused(t, NewPGX(fakeTx{})) })
	t.Run("postgres", func(t *testing.T) {
		dsn, _ := pgSchema(t)
		pool, err := pgxpool.New(context.Background(), dsn)
		require.NoError(t, err)
		defer pool.Close()
		tx, err := pool.Begin(context.Background())
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(context.Background()) }()
		refused(t, NewPGX(tx))
		_, ok := any(pool).(pgxTxLike)
		assert.False(t, ok, "a pool is not a transaction")
	})
}

// TestOwnSQLQueryPanic: a panic of the callback of Query closes the rows
// and gives the connection back, so that the DB goes on working.
func TestOwnSQLQueryPanic(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		q := "SELECT id FROM order_items WHERE order_id = ?"
		for range 12 { // more than a pool's connections
			func() {
				defer func() { assert.NotNil(t, recover()) }()
				_ = b.db.Query(ctx, q, 1).Each(func(func(dest ...any) error) error { panic("callback") })
			}()
		}
		var n int
		require.NoError(t, b.db.Query(ctx, q, 1).Each(func(scan func(dest ...any) error) error {
			n++
			var id int64
			return scan(&id)
		}))
		assert.Equal(t, 3, n, "the DB still works: no connection was leaked")
	})
}
