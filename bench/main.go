// Command bench measures llmproxy against a fast fake OpenAI upstream,
// side by side with calling the fake directly, so every number has its
// baseline next to it. See bench/README.md.
//
//	go run ./bench -quick        # a one-minute smoke run
//	go run ./bench -runs 3       # the README table
//	go run ./bench -soak 10m     # leak check
//	go run ./bench -mode upstream -listen 127.0.0.1:9000   # only the fake
//	go run ./bench -mode hostile   # issue 16: slow bodies, compression bombs
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	mode       string
	listen     string
	proxyURL   string
	directURL  string
	proxyPID   int
	proxyBin   string
	config     string
	proxyLog   string
	key        string
	model      string
	dur        time.Duration
	rates      string
	openConns  int
	conns      int
	streams    int
	chunks     int
	chunkDelay time.Duration
	timeout    time.Duration
	runs       int
	quick      bool
	pin        bool
	inproc     bool
	soak       time.Duration
	soakRate   float64
	soakStream int
	soakEvery  time.Duration
	scenarios  string
	// hostile mode (hostile.go)
	hostileConns int
	hostileWait  time.Duration
	hostileOnly  string
	// embed mode (embed.go)
	embedLatency time.Duration
	// vectors mode (vectors.go)
	vsSizes    string
	vsBackends string
	vsDims     int
	vsDatabase string
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.mode, "mode", "bench", `"bench" (the suite or -soak), "upstream" (serve only the fake upstream), "hostile" (issue 16's slow bodies and compression bombs), "embed" (issue 10's embeddings coalescing) or "vectors" (issue 11's ingestion and search)`)
	fs.DurationVar(&o.embedLatency, "embed-latency", 20*time.Millisecond, "embed, vectors: the fake upstream's time per embeddings call")
	fs.StringVar(&o.vsSizes, "vs-sizes", "10000,100000", "vectors: store sizes in chunks to measure search at, increasing")
	fs.StringVar(&o.vsBackends, "vs-backends", "sqlite,hnsw,ivfflat", "vectors: sqlite, and PostgreSQL with hnsw or ivfflat, comma-separated")
	fs.IntVar(&o.vsDims, "vs-dims", 384, "vectors: embedding dimensions")
	fs.StringVar(&o.vsDatabase, "vs-database", envOrDefault("LLMPROXY_TEST_DATABASE", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
		"vectors: PostgreSQL (with pgvector) for the hnsw and ivfflat runs; a schema of the bench's own is created and dropped with psql")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "upstream mode: loopback address to serve the fake on")
	fs.StringVar(&o.proxyURL, "proxy", "", "measure this running proxy (http://127.0.0.1:PORT) instead of building and starting one")
	fs.StringVar(&o.directURL, "direct", "", "with -proxy: the upstream that proxy points at, for the direct column (default: start a fake)")
	fs.IntVar(&o.proxyPID, "proxy-pid", 0, "with -proxy: its PID, to read CPU and RSS from /proc")
	fs.StringVar(&o.proxyBin, "proxy-bin", "", "use this proxy binary instead of go build ./cmd/proxy")
	fs.StringVar(&o.config, "config", "", "proxy config to use instead of the minimal one; may use ${BENCH_UPSTREAM_URL}, ${BENCH_DATA_DIR}, ${BENCH_KEY}")
	fs.StringVar(&o.proxyLog, "proxy-log", "", "write the proxy's stdout (access log) here instead of discarding it")
	fs.StringVar(&o.key, "key", "sk-bench", "team API key the load generator sends")
	fs.StringVar(&o.model, "model", "bench", "model name in requests")
	fs.DurationVar(&o.dur, "duration", 10*time.Second, "length of each scenario on each target")
	fs.StringVar(&o.rates, "rates", "500,1000,2000,4000", "open-loop rates, requests/s, comma-separated")
	fs.IntVar(&o.openConns, "open-conns", 1024, "connection cap for the open-loop scenarios")
	fs.IntVar(&o.conns, "conns", 64, "connections for the closed-loop throughput scenario")
	fs.IntVar(&o.streams, "streams", 200, "concurrent streams in the streaming scenario")
	fs.IntVar(&o.chunks, "chunks", 20, "chunks per fake stream")
	fs.DurationVar(&o.chunkDelay, "chunk-delay", 5*time.Millisecond, "gap between fake stream chunks")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout; a request that takes longer is an error")
	fs.StringVar(&o.scenarios, "scenarios", "open,serial,closed,stream", "scenarios to run, comma-separated")
	fs.IntVar(&o.runs, "runs", 1, "repeat the suite N times; cells show median (min–max)")
	fs.BoolVar(&o.quick, "quick", false, "smoke run: 1 s per scenario, rates 250,500,1000, 50 streams")
	fs.BoolVar(&o.pin, "pin", true, "pin with taskset when available: proxy on CPU 0, fake upstream and load generator on CPU 1")
	fs.BoolVar(&o.inproc, "upstream-inproc", false, "run the fake upstream inside the bench process instead of a subprocess")
	fs.DurationVar(&o.soak, "soak", 0, "soak mode: drive the proxy for this long at -soak-rate and sample RSS and goroutines")
	fs.Float64Var(&o.soakRate, "soak-rate", 1000, "soak: requests/s")
	fs.IntVar(&o.soakStream, "soak-stream-every", 2, "soak: every n-th request streams (2 = half; 0 = none)")
	fs.DurationVar(&o.soakEvery, "soak-every", 10*time.Second, "soak: sampling period")
	fs.IntVar(&o.hostileConns, "hostile-conns", 200, "hostile: sockets that send headers and one body byte")
	fs.DurationVar(&o.hostileWait, "hostile-wait", 90*time.Second, "hostile: how long to wait for the proxy to answer or close")
	fs.StringVar(&o.hostileOnly, "hostile-scenarios", "slow,bomb", "hostile: scenarios to run, comma-separated (slow, bomb, gzip2: only the \"gzip, gzip\" bomb)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["duration"] {
			o.dur = time.Second
		}
		if !set["rates"] {
			o.rates = "250,500,1000"
		}
		if !set["streams"] {
			o.streams = 50
		}
	}
	var errs []error
	if o.runs < 1 {
		errs = append(errs, fmt.Errorf("-runs: %d, want at least 1", o.runs))
	}
	if o.dur <= 0 || o.timeout <= 0 {
		errs = append(errs, errors.New("-duration and -timeout must be positive"))
	}
	if o.conns < 1 || o.openConns < 1 || o.streams < 1 || o.chunks < 1 {
		errs = append(errs, errors.New("-conns, -open-conns, -streams and -chunks must be at least 1"))
	}
	if _, err := parseRates(o.rates); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseScenarios(o.scenarios); err != nil {
		errs = append(errs, err)
	}
	if o.soak > 0 && (o.soakRate <= 0 || o.soakEvery <= 0) {
		errs = append(errs, errors.New("-soak-rate and -soak-every must be positive"))
	}
	return o, errors.Join(errs...)
}

func envOrDefault(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func parseRates(s string) ([]float64, error) {
	var out []float64
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("-rates: %q is not a positive number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func parseScenarios(s string) (map[string]bool, error) {
	out := map[string]bool{}
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		switch f {
		case "open", "serial", "closed", "stream":
			out[f] = true
		default:
			return nil, fmt.Errorf("-scenarios: %q is not one of open, serial, closed, stream", f)
		}
	}
	return out, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if o.mode == "upstream" {
		err = runUpstreamMode(ctx, o.listen, upstreamOptions{Chunks: o.chunks, Delay: o.chunkDelay})
	} else if o.mode == "hostile" {
		err = runHostile(ctx, o)
	} else if o.mode == "embed" {
		err = runEmbed(ctx, o)
	} else if o.mode == "vectors" {
		err = runVectors(ctx, o)
	} else if o.mode != "bench" {
		err = fmt.Errorf("-mode %q: want bench, upstream, hostile, embed or vectors", o.mode)
	} else {
		// Pinned to one core the runtime picks GOMAXPROCS=1, but pace keeps
		// a thread in nanosleep; the workers need a P of their own.
		runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), 2))
		err = runBench(ctx, o)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}
