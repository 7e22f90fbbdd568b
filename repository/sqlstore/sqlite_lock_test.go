package sqlstore

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// TestSQLiteConcurrentUpdates runs 16 goroutines of 50 read-modify-write
// cycles each (repository Update: load, change and save in one DB.InTx) on
// 3 rows of a SQLite file opened with busy_timeout alone, the one pragma
// of the recommended DSN (see the package doc) that writers need to queue. A unit of work takes the write lock
// when it begins, so writers wait for each other under busy_timeout: each
// cycle succeeds or fails with ErrConflict, and no increment is lost.
func TestSQLiteConcurrentUpdates(t *testing.T) {
	dsn := "file:" + filepath.Join(t.TempDir(), "test.db") + "?_pragma=busy_timeout(5000)"
	x, err := sqlx.Open("sqlite", dsn)
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
	ctx := context.Background()
	const rows, workers, cycles = 3, 16, 50
	for id := range rows {
		require.NoError(t, repo.Save(ctx, newOrder(orderID(id+1), "alice", &item{id: 1, sku: "A", quantity: 1})))
	}

	var mu sync.Mutex
	saved := make([]int, rows)
	var conflicts, other []error
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for c := range cycles {
				row := (w + c) % rows
				err := repo.Update(ctx, orderID(row+1), func(_ context.Context, o *order) error {
					o.setQuantity(1, o.item(1).quantity+1)
					return nil
				})
				mu.Lock()
				switch {
				case err == nil:
					saved[row]++
				case errors.Is(err, repository.ErrConflict):
					conflicts = append(conflicts, err)
				default:
					other = append(other, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for i, err := range other {
		if i < 5 {
			t.Errorf("a cycle failed with neither success nor ErrConflict: %v", err)
		}
	}
	for i, err := range conflicts {
		if i < 3 {
			t.Logf("conflict: %v", err)
		}
	}
	total := 0
	for row := range rows {
		o := (&backend{quiet: db}).load(t, orderID(row+1))
		assert.Equal(t, 1+saved[row], o.item(1).quantity, "row %d: the increments stored are the successful ones", row+1)
		assert.EqualValues(t, saved[row], o.version, "row %d: one version per successful save", row+1)
		total += saved[row]
	}
	t.Logf("%d cycles in %v: %d saved, %d conflicts, %d other errors", workers*cycles, time.Since(start).Round(time.Millisecond), total, len(conflicts), len(other))
	assert.Equal(t, workers*cycles, total+len(conflicts)+len(other))
	// The writers queue for the write lock: with a busy_timeout of 5 s, far
	// longer than any of these transactions, a conflict is an exception.
	assert.LessOrEqual(t, len(conflicts), workers*cycles/20, "at most one cycle in 20 fails")
}
