package sqlstore

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

func TestInsertDuplicateChildIDs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		o := newOrder(1, "alice", &item{id: 1, sku: "A", quantity: 1}, &item{id: 1, sku: "B", quantity: 2})
		err := b.repo(t).Save(ctx, o)
		require.ErrorIs(t, err, repository.ErrDuplicateID, "refused before the database's duplicate key")
		assert.ErrorContains(t, err, "items[id=1]")
		assert.Empty(t, dml(b.log.take()), "nothing sent")
		assert.False(t, b.exists(t, 1))

		// A table without a unique key would store both rows; the check
		// does not depend on the schema.
		b.raw.exec(t, `CREATE TABLE loose_items (order_id BIGINT NOT NULL, id BIGINT NOT NULL, sku TEXT NOT NULL, quantity INTEGER NOT NULL)`)
		m, err := NewMapping[*order](Table{Name: "orders"}, Child{Field: "items", Table: "loose_items", ParentKey: "order_id"})
		require.NoError(t, err)
		loose, err := NewRepository[*order, orderID](b.db, m)
		require.NoError(t, err)
		require.ErrorIs(t, loose.Save(ctx, o), repository.ErrDuplicateID)
		assert.Zero(t, b.raw.count(t, "SELECT count(*) FROM loose_items"))
		assert.False(t, b.exists(t, 1))
	})
}

func TestInsertExistingKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		first := newOrder(1, "alice", &item{id: 1, sku: "A", quantity: 1})
		require.NoError(t, b.repo(t).Save(ctx, first))

		// Another writer, who never saw the first, inserts the same key.
		second := newOrder(1, "bob", &item{id: 7, sku: "Z", quantity: 9})
		err := b.repo(t).Save(ctx, second)
		require.ErrorIs(t, err, repository.ErrExists)
		assert.NotErrorIs(t, err, repository.ErrConflict)
		assert.Equal(t, stored(first), b.load(t, 1), "the first insert is intact, nothing of the second written")

		// A unique key that is not the root's is not ErrExists: another
		// order with an existing reference is a different problem.
		b.raw.exec(t, `CREATE UNIQUE INDEX orders_customer_once ON orders (customer)`)
		err = b.repo(t).Save(ctx, newOrder(3, "alice"))
		require.Error(t, err)
		assert.NotErrorIs(t, err, repository.ErrExists, "%v", err)
		drop := `DROP INDEX orders_customer_once`
		if b.mysql() {
			drop += ` ON orders` // MariaDB's indexes belong to their table
		}
		b.raw.exec(t, drop)

		// Inside a transaction the error is the same, and the transaction
		// stays usable (the save ran under a savepoint).
		repo := b.repo(t)
		err = b.db.InTx(ctx, func(ctx context.Context) error {
			err := repo.Save(ctx, newOrder(1, "bob"))
			require.ErrorIs(t, err, repository.ErrExists)
			return repo.Save(ctx, newOrder(2, "bob"))
		})
		require.NoError(t, err)
		assert.True(t, b.exists(t, 2))
	})
}

func TestSelectForUpdateOutsideTx(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		seed(t, b)
		s := NewStore[*order, orderID](b.db, orderMapping(t))
		_, err := s.SelectForUpdate(context.Background(), 1)
		assert.ErrorContains(t, err, "not in a transaction")
		err = b.db.InTx(context.Background(), func(ctx context.Context) error {
			o, err := s.SelectForUpdate(ctx, 1)
			if err == nil {
				assert.Len(t, o.items, 3)
			}
			return err
		})
		require.NoError(t, err)
		if b.pgx {
			assert.Contains(t, sqls(b.log.take()), `SELECT "id", "customer", "total_amount", "total_currency", "version" FROM "orders" WHERE "id" = $1 FOR UPDATE`)
		}
	})
}

// counter is an aggregate without a version field.
type counter struct {
	id int64 `db:"id"`
	n  int64 `db:"n"`
}

func (c *counter) ID() int64 { return c.id }

// TestUnversionedUpdatesLoseNothing runs concurrent increments of one
// aggregate that has no version: Update locks it when loading, so that no
// increment overwrites another.
func TestUnversionedUpdatesLoseNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		b.raw.exec(t, `CREATE TABLE counters (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)`)
		m, err := NewMapping[*counter](Table{Name: "counters"})
		require.NoError(t, err)
		repo, err := NewRepository[*counter, int64](b.quiet, m)
		require.NoError(t, err)
		require.NoError(t, repo.Save(ctx, &counter{id: 1}))

		const workers = 20
		var wg sync.WaitGroup
		var ok atomic.Int64
		for range workers {
			wg.Go(func() {
				err := repo.Update(ctx, 1, func(_ context.Context, c *counter) error {
					c.n++
					time.Sleep(2 * time.Millisecond) // let the others load meanwhile
					return nil
				})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, repository.ErrConflict):
				default:
					t.Errorf("update: %v", err)
				}
			})
		}
		wg.Wait()
		n := b.raw.count(t, "SELECT n FROM counters WHERE id = 1")
		assert.Equal(t, ok.Load(), n, "every successful increment is kept")
		assert.Equal(t, int64(workers), n, "the row lock (PostgreSQL) or BEGIN IMMEDIATE (SQLite) queues the writers: none fails")
	})
}

// hotIncrements is the concurrency suite's workload: workers goroutines
// each increment the quantity of item 1 of one of aggs orders, each times,
// through Update with a retry policy. It returns the conflicts seen (the
// retries) and the increments that failed for good.
func hotIncrements(ctx context.Context, db *DB, m *Mapping[*order], workers, each, aggs int, seed int) (retries, failed int64, errs []error) {
	var retried, lost atomic.Int64
	repo, err := NewRepository[*order, orderID](db, m)
	if err != nil {
		return 0, 0, []error{err}
	}
	policy := repository.RetryPolicy{
		Attempts:   1000,
		Backoff:    200 * time.Microsecond,
		MaxBackoff: 20 * time.Millisecond,
		OnRetry:    func(context.Context, int, error) { retried.Add(1) },
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := orderID(1 + (seed+w+i)%aggs)
				err := policy.Run(ctx, func(ctx context.Context) error {
					return repo.Update(ctx, id, func(_ context.Context, o *order) error {
						o.setQuantity(1, o.item(1).quantity+1)
						return nil
					})
				})
				if err != nil {
					lost.Add(1)
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
	return retried.Load(), lost.Load(), errs
}

const hotAggregates = 5

func seedHot(t *testing.T, b *backend) {
	t.Helper()
	repo := b.repo(t)
	for i := range hotAggregates {
		require.NoError(t, repo.Save(context.Background(), newOrder(orderID(1+i), "alice", &item{id: 1, sku: "A", quantity: 1}, &item{id: 2, sku: "B", quantity: 1})))
	}
}

// sumHot returns the increments the hot items and the orders' versions
// hold: the sums of their quantities (less the 1 each started with) and of
// their versions.
func sumHot(t *testing.T, b *backend) (increments, versions int64) {
	t.Helper()
	return b.raw.count(t, "SELECT coalesce(sum(quantity - 1), 0) FROM order_items WHERE id = 1"),
		b.raw.count(t, "SELECT coalesce(sum(version), 0) FROM orders")
}

// TestConcurrentIncrements: 32 goroutines x 200 increments through Update
// on 5 hot aggregates lose no update: each one lands exactly once.
func TestConcurrentIncrements(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		const workers, each = 32, 200
		seedHot(t, b)
		start := time.Now()
		retries, failed, errs := hotIncrements(context.Background(), b.quiet, orderMapping(t), workers, each, hotAggregates, 0)
		for _, err := range errs {
			t.Errorf("increment failed: %v", err)
		}
		q, v := sumHot(t, b)
		assert.Zero(t, failed)
		assert.Equal(t, int64(workers*each), q, "lost updates: %d of %d", int64(workers*each)-q, workers*each)
		assert.Equal(t, int64(workers*each), v, "one version bump per increment")
		t.Logf("%s: %d increments by %d goroutines on %d aggregates in %v: 0 lost, %d conflicts retried",
			b.name, workers*each, workers, hotAggregates, time.Since(start).Round(time.Millisecond), retries)
	})
}

const workerEnv = "DDDKIT_INCREMENT_WORKER"

// TestMain runs the process of TestIncrementsAcrossProcesses when the
// environment asks for it, and the tests otherwise.
func TestMain(m *testing.M) {
	if spec := os.Getenv(workerEnv); spec != "" {
		os.Exit(incrementWorker(spec))
	}
	os.Exit(m.Run())
}

// workerSpec is what a worker process is told: on PostgreSQL through
// pgxpool, the DSN and the schema; on MariaDB (MySQL set), the DSN of the
// database.
type workerSpec struct {
	DSN, Schema     string
	MySQL           bool
	Workers, Each   int
	Aggregates, Off int
}

// workerReport is what a worker process prints.
type workerReport struct {
	Retries, Failed int64
	Errors          []string
}

func incrementWorker(spec string) int {
	var s workerSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	db, closeDB, err := workerDB(ctx, s)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer closeDB()
	m, err := NewMapping[*order](Table{Name: "orders"}, Child{Field: "items", Table: "order_items", ParentKey: "order_id"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	retries, failed, errs := hotIncrements(ctx, db, m, s.Workers, s.Each, s.Aggregates, s.Off)
	r := workerReport{Retries: retries, Failed: failed}
	for _, e := range errs {
		r.Errors = append(r.Errors, e.Error())
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
	return 0
}

// workerDB opens the database of a worker process.
func workerDB(ctx context.Context, s workerSpec) (*DB, func(), error) {
	if s.MySQL {
		x, err := sqlx.Open("mysql", s.DSN)
		if err != nil {
			return nil, nil, err
		}
		db, err := NewSQL(x)
		if err != nil {
			x.Close()
			return nil, nil, err
		}
		return db, func() { x.Close() }, nil
	}
	cfg, err := pgxpool.ParseConfig(s.DSN)
	if err != nil {
		return nil, nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = s.Schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return NewPGX(pool), pool.Close, nil
}

// TestIncrementsAcrossProcesses runs the increments from 3 operating-system
// processes against one database, as a service scaled out would: the test
// binary starts copies of itself as workers, through pgxpool on
// PostgreSQL, through database/sql on MariaDB.
func TestIncrementsAcrossProcesses(t *testing.T) {
	t.Run("postgres/pgxpool", func(t *testing.T) {
		b := pgxBackend(t)
		var schema string
		require.NoError(t, b.raw.(pgxRaw).p.QueryRow(context.Background(), "SELECT current_schema()").Scan(&schema))
		incrementsAcrossProcesses(t, b, workerSpec{DSN: os.Getenv(pgEnv), Schema: schema})
	})
	t.Run("mariadb/database-sql", func(t *testing.T) {
		b, dsn := mysqlBackendDSN(t, false)
		incrementsAcrossProcesses(t, b, workerSpec{DSN: dsn, MySQL: true})
	})
}

func incrementsAcrossProcesses(t *testing.T, b *backend, to workerSpec) {
	seedHot(t, b)
	exe, err := os.Executable()
	require.NoError(t, err)

	const procs, workers, each = 3, 8, 100
	start := time.Now()
	type result struct {
		rep workerReport
		err error
	}
	results := make(chan result, procs)
	for p := range procs {
		s := to
		s.Workers, s.Each, s.Aggregates, s.Off = workers, each, hotAggregates, p
		spec, _ := json.Marshal(s)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), workerEnv+"="+string(spec))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		go func() {
			var r result
			sc := bufio.NewScanner(out)
			sc.Buffer(nil, 1<<20)
			if sc.Scan() {
				r.err = json.Unmarshal(sc.Bytes(), &r.rep)
			} else {
				r.err = errors.New("no report")
			}
			if err := cmd.Wait(); err != nil {
				r.err = errors.Join(r.err, err)
			}
			results <- r
		}()
	}
	var retries int64
	for range procs {
		r := <-results
		require.NoError(t, r.err)
		assert.Zero(t, r.rep.Failed, "errors: %v", r.rep.Errors)
		retries += r.rep.Retries
	}
	q, v := sumHot(t, b)
	total := int64(procs * workers * each)
	assert.Equal(t, total, q, "lost updates across processes")
	assert.Equal(t, total, v)
	t.Logf("%d processes x %d goroutines x %d increments on %d aggregates in %v: 0 lost, %d conflicts retried",
		procs, workers, each, hotAggregates, time.Since(start).Round(time.Millisecond), retries)
}

// TestFailedCommitKeepsInMemoryDatabase: a COMMIT that fails on SQLite
// (here a deferred foreign key) rolls the transaction back on its
// connection instead of discarding the connection, which would destroy an
// in-memory database.
func TestFailedCommitKeepsInMemoryDatabase(t *testing.T) {
	x, err := sqlx.Open("sqlite", "file:"+t.Name()+"?mode=memory&cache=private&_pragma=foreign_keys(1)")
	require.NoError(t, err)
	defer x.Close()
	x.SetMaxOpenConns(1)
	for _, s := range schemaDDL {
		x.MustExec(s)
	}
	db, err := NewSQL(x)
	require.NoError(t, err)
	repo, err := NewRepository[*order, orderID](db, orderMapping(t))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, repo.Save(ctx, newOrder(1, "alice")))
	err = db.InTx(ctx, func(ctx context.Context) error {
		return repo.Save(ctx, newOrder(2, "nobody")) // no such customer: fails at COMMIT
	})
	require.Error(t, err)
	o, err := repo.Find(ctx, 1)
	require.NoError(t, err, "the database and its tables are still there")
	assert.Equal(t, "alice", o.customer)
	_, err = repo.Find(ctx, 2)
	assert.ErrorIs(t, err, repository.ErrNotFound)
}
