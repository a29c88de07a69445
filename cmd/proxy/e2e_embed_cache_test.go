package main

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"llmproxy/router"
)

// embedCacheConfig: one embedding alias on the fake, priced so spend is
// visible; team "a" has a budget (the guard admits and settles), team "b"
// none. max_wait is the longest allowed (1s) so that batches fill to
// max_inputs even when the 1,000 requests trickle in under -race on a
// loaded machine (at 250ms a loaded run made 18–24 calls, not ≤ 14).
const embedCacheConfig = `
server:
  listen: 127.0.0.1:0
providers:
  - name: fake
    type: openai
    base_url: ${FAKE_URL}/v1
    api_key: ${UPSTREAM_KEY}
models:
  - name: emb
    type: embedding
    pricing: {input_per_mtok: 1000, output_per_mtok: 0}
    deployments:
      - provider: fake
        model: text-embedding-3-small
teams:
  - name: a
    api_keys: ["${TEAM_KEY}"]
    budget: {usd: 100, period: day}
  - name: b
    api_keys: ["sk-team-b"]
embeddings:
  batch: {max_inputs: 128, max_wait: 1s}
  cache:
    scope: ${SCOPE}
`

// textVector is the fake upstream's embedding of text: 12 float32 values
// from its hash, spread over several magnitudes (down to 1e-7) so that
// float formatting is exercised.
func textVector(text string) []float32 {
	v := make([]float32, 12)
	for i := range v {
		h := fnv.New64a()
		h.Write([]byte(strconv.Itoa(i) + "\x00" + text))
		x := h.Sum64()
		v[i] = float32(int64(x%2000001)-1000000) / 1e6 * float32(math.Pow10(-(i % 8)))
	}
	return v
}

// upstreamFloat and upstreamBase64 are how the fake writes one vector:
// each float32 in its shortest form, or base64 of little-endian float32.
func upstreamFloat(v []float32) string {
	parts := make([]string, len(v))
	for i, f := range v {
		parts[i] = strconv.FormatFloat(float64(f), 'g', -1, 32)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func upstreamBase64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return `"` + base64.StdEncoding.EncodeToString(b) + `"`
}

// serveTextEmbeddings answers like OpenAI, with a vector that depends on
// the text and one prompt token per word.
func serveTextEmbeddings(w http.ResponseWriter, body []byte) {
	var ask struct {
		Input          json.RawMessage `json:"input"`
		EncodingFormat string          `json:"encoding_format"`
	}
	_ = json.Unmarshal(body, &ask)
	var texts []string
	if json.Unmarshal(ask.Input, &texts) != nil {
		var one string
		_ = json.Unmarshal(ask.Input, &one)
		texts = []string{one}
	}
	var sb strings.Builder
	sb.WriteString(`{"object":"list","data":[`)
	tokens := 0
	for i, text := range texts {
		if i > 0 {
			sb.WriteByte(',')
		}
		emb := upstreamFloat(textVector(text))
		if ask.EncodingFormat == "base64" {
			emb = upstreamBase64(textVector(text))
		}
		fmt.Fprintf(&sb, `{"object":"embedding","index":%d,"embedding":%s}`, i, emb)
		tokens += len(strings.Fields(text))
	}
	fmt.Fprintf(&sb, `],"model":"text-embedding-3-small","usage":{"prompt_tokens":%d,"total_tokens":%d}}`, tokens, tokens)
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(sb.String()))
}

// startEmbedCacheE2E starts a proxy with embedCacheConfig (scope "team" or
// "shared") in front of a fake that embeds by text.
func startEmbedCacheE2E(t *testing.T, scope string) *e2e {
	t.Helper()
	up := newFakeUpstream(t)
	up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) { serveTextEmbeddings(w, body) })
	env := map[string]string{"FAKE_URL": up.srv.URL, "UPSTREAM_KEY": providerKey, "TEAM_KEY": teamKeyDefault, "SCOPE": scope}
	p := startProxy(t, parseTestConfig(t, embedCacheConfig, env),
		withTransport(func(tr *http.Transport) { tr.MaxIdleConnsPerHost = 1024 }))
	return &e2e{proxy: p, t: t, up: up}
}

// embedded is what the SDK saw of one single-input call.
type embedded struct {
	raw   string // the embedding's JSON value, as sent
	cache string // x-llmproxy-cache
	err   error
}

func embedText(ctx context.Context, c *openai.Client, text string, format openai.EmbeddingNewParamsEncodingFormat) embedded {
	var resp *http.Response
	out, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "emb", EncodingFormat: format,
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String(text)}}, option.WithResponseInto(&resp))
	if err != nil {
		return embedded{err: err}
	}
	if len(out.Data) != 1 {
		return embedded{err: fmt.Errorf("%d items; want 1", len(out.Data))}
	}
	return embedded{raw: out.Data[0].JSON.Embedding.Raw(), cache: resp.Header.Get("x-llmproxy-cache")}
}

// embedAll sends one request per text, all at once.
func embedAll(c *openai.Client, texts []string, format openai.EmbeddingNewParamsEncodingFormat) []embedded {
	out := make([]embedded, len(texts))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, text := range texts {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out[i] = embedText(ctx, c, text, format)
		})
	}
	close(start)
	wg.Wait()
	return out
}

// teamSpend is the team's settled spend and request count in /v1/usage
// once the ledger holds requests rows. The wait is long: under the race
// detector on a loaded 2-core machine the SQLite ledger (transpiled C,
// instrumented too) took over 10 s to write a thousand rows in a CI run.
func (e *e2e) teamSpend(t *testing.T, key string, requests int64) usageTotals {
	t.Helper()
	now := time.Now().UTC()
	q := "/v1/usage?start=" + now.AddDate(0, 0, -1).Format(usageDate) + "&end=" + now.AddDate(0, 0, 1).Format(usageDate)
	var rep usageReport
	if !eventually(45*time.Second, func() bool {
		_, b := e.do("GET", q, "", authHeader(key))
		rep = usageReport{}
		return json.Unmarshal(b, &rep) == nil && rep.Totals.Requests == requests
	}) {
		t.Fatalf("/v1/usage totals = %+v; want %d requests", rep.Totals, requests)
	}
	return rep.Totals
}

// TestE2EEmbedCoalesceAndCache is issue 10's "done when": 1,000 concurrent
// single-input requests with distinct texts each get the upstream's own
// vector for their text, in at most 1000/max_inputs × 2 upstream calls;
// the same 1,000 again make no upstream call, say x-llmproxy-cache: hit
// and cost $0; and base64 answers from the same entries are byte-exact
// with the upstream's base64.
func TestE2EEmbedCoalesceAndCache(t *testing.T) {
	e := startEmbedCacheE2E(t, "team")
	c := e.noRetry()
	texts := make([]string, 1000)
	for i := range texts {
		texts[i] = fmt.Sprintf("document %d about topic %d", i, i%7)
	}
	check := func(round string, got []embedded, want func(string) string, cache string) {
		t.Helper()
		bad := 0
		for i, g := range got {
			switch {
			case g.err != nil:
				t.Errorf("%s %d: %v", round, i, g.err)
			case g.raw != want(texts[i]):
				t.Errorf("%s %d: embedding %.60s; want the upstream's %.60s", round, i, g.raw, want(texts[i]))
			case g.cache != cache:
				t.Errorf("%s %d: x-llmproxy-cache %q; want %q", round, i, g.cache, cache)
			default:
				continue
			}
			if bad++; bad > 5 {
				t.FailNow()
			}
		}
	}
	float := func(s string) string { return upstreamFloat(textVector(s)) }
	b64 := func(s string) string { return upstreamBase64(textVector(s)) }

	check("first", embedAll(c, texts, openai.EmbeddingNewParamsEncodingFormatFloat), float, "miss")
	calls := e.up.count()
	t.Logf("1000 requests, %d upstream calls", calls)
	if max := 1000 / 128 * 2; calls > max {
		t.Fatalf("upstream got %d calls for 1000 inputs; want at most %d", calls, max)
	}
	first := e.teamSpend(t, teamKeyDefault, 1000)
	if first.CostUSD <= 0 || first.PromptTokens != 5000 {
		t.Fatalf("first round: $%.6f for %d prompt tokens; want 5000 tokens charged", first.CostUSD, first.PromptTokens)
	}

	check("again", embedAll(c, texts, openai.EmbeddingNewParamsEncodingFormatFloat), float, "hit")
	check("base64", embedAll(c, texts[:200], openai.EmbeddingNewParamsEncodingFormatBase64), b64, "hit")
	if n := e.up.count(); n != calls {
		t.Fatalf("upstream got %d more calls for cached inputs; want 0", n-calls)
	}
	e.tr.base.CloseIdleConnections() // a thousand idle connections slow the drain under load
	again := e.teamSpend(t, teamKeyDefault, 2200)
	if again.CostUSD != first.CostUSD || again.PromptTokens != first.PromptTokens || again.CachedTokens != 6000 {
		t.Fatalf("after the cached rounds: $%.6f, %d prompt and %d cached tokens; want $%.6f, %d and 6000",
			again.CostUSD, again.PromptTokens, again.CachedTokens, first.CostUSD, first.PromptTokens)
	}
}

// TestE2EEmbedCacheScope: with scope team, a text team a cached is a miss
// for team b; with scope shared, a hit. A request mixing cached and new
// texts is partial and sends only the new ones upstream.
func TestE2EEmbedCacheScope(t *testing.T) {
	for _, tc := range []struct{ scope, wantB string }{{"team", "miss"}, {"shared", "hit"}} {
		t.Run(tc.scope, func(t *testing.T) {
			e := startEmbedCacheE2E(t, tc.scope)
			a, b := e.noRetry(), e.noRetry(option.WithAPIKey("sk-team-b"))
			ctx := withTimeout(t)
			if r := embedText(ctx, a, "shared words here", ""); r.err != nil || r.cache != "miss" {
				t.Fatalf("team a first: %q %v; want miss", r.cache, r.err)
			}
			if r := embedText(ctx, a, "shared words here", ""); r.cache != "hit" {
				t.Fatalf("team a again: %q %v; want hit", r.cache, r.err)
			}
			before := e.up.count()
			r := embedText(ctx, b, "shared words here", "")
			if r.err != nil || r.cache != tc.wantB || r.raw != upstreamFloat(textVector("shared words here")) {
				t.Fatalf("team b: %q %v; want %s with the upstream's vector", r.cache, r.err, tc.wantB)
			}
			if wantCalls := map[string]int{"miss": 1, "hit": 0}[tc.wantB]; e.up.count()-before != wantCalls {
				t.Fatalf("team b made %d upstream calls; want %d", e.up.count()-before, wantCalls)
			}
			var resp *http.Response
			out, err := a.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "emb", Input: openai.EmbeddingNewParamsInputUnion{
				OfArrayOfStrings: []string{"brand new text", "shared words here"}}}, option.WithResponseInto(&resp))
			if err != nil || resp.Header.Get("x-llmproxy-cache") != "partial" || len(out.Data) != 2 ||
				out.Data[0].JSON.Embedding.Raw() != upstreamFloat(textVector("brand new text")) ||
				out.Data[1].JSON.Embedding.Raw() != upstreamFloat(textVector("shared words here")) {
				t.Fatalf("mixed request: %v, cache %q; want partial with both upstream vectors in order", err, resp.Header.Get("x-llmproxy-cache"))
			}
			var sent struct{ Input []string }
			e.up.mu.Lock()
			_ = json.Unmarshal(e.up.reqs[len(e.up.reqs)-1].Body, &sent)
			e.up.mu.Unlock()
			if len(sent.Input) != 1 || sent.Input[0] != "brand new text" {
				t.Fatalf("upstream got %q; want only the uncached text", sent.Input)
			}
		})
	}
}

// TestE2EEmbedGoAPI: embed.Service.Embed, what RAG and ingestion call,
// takes the same cache, budget and usage ledger as /v1/embeddings: its
// first call is charged and recorded, its second is a $0 hit, and a text
// cached over HTTP is a hit for it too.
func TestE2EEmbedGoAPI(t *testing.T) {
	e := startEmbedCacheE2E(t, "team")
	ctx := withTimeout(t)
	id := router.Identity{Team: "a", KeyID: "go-api"}
	texts := []string{"retrieval query words", "another query"}
	for i, want := range []string{"miss", "hit"} {
		vecs, meta, err := e.srv.embedder.Embed(ctx, id, "emb", texts)
		if err != nil || meta.EmbedCache != want {
			t.Fatalf("call %d: %v, cache %q; want %s", i+1, err, meta.EmbedCache, want)
		}
		for j, text := range texts {
			if upstreamFloat(vecs[j]) != upstreamFloat(textVector(text)) {
				t.Errorf("call %d: vector %d is not the upstream's", i+1, j)
			}
		}
	}
	if n := e.up.count(); n != 1 {
		t.Fatalf("upstream got %d calls; want 1", n)
	}
	if r := embedText(ctx, e.noRetry(), "retrieval query words", ""); r.cache != "hit" {
		t.Fatalf("HTTP after the Go API: %q %v; want hit", r.cache, r.err)
	}
	tot := e.teamSpend(t, teamKeyDefault, 3)
	if tot.PromptTokens != 5 || tot.CachedTokens != 8 || tot.CostUSD != 5*1000.0/1e6 {
		t.Fatalf("ledger: %d prompt, %d cached tokens, $%.6f; want 5, 8 and $%.6f", tot.PromptTokens, tot.CachedTokens, tot.CostUSD, 5*1000.0/1e6)
	}
}
