package cpu

import "testing"

func run(b *testing.B, group string) {
	for _, c := range Cases(group, Sizes) {
		b.Run(c.Name(), c.Bench)
	}
}

// BenchmarkSnapshot takes a deep copy of an order of 10 to 10,000 items.
func BenchmarkSnapshot(b *testing.B) { run(b, Snapshot) }

// BenchmarkDetectEqual asks whether an order changed since its snapshot.
func BenchmarkDetectEqual(b *testing.B) { run(b, Equal) }

// BenchmarkDetectReport asks what changed in an order since its snapshot.
func BenchmarkDetectReport(b *testing.B) { run(b, Report) }
