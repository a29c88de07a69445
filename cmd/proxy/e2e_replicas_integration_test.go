//go:build integration

package main

// Scale-out end to end: several proxy replicas (real HTTP servers) share
// one Redis and one PostgreSQL, and the official SDK drives them. Each
// test gets its own Redis key prefix (redis.prefix) and PostgreSQL schema
// (search_path in database.url), both removed in cleanup, so the tests
// run in parallel. The harness is in e2e_replicas_helpers_integration_test.go.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"llmproxy/router"
)

// TestE2EReplicaBudget: three replicas share a $1.00 team budget; 300
// concurrent streams, round-robin. Each asks for 24 tokens at $0.00025
// a token ($0.006), so 166 fit whole and the 167th is clamped to the 16
// tokens left and cut in-stream; the rest get 429 insufficient_quota.
func TestE2EReplicaBudget(t *testing.T) {
	t.Parallel()
	st := mustSharedStores(t)
	up := newFakeUpstream(t)
	up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) { serveChat(w, body, tokenReply(24)) })
	reps := startReplicas(t, st, 3, up, nil, nil)
	const (
		total      = 300
		limit      = 1.00
		tokenCost  = 250.0 / 1e6 // one chunk: output_per_mtok 250
		requestUSD = 24 * tokenCost
		minimalUSD = 16 * tokenCost // budget.DefaultMinCompletion tokens
	)
	params := chatParams("gpt-test")
	params.MaxTokens = openai.Int(24)
	results := make([]streamResult, total)
	start := make(chan struct{})
	var wg sync.WaitGroup
	began := time.Now()
	for i := range total {
		c := reps[i%len(reps)].client()
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			results[i] = streamOnce(ctx, c, params)
		})
	}
	close(start)
	wg.Wait()
	elapsed := time.Since(began)

	tl := tallyStreams(t, results)
	t.Logf("%d streams in %v: %d admitted (%d clamped, %d cut in-stream), %d refused", total, elapsed, tl.admitted, tl.clamped, tl.cut, tl.refused)
	if got := float64(tl.admitted) * requestUSD; math.Abs(got-limit) > requestUSD {
		t.Errorf("admitted %d × $%.4f = $%.4f; want within one request of $%.2f", tl.admitted, requestUSD, got, limit)
	}
	if n := up.count(); n != tl.admitted {
		t.Errorf("upstream got %d requests; want the %d admitted", n, tl.admitted)
	}
	for _, r := range reps {
		expectExhausted(t, r, params)
	}
	redisSpent := budgetSpent(t, reps)
	if n := st.redisKeys(t); n == 0 {
		t.Errorf("no Redis keys under %s:*; want the shared budget there (redis.prefix)", st.prefix)
	}
	shutdownAll(t, reps)
	var dbSpent float64
	rows := st.ledger(t)
	for _, row := range rows {
		dbSpent += row.costUSD
	}
	t.Logf("spent: Redis $%.6f, PostgreSQL $%.6f (%d rows); cap $%.2f, one chunk $%.5f", redisSpent, dbSpent, len(rows), limit, tokenCost)
	for name, spent := range map[string]float64{"Redis": redisSpent, "PostgreSQL": dbSpent} {
		if spent > limit+tokenCost+1e-9 {
			t.Errorf("%s spend $%.6f; want at most $%.2f plus one chunk ($%.5f)", name, spent, limit, tokenCost)
		}
		if tl.refused > 0 && limit-spent >= minimalUSD {
			t.Errorf("%s spend $%.6f with %d refused: $%.6f left, a minimal request ($%.4f) still fit", name, spent, tl.refused, limit-spent, minimalUSD)
		}
	}
	if math.Abs(redisSpent-dbSpent) > 1e-6 {
		t.Errorf("Redis says $%.6f, the ledger $%.6f; want them equal", redisSpent, dbSpent)
	}
	if want := total + 2*len(reps); len(rows) != want {
		t.Errorf("ledger has %d rows; want %d (one per request)", len(rows), want)
	}
}

// budgetTally counts what the clients of one burst saw.
type budgetTally struct{ admitted, refused, clamped, cut int }

// tallyStreams counts the burst's outcomes and fails on any other than a
// whole 24-token stream, a stream clamped and cut with the budget error,
// or 429 insufficient_quota with x-should-retry: false.
func tallyStreams(t *testing.T, results []streamResult) budgetTally {
	t.Helper()
	var tl budgetTally
	for i, r := range results {
		switch {
		case r.failed:
			t.Errorf("request %d on replica %d failed: %+v", i, i%3+1, r)
		case r.status == 200:
			tl.admitted++
			if r.clamped != "" {
				tl.clamped++
			}
			if r.budgetError {
				tl.cut++
				if r.finish != "length" || r.content > 16 {
					t.Errorf("cut stream: finish %q after %d chunks; want length after at most 16", r.finish, r.content)
				}
			} else if r.content != 24 || r.finish != "stop" {
				t.Errorf("request %d: %d chunks, finish %q; want 24 and stop", i, r.content, r.finish)
			}
		case r.status == 429 && r.errType == "insufficient_quota" && r.retry == "false":
			tl.refused++
		default:
			t.Errorf("request %d: %+v; want 200, or 429 insufficient_quota with x-should-retry: false", i, r)
		}
	}
	return tl
}

// expectExhausted sends r one streaming and one plain request; both must
// get 429 insufficient_quota with x-should-retry: false.
func expectExhausted(t *testing.T, r *replica, params openai.ChatCompletionNewParams) {
	t.Helper()
	for _, stream := range []bool{true, false} {
		var res streamResult
		if stream {
			res = streamOnce(context.Background(), r.client(), params)
		} else {
			c := r.client()
			var resp *http.Response
			_, err := c.Chat.Completions.New(context.Background(), params, option.WithResponseInto(&resp))
			var apiErr *openai.Error
			if errors.As(err, &apiErr) {
				res = streamResult{status: resp.StatusCode, retry: resp.Header.Get("x-should-retry"), errType: apiErr.Type}
			}
		}
		if res.status != 429 || res.errType != "insufficient_quota" || res.retry != "false" {
			t.Errorf("replica %s after exhaustion (stream %v): %d %q x-should-retry %q; want 429 insufficient_quota, false",
				r.name, stream, res.status, res.errType, res.retry)
		}
	}
}

// budgetSpent is the team's spend in Redis as /v1/usage reports it; every
// replica must report the same.
func budgetSpent(t *testing.T, reps []*replica) float64 {
	t.Helper()
	var spent float64
	for i, r := range reps {
		status, body := r.get(t, "/v1/usage", replicaTeamKey)
		var rep usageReport
		if err := json.Unmarshal(body, &rep); status != 200 || err != nil || rep.Budget == nil || rep.Budget.USDSpent == nil {
			t.Fatalf("GET /v1/usage on replica %s = %d %s; want a budget with usd_spent", r.name, status, body)
		}
		if i > 0 && *rep.Budget.USDSpent != spent {
			t.Errorf("replica %s: usd_spent %v; replica 1 says %v", r.name, *rep.Budget.USDSpent, spent)
		}
		spent = *rep.Budget.USDSpent
	}
	return spent
}

// hitLog records when a fake upstream was called, and by which replica.
type hitLog struct {
	mu   sync.Mutex
	hits []hit
}

type hit struct {
	at      time.Time
	replica string
}

func (h *hitLog) add(r *http.Request) {
	h.mu.Lock()
	h.hits = append(h.hits, hit{time.Now(), r.Header.Get("X-Replica")})
	h.mu.Unlock()
}

func (h *hitLog) all() []hit {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.hits)
}

// TestE2EReplicaCooldown: deployment a answers a request through replica
// 1 with 429 and Retry-After: 2; until the 2 s are up no request through
// replica 2 reaches a, and afterwards a gets traffic again.
func TestE2EReplicaCooldown(t *testing.T) {
	t.Parallel()
	st := mustSharedStores(t)
	a, b := newFakeUpstream(t), newFakeUpstream(t)
	var aHits, bHits hitLog
	var limited atomic.Bool
	a.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		aHits.add(r)
		if limited.CompareAndSwap(false, true) {
			w.Header().Set("Retry-After", "2")
			writeUpstreamError(w, 429, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
			return
		}
		serveChat(w, body, defaultReply)
	})
	b.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		bHits.add(r)
		serveChat(w, body, defaultReply)
	})
	reps := startReplicas(t, st, 2, a, b, nil)
	chat := func(r *replica) string {
		t.Helper()
		c := r.client()
		var resp *http.Response
		if _, err := c.Chat.Completions.New(context.Background(), chatParams("ha"), option.WithResponseInto(&resp)); err != nil {
			t.Fatalf("chat through replica %s: %v", r.name, err)
		}
		return resp.Header.Get("x-llmproxy-provider")
	}
	if p := chat(reps[0]); p != "b" {
		t.Fatalf("first request through replica 1 served by %q; want b after a's 429", p)
	}
	hits := aHits.all()
	if len(hits) != 1 || hits[0].replica != "1" {
		t.Fatalf("a's hits = %+v; want the one 429 from replica 1", hits)
	}
	limitedAt := hits[0].at
	if cd := cooldownOf(t, reps[1], "a/gpt-4o-mini"); cd == nil || cd.Reason != "rate_limited" ||
		cd.Until.Before(limitedAt.Add(1900*time.Millisecond)) || cd.Until.After(limitedAt.Add(2100*time.Millisecond)) {
		t.Errorf("replica 2's /admin/deployments shows a's cooldown as %+v; want rate_limited until +2s", cd)
	}
	// Judged by when things happened, not when the loop sent them: under
	// load a request sent at +1.89 s may reach the router after the
	// cooldown ended, and may then rightly go to a.
	cooldownEnd := limitedAt.Add(2 * time.Second)
	sent := 0
	for time.Since(limitedAt) < 1900*time.Millisecond {
		if p := chat(reps[1]); p != "b" && time.Now().Before(cooldownEnd) {
			t.Errorf("%v after the 429, replica 2 routed to %q; want b (a cools down for 2 s)", time.Since(limitedAt), p)
		}
		sent++
		time.Sleep(10 * time.Millisecond)
	}
	if !eventually(2*time.Second, func() bool { return chat(reps[1]) == "a" }) {
		t.Fatalf("a got no traffic through replica 2 by %v after the 429", time.Since(limitedAt))
	}
	hits = aHits.all()
	if len(hits) < 2 {
		t.Fatalf("a's hits = %+v; want the 429 and a request after the cooldown", hits)
	}
	next := hits[1] // a's first hit after the 429: the upstream's own clock
	back := next.at.Sub(limitedAt)
	if next.replica != "2" || back < 2*time.Second-5*time.Millisecond {
		t.Errorf("a's first hit after the 429: replica %q at +%v; want replica 2 at +2s or later (hits %+v)", next.replica, back, hits)
	}
	t.Logf("cooldown: %d requests through replica 2 in the 1.9 s after the 429 all went to b (b hits %d); a served again at +%v",
		sent, len(bHits.all()), back)
}

// cooldownOf is deployment id's cooldown in r's /admin/deployments, nil
// when there is none.
func cooldownOf(t *testing.T, r *replica, id string) *router.Cooldown {
	t.Helper()
	status, body := r.get(t, "/admin/deployments", replicaMasterKey)
	var out struct {
		Data []router.DeploymentStatus `json:"data"`
	}
	if err := json.Unmarshal(body, &out); status != 200 || err != nil {
		t.Fatalf("GET /admin/deployments on replica %s = %d %s", r.name, status, body)
	}
	for _, d := range out.Data {
		if d.ID == id {
			return d.Cooldown
		}
	}
	t.Fatalf("replica %s has no deployment %s: %s", r.name, id, body)
	return nil
}

// TestE2EReplicaLedger: requests spread over three replicas, still in
// flight when all three drain, leave exactly one ledger row each, with the
// request id the client sent.
func TestE2EReplicaLedger(t *testing.T) {
	t.Parallel()
	st := mustSharedStores(t)
	up := newFakeUpstream(t)
	up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		// Slow enough that the drain starts while replies are still coming.
		rep := tokenReply(8)
		if !parseAsk(body).Stream {
			time.Sleep(150 * time.Millisecond)
			serveChat(w, body, rep)
			return
		}
		sw := newSSEWriter(w)
		for _, c := range chunks(rep, parseAsk(body).includeUsage()) {
			if sw.event(c) != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		sw.done()
	})
	unlimited := func(c *Config) { c.Teams[0].Budget = nil }
	reps := startReplicas(t, st, 3, up, nil, unlimited)
	const n = 60
	var b [4]byte
	_, _ = rand.Read(b[:])
	ids := make([]string, n)
	errs := make([]error, n)
	var done atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		ids[i] = fmt.Sprintf("ledger-%x-%03d", b, i)
		c := reps[i%3].client(option.WithHeader("X-Request-Id", ids[i]))
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if i%2 == 0 {
				_, errs[i] = c.Chat.Completions.New(ctx, chatParams("gpt-test"))
				done.Add(1)
				return
			}
			s := c.Chat.Completions.NewStreaming(ctx, chatParams("gpt-test"))
			for s.Next() {
			}
			errs[i] = s.Err()
			done.Add(1)
		})
	}
	if !eventually(10*time.Second, func() bool { return up.count() == n }) {
		t.Fatalf("upstream got %d of %d requests", up.count(), n)
	}
	inFlight := n - done.Load()
	shutdownAll(t, reps)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %s: %v; want it served through the drain", ids[i], err)
		}
	}
	var got []string
	for _, row := range st.ledger(t) {
		got = append(got, row.requestID)
		if row.status != 200 || row.completion != 8 {
			t.Errorf("row %s: status %d, %d completion tokens; want 200 and 8", row.requestID, row.status, row.completion)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Errorf("ledger request ids (%d rows) = %v\nwant (%d) %v", len(got), got, n, ids)
	}
	t.Logf("ledger: %d requests (%d in flight when the drain began), %d rows after the drain of 3 replicas", n, inFlight, len(got))
}

// TestE2EReplicaReady: with Redis and PostgreSQL up, /ready is 200 on
// every replica.
func TestE2EReplicaReady(t *testing.T) {
	t.Parallel()
	st := mustSharedStores(t)
	reps := startReplicas(t, st, 3, newFakeUpstream(t), nil, nil)
	for _, r := range reps {
		status, body := r.get(t, "/ready", "")
		if status != 200 || !strings.Contains(string(body), `"ready"`) {
			t.Errorf("replica %s: GET /ready = %d %s; want 200 ready", r.name, status, body)
		}
	}
}
