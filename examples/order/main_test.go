package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/order/infrastructure"
	"github.com/dddkit/dddkit/examples/order/infrastructure/infratest"
	"github.com/dddkit/dddkit/internal/testdb"
)

// summaries returns the summary line of each step of a report.
func summaries(out string) []string {
	var s []string
	for line := range strings.Lines(out) {
		if sum, ok := strings.CutPrefix(strings.TrimSpace(line), "-> "); ok {
			s = append(s, sum)
		}
	}
	return s
}

// TestRun runs the example on the embedded SQLite database and checks the
// summary of each step.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, infrastructure.Config{}))
	require.Equal(t, []string{
		"4 statements in 4 round trips; writes: INSERT orders, INSERT order_items",
		"7 statements in 7 round trips; writes: UPDATE orders (total, version), UPDATE order_items (quantity)",
		"7 statements in 7 round trips; writes: UPDATE orders (total, version), INSERT item_discounts",
		"9 statements in 9 round trips; writes: UPDATE orders (last_item_id, total, version), DELETE item_discounts, DELETE order_items, INSERT order_items",
		"0 statements in 0 round trips; nothing written",
		"6 statements in 6 round trips; writes: UPDATE orders (status, version)",
		"5 statements in 5 round trips; nothing written",
	}, summaries(out.String()), out.String())
	require.Contains(t, out.String(), `INSERT INTO "item_discounts" ("order_id", "item_id", "code", "percent") VALUES (?, ?, ?, ?) RETURNING "id"  [1, 2, "SPRING", 10]`)
	require.Contains(t, out.String(), "order now: version 2, placed, total 53.80; #1 2 x tea @ 3.50; #2 4 x coffee @ 12.00 less SPRING 10% (discount 1) = 43.20; #3 3 x milk @ 1.20")
	require.Contains(t, out.String(), `UPDATE "orders" SET "status" = ?, "version" = ? WHERE "id" = ? AND "version" = ?  ["cancelled", 4, 1, 3]`)
	require.Contains(t, out.String(), "refused: change the quantity of an item of order 1: order: a cancelled order cannot change")
	require.Contains(t, out.String(), "order now: version 4, cancelled, total 48.80; #2 4 x coffee @ 12.00 less SPRING 10% (discount 1) = 43.20; #3 3 x milk @ 1.20; #4 1 x sugar @ 2.00")

	// A second run gets a database of its own.
	out.Reset()
	require.NoError(t, run(context.Background(), &out, infrastructure.Config{}))
}

// TestRunPostgres runs the example twice in a schema of its own: the
// first run creates the schema, the second starts it afresh, so that both
// print the same statements, in as few round trips as pgx allows.
func TestRunPostgres(t *testing.T) {
	dsn, schema := infratest.PostgresSchema(t)
	cfg := infrastructure.Config{URL: dsn, Schema: schema, Fresh: true}
	want := []string{
		"2 statements in 1 round trip; writes: INSERT orders, INSERT order_items",
		"7 statements in 2 round trips; writes: UPDATE orders (total, version), UPDATE order_items (quantity)",
		"7 statements in 2 round trips; writes: UPDATE orders (total, version), INSERT item_discounts",
		"9 statements in 2 round trips; writes: UPDATE orders (last_item_id, total, version), DELETE item_discounts, DELETE order_items, INSERT order_items",
		"0 statements in 0 round trips; nothing written",
		"6 statements in 2 round trips; writes: UPDATE orders (status, version)",
		"5 statements in 2 round trips; nothing written",
	}
	for range 2 {
		var out bytes.Buffer
		require.NoError(t, run(context.Background(), &out, cfg))
		require.Contains(t, out.String(), "database: PostgreSQL through a pgx pool, schema "+schema)
		require.Equal(t, want, summaries(out.String()), out.String())
		// The discount's INSERT shares the batch of the save: its item
		// exists, so the key of the level above is known.
		require.Contains(t, out.String(), `trip  5  write  INSERT INTO "item_discounts" ("order_id", "item_id", "code", "percent") VALUES ($1, $2, $3, $4) RETURNING "id"  [1, 2, "SPRING", 10]`)
		require.Contains(t, out.String(), "#2 4 x coffee @ 12.00 less SPRING 10% (discount 1) = 43.20", "the identity the database generated, afresh each run")
	}
}

// TestRunMySQL runs the example twice on MariaDB, in a database of its
// own given by a mysql:// URL: the first run creates the database, the
// second starts it afresh, so that both print the same statements, in as
// many round trips as on pgx: each operation is one multi-statement round
// trip, the BEGIN of a transaction (SET TRANSACTION, START TRANSACTION)
// with its first, its COMMIT with its last save.
func TestRunMySQL(t *testing.T) {
	dsn, database := infratest.MySQLDatabase(t)
	cfg := infrastructure.Config{URL: infratest.MySQLURL(t, dsn), Schema: database, Fresh: true}
	want := []string{
		"5 statements in 1 round trip; writes: INSERT orders, INSERT order_items",
		"8 statements in 2 round trips; writes: UPDATE orders (total, version), UPDATE order_items (quantity)",
		"8 statements in 2 round trips; writes: UPDATE orders (total, version), INSERT item_discounts",
		"10 statements in 2 round trips; writes: UPDATE orders (last_item_id, total, version), DELETE item_discounts, DELETE order_items, INSERT order_items",
		"0 statements in 0 round trips; nothing written",
		"7 statements in 2 round trips; writes: UPDATE orders (status, version)",
		"6 statements in 2 round trips; nothing written",
	}
	for range 2 {
		var out bytes.Buffer
		require.NoError(t, run(context.Background(), &out, cfg))
		require.Contains(t, out.String(), "database: MySQL through database/sql (go-sql-driver/mysql), database "+database)
		require.Equal(t, want, summaries(out.String()), out.String())
		require.Contains(t, out.String(), "INSERT INTO `item_discounts` (`order_id`, `item_id`, `code`, `percent`) VALUES (?, ?, ?, ?)")
		require.Contains(t, out.String(), "#2 4 x coffee @ 12.00 less SPRING 10% (discount 1) = 43.20", "the identity the database generated, afresh each run")
		require.Contains(t, out.String(), "order now: version 4, cancelled, total 48.80; #2 4 x coffee @ 12.00 less SPRING 10% (discount 1) = 43.20; #3 3 x milk @ 1.20; #4 1 x sugar @ 2.00")
	}
}

// TestRunRedis runs the example on the embedded SQLite database with the
// orders cached in Redis: the steps send the same statements, and two
// more find the order, the second from Redis without SQL.
func TestRunRedis(t *testing.T) {
	url := "redis://" + testdb.RedisAddr(t)
	var out bytes.Buffer
	require.NoError(t, runCached(context.Background(), &out, infrastructure.Config{}, url))
	require.Equal(t, []string{
		"4 statements in 4 round trips; writes: INSERT orders, INSERT order_items",
		"7 statements in 7 round trips; writes: UPDATE orders (total, version), UPDATE order_items (quantity)",
		"7 statements in 7 round trips; writes: UPDATE orders (total, version), INSERT item_discounts",
		"9 statements in 9 round trips; writes: UPDATE orders (last_item_id, total, version), DELETE item_discounts, DELETE order_items, INSERT order_items",
		"0 statements in 0 round trips; nothing written",
		"6 statements in 6 round trips; writes: UPDATE orders (status, version)",
		"5 statements in 5 round trips; nothing written",
		"5 statements in 5 round trips; nothing written",
		"0 statements in 0 round trips; nothing written",
	}, summaries(out.String()), out.String())
	require.Contains(t, out.String(), "cache: Redis")
	require.Contains(t, out.String(), "a miss: loaded from the database, and cached)\n")
	require.Contains(t, out.String(), "cache: miss, filled\n")
	require.Contains(t, out.String(), "   -> 0 statements in 0 round trips; nothing written\n   cache: hit\n   order now: version 4, cancelled")
}

func TestRunRejectsUnknownURL(t *testing.T) {
	err := run(context.Background(), &bytes.Buffer{}, infrastructure.Config{URL: "sqlserver://localhost/x"})
	require.ErrorContains(t, err, `unsupported URL scheme "sqlserver"`)
}

// TestServe serves the API on the embedded SQLite database, places and
// cancels an order through it, and stops it, and checks what it logged:
// no statement at all by default, each at the DEBUG level with -log-sql.
func TestServe(t *testing.T) {
	logged := serveOnce(t, false)
	require.Contains(t, logged, "serving the order API")
	require.Contains(t, logged, "stopped")
	require.NotContains(t, logged, "INSERT INTO", "no statement is logged by default")
	require.NotContains(t, logged, "Lovelace", "no argument is logged by default")
	require.NotContains(t, logged, "level=DEBUG")

	logged = serveOnce(t, true)
	require.Contains(t, logged, "serving the order API")
	require.Contains(t, logged, `level=DEBUG msg="sql statement"`)
	require.Contains(t, logged, `UPDATE \"orders\" SET \"status\" = ?`, "the statements are logged")
	require.Contains(t, logged, `Lovelace`, "with their arguments")
	for line := range strings.Lines(logged) {
		if strings.Contains(line, "sql statement") {
			require.Contains(t, line, "level=DEBUG", "statements only at DEBUG, failed ones included")
		}
	}
	require.Contains(t, logged, "stopped")
}

// serveOnce serves the API, places an order and cancels it twice (the
// second time refused), stops the server and returns what it logged.
func serveOnce(t *testing.T, logSQL bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var log bytes.Buffer
	logw := &syncWriter{w: &log}
	served := make(chan error, 1)
	go func() { served <- serve(ctx, ln, infrastructure.Config{}, logw, logSQL) }()
	base := "http://" + ln.Addr().String()

	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var v map[string]any
		require.NoError(t, json.Unmarshal(b, &v), string(b))
		return resp.StatusCode, v
	}
	status, o := post("/orders", `{"id": 1, "customer": "ada", "recipient": {"name": "Ada Lovelace", "address": "London"}, "items": [{"product": "tea", "quantity": 2, "unit_price": 350}]}`)
	require.Equal(t, http.StatusCreated, status, o)
	require.Equal(t, 700.0, o["total"])
	status, o = post("/orders/1/cancel", "")
	require.Equal(t, http.StatusOK, status, o)
	require.Equal(t, "cancelled", o["status"])
	status, o = post("/orders/1/cancel", "")
	require.Equal(t, http.StatusConflict, status)
	require.Equal(t, "cancelled", o["code"])

	stop()
	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("the server did not stop")
	}
	logw.mu.Lock()
	defer logw.mu.Unlock()
	return log.String()
}

// syncWriter serializes the writes of the server's goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
