package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The vectors mode (-mode vectors) measures issue 11's vector stores:
// ingestion throughput (chunks per second from the batch's creation to its
// completion: parse, chunk, embed through the embedding service, store)
// with the embedding upstream faked in process at -embed-latency per call,
// and the search latency (POST /v1/vector_stores/{id}/search, query
// embedding included but answered at once) at each size of -vs-sizes, on
// SQLite (exact scan + FTS5) and on PostgreSQL with HNSW and with IVFFlat
// (psql creates and drops a schema of its own in -vs-database).
//
//	go run ./bench -mode vectors
//	go run ./bench -mode vectors -vs-sizes 10000 -vs-backends sqlite

const vectorsBenchConfig = `# Written by go run ./bench -mode vectors; removed when it exits.
server:
  listen: 127.0.0.1:0
  data_dir: %[1]s
  log_level: warn
providers:
  - {name: up, type: openai, base_url: "${BENCH_UPSTREAM_URL}", api_key: x}
models:
  - name: emb
    type: embedding
    deployments: [{provider: up, model: text-embedding-3-small}]
teams:
  - name: t
    api_keys: ["${BENCH_KEY}"]
embeddings:
  cache: {max_entries: 1000}       # every text is new: keep the cache small
vector_stores:
  embedding_model: emb
  max_file_bytes: 52428800
  index: %[2]s
%[3]s`

// vecUpstream answers embeddings with a unit vector of dims dimensions
// drawn from each text's hash (the same text, the same vector), after
// latency (changeable: searches run with none).
type vecUpstream struct {
	dims    int
	latency atomic.Int64
	calls   atomic.Int64
}

func (u *vecUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.calls.Add(1)
	var ask struct {
		Input []string `json:"input"`
	}
	_ = json.NewDecoder(r.Body).Decode(&ask)
	time.Sleep(time.Duration(u.latency.Load()))
	var sb strings.Builder
	sb.WriteString(`{"object":"list","data":[`)
	raw := make([]byte, 4*u.dims)
	tokens := 0
	for i, in := range ask.Input {
		h := fnv.New64a()
		io.WriteString(h, in)
		rng := rand.New(rand.NewPCG(h.Sum64(), 11))
		var norm float64
		v := make([]float32, u.dims)
		for j := range v {
			v[j] = float32(rng.NormFloat64())
			norm += float64(v[j]) * float64(v[j])
		}
		for j := range v {
			binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(v[j]/float32(math.Sqrt(norm))))
		}
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"object":"embedding","index":%d,"embedding":"%s"}`, i, base64.StdEncoding.EncodeToString(raw))
		tokens += len(in) / 4
	}
	fmt.Fprintf(&sb, `],"model":"text-embedding-3-small","usage":{"prompt_tokens":%d,"total_tokens":%d}}`, tokens, tokens)
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, sb.String())
}

// vsBackend is one storage the mode measures.
type vsBackend struct {
	name, index string
	pg          bool
}

// vsResult is one backend's numbers at one size.
type vsResult struct {
	backend     string
	chunks      int
	ingestRate  float64 // chunks/s of the step that reached this size
	searchP50   time.Duration
	searchP99   time.Duration
	rssMB       float64
	upstreamCPS float64
}

func runVectors(ctx context.Context, o *options) error {
	sizes, err := parseSizes(o.vsSizes)
	if err != nil {
		return err
	}
	var backends []vsBackend
	for b := range strings.SplitSeq(o.vsBackends, ",") {
		switch strings.TrimSpace(b) {
		case "sqlite":
			backends = append(backends, vsBackend{name: "sqlite", index: "hnsw"})
		case "hnsw", "ivfflat":
			backends = append(backends, vsBackend{name: "postgres " + b, index: b, pg: true})
		default:
			return fmt.Errorf("-vs-backends: %q is not sqlite, hnsw or ivfflat", b)
		}
	}
	up := &vecUpstream{dims: o.vsDims}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: up}
	go srv.Serve(ln)
	defer srv.Close()
	bin := o.proxyBin
	if bin == "" {
		p, err := newProcs(false)
		if err != nil {
			return err
		}
		defer p.Close()
		fmt.Fprintln(os.Stderr, "building ./cmd/proxy ...")
		if bin, err = p.buildProxy(ctx); err != nil {
			return err
		}
	}
	fmt.Printf("vector stores: %d dimensions, embedding upstream %v per call (ingestion), chunks of 500 tokens; load %s\n\n",
		o.vsDims, o.embedLatency, loadAvg())
	fmt.Printf("| %-17s | %8s | %18s | %11s | %11s | %9s |\n", "storage", "chunks", "ingestion chunks/s", "search p50", "search p99", "proxy RSS")
	fmt.Printf("|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 19), strings.Repeat("-", 10), strings.Repeat("-", 20), strings.Repeat("-", 13), strings.Repeat("-", 13), strings.Repeat("-", 11))
	for _, b := range backends {
		rs, err := benchBackend(ctx, o, bin, b, up, "http://"+ln.Addr().String()+"/v1", sizes)
		if err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
		for _, r := range rs {
			fmt.Printf("| %-17s | %8d | %18.0f | %11s | %11s | %6.0f MB |\n", r.backend, r.chunks, r.ingestRate,
				r.searchP50.Round(10*time.Microsecond), r.searchP99.Round(10*time.Microsecond), r.rssMB)
		}
	}
	fmt.Printf("\nload average after: %s\n", loadAvg())
	return nil
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 500 || (len(out) > 0 && n <= out[len(out)-1]) {
			return nil, fmt.Errorf("-vs-sizes: %q: want increasing chunk counts of at least 500", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// benchBackend starts a proxy on b, grows one store to each size and
// measures each step.
func benchBackend(ctx context.Context, o *options, bin string, b vsBackend, up *vecUpstream, upURL string, sizes []int) ([]vsResult, error) {
	p, err := newProcs(false)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	dbBlock := ""
	if b.pg {
		u, drop, err := pgSchema(ctx, o.vsDatabase)
		if err != nil {
			return nil, err
		}
		defer drop()
		dbBlock = "database: {url: \"" + u + "\"}\n"
	}
	cfg := filepath.Join(p.tmp, "vectors.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, vectorsBenchConfig, filepath.Join(p.tmp, "vsdata"), b.index, dbBlock), 0o600); err != nil {
		return nil, err
	}
	base, pid, err := p.startProxy(ctx, proxySpec{bin: bin, config: cfg, upstream: upURL[:len(upURL)-3], key: o.key})
	if err != nil {
		return nil, err
	}
	c := &vsClient{base: base, key: o.key, hc: &http.Client{Timeout: 5 * time.Minute}}
	var store struct{ ID string }
	if err := c.do(ctx, "POST", "/v1/vector_stores", `{"name":"bench"}`, &store); err != nil {
		return nil, err
	}
	const chunksPerFile = 500
	var out []vsResult
	have, fileNo := 0, 0
	for _, size := range sizes {
		up.latency.Store(int64(o.embedLatency))
		var ids []string
		for have+len(ids)*chunksPerFile < size {
			id, err := c.upload(ctx, fmt.Sprintf("doc%04d.txt", fileNo), benchDoc(fileNo, chunksPerFile))
			if err != nil {
				return nil, err
			}
			ids, fileNo = append(ids, id), fileNo+1
		}
		calls0 := up.calls.Load()
		start := time.Now()
		body, _ := json.Marshal(map[string]any{"file_ids": ids})
		var batch struct {
			ID         string
			Status     string
			FileCounts struct{ Completed, Failed, Total int } `json:"file_counts"`
		}
		if err := c.do(ctx, "POST", "/v1/vector_stores/"+store.ID+"/file_batches", string(body), &batch); err != nil {
			return nil, err
		}
		for batch.Status == "in_progress" {
			time.Sleep(100 * time.Millisecond)
			if err := c.do(ctx, "GET", "/v1/vector_stores/"+store.ID+"/file_batches/"+batch.ID, "", &batch); err != nil {
				return nil, err
			}
		}
		took := time.Since(start)
		if batch.FileCounts.Completed != len(ids) {
			return nil, fmt.Errorf("batch ended %s with %+v", batch.Status, batch.FileCounts)
		}
		added := 0
		for _, id := range ids {
			n, err := c.chunks(ctx, store.ID, id)
			if err != nil {
				return nil, err
			}
			added += n
		}
		have += added
		up.latency.Store(0)
		lat, err := c.searches(ctx, store.ID, 200)
		if err != nil {
			return nil, err
		}
		_, hwm, _ := procMem(pid)
		out = append(out, vsResult{backend: b.name, chunks: have, ingestRate: float64(added) / took.Seconds(),
			searchP50: lat[len(lat)/2], searchP99: lat[len(lat)*99/100], rssMB: float64(hwm) / (1 << 20),
			upstreamCPS: float64(up.calls.Load()-calls0) / took.Seconds()})
	}
	return out, nil
}

// benchVocab is the documents' and queries' vocabulary: 50,000 made-up
// words, so a query word is in about 1% of the chunks.
var benchVocab = func() []string {
	v := make([]string, 50000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range v {
		n := 3 + r.IntN(8)
		b := make([]byte, n)
		for j := range b {
			b[j] = byte('a' + r.IntN(26))
		}
		v[i] = string(b)
	}
	return v
}()

// benchDoc is document n: about chunks chunks of 500 tokens. The made-up
// words take about 3.8 cl100k tokens each, and a chunk adds 450 new tokens
// (500 with an overlap of 50): 119 words per chunk (measured: 330 words
// gave 2.8 times the chunks asked for).
func benchDoc(n, chunks int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	var b bytes.Buffer
	for w := range chunks * 119 {
		b.WriteString(benchVocab[r.IntN(len(benchVocab))])
		if w%15 == 14 {
			b.WriteString(".\n")
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()
}

type vsClient struct {
	base, key string
	hc        *http.Client
}

func (c *vsClient) do(ctx context.Context, method, path, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(req, out)
}

func (c *vsClient) send(req *http.Request, out any) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, lastN(b, 300))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

func (c *vsClient) upload(ctx context.Context, name string, data []byte) (string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("purpose", "assistants")
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write(data)
	mw.Close()
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/v1/files", &buf)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	var f struct{ ID string }
	return f.ID, c.send(req, &f)
}

func (c *vsClient) chunks(ctx context.Context, store, file string) (int, error) {
	var page struct{ Data []json.RawMessage }
	err := c.do(ctx, "GET", "/v1/vector_stores/"+store+"/files/"+file+"/content", "", &page)
	return len(page.Data), err
}

// searches runs n searches of 4 random words one after another and
// returns their latencies, sorted.
func (c *vsClient) searches(ctx context.Context, store string, n int) ([]time.Duration, error) {
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	lat := make([]time.Duration, 0, n)
	for range n {
		q := make([]string, 4)
		for i := range q {
			q[i] = benchVocab[r.IntN(len(benchVocab))]
		}
		body, _ := json.Marshal(map[string]any{"query": strings.Join(q, " "), "max_num_results": 10})
		start := time.Now()
		var page struct{ Data []json.RawMessage }
		if err := c.do(ctx, "POST", "/v1/vector_stores/"+store+"/search", string(body), &page); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(start))
		if len(page.Data) == 0 {
			return nil, errors.New("a search found nothing")
		}
	}
	slices.Sort(lat)
	return lat, nil
}

// pgSchema creates a schema of the bench's own in base with psql and
// returns base with search_path set to it, and its drop.
func pgSchema(ctx context.Context, base string) (string, func(), error) {
	schema := fmt.Sprintf("llmproxy_bench_%d", time.Now().UnixNano())
	if out, err := exec.CommandContext(ctx, "psql", base, "-v", "ON_ERROR_STOP=1", "-qc", "CREATE SCHEMA "+schema).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("psql (PostgreSQL at -vs-database): %w: %s", err, out)
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	var once sync.Once
	drop := func() {
		once.Do(func() {
			_ = exec.Command("psql", base, "-qc", "DROP SCHEMA "+schema+" CASCADE").Run()
		})
	}
	return u.String(), drop, nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
