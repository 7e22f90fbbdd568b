package rediscache_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jmoiron/sqlx"
	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/cache/rediscache"
	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/internal/testdb"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

// Many service instances: operating-system processes, copies of the test
// binary, share a database and Redis, and run a random mix of Find,
// Update and Remove with a re-create on a few hot aggregates. The oracle:
//
//   - every Find returns an aggregate at least as recent as the last one
//     its process committed before the Find began;
//   - no update is lost: each aggregate counts the increments committed
//     to it (an Update adds one, a re-create carries the count over and
//     adds one), and the database's count is the sum of the processes'
//     own counts of what they committed;
//   - once the processes are done, with every invalidation returned, what
//     Redis holds of each aggregate is what the database holds.

// hot is an aggregate of the processes: n counts the increments, gen the
// re-creates.
type hot struct {
	id      int64 `db:"id"`
	gen     int64 `db:"gen"`
	n       int64 `db:"n"`
	items   []*item
	version int64 `db:"version" ddd:"version"`
}

func (h *hot) ID() int64 { return h.id }

func hotMapping() (*sqlstore.Mapping[*hot], error) {
	return sqlstore.NewMapping[*hot](sqlstore.Table{Name: "hots"},
		sqlstore.Child{Field: "items", Table: "hot_items", ParentKey: "hot_id"})
}

const cacheWorkerEnv = "DDDKIT_CACHE_WORKER"

// TestMain runs a process of TestManyProcesses when the environment asks
// for it, and the tests otherwise.
func TestMain(m *testing.M) {
	if spec := os.Getenv(cacheWorkerEnv); spec != "" {
		os.Exit(cacheWorker(spec))
	}
	os.Exit(m.Run())
}

// cacheSpec is what a process is told.
type cacheSpec struct {
	DSN, Schema string
	MySQL       bool
	Redis       string
	Prefix      string
	Near        bool
	Seed        uint64
	Goroutines  int
	Ops         int // per goroutine
	Aggregates  int
}

// cacheReport is what a process prints.
type cacheReport struct {
	// Counts holds the increments committed, by aggregate.
	Counts map[int64]int64
	// Violations are the Finds that broke the oracle; Errors the
	// operations that failed otherwise than by a conflict.
	Violations, Errors []string
	// Events counts what the cache reported, by kind; Conflicts the
	// operations given up after their retries.
	Events    map[string]int
	Conflicts int
}

// committed is the most recent (gen, version) a process committed, by
// aggregate.
type committed struct {
	mu sync.Mutex
	at map[int64][2]int64
}

func (c *committed) get(id int64) [2]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at[id]
}

func (c *committed) raise(id int64, h *hot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := [2]int64{h.gen, h.version}; older(c.at[id], v) {
		c.at[id] = v
	}
}

// older reports whether a is older than b.
func older(a, b [2]int64) bool { return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1]) }

func cacheWorker(spec string) int {
	var s cacheSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rep, err := runCacheWorker(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	_ = json.NewEncoder(os.Stdout).Encode(rep)
	return 0
}

func runCacheWorker(s cacheSpec) (*cacheReport, error) {
	ctx := context.Background()
	var db *sqlstore.DB
	if s.MySQL {
		x, err := sqlx.Open("mysql", s.DSN)
		if err != nil {
			return nil, err
		}
		defer x.Close()
		if db, err = sqlstore.NewSQL(x); err != nil {
			return nil, err
		}
	} else {
		cfg, err := pgxpool.ParseConfig(s.DSN)
		if err != nil {
			return nil, err
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = s.Schema
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, err
		}
		defer pool.Close()
		db = sqlstore.NewPGX(pool)
	}
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{s.Redis}, DisableCache: !s.Near})
	if err != nil {
		return nil, err
	}
	defer client.Close()
	rep := &cacheReport{Counts: map[int64]int64{}, Events: map[string]int{}}
	var mu sync.Mutex
	note := func(f func()) {
		mu.Lock()
		defer mu.Unlock()
		f()
	}
	// A timeout far above what a call takes under load: an invalidation
	// that timed out would leave an entry for the TTL, which the last
	// check of the test would see.
	opts := []rediscache.Option{rediscache.WithPrefix(s.Prefix), rediscache.WithTimeout(30 * time.Second),
		rediscache.WithObserver(func(_ context.Context, e rediscache.Event) {
			note(func() {
				rep.Events[e.Kind.String()]++
				if e.Kind == rediscache.Failed {
					rep.Errors = append(rep.Errors, e.Err.Error())
				}
			})
		})}
	if s.Near {
		opts = append(opts, rediscache.WithNear(0, 0))
	}
	m, err := hotMapping()
	if err != nil {
		return nil, err
	}
	cache := rediscache.New(client, opts...)
	defer cache.Close() // the invalidations under way end before the report
	repo, err := sqlstore.NewRepository[*hot, int64](db, m, rediscache.Wrap[*hot, int64](cache),
		repository.WithRetry(repository.RetryPolicy{Attempts: 200, Backoff: time.Millisecond, MaxBackoff: 50 * time.Millisecond,
			// On PostgreSQL, the locking load of an Update skips a row that
			// a concurrent transaction deleted, though it inserted it again:
			// the aggregate, never missing here, is found on the next try.
			Retryable: func(err error) bool {
				return errors.Is(err, repository.ErrConflict) || errors.Is(err, repository.ErrNotFound)
			}}))
	if err != nil {
		return nil, err
	}
	last := &committed{at: map[int64][2]int64{}}
	var wg sync.WaitGroup
	for g := range s.Goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(s.Seed, uint64(g)))
			for range s.Ops {
				id := int64(1 + rng.IntN(s.Aggregates))
				switch op := rng.IntN(10); {
				case op < 6:
					floor := last.get(id)
					o, err := repo.Find(ctx, id)
					switch {
					case err != nil:
						note(func() { rep.Violations = append(rep.Violations, fmt.Sprintf("find %d: %v", id, err)) })
					case older([2]int64{o.gen, o.version}, floor):
						note(func() {
							rep.Violations = append(rep.Violations, fmt.Sprintf("find %d: gen %d version %d, older than gen %d version %d committed here", id, o.gen, o.version, floor[0], floor[1]))
						})
					}
				case op < 9:
					var saved *hot
					err := repo.Update(ctx, id, func(_ context.Context, o *hot) error {
						o.n++
						if len(o.items) > 0 {
							o.items[int(o.n)%len(o.items)].qty++
						}
						saved = o
						return nil
					})
					switch {
					case err == nil:
						last.raise(id, saved)
						note(func() { rep.Counts[id]++ })
					case errors.Is(err, repository.ErrConflict):
						note(func() { rep.Conflicts++ })
					default:
						note(func() { rep.Errors = append(rep.Errors, fmt.Sprintf("update %d: %v", id, err)) })
					}
				default:
					err := recreate(ctx, db, repo, id, rng, last)
					switch {
					case err == nil:
						note(func() { rep.Counts[id]++ })
					case errors.Is(err, repository.ErrConflict):
						note(func() { rep.Conflicts++ })
					default:
						note(func() { rep.Errors = append(rep.Errors, fmt.Sprintf("re-create %d: %v", id, err)) })
					}
				}
			}
		})
	}
	wg.Wait()
	cache.Close()
	return rep, nil
}

// recreate removes the aggregate id and creates it again, in one
// transaction: of the next generation, its count carried over and one
// more, its version going on from the removed one's (a version that went
// back could match a stale load's).
func recreate(ctx context.Context, db *sqlstore.DB, repo *sqlstore.Repository[*hot, int64], id int64, rng *rand.Rand, last *committed) error {
	var err error
	for attempt := range 50 {
		var created *hot
		err = db.InTx(ctx, func(ctx context.Context) error {
			// Locked as it is read: two re-creates that both read it first
			// would deadlock when each came to lock it.
			o, err := repo.FindForUpdate(ctx, id)
			if err != nil {
				return err
			}
			if err := repo.Remove(ctx, o); err != nil {
				return err
			}
			created = &hot{id: id, gen: o.gen + 1, n: o.n + 1, version: o.version + 1}
			for i := range 1 + rng.IntN(3) {
				created.items = append(created.items, &item{id: int64(i + 1), sku: fmt.Sprintf("gen %d", created.gen)})
			}
			return repo.Save(ctx, created)
		})
		if err == nil {
			last.raise(id, created)
			return nil
		}
		if !errors.Is(err, repository.ErrConflict) && !errors.Is(err, repository.ErrNotFound) {
			return err
		}
		time.Sleep(time.Duration(1+rng.IntN(1<<min(attempt, 5))) * time.Millisecond) // a backoff, not an ordering
	}
	return err
}

// TestManyProcesses runs the mix in 3 processes on PostgreSQL and
// MariaDB, with the Redis cache alone and with near caches.
func TestManyProcesses(t *testing.T) {
	const procs, goroutines, ops, aggregates = 3, 4, 150, 20
	for _, near := range []bool{false, true} {
		tier := "redis"
		if near {
			tier = "near"
		}
		t.Run(tier, func(t *testing.T) {
			for _, db := range []struct {
				name string
				env  func(t *testing.T) *env
			}{{"postgres", func(t *testing.T) *env { return pgEnv(t) }}, {"mariadb", mysqlEnv}} {
				t.Run(db.name, func(t *testing.T) {
					e := db.env(t)
					manyProcesses(t, e, cacheSpec{
						DSN: e.dsn, Schema: e.schema, MySQL: e.mysql, Redis: testdb.RedisAddr(t), Prefix: e.prefix, Near: near,
						Goroutines: goroutines, Ops: ops, Aggregates: aggregates,
					}, procs)
				})
			}
		})
	}
}

func manyProcesses(t *testing.T, e *env, spec cacheSpec, procs int) {
	ctx := context.Background()
	m, err := hotMapping()
	require.NoError(t, err)
	d := sqlstore.PostgreSQL
	if e.mysql {
		d = sqlstore.MySQL
	}
	ddl, err := m.DDL(d)
	require.NoError(t, err)
	for s := range strings.SplitSeq(ddl, ";\n") {
		if s = strings.TrimSpace(s); s != "" {
			e.exec(t, s)
		}
	}
	plain, err := sqlstore.NewRepository[*hot, int64](e.db, m)
	require.NoError(t, err)
	for id := int64(1); id <= int64(spec.Aggregates); id++ {
		require.NoError(t, plain.Save(ctx, &hot{id: id, items: []*item{{id: 1, sku: "a"}, {id: 2, sku: "b"}}}))
	}

	exe, err := os.Executable()
	require.NoError(t, err)
	start := time.Now()
	type result struct {
		rep cacheReport
		err error
	}
	results := make(chan result, procs)
	for p := range procs {
		s := spec
		s.Seed = uint64(time.Now().UnixNano()) + uint64(p)
		b, err := json.Marshal(s)
		require.NoError(t, err)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Minute) // bounds a hung process, not a slow one
		defer cancel()
		cmd := exec.CommandContext(cctx, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), cacheWorkerEnv+"="+string(b))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		go func() {
			var r result
			sc := bufio.NewScanner(out)
			sc.Buffer(nil, 16<<20)
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
	counts := map[int64]int64{}
	events := map[string]int{}
	conflicts := 0
	for range procs {
		r := <-results
		require.NoError(t, r.err)
		assert.Empty(t, r.rep.Violations, "a Find older than what its process committed")
		assert.Empty(t, r.rep.Errors)
		for id, n := range r.rep.Counts {
			counts[id] += n
		}
		for k, n := range r.rep.Events {
			events[k] += n
		}
		conflicts += r.rep.Conflicts
	}

	// No update lost; and Redis, settled, holds what the database holds.
	store := plain.Store()
	total, held := int64(0), 0
	for id := int64(1); id <= int64(spec.Aggregates); id++ {
		inDB, err := store.Select(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, counts[id], inDB.n, "aggregate %d: increments lost", id)
		total += counts[id]
		value := e.held(t, id)
		if !strings.HasPrefix(value, "V") {
			continue // a tombstone, a lease or nothing: the next Find reads the database
		}
		held++
		_, entry, ok := strings.Cut(value, "\n")
		require.True(t, ok)
		cached, err := store.Decode([]byte(entry))
		require.NoError(t, err)
		same, err := diff.Equal(inDB, cached)
		require.NoError(t, err)
		assert.True(t, same && cached.version == inDB.version, "aggregate %d: Redis holds gen %d version %d n %d, the database gen %d version %d n %d",
			id, cached.gen, cached.version, cached.n, inDB.gen, inDB.version, inDB.n)
	}
	t.Logf("%d processes x %d goroutines x %d operations on %d aggregates in %v: %d increments, 0 lost; %d gave up after retries; %d aggregates held in Redis at the end, as in the database; cache: %v",
		procs, spec.Goroutines, spec.Ops, spec.Aggregates, time.Since(start).Round(time.Millisecond), total, conflicts, held, events)
}
