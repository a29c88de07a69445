package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"
)

// table is the aggregated report: one row per metric, with the median and
// min–max across runs in each cell.
type table struct {
	header []string
	rows   [][]string
	left   int // leading text columns; the rest are numbers, right-aligned
}

// buildTable aggregates runs cell by cell. "added" is computed within each
// run (proxy − direct, or the throughput ratio) and then aggregated, so its
// median is the typical overhead, not a difference of two medians.
func buildTable(runs []*runResult) table {
	t := table{header: []string{"scenario", "metric", "proxy", "direct", "added"}, left: 2}
	if len(runs) == 0 {
		return t
	}
	prev := ""
	for _, d := range runs[0].rows {
		var px, dx, ax []float64
		for _, r := range runs {
			p, ok := r.proxy[d.key]
			if !ok {
				p = math.NaN()
			}
			dv, ok := r.direc[d.key]
			if !ok {
				dv = math.NaN()
			}
			px, dx = append(px, p), append(dx, dv)
			ax = append(ax, added(d.kind, p, dv))
		}
		scenario := d.scenario
		if len(t.rows) > 0 && prev == scenario {
			scenario = "" // group rows visually
		}
		prev = d.scenario
		t.rows = append(t.rows, []string{scenario, d.metric,
			formatCell(d.kind, aggregate(px), false),
			formatCell(d.kind, aggregate(dx), false),
			formatCell(d.kind, aggregate(ax), true)})
	}
	return t
}

func added(k cellKind, p, d float64) float64 {
	switch k {
	case kindThroughput:
		if d == 0 {
			return math.NaN()
		}
		return (p/d - 1) * 100
	case kindProxyOnly:
		return math.NaN()
	}
	return p - d
}

// formatCell renders "median (min–max)", or the bare value for one run.
func formatCell(k cellKind, s spread, isAdded bool) string {
	if math.IsNaN(s.median) {
		return "—"
	}
	f := func(v float64) string { return formatValue(k, v, isAdded) }
	if s.n <= 1 || s.min == s.max {
		return f(s.median)
	}
	return fmt.Sprintf("%s (%s–%s)", f(s.median), f(s.min), f(s.max))
}

func formatValue(k cellKind, v float64, isAdded bool) string {
	sign := ""
	if isAdded && v > 0 {
		sign = "+"
	}
	switch {
	case k == kindThroughput && isAdded:
		return fmt.Sprintf("%s%.0f%%", sign, v)
	case k == kindThroughput:
		return fmt.Sprintf("%.0f", v)
	case k == kindCount:
		return fmt.Sprintf("%s%.0f", sign, v)
	case k == kindProxyOnly && v < 10:
		return fmt.Sprintf("%.3f", v)
	case k == kindProxyOnly:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%s%.3f", sign, v)
}

// write prints t as an aligned markdown table.
func (t table) write(w io.Writer) {
	width := make([]int, len(t.header))
	for i, h := range t.header {
		width[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cells {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i >= t.left {
				b.WriteString(" " + pad + c + " |")
			} else {
				b.WriteString(" " + c + pad + " |")
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(t.header)
	sep := make([]string, len(width))
	for i, n := range width {
		if i >= t.left {
			sep[i] = strings.Repeat("-", n-1) + ":"
		} else {
			sep[i] = strings.Repeat("-", n)
		}
	}
	line(sep)
	for _, r := range t.rows {
		line(r)
	}
}
