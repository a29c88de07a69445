package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// soakConfig is the -soak mode.
type soakConfig struct {
	dur         time.Duration
	rate        float64
	streamEvery int // every n-th request streams; 2 = half
	every       time.Duration
	conns       int
	chunks      int
	timeout     time.Duration
	model       string
}

var errQueueFull = errors.New("load generator queue full: over 4 s of requests waiting for a connection")

// soakSample is one point of the series.
type soakSample struct {
	at         time.Duration
	rss        int64 // bytes; -1 unknown
	goroutines int   // -1 unknown
	done, errs int   // requests finished in the interval ending here
	p99        time.Duration
}

// soakBuckets gathers replies per sampling interval, keyed by due time.
type soakBuckets struct {
	start time.Time
	every time.Duration
	mu    sync.Mutex
	lat   map[int][]time.Duration
	errs  map[int]int
}

func (b *soakBuckets) record(due time.Time, r result) {
	k := int(due.Sub(b.start) / b.every)
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.err != nil {
		b.errs[k]++
	} else {
		b.lat[k] = append(b.lat[k], r.total)
	}
}

// runSoak drives rate requests/s (mixed plain and streamed, open loop) at
// the proxy for dur and samples its RSS and goroutine count every period.
func runSoak(ctx context.Context, w io.Writer, sc soakConfig, t target) error {
	total := int(sc.rate * sc.dur.Seconds())
	interval := time.Duration(float64(time.Second) / sc.rate)
	c := newClient(sc.conns, sc.timeout)
	defer closeClient(c)
	plain := newRequester(c, t, sc.model, false, 0)
	stream := newRequester(c, t, sc.model, true, sc.chunks-1)
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, sc.dur+sc.timeout+drainGrace)
	defer cancel()

	mix := "no streams"
	if sc.streamEvery > 0 {
		mix = fmt.Sprintf("1 in %d requests streams", sc.streamEvery)
	}
	fmt.Fprintf(w, "soak: %g rps for %s against %s (%s), sampling every %s\n", sc.rate, sc.dur, t.base, mix, sc.every)
	first := sampleProxy(ctx, t, 0)
	start := time.Now().Add(5 * time.Millisecond)
	buckets := &soakBuckets{start: start, every: sc.every, lat: map[int][]time.Duration{}, errs: map[int]int{}}
	jobs := make(chan int, 4*int(sc.rate)+1)
	var wg sync.WaitGroup
	for range sc.conns {
		wg.Go(func() {
			br := newReader()
			for i := range jobs {
				due := start.Add(time.Duration(i) * interval)
				q := plain
				if sc.streamEvery > 0 && i%sc.streamEvery == sc.streamEvery-1 {
					q = stream
				}
				buckets.record(due, q.do(ctx, due, br))
			}
		})
	}
	stopSampling := startSoakSampler(ctx, w, t, sc.every)
	lags := pace(ctx, start, interval, total, func(i int, due time.Time) {
		select {
		case jobs <- i:
		default:
			buckets.record(due, result{err: errQueueFull})
		}
	})
	samples := append([]soakSample{first}, stopSampling()...)
	close(jobs)
	wg.Wait()
	for i := 1; i < len(samples); i++ {
		lat := buckets.lat[i-1]
		samples[i].errs = buckets.errs[i-1]
		samples[i].done = len(lat) + samples[i].errs
		samples[i].p99 = summarize(lat).p99
	}
	behind := 0
	for _, l := range lags {
		if l > 10*time.Millisecond {
			behind++
		}
	}
	printSoak(w, samples, behind)
	if ctx.Err() != nil && parent.Err() == nil {
		fmt.Fprintln(w, "the soak hit its time bound (duration + timeout + 2 s): the schedule ran late; see the last interval")
	}
	return parent.Err()
}

// startSoakSampler samples the proxy every period on its own goroutine, so
// a slow /metrics scrape never delays the send schedule. The returned stop
// function ends it and hands back the samples.
func startSoakSampler(ctx context.Context, w io.Writer, t target, every time.Duration) (stop func() []soakSample) {
	quit := make(chan struct{})
	out := make(chan []soakSample, 1)
	go func() {
		var samples []soakSample
		defer func() { out <- samples }()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for k := 1; ; k++ {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			s := sampleProxy(ctx, t, time.Duration(k)*every)
			fmt.Fprintf(w, "  t=%-6s rss=%s MB goroutines=%s\n", s.at, mb(s.rss), count(s.goroutines))
			samples = append(samples, s)
		}
	}()
	return func() []soakSample {
		close(quit)
		return <-out
	}
}

// sampleProxy reads the proxy's RSS from /proc and goroutines from
// /metrics (go_goroutines, from the Go collector).
func sampleProxy(ctx context.Context, t target, at time.Duration) soakSample {
	s := soakSample{at: at, rss: -1, goroutines: -1}
	if t.pid != 0 {
		if rss, _, err := procMem(t.pid); err == nil {
			s.rss = rss
		}
	}
	if n, err := goroutines(ctx, t.base+"/metrics"); err == nil {
		s.goroutines = n
	}
	return s
}

func goroutines(ctx context.Context, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return parseGoroutines(resp.Body)
}

// parseGoroutines finds the go_goroutines gauge in Prometheus text format.
func parseGoroutines(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no go_goroutines line in /metrics")
}

func printSoak(w io.Writer, samples []soakSample, behind int) {
	tb := table{header: []string{"t", "RSS MB", "goroutines", "requests", "errors", "p99 ms"}, left: 1}
	for _, s := range samples {
		tb.rows = append(tb.rows, []string{s.at.String(), mb(s.rss), count(s.goroutines),
			itoa(s.done), itoa(s.errs), fmt.Sprintf("%.3f", ms(s.p99))})
	}
	fmt.Fprintln(w)
	tb.write(w)
	fmt.Fprintln(w)
	// The first sample is before any load; trends are judged on the rest.
	var xs, rs, gs []float64
	var gx []float64
	for _, s := range samples[1:] {
		if s.rss >= 0 {
			xs, rs = append(xs, s.at.Minutes()), append(rs, float64(s.rss)/(1<<20))
		}
		if s.goroutines >= 0 {
			gx, gs = append(gx, s.at.Minutes()), append(gs, float64(s.goroutines))
		}
	}
	fmt.Fprintln(w, "RSS:        "+trendVerdict(xs, rs, "MB", 0.05, 2))
	fmt.Fprintln(w, "goroutines: "+trendVerdict(gx, gs, "", 0.10, 5))
	if behind > 0 {
		fmt.Fprintf(w, "load generator: %d sends were more than 10 ms late\n", behind)
	}
}

// trendVerdict fits a least-squares line through ys over xs (minutes) and
// calls it upward when the fitted growth across the series exceeds both
// rel of the mean and abs units: a leak, not noise.
func trendVerdict(xs, ys []float64, unit string, rel, abs float64) string {
	if len(xs) < 3 {
		return "too few samples for a trend"
	}
	m := slope(xs, ys)
	growth := m * (xs[len(xs)-1] - xs[0])
	mean := 0.0
	for _, y := range ys {
		mean += y
	}
	mean /= float64(len(ys))
	verdict := "flat (no upward trend)"
	if growth > abs && growth > rel*mean {
		verdict = "UPWARD TREND"
	}
	return fmt.Sprintf("%s: slope %+.3f%s/min, fitted change %+.1f%s over %.1f min (mean %.1f%s)",
		verdict, m, unit, growth, unit, xs[len(xs)-1]-xs[0], mean, unit)
}

func mb(b int64) string {
	if b < 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f", float64(b)/(1<<20))
}

func count(n int) string {
	if n < 0 {
		return "?"
	}
	return itoa(n)
}
