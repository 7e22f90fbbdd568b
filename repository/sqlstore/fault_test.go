package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository"
)

// The fault tests break a save half way in the ways a service meets in
// production (the network drops, the backend is killed, the context is
// cancelled, a statement fails) and check that the database never holds
// part of it, that the error says what happened, and that a retry applies
// the change once.

// cutProxy forwards TCP connections to a server and, once armed, drops a
// connection after a given number of bytes from the client to the server.
type cutProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	// refuse makes the proxy close the connections it accepts at once.
	refuse atomic.Bool

	mu    sync.Mutex
	conns map[*proxied]bool // every connection, open or dropped
}

// proxied is one forwarded connection.
type proxied struct {
	client, server net.Conn
	sent           atomic.Int64 // bytes from the client, counted before they are forwarded
	limit          atomic.Int64 // sent at which it is dropped; < 0: never
	once           sync.Once
	dropped        atomic.Bool // set before the client's side is closed
}

func (c *proxied) drop() {
	c.once.Do(func() {
		c.dropped.Store(true)
		c.client.Close()
		c.server.Close()
	})
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln, target: target, conns: map[*proxied]bool{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.drop()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

// droppedPorts returns the local ports of the proxy's dropped connections
// to the server: the client ports the server sees.
func (p *cutProxy) droppedPorts() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int32
	for c := range p.conns {
		if c.dropped.Load() {
			out = append(out, int32(c.server.LocalAddr().(*net.TCPAddr).Port))
		}
	}
	return out
}

// awaitServer waits until no backend serves a connection of the proxy that
// was cut: the server has run, and ended, whatever it had read of it. A
// check made before could see the state before a save that the server
// then commits.
func (c *serverCase) awaitServer(t *testing.T, p *cutProxy) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ports := p.droppedPorts()
		var n int
		var err error
		if c.my != nil {
			n, err = c.mariaSessions(ports)
		} else {
			err = c.side.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY($1)`, ports).Scan(&n)
		}
		require.NoError(t, err)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the server still serves a cut connection")
		}
		time.Sleep(time.Millisecond)
	}
}

// mariaSessions counts the sessions of the MariaDB server whose client is
// at one of ports of this host.
func (c *serverCase) mariaSessions(ports []int32) (int, error) {
	rows, err := c.my.side.QueryContext(context.Background(), "SELECT HOST FROM information_schema.PROCESSLIST")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var host string
		if err := rows.Scan(&host); err != nil {
			return 0, err
		}
		_, port, _ := strings.Cut(host, ":")
		for _, p := range ports {
			if port == fmt.Sprint(p) {
				n++
			}
		}
	}
	return n, rows.Err()
}

func (p *cutProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		c := &proxied{client: client, server: server}
		c.limit.Store(-1)
		p.mu.Lock()
		p.conns[c] = true
		p.mu.Unlock()
		p.wg.Go(func() {
			_, _ = io.Copy(client, server)
			c.drop()
		})
		p.wg.Go(func() {
			p.forward(c)
			c.drop()
		})
	}
}

// forward copies the client's bytes to the server up to the limit.
func (p *cutProxy) forward(c *proxied) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.client.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			cut := false
			if limit := c.limit.Load(); limit >= 0 {
				if room := limit - c.sent.Load(); int64(len(chunk)) >= room {
					chunk, cut = chunk[:max(room, 0)], true
				}
			}
			// Counted before it is forwarded: a client that has the
			// server's answer to these bytes sees them counted.
			c.sent.Add(int64(len(chunk)))
			if cut {
				// The client is cut off first: no answer to the bytes
				// forwarded reaches it, however fast the server is.
				c.dropped.Store(true)
				c.client.Close()
			}
			if _, werr := c.server.Write(chunk); werr != nil {
				return
			}
			if cut {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// cutAll drops every connection at once, open or idle.
func (p *cutProxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.drop()
	}
}

// arm makes every connection drop after n more bytes from its client.
func (p *cutProxy) arm(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.limit.Store(c.sent.Load() + n)
	}
}

// sent returns the bytes the clients have sent.
func (p *cutProxy) sent() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	total := int64(0)
	for c := range p.conns {
		total += c.sent.Load()
	}
	return total
}

// orderRepo is what the fault tests use of a repository of orders.
type orderRepo interface {
	Find(ctx context.Context, id orderID) (*order, error)
	Save(ctx context.Context, o *order) error
}

// multiChange changes o so that its save takes four statements: the
// root's UPDATE (of the total and the version), a DELETE, an UPDATE and an
// INSERT of items. Its bytes on the wire are the same every time.
func multiChange(o *order) {
	first, second, last := o.items[0], o.items[1], o.items[len(o.items)-1]
	o.remove(second.id)
	o.add(&item{id: last.id + 1, sku: fmt.Sprintf("K%06d", last.id+1), quantity: second.quantity + 5})
	o.setQuantity(first.id, first.quantity+1)
}

// TestConnectionCutMidSave drops the connection of a save after n bytes
// from the client, for n across the whole save: the save fails, with
// ErrOutcomeUnknown once its statements may have reached the server; the
// database holds the state before the save or after it, never a part; and
// a retry on a sound connection applies the change exactly once.
func TestConnectionCutMidSave(t *testing.T) {
	forEachServer(t, serverKinds, func(t *testing.T, kind string) {
		c := newServerCase(t, kind)
		ctx := context.Background()
		require.NoError(t, c.repo(t).Save(ctx, newOrder(1, "alice", threeItems()...)))
		proxy := newCutProxy(t, c.serverAddr())

		// round opens a DB through the proxy, loads the order, arms the
		// proxy with n (< 0: not at all) and saves a change.
		round := func(n int64) (repo orderRepo, o, before, want *order, sent int64, err error) {
			db, _ := c.connect(t, proxy.addr(), 1, WithCancelWait(2*time.Second))
			repo, err = NewRepository[*order, orderID](db, orderMapping(t))
			require.NoError(t, err)
			o, err = repo.Find(ctx, 1)
			require.NoError(t, err)
			before = stored(o)
			multiChange(o)
			want = stored(o)
			want.version++
			start := proxy.sent()
			if n >= 0 {
				proxy.arm(n)
			}
			err = repo.Save(ctx, o)
			return repo, o, before, want, proxy.sent() - start, err
		}

		_, _, _, _, size, err := round(-1)
		require.NoError(t, err)
		require.Positive(t, size)
		t.Logf("a save on a new connection sends %d bytes", size)

		outcomes := map[string]int{}
		cuts := []int64{0, 1, 5, size / 6, size / 3, size / 2, 2 * size / 3, 5 * size / 6, size - 6, size - 1, size}
		for i, n := range cuts {
			dropped := len(proxy.droppedPorts())
			repo, o, before, want, sentNow, first := round(n)
			t.Logf("cut at %d: sent %d: %v", n, sentNow, first)
			require.Greater(t, len(proxy.droppedPorts()), dropped, "cut at %d of %d bytes: the proxy cut no connection", n, size)
			c.awaitServer(t, proxy)
			c.settle(t)
			got := c.load(t, 1)
			checkTruth(t, first, got, before, want)
			switch {
			case first == nil:
				// database/sql sends the statements again on another
				// connection when the first broke before any was sent.
				require.False(t, c.pgx, "cut after %d of %d bytes: the save must fail", n, size)
				outcomes["saved"]++
			case errors.Is(first, repository.ErrOutcomeUnknown):
				// On MariaDB the save's first bytes carry its BEGIN and
				// its COMMIT: a connection cut before an answer may have
				// been cut after the server had them all.
				require.True(t, n > 0 || c.my != nil, "nothing of the save was sent: %v", first)
				outcomes["unknown"]++
			default:
				outcomes["failed"]++
			}

			// The proxy forwards everything again: retry.
			if i%2 == 0 {
				// The same aggregate, saved again.
				err := repo.Save(ctx, o)
				switch {
				case first == nil:
					require.NoError(t, err, "nothing is left to save")
				case reflect.DeepEqual(got, want):
					require.ErrorIs(t, err, repository.ErrConflict, "cut after %d bytes: the first save was stored", n)
				default:
					require.NoError(t, err, "cut after %d bytes", n)
				}
			} else {
				// Load again, and apply the change if it is not there.
				o, err := repo.Find(ctx, 1)
				require.NoError(t, err)
				if !reflect.DeepEqual(got, want) {
					multiChange(o)
					require.NoError(t, repo.Save(ctx, o), "cut after %d bytes", n)
				}
			}
			after := c.load(t, 1)
			require.True(t, reflect.DeepEqual(after, want), "cut after %d bytes: the change is applied once: %s, want %s", n, describe(after), describe(want))
		}
		t.Logf("%v", outcomes)
		require.Positive(t, outcomes["unknown"], "a cut after the statements were sent leaves the outcome unknown")
	})
}

// TestConnectionCutWhileIdle drops the pooled connection of a DB while it
// is idle, as a restarted server or a network device does. The driver
// finds out only when the connection is next used (unless it pings it
// first): the operation that meets the broken connection may fail, with
// an error that tells the truth about the database; the operation after it
// runs on a new connection and succeeds.
func TestConnectionCutWhileIdle(t *testing.T) {
	forEachServer(t, serverKinds, func(t *testing.T, kind string) {
		c := newServerCase(t, kind)
		ctx := context.Background()
		require.NoError(t, c.repo(t).Save(ctx, newOrder(1, "alice", threeItems()...)))
		proxy := newCutProxy(t, c.serverAddr())
		db, _ := c.connect(t, proxy.addr(), 1)
		repo, err := NewRepository[*order, orderID](db, orderMapping(t))
		require.NoError(t, err)
		for i := range 4 {
			o, err := repo.Find(ctx, 1)
			require.NoError(t, err)
			before := stored(o)
			multiChange(o)
			want := stored(o)
			want.version++
			proxy.cutAll()
			c.awaitServer(t, proxy)

			var first error
			if i%2 == 0 {
				// A load meets the broken connection first.
				_, first = repo.Find(ctx, 1)
				t.Logf("round %d: a load after the cut: %v", i, first)
				require.NoError(t, repo.Save(ctx, o), "round %d: the save after the load runs on a new connection", i)
			} else {
				// A save meets it first.
				first = repo.Save(ctx, o)
				t.Logf("round %d: a save after the cut: %v", i, first)
				c.settle(t)
				checkTruth(t, first, c.load(t, 1), before, want)
				o, err = repo.Find(ctx, 1)
				require.NoError(t, err, "round %d: the load after the save runs on a new connection", i)
				if !reflect.DeepEqual(stored(o), want) {
					multiChange(o)
					require.NoError(t, repo.Save(ctx, o), "round %d: a save after the failed one runs on a new connection", i)
				}
			}
			require.True(t, reflect.DeepEqual(c.load(t, 1), want), "round %d: the database holds %s, want %s", i, describe(c.load(t, 1)), describe(want))
		}
	})
}

// TestCancelUnanswered cancels a save blocked on a row lock while the
// server cannot be reached for a cancel request (the proxy refuses new
// connections): once the wait of WithCancelWait expires, the save closes
// its connection and returns ErrOutcomeUnknown, as the server still holds
// the whole batch, and commits it once it gets the lock.
func TestCancelUnanswered(t *testing.T) {
	forEachServer(t, []string{"postgres/pgxpool", "postgres/pgx-conn"}, func(t *testing.T, kind string) {
		const wait = 300 * time.Millisecond
		c := newServerCase(t, kind)
		ctx := context.Background()
		require.NoError(t, c.repo(t).Save(ctx, newOrder(1, "alice", manyItems(500)...)))
		proxy := newCutProxy(t, c.serverAddr())
		db, _ := c.connect(t, proxy.addr(), 1, WithCancelWait(wait))
		repo, err := NewRepository[*order, orderID](db, orderMapping(t))
		require.NoError(t, err)

		shape := saveShapes[0]
		o, err := repo.Find(ctx, 1)
		require.NoError(t, err)
		before := stored(o)
		shape.apply(o)
		want := stored(o)
		want.version++

		release := c.lock(t, shape.lock)
		sctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- repo.Save(sctx, o) }()
		c.blockedPID(t)
		proxy.refuse.Store(true)
		start := time.Now()
		cancel()
		err = awaitSave(t, errc)
		took := time.Since(start)
		release()
		t.Logf("after %v: %v", took.Round(time.Millisecond), err)
		require.ErrorIs(t, err, repository.ErrOutcomeUnknown)
		require.ErrorIs(t, err, context.Canceled)
		require.GreaterOrEqual(t, took, wait, "the save waited for an answer")
		require.Less(t, took, wait+5*time.Second, "the wait is bounded")
		c.settle(t)
		got := c.load(t, 1)
		checkTruth(t, err, got, before, want)

		// Retry on a sound connection, after a reload.
		o, err = c.repo(t).Find(ctx, 1)
		require.NoError(t, err)
		if !reflect.DeepEqual(got, want) {
			shape.apply(o)
			require.NoError(t, c.repo(t).Save(ctx, o))
		}
		require.True(t, reflect.DeepEqual(c.load(t, 1), want), "the change is applied once: %s, want %s", describe(c.load(t, 1)), describe(want))
	})
}

// TestBackendTerminatedMidSave terminates the server process that runs a
// save while the save waits for a row lock: the save fails, nothing of it
// is stored, and the same save, retried, applies the change.
func TestBackendTerminatedMidSave(t *testing.T) {
	forEachServer(t, serverKinds, func(t *testing.T, kind string) {
		c := newServerCase(t, kind)
		ctx := context.Background()
		repo := c.repo(t)
		require.NoError(t, repo.Save(ctx, newOrder(1, "alice", manyItems(500)...)))
		for i, shape := range saveShapes {
			o, err := repo.Find(ctx, 1)
			require.NoError(t, err)
			before := stored(o)
			shape.apply(o)
			want := stored(o)
			want.version++

			release := c.lock(t, shape.lock)
			errc := make(chan error, 1)
			go func() { errc <- repo.Save(ctx, o) }()
			pid := c.blockedPID(t)
			if c.my != nil {
				_, err := c.my.side.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", pid))
				require.NoError(t, err)
			} else {
				var killed bool
				require.NoError(t, c.side.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&killed))
				require.True(t, killed)
			}
			err = awaitSave(t, errc)
			release()
			require.Error(t, err, "shape %d", i)
			c.settle(t)
			checkTruth(t, err, c.load(t, 1), before, want)
			t.Logf("%s: %v", shape.name, err)

			err = repo.Save(ctx, o)
			if errors.Is(err, repository.ErrConflict) {
				require.True(t, reflect.DeepEqual(c.load(t, 1), want))
			} else {
				require.NoError(t, err)
			}
			require.True(t, reflect.DeepEqual(c.load(t, 1), want), "%s: the database holds %s, want %s", shape.name, describe(c.load(t, 1)), describe(want))
		}
	})
}

// TestCancelInTx cancels the context of a unit of work while its save
// waits for a row lock, and while its COMMIT waits for one (the deferred
// foreign key check of orders.customer), the lock being released at once,
// shortly after, or only once InTx has returned (past the wait of
// WithCancelWait where the COMMIT cannot be cancelled): InTx returns nil only if the unit
// committed, a plain error only if it did not, ErrOutcomeUnknown only
// where the COMMIT could not be cancelled; and the same aggregate, saved
// again in a new unit of work, is saved once.
func TestCancelInTx(t *testing.T) {
	forEachServer(t, serverAnyKinds, func(t *testing.T, kind string) {
		const wait = 300 * time.Millisecond
		c := newServerCase(t, kind, WithCancelWait(wait))
		ctx := context.Background()
		repo := c.repo(t)
		require.NoError(t, repo.Save(ctx, newOrder(1, "alice", manyItems(50)...)))
		steps := []struct {
			name  string
			apply func(o *order)
			lock  string
			// hold: how long the lock is held after the cancellation;
			// past: until InTx returns, which is past the wait where
			// the COMMIT cannot be cancelled
			hold time.Duration
			past bool
		}{
			{"a save blocked half way", func(o *order) { o.setQuantity(10, o.item(10).quantity+1) },
				`SELECT 1 FROM order_items WHERE order_id = 1 AND id = 10 FOR UPDATE`, wait / 3, false},
			{"a COMMIT blocked", func(o *order) { o.customer = map[string]string{"alice": "bob", "bob": "alice"}[o.customer] },
				`SELECT 1 FROM customers FOR UPDATE`, 0, false},
			{"a COMMIT blocked past the wait", func(o *order) { o.customer = map[string]string{"alice": "bob", "bob": "alice"}[o.customer] },
				`SELECT 1 FROM customers FOR UPDATE`, 0, true},
		}
		if c.my != nil {
			// MariaDB checks the foreign key at the UPDATE, which the
			// first step covers: no COMMIT waits for a lock.
			steps = steps[:1]
		}
		for _, step := range steps {
			o, err := repo.Find(ctx, 1)
			require.NoError(t, err)
			before := stored(o)
			step.apply(o)
			want := stored(o)
			want.version++

			release := c.lock(t, step.lock)
			tctx, cancel := context.WithCancel(ctx)
			errc := make(chan error, 1)
			go func() {
				errc <- c.db.InTx(tctx, func(ctx context.Context) error { return repo.Save(ctx, o) })
			}()
			c.blockedPID(t)
			cancel()
			if step.past {
				err = awaitSave(t, errc)
				release()
			} else {
				time.Sleep(step.hold)
				release()
				err = awaitSave(t, errc)
			}
			c.settle(t)
			got := c.load(t, 1)
			t.Logf("%s: %v", step.name, err)
			checkTruth(t, err, got, before, want)
			switch {
			case !c.pgx && step.past:
				// database/sql cannot cancel the COMMIT: its connection
				// is closed once the wait expires, and the server commits
				// when it gets the lock.
				require.ErrorIs(t, err, repository.ErrOutcomeUnknown, step.name)
			case err != nil:
				require.ErrorIs(t, err, context.Canceled, step.name)
				require.NotErrorIs(t, err, repository.ErrOutcomeUnknown, "%s: the database answered", step.name)
			case step.hold > 0 || step.past:
				t.Fatalf("%s: the context was done long before the lock was released, yet InTx returned nil", step.name)
			}
			if err == nil {
				continue
			}
			require.Equal(t, before.version, o.version, "%s: the version is restored", step.name)

			err = c.db.InTx(ctx, func(ctx context.Context) error { return repo.Save(ctx, o) })
			if reflect.DeepEqual(got, want) {
				require.ErrorIs(t, err, repository.ErrConflict, step.name)
			} else {
				require.NoError(t, err, step.name)
			}
			require.True(t, reflect.DeepEqual(c.load(t, 1), want), "%s: the database holds %s, want %s", step.name, describe(c.load(t, 1)), describe(want))
		}
	})
}

// TestStatementFailsHalfWay makes the third statement of a save fail, on
// the CHECK (quantity > 0) or on UNIQUE (order_id, sku): nothing of the
// save is stored, inside a unit of work the transaction stays usable for
// the saves that follow, and the failed save, corrected, is saved once.
func TestStatementFailsHalfWay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		repo := b.repo(t)
		require.NoError(t, repo.Save(ctx, newOrder(1, "alice", threeItems()...)))
		faults := []struct {
			name   string
			breaks func(o *order)
			fix    func(o *order)
		}{
			{"check", func(o *order) { o.add(&item{id: 4, sku: "D", quantity: -1}) }, func(o *order) { o.setQuantity(4, 4) }},
			{"unique", func(o *order) { o.add(&item{id: 4, sku: "A", quantity: 4}) }, func(o *order) { o.item(4).sku = "D" }},
		}
		for _, f := range faults {
			// Outside a unit of work.
			o, err := repo.Find(ctx, 1)
			require.NoError(t, err)
			before := stored(o)
			o.setQuantity(1, 7) // the root's UPDATE and an item's come first
			f.breaks(o)
			err = repo.Save(ctx, o)
			require.Error(t, err, f.name)
			require.NotErrorIs(t, err, repository.ErrOutcomeUnknown, f.name)
			require.Equal(t, before, b.load(t, 1), "%s: nothing stored", f.name)
			f.fix(o)
			require.NoError(t, repo.Save(ctx, o), f.name)
			want := stored(o)
			require.Equal(t, want, b.load(t, 1), f.name)
			o.remove(4)
			o.setQuantity(1, 1)
			require.NoError(t, repo.Save(ctx, o))

			// In a unit of work: the failed save leaves the transaction
			// usable, and the other writes of the unit commit.
			o, err = repo.Find(ctx, 1)
			require.NoError(t, err)
			before = stored(o)
			err = b.db.InTx(ctx, func(ctx context.Context) error {
				if err := repo.Save(ctx, newOrder(2, "bob", &item{id: 1, sku: "A", quantity: 1})); err != nil {
					return err
				}
				o.setQuantity(1, 7)
				f.breaks(o)
				if err := repo.Save(ctx, o); err == nil {
					return errors.New("the failing save succeeded")
				}
				other, err := repo.Find(ctx, 2)
				if err != nil {
					return fmt.Errorf("a load after the failed save: %w", err)
				}
				other.setQuantity(1, 3)
				if err := repo.Save(ctx, other); err != nil {
					return fmt.Errorf("a save after the failed save: %w", err)
				}
				f.fix(o)
				return repo.Save(ctx, o)
			})
			require.NoError(t, err, f.name)
			assert.Equal(t, stored(o), b.load(t, 1), f.name)
			assert.Equal(t, before.version+1, b.load(t, 1).version, "%s: one version per stored save", f.name)
			assert.Equal(t, 3, b.load(t, 2).item(1).quantity, f.name)
			o.remove(4)
			o.setQuantity(1, 1)
			require.NoError(t, repo.Save(ctx, o))
			require.NoError(t, repo.Remove(ctx, b.load(t, 2)))
		}
	})
}
