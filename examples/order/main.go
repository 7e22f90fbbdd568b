// Command order runs the order example. By default it runs a scenario and
// prints, for each step, the SQL statements dddkit sent and the round trips
// they took; with -http it serves the example's HTTP API instead.
//
// Without setup it runs on an embedded SQLite database, in a temporary
// file removed at exit:
//
//	go run ./examples/order
//	go run ./examples/order -http :8080
//	go run ./examples/order -http :8080 -log-sql
//
// The server logs its start and stop and the requests that failed with an
// internal error; with -log-sql it logs every SQL statement too, with its
// arguments, at the DEBUG level, which it then enables: under load that is
// a great deal of output, and the arguments are the clients' data.
//
// With DATABASE_URL set to a postgres:// URL it runs on PostgreSQL through
// a pgx pool, in the schema named by -schema, or else by the environment
// variable DDDKIT_EXAMPLE_SCHEMA, or else dddkit_example:
//
//	DATABASE_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go run ./examples/order
//
// With DATABASE_URL set to a mysql:// (or mariadb://) URL it runs on MySQL
// or MariaDB through database/sql, in the database named as the schema is
// (the URL's own database is used only to connect):
//
//	DATABASE_URL='mysql://root@127.0.0.1:3306/test' go run ./examples/order
//
// The command never drops a schema it did not create. A missing schema is
// created and marked (with a comment; on MySQL, with a table of the
// database's own) as the example's; the scenario drops
// a marked schema and creates it again, to start empty; the HTTP server
// keeps what a marked schema holds, so that its orders outlive a restart.
// An existing schema without the mark is refused and left untouched.
//
// The scenario's steps go through the application service: place an order
// with three items; change the quantity of one item; apply a discount to
// that item (an INSERT of the discount that reads back the identity the
// database generated, RETURNING "id"); add an item and remove another in
// one change; save the order again unchanged (no statement at all); cancel
// the order (an UPDATE of its status); try to change the cancelled order,
// which the domain refuses (nothing written). Steps 2, 3, 4, 6 and 7 load,
// change and save in one transaction, so they show the SELECTs of the load
// (orders, their items, the items' discounts) and BEGIN and COMMIT (or
// ROLLBACK) as well as the writes of the save.
//
// With REDIS_URL set (redis://127.0.0.1:6379), the orders are cached in
// Redis (package cache/rediscache): each step also prints what the cache
// did, and a last step finds the order twice, the first time from the
// database, which fills the cache, and the second from Redis, with no SQL.
// The scenario's keys are its own, and expire a minute after it ends. The
// HTTP server does not cache.
//
//	REDIS_URL=redis://127.0.0.1:6379 go run ./examples/order
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dddkit/dddkit/cache/rediscache"
	"github.com/dddkit/dddkit/examples/order/application"
	"github.com/dddkit/dddkit/examples/order/domain"
	"github.com/dddkit/dddkit/examples/order/infrastructure"
	"github.com/dddkit/dddkit/examples/order/interfaces"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

// schemaEnv names the environment variable of the default PostgreSQL
// schema.
const schemaEnv = "DDDKIT_EXAMPLE_SCHEMA"

func main() {
	defaultSchema := os.Getenv(schemaEnv)
	if defaultSchema == "" {
		defaultSchema = infrastructure.DefaultSchema
	}
	addr := flag.String("http", "", "serve the HTTP API on this address, such as :8080, instead of running the scenario")
	schema := flag.String("schema", defaultSchema, "the PostgreSQL schema, or MySQL database, to work in (default from $"+schemaEnv+")")
	logSQL := flag.Bool("log-sql", false, "with -http, log every SQL statement and its arguments, at the DEBUG level")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "order example: unexpected arguments %q\n", flag.Args())
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := infrastructure.Config{URL: os.Getenv("DATABASE_URL"), Schema: *schema}
	var err error
	if *addr != "" {
		err = listenAndServe(ctx, *addr, cfg, os.Stderr, *logSQL)
	} else {
		cfg.Fresh = true
		if url := os.Getenv("REDIS_URL"); url != "" {
			err = runCached(ctx, os.Stdout, cfg, url)
		} else {
			err = run(ctx, os.Stdout, cfg)
		}
	}
	if err != nil {
		if errors.Is(err, infrastructure.ErrSchemaNotOwned) {
			err = fmt.Errorf("%w (name another schema with -schema or $%s)", err, schemaEnv)
		}
		fmt.Fprintln(os.Stderr, "order example failed:", err)
		os.Exit(1)
	}
}

// describeDB names the database of cfg.
func describeDB(cfg infrastructure.Config) string {
	if cfg.URL == "" {
		return "embedded SQLite (modernc.org/sqlite through database/sql)"
	}
	schema := cfg.Schema
	if schema == "" {
		schema = infrastructure.DefaultSchema
	}
	if strings.HasPrefix(cfg.URL, "mysql://") || strings.HasPrefix(cfg.URL, "mariadb://") {
		return "MySQL through database/sql (go-sql-driver/mysql), database " + schema
	}
	return "PostgreSQL through a pgx pool, schema " + schema
}

// listenAndServe serves the HTTP API on addr until ctx is done.
func listenAndServe(ctx context.Context, addr string, cfg infrastructure.Config, logw io.Writer, logSQL bool) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return serve(ctx, ln, cfg, logw, logSQL)
}

// serve serves the HTTP API on ln, on the database of cfg, until ctx is
// done; then it lets the requests under way finish and closes the
// database. It logs, to logw, the server's start and stop and the
// requests that failed with an internal error, at the INFO level and
// above; with logSQL, every SQL statement sent too, with its arguments,
// at the DEBUG level, which it then enables.
func serve(ctx context.Context, ln net.Listener, cfg infrastructure.Config, logw io.Writer, logSQL bool) (err error) {
	level := slog.LevelInfo
	if logSQL {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: level}))
	var opts []sqlstore.Option
	if logSQL {
		opts = append(opts, sqlstore.WithObserver(statementLogger(logger)))
	}
	db, closeDB, err := infrastructure.Open(ctx, cfg, opts...)
	if err != nil {
		ln.Close()
		return err
	}
	defer func() {
		if cerr := closeDB(); err == nil && cerr != nil {
			err = fmt.Errorf("close the database: %w", cerr)
		}
	}()
	orders, err := infrastructure.NewOrderRepository(db)
	if err != nil {
		ln.Close()
		return err
	}
	queries, err := infrastructure.NewOrderQueries(db)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           interfaces.NewHandler(application.NewService(orders), application.NewQueries(queries), logger),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelError),
	}
	logger.Info("serving the order API", "url", "http://"+ln.Addr().String(), "database", describeDB(cfg))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shut the server down: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// statementLogger returns an observer that logs each statement to l at
// the DEBUG level, whether it failed or not: a failure that matters to a
// request is logged by the API, at the ERROR level, without the arguments.
func statementLogger(l *slog.Logger) func(context.Context, sqlstore.Statement) {
	return func(ctx context.Context, s sqlstore.Statement) {
		attrs := []slog.Attr{
			slog.Int("round_trip", s.RoundTrip),
			slog.String("sql", s.SQL),
			slog.String("args", formatArgs(s.Args)),
			slog.Duration("duration", s.Duration),
		}
		if s.Err != nil {
			attrs = append(attrs, slog.Any("err", s.Err))
		}
		l.LogAttrs(ctx, slog.LevelDebug, "sql statement", attrs...)
	}
}

// run opens the database of cfg and runs the scenario, writing its report
// to w.
func run(ctx context.Context, w io.Writer, cfg infrastructure.Config) error {
	return runCached(ctx, w, cfg, "")
}

// runCached is run with the orders cached in the Redis server of redisURL,
// when it is not empty.
func runCached(ctx context.Context, w io.Writer, cfg infrastructure.Config, redisURL string) (err error) {
	rec := &recorder{}
	db, closeDB, err := infrastructure.Open(ctx, cfg, sqlstore.WithObserver(rec.Observe))
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeDB(); err == nil && cerr != nil {
			err = fmt.Errorf("close the database: %w", cerr)
		}
	}()
	var opts []repository.Option
	var cached cacheLog
	settle := func() {} // waits for the cache's invalidations under way
	if redisURL != "" {
		// Keys of this run's own: the scenario starts afresh, and must not
		// read what an earlier run cached.
		prefix := fmt.Sprintf("dddkit-example:run-%d:", time.Now().UnixNano())
		cache, closeCache, err := infrastructure.OpenCache(redisURL, prefix, time.Minute, cached.observe)
		if err != nil {
			return err
		}
		defer closeCache()
		settle = cache.Wait
		opts = append(opts, infrastructure.CacheOrders(cache))
	}
	orders, err := infrastructure.NewOrderRepository(db, opts...)
	if err != nil {
		return err
	}
	svc := application.NewService(orders)
	fmt.Fprintln(w, "database:", describeDB(cfg))
	if redisURL != "" {
		fmt.Fprintln(w, "cache: Redis (cache/rediscache)")
	}

	const id = domain.OrderID(1)
	var o *domain.Order
	var refused error // the domain's refusal, in the step that expects one
	step := func(title string, fn func() error) error {
		fmt.Fprintf(w, "\n== %s\n", title)
		rec.Reset()
		cached.reset()
		refused = nil
		err := fn()
		settle() // a save returns before its invalidation ends: print it in its step
		rec.print(w)
		if redisURL != "" {
			fmt.Fprintf(w, "   cache: %s\n", cached.String())
		}
		if err != nil {
			return fmt.Errorf("%s: %w", title, err)
		}
		if refused != nil {
			fmt.Fprintf(w, "   refused: %v\n", refused)
		}
		if o != nil {
			fmt.Fprintf(w, "   order now: %s\n", describe(o))
		}
		return nil
	}

	recipient, err := domain.NewRecipientInfo("Ada Lovelace", "+44 20 7946 0000", "12 St James's Square, London")
	if err != nil {
		return err
	}
	steps := []struct {
		title string
		fn    func() error
	}{
		{"1. place an order with 3 items", func() (err error) {
			o, err = svc.PlaceOrder(ctx, id, "ada", recipient,
				domain.ItemSpec{Product: "tea", Quantity: 2, UnitPrice: 350},
				domain.ItemSpec{Product: "coffee", Quantity: 1, UnitPrice: 1200},
				domain.ItemSpec{Product: "milk", Quantity: 3, UnitPrice: 120},
			)
			return err
		}},
		{"2. change the quantity of item 2 to 4 (load, change and save in one transaction)", func() (err error) {
			o, err = svc.ChangeQuantity(ctx, id, 2, 4)
			return err
		}},
		{"3. apply a 10% discount to item 2 (load, change and save in one transaction; the database gives the discount its identity)", func() (err error) {
			o, err = svc.ApplyDiscount(ctx, id, 2, "SPRING", 10)
			return err
		}},
		{"4. add an item and remove item 1 in one change (load, change and save in one transaction)", func() (err error) {
			o, err = svc.AdjustItems(ctx, id, []domain.ItemSpec{{Product: "sugar", Quantity: 1, UnitPrice: 200}}, []domain.ItemID{1})
			return err
		}},
		{"5. save the order of step 4 again, unchanged (no load)", func() error {
			return orders.Save(ctx, o)
		}},
		{"6. cancel the order (load, change and save in one transaction)", func() (err error) {
			o, err = svc.Cancel(ctx, id)
			return err
		}},
		{"7. change the quantity of item 2 of the cancelled order (refused by the domain: rolled back, nothing written)", func() error {
			_, refused = svc.ChangeQuantity(ctx, id, 2, 5)
			if !errors.Is(refused, domain.ErrCancelled) {
				return fmt.Errorf("want the domain's refusal, got %v", refused)
			}
			return nil
		}},
	}
	if redisURL != "" {
		steps = append(steps, []struct {
			title string
			fn    func() error
		}{
			{"8. find the order (a miss: loaded from the database, and cached)", func() (err error) {
				o, err = orders.Find(ctx, id)
				return err
			}},
			{"9. find the order again (a hit: read from Redis, no SQL)", func() (err error) {
				o, err = orders.Find(ctx, id)
				return err
			}},
		}...)
	}
	for _, s := range steps {
		if err := step(s.title, s.fn); err != nil {
			return err
		}
	}
	return nil
}

// cacheLog keeps what the cache did in a step, to print it.
type cacheLog struct {
	mu    sync.Mutex
	kinds []string
}

func (c *cacheLog) observe(e rediscache.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := e.Kind.String()
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	c.kinds = append(c.kinds, s)
}

func (c *cacheLog) reset() {
	c.mu.Lock()
	c.kinds = nil
	c.mu.Unlock()
}

// String lists what the cache did, or says it did nothing.
func (c *cacheLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.kinds) == 0 {
		return "not asked"
	}
	return strings.Join(c.kinds, ", ")
}

// describe prints the state of an order.
func describe(o *domain.Order) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version %d, %s, total %s;", o.Version(), o.Status(), o.Total())
	for _, it := range o.Items() {
		fmt.Fprintf(&b, " #%d %d x %s @ %s", it.ID(), it.Quantity(), it.Product(), it.UnitPrice())
		if ds := it.Discounts(); len(ds) > 0 {
			for _, d := range ds {
				fmt.Fprintf(&b, " less %s %d%% (discount %d)", d.Code(), d.Percent(), d.ID())
			}
			fmt.Fprintf(&b, " = %s", it.Subtotal())
		}
		b.WriteString(";")
	}
	return strings.TrimSuffix(b.String(), ";")
}

// recorder keeps the statements the observer reports, to print them.
type recorder struct{ infrastructure.StatementLog }

// role tells what a statement is part of: the transaction's control
// (BEGIN, COMMIT, ROLLBACK; on MySQL SET TRANSACTION and START
// TRANSACTION), a load (the SELECTs of Find), or a write (the statements
// of Save and Remove, savepoints included).
func role(sql string) string {
	switch {
	case strings.HasPrefix(sql, "BEGIN"), sql == "COMMIT", sql == "ROLLBACK",
		strings.HasPrefix(sql, "SET TRANSACTION "), strings.HasPrefix(sql, "START TRANSACTION"):
		return "tx"
	case strings.HasPrefix(sql, `SELECT "`), strings.HasPrefix(sql, "SELECT `"):
		return "load"
	}
	return "write"
}

// print writes the statements recorded, with their round trips, and a
// summary: how many statements and round trips, and which writes.
func (r *recorder) print(w io.Writer) {
	stmts := r.Statements()
	for _, s := range stmts {
		line := fmt.Sprintf("   trip %2d  %-5s  %s", s.RoundTrip, role(s.SQL), s.SQL)
		if len(s.Args) > 0 {
			line += "  " + formatArgs(s.Args)
		}
		if s.Err != nil {
			line += "  -> error: " + s.Err.Error()
		}
		fmt.Fprintln(w, line)
	}
	summary := "nothing written"
	if writes := r.Writes(); len(writes) > 0 {
		summary = "writes: " + strings.Join(writes, ", ")
	}
	fmt.Fprintf(w, "   -> %s in %s; %s\n", plural(len(stmts), "statement"), plural(r.RoundTrips(), "round trip"), summary)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// formatArgs prints bind parameters as the driver gets them: by kind, so
// that a domain.Money prints as its cents, and strings quoted.
func formatArgs(args []any) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = formatArg(reflect.ValueOf(a))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func formatArg(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		return strconv.Quote(v.String())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Slice, reflect.Array:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = formatArg(v.Index(i))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case reflect.Invalid:
		return "NULL"
	}
	return fmt.Sprint(v.Interface())
}
