// Command order runs the order example and prints, for each step, the SQL
// statements dddkit sent and the round trips they took.
//
// Without setup it runs on an embedded SQLite database:
//
//	go run ./examples/order
//
// With DATABASE_URL set to a postgres:// URL it runs on PostgreSQL through
// a pgx pool, in the schema dddkit_example, which it drops and creates
// again first:
//
//	DATABASE_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go run ./examples/order
//
// The steps go through the application service: place an order with three
// items; change the quantity of one item; add an item and remove another
// in one change; save the order again unchanged (no statement at all);
// cancel the order. Steps 2 and 3 load, change and save in one
// transaction, so they show the SELECTs of the load and BEGIN/COMMIT as
// well as the writes of the save.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/dddkit/dddkit/examples/order/application"
	"github.com/dddkit/dddkit/examples/order/domain"
	"github.com/dddkit/dddkit/examples/order/infrastructure"
	"github.com/dddkit/dddkit/repository/sqlstore"
)

func main() {
	if err := run(context.Background(), os.Stdout, os.Getenv("DATABASE_URL")); err != nil {
		fmt.Fprintln(os.Stderr, "order example failed:", err)
		os.Exit(1)
	}
}

// run opens the database named by url (empty: embedded SQLite) and runs the
// scenario, writing its report to w.
func run(ctx context.Context, w io.Writer, url string) (err error) {
	rec := &recorder{}
	db, closeDB, err := infrastructure.Open(ctx, url, sqlstore.WithObserver(rec.Observe))
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeDB(); err == nil && cerr != nil {
			err = fmt.Errorf("close the database: %w", cerr)
		}
	}()
	orders, err := infrastructure.NewOrderRepository(db)
	if err != nil {
		return err
	}
	svc := application.NewService(orders)

	if url == "" {
		fmt.Fprintln(w, "database: embedded SQLite (modernc.org/sqlite through database/sql)")
	} else {
		fmt.Fprintf(w, "database: PostgreSQL through a pgx pool, schema %s\n", infrastructure.Schema)
	}

	const id = domain.OrderID(1)
	var o *domain.Order
	step := func(title string, fn func() error) error {
		fmt.Fprintf(w, "\n== %s\n", title)
		rec.Reset()
		err := fn()
		rec.print(w)
		if err != nil {
			return fmt.Errorf("%s: %w", title, err)
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
				application.NewItem{Product: "tea", Quantity: 2, UnitPrice: 350},
				application.NewItem{Product: "coffee", Quantity: 1, UnitPrice: 1200},
				application.NewItem{Product: "milk", Quantity: 3, UnitPrice: 120},
			)
			return err
		}},
		{"2. change the quantity of item 2 to 4 (load, change and save in one transaction)", func() (err error) {
			o, err = svc.ChangeQuantity(ctx, id, 2, 4)
			return err
		}},
		{"3. add an item and remove item 1 in one change (load, change and save in one transaction)", func() (err error) {
			o, err = svc.AdjustItems(ctx, id, []application.NewItem{{Product: "sugar", Quantity: 1, UnitPrice: 200}}, []domain.ItemID{1})
			return err
		}},
		{"4. save the order of step 3 again, unchanged (no load)", func() error {
			return orders.Save(ctx, o)
		}},
		{"5. cancel the order (load, then remove)", func() error {
			o = nil
			return svc.Cancel(ctx, id)
		}},
	}
	for _, s := range steps {
		if err := step(s.title, s.fn); err != nil {
			return err
		}
	}
	return nil
}

// describe prints the state of an order.
func describe(o *domain.Order) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version %d, %s, total %s;", o.Version(), o.Status(), o.Total())
	for _, it := range o.Items() {
		fmt.Fprintf(&b, " #%d %d x %s @ %s;", it.ID(), it.Quantity(), it.Product(), it.UnitPrice())
	}
	return strings.TrimSuffix(b.String(), ";")
}

// recorder keeps the statements the observer reports, to print them.
type recorder struct{ infrastructure.StatementLog }

// dml finds the verb and table of an INSERT, UPDATE or DELETE, also when
// pgx wraps it for the version check (WITH r AS (UPDATE ...)), and the SET
// clause of an UPDATE.
var (
	dml     = regexp.MustCompile(`^(?:WITH r AS \()?(INSERT INTO|UPDATE|DELETE FROM) "([^"]+)"(?: SET (.*?) WHERE )?`)
	setCols = regexp.MustCompile(`"([^"]+)" = `)
)

// role tells what a statement is part of: the transaction's control
// (BEGIN, COMMIT, ROLLBACK), a load (the SELECTs of Find), or a write
// (the statements of Save and Remove, savepoints included).
func role(sql string) string {
	switch {
	case strings.HasPrefix(sql, "BEGIN"), sql == "COMMIT", sql == "ROLLBACK":
		return "tx"
	case strings.HasPrefix(sql, `SELECT "`):
		return "load"
	}
	return "write"
}

// print writes the statements recorded, with their round trips, and a
// summary: how many statements and round trips, and which writes.
func (r *recorder) print(w io.Writer) {
	stmts := r.Statements()
	trips := map[int]bool{}
	var writes []string
	for _, s := range stmts {
		trips[s.RoundTrip] = true
		line := fmt.Sprintf("   trip %2d  %-5s  %s", s.RoundTrip, role(s.SQL), s.SQL)
		if len(s.Args) > 0 {
			line += "  " + formatArgs(s.Args)
		}
		if s.Err != nil {
			line += "  -> error: " + s.Err.Error()
		}
		fmt.Fprintln(w, line)
		if m := dml.FindStringSubmatch(s.SQL); m != nil && s.Err == nil {
			verb, _, _ := strings.Cut(m[1], " ")
			desc := verb + " " + m[2]
			if m[3] != "" {
				var cols []string
				for _, c := range setCols.FindAllStringSubmatch(m[3], -1) {
					cols = append(cols, c[1])
				}
				desc += " (" + strings.Join(cols, ", ") + ")"
			}
			writes = append(writes, desc)
		}
	}
	summary := "nothing written"
	if len(writes) > 0 {
		summary = "writes: " + strings.Join(writes, ", ")
	}
	fmt.Fprintf(w, "   -> %s in %s; %s\n", plural(len(stmts), "statement"), plural(len(trips), "round trip"), summary)
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
