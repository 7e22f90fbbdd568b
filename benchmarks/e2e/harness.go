package e2e

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/dddkit/dddkit/benchmarks/internal/cputime"
	"github.com/dddkit/dddkit/benchmarks/internal/model"
)

// Options configure a run.
type Options struct {
	// Sizes are the numbers of items of the saved orders.
	Sizes []int
	// LoadSizes are the numbers of items of the loaded orders.
	LoadSizes []int
	// Workloads are the changes made before each save.
	Workloads []model.Workload
	// Rounds is the number of rounds: in each, every contender runs in
	// turn (in a rotated order), so that a burst of load from elsewhere
	// falls on all of them.
	Rounds int
	// Budget bounds the time of a contender's turn in a round; a turn
	// has at least one operation and at most MaxOps.
	Budget time.Duration
	// MaxOps bounds the operations of a turn.
	MaxOps int
	// Warmup is the number of untimed operations before the first round
	// (statement caches, connections).
	Warmup int
	// CountOps is the number of operations of the counting pass.
	CountOps int
	// Contenders are the contenders to run (all those of the backend
	// when nil).
	Contenders []Contender
	// Log receives progress lines (none when nil).
	Log io.Writer
}

// Result is the outcome of one contender on one benchmark.
type Result struct {
	// DB names the server: "PostgreSQL" or "MariaDB".
	DB string
	// Op is "save" or "load".
	Op string
	// Items is the number of items of the order.
	Items int
	// Workload names the change made before each save.
	Workload string
	// Contender and Note are those of the contender.
	Contender, Note string
	// Samples are the durations of the timed operations.
	Samples []time.Duration
	// Median and P95 are taken from Samples.
	Median, P95 time.Duration
	// CPU holds the CPU time of the process during each timed operation
	// (the client's work: library, driver, garbage collector); CPUMedian
	// is their median.
	CPU       []time.Duration
	CPUMedian time.Duration
	// Allocs and Bytes are the heap allocations of the process per
	// operation, measured in the counting pass.
	Allocs, Bytes float64
	// Trips and Stmts are the round trips and statements per operation
	// counted by the proxy ([Proxy], [MySQLProxy]); Rows is the rows
	// inserted, updated and deleted per operation, by PostgreSQL's
	// statistics or by the affected rows MariaDB reports (negative when
	// unknown).
	Trips, Stmts, Rows float64
	// Err reports a failed operation, or a database left in the wrong
	// state (Wrong is then true).
	Err   error
	Wrong bool
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

func (o *Options) contenders(b Backend) []Contender {
	if o.Contenders != nil {
		return o.Contenders
	}
	return b.Contenders()
}

// saveRun is one contender's save state in a run.
type saveRun struct {
	c    Contender
	s    Saver
	ref  *model.Order // the state the stored order must have
	k    int          // the next step
	res  *Result
	mem0 runtime.MemStats
	mem1 runtime.MemStats
}

// step applies the next step of w to the contender and saves it. A timed
// step records the duration of the save; a counted one, the heap
// allocations of the process during the save (the latency pass reads no
// memory statistics, which stop the world).
func (r *saveRun) step(ctx context.Context, w model.Workload, timed, counted bool) error {
	ch := model.Step(r.ref, w, r.k)
	r.k++
	r.ref.Version++
	r.s.Prepare(ch)
	if counted {
		runtime.ReadMemStats(&r.mem0)
	}
	c0 := cputime.Process()
	t0 := time.Now()
	err := r.s.Save(ctx)
	d := time.Since(t0)
	c := cputime.Process() - c0
	if timed {
		r.res.Samples = append(r.res.Samples, d)
		r.res.CPU = append(r.res.CPU, c)
	}
	if counted {
		runtime.ReadMemStats(&r.mem1)
		r.res.Allocs += float64(r.mem1.Mallocs - r.mem0.Mallocs)
		r.res.Bytes += float64(r.mem1.TotalAlloc - r.mem0.TotalAlloc)
	}
	return err
}

func setupSave(ctx context.Context, e Backend, c Contender, dsn string, maxConns int32, n int) (*saveRun, error) {
	s, err := c.Saver(ctx, dsn, maxConns)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	o := model.New(e.NewOrderID(), n)
	if err := s.Setup(ctx, o); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("setup: %w", err)
	}
	stored, err := e.Stored(ctx, o.Number)
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	o.Version = stored.Version
	return &saveRun{c: c, s: s, ref: o}, nil
}

// RunSaves runs the save benchmark: for each size and workload, the timed
// rounds, then the counting pass, then the check of every contender's
// stored order.
func RunSaves(ctx context.Context, e Backend, opts Options) []Result {
	var out []Result
	for _, n := range opts.Sizes {
		for _, w := range opts.Workloads {
			out = append(out, runSaves(ctx, e, opts, n, w)...)
		}
	}
	return out
}

func runSaves(ctx context.Context, e Backend, opts Options, n int, w model.Workload) []Result {
	var runs []*saveRun
	var results []Result
	cs := opts.contenders(e)
	failed := make([]*Result, 0)
	for _, c := range cs {
		if c.Saver == nil {
			continue
		}
		res := &Result{DB: e.Name(), Op: "save", Items: n, Workload: w.String(), Contender: c.Name, Note: c.Note, Trips: -1, Stmts: -1, Rows: -1}
		r, err := setupSave(ctx, e, c, e.DSN(""), 4, n)
		if err != nil {
			res.Err = err
			failed = append(failed, res)
			continue
		}
		r.res = res
		for range opts.Warmup {
			if err := r.step(ctx, w, false, false); err != nil && res.Err == nil {
				res.Err = fmt.Errorf("warm-up: %w", err)
			}
		}
		runs = append(runs, r)
	}
	for round := range opts.Rounds {
		opts.logf("%s save, %d items, %s: round %d of %d", e.Name(), n, w, round+1, opts.Rounds)
		for i := range runs {
			r := runs[(i+round)%len(runs)]
			if r.res.Err != nil {
				continue
			}
			start := time.Now()
			for ops := 0; ops < max(1, opts.MaxOps) && (ops == 0 || time.Since(start) < opts.Budget); ops++ {
				if err := r.step(ctx, w, true, false); err != nil {
					r.res.Err = err
					break
				}
			}
		}
	}
	for _, r := range runs {
		if r.res.Err == nil {
			if err := e.Check(ctx, r.ref); err != nil {
				r.res.Err, r.res.Wrong = err, true
			}
		}
		_ = r.s.Close()
		summarize(r.res)
	}
	for _, r := range runs {
		results = append(results, *r.res)
	}
	for _, f := range failed {
		results = append(results, *f)
	}
	countSaves(ctx, e, opts, n, w, results)
	return results
}

// countSaves runs each contender through the counting proxy, on one
// connection, and fills in the round trips, statements and rows per save.
func countSaves(ctx context.Context, e Backend, opts Options, n int, w model.Workload, results []Result) {
	p, err := e.newCounter()
	if err != nil {
		opts.logf("counting proxy: %v", err)
		return
	}
	defer p.Close()
	byName := map[string]Contender{}
	for _, c := range opts.contenders(e) {
		byName[c.Name] = c
	}
	for i := range results {
		res := &results[i]
		if res.Err != nil {
			continue
		}
		opts.logf("%s save, %d items, %s: counting %s", e.Name(), n, w, res.Contender)
		r, err := setupSave(ctx, e, byName[res.Contender], e.DSN(p.Addr()), 1, n)
		if err != nil {
			res.Err = fmt.Errorf("counting pass: %w", err)
			continue
		}
		r.res = &Result{}
		for range max(1, opts.Warmup) {
			if err := r.step(ctx, w, false, false); err != nil {
				res.Err = fmt.Errorf("counting pass: %w", err)
			}
		}
		rows0 := e.rowsWritten(ctx, r.s)
		p.Start()
		for range opts.CountOps {
			if err := r.step(ctx, w, false, true); err != nil && res.Err == nil {
				res.Err = fmt.Errorf("counting pass: %w", err)
			}
		}
		cnt := p.Stop()
		rows1 := e.rowsWritten(ctx, r.s)
		if res.Err == nil {
			if err := e.Check(ctx, r.ref); err != nil {
				res.Err, res.Wrong = fmt.Errorf("counting pass: %w", err), true
			}
		}
		_ = r.s.Close()
		ops := float64(max(1, opts.CountOps))
		res.Trips, res.Stmts = perOp(cnt.Trips, ops), perOp(cnt.Stmts, ops)
		res.Allocs, res.Bytes = r.res.Allocs/ops, r.res.Bytes/ops
		switch {
		case cnt.Rows >= 0:
			res.Rows = float64(cnt.Rows) / ops
		case rows0 >= 0 && rows1 >= 0:
			res.Rows = float64(rows1-rows0) / ops
		}
	}
}

// perOp divides a count by ops, keeping an unknown count (negative) so.
func perOp(n int64, ops float64) float64 {
	if n < 0 {
		return -1
	}
	return float64(n) / ops
}

// RunLoads runs the load benchmark on an order of each of
// opts.LoadSizes items.
func RunLoads(ctx context.Context, e Backend, opts Options) []Result {
	var out []Result
	for _, n := range opts.LoadSizes {
		out = append(out, runLoads(ctx, e, opts, n)...)
	}
	return out
}

func runLoads(ctx context.Context, e Backend, opts Options, n int) []Result {
	want := model.New(e.NewOrderID(), n)
	if err := e.Insert(ctx, want); err != nil {
		return []Result{{DB: e.Name(), Op: "load", Items: n, Contender: "all", Err: err}}
	}
	type loadRun struct {
		l   Loader
		c   Contender
		res *Result
	}
	var runs []*loadRun
	var results []Result
	var m0, m1 runtime.MemStats
	one := func(r *loadRun, timed, counted bool) {
		if counted {
			runtime.ReadMemStats(&m0)
		}
		c0 := cputime.Process()
		t0 := time.Now()
		o, err := r.l.Load(ctx, want.Number)
		d := time.Since(t0)
		c := cputime.Process() - c0
		if timed {
			r.res.Samples = append(r.res.Samples, d)
			r.res.CPU = append(r.res.CPU, c)
		}
		if counted {
			runtime.ReadMemStats(&m1)
			r.res.Allocs += float64(m1.Mallocs - m0.Mallocs)
			r.res.Bytes += float64(m1.TotalAlloc - m0.TotalAlloc)
		}
		if err == nil {
			if err = Same(o, want); err != nil {
				r.res.Wrong = true
			}
		}
		if err != nil && r.res.Err == nil {
			r.res.Err = err
		}
	}
	for _, c := range opts.contenders(e) {
		if c.Loader == nil {
			continue
		}
		res := &Result{DB: e.Name(), Op: "load", Items: n, Contender: c.LoadName(), Note: c.LoadNote, Trips: -1, Stmts: -1, Rows: -1}
		l, err := c.Loader(ctx, e.DSN(""), 4)
		if err != nil {
			res.Err = err
			results = append(results, *res)
			continue
		}
		r := &loadRun{l: l, c: c, res: res}
		for range opts.Warmup {
			one(r, false, false)
		}
		runs = append(runs, r)
	}
	for round := range opts.Rounds {
		opts.logf("%s load, %d items: round %d of %d", e.Name(), n, round+1, opts.Rounds)
		for i := range runs {
			r := runs[(i+round)%len(runs)]
			start := time.Now()
			for ops := 0; r.res.Err == nil && ops < max(1, opts.MaxOps) && (ops == 0 || time.Since(start) < opts.Budget); ops++ {
				one(r, true, false)
			}
		}
	}
	for _, r := range runs {
		_ = r.l.Close()
		summarize(r.res)
	}
	// The counting pass.
	p, err := e.newCounter()
	if err != nil {
		opts.logf("counting proxy: %v", err)
	} else {
		defer p.Close()
	}
	for _, r := range runs {
		if err != nil || r.res.Err != nil {
			continue
		}
		opts.logf("%s load, %d items: counting %s", e.Name(), n, r.res.Contender)
		l, lerr := r.c.Loader(ctx, e.DSN(p.Addr()), 1)
		if lerr != nil {
			r.res.Err = fmt.Errorf("counting pass: %w", lerr)
			continue
		}
		r.l = l
		for range max(1, opts.Warmup) {
			one(r, false, false)
		}
		p.Start()
		for range opts.CountOps {
			one(r, false, true)
		}
		cnt := p.Stop()
		_ = l.Close()
		ops := float64(max(1, opts.CountOps))
		r.res.Trips, r.res.Stmts = perOp(cnt.Trips, ops), perOp(cnt.Stmts, ops)
		r.res.Allocs, r.res.Bytes = r.res.Allocs/ops, r.res.Bytes/ops
	}
	for _, r := range runs {
		results = append(results, *r.res)
	}
	return results
}

// summarize computes the median and the 95th percentile of res.
func summarize(res *Result) {
	n := len(res.Samples)
	if n == 0 {
		return
	}
	s := slices.Clone(res.Samples)
	slices.Sort(s)
	res.Median = s[n/2]
	if n%2 == 0 {
		res.Median = (s[n/2-1] + s[n/2]) / 2
	}
	// Nearest rank.
	i := (95*n + 99) / 100
	res.P95 = s[min(n, max(1, i))-1]
	if len(res.CPU) > 0 {
		c := slices.Clone(res.CPU)
		slices.Sort(c)
		res.CPUMedian = c[len(c)/2]
	}
}
