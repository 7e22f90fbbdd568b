package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

func threeItems() []*item {
	return []*item{{id: 1, sku: "A", quantity: 1}, {id: 2, sku: "B", quantity: 2}, {id: 3, sku: "C", quantity: 3}}
}

// seed inserts order 1 with three items through a repository of its own.
func seed(t *testing.T, b *backend) *order {
	t.Helper()
	o := newOrder(1, "alice", threeItems()...)
	require.NoError(t, b.repo(t).Save(context.Background(), o))
	b.log.take()
	return o
}

func TestRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := b.repo(t)
		o := newOrder(1, "alice", threeItems()...)
		o.note, o.cache = "not stored", map[string]string{"k": "v"}
		require.NoError(t, repo.Save(ctx, o))
		assert.Equal(t, []string{
			`INSERT INTO "orders" ("id", "customer", "total_amount", "total_currency", "version") VALUES (?, ?, ?, ?, ?)`,
			`INSERT INTO "order_items" ("order_id", "id", "sku", "quantity") VALUES (?, ?, ?, ?), (?, ?, ?, ?), (?, ?, ?, ?)`,
		}, dml(b.log.take()), "the root, then the three children in one multi-row INSERT")

		got := b.load(t, 1)
		assert.Equal(t, stored(o), got)

		found, err := b.repo(t).Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, stored(o), found)

		_, err = repo.Find(ctx, 99)
		assert.ErrorIs(t, err, repository.ErrNotFound)

		empty := newOrder(2, "bob")
		b.log.take()
		require.NoError(t, repo.Save(ctx, empty))
		assert.Equal(t, []string{`INSERT INTO "orders" ("id", "customer", "total_amount", "total_currency", "version") VALUES (?, ?, ?, ?, ?)`},
			dml(b.log.take()), "no children: no child INSERT")
		assert.Equal(t, stored(empty), b.load(t, 2))
	})
}

func TestOnlyChangedColumns(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		o, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		b.log.take()

		require.NoError(t, repo.Save(ctx, o))
		assert.Empty(t, b.log.take(), "an unchanged aggregate costs no statement")

		o.setQuantity(2, 5)
		require.NoError(t, repo.Save(ctx, o))
		got := dml(b.log.take())
		require.Len(t, got, 2, "%q", got)
		assert.True(t, containsAll(got[0], `UPDATE "orders" SET "total_amount" = ?, "version" = ? WHERE "id" = ? AND "version" = ?`), got[0])
		assert.NotContains(t, got[0], "customer")
		assert.Equal(t, b.checked(`UPDATE "order_items" SET "quantity" = ? WHERE "order_id" = ? AND "id" = ?`), got[1], "a child UPDATE is checked: it must find its row")
		assert.EqualValues(t, 1, o.version)

		want := stored(o)
		assert.Equal(t, want, b.load(t, 1))

		// A change of a child alone bumps the version too.
		o.item(1).sku = "Z"
		require.NoError(t, repo.Save(ctx, o))
		got = dml(b.log.take())
		require.Len(t, got, 2, "%q", got)
		assert.True(t, containsAll(got[0], `UPDATE "orders" SET "version" = ? WHERE "id" = ? AND "version" = ?`), got[0])
		assert.Equal(t, b.checked(`UPDATE "order_items" SET "sku" = ? WHERE "order_id" = ? AND "id" = ?`), got[1])
		assert.Equal(t, stored(o), b.load(t, 1))
		assert.EqualValues(t, 2, b.load(t, 1).version)
	})
}

func TestDeleteBeforeInsert(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		o, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		b.log.take()

		// Item 4 takes sku A, which item 1 holds: UNIQUE (order_id, sku)
		// holds only if item 1 is deleted first. Item 2 takes C from item 3.
		o.remove(1)
		o.remove(3)
		o.item(2).sku = "C"
		o.add(&item{id: 4, sku: "A", quantity: 4})
		require.NoError(t, repo.Save(ctx, o))
		got := dml(b.log.take())
		require.Len(t, got, 4, "%q", got)
		assert.Contains(t, got[1], `DELETE FROM "order_items" WHERE "order_id" = ? AND "id" `)
		assert.Equal(t, b.checked(`UPDATE "order_items" SET "sku" = ? WHERE "order_id" = ? AND "id" = ?`), got[2])
		assert.Equal(t, `INSERT INTO "order_items" ("order_id", "id", "sku", "quantity") VALUES (?, ?, ?, ?)`, got[3])
		assert.Equal(t, stored(o), b.load(t, 1))

		// Removing every child.
		o.remove(2)
		o.remove(4)
		require.NoError(t, repo.Save(ctx, o))
		assert.Equal(t, stored(o), b.load(t, 1))
		assert.Empty(t, b.load(t, 1).items)
	})
}

func TestConflict(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		first, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		second, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		require.NotSame(t, first, second, "outside a unit of work each Find loads a copy of its own")

		first.setQuantity(1, 7)
		require.NoError(t, repo.Save(ctx, first))

		second.customer = "bob"
		second.setQuantity(3, 9)
		b.log.take()
		err = repo.Save(ctx, second)
		require.ErrorIs(t, err, repository.ErrConflict)
		assert.Contains(t, err.Error(), "sqlstore: update orders: key 1, version 0")
		assert.EqualValues(t, 0, second.version, "the version is restored after a failed save")
		assert.Equal(t, stored(first), b.load(t, 1), "the database holds the first save, nothing of the second")

		err = repo.Remove(ctx, second)
		require.ErrorIs(t, err, repository.ErrConflict, "removing a stale copy conflicts too")
		assert.Equal(t, stored(first), b.load(t, 1))

		// In a unit of work: the conflicting save fails alone, the
		// transaction goes on and commits the rest.
		err = b.db.InTx(ctx, func(ctx context.Context) error {
			if err := repo.Save(ctx, newOrder(2, "bob")); err != nil {
				return err
			}
			second.customer = "alice"
			second.setQuantity(3, 8)
			if err := repo.Save(ctx, second); !errors.Is(err, repository.ErrConflict) {
				return fmt.Errorf("want a conflict, got %v", err)
			}
			return nil
		})
		require.NoError(t, err)
		assert.True(t, b.exists(t, 2))
		assert.Equal(t, stored(first), b.load(t, 1))

		require.NoError(t, repo.Remove(ctx, first))
		assert.False(t, b.exists(t, 1))
		assert.Zero(t, b.raw.count(t, "SELECT count(*) FROM order_items"))
		_, err = repo.Find(ctx, 1)
		assert.ErrorIs(t, err, repository.ErrNotFound)
	})
}

func TestInTxRollbackThenRetry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		o, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		before := stored(o)

		o.setQuantity(1, 9)
		o.remove(2)
		o.add(&item{id: 4, sku: "D", quantity: 1})
		b.log.take()
		boom := errors.New("boom")
		err = b.db.InTx(ctx, func(ctx context.Context) error {
			require.NoError(t, repo.Save(ctx, o))
			return boom
		})
		require.ErrorIs(t, err, boom)
		first := b.log.take()
		assert.Equal(t, 1, count(first, sqlRollback))
		assert.Equal(t, before, b.load(t, 1), "rolled back")
		assert.EqualValues(t, 0, o.version, "the version is restored by the rollback of the scope")

		err = b.db.InTx(ctx, func(ctx context.Context) error { return repo.Save(ctx, o) })
		require.NoError(t, err)
		second := b.log.take()
		assert.Equal(t, dml(first), dml(second), "the retry sends the same changes again")
		assert.Equal(t, argsOf(first), argsOf(second))
		assert.Equal(t, stored(o), b.load(t, 1))
		assert.EqualValues(t, 1, o.version)

		require.NoError(t, repo.Save(ctx, o))
		assert.Empty(t, b.log.take(), "the snapshot advanced after the commit")
	})
}

func argsOf(stmts []Statement) [][]any {
	var out [][]any
	for _, s := range stmts {
		if !control[s.SQL] {
			out = append(out, s.Args)
		}
	}
	return out
}

func TestFailingStatementLeavesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		o, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		before := stored(o)

		// The root UPDATE and the child UPDATE succeed, then the INSERT
		// violates CHECK (quantity > 0).
		o.customer = "bob"
		o.setQuantity(2, 5)
		o.add(&item{id: 4, sku: "D", quantity: -1})
		err = repo.Save(ctx, o)
		require.Error(t, err)
		assert.NotErrorIs(t, err, repository.ErrConflict)
		assert.Contains(t, err.Error(), "sqlstore: update orders: ")
		assert.Equal(t, before, b.load(t, 1), "nothing of the failed save persists")
		assert.EqualValues(t, 0, o.version)
		changes, err := repo.Tracker().Changes(ctx, o)
		require.NoError(t, err, "still tracked")
		assert.True(t, changes.Changed(), "against the same snapshot as before")

		o.item(4).quantity = 1
		o.recompute()
		require.NoError(t, repo.Save(ctx, o))
		assert.Equal(t, stored(o), b.load(t, 1))
		assert.EqualValues(t, 1, b.load(t, 1).version)
	})
}

func TestFailingStatementInTx(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		var kept *order
		err := b.db.InTx(ctx, func(ctx context.Context) error {
			o, err := repo.Find(ctx, 1)
			if err != nil {
				return err
			}
			other := newOrder(2, "bob", &item{id: 1, sku: "X", quantity: 1})
			if err := repo.Save(ctx, other); err != nil {
				return err
			}
			o.customer = "bob"
			o.add(&item{id: 4, sku: "D", quantity: -1})
			if err := repo.Save(ctx, o); err == nil {
				return errors.New("the failing save succeeded")
			}
			// The transaction is still usable: the failed save was rolled
			// back to its savepoint, the earlier insert was not.
			o.item(4).quantity = 2
			o.recompute()
			kept = o
			return repo.Save(ctx, o)
		})
		require.NoError(t, err)
		assert.Equal(t, stored(kept), b.load(t, 1))
		assert.EqualValues(t, 1, b.load(t, 1).version)
		assert.True(t, b.exists(t, 2))
		stmts := b.log.take()
		assert.Equal(t, 1, count(stmts, sqlRollbackTo), "%q", sqls(stmts))
		assert.Equal(t, 1, count(stmts, sqlCommit))
	})
}

func TestNestedInTx(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := b.repo(t)
		err := b.db.InTx(ctx, func(ctx context.Context) error {
			if err := repo.Save(ctx, newOrder(10, "alice")); err != nil {
				return err
			}
			return b.db.InTx(ctx, func(ctx context.Context) error {
				return repo.Save(ctx, newOrder(11, "bob"))
			})
		})
		require.NoError(t, err)
		stmts := b.log.take()
		assert.Equal(t, 1, count(stmts, sqlBegin)+count(stmts, sqlBeginImmediate)+count(stmts, sqlStartTransaction), "the inner call joins: %q", sqls(stmts))
		assert.Equal(t, 1, count(stmts, sqlCommit))
		assert.True(t, b.exists(t, 10))
		assert.True(t, b.exists(t, 11))

		boom := errors.New("boom")
		err = b.db.InTx(ctx, func(ctx context.Context) error {
			if err := repo.Save(ctx, newOrder(12, "alice")); err != nil {
				return err
			}
			if err := b.db.InTx(ctx, func(ctx context.Context) error {
				return repo.Save(ctx, newOrder(13, "bob"))
			}); err != nil {
				return err
			}
			return boom
		})
		require.ErrorIs(t, err, boom)
		assert.False(t, b.exists(t, 12), "the outer rollback undoes the inner call too")
		assert.False(t, b.exists(t, 13))

		err = b.db.InTx(ctx, func(ctx context.Context) error { return nil })
		require.NoError(t, err)
		b.log.take()
		assert.Empty(t, b.log.take(), "a unit of work that sends nothing costs nothing")
	})
}

func TestPanicInTx(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := b.repo(t)
		o := newOrder(20, "alice", &item{id: 1, sku: "A", quantity: 1})
		assert.PanicsWithValue(t, "kaboom", func() {
			_ = b.db.InTx(ctx, func(ctx context.Context) error {
				require.NoError(t, repo.Save(ctx, o))
				panic("kaboom")
			})
		})
		stmts := b.log.take()
		assert.Equal(t, 1, count(stmts, sqlRollback), "%q", sqls(stmts))
		assert.False(t, b.exists(t, 20), "rolled back")

		// The connection went back to its pool, and o is not tracked: the
		// scope rolled back, so saving it inserts it.
		require.NoError(t, repo.Save(ctx, o))
		assert.Equal(t, stored(o), b.load(t, 20))
	})
}

func TestCommitError(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		if b.mysql() {
			t.Skip("MariaDB checks foreign keys at each statement: no COMMIT it can refuse")
		}
		ctx := context.Background()
		repo := b.repo(t)
		// orders.customer references customers with a DEFERRED foreign
		// key: the INSERT succeeds and the COMMIT fails.
		o := newOrder(30, "nobody", &item{id: 1, sku: "A", quantity: 1})
		err := b.db.InTx(ctx, func(ctx context.Context) error { return repo.Save(ctx, o) })
		require.Error(t, err)
		assert.Contains(t, err.Error(), "sqlstore: commit: ")
		stmts := b.log.take()
		require.NotEmpty(t, stmts)
		last := stmts[len(stmts)-1]
		assert.Equal(t, sqlCommit, last.SQL)
		assert.Error(t, last.Err, "the observer sees the failed commit")
		assert.False(t, b.exists(t, 30))

		o.customer = "alice"
		require.NoError(t, repo.Save(ctx, o), "the scope rolled back: o is inserted again")
		assert.Equal(t, stored(o), b.load(t, 30))
	})
}

func TestRemove(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		o, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		b.log.take()
		require.NoError(t, repo.Remove(ctx, o))
		got := dml(b.log.take())
		if b.db.dialect.lockBeforeDelete {
			require.Len(t, got, 3, "%q", got)
			assert.Contains(t, got[0], `SELECT 1 FROM "orders" WHERE "id" = ? AND "version" = ? FOR UPDATE`)
		} else {
			require.Len(t, got, 2, "%q", got)
		}
		assert.False(t, b.exists(t, 1))
		assert.Zero(t, b.raw.count(t, "SELECT count(*) FROM order_items"))

		err = repo.Remove(ctx, o)
		assert.ErrorIs(t, err, repository.ErrConflict, "it is gone")
	})
}

// TestRoundTrips checks that on pgx and on MariaDB, outside a
// transaction, each operation is one round trip, and that in a
// transaction BEGIN rides along with the first batch.
func TestRoundTrips(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		if !b.pgx && !b.mysql() {
			t.Skip("database/sql sends one statement per round trip")
		}
		ctx := context.Background()
		repo := b.repo(t)
		o := newOrder(1, "alice", threeItems()...)
		require.NoError(t, repo.Save(ctx, o))
		assert.Equal(t, 1, trips(b.log.take()), "insert")

		o, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, 1, trips(b.log.take()), "find")

		o.setQuantity(1, 4)
		o.remove(2)
		o.add(&item{id: 4, sku: "B", quantity: 1})
		require.NoError(t, repo.Save(ctx, o))
		stmts := b.log.take()
		assert.Equal(t, 1, trips(stmts), "save")
		assert.Len(t, dml(stmts), 4)

		err = repo.Update(ctx, 1, func(_ context.Context, o *order) error {
			o.setQuantity(1, 5)
			return nil
		})
		require.NoError(t, err)
		stmts = b.log.take()
		assert.Equal(t, 2, trips(stmts), "BEGIN with the find, the save with COMMIT: %q", sqls(stmts))
		begin := []string{sqlBegin}
		if b.mysql() {
			begin = []string{sqlSetIsolation + "READ COMMITTED", sqlStartTransaction}
		}
		assert.Equal(t, append(begin, sqlCommit), controlsOf(stmts), "the last save of Update needs no savepoint")

		o, err = repo.Find(ctx, 1) // Update saved a copy of its own: o is stale
		require.NoError(t, err)
		b.log.take()
		require.NoError(t, repo.Remove(ctx, o))
		assert.Equal(t, 1, trips(b.log.take()), "remove")
	})
}

func controlsOf(stmts []Statement) []string {
	var out []string
	for _, s := range stmts {
		if control[s.SQL] {
			out = append(out, s.SQL)
		}
	}
	return out
}

// TestConcurrentSaves races loads and saves of one aggregate: every save
// either persists or fails with ErrConflict, never both and never a
// deadlock, and the version counts the saves that persisted.
func TestConcurrentSaves(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		seed(t, b)
		repo := b.repo(t)
		const workers, rounds = 4, 5
		var mu sync.Mutex
		saved, conflicts, missed := 0, 0, 0
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					o, err := repo.Find(ctx, 1)
					if errors.Is(err, repository.ErrNotFound) {
						mu.Lock()
						missed++ // between a Remove and its insert
						mu.Unlock()
						continue
					}
					if !assert.NoError(t, err) {
						return
					}
					o.setQuantity(o.items[(w+r)%len(o.items)].id, 1+w+r)
					if r%2 == 0 {
						o.remove(2)
						if o.item(5) == nil {
							o.add(&item{id: 5, sku: "B", quantity: 1})
						}
					}
					err = repo.Save(ctx, o)
					if r == rounds-1 && err == nil {
						err = repo.Remove(ctx, o)
						if err == nil {
							err = repo.Save(ctx, o) // insert it again
						}
					}
					mu.Lock()
					switch {
					case err == nil:
						saved++
					case errors.Is(err, repository.ErrConflict):
						conflicts++
					default:
						t.Errorf("worker %d round %d: %v", w, r, err)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, workers*rounds, saved+conflicts+missed)
		assert.Positive(t, saved)
		t.Logf("%d saved, %d conflicts, %d not found", saved, conflicts, missed)
	})
}
