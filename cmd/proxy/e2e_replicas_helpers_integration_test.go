//go:build integration

package main

// The scale-out tests' harness (e2e_replicas_integration_test.go): each
// test's own share of the real Redis and PostgreSQL, and proxy replicas
// built like main builds one, on loopback ports.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	goredis "github.com/redis/go-redis/v9"
)

const (
	defaultTestRedis = "redis://127.0.0.1:6379/15"
	replicaTeamKey   = "sk-replica-team"
	replicaMasterKey = "sk-replica-master"
)

// replicaConfig is every replica's config; FAKE_A/FAKE_B are the fake
// upstreams and REPLICA names the replica in an upstream header, so a
// fake can tell which replica called it.
const replicaConfig = `
server:
  listen: 127.0.0.1:0
  drain_timeout: 5s
  master_key: ` + replicaMasterKey + `
providers:
  - {name: a, type: openai, base_url: "${FAKE_A}/v1", api_key: k, headers: {X-Replica: "${REPLICA}"}}
  - {name: b, type: openai, base_url: "${FAKE_B}/v1", api_key: k, headers: {X-Replica: "${REPLICA}"}}
models:
  - name: gpt-test
    pricing: {input_per_mtok: 0, output_per_mtok: 250}
    deployments: [{provider: a, model: gpt-4o-mini}]
  - name: ha
    strategy: priority
    deployments:
      - {provider: a, model: gpt-4o-mini, priority: 0}
      - {provider: b, model: gpt-4o-mini, priority: 1}
teams:
  - name: capped
    api_keys: ["` + replicaTeamKey + `"]
    budget: {usd: 1.00, period: month}
redis: {url: "${REDIS_URL}", prefix: "${REDIS_PREFIX}", on_error: fail_closed}
database: {url: "${DATABASE_URL}"}
`

// sharedStores is one test's share of the real Redis and PostgreSQL.
type sharedStores struct {
	redisURL, prefix string
	dbURL            string // the test database with search_path = its own schema
	rdb              *goredis.Client
}

// mustSharedStores reserves a key prefix and creates a schema, removing
// both in cleanup. Without a service the test skips, or fails under CI.
func mustSharedStores(t *testing.T) *sharedStores {
	t.Helper()
	missing := t.Skipf
	if os.Getenv("CI") == "true" {
		missing = t.Fatalf
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	tag := hex.EncodeToString(b[:])
	s := &sharedStores{redisURL: envOr("LLMPROXY_TEST_REDIS", defaultTestRedis), prefix: "llmproxy-test-" + tag}
	opt, err := goredis.ParseURL(s.redisURL)
	if err != nil {
		t.Fatalf("LLMPROXY_TEST_REDIS: %v", err)
	}
	rdb := goredis.NewClient(opt)
	s.rdb = rdb
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		missing("no Redis at LLMPROXY_TEST_REDIS (%s): %v", s.redisURL, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, s.prefix+":*", 500).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("redis cleanup: %v", err)
		}
		rdb.Close()
	})
	s.dbURL = testSchema(t, "llmproxy_e2e_"+tag+"_")
	return s
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// redisKeys counts the keys under the test's prefix.
func (s *sharedStores) redisKeys(t *testing.T) int {
	t.Helper()
	keys, err := s.rdb.Keys(context.Background(), s.prefix+":*").Result()
	if err != nil {
		t.Fatalf("redis KEYS: %v", err)
	}
	return len(keys)
}

// ledgerRow is one usage_ledger row as the tests read it.
type ledgerRow struct {
	requestID  string
	status     int
	costUSD    float64
	completion int
}

// ledger reads every row of the test's usage_ledger.
func (s *sharedStores) ledger(t *testing.T) []ledgerRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT request_id, status, cost_usd, completion_tokens FROM usage_ledger ORDER BY id`)
	if err != nil {
		t.Fatalf("query usage_ledger: %v", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledgerRow, error) {
		var l ledgerRow
		return l, r.Scan(&l.requestID, &l.status, &l.costUSD, &l.completion)
	})
	if err != nil {
		t.Fatalf("read usage_ledger: %v", err)
	}
	return out
}

// replica is one running proxy, started by startProxy.
type replica struct {
	*proxy
	name string
}

// startReplicas starts n replicas of replicaConfig in front of the fakes
// a and b (b may be nil), sharing st; edit may change each config. Each
// goes through startProxy, whose cleanup drains it (5 s) and fails the
// test on a Serve or Shutdown error, an ERROR log line, a secret in the
// logs or a response without x-request-id.
func startReplicas(t *testing.T, st *sharedStores, n int, a, b *fakeUpstream, edit func(*Config)) []*replica {
	t.Helper()
	bURL := "http://127.0.0.1:9"
	if b != nil {
		bURL = b.srv.URL
	}
	reps := make([]*replica, n)
	for i := range reps {
		env := map[string]string{"FAKE_A": a.srv.URL, "FAKE_B": bURL, "REPLICA": fmt.Sprint(i + 1),
			"REDIS_URL": st.redisURL, "REDIS_PREFIX": st.prefix, "DATABASE_URL": st.dbURL}
		cfg := parseTestConfig(t, replicaConfig, env)
		if edit != nil {
			edit(cfg)
		}
		p := startProxy(t, cfg, withDrain(5*time.Second),
			withTransport(func(tr *http.Transport) { tr.MaxIdleConnsPerHost = 128 }))
		reps[i] = &replica{proxy: p, name: env["REPLICA"]}
	}
	return reps
}

// shutdown drains the replica (once, 5 s) and fails the test on a
// Shutdown or Serve error; the cleanup checks its logs.
func (r *replica) shutdown(t *testing.T) {
	if err := r.stop(5 * time.Second); err != nil {
		t.Errorf("replica %s: Shutdown: %v", r.name, err)
	}
	if r.serveErr != nil {
		t.Errorf("replica %s: Serve: %v", r.name, r.serveErr)
	}
}

// shutdownAll drains every replica at once, as a rolling stop would.
func shutdownAll(t *testing.T, reps []*replica) {
	var wg sync.WaitGroup
	for _, r := range reps {
		wg.Go(func() { r.shutdown(t) })
	}
	wg.Wait()
}

// client is an SDK client for the replica that never retries.
func (r *replica) client(opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{option.WithBaseURL(r.url + "/v1/"),
		option.WithAPIKey(replicaTeamKey), option.WithHTTPClient(r.hc), option.WithMaxRetries(0)}, opts...)...)
}

// get sends a GET with key and returns the status and body.
func (r *replica) get(t *testing.T, path, key string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", r.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := r.hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s on replica %s: %v", path, r.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// tokenReply streams n one-token chunks (" hi") and reports n completion
// tokens, whatever max_tokens says: the budget must hold without the
// upstream's help.
func tokenReply(n int) reply {
	return reply{id: "chatcmpl-replica", content: slices.Repeat([]string{" hi"}, n),
		usage: wireUsage{PromptTokens: 9, CompletionTokens: n, TotalTokens: 9 + n}}
}

// streamResult is what a client saw of one streaming request.
type streamResult struct {
	status              int
	errType, retry      string
	clamped, finish     string
	content             int
	budgetError, failed bool
}

func streamOnce(ctx context.Context, c openai.Client, params openai.ChatCompletionNewParams) streamResult {
	var resp *http.Response
	s := c.Chat.Completions.NewStreaming(ctx, params, option.WithResponseInto(&resp))
	var res streamResult
	for s.Next() {
		ch := s.Current()
		if len(ch.Choices) > 0 {
			if ch.Choices[0].Delta.Content != "" {
				res.content++
			}
			if f := ch.Choices[0].FinishReason; f != "" {
				res.finish = f
			}
		}
	}
	err := s.Err()
	if resp == nil {
		res.failed = true
		return res
	}
	res.status, res.retry, res.clamped = resp.StatusCode, resp.Header.Get("x-should-retry"), resp.Header.Get("x-llmproxy-max-tokens-clamped")
	var apiErr *openai.Error
	switch {
	case errors.As(err, &apiErr):
		res.errType = apiErr.Type
	case err != nil && strings.Contains(err.Error(), "budget exhausted"):
		res.budgetError = true
	case err != nil:
		res.failed = true
	}
	return res
}
