package tracking

import (
	"strconv"
	"testing"
)

// sink keeps benchmark results alive.
var sink *Order

// BenchmarkSnapshot compares Copy with a hand-written deep copy of the
// fixture aggregate, as a Tracker takes a snapshot on load and save.
func BenchmarkSnapshot(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		o := newOrder(n)
		b.Run("items="+strconv.Itoa(n), func(b *testing.B) {
			b.Run("impl=dddkit", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					c, err := Copy(o)
					if err != nil {
						b.Fatal(err)
					}
					sink = c
				}
			})
			b.Run("impl=hand", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					sink = handCopyOrder(o)
				}
			})
		})
	}
}
