package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// runBench sets up the targets (starting what it owns), then runs the
// suite -runs times or the soak, and prints the report.
func runBench(ctx context.Context, o *options) error {
	pinned, pinNote := decidePinning(o)
	p, err := newProcs(pinned)
	if err != nil {
		return err
	}
	defer p.Close()

	direct, proxy, err := setupTargets(ctx, o, p)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "pinning: %s\n", pinNote)
	fmt.Fprintf(os.Stderr, "proxy:  %s (pid %s)\ndirect: %s (pid %s)\n", proxy.base, pidString(proxy.pid), direct.base, pidString(direct.pid))
	for _, t := range []target{proxy, direct} {
		if err := probe(ctx, t, o.model, o.chunks); err != nil {
			return fmt.Errorf("probe: %w", err)
		}
	}

	if o.soak > 0 {
		return runSoak(ctx, os.Stdout, soakConfig{dur: o.soak, rate: o.soakRate, streamEvery: o.soakStream,
			every: o.soakEvery, conns: o.openConns, chunks: o.chunks, timeout: o.timeout, model: o.model}, proxy)
	}

	rates, _ := parseRates(o.rates)
	only, _ := parseScenarios(o.scenarios)
	sc := suiteConfig{rates: rates, dur: o.dur, openConns: o.openConns, conns: o.conns, streams: o.streams,
		chunks: o.chunks, timeout: o.timeout, model: o.model, pause: 200 * time.Millisecond, pinned: pinned, only: only}
	fmt.Fprintf(os.Stderr, "suite: %d run(s), about %s each\n", o.runs, suiteLength(sc).Round(time.Second))
	var runs []*runResult
	for i := range o.runs {
		began := time.Now()
		load := loadAverage()
		r, err := runSuite(ctx, sc, proxy, direct)
		if err != nil {
			return err
		}
		if load > 0.5 {
			// Our own processes idle before the run, so this is someone else.
			r.notef("load average %.2f before the run: other work on the machine may skew it", load)
		}
		if proxy.pid != 0 {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", proxy.pid)); err != nil {
				r.notef("the proxy process is gone after the run")
			}
		}
		runs = append(runs, r)
		fmt.Fprintf(os.Stderr, "run %d/%d done in %s\n", i+1, o.runs, time.Since(began).Round(time.Second))
	}
	printReport(o, pinNote, runs)
	return nil
}

// decidePinning re-executes the bench under taskset when it starts the
// proxy itself, and reports what happened. Against a given -proxy the
// layout is the caller's business, so nothing is pinned.
func decidePinning(o *options) (bool, string) {
	if !o.pin {
		return false, "off (-pin=false)"
	}
	if o.proxyURL != "" {
		return false, "off (measuring a given -proxy)"
	}
	if os.Getenv(pinnedEnv) == "1" {
		return true, fmt.Sprintf("proxy on CPU %s, fake upstream + load generator on CPU %s (bench Cpus_allowed_list=%s, GOMAXPROCS=%d)",
			proxyCPU, benchCPU, allowedCPUs(), runtime.GOMAXPROCS(0))
	}
	ok, why := pinning()
	if !ok {
		return false, "off (" + why + ")"
	}
	err := reexecPinned() // returns only on failure
	return false, "off (re-exec under taskset failed: " + err.Error() + ")"
}

// setupTargets resolves or starts the direct fake and the proxy.
func setupTargets(ctx context.Context, o *options, p *procs) (direct, proxy target, err error) {
	direct = target{name: "direct", key: o.key}
	opt := upstreamOptions{Chunks: o.chunks, Delay: o.chunkDelay}
	switch {
	case o.directURL != "":
		direct.base, err = parseTarget(o.directURL)
	case o.inproc:
		var ln net.Listener
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err == nil {
			startUpstream(ctx, ln, opt)
			direct.base, direct.pid = "http://"+ln.Addr().String(), os.Getpid()
		}
	default:
		direct.base, direct.pid, err = p.startUpstreamProc(ctx, opt)
	}
	if err != nil {
		return direct, proxy, fmt.Errorf("direct target: %w", err)
	}

	proxy = target{name: "proxy", key: o.key, pid: o.proxyPID}
	if o.proxyURL != "" {
		proxy.base, err = parseTarget(o.proxyURL)
		return direct, proxy, err
	}
	bin := o.proxyBin
	if bin == "" {
		fmt.Fprintln(os.Stderr, "building ./cmd/proxy ...")
		if bin, err = p.buildProxy(ctx); err != nil {
			return direct, proxy, err
		}
	}
	proxy.base, proxy.pid, err = p.startProxy(ctx, proxySpec{bin: bin, config: o.config, upstream: direct.base,
		key: o.key, model: o.model, logPath: o.proxyLog})
	return direct, proxy, err
}

// loadAverage is the 1-minute load average, or 0 if unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// suiteLength estimates one run, for the progress line.
func suiteLength(sc suiteConfig) time.Duration {
	n := len(sc.only)
	if sc.only["open"] {
		n += len(sc.rates) - 1
	}
	per := time.Duration(n) * (sc.dur + sc.pause)
	return 2*per + 2*min(time.Second, sc.dur)
}

func printReport(o *options, pinNote string, runs []*runResult) {
	fmt.Printf("\nllmproxy bench: %d run(s), %s per scenario, %d-conn closed loop, %d streams × %d chunks %s apart\n",
		len(runs), o.dur, o.conns, o.streams, o.chunks, o.chunkDelay)
	fmt.Printf("pinning: %s\n", pinNote)
	if len(runs) > 1 {
		fmt.Println("cells: median (min–max) across runs; added = proxy − direct, per run (throughput: proxy/direct − 1)")
	} else {
		fmt.Println("added = proxy − direct (throughput: proxy/direct − 1); latencies in ms")
	}
	fmt.Println()
	buildTable(runs).write(os.Stdout)
	var notes []string
	for i, r := range runs {
		for _, n := range r.notes {
			if len(runs) > 1 {
				n = fmt.Sprintf("run %d: %s", i+1, n)
			}
			notes = append(notes, n)
		}
	}
	if len(notes) > 0 {
		fmt.Println()
		fmt.Println("notes:")
		for _, n := range slices.Compact(notes) {
			fmt.Println("- " + strings.TrimSpace(n))
		}
	}
}
