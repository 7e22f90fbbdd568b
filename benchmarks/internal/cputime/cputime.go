// Package cputime reads the CPU time of the process, all threads included
// (the garbage collector's too): unlike the time on the clock, it does not
// grow while the process waits for a core that other programs hold, so
// that it gives steadier figures on a shared machine.
package cputime

import (
	"testing"
	"time"
)

// Unit is the name of the metric that [Timer.Report] adds to a benchmark.
const Unit = "cpu-ns/op"

// Timer measures the CPU time of the process from its start.
type Timer struct{ start time.Duration }

// Start starts a timer.
func Start() Timer { return Timer{Process()} }

// Elapsed returns the CPU time of the process since t started.
func (t Timer) Elapsed() time.Duration { return Process() - t.start }

// Report adds the CPU time per operation since t started to b as the
// metric [Unit]; call it right after the b.Loop loop.
func (t Timer) Report(b *testing.B) {
	if e := t.Elapsed(); e > 0 && b.N > 0 {
		b.ReportMetric(float64(e.Nanoseconds())/float64(b.N), Unit)
	}
}
