package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/dddkit/dddkit/benchmarks/internal/model"
)

func env(b testing.TB) *Env {
	b.Helper()
	dsn := os.Getenv(DSNVar)
	if dsn == "" {
		b.Skipf("%s is not set: the PostgreSQL benchmarks are skipped (for example %s='postgres://postgres@127.0.0.1:5432/test?sslmode=disable')", DSNVar, DSNVar)
	}
	ctx := context.Background()
	e, err := Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := e.Close(ctx); err != nil {
			b.Error(err)
		}
	})
	return e
}

func mysqlEnv(b testing.TB) *MySQLEnv {
	b.Helper()
	dsn := os.Getenv(MySQLDSNVar)
	if dsn == "" {
		b.Skipf("%s is not set: the MariaDB benchmarks and tests are skipped (for example %s='root@tcp(127.0.0.1:3306)/test')", MySQLDSNVar, MySQLDSNVar)
	}
	ctx := context.Background()
	e, err := OpenMySQL(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := e.Close(ctx); err != nil {
			b.Error(err)
		}
	})
	return e
}

func benchName(s string) string { return strings.ReplaceAll(s, " ", "_") }

// BenchmarkSave saves an order of 100 and 1,000 items after each
// workload's change, for every contender on PostgreSQL, and fails a
// contender that leaves the database in the wrong state. The report
// command measures the same saves with latency percentiles and counts.
func BenchmarkSave(b *testing.B) { benchSaves(b, env(b), false) }

// BenchmarkMariaDBSave is [BenchmarkSave] on MariaDB; it also counts each
// contender's round trips, statements and rows on the wire, reports them
// as metrics, and fails when the hand-written floor's counts are not
// those of its statements (a check of the counting proxy).
func BenchmarkMariaDBSave(b *testing.B) { benchSaves(b, mysqlEnv(b), true) }

func benchSaves(b *testing.B, e Backend, count bool) {
	ctx := context.Background()
	for _, n := range []int{100, 1000} {
		for _, w := range []model.Workload{model.OneItem, model.TenPercent} {
			for _, c := range e.Contenders() {
				if c.Saver == nil {
					continue
				}
				wname := "one-item"
				if w == model.TenPercent {
					wname = "ten-percent"
				}
				b.Run(fmt.Sprintf("items=%d/%s/%s", n, wname, benchName(c.Name)), func(b *testing.B) {
					r, err := setupSave(ctx, e, c, e.DSN(""), 4, n)
					if err != nil {
						b.Fatal(err)
					}
					defer r.s.Close()
					b.ReportAllocs()
					b.ResetTimer()
					for range b.N {
						b.StopTimer()
						ch := model.Step(r.ref, w, r.k)
						r.k++
						r.ref.Version++
						r.s.Prepare(ch)
						b.StartTimer()
						if err := r.s.Save(ctx); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					if err := e.Check(ctx, r.ref); err != nil {
						b.Fatalf("WRONG: %v", err)
					}
					if count {
						countMetrics(b, e, c, n, w)
					}
				})
			}
		}
	}
}

// countMetrics runs c's counting pass and reports its counts per save;
// for the hand-written floor, it checks them against the statements it
// sends.
func countMetrics(b *testing.B, e Backend, c Contender, n int, w model.Workload) {
	b.Helper()
	res := []Result{{Contender: c.Name, Trips: -1, Stmts: -1, Rows: -1}}
	countSaves(context.Background(), e, Options{Warmup: 1, CountOps: 3, Contenders: []Contender{c}}, n, w, res)
	r := res[0]
	if r.Err != nil {
		b.Fatalf("counting pass: %v", r.Err)
	}
	b.ReportMetric(r.Trips, "round-trips/op")
	b.ReportMetric(r.Stmts, "statements/op")
	b.ReportMetric(r.Rows, "rows/op")
	if c.Name != Hand {
		return
	}
	// START TRANSACTION, the root's UPDATE, its check, the statements of
	// the items, COMMIT; the root, the removed, changed and added items.
	want := Result{Trips: 1, Stmts: 5, Rows: 2}
	if w == model.TenPercent {
		want.Stmts, want.Rows = float64(3+1+n/10+1+1), float64(1+1+n/10+1)
	}
	if r.Trips != want.Trips || r.Stmts != want.Stmts || r.Rows != want.Rows {
		b.Fatalf("counted %v round trips, %v statements, %v rows per save; the hand-written save sends %v, %v, %v",
			r.Trips, r.Stmts, r.Rows, want.Trips, want.Stmts, want.Rows)
	}
}

// BenchmarkLoad loads an order of 1,000 items for every contender on
// PostgreSQL that loads, and checks what it read.
func BenchmarkLoad(b *testing.B) { benchLoads(b, env(b), []int{1000}) }

// BenchmarkMariaDBLoad is [BenchmarkLoad] on MariaDB, at 100 and 1,000
// items.
func BenchmarkMariaDBLoad(b *testing.B) { benchLoads(b, mysqlEnv(b), []int{100, 1000}) }

func benchLoads(b *testing.B, e Backend, sizes []int) {
	ctx := context.Background()
	for _, n := range sizes {
		want := model.New(e.NewOrderID(), n)
		if err := e.Insert(ctx, want); err != nil {
			b.Fatal(err)
		}
		for _, c := range e.Contenders() {
			if c.Loader == nil {
				continue
			}
			b.Run(fmt.Sprintf("items=%d/%s", n, benchName(c.LoadName())), func(b *testing.B) {
				l, err := c.Loader(ctx, e.DSN(""), 4)
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				b.ReportAllocs()
				var o *model.Order
				for b.Loop() {
					if o, err = l.Load(ctx, want.Number); err != nil {
						b.Fatal(err)
					}
				}
				if err := Same(o, want); err != nil {
					b.Fatalf("WRONG: %v", err)
				}
			})
		}
	}
}
