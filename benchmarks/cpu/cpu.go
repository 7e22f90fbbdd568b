// Package cpu holds the in-memory benchmarks: taking a snapshot of an order
// (a deep copy) and detecting its changes against the snapshot, by dddkit
// and by the other ways a Go program can do either. The benchmarks of this
// package's tests and the report command (../cmd/report) run the same
// cases, listed by [Cases].
package cpu

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	clone "github.com/huandu/go-clone"
	r3diff "github.com/r3labs/diff/v3"

	"github.com/dddkit/dddkit/benchmarks/internal/cputime"
	"github.com/dddkit/dddkit/benchmarks/internal/model"
	"github.com/dddkit/dddkit/diff"
	"github.com/dddkit/dddkit/tracking"
)

// The groups of cases.
const (
	// Snapshot is a deep copy of the order.
	Snapshot = "snapshot"
	// Equal asks whether the order changed since its snapshot.
	Equal = "detect: changed?"
	// Report asks what changed: which items, which fields.
	Report = "detect: what changed"
)

// The states of the order compared with its snapshot.
const (
	// Unchanged is the order as its snapshot.
	Unchanged = "unchanged"
	// OneChanged has one item's quantity changed.
	OneChanged = "one item changed"
)

// Dddkit is the contender name prefix of dddkit's own functions; the report
// computes every ratio against the dddkit case of the same group, size and
// state.
const Dddkit = "dddkit"

// Sizes are the numbers of items of the orders benchmarked.
var Sizes = []int{10, 100, 1000, 10000}

// Case is one benchmark: a contender doing one thing to one order.
type Case struct {
	// Group is Snapshot, Equal or Report.
	Group string
	// Items is the number of items of the order.
	Items int
	// State is Unchanged or OneChanged (empty for a snapshot).
	State string
	// Contender names who does the work, such as "dddkit tracking.Copy".
	Contender string
	// Note says what is special about the case, if anything.
	Note string
	// Bench is the benchmark body; it fails the benchmark on a wrong
	// answer, never on a timing.
	Bench func(b *testing.B)
}

// Name returns the case's name as a sub-benchmark path.
func (c Case) Name() string {
	s := fmt.Sprintf("items=%d", c.Items)
	if c.State != "" {
		s += "/" + c.State
	}
	return s + "/" + c.Contender
}

var (
	sinkOrder *model.Order
	sinkAny   any
)

// Cases returns every case of group (all groups when group is empty) for
// the given sizes, in a stable order.
func Cases(group string, sizes []int) []Case {
	var cs []Case
	for _, n := range sizes {
		if group == "" || group == Snapshot {
			cs = append(cs, snapshotCases(n)...)
		}
		for _, state := range []string{Unchanged, OneChanged} {
			if group == "" || group == Equal {
				cs = append(cs, equalCases(n, state)...)
			}
			if group == "" || group == Report {
				cs = append(cs, reportCases(n, state)...)
			}
		}
		if n == 1000 && (group == "" || group == Snapshot || group == Equal) {
			cs = append(cs, sealedCases(n, group)...)
		}
	}
	return cs
}

func snapshotCases(n int) []Case {
	o := model.New(1, n)
	c := func(name, note string, f func(b *testing.B)) Case {
		return Case{Group: Snapshot, Items: n, Contender: name, Note: note, Bench: f}
	}
	return []Case{
		c("dddkit tracking.Copy", "", func(b *testing.B) {
			b.ReportAllocs()
			t := cputime.Start()
			for b.Loop() {
				s, err := tracking.Copy(o)
				if err != nil {
					b.Fatal(err)
				}
				sinkOrder = s
			}
			t.Report(b)
			checkCopy(b, o, sinkOrder)
		}),
		c("hand-written copy", "floor", func(b *testing.B) {
			b.ReportAllocs()
			t := cputime.Start()
			for b.Loop() {
				sinkOrder = model.CopyHand(o)
			}
			t.Report(b)
			checkCopy(b, o, sinkOrder)
		}),
		c("huandu/go-clone Clone", "", func(b *testing.B) {
			b.ReportAllocs()
			t := cputime.Start()
			for b.Loop() {
				sinkOrder = clone.Clone(o).(*model.Order)
			}
			t.Report(b)
			checkCopy(b, o, sinkOrder)
		}),
		c("encoding/gob round trip", "", func(b *testing.B) {
			b.ReportAllocs()
			var buf bytes.Buffer
			t := cputime.Start()
			for b.Loop() {
				buf.Reset()
				if err := gob.NewEncoder(&buf).Encode(o); err != nil {
					b.Fatal(err)
				}
				s := new(model.Order)
				if err := gob.NewDecoder(&buf).Decode(s); err != nil {
					b.Fatal(err)
				}
				sinkOrder = s
			}
			t.Report(b)
			checkCopy(b, o, sinkOrder)
		}),
	}
}

// checkCopy fails b unless c is a deep copy of o sharing no item.
func checkCopy(b *testing.B, o, c *model.Order) {
	b.Helper()
	if c == nil || c == o || !reflect.DeepEqual(o, c) {
		b.Fatal("not a copy")
	}
	for i := range o.Items {
		if o.Items[i] == c.Items[i] {
			b.Fatal("the copy shares an item")
		}
	}
}

// pair returns an order of n items and its snapshot, changed as state says.
func pair(n int, state string) (snap, cur *model.Order, want bool) {
	cur = model.New(1, n)
	snap = model.CopyHand(cur)
	if state == OneChanged {
		cur.Items[n/2].Quantity++
		cur.Recompute()
		return snap, cur, true
	}
	return snap, cur, false
}

// cmpOpts lets go-cmp read unexported fields, as a comparison of domain
// models needs (the fields of model are exported; the option is kept so
// that the cost is that of the configuration a domain model needs).
var cmpOpts = cmp.Exporter(func(reflect.Type) bool { return true })

func equalCases(n int, state string) []Case {
	snap, cur, want := pair(n, state)
	c := func(name, note string, f func(b *testing.B)) Case {
		return Case{Group: Equal, Items: n, State: state, Contender: name, Note: note, Bench: f}
	}
	return []Case{
		c("dddkit diff.Equal", "", func(b *testing.B) {
			b.ReportAllocs()
			t := cputime.Start()
			for b.Loop() {
				eq, err := diff.Equal(snap, cur)
				if err != nil || eq == want {
					b.Fatal("wrong answer", err)
				}
			}
			t.Report(b)
		}),
		c("hand-written comparison", "floor; stops at the first difference", func(b *testing.B) {
			b.ReportAllocs()
			t := cputime.Start()
			for b.Loop() {
				if model.EqualHand(snap, cur) == want {
					b.Fatal("wrong answer")
				}
			}
			t.Report(b)
		}),
		c("reflect.DeepEqual", "matches items by position", func(b *testing.B) {
			b.ReportAllocs()
			t := cputime.Start()
			for b.Loop() {
				if reflect.DeepEqual(snap, cur) == want {
					b.Fatal("wrong answer")
				}
			}
			t.Report(b)
		}),
		c("go-cmp cmp.Equal", "cmp.Exporter for unexported fields; matches items by position", func(b *testing.B) {
			b.ReportAllocs()
			t := cputime.Start()
			for b.Loop() {
				if cmp.Equal(snap, cur, cmpOpts) == want {
					b.Fatal("wrong answer")
				}
			}
			t.Report(b)
		}),
	}
}

func reportCases(n int, state string) []Case {
	snap, cur, want := pair(n, state)
	c := func(name, note string, f func(b *testing.B)) Case {
		return Case{Group: Report, Items: n, State: state, Contender: name, Note: note, Bench: f}
	}
	return []Case{
		c("dddkit diff.Compare", "items matched by identity; changed fields with old and new values", func(b *testing.B) {
			b.ReportAllocs()
			t := cputime.Start()
			for b.Loop() {
				r, err := diff.Compare(snap, cur)
				if err != nil || r.Changed() != want {
					b.Fatal("wrong answer", err)
				}
			}
			t.Report(b)
		}),
		c("go-cmp cmp.Diff", "cmp.Exporter; a text report, items by position", func(b *testing.B) {
			b.ReportAllocs()
			t := cputime.Start()
			for b.Loop() {
				if d := cmp.Diff(snap, cur, cmpOpts); (d != "") != want {
					b.Fatal("wrong answer")
				}
			}
			t.Report(b)
		}),
		c("r3labs/diff Diff", "items matched by the identifier tag", func(b *testing.B) {
			b.ReportAllocs()
			t := cputime.Start()
			for b.Loop() {
				cl, err := r3diff.Diff(snap, cur)
				if err != nil || (len(cl) != 0) != want {
					b.Fatal("wrong answer", err, len(cl))
				}
			}
			t.Report(b)
		}),
	}
}

// sealedCases run on the order with unexported fields and identity
// methods, as the order example declares it; only the contenders that can
// read unexported fields from another package run.
func sealedCases(n int, group string) []Case {
	o := model.Seal(model.New(1, n))
	snap := clone.Clone(o).(*model.Sealed)
	var cs []Case
	const note = "the same order with unexported fields and ID methods, as the order example declares it"
	if group == "" || group == Snapshot {
		cs = append(cs,
			Case{Group: Snapshot, Items: n, Contender: "dddkit tracking.Copy [unexported]", Note: note, Bench: func(b *testing.B) {
				b.ReportAllocs()
				t := cputime.Start()
				for b.Loop() {
					s, err := tracking.Copy(o)
					if err != nil {
						b.Fatal(err)
					}
					sinkAny = s
				}
				t.Report(b)
			}},
			Case{Group: Snapshot, Items: n, Contender: "huandu/go-clone Clone [unexported]", Note: note, Bench: func(b *testing.B) {
				b.ReportAllocs()
				t := cputime.Start()
				for b.Loop() {
					sinkAny = clone.Clone(o)
				}
				t.Report(b)
			}},
		)
	}
	if group == "" || group == Equal {
		opt := cmp.AllowUnexported(model.SealedTypes()...)
		cs = append(cs,
			Case{Group: Equal, Items: n, State: Unchanged, Contender: "dddkit diff.Equal [unexported]", Note: note, Bench: func(b *testing.B) {
				b.ReportAllocs()
				t := cputime.Start()
				for b.Loop() {
					if eq, err := diff.Equal(snap, o); err != nil || !eq {
						b.Fatal("wrong answer", err)
					}
				}
				t.Report(b)
			}},
			Case{Group: Equal, Items: n, State: Unchanged, Contender: "go-cmp cmp.Equal [unexported]", Note: note + "; cmp.AllowUnexported", Bench: func(b *testing.B) {
				b.ReportAllocs()
				t := cputime.Start()
				for b.Loop() {
					if !cmp.Equal(snap, o, opt) {
						b.Fatal("wrong answer")
					}
				}
				t.Report(b)
			}},
		)
	}
	return cs
}
