// Command report runs every benchmark of this module (the in-memory
// snapshot and change detection benchmarks, the saves and loads on
// PostgreSQL when DDDKIT_TEST_POSTGRES_DSN is set, and on MariaDB when
// DDDKIT_TEST_MYSQL_DSN is set), prints one markdown table of every
// figure with its ratios to dddkit's and to the hand-written floor,
// followed by the targets met and missed, and writes an SVG chart of the
// save latency against the order size.
//
// Usage, from the benchmarks directory:
//
//	DDDKIT_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//	DDDKIT_TEST_MYSQL_DSN='root@tcp(127.0.0.1:3306)/test' go run ./cmd/report
//
// Flags set the number of rounds and the time of each turn; -quick runs a
// short version to check that everything works.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dddkit/dddkit/benchmarks/cpu"
	"github.com/dddkit/dddkit/benchmarks/e2e"
	"github.com/dddkit/dddkit/benchmarks/internal/cputime"
	"github.com/dddkit/dddkit/benchmarks/internal/model"
)

func main() {
	testing.Init()
	var (
		quick     = flag.Bool("quick", false, "a short run: few rounds, short turns")
		only      = flag.String("only", "", `run only "cpu" or "e2e"`)
		cpuRounds = flag.Int("cpu-rounds", 15, "rounds of the in-memory benchmarks (the median is reported)")
		cpuTime   = flag.Duration("cpu-benchtime", 40*time.Millisecond, "time of one in-memory benchmark in a round")
		rounds    = flag.Int("rounds", 40, "rounds of the database benchmarks")
		budget    = flag.Duration("budget", 40*time.Millisecond, "time of a contender's turn in a round")
		maxOps    = flag.Int("max-ops", 20, "operations of a contender's turn at most")
		warmup    = flag.Int("warmup", 5, "untimed operations before the first round")
		countOps  = flag.Int("count-ops", 10, "operations of the counting pass")
		svgPath   = flag.String("svg", "../docs/benchmarks-save.svg", "where to write the chart (empty: nowhere)")
		mdPath    = flag.String("md", "", "also write the report to this file")
		filter    = flag.String("contenders", "", "run only the database contenders whose names contain one of these comma-separated words")
		dbs       = flag.String("db", "postgres,mariadb", "the comma-separated databases to run on (postgres, mariadb), each when its DSN is set")
		sizes     = flag.String("sizes", "100,1000", "the comma-separated sizes of the saved orders")
	)
	flag.Parse()
	if *quick {
		*cpuRounds, *cpuTime = 1, 20*time.Millisecond
		*rounds, *budget, *maxOps, *warmup, *countOps = 2, 50*time.Millisecond, 5, 2, 3
	}
	if err := flag.Set("test.benchtime", cpuTime.String()); err != nil {
		fatal(err)
	}
	ctx := context.Background()
	var rows []row
	info := machine()
	if *only == "" || *only == "cpu" {
		rows = append(rows, runCPU(*cpuRounds)...)
	}
	var saves []e2e.Result
	if *only == "" || *only == "e2e" {
		opts := e2e.Options{
			Sizes:     parseSizes(*sizes),
			LoadSizes: parseSizes(*sizes),
			Workloads: []model.Workload{model.OneItem, model.TenPercent},
			Rounds:    *rounds, Budget: *budget, MaxOps: *maxOps, Warmup: *warmup, CountOps: *countOps,
			Log: os.Stderr,
		}
		want := strings.Split(*dbs, ",")
		var backends []e2e.Backend
		if slices.Contains(want, "postgres") {
			if b, lines := openPostgres(ctx); b != nil {
				backends = append(backends, b)
				info = append(info, lines...)
			}
		}
		if slices.Contains(want, "mariadb") {
			if b, lines := openMariaDB(ctx); b != nil {
				backends = append(backends, b)
				info = append(info, lines...)
			}
		}
		for _, b := range backends {
			o := opts
			if *filter != "" {
				o.Contenders = filterContenders(b.Contenders(), *filter)
			}
			s := e2e.RunSaves(ctx, b, o)
			l := e2e.RunLoads(ctx, b, o)
			if err := b.Close(ctx); err != nil {
				fmt.Fprintf(os.Stderr, "report: drop the %s schema or database: %v\n", b.Name(), err)
			}
			saves = append(saves, s...)
			rows = append(rows, e2eRows(s, e2e.DddkitSave)...)
			rows = append(rows, e2eRows(l, e2e.DddkitFind)...)
		}
	}
	var out strings.Builder
	writeReport(&out, info, rows)
	fmt.Print(out.String())
	if *mdPath != "" {
		if err := os.WriteFile(*mdPath, []byte(out.String()), 0o644); err != nil {
			fatal(err)
		}
	}
	if *svgPath != "" && len(saves) > 0 {
		if err := os.WriteFile(*svgPath, chart(saves), 0o644); err != nil {
			fatal(err)
		}
		fmt.Fprintln(os.Stderr, "report: wrote", *svgPath)
	}
}

// openPostgres opens the PostgreSQL backend, or says why not, and
// describes it.
func openPostgres(ctx context.Context) (e2e.Backend, []string) {
	dsn := os.Getenv(e2e.DSNVar)
	if dsn == "" {
		fmt.Fprintf(os.Stderr, "report: %s is not set: the PostgreSQL benchmarks are skipped\n", e2e.DSNVar)
		return nil, nil
	}
	env, err := e2e.Open(ctx, dsn)
	if err != nil {
		fatal(err)
	}
	var info []string
	if v, err := env.ServerVersion(ctx); err == nil {
		info = append(info, "PostgreSQL: "+v)
	} else {
		fmt.Fprintln(os.Stderr, "report: server version:", err)
	}
	if v, err := env.Setting(ctx, "synchronous_commit"); err == nil {
		info = append(info, "PostgreSQL commit settings, on every connection of every contender: synchronous_commit = "+v+
			" (checked on a connection opened with the contenders' URL)")
	}
	if v, err := env.Setting(ctx, "fsync"); err == nil {
		info = append(info, "PostgreSQL server: fsync = "+v)
	}
	return env, info
}

// openMariaDB opens the MariaDB backend, or says why not, and describes
// it.
func openMariaDB(ctx context.Context) (e2e.Backend, []string) {
	dsn := os.Getenv(e2e.MySQLDSNVar)
	if dsn == "" {
		fmt.Fprintf(os.Stderr, "report: %s is not set: the MariaDB benchmarks are skipped\n", e2e.MySQLDSNVar)
		return nil, nil
	}
	env, err := e2e.OpenMySQL(ctx, dsn)
	if err != nil {
		fatal(err)
	}
	var info []string
	if v, err := env.ServerVersion(ctx); err == nil {
		info = append(info, "MariaDB: "+v+", through go-sql-driver/mysql with the DSN of sqlstore.MySQLDSN for every contender")
	} else {
		fmt.Fprintln(os.Stderr, "report: server version:", err)
	}
	var vars []string
	for _, name := range []string{"innodb_flush_log_at_trx_commit", "sync_binlog", "log_bin"} {
		if v, err := env.Variable(ctx, name); err == nil {
			vars = append(vars, name+" = "+v)
		}
	}
	if len(vars) > 0 {
		info = append(info, "MariaDB server (global settings, the server's own): "+strings.Join(vars, ", "))
	}
	return env, info
}

// filterContenders keeps the contenders whose names contain one of the
// comma-separated words of filter.
func filterContenders(cs []e2e.Contender, filter string) []e2e.Contender {
	out := []e2e.Contender{}
	for _, c := range cs {
		for _, f := range strings.Split(filter, ",") {
			if f != "" && strings.Contains(c.Name, f) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

func parseSizes(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			fatal(fmt.Errorf("-sizes: bad size %q", f))
		}
		out = append(out, n)
	}
	return out
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "report:", err)
	os.Exit(1)
}

// machine describes where the report runs.
func machine() []string {
	model := "unknown"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	rev := "unknown (not a git checkout)"
	if b, err := exec.Command("git", "-C", "..", "describe", "--always", "--dirty").Output(); err == nil {
		rev = strings.TrimSpace(string(b))
	}
	return []string{
		"dddkit: commit " + rev,
		fmt.Sprintf("CPU: %s, %d cores (nproc), GOMAXPROCS %d", model, runtime.NumCPU(), runtime.GOMAXPROCS(0)),
		fmt.Sprintf("Go: %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH),
	}
}

// row is one line of the table.
type row struct {
	group, items, kase, contender string
	median, p95                   float64 // ns, on the clock; p95 < 0 when not measured
	cpu                           float64 // CPU time of the process per operation, ns; 0 when not measured
	byCPU                         bool    // the ratio is of the CPU time
	bytes, allocs                 float64
	trips, stmts, rowsWritten     float64 // < 0 when not measured
	check, note                   string
	ref                           bool // dddkit's figure, the denominator of the group
	ratio                         float64
	floorRatio                    float64 // to the hand-written floor of the group; 0 when it has none
}

// isFloor reports whether a contender is the hand-written floor of its
// group.
func isFloor(contender string) bool { return strings.HasPrefix(contender, "hand-written") }

// figure is what the ratios compare: the CPU time per operation of an
// in-memory case, the median latency of an operation on PostgreSQL.
func (r row) figure() float64 {
	if r.byCPU {
		return r.cpu
	}
	return r.median
}

// runCPU runs the in-memory cases in rounds. The contenders of one group,
// size and state run one after the other, in a rotated order, before the
// next round, so that a burst of load from elsewhere falls on all of them;
// the median time of each over the rounds is kept.
func runCPU(rounds int) []row {
	cases := cpu.Cases("", cpu.Sizes)
	times := make([][]float64, len(cases))
	cpus := make([][]float64, len(cases))
	last := make([]testing.BenchmarkResult, len(cases))
	failed := make([]bool, len(cases))
	var clusters [][]int
	at := map[string]int{}
	for i, c := range cases {
		k := fmt.Sprint(c.Group, "|", c.Items, "|", c.State)
		j, ok := at[k]
		if !ok {
			j = len(clusters)
			at[k] = j
			clusters = append(clusters, nil)
		}
		clusters[j] = append(clusters[j], i)
	}
	for ci, cl := range clusters {
		c := cases[cl[0]]
		fmt.Fprintf(os.Stderr, "in-memory benchmarks %d of %d: %s, %d items %s\n", ci+1, len(clusters), c.Group, c.Items, c.State)
		for r := range rounds {
			for j := range cl {
				i := cl[(j+r)%len(cl)]
				res := testing.Benchmark(cases[i].Bench)
				if res.N == 0 {
					failed[i] = true
					continue
				}
				times[i] = append(times[i], float64(res.T.Nanoseconds())/float64(res.N))
				if c := res.Extra[cputime.Unit]; c > 0 {
					cpus[i] = append(cpus[i], c)
				}
				last[i] = res
			}
		}
	}
	var rows []row
	for i, c := range cases {
		r := row{group: c.Group, items: fmt.Sprint(c.Items), kase: c.State, contender: c.Contender,
			p95: -1, trips: -1, stmts: -1, rowsWritten: -1, check: "ok"}
		r.note = c.Note
		if r.kase == "" {
			r.kase = "deep copy"
		}
		if failed[i] || len(times[i]) == 0 {
			r.check = "FAILED"
		} else {
			slices.Sort(times[i])
			r.median = times[i][len(times[i])/2]
			if len(cpus[i]) > 0 {
				slices.Sort(cpus[i])
				r.cpu, r.byCPU = cpus[i][len(cpus[i])/2], true
			}
			r.bytes = float64(last[i].AllocedBytesPerOp())
			r.allocs = float64(last[i].AllocsPerOp())
		}
		r.ref = strings.HasPrefix(c.Contender, cpu.Dddkit) && !strings.Contains(c.Contender, "[")
		rows = append(rows, r)
	}
	return rows
}

func e2eRows(rs []e2e.Result, ref string) []row {
	var rows []row
	for _, x := range rs {
		r := row{group: x.DB + " " + x.Op, items: fmt.Sprint(x.Items), kase: x.Workload, contender: x.Contender,
			median: float64(x.Median.Nanoseconds()), p95: float64(x.P95.Nanoseconds()), cpu: float64(x.CPUMedian.Nanoseconds()),
			bytes: x.Bytes, allocs: x.Allocs, trips: x.Trips, stmts: x.Stmts, rowsWritten: x.Rows, check: "ok",
			ref: x.Contender == ref}
		if x.Op == "load" {
			r.kase = "load the order"
		}
		r.note = x.Note
		switch {
		case x.Wrong:
			r.check = "WRONG: " + x.Err.Error()
		case x.Err != nil:
			r.check = "FAILED: " + x.Err.Error()
		}
		if len(x.Samples) == 0 {
			r.median = 0
		}
		rows = append(rows, r)
	}
	return rows
}

// ratios sets each row's ratio to the dddkit row of its group, size and
// case, and to the hand-written floor's.
func ratios(rows []row) {
	refs := map[string]float64{}
	floors := map[string]float64{}
	key := func(r row) string { return r.group + "|" + r.items + "|" + r.kase }
	for _, r := range rows {
		if r.ref && r.figure() > 0 {
			refs[key(r)] = r.figure()
		}
		if isFloor(r.contender) && r.figure() > 0 {
			floors[key(r)] = r.figure()
		}
	}
	for i := range rows {
		if d := refs[key(rows[i])]; d > 0 && rows[i].figure() > 0 {
			rows[i].ratio = rows[i].figure() / d
		}
		if d := floors[key(rows[i])]; d > 0 && rows[i].figure() > 0 {
			rows[i].floorRatio = rows[i].figure() / d
		}
	}
}

func writeReport(w io.Writer, info []string, rows []row) {
	ratios(rows)
	for _, s := range info {
		fmt.Fprintf(w, "- %s\n", s)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| benchmark | items | case | contender | CPU/op | median | p95 | ratio to dddkit | ratio to floor | B/op | allocs/op | round trips | statements | rows written | check |")
	fmt.Fprintln(w, "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range rows {
		cpuT, med, p95, ratio, floor := "–", "–", "–", "–", "–"
		if r.cpu > 0 {
			cpuT = dur(r.cpu)
		}
		if r.median > 0 {
			med = dur(r.median)
		}
		if r.p95 > 0 {
			p95 = dur(r.p95)
		}
		if r.ratio > 0 {
			ratio = fmtRatio(r.ratio)
		}
		if r.floorRatio > 0 {
			floor = fmtRatio(r.floorRatio)
		}
		name := r.contender
		if r.ref {
			name = "**" + name + "**"
		}
		check := r.check
		if check != "ok" {
			check = "**" + check + "**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.group, num(r.items), r.kase, name, cpuT, med, p95, ratio, floor, count(r.bytes), count(r.allocs),
			perOp(r.trips), perOp(r.stmts), perOp(r.rowsWritten), check)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Contenders:")
	fmt.Fprintln(w)
	seen := map[string]bool{}
	for _, r := range rows {
		k := r.group + "|" + r.contender
		if r.note == "" || seen[k] {
			continue
		}
		seen[k] = true
		fmt.Fprintf(w, "- %s, %s: %s\n", r.group, r.contender, r.note)
	}
	fmt.Fprintln(w)
	writeTargets(w, rows)
}

// num groups the digits of an integer in thousands: 1234567 is 1,234,567.
func num(s string) string {
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func dur(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e4:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	case ns < 1e5:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	case ns < 1e6:
		return fmt.Sprintf("%.0f µs", ns/1e3)
	case ns < 1e7:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns < 1e8:
		return fmt.Sprintf("%.1f ms", ns/1e6)
	default:
		return fmt.Sprintf("%.0f ms", ns/1e6)
	}
}

func fmtRatio(x float64) string {
	switch {
	case x < 0.01:
		return "<0.01x"
	case x < 10:
		return fmt.Sprintf("%.2fx", x)
	case x < 100:
		return fmt.Sprintf("%.1fx", x)
	default:
		return fmt.Sprintf("%.0fx", x)
	}
}

func count(x float64) string {
	if x < 0 {
		return "–"
	}
	if x >= 100 || x == float64(int64(x)) {
		return num(fmt.Sprintf("%.0f", x))
	}
	return fmt.Sprintf("%.1f", x)
}

func perOp(x float64) string {
	if x < 0 {
		return "–"
	}
	return count(x)
}

// find returns the row of the given group, items, case and contender
// prefix.
func find(rows []row, group, items, kase, contender string) (row, bool) {
	for _, r := range rows {
		if r.group == group && r.items == items && r.kase == kase && r.contender == contender && r.median > 0 {
			return r, true
		}
	}
	return row{}, false
}

func writeTargets(w io.Writer, rows []row) {
	fmt.Fprintln(w, "Targets (ratios from this run: of the CPU time per operation in memory, of the median latency on a database):")
	fmt.Fprintln(w)
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	ratio := func(group, items, kase, num, den string) (float64, row, bool) {
		a, ok1 := find(rows, group, items, kase, num)
		b, ok2 := find(rows, group, items, kase, den)
		if !ok1 || !ok2 {
			return 0, row{}, false
		}
		return a.figure() / b.figure(), a, true
	}
	if x, a, ok := ratio(cpu.Equal, "1000", cpu.Unchanged, "dddkit diff.Equal", "hand-written comparison"); ok {
		fmt.Fprintf(w, "- change detection, unchanged 1,000 items, diff.Equal at most 1.5x the hand-written comparison with 0 allocations: %s (%s, %.0f allocs/op)\n",
			verdict(x <= 1.5 && a.allocs == 0), fmtRatio(x), a.allocs)
	}
	if x, a, ok := ratio(cpu.Report, "1000", cpu.Unchanged, "dddkit diff.Compare", "dddkit diff.Compare"); ok {
		h, okh := find(rows, cpu.Equal, "1000", cpu.Unchanged, "hand-written comparison")
		if okh {
			x = a.figure() / h.figure()
			fmt.Fprintf(w, "- the same through diff.Compare (what a save runs): %s (%s, %.0f allocs/op)\n",
				verdict(x <= 1.5 && a.allocs == 0), fmtRatio(x), a.allocs)
		}
	}
	if x, _, ok := ratio(cpu.Equal, "1000", cpu.Unchanged, "go-cmp cmp.Equal", "dddkit diff.Equal"); ok {
		fmt.Fprintf(w, "- change detection, unchanged 1,000 items, at least 100x faster than cmp.Equal: %s (cmp.Equal takes %s the time of diff.Equal)\n",
			verdict(x >= 100), fmtRatio(x))
	}
	for _, n := range cpu.Sizes {
		items := fmt.Sprint(n)
		if x, _, ok := ratio(cpu.Snapshot, items, "deep copy", "dddkit tracking.Copy", "hand-written copy"); ok {
			fmt.Fprintf(w, "- snapshot of %s items at most 1.3x the hand-written copy: %s (%s)\n", num(items), verdict(x <= 1.3), fmtRatio(x))
		}
	}
	for _, wl := range []model.Workload{model.OneItem, model.TenPercent} {
		if x, _, ok := ratio("PostgreSQL save", "1000", wl.String(), e2e.DddkitSave, "hand-written SQL"); ok {
			fmt.Fprintf(w, "- save of 1,000 items (%s) within 1.3x of hand-written SQL: %s (%s, medians)\n", wl, verdict(x <= 1.3), fmtRatio(x))
		}
		if x, _, ok := ratio("PostgreSQL save", "1000", wl.String(), "GORM", e2e.DddkitSave); ok {
			fmt.Fprintf(w, "- save of 1,000 items (%s) at least 25x faster than GORM's full save: %s (GORM takes %s the time)\n", wl, verdict(x >= 25), fmtRatio(x))
		}
	}
	for _, n := range []string{"100", "1000"} {
		for _, wl := range []model.Workload{model.OneItem, model.TenPercent} {
			x, a, ok := ratio("MariaDB save", n, wl.String(), e2e.DddkitSave, e2e.Hand)
			if !ok {
				continue
			}
			h, _ := find(rows, "MariaDB save", n, wl.String(), e2e.Hand)
			trips := a.trips >= 0 && a.trips == h.trips
			fmt.Fprintf(w, "- MariaDB save of %s items (%s) within 1.3x of hand-written SQL, in the same number of round trips: %s (%s, medians; round trips per save: dddkit %s, hand-written %s)\n",
				num(n), wl, verdict(x <= 1.3 && trips), fmtRatio(x), perOp(a.trips), perOp(h.trips))
		}
	}
}
