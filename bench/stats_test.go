package main

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample", ms(7), 99, 7 * time.Millisecond},
		{"p0 is the minimum", ms(1, 2, 3), 0, time.Millisecond},
		{"p100 is the maximum", ms(1, 2, 3), 100, 3 * time.Millisecond},
		{"median of odd count", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"median of even count is the lower middle", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p50 of 1..100", hundred, 50, 50 * time.Millisecond},
		{"p90 of 1..100", hundred, 90, 90 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p99.9 of 1..100 rounds up to the max", hundred, 99.9, 100 * time.Millisecond},
		{"p99 of 10 samples is the max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(%v, %g) = %v; want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarizeSorts(t *testing.T) {
	lat := []time.Duration{5, 1, 4, 2, 3}
	s := summarize(lat)
	if s.n != 5 || s.p50 != 3 || s.p99 != 5 || s.max != 5 {
		t.Errorf("summarize = %+v; want n=5 p50=3 p99=5 max=5", s)
	}
}

func TestAggregate(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name             string
		vals             []float64
		median, min, max float64
		n                int
	}{
		{"one run", []float64{4}, 4, 4, 4, 1},
		{"odd count", []float64{3, 1, 2}, 2, 1, 3, 3},
		{"even count averages the middle two", []float64{4, 1, 3, 2}, 2.5, 1, 4, 4},
		{"negative values", []float64{-1, -3, -2}, -2, -3, -1, 3},
		{"NaN runs are skipped", []float64{nan, 5, 1, nan, 3}, 3, 1, 5, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := aggregate(tc.vals)
			if got.median != tc.median || got.min != tc.min || got.max != tc.max || got.n != tc.n {
				t.Errorf("aggregate(%v) = %+v; want median %g min %g max %g n %d", tc.vals, got, tc.median, tc.min, tc.max, tc.n)
			}
		})
	}
	t.Run("all NaN", func(t *testing.T) {
		if got := aggregate([]float64{nan}); !math.IsNaN(got.median) || got.n != 0 {
			t.Errorf("aggregate(NaN) = %+v; want NaN median", got)
		}
	})
}

func TestSlope(t *testing.T) {
	tests := []struct {
		name   string
		xs, ys []float64
		want   float64
	}{
		{"flat", []float64{0, 1, 2, 3}, []float64{5, 5, 5, 5}, 0},
		{"line", []float64{0, 1, 2, 3}, []float64{1, 3, 5, 7}, 2},
		{"noisy line", []float64{0, 1, 2, 3}, []float64{0, 2, 1, 3}, 0.8},
		{"one point", []float64{1}, []float64{1}, 0},
		{"same x", []float64{2, 2}, []float64{1, 3}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := slope(tc.xs, tc.ys); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("slope(%v, %v) = %g; want %g", tc.xs, tc.ys, got, tc.want)
			}
		})
	}
}

func TestTrendVerdict(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5}
	tests := []struct {
		name string
		ys   []float64
		want string
	}{
		{"steady", []float64{40, 41, 40, 41, 40}, "flat"},
		{"leak", []float64{40, 50, 60, 70, 80}, "UPWARD"},
		{"small growth under the absolute floor", []float64{10, 10.2, 10.4, 10.6, 10.8}, "flat"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := trendVerdict(xs, tc.ys, "MB", 0.05, 2); !strings.HasPrefix(got, tc.want) {
				t.Errorf("trendVerdict(%v) = %q; want prefix %q", tc.ys, got, tc.want)
			}
		})
	}
}

func TestBuildTableAddedPerRun(t *testing.T) {
	row := rowDef{key: "k", scenario: "s", metric: "p50 ms", kind: kindLatency}
	rps := rowDef{key: "r", scenario: "c", metric: "rps", kind: kindThroughput}
	mk := func(p, d, pr, dr float64) *runResult {
		r := newRunResult()
		r.set(row, "proxy", p)
		r.set(row, "direct", d)
		r.set(rps, "proxy", pr)
		r.set(rps, "direct", dr)
		return r
	}
	tb := buildTable([]*runResult{mk(3, 1, 500, 1000), mk(2, 1, 900, 1000), mk(10, 2, 1000, 1000)})
	want := [][]string{
		{"s", "p50 ms", "3.000 (2.000–10.000)", "1.000 (1.000–2.000)", "+2.000 (+1.000–+8.000)"},
		{"c", "rps", "900 (500–1000)", "1000", "-10% (-50%–0%)"},
	}
	for i, w := range want {
		if strings.Join(tb.rows[i], "|") != strings.Join(w, "|") {
			t.Errorf("row %d = %q; want %q", i, tb.rows[i], w)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// Fields after the command: state ppid pgrp session tty tpgid flags
	// minflt cminflt majflt cmajflt utime stime ...
	line := []byte("1234 (llm proxy) (x)) S 1 1 1 0 -1 4194560 10 0 0 0 250 50 0 0 20 0 8 0 100")
	got, err := parseStatCPU(line)
	if err != nil || got != 3*time.Second {
		t.Errorf("parseStatCPU = %v, %v; want 3s", got, err)
	}
}

func TestParseGoroutines(t *testing.T) {
	in := "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 42\ngo_threads 7\n"
	if n, err := parseGoroutines(strings.NewReader(in)); err != nil || n != 42 {
		t.Errorf("parseGoroutines = %d, %v; want 42", n, err)
	}
	if _, err := parseGoroutines(strings.NewReader("go_threads 7\n")); err == nil {
		t.Error("parseGoroutines without the gauge: want an error")
	}
}

func TestReadStream(t *testing.T) {
	ev := "data: {\"choices\":[]}\n\n"
	tests := []struct {
		name    string
		body    string
		want    int
		wantErr error
	}{
		{"complete", strings.Repeat(ev, 3) + "data: [DONE]\n\n", 3, nil},
		{"no DONE", strings.Repeat(ev, 3), 3, errNoDone},
		{"too few chunks", ev + "data: [DONE]\n\n", 3, errFewChunks},
		{"comments and blank lines are not events", ": ping\n\n" + strings.Repeat(ev, 2) + "data: [DONE]\n\n", 2, nil},
	}
	br := newReader()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := readStream(strings.NewReader(tc.body), time.Now().Add(-time.Second), br, tc.want)
			if !errors.Is(r.err, tc.wantErr) {
				t.Fatalf("readStream err = %v; want %v", r.err, tc.wantErr)
			}
			if tc.wantErr == nil && (r.ttfb <= 0 || r.total < r.ttfb) {
				t.Errorf("readStream ttfb %v total %v; want 0 < ttfb ≤ total", r.ttfb, r.total)
			}
		})
	}
}
