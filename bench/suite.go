package main

import (
	"context"
	"fmt"
	"math"
	"time"
)

// suiteConfig is what one run of the suite measures.
type suiteConfig struct {
	rates     []float64
	dur       time.Duration
	openConns int // connection cap for open loop
	conns     int // closed loop
	streams   int
	chunks    int
	timeout   time.Duration
	model     string
	pause     time.Duration   // between measurements, to let both sides settle
	pinned    bool            // the proxy has CPU 0 to itself
	only      map[string]bool // scenarios to run: open, serial, closed, stream
}

// cellKind says how the "added" column is derived.
type cellKind int

const (
	kindLatency    cellKind = iota // ms; added = proxy − direct
	kindCount                      // errors; added = proxy − direct
	kindThroughput                 // rps; added = proxy/direct − 1, in %
	kindProxyOnly                  // proxy process numbers; no direct side
)

// rowDef is one table row.
type rowDef struct {
	key, scenario, metric string
	kind                  cellKind
}

// runResult is one run of the suite: per row key, proxy and direct values
// (NaN when not measured), plus notes for the reader.
type runResult struct {
	rows  []rowDef
	proxy map[string]float64
	direc map[string]float64
	notes []string
}

func newRunResult() *runResult {
	return &runResult{proxy: map[string]float64{}, direc: map[string]float64{}}
}

func (r *runResult) set(d rowDef, side string, v float64) {
	if _, ok := r.proxy[d.key]; !ok {
		r.rows = append(r.rows, d)
		r.proxy[d.key], r.direc[d.key] = math.NaN(), math.NaN()
	}
	if side == "proxy" {
		r.proxy[d.key] = v
	} else {
		r.direc[d.key] = v
	}
}

func (r *runResult) notef(format string, a ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, a...))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// scenario measures one thing on one target and records it in res.
type scenario func(ctx context.Context, sc suiteConfig, t target, res *runResult)

// runSuite measures every scenario, each on the proxy and then direct.
func runSuite(ctx context.Context, sc suiteConfig, proxy, direct target) (*runResult, error) {
	res := newRunResult()
	targets := []target{proxy, direct}
	var rss *rssSampler
	if proxy.pid != 0 {
		rss = startRSSSampler(proxy.pid, 100*time.Millisecond)
		defer rss.Stop() // on early return; the normal path stops it first
	}

	for _, t := range targets { // prime pools and lazy state; not measured
		c := newClient(sc.conns, sc.timeout)
		warm(ctx, newRequester(c, t, sc.model, false, 0), sc.conns, min(time.Second, sc.dur))
		closeClient(c)
	}
	g0, m0 := math.NaN(), math.NaN()
	if rss != nil {
		g0, m0 = idleState(ctx, proxy)
	}
	var steps []scenario
	if sc.only["open"] {
		for _, rate := range sc.rates {
			steps = append(steps, openRun(rate))
		}
	}
	for _, s := range []struct {
		name string
		run  scenario
	}{{"serial", serialRun}, {"closed", closedRun}, {"stream", streamRun}} {
		if sc.only[s.name] {
			steps = append(steps, s.run)
		}
	}
	for _, step := range steps {
		for _, t := range targets {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			step(ctx, sc, t, res)
			time.Sleep(sc.pause)
		}
	}

	if rss != nil {
		peak := rss.Stop()
		g, m := idleState(ctx, proxy)
		res.set(rowDef{"idleg0", "proxy idle", "goroutines before the load", kindProxyOnly}, "proxy", g0)
		res.set(rowDef{"idleg1", "proxy idle", "goroutines after the load", kindProxyOnly}, "proxy", g)
		res.set(rowDef{"idlerss0", "proxy idle", "RSS MB before the load", kindProxyOnly}, "proxy", m0)
		res.set(rowDef{"idlerss1", "proxy idle", "RSS MB after the load", kindProxyOnly}, "proxy", m)
		hwm := math.NaN()
		if _, b, err := procMem(proxy.pid); err == nil {
			hwm = float64(b) / (1 << 20)
		}
		res.set(rowDef{"rss", "proxy memory", "peak RSS MB (100 ms samples)", kindProxyOnly}, "proxy", float64(peak)/(1<<20))
		res.set(rowDef{"hwm", "proxy memory", "VmHWM MB", kindProxyOnly}, "proxy", hwm)
	}
	return res, ctx.Err()
}

// idleState reads the proxy's goroutines and RSS with no load running,
// once the goroutine count has settled (finished streams and closed
// keep-alive connections unwind asynchronously; it waits up to 10 s).
// Read before and after the scenarios, the pair shows whether both
// return to their idle level after the overload (issue 15).
func idleState(ctx context.Context, proxy target) (g, rssMB float64) {
	g, rssMB = math.NaN(), math.NaN()
	for i := 0; i < 20 && ctx.Err() == nil; i++ {
		time.Sleep(500 * time.Millisecond)
		n, err := goroutines(ctx, proxy.base+"/metrics")
		if err != nil {
			break
		}
		if float64(n) == g {
			break
		}
		g = float64(n)
	}
	if rss, _, err := procMem(proxy.pid); err == nil {
		rssMB = float64(rss) / (1 << 20)
	}
	return g, rssMB
}

// openRun is the open-loop scenario at one rate.
func openRun(rate float64) scenario {
	return func(ctx context.Context, sc suiteConfig, t target, res *runResult) {
		name, k := fmt.Sprintf("open %g rps", rate), fmt.Sprintf("open%g", rate)
		c := newClient(sc.openConns, sc.timeout)
		o := openLoop(ctx, newRequester(c, t, sc.model, false, 0), rate, sc.dur, sc.openConns, sc.timeout)
		closeClient(c)
		s := summarize(o.lat)
		res.set(rowDef{k + "p50", name, "p50 ms", kindLatency}, t.name, ms(s.p50))
		res.set(rowDef{k + "p90", name, "p90 ms", kindLatency}, t.name, ms(s.p90))
		res.set(rowDef{k + "p99", name, "p99 ms", kindLatency}, t.name, ms(s.p99))
		res.set(rowDef{k + "err", name, "errors", kindCount}, t.name, float64(o.errs))
		noteOutcome(res, name, t.name, o)
		if o.lagP99 > time.Millisecond || o.lagMax > 20*time.Millisecond {
			res.notef("%s %s: load generator fell behind schedule (dispatch lag p99 %s, max %s); latencies include it",
				name, t.name, o.lagP99.Round(time.Microsecond), o.lagMax.Round(time.Microsecond))
		}
	}
}

// serialRun is one connection, one request at a time: pure added latency.
func serialRun(ctx context.Context, sc suiteConfig, t target, res *runResult) {
	c := newClient(1, sc.timeout)
	cpu0, errCPU := procCPU(t.pid)
	o := closedLoop(ctx, newRequester(c, t, sc.model, false, 0), 1, sc.dur)
	cpu1, errCPU1 := procCPU(t.pid)
	closeClient(c)
	s := summarize(o.lat)
	// CPU per request one at a time: set against the added p50, it tells
	// work from waiting (wake-ups, hand-offs between goroutines).
	if t.name == "proxy" && t.pid != 0 && errCPU == nil && errCPU1 == nil && len(o.lat) > 0 {
		perK := (cpu1 - cpu0).Seconds() / float64(len(o.lat)) * 1000
		res.set(rowDef{"sercpu", "proxy CPU", "CPU s per 1k req (serial)", kindProxyOnly}, "proxy", perK)
	}
	res.set(rowDef{"serp50", "serial 1 conn", "p50 ms", kindLatency}, t.name, ms(s.p50))
	res.set(rowDef{"serp99", "serial 1 conn", "p99 ms", kindLatency}, t.name, ms(s.p99))
	noteOutcome(res, "serial", t.name, o)
}

// streamRun keeps sc.streams streams open back to back. A proxy may drop
// the fake's empty role chunk, so a stream needs chunks−1 events.
func streamRun(ctx context.Context, sc suiteConfig, t target, res *runResult) {
	c := newClient(sc.streams, sc.timeout)
	cpu0, errCPU := procCPU(t.pid)
	o := closedLoop(ctx, newRequester(c, t, sc.model, true, sc.chunks-1), sc.streams, sc.dur)
	cpu1, errCPU1 := procCPU(t.pid)
	closeClient(c)
	name := fmt.Sprintf("stream %d conc", sc.streams)
	if t.name == "proxy" && t.pid != 0 && errCPU == nil && errCPU1 == nil && len(o.lat) > 0 {
		perK := (cpu1 - cpu0).Seconds() / float64(len(o.lat)) * 1000
		res.set(rowDef{"stcpu", "proxy CPU", fmt.Sprintf("CPU s per 1k streams (%d chunks)", sc.chunks), kindProxyOnly}, "proxy", perK)
	}
	ttfb, total := summarize(o.ttfb), summarize(o.lat)
	res.set(rowDef{"stfb50", name, "TTFB p50 ms", kindLatency}, t.name, ms(ttfb.p50))
	res.set(rowDef{"stfb99", name, "TTFB p99 ms", kindLatency}, t.name, ms(ttfb.p99))
	ttft := summarize(o.ttft)
	res.set(rowDef{"stft50", name, "first content p50 ms", kindLatency}, t.name, ms(ttft.p50))
	res.set(rowDef{"stft99", name, "first content p99 ms", kindLatency}, t.name, ms(ttft.p99))
	res.set(rowDef{"stot50", name, "total p50 ms", kindLatency}, t.name, ms(total.p50))
	res.set(rowDef{"stot99", name, "total p99 ms", kindLatency}, t.name, ms(total.p99))
	res.set(rowDef{"sterr", name, "errors", kindCount}, t.name, float64(o.errs))
	noteOutcome(res, "stream", t.name, o)
}

// closedRun is the max-throughput scenario. On the proxy it also reads the
// proxy's CPU time and both cores' utilisation, which tell whether the
// proxy or the generator side was the limit.
func closedRun(ctx context.Context, sc suiteConfig, t target, res *runResult) {
	name := fmt.Sprintf("closed %d conns", sc.conns)
	c := newClient(sc.conns, sc.timeout)
	q := newRequester(c, t, sc.model, false, 0)
	cpu0, errCPU := procCPU(t.pid)
	sys0, _ := readCPUs()
	o := closedLoop(ctx, q, sc.conns, sc.dur)
	cpu1, errCPU1 := procCPU(t.pid)
	sys1, _ := readCPUs()
	closeClient(c)
	ok := len(o.lat)
	s := summarize(o.lat)
	res.set(rowDef{"clrps", name, "throughput rps", kindThroughput}, t.name, float64(ok)/o.wall.Seconds())
	res.set(rowDef{"clp50", name, "p50 ms", kindLatency}, t.name, ms(s.p50))
	res.set(rowDef{"clp99", name, "p99 ms", kindLatency}, t.name, ms(s.p99))
	res.set(rowDef{"clerr", name, "errors", kindCount}, t.name, float64(o.errs))
	noteOutcome(res, "closed", t.name, o)
	util := cpuUtil(sys0, sys1)
	if len(util) > 0 {
		res.notef("closed %s: CPU busy cpu%s %.0f%%, cpu%s %.0f%%%s", t.name, proxyCPU, 100*util[0], benchCPU, 100*util[1],
			bottleneck(sc.pinned, t.name, util[0], util[1]))
	}
	if t.name == "proxy" && t.pid != 0 && errCPU == nil && errCPU1 == nil && ok > 0 {
		perK := (cpu1 - cpu0).Seconds() / float64(ok) * 1000
		res.set(rowDef{"cpu", "proxy CPU", "CPU s per 1k req (non-stream)", kindProxyOnly}, "proxy", perK)
	}
}

// bottleneck reads the pinned layout: CPU 0 is the proxy's, CPU 1 the
// generator's and fake's. A saturated CPU 1 next to a spare CPU 0 means the
// proxy's throughput is a lower bound.
func bottleneck(pinned bool, side string, cpu0, cpu1 float64) string {
	if !pinned || side != "proxy" {
		return ""
	}
	switch {
	case cpu1 > 0.95 && cpu0 < 0.90:
		return " (generator side saturated: the proxy's rps is a lower bound)"
	case cpu0 > 0.95:
		return " (proxy core saturated)"
	}
	return ""
}

func noteOutcome(res *runResult, scenario, side string, o outcome) {
	if o.errs > 0 {
		res.notef("%s %s: %d errors, first: %v", scenario, side, o.errs, o.first)
	}
}

// probe checks that a target answers one plain and one streamed request
// before the suite spends minutes on it.
func probe(ctx context.Context, t target, model string, chunks int) error {
	c := newClient(1, 10*time.Second)
	defer closeClient(c)
	for _, stream := range []bool{false, true} {
		r := newRequester(c, t, model, stream, chunks-1).do(ctx, time.Now(), newReader())
		if r.err != nil {
			return fmt.Errorf("%s %s (stream=%v): %w", t.name, t.chatURL(), stream, r.err)
		}
	}
	return nil
}
