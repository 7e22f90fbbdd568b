package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/internal/testdb"
	"github.com/dddkit/dddkit/repository"
)

// The MySQL and MariaDB tests of the transport: round trips counted on
// the wire, the checks of a save read from the server, deadlocks and lock
// wait timeouts, errors in the middle of a round trip, and the connection
// killed during a COMMIT. They run on the server of DDDKIT_TEST_MYSQL_DSN,
// each in a database of its own.

// myDDL is the schema of the order aggregate on MySQL.
var myDDL = []string{
	"CREATE TABLE customers (name VARCHAR(64) PRIMARY KEY)",
	"INSERT INTO customers (name) VALUES ('alice'), ('bob')",
	`CREATE TABLE orders (
		id BIGINT PRIMARY KEY,
		customer VARCHAR(64) NOT NULL,
		total_amount BIGINT NOT NULL,
		total_currency VARCHAR(8) NOT NULL,
		version BIGINT NOT NULL,
		CONSTRAINT orders_customer FOREIGN KEY (customer) REFERENCES customers (name)
	)`,
	`CREATE TABLE order_items (
		order_id BIGINT NOT NULL,
		id BIGINT NOT NULL,
		sku VARCHAR(64) NOT NULL,
		quantity INT NOT NULL,
		PRIMARY KEY (order_id, id),
		UNIQUE KEY order_sku (order_id, sku),
		CONSTRAINT items_quantity CHECK (quantity > 0),
		CONSTRAINT items_order FOREIGN KEY (order_id) REFERENCES orders (id)
	)`,
}

// myEnv is a database of its own on the test server, with the order
// schema, and a DB on it whose commands are counted on the wire.
type myEnv struct {
	x     *sqlx.DB // the DB's pool
	db    *DB
	admin *sqlx.DB // another pool on the same database, for fixtures and checks
	repo  *Repository[*order, orderID]
	wire  *wire
	log   *stmtLog
}

// myNets numbers the networks registered for the wires of tests.
var myNets atomic.Int64

// newMyEnv opens a database of its own for t. params are more DSN
// parameters of the DB's connections; opts are options of the DB.
func newMyEnv(t testing.TB, params map[string]string, opts ...Option) *myEnv {
	t.Helper()
	base := mysqlTestDSN(t)
	admin, err := sqlx.Open("mysql", base)
	require.NoError(t, err)
	t.Cleanup(func() { admin.Close() })
	for _, s := range myDDL {
		_, err := admin.Exec(s)
		require.NoError(t, err, s)
	}
	cfg, err := mysql.ParseDSN(base)
	require.NoError(t, err)
	w := &wire{}
	netName := fmt.Sprintf("dddkit_wire_%d", myNets.Add(1))
	addr, network := cfg.Addr, cfg.Net
	mysql.RegisterDialContext(netName, func(ctx context.Context, _ string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &wireConn{Conn: c, w: w}, nil
	})
	t.Cleanup(func() { mysql.DeregisterDialContext(netName) })
	cfg.Net = netName
	for k, v := range params {
		cfg.Params[k] = v
	}
	x, err := sqlx.Open("mysql", cfg.FormatDSN())
	require.NoError(t, err)
	t.Cleanup(func() { x.Close() })
	log := &stmtLog{}
	db, err := NewSQL(x, append([]Option{WithObserver(log.observe)}, opts...)...)
	require.NoError(t, err)
	repo, err := NewRepository[*order, orderID](db, orderMapping(t))
	require.NoError(t, err)
	return &myEnv{x: x, db: db, admin: admin, repo: repo, wire: w, log: log}
}

// mysqlTestDSN creates a database of its own for t on the server of
// DDDKIT_TEST_MYSQL_DSN, dropped afterwards, and returns its DSN, made by
// MySQLDSN; it skips t when the variable is unset.
func mysqlTestDSN(t testing.TB) string {
	t.Helper()
	dsn, _ := testdb.MySQLDatabase(t, "dddkit_core_", true)
	dsn, err := MySQLDSN(dsn)
	require.NoError(t, err)
	return dsn
}

// wire counts the commands the client sends (packets of sequence number
// 0), each a round trip, and can cut a connection once it has sent a
// command that holds a given text.
type wire struct {
	commands atomic.Int64
	mu       sync.Mutex
	// cutAfter, when set, is a text: once a command that holds it is
	// sent, cut is called on the next read, and the read fails.
	cutAfter string
	cut      func()
}

func (w *wire) count() int64 { return w.commands.Load() }

type wireConn struct {
	net.Conn
	w     *wire
	armed atomic.Bool
}

func (c *wireConn) Write(b []byte) (int, error) {
	if len(b) >= 5 && b[3] == 0 {
		c.w.commands.Add(1)
		c.w.mu.Lock()
		if c.w.cutAfter != "" && bytes.Contains(b, []byte(c.w.cutAfter)) {
			c.armed.Store(true)
		}
		c.w.mu.Unlock()
	}
	return c.Conn.Write(b)
}

func (c *wireConn) Read(b []byte) (int, error) {
	if c.armed.Load() {
		c.w.mu.Lock()
		cut := c.w.cut
		c.w.cutAfter, c.w.cut = "", nil
		c.w.mu.Unlock()
		if cut != nil {
			cut()
		}
		_ = c.Conn.Close()
		return 0, io.ErrUnexpectedEOF
	}
	return c.Conn.Read(b)
}

// seedMy saves order 1 with items 1 (A) and 2 (B).
func seedMy(t *testing.T, e *myEnv) {
	t.Helper()
	require.NoError(t, e.repo.Save(context.Background(), newOrder(1, "alice", &item{id: 1, sku: "A", quantity: 1}, &item{id: 2, sku: "B", quantity: 2})))
}

func (e *myEnv) count(t *testing.T, q string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, e.admin.Get(&n, q, args...))
	return n
}

// TestMySQLRoundTrips counts the commands a save and a load send, on the
// wire: a save outside a unit of work is one round trip, its BEGIN and
// COMMIT in it; a load of a root and its children is one; an Update is
// two, its load with the BEGIN and its save with the COMMIT.
func TestMySQLRoundTrips(t *testing.T) {
	e := newMyEnv(t, nil)
	ctx := context.Background()
	e.x.SetMaxOpenConns(1) // the same connection all along: no setup counted
	seedMy(t, e)           // the probe, and the connection's setup

	trips := func(f func() error) int64 {
		t.Helper()
		before := e.wire.count()
		require.NoError(t, f())
		return e.wire.count() - before
	}
	o := e.load(t, 1)
	assert.EqualValues(t, 1, trips(func() error {
		o.items[0].quantity = 5
		o.items = append(o.items, &item{id: 3, sku: "C", quantity: 3})
		o.recompute()
		return e.repo.Save(ctx, o)
	}), "a save of a changed root, a changed child and a new one")
	assert.EqualValues(t, 1, trips(func() error {
		return e.repo.Save(ctx, newOrder(2, "bob", &item{id: 1, sku: "A", quantity: 1}))
	}), "a save of a new aggregate")
	assert.EqualValues(t, 1, trips(func() error {
		_, err := e.repo.Find(ctx, 1)
		return err
	}), "a load of a root and its children")
	assert.EqualValues(t, 2, trips(func() error {
		return e.repo.Update(ctx, 1, func(_ context.Context, o *order) error {
			o.customer = "bob"
			return nil
		})
	}), "an Update: its load with the BEGIN, its save with the COMMIT")
	assert.EqualValues(t, 3, trips(func() error {
		return e.db.InTx(ctx, func(ctx context.Context) error {
			o, err := e.repo.FindForUpdate(ctx, 1)
			if err != nil {
				return err
			}
			o.customer = "alice"
			return e.repo.Save(ctx, o)
		})
	}), "a unit of work of a load and a save, and its COMMIT")
	assert.EqualValues(t, 2, trips(func() error {
		return e.db.InTx(ctx, func(ctx context.Context) error {
			o, err := e.repo.FindForUpdate(ctx, 1)
			if err != nil {
				return err
			}
			o.customer = "bob"
			return e.repo.Save(e.db.CommitWith(ctx), o)
		})
	}), "the same, the save marked with CommitWith")
	o2 := e.load(t, 2)
	assert.EqualValues(t, 1, trips(func() error {
		return e.repo.Remove(ctx, o2)
	}), "a remove of a root and its children")
	got := e.load(t, 1)
	assert.Equal(t, "bob", got.customer)
	assert.Len(t, got.items, 3)
}

func (e *myEnv) load(t *testing.T, id orderID) *order {
	t.Helper()
	o, err := e.repo.Find(context.Background(), id)
	require.NoError(t, err)
	return o
}

// TestMySQLEqualValueChildUpdate checks that a child UPDATE that writes
// the values the row already holds counts the row it matched: the row was
// changed to the same value by another writer meanwhile, and the save
// succeeds, where a count of the rows changed would report a conflict.
func TestMySQLEqualValueChildUpdate(t *testing.T) {
	e := newMyEnv(t, nil)
	ctx := context.Background()
	seedMy(t, e)
	o := e.load(t, 1)
	_, err := e.admin.Exec("UPDATE order_items SET quantity = 7 WHERE order_id = 1 AND id = 1")
	require.NoError(t, err)
	o.items[0].quantity = 7 // the value the row already holds
	o.recompute()
	require.NoError(t, e.repo.Save(ctx, o))
	assert.EqualValues(t, 7, e.count(t, "SELECT quantity FROM order_items WHERE order_id = 1 AND id = 1"))

	// The same on the statement of one's own: the matched row counts.
	n, err := e.db.Exec(ctx, "UPDATE order_items SET quantity = quantity WHERE order_id = ?", 1)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
}

// TestMySQLCheckStopsTheRoundTrip checks that a save whose version check
// fails writes nothing, though the statements after the check were in the
// same round trip as the COMMIT: the server stops at the check.
func TestMySQLCheckStopsTheRoundTrip(t *testing.T) {
	e := newMyEnv(t, nil)
	ctx := context.Background()
	seedMy(t, e)
	o := e.load(t, 1)
	_, err := e.admin.Exec("UPDATE orders SET version = version + 1 WHERE id = 1")
	require.NoError(t, err)
	o.items[0].quantity = 9
	o.items = append(o.items, &item{id: 3, sku: "C", quantity: 3})
	o.recompute()
	err = e.repo.Save(ctx, o)
	require.ErrorIs(t, err, repository.ErrConflict)
	assert.NotErrorIs(t, err, repository.ErrOutcomeUnknown)
	assert.EqualValues(t, 1, e.count(t, "SELECT quantity FROM order_items WHERE order_id = 1 AND id = 1"))
	assert.EqualValues(t, 2, e.count(t, "SELECT count(*) FROM order_items WHERE order_id = 1"))
}

// TestMySQLDuplicateMidBatch checks that a duplicate key met by an INSERT
// in the middle of a save's round trip rolls back what ran before it: the
// root's UPDATE and a child's. Outside a unit of work the transaction
// rolls back; inside one the savepoint does, and the unit of work goes on
// and commits what came after.
func TestMySQLDuplicateMidBatch(t *testing.T) {
	e := newMyEnv(t, nil)
	ctx := context.Background()
	seedMy(t, e)
	bad := func() *order {
		o := e.load(t, 1)
		o.items[1].quantity = 8
		o.items = append(o.items, &item{id: 3, sku: "A", quantity: 3}) // sku A is item 1's
		o.recompute()
		return o
	}
	version := e.count(t, "SELECT version FROM orders WHERE id = 1")
	err := e.repo.Save(ctx, bad())
	require.ErrorIs(t, err, repository.ErrUnique)
	var de *repository.DataError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "order_items", de.Table)
	assert.Equal(t, "order_sku", de.Constraint)
	assert.NotErrorIs(t, err, repository.ErrOutcomeUnknown)
	assert.EqualValues(t, 2, e.count(t, "SELECT quantity FROM order_items WHERE order_id = 1 AND id = 2"))
	assert.EqualValues(t, version, e.count(t, "SELECT version FROM orders WHERE id = 1"))

	require.NoError(t, e.db.InTx(ctx, func(ctx context.Context) error {
		require.ErrorIs(t, e.repo.Save(ctx, bad()), repository.ErrUnique)
		return e.repo.Save(ctx, newOrder(2, "bob", &item{id: 1, sku: "A", quantity: 4}))
	}))
	assert.EqualValues(t, 2, e.count(t, "SELECT quantity FROM order_items WHERE order_id = 1 AND id = 2"))
	assert.EqualValues(t, 2, e.count(t, "SELECT count(*) FROM order_items WHERE order_id = 1"))
	assert.EqualValues(t, 4, e.count(t, "SELECT quantity FROM order_items WHERE order_id = 2"))
}

// waitFor polls the server until q counts want, for the ordering of a
// test that waits for a lock (not a sleep that guesses a duration). It
// may run on a goroutine of the test's own: it returns an error, after a
// minute. It polls every 150 ms: InnoDB refreshes the tables of
// information_schema it reads only when they were not read in the last
// 100 ms.
func (e *myEnv) waitFor(want int64, q string, args ...any) error {
	deadline := time.Now().Add(time.Minute)
	for {
		var n int64
		if err := e.admin.Get(&n, q, args...); err != nil {
			return err
		}
		if n == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited a minute for %s to count %d, not %d", q, want, n)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// lockWaits counts the transactions of the test's database waiting for a
// lock.
const lockWaits = `SELECT count(*) FROM information_schema.INNODB_TRX t
	JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
	WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE()`

// TestMySQLDeadlockRetried forces a deadlock between two Updates, each
// holding its own root and then asking for the other's: the server rolls
// one back (1213), which matches ErrConflict, and the retry policy runs
// it again to success. The order of the locks is forced by waiting for
// the first Update to wait for its lock.
func TestMySQLDeadlockRetried(t *testing.T) {
	e := newMyEnv(t, nil)
	ctx := context.Background()
	seedMy(t, e)
	require.NoError(t, e.repo.Save(ctx, newOrder(2, "bob", &item{id: 1, sku: "A", quantity: 1})))
	var retries []error
	var mu sync.Mutex
	repo, err := NewRepository[*order, orderID](e.db, orderMapping(t), repository.WithRetry(repository.RetryPolicy{
		Attempts: 3,
		OnRetry: func(_ context.Context, _ int, err error) {
			mu.Lock()
			retries = append(retries, err)
			mu.Unlock()
		},
	}))
	require.NoError(t, err)

	bothLocked := make(chan struct{})
	firstLocked, secondLocked := make(chan struct{}), make(chan struct{})
	var attempts [2]atomic.Int64
	update := func(k int, own, other orderID, locked chan struct{}) error {
		return repo.Update(ctx, own, func(ctx context.Context, o *order) error {
			if attempts[k].Add(1) == 1 {
				close(locked)
				<-bothLocked
				if k == 1 {
					// The first Update waits for the second's root: now
					// the second asks for the first's.
					if err := e.waitFor(1, lockWaits); err != nil {
						return err
					}
				}
			}
			if _, err := repo.FindForUpdate(ctx, other); err != nil {
				return err
			}
			o.customer = map[int]string{0: "bob", 1: "alice"}[k]
			return nil
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- update(0, 1, 2, firstLocked) }()
	go func() { errs <- update(1, 2, 1, secondLocked) }()
	for _, locked := range []chan struct{}{firstLocked, secondLocked} {
		select {
		case <-locked:
		case err := <-errs:
			close(bothLocked)
			require.NoError(t, err, "an Update ended before it held its root")
		}
	}
	close(bothLocked)
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	require.Len(t, retries, 1)
	assert.ErrorIs(t, retries[0], repository.ErrConflict)
	var me *mysql.MySQLError
	require.ErrorAs(t, retries[0], &me)
	assert.EqualValues(t, 1213, me.Number)
	assert.Equal(t, "bob", e.load(t, 1).customer)
	assert.Equal(t, "alice", e.load(t, 2).customer)
	assert.EqualValues(t, 3, attempts[0].Load()+attempts[1].Load())
}

// TestMySQLLockWaitTimeout checks that a save that meets a lock wait
// timeout (1205: the server rolls back the statement alone, and keeps
// the transaction with its earlier writes) rolls the whole unit of work
// back: a function that ignores the error and returns nil commits
// nothing, the other writes of the unit of work included.
func TestMySQLLockWaitTimeout(t *testing.T) {
	e := newMyEnv(t, map[string]string{"innodb_lock_wait_timeout": "1"})
	ctx := context.Background()
	seedMy(t, e)
	o := e.load(t, 1)

	blocker, err := e.admin.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer blocker.Rollback()
	_, err = blocker.Exec("SELECT * FROM order_items WHERE order_id = 1 AND id = 2 FOR UPDATE")
	require.NoError(t, err)

	var saveErr error
	txErr := e.db.InTx(ctx, func(ctx context.Context) error {
		require.NoError(t, e.repo.Save(ctx, newOrder(3, "bob", &item{id: 1, sku: "A", quantity: 1})))
		o.items[0].quantity = 5 // runs before the locked row's UPDATE
		o.items[1].quantity = 6
		o.recompute()
		saveErr = e.repo.Save(ctx, o)
		_, err := e.db.Exec(ctx, "DO 1") // refused: the transaction is rolled back
		assert.ErrorIs(t, err, repository.ErrConflict)
		return nil // the error ignored
	})
	require.ErrorIs(t, saveErr, repository.ErrConflict)
	var me *mysql.MySQLError
	require.ErrorAs(t, saveErr, &me)
	assert.EqualValues(t, 1205, me.Number)
	require.Error(t, txErr)
	assert.ErrorIs(t, txErr, repository.ErrConflict)
	assert.NotErrorIs(t, txErr, repository.ErrOutcomeUnknown)
	require.NoError(t, blocker.Rollback())
	assert.EqualValues(t, 0, e.count(t, "SELECT count(*) FROM orders WHERE id = 3"))
	assert.EqualValues(t, 1, e.count(t, "SELECT quantity FROM order_items WHERE order_id = 1 AND id = 1"))
	assert.EqualValues(t, o.version, e.count(t, "SELECT version FROM orders WHERE id = 1"))

	// An Update that meets it is retried, once the lock is gone.
	blocker, err = e.admin.BeginTxx(ctx, nil)
	require.NoError(t, err)
	_, err = blocker.Exec("SELECT * FROM order_items WHERE order_id = 1 AND id = 2 FOR UPDATE")
	require.NoError(t, err)
	repo, err := NewRepository[*order, orderID](e.db, orderMapping(t), repository.WithRetry(repository.RetryPolicy{
		Attempts: 2,
		OnRetry:  func(context.Context, int, error) { require.NoError(t, blocker.Rollback()) },
	}))
	require.NoError(t, err)
	require.NoError(t, repo.Update(ctx, 1, func(_ context.Context, o *order) error {
		o.items[1].quantity = 6
		o.recompute()
		return nil
	}))
	assert.EqualValues(t, 6, e.count(t, "SELECT quantity FROM order_items WHERE order_id = 1 AND id = 2"))
}

// TestMySQLKilledDuringCommit kills the connection of a unit of work once
// its COMMIT is sent, before its answer is read: the outcome is unknown,
// and the error says so. Then the DB goes on, on another connection.
func TestMySQLKilledDuringCommit(t *testing.T) {
	for _, fused := range []bool{false, true} {
		t.Run(map[bool]string{false: "COMMIT alone", true: "COMMIT with the save"}[fused], func(t *testing.T) {
			e := newMyEnv(t, nil)
			ctx := context.Background()
			seedMy(t, e)
			err := e.db.InTx(ctx, func(ctx context.Context) error {
				o, err := e.repo.FindForUpdate(ctx, 1)
				if err != nil {
					return err
				}
				conn, err := e.db.SQLTx(ctx)
				require.NoError(t, err)
				var id int64
				require.NoError(t, conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id))
				e.wire.mu.Lock()
				e.wire.cutAfter, e.wire.cut = "COMMIT", func() {
					_, err := e.admin.Exec(fmt.Sprintf("KILL %d", id))
					assert.NoError(t, err)
					assert.NoError(t, e.waitFor(0, "SELECT count(*) FROM information_schema.PROCESSLIST WHERE ID = ?", id))
				}
				e.wire.mu.Unlock()
				o.customer = "bob"
				if fused {
					ctx = e.db.CommitWith(ctx)
				}
				return e.repo.Save(ctx, o)
			})
			require.ErrorIs(t, err, repository.ErrOutcomeUnknown)
			o := e.load(t, 1)
			o.customer = "alice"
			require.NoError(t, e.repo.Save(ctx, o))
		})
	}
}

// TestMySQLProbe checks that a DB refuses to run on a session without the
// settings it needs, naming them and MySQLDSN, and runs MySQL's statements
// on MariaDB with the test switch.
func TestMySQLProbe(t *testing.T) {
	base := mysqlTestDSN(t)
	cfg, err := mysql.ParseDSN(base)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		edit func(c *mysql.Config)
		want string
	}{
		{"one statement a query", func(c *mysql.Config) { c.MultiStatements = false }, "multiStatements=true and interpolateParams=true"},
		{"prepared statements", func(c *mysql.Config) { c.InterpolateParams = false }, "multiStatements=true and interpolateParams=true"},
		{"rows changed", func(c *mysql.Config) { c.ClientFoundRows = false }, "clientFoundRows=true"},
		{"times as text", func(c *mysql.Config) { c.ParseTime = false }, "parseTime=true"},
		{"not strict", func(c *mysql.Config) { c.Params["sql_mode"] = "'NO_ENGINE_SUBSTITUTION'" }, "a strict sql_mode"},
		{"another time zone", func(c *mysql.Config) { c.Params["time_zone"] = "'+02:00'" }, `time_zone='+00:00': the session's time zone is "+02:00"`},
		{"autocommit off", func(c *mysql.Config) { c.Params["autocommit"] = "0" }, "autocommit=1"},
		// The driver refuses charset=gbk with interpolateParams, but a
		// session variable set by the DSN, or by the server, escapes it.
		{"client charset gbk", func(c *mysql.Config) { c.Params["character_set_client"] = "gbk" }, "the session's character_set_client is gbk"},
		{"connection charset big5", func(c *mysql.Config) { c.Params["character_set_connection"] = "big5" }, "the session's character_set_connection is big5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg.Clone()
			tc.edit(c)
			x, err := sqlx.Open("mysql", c.FormatDSN())
			require.NoError(t, err)
			defer x.Close()
			db, err := NewSQL(x)
			require.NoError(t, err)
			_, err = db.Exec(context.Background(), "DO 1")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "sqlstore.MySQLDSN")
		})
	}

	// A DSN that names no database: the check of clientFoundRows, on a
	// temporary table, is skipped, and the DB runs.
	t.Run("no database", func(t *testing.T) {
		c := cfg.Clone()
		c.DBName = ""
		x, err := sqlx.Open("mysql", c.FormatDSN())
		require.NoError(t, err)
		defer x.Close()
		db, err := NewSQL(x)
		require.NoError(t, err)
		ctx := context.Background()
		_, err = db.Exec(ctx, "CREATE TABLE "+cfg.DBName+".nodb (a INT)")
		require.NoError(t, err)
		n, err := db.Exec(ctx, "INSERT INTO "+cfg.DBName+".nodb (a) VALUES (?), (?)", 1, 2)
		require.NoError(t, err)
		assert.EqualValues(t, 2, n)
		var sum int
		require.NoError(t, db.QueryRow(ctx, "SELECT SUM(a) FROM "+cfg.DBName+".nodb").Scan(&sum))
		assert.Equal(t, 3, sum)
	})

	x, err := sqlx.Open("mysql", base)
	require.NoError(t, err)
	defer x.Close()
	var version string
	require.NoError(t, x.Get(&version, "SELECT VERSION()"))
	for _, tc := range []struct {
		opts []Option
		want *dialect
	}{
		{nil, map[bool]*dialect{true: mariadbDialect, false: mysqlDialect}[mariadbReturning(version)]},
		{[]Option{withMySQLPath()}, mysqlDialect},
	} {
		db, err := NewSQL(x, tc.opts...)
		require.NoError(t, err)
		srv, err := db.ready(context.Background())
		require.NoError(t, err)
		assert.Same(t, tc.want, srv.d, version)
		assert.Greater(t, srv.maxPacket, 1<<20)
	}
}

// TestMySQLLastID checks that a single-row INSERT whose generated key is
// wanted gets it, on the multi-statement round trip and on the one
// statement alone of a statement too large for one.
func TestMySQLLastID(t *testing.T) {
	e := newMyEnv(t, nil)
	ctx := context.Background()
	_, err := e.admin.Exec("CREATE TABLE notes (id BIGINT AUTO_INCREMENT PRIMARY KEY, body LONGTEXT NOT NULL)")
	require.NoError(t, err)
	var ids []int64
	insert := func(body string) stmt {
		return stmt{sql: "INSERT INTO notes (body) VALUES (?)", args: []any{body}, lastID: func(id int64) error {
			ids = append(ids, id)
			return nil
		}}
	}
	require.NoError(t, e.db.run(ctx, []stmt{insert("a"), insert("b")}, true))
	srv := e.db.srv.Load()
	require.NotNil(t, srv)
	small := *srv
	small.maxPacket = 1000
	e.db.srv.Store(&small)
	defer e.db.srv.Store(srv)
	require.NoError(t, e.db.run(ctx, []stmt{insert("c"), insert(strings.Repeat("d", 2000)), insert("e")}, true))
	require.Len(t, ids, 5)
	for i := 1; i < len(ids); i++ {
		assert.Equal(t, ids[i-1]+1, ids[i])
	}
	assert.EqualValues(t, 5, e.count(t, "SELECT count(*) FROM notes"))
	assert.EqualValues(t, ids[3], e.count(t, "SELECT id FROM notes WHERE body LIKE 'ddd%'"))
}

// TestMySQLPacketSplit checks that a write larger than the server's
// max_allowed_packet goes in several round trips of one transaction,
// atomic: its last statement's failure writes nothing.
func TestMySQLPacketSplit(t *testing.T) {
	e := newMyEnv(t, nil)
	ctx := context.Background()
	seedMy(t, e)
	srv, err := e.db.ready(ctx)
	require.NoError(t, err)
	small := *srv
	small.maxPacket = 4000
	e.db.srv.Store(&small)
	o := newOrder(2, "bob")
	for i := range 60 {
		o.items = append(o.items, &item{id: itemID(i + 1), sku: fmt.Sprintf("%s-%d", strings.Repeat("x", 40), i), quantity: 1})
	}
	o.recompute()
	before := e.wire.count()
	require.NoError(t, e.repo.Save(ctx, o))
	assert.Greater(t, e.wire.count()-before, int64(1))
	assert.EqualValues(t, 60, e.count(t, "SELECT count(*) FROM order_items WHERE order_id = 2"))

	o = newOrder(3, "bob")
	for i := range 60 {
		o.items = append(o.items, &item{id: itemID(i + 1), sku: fmt.Sprintf("%s-%d", strings.Repeat("y", 40), i), quantity: 1})
	}
	o.items[59].quantity = -1 // the CHECK fails in the last round trip
	o.recompute()
	err = e.repo.Save(ctx, o)
	require.ErrorIs(t, err, repository.ErrConstraint)
	assert.EqualValues(t, 0, e.count(t, "SELECT count(*) FROM orders WHERE id = 3"))
	assert.EqualValues(t, 0, e.count(t, "SELECT count(*) FROM order_items WHERE order_id = 3"))
}

// TestMySQLClassify checks the mapping of MySQL's and MariaDB's errors to
// the sentinels of package repository.
func TestMySQLClassify(t *testing.T) {
	root := &stmt{sql: "INSERT INTO `orders` (`id`) VALUES (?)", rootKey: "id"}
	child := &stmt{sql: "INSERT INTO `order_items` (`order_id`, `sku`) VALUES (?, ?)"}
	for _, tc := range []struct {
		name       string
		s          *stmt
		err        *mysql.MySQLError
		kind       error
		table, col string
		constraint string
	}{
		{"a root's key", root, &mysql.MySQLError{Number: 1062, Message: "Duplicate entry '1' for key 'PRIMARY'"}, repository.ErrExists, "orders", "id", "PRIMARY"},
		{"a root's key on MySQL 8", root, &mysql.MySQLError{Number: 1062, Message: "Duplicate entry '1' for key 'orders.PRIMARY'"}, repository.ErrExists, "orders", "id", "PRIMARY"},
		{"another key", child, &mysql.MySQLError{Number: 1062, Message: "Duplicate entry '1-A' for key 'order_sku'"}, repository.ErrUnique, "order_items", "", "order_sku"},
		{"not null", child, &mysql.MySQLError{Number: 1048, Message: "Column 'sku' cannot be null"}, repository.ErrConstraint, "order_items", "sku", ""},
		{"a foreign key", child, &mysql.MySQLError{Number: 1452, Message: "Cannot add or update a child row: a foreign key constraint fails (`test`.`order_items`, CONSTRAINT `items_order` FOREIGN KEY (`order_id`) REFERENCES `orders` (`id`))"}, repository.ErrConstraint, "order_items", "order_id", "items_order"},
		{"a check on MariaDB", child, &mysql.MySQLError{Number: 4025, Message: "CONSTRAINT `items_quantity` failed for `test`.`order_items`"}, repository.ErrConstraint, "order_items", "", "items_quantity"},
		{"a check on MySQL", child, &mysql.MySQLError{Number: 3819, Message: "Check constraint 'items_quantity' is violated."}, repository.ErrConstraint, "order_items", "", "items_quantity"},
		{"too long", child, &mysql.MySQLError{Number: 1406, Message: "Data too long for column 'sku' at row 1"}, repository.ErrInvalidValue, "order_items", "sku", ""},
		{"out of range", child, &mysql.MySQLError{Number: 1264, Message: "Out of range value for column 'quantity' at row 1"}, repository.ErrInvalidValue, "order_items", "quantity", ""},
		{"an incorrect value on MariaDB", child, &mysql.MySQLError{Number: 1366, Message: "Incorrect integer value: 'x' for column `test`.`order_items`.`quantity` at row 1"}, repository.ErrInvalidValue, "order_items", "quantity", ""},
		{"a deadlock", child, &mysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock; try restarting transaction"}, repository.ErrConflict, "", "", ""},
		{"a lock wait timeout", child, &mysql.MySQLError{Number: 1205, Message: "Lock wait timeout exceeded; try restarting transaction"}, repository.ErrConflict, "", "", ""},
		{"a write conflict", child, &mysql.MySQLError{Number: 1020, Message: "Record has changed since last read in table 'order_items'"}, repository.ErrConflict, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := classify(tc.s, tc.err)
			require.ErrorIs(t, err, tc.kind)
			require.ErrorIs(t, err, tc.err)
			var de *repository.DataError
			if tc.kind == repository.ErrConflict {
				assert.False(t, errors.As(err, &de))
				assert.True(t, mysqlAborts(err))
				return
			}
			require.ErrorAs(t, err, &de)
			assert.Equal(t, tc.table, de.Table)
			assert.Equal(t, tc.col, de.Column)
			assert.Equal(t, tc.constraint, de.Constraint)
			assert.False(t, mysqlAborts(err))
		})
	}
}
