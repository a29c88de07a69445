package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0 ≤ p ≤ 100) of sorted, using the
// nearest-rank method: the smallest value with at least p% of the samples at
// or below it. Nearest-rank never invents a latency nobody saw, which
// matters at p99 with a few hundred samples. It returns 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	if rank > n {
		rank = n
	}
	return sorted[rank-1]
}

// summary is the latency distribution of one scenario on one target.
type summary struct {
	n             int
	p50, p90, p99 time.Duration
	max           time.Duration
}

// summarize sorts lat in place and reads its percentiles.
func summarize(lat []time.Duration) summary {
	slices.Sort(lat)
	s := summary{n: len(lat), p50: percentile(lat, 50), p90: percentile(lat, 90), p99: percentile(lat, 99)}
	if len(lat) > 0 {
		s.max = lat[len(lat)-1]
	}
	return s
}

// spread is one table cell across runs: the median and the extremes.
type spread struct {
	median, min, max float64
	n                int
}

// aggregate reduces the per-run values of one cell. The median of an even
// count is the mean of the middle two. NaN values (a run that could not
// measure the cell) are skipped.
func aggregate(vals []float64) spread {
	v := make([]float64, 0, len(vals))
	for _, x := range vals {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return spread{median: math.NaN(), min: math.NaN(), max: math.NaN()}
	}
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return spread{median: m, min: v[0], max: v[len(v)-1], n: len(v)}
}

// slope is the least-squares slope of ys over xs (units of y per unit of
// x). It returns 0 with fewer than two distinct xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if len(xs) != len(ys) || len(xs) < 2 {
		return 0
	}
	var sx, sy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
	}
	mx, my := sx/n, sy/n
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}
