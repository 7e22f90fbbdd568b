package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/dddkit/dddkit/benchmarks/internal/model"
)

func env(b *testing.B) *Env {
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

func benchName(s string) string { return strings.ReplaceAll(s, " ", "_") }

// BenchmarkSave saves an order of 100 and 1,000 items after each
// workload's change, for every contender, and fails a contender that
// leaves the database in the wrong state. The report command measures the
// same saves with latency percentiles and counts.
func BenchmarkSave(b *testing.B) {
	e := env(b)
	ctx := context.Background()
	for _, n := range []int{100, 1000} {
		for _, w := range []model.Workload{model.OneItem, model.TenPercent} {
			for _, c := range Contenders() {
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
				})
			}
		}
	}
}

// BenchmarkLoad loads an order of 1,000 items for every contender that
// loads, and checks what it read.
func BenchmarkLoad(b *testing.B) {
	e := env(b)
	ctx := context.Background()
	want := model.New(e.NewOrderID(), 1000)
	pool, err := newPool(ctx, e.DSN(""), 1)
	if err != nil {
		b.Fatal(err)
	}
	err = insertPlain(ctx, pool, want)
	pool.Close()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range Contenders() {
		if c.Loader == nil {
			continue
		}
		name := c.Name
		if name == DddkitSave {
			name = DddkitFind
		}
		b.Run("items=1000/"+benchName(name), func(b *testing.B) {
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
