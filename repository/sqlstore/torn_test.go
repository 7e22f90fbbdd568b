package sqlstore

import (
	"context"
	"fmt"
	"sync"
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
// ErrDuplicateID.
func TestUpdateSeesOneCommit(t *testing.T) {
	const workers, each = 8, 25
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		tallyTables(t, b, true)
		m, err := NewMapping[*tally](Table{Name: "tallies"}, tallyChild)
		require.NoError(t, err)
		repo, err := NewRepository[*tally, int64](b.quiet, m, repository.WithRetry(tallyRetry))
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
		t.Logf("%s: %d Updates by %d goroutines in %v", b.name, workers*each, workers, time.Since(start).Round(time.Millisecond))
		assert.Empty(t, errs, "every Update succeeds")
		assert.Empty(t, tears, "no Update sees a torn aggregate")
		got, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, int64(workers*each), got.n)
		assert.Len(t, got.marks, workers*each)
		assert.Empty(t, torn(got.n, got.marks))
		assert.Equal(t, int64(workers*each), b.raw.count(t, "SELECT count(*) FROM tally_marks"))
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
		assert.Len(t, got.marks, workers*each)
		assert.Empty(t, torn(got.n, got.marks))
	})
}
