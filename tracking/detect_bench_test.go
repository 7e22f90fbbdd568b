package tracking

import (
	"context"
	"fmt"
	"testing"

	"github.com/dddkit/dddkit/diff"
)

// BenchmarkDetectChanges compares an order with its snapshot, unchanged and
// with one item changed, through the Tracker (impl=tracker: snapshot lookup
// included), through diff.Compare alone (impl=diff), and with the
// hand-written comparison of the same type (impl=hand) in the same run.
func BenchmarkDetectChanges(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1, 100, 1000} {
		for _, state := range []string{"unchanged", "one-item-changed"} {
			o := newOrder(n)
			tr := NewTracker[*Order]()
			if err := tr.Attach(ctx, o); err != nil {
				b.Fatal(err)
			}
			snap, err := tr.Snapshot(ctx, o)
			if err != nil {
				b.Fatal(err)
			}
			want := false
			if state != "unchanged" {
				o.items[n/2].quantity++
				want = true
			}
			name := fmt.Sprintf("items=%d/%s", n, state)
			b.Run(name+"/impl=tracker", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					r, err := tr.Changes(ctx, o)
					if err != nil || r.Changed() != want {
						b.Fatal(r, err)
					}
				}
			})
			b.Run(name+"/impl=diff", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					r, err := diff.Compare(snap, o)
					if err != nil || r.Changed() != want {
						b.Fatal(r, err)
					}
				}
			})
			b.Run(name+"/impl=hand", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if handEqualOrder(snap, o) == want {
						b.Fatal("wrong answer")
					}
				}
			})
		}
	}
}
