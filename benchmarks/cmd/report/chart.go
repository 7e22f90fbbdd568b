package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/dddkit/dddkit/benchmarks/e2e"
	"github.com/dddkit/dddkit/benchmarks/internal/model"
)

// palette holds colours told apart with every common colour blindness
// (Okabe and Ito), dddkit's first.
var palette = []string{"#D55E00", "#E69F00", "#009E73", "#0072B2", "#000000", "#CC79A7", "#999999", "#F0E442"}

// series is the line of one contender on one database.
type series struct {
	db, contender string
}

// label names a series in the legend.
func (s series) label() string { return s.contender }

// dash is the stroke pattern of a database's lines: PostgreSQL's solid,
// MariaDB's dashed.
func dash(db string) string {
	if db == "PostgreSQL" {
		return ""
	}
	return ` stroke-dasharray="8 4"`
}

// marker draws a point of a database's line: PostgreSQL's a circle,
// MariaDB's a square.
func marker(db string, x, y float64, colour string) string {
	if db == "PostgreSQL" {
		return fmt.Sprintf(`<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`, x, y, colour)
	}
	return fmt.Sprintf(`<rect x="%.1f" y="%.1f" width="7" height="7" fill="%s"/>`, x-3.5, y-3.5, colour)
}

// chart draws the median save latency against the order size, one panel
// per workload and one line per contender and database (a contender has
// the same colour on each database), on logarithmic axes.
func chart(saves []e2e.Result) []byte {
	const (
		W, H             = 1090, 470
		panelW, panelH   = 330, 330
		top, left, gap   = 60, 80, 70
		legendX, legendW = left + 2*panelW + gap + 30, 220
	)
	var names []string // contenders, in order of appearance: their colours
	var lines []series
	var dbs []string
	var sizes []int
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range saves {
		if !slices.Contains(names, r.Contender) {
			names = append(names, r.Contender)
		}
		if s := (series{r.DB, r.Contender}); !slices.Contains(lines, s) {
			lines = append(lines, s)
		}
		if !slices.Contains(dbs, r.DB) {
			dbs = append(dbs, r.DB)
		}
		if !slices.Contains(sizes, r.Items) {
			sizes = append(sizes, r.Items)
		}
		if r.Median > 0 {
			v := float64(r.Median.Microseconds())
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	slices.Sort(sizes)
	if len(sizes) == 0 || math.IsInf(lo, 0) {
		return nil
	}
	yLo, yHi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yHi == yLo {
		yHi++
	}
	xLo, xHi := math.Log10(float64(sizes[0])), math.Log10(float64(sizes[len(sizes)-1]))
	if xHi == xLo {
		xHi++
	}

	var b bytes.Buffer
	esc := func(s string) string {
		var e bytes.Buffer
		_ = xml.EscapeText(&e, []byte(s))
		return e.String()
	}
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="13">`, W, H, W, H)
	p(`<rect width="100%%" height="100%%" fill="white"/>`)
	p(`<text x="%d" y="28" font-size="17" font-weight="bold">Save latency on %s against order size (median, log scales)</text>`, left, esc(strings.Join(dbs, " and ")))
	colour := func(contender string) string { return palette[slices.Index(names, contender)%len(palette)] }
	width := func(contender string) float64 {
		if slices.Index(names, contender) == 0 {
			return 3.5
		}
		return 2
	}
	for pi, w := range []model.Workload{model.OneItem, model.TenPercent} {
		x0 := float64(left + pi*(panelW+gap))
		y0 := float64(top)
		px := func(n int) float64 {
			return x0 + 20 + (math.Log10(float64(n))-xLo)/(xHi-xLo)*(panelW-40)
		}
		py := func(us float64) float64 {
			return y0 + panelH - (math.Log10(us)-yLo)/(yHi-yLo)*panelH
		}
		p(`<text x="%.0f" y="%.0f" font-weight="bold">(%c) %s</text>`, x0, y0-10, 'a'+pi, esc(w.String()))
		p(`<rect x="%.0f" y="%.0f" width="%d" height="%d" fill="none" stroke="#888"/>`, x0, y0, panelW, panelH)
		for e := yLo; e <= yHi; e++ {
			for _, m := range []float64{1, 2, 5} {
				v := m * math.Pow(10, e)
				if math.Log10(v) > yHi+1e-9 {
					continue
				}
				y := py(v)
				stroke := "#eee"
				if m == 1 {
					stroke = "#ccc"
				}
				p(`<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="%s"/>`, x0, y, x0+panelW, y, stroke)
				{
					p(`<text x="%.0f" y="%.1f" text-anchor="end" fill="#444" font-size="11">%s</text>`, x0-6, y+4, latencyLabel(v))
				}
			}
		}
		for _, n := range sizes {
			x := px(n)
			p(`<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#ccc"/>`, x, y0, x, y0+panelH)
			p(`<text x="%.1f" y="%.0f" text-anchor="middle" fill="#444">%s</text>`, x, y0+panelH+18, num(fmt.Sprint(n)))
		}
		p(`<text x="%.0f" y="%.0f" text-anchor="middle">items in the order</text>`, x0+panelW/2, y0+panelH+40)
		for _, l := range lines {
			var pts [][2]float64
			for _, r := range saves {
				if r.DB == l.db && r.Contender == l.contender && r.Workload == w.String() && r.Median > 0 {
					pts = append(pts, [2]float64{px(r.Items), py(float64(r.Median.Nanoseconds()) / 1e3)})
				}
			}
			if len(pts) == 0 {
				continue
			}
			var ps []string
			for _, pt := range pts {
				ps = append(ps, fmt.Sprintf("%.1f,%.1f", pt[0], pt[1]))
			}
			c := colour(l.contender)
			p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="%.1f"%s/>`, join(ps), c, width(l.contender), dash(l.db))
			for _, pt := range pts {
				p("%s", marker(l.db, pt[0], pt[1], c))
			}
		}
	}
	y := top + 4
	for _, db := range dbs {
		p(`<text x="%d" y="%d" font-weight="bold">%s</text>`, legendX, y, esc(db))
		y += 24
		for _, l := range lines {
			if l.db != db {
				continue
			}
			label := l.label()
			for _, r := range saves {
				if r.DB == l.db && r.Contender == l.contender && r.Wrong {
					label += " (WRONG)"
					break
				}
			}
			c := colour(l.contender)
			p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="%.1f"%s/>`, legendX, y-4, legendX+28, y-4, c, width(l.contender), dash(l.db))
			p("%s", marker(l.db, float64(legendX+14), float64(y-4), c))
			p(`<text x="%d" y="%d">%s</text>`, legendX+36, y, esc(label))
			y += 22
		}
		y += 10
	}
	_ = legendW
	note := "median of the timed saves"
	if slices.Contains(dbs, "PostgreSQL") {
		note += "; synchronous_commit = off for every PostgreSQL contender"
	}
	if slices.Contains(dbs, "MariaDB") {
		note += "; MariaDB with the server's commit settings for every contender"
	}
	p(`<text x="%d" y="%d" fill="#444" font-size="11">%s</text>`, left, H-14, esc(note))
	p(`</svg>`)
	return b.Bytes()
}

func join(pts []string) string {
	var b bytes.Buffer
	for i, s := range pts {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}

func latencyLabel(us float64) string {
	switch {
	case us >= 1000:
		return fmt.Sprintf("%g ms", us/1000)
	default:
		return fmt.Sprintf("%g µs", us)
	}
}
