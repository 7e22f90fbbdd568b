package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// tally is an aggregate with an invariant across its tables: n is the
// number of its marks, which are numbered 1 ... n.
type tally struct {
	id      int64 `db:"id"`
	n       int64 `db:"n"`
	marks   []*mark
	version int64 `db:"version" ddd:"version"`
}

func (c *tally) ID() int64 { return c.id }

// plainTally is tally without a version: Update locks it as it loads it.
type plainTally struct {
	id    int64 `db:"id"`
	n     int64 `db:"n"`
	marks []*mark
}

func (c *plainTally) ID() int64 { return c.id }

type mark struct {
	id int64 `db:"id" ddd:"id"`
}

// torn describes how n and marks disagree, or is "".
func torn(n int64, marks []*mark) string {
	if int64(len(marks)) != n {
		return fmt.Sprintf("n = %d with %d marks", n, len(marks))
	}
	for i, m := range marks {
		if m.id != int64(i+1) {
			return fmt.Sprintf("mark %d has id %d", i+1, m.id)
		}
	}
	return ""
}

func tallyTables(t *testing.T, b *backend, versioned bool) {
	t.Helper()
	ver := ""
	if versioned {
		ver = ", version BIGINT NOT NULL"
	}
	b.raw.exec(t, `CREATE TABLE tallies (id BIGINT PRIMARY KEY, n BIGINT NOT NULL`+ver+`)`)
	b.raw.exec(t, `CREATE TABLE tally_marks (
		tally_id BIGINT NOT NULL REFERENCES tallies (id),
		id BIGINT NOT NULL,
		PRIMARY KEY (tally_id, id))`)
}

var tallyChild = Child{Field: "marks", Table: "tally_marks", ParentKey: "tally_id"}

// contend runs workers goroutines, each making each Updates through
// update, and returns the errors of the Updates (at most a few) and the
// tears their functions saw.
func contend(workers, each int, update func(check func(n int64, marks []*mark) error) error) (errs []error, tears []string) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				err := update(func(n int64, marks []*mark) error {
					if s := torn(n, marks); s != "" {
						mu.Lock()
						tears = append(tears, s)
						mu.Unlock()
					}
					return nil
				})
				if err != nil {
					mu.Lock()
					if len(errs) < 5 {
						errs = append(errs, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errs, tears
}

var tallyRetry = repository.RetryPolicy{Attempts: 1000, Backoff: 100 * time.Microsecond, MaxBackoff: 10 * time.Millisecond}

// TestUpdateSeesOneCommit: concurrent Updates of one aggregate each see it
// as it stood at one commit, root and children alike, and none of them
// fails: on PostgreSQL the statements of a load in a READ COMMITTED
// transaction each read the database as of their own start, and a load
// that paired a root with the children of a later commit handed the
// function a state that never existed, whose save then failed with
// ErrDuplicateID. The same at REPEATABLE READ (WithTxOptions), where the
// load reads one snapshot and a concurrent save is a conflict, retried.
func TestUpdateSeesOneCommit(t *testing.T) {
	const workers, each = 8, 25
	forEachBackend(t, func(t *testing.T, b *backend) {
		for _, level := range []sql.IsolationLevel{sql.LevelDefault, sql.LevelRepeatableRead} {
			t.Run(level.String(), func(t *testing.T) {
				ctx := WithTxOptions(context.Background(), TxOptions{Isolation: level})
				tallyTables(t, b, true)
				t.Cleanup(func() { b.raw.exec(t, `DROP TABLE tally_marks`); b.raw.exec(t, `DROP TABLE tallies`) })
				m, err := NewMapping[*tally](Table{Name: "tallies"}, tallyChild)
				require.NoError(t, err)
				var retries atomic.Int64
				policy := tallyRetry
				policy.OnRetry = func(context.Context, int, error) { retries.Add(1) }
				repo, err := NewRepository[*tally, int64](b.quiet, m, repository.WithRetry(policy))
				require.NoError(t, err)
				require.NoError(t, repo.Save(ctx, &tally{id: 1}))

				start := time.Now()
				errs, tears := contend(workers, each, func(check func(int64, []*mark) error) error {
					return repo.Update(ctx, 1, func(_ context.Context, c *tally) error {
						if err := check(c.n, c.marks); err != nil {
							return err
						}
						c.n++
						c.marks = append(c.marks, &mark{id: c.n})
						return nil
					})
				})
				t.Logf("%s at %v: %d Updates by %d goroutines in %v, %d conflicts retried",
					b.name, level, workers*each, workers, time.Since(start).Round(time.Millisecond), retries.Load())
				assert.Empty(t, errs, "every Update succeeds")
				assert.Empty(t, tears, "no Update sees a torn aggregate")
				got, err := repo.Find(ctx, 1)
				require.NoError(t, err)
				assert.Equal(t, int64(workers*each), got.n)
				assert.Equal(t, workers*each, len(got.marks))
				assert.Empty(t, torn(got.n, got.marks))
				assert.Equal(t, int64(workers*each), b.raw.count(t, "SELECT count(*) FROM tally_marks"))
			})
		}
	})
}

// TestUpdateWithTxOptions: an Update whose context carries TxOptions runs
// its transaction with them, and keeps the COMMIT in its save's batch: two
// round trips on pgx. At REPEATABLE READ the load locks nothing.
func TestUpdateWithTxOptions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := b.repo(t)
		require.NoError(t, repo.Save(ctx, newOrder(1, "alice", &item{id: 1, sku: "A", quantity: 1})))
		b.log.take()

		rr := WithTxOptions(ctx, TxOptions{Isolation: sql.LevelRepeatableRead})
		require.NoError(t, repo.Update(rr, 1, func(_ context.Context, o *order) error {
			o.setQuantity(1, 2)
			return nil
		}))
		stmts := b.log.take()
		all := sqls(stmts)
		switch {
		case b.sqlite():
			assert.Equal(t, sqlBeginImmediate, all[0])
		case b.postgres():
			assert.Equal(t, "BEGIN ISOLATION LEVEL REPEATABLE READ", all[0])
		}
		if !b.sqlite() {
			for _, q := range all {
				assert.False(t, b.locks(q), "one snapshot: nothing to lock: %s", q)
			}
		}
		assert.Equal(t, sqlCommit, all[len(all)-1])
		if b.pgx {
			assert.Equal(t, 2, trips(stmts), "the load with the BEGIN, the save with the COMMIT: %q", all)
		}
		assert.Equal(t, 2, b.load(t, 1).items[0].quantity)

		// The default level, where each statement reads a snapshot of its
		// own, locks the root as the load reads it.
		require.NoError(t, repo.Update(ctx, 1, func(_ context.Context, o *order) error {
			o.setQuantity(1, 3)
			return nil
		}))
		stmts = b.log.take()
		if b.db.dialect.stmtSnapshot {
			assert.Contains(t, dml(stmts)[0], `FROM "orders" WHERE "id" = ?`+b.db.dialect.writeSuffix)
			assert.True(t, b.locks(dml(stmts)[0]))
		}
		if b.pgx {
			assert.Equal(t, 2, trips(stmts), "%q", sqls(stmts))
		}

		// Options the database cannot honour are refused before the
		// function runs; a unit of work that asks for more than the
		// transaction it would join gives is refused too.
		bad := WithTxOptions(ctx, TxOptions{Isolation: sql.LevelLinearizable})
		err := repo.Update(bad, 1, func(context.Context, *order) error {
			t.Error("ran with options the database cannot honour")
			return nil
		})
		require.Error(t, err)
		if !b.sqlite() {
			err = b.db.InTx(ctx, func(ctx context.Context) error {
				return repo.Update(WithTxOptions(ctx, TxOptions{Isolation: sql.LevelSerializable}), 1, func(context.Context, *order) error {
					t.Error("joined a READ COMMITTED transaction")
					return nil
				})
			})
			assert.ErrorContains(t, err, "cannot join")
		}
	})
}

// TestUnversionedUpdateSeesOneCommit is TestUpdateSeesOneCommit for an
// aggregate without a version, which Update locks as it loads it.
func TestUnversionedUpdateSeesOneCommit(t *testing.T) {
	const workers, each = 8, 25
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		tallyTables(t, b, false)
		m, err := NewMapping[*plainTally](Table{Name: "tallies"}, tallyChild)
		require.NoError(t, err)
		repo, err := NewRepository[*plainTally, int64](b.quiet, m, repository.WithRetry(tallyRetry))
		require.NoError(t, err)
		require.NoError(t, repo.Save(ctx, &plainTally{id: 1}))

		errs, tears := contend(workers, each, func(check func(int64, []*mark) error) error {
			return repo.Update(ctx, 1, func(_ context.Context, c *plainTally) error {
				if err := check(c.n, c.marks); err != nil {
					return err
				}
				c.n++
				c.marks = append(c.marks, &mark{id: c.n})
				return nil
			})
		})
		assert.Empty(t, errs, "every Update succeeds")
		assert.Empty(t, tears, "no Update sees a torn aggregate")
		got, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, int64(workers*each), got.n)
		assert.Equal(t, workers*each, len(got.marks))
		assert.Empty(t, torn(got.n, got.marks))
	})
}

// side is a connection of its own to the database under test, for a
// transaction that runs while a unit of work of the test is between two
// statements.
type side struct {
	pid   int64 // the server's id of the connection
	exec  func(ctx context.Context, q string, args ...any) error
	close func()
}

func newSide(t *testing.T, b *backend) *side {
	t.Helper()
	ctx := context.Background()
	switch r := b.raw.(type) {
	case pgxRaw:
		c, err := r.p.Acquire(ctx)
		require.NoError(t, err)
		return &side{
			pid: int64(c.Conn().PgConn().PID()),
			exec: func(ctx context.Context, q string, args ...any) error {
				_, err := c.Exec(ctx, q, args...)
				return err
			},
			close: c.Release,
		}
	case sqlRaw:
		c, err := r.x.Conn(ctx)
		require.NoError(t, err)
		s := &side{
			exec: func(ctx context.Context, q string, args ...any) error {
				_, err := c.ExecContext(ctx, q, args...)
				return err
			},
			close: func() { _ = c.Close() },
		}
		pid := "SELECT pg_backend_pid()"
		if b.mysql() {
			pid = "SELECT CONNECTION_ID()"
		}
		require.NoError(t, c.QueryRowContext(ctx, pid).Scan(&s.pid))
		return s
	}
	t.Fatalf("no side connection for %T", b.raw)
	return nil
}

// interleave returns a DB on b's database whose observer, after the first
// statement that match reports, runs stmts in a transaction of their own
// on another connection, and returns once that transaction committed or
// waits for a lock: the order of the two transactions is forced by their
// locks, not by time. wait waits for the other transaction to end and
// returns its error.
func interleave(t *testing.T, b *backend, match func(sql string) bool, stmts ...string) (db *DB, wait func() error) {
	t.Helper()
	sd := newSide(t, b)
	t.Cleanup(sd.close)
	done := make(chan error, 1)
	var fired bool
	observe := func(_ context.Context, s Statement) {
		if fired || s.Err != nil || !match(s.SQL) {
			return
		}
		fired = true
		go func() {
			ctx := context.Background()
			err := sd.exec(ctx, "BEGIN")
			for _, q := range stmts {
				if err == nil {
					err = sd.exec(ctx, q)
				}
			}
			if err == nil {
				err = sd.exec(ctx, "COMMIT")
			} else {
				_ = sd.exec(ctx, "ROLLBACK")
			}
			done <- err
		}()
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			select {
			case err := <-done:
				done <- err
				return // committed (or failed) without waiting
			default:
			}
			if b.waitsForLock(t, sd.pid) {
				return // waits for a lock the unit of work holds
			}
			time.Sleep(time.Millisecond) // polling a condition, not a delay
		}
		t.Error("the other transaction neither ended nor waited for a lock")
	}
	switch r := b.raw.(type) {
	case pgxRaw:
		db = NewPGX(r.p, WithObserver(observe))
	case sqlRaw:
		var err error
		db, err = NewSQL(r.x, WithObserver(observe))
		require.NoError(t, err)
	}
	return db, func() error {
		if !fired {
			return fmt.Errorf("the other transaction never ran")
		}
		return <-done
	}
}

// waitsForLock reports whether the connection of id pid waits for a lock.
// On MariaDB it reads SHOW ENGINE INNODB STATUS: information_schema's
// innodb_trx is a cache that InnoDB refreshes only once no session has
// read it for 100 ms, which polling, by any session on the server,
// prevents.
func (b *backend) waitsForLock(t *testing.T, pid int64) bool {
	if b.mysql() {
		var typ, name, status string
		require.NoError(t, b.raw.(sqlRaw).x.QueryRow("SHOW ENGINE INNODB STATUS").Scan(&typ, &name, &status))
		for _, trx := range strings.Split(status, "---TRANSACTION ") {
			if strings.Contains(trx, "\nLOCK WAIT ") && strings.Contains(trx, fmt.Sprintf(" thread id %d,", pid)) {
				return true
			}
		}
		return false
	}
	return b.raw.count(t, "SELECT count(*) FROM pg_stat_activity WHERE pid = ? AND wait_event_type = 'Lock'", pid) > 0
}

func seedThree(t *testing.T, b *backend) {
	t.Helper()
	repo := b.repo(t)
	for id := orderID(1); id <= 3; id++ {
		require.NoError(t, repo.Save(context.Background(), newOrder(id, "alice",
			&item{id: 1, sku: "A", quantity: 1}, &item{id: 2, sku: "B", quantity: 1}, &item{id: 3, sku: "C", quantity: 1})))
	}
}

// TestFindAllInTxKeepsChildrenOfDeletedRoot: in a unit of work on
// PostgreSQL, an order deleted by another transaction between the roots'
// SELECT and the children's came back without its lines. The roots are
// now locked as they are read: the delete waits for the unit of work, and
// every order comes with its lines.
func TestFindAllInTxKeepsChildrenOfDeletedRoot(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		if b.sqlite() {
			t.Skip("a unit of work on SQLite holds the database's write lock from its BEGIN: no other transaction deletes while it reads")
		}
		ctx := context.Background()
		seedThree(t, b)
		db, wait := interleave(t, b, func(q string) bool { return strings.HasPrefix(canonical(q), `SELECT "id", "customer"`) },
			`DELETE FROM order_items WHERE order_id = 2`,
			`DELETE FROM orders WHERE id = 2`)
		repo, err := NewRepository[*order, orderID](db, orderMapping(t))
		require.NoError(t, err)

		var got []*order
		require.NoError(t, db.InTx(ctx, func(ctx context.Context) error {
			got, err = repo.FindAll(ctx, Query{}.OrderBy("id"))
			return err
		}))
		require.NoError(t, wait(), "the delete commits after the unit of work")
		require.Len(t, got, 3)
		for _, o := range got {
			assert.Len(t, o.items, 3, "order %d comes with its lines", o.id)
		}
		assert.False(t, b.exists(t, 2))
		assert.Zero(t, b.raw.count(t, "SELECT count(*) FROM order_items WHERE order_id = 2"))
	})
}

// TestFindInTxSeesOneCommit: in a unit of work on PostgreSQL through
// database/sql, where the statements of a load are round trips of their
// own, a save committed by another transaction between the root's SELECT
// and the children's paired the old root with the new lines. The root is
// now locked as it is read: the save waits for the unit of work.
func TestFindInTxSeesOneCommit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		switch {
		case b.sqlite():
			t.Skip("a unit of work on SQLite holds the database's write lock from its BEGIN: no other transaction saves while it reads")
		case b.pgx:
			t.Skip("on pgx a load is one batch, which no other transaction can be run in the middle of; TestUpdateSeesOneCommit covers it")
		}
		ctx := context.Background()
		seedThree(t, b)
		v0 := b.raw.count(t, "SELECT version FROM orders WHERE id = 1")
		db, wait := interleave(t, b, func(q string) bool { return strings.HasPrefix(canonical(q), `SELECT "id", "customer"`) },
			`UPDATE orders SET version = version + 1, total_amount = total_amount + 100 WHERE id = 1`,
			`INSERT INTO order_items (order_id, id, sku, quantity) VALUES (1, 4, 'D', 1)`)
		repo, err := NewRepository[*order, orderID](db, orderMapping(t))
		require.NoError(t, err)

		var got *order
		require.NoError(t, db.InTx(ctx, func(ctx context.Context) error {
			got, err = repo.Find(ctx, 1)
			return err
		}))
		require.NoError(t, wait(), "the save commits after the unit of work")
		assert.Equal(t, v0, got.version)
		assert.Len(t, got.items, 3, "the lines of the version read")
		assert.Equal(t, int64(300), got.total.amount)
		assert.Equal(t, int64(4), b.raw.count(t, "SELECT count(*) FROM order_items WHERE order_id = 1"))
	})
}

// TestUnversionedChildSaveLocksRoot: a save that changes only children of
// an aggregate without a version writes no root row; it locks and checks
// the root all the same, so that a load that locked the root waits for it
// (or it for the load), and a removed aggregate is not given children:
// without a foreign key, they were stored as rows of no aggregate.
func TestUnversionedChildSaveLocksRoot(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		b.raw.exec(t, `CREATE TABLE tallies (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)`)
		b.raw.exec(t, `CREATE TABLE tally_marks (tally_id BIGINT NOT NULL, id BIGINT NOT NULL, PRIMARY KEY (tally_id, id))`)
		m, err := NewMapping[*plainTally](Table{Name: "tallies"}, tallyChild)
		require.NoError(t, err)
		repo, err := NewRepository[*plainTally, int64](b.db, m)
		require.NoError(t, err)
		require.NoError(t, repo.Save(ctx, &plainTally{id: 1}))
		c, err := repo.Find(ctx, 1)
		require.NoError(t, err)

		b.log.take()
		c.marks = append(c.marks, &mark{id: 1})
		require.NoError(t, repo.Save(ctx, c))
		if !b.sqlite() {
			assert.Contains(t, dml(b.log.take())[0], `SELECT 1 FROM "tallies" WHERE "id" = ?`+b.db.dialect.writeSuffix)
			assert.NotEmpty(t, b.db.dialect.writeSuffix, "the root is locked")
		}

		b.raw.exec(t, `DELETE FROM tallies WHERE id = 1`)
		c.marks = append(c.marks, &mark{id: 2})
		err = repo.Save(ctx, c)
		require.ErrorIs(t, err, repository.ErrConflict)
		assert.Equal(t, int64(1), b.raw.count(t, "SELECT count(*) FROM tally_marks"), "no mark of a removed tally is stored")
	})
}
