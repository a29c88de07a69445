package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// cfgEnv is a lookup function over a fixed environment.
func cfgEnv(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func mustParseConfig(tb testing.TB, src string, env map[string]string) *Config {
	tb.Helper()
	c, err := ParseConfig([]byte(src), cfgEnv(env))
	if err != nil {
		tb.Fatalf("ParseConfig: %v\n--- config:\n%s", err, src)
	}
	return c
}

// fullEnv is the fake environment configs/testdata/full.yaml needs.
var fullEnv = map[string]string{
	"LLMPROXY_MASTER_KEY": "mk-full-secret",
	"OPENAI_API_KEY":      "sk-openai-full",
	"OPENAI_BACKUP_KEY":   "sk-backup-full",
	"ANTHROPIC_API_KEY":   "sk-ant-full",
	"SEARCH_KEY":          "sk-search-full",
	"DATABASE_URL":        "postgres://llm:pw@127.0.0.1:5432/llm",
}

// TestLoadConfigFiles loads every config that ships: the examples with no
// environment at all, the fixtures with fullEnv. A fixture that is meant to
// fail is named *.invalid.yaml and skipped here.
func TestLoadConfigFiles(t *testing.T) {
	examples, _ := filepath.Glob("../../configs/*.yaml")
	fixtures, _ := filepath.Glob("../../configs/testdata/*.yaml")
	if len(examples) == 0 || len(fixtures) == 0 {
		t.Fatalf("no configs found: %v %v", examples, fixtures)
	}
	for _, path := range append(examples, fixtures...) {
		if strings.HasSuffix(path, ".invalid.yaml") {
			continue
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			env := map[string]string{}
			if strings.Contains(path, "testdata") {
				env = fullEnv
			}
			if filepath.Base(path) == "docker.yaml" {
				env = map[string]string{"LLMPROXY_API_KEY": "sk-docker-own-key"}
			}
			c, err := ParseConfig(data, cfgEnv(env))
			if err != nil {
				t.Fatalf("%s does not load:\n%v", path, err)
			}
			if len(c.Providers) == 0 || len(c.Models) == 0 {
				t.Errorf("%s: no providers or models", path)
			}
		})
	}
}

func TestLoadConfigExample(t *testing.T) {
	for _, k := range []string{"OPENAI_API_KEY", "LLMPROXY_DEMO_KEY"} {
		t.Setenv(k, "") // empty counts as unset for ${NAME:-default}
	}
	c, err := LoadConfig("../../configs/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Teams[0].APIKeys[0].Value(); got != "sk-demo" {
		t.Errorf("default team key = %q; want sk-demo", got)
	}
	want := []string{`providers[1] "openai": api_key is empty; requests to it will fail with 502`}
	if got := c.Warnings(); !reflect.DeepEqual(got, want) {
		t.Errorf("Warnings() = %q; want %q", got, want)
	}
	if _, err := LoadConfig("../../configs/does-not-exist.yaml"); err == nil {
		t.Error("LoadConfig(missing file) = nil error")
	}
}

func TestFullConfig(t *testing.T) {
	data, err := os.ReadFile("../../configs/testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(data, cfgEnv(fullEnv))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Server
	if s.Listen != "0.0.0.0:9090" || s.MaxBodyBytes != 1048576 || s.DrainTimeout.Std() != 45*time.Second ||
		s.ReadTimeout.Std() != time.Minute || s.BodyReadTimeout.Std() != 15*time.Second || s.IdleTimeout.Std() != 150*time.Second ||
		s.MasterKey.Value() != "mk-full-secret" || s.DataDir != "/var/lib/llmproxy" || s.LogLevel != "debug" ||
		s.ShutdownDelay == nil || s.ShutdownDelay.Std() != 10*time.Second || !s.AllowDemoKeys {
		t.Errorf("server = %+v", s)
	}
	backup := c.Providers[2]
	if backup.BaseURL != "https://api.openai.com/v1" || backup.APIKey.Value() != "sk-backup-full" ||
		backup.APIVersion != "2024-10-21" || backup.Headers["X-Team"] != "platform" {
		t.Errorf("providers[2] = %+v", backup)
	}
	// Provider timeouts inherit router.timeouts field by field.
	wantT := TimeoutsConfig{Duration(3 * time.Second), Duration(20 * time.Second), Duration(15 * time.Second), Duration(300 * time.Second)}
	if got := c.Providers[1].Timeouts; got != wantT {
		t.Errorf("providers[1].timeouts = %+v; want %+v", got, wantT)
	}
	if got := c.Providers[2].Timeouts; got != c.Router.Timeouts {
		t.Errorf("providers[2].timeouts = %+v; want router.timeouts %+v", got, c.Router.Timeouts)
	}
	m := c.Models[3]
	wantM := ModelConfig{
		Name: "gpt-4o", Type: "chat", Strategy: "least_latency",
		Deployments: []DeploymentConfig{
			{Provider: "openai", Model: "gpt-4o", Weight: 3, RPM: 500, TPM: 300000},
			{Provider: "openai-backup", Model: "gpt-4o", Weight: 1, Priority: 1,
				Pricing: &PricingConfig{InputPerMTok: 2.75, OutputPerMTok: 11, CachedInputPerMTok: 1.375}},
		},
		Pricing:       &PricingConfig{InputPerMTok: 2.5, OutputPerMTok: 10, CachedInputPerMTok: 1.25},
		ContextWindow: 128000, MaxOutputTokens: 16384,
		Capabilities: []string{"tools", "vision", "json_schema"},
		Fallbacks:    []string{"claude-sonnet"}, ContextWindowFallbacks: []string{"gpt-4.1"},
		Timeouts:  &TimeoutsConfig{FirstToken: Duration(10 * time.Second), Total: Duration(120 * time.Second)},
		RateLimit: &RateLimitConfig{RPM: 1000, TPM: 500000},
	}
	if !reflect.DeepEqual(m, wantM) {
		t.Errorf("models[3] =\n%+v\nwant\n%+v", m, wantM)
	}
	team := c.Teams[1]
	wantTeam := TeamConfig{
		Name:      "search",
		APIKeys:   []Secret{"sk-search-full", "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"},
		Models:    []string{"gpt-4o", "gpt-4o-mini", "demo-chat", "demo-embed"},
		RateLimit: &RateLimitConfig{RPM: 600, TPM: 200000},
		Budget:    &BudgetLimit{USD: 50, Tokens: 2000000, Period: "month"},
		Downgrade: []DowngradeRule{
			{AtBudgetUsed: 0.8, From: "gpt-4o", To: "gpt-4o-mini"},
			{AtBudgetUsed: 0.95, To: "demo-chat"},
			{MaxPromptTokens: 200, NoTools: true, To: "gpt-4o-mini"},
		},
		DowngradePolicy: "deny",
		KeyBudget:       &BudgetLimit{USD: 10, Period: "week"},
		KeyRateLimit:    &RateLimitConfig{RPM: 120},
		ModelBudgets:    map[string]BudgetLimit{"gpt-4o": {USD: 20, Period: "day"}},
	}
	if !reflect.DeepEqual(team, wantTeam) {
		t.Errorf("teams[1] =\n%+v\nwant\n%+v", team, wantTeam)
	}
	wantR := RouterConfig{
		Strategy: "priority", MaxAttempts: 4, MaxCooldown: Duration(2 * time.Minute),
		Breaker:       BreakerConfig{0.25, 20, Duration(2 * time.Minute), Duration(45 * time.Second), 3},
		Timeouts:      TimeoutsConfig{Duration(4 * time.Second), Duration(25 * time.Second), Duration(20 * time.Second), Duration(500 * time.Second)},
		ProbeInterval: Duration(30 * time.Second),
	}
	if c.Router != wantR {
		t.Errorf("router = %+v; want %+v", c.Router, wantR)
	}
	if *c.Redis != (RedisConfig{URL: "redis://127.0.0.1:6379/0", OnError: "fail_open", Prefix: "llmproxy-full", Timeout: Duration(2500 * time.Millisecond), PoolSize: 48}) {
		t.Errorf("redis = %+v", *c.Redis)
	}
	if c.Database.URL.Value() != fullEnv["DATABASE_URL"] || c.Budget.Unpriced != "deny" {
		t.Errorf("database, budget = %+v, %+v", c.Database, c.Budget)
	}
	wait := func(d time.Duration) *Duration { v := Duration(d); return &v }
	wantE := EmbeddingsConfig{Batch: EmbedBatchConfig{MaxInputs: 256, MaxWait: wait(10 * time.Millisecond)},
		Cache: EmbedCacheConfig{TTL: Duration(72 * time.Hour), MaxEntries: 50000, Scope: "shared"}}
	if !reflect.DeepEqual(c.Embeddings, wantE) {
		t.Errorf("embeddings = %+v; want %+v", c.Embeddings, wantE)
	}
	if e := c.Models[2].Embeddings; e == nil || !reflect.DeepEqual(*e.Batch, EmbedBatchConfig{MaxInputs: 64, MaxWait: wait(2 * time.Millisecond)}) {
		t.Errorf("models[2].embeddings = %+v; want batch {64, 2ms}", e)
	}
	zero := 0
	wantVS := VectorStoresConfig{EmbeddingModel: "demo-embed", Chunking: ChunkingConfig{MaxTokens: 800, OverlapTokens: &zero},
		MaxFileBytes: 100 << 20, Index: "ivfflat"}
	if c.VectorStores == nil || !reflect.DeepEqual(*c.VectorStores, wantVS) {
		t.Errorf("vector_stores = %+v; want %+v (an explicit overlap_tokens: 0 stays 0)", c.VectorStores, wantVS)
	}
	thr := func(v float64) *float64 { return &v }
	wantRAG := RAGConfig{TopK: 12, RerankTopK: 4, ScoreThreshold: thr(0.1), MaxContextTokens: 6000, RerankModel: "demo-rerank", OnError: "fail_closed"}
	if !reflect.DeepEqual(c.RAG, wantRAG) {
		t.Errorf("rag = %+v; want %+v", c.RAG, wantRAG)
	}
	wantModelRAG := &ModelRAGConfig{VectorStores: []string{"handbook", "vs_policies"}, RAGConfig: RAGConfig{TopK: 8, RerankTopK: 2,
		ScoreThreshold: thr(0.2), MaxContextTokens: 3000, RerankModel: "demo-rerank", OnError: "fail_open",
		Template: "Use these:{{range .References}}\n[{{.Index}}] {{.Filename}}: {{.Content}}{{end}}"}}
	if m := c.Models[len(c.Models)-1]; m.Name != "handbook-chat" || !reflect.DeepEqual(m.RAG, wantModelRAG) || c.Models[len(c.Models)-2].Type != "rerank" {
		t.Errorf("handbook-chat's rag = %+v; want %+v (and demo-rerank before it)", m.RAG, wantModelRAG)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("Warnings() = %q; want none", w)
	}
}

func TestVectorStoresDefaults(t *testing.T) {
	c := mustParseConfig(t, validBase+"vector_stores: {embedding_model: demo-embed}\n", nil)
	fifty := 50
	want := VectorStoresConfig{EmbeddingModel: "demo-embed", Chunking: ChunkingConfig{MaxTokens: 500, OverlapTokens: &fifty},
		MaxFileBytes: 52428800, Index: "hnsw"}
	if !reflect.DeepEqual(*c.VectorStores, want) {
		t.Errorf("vector_stores = %+v; want %+v", *c.VectorStores, want)
	}
	if c := mustParseConfig(t, validBase, nil); c.VectorStores != nil {
		t.Errorf("vector_stores without the section = %+v; want nil (off)", c.VectorStores)
	}
}

func TestApplyDefaults(t *testing.T) {
	c := mustParseConfig(t, `
providers: [{name: o, type: openai, api_key: k}]
models: [{name: m, deployments: [{provider: o, model: x}]}]
teams: [{name: t, api_keys: [k1]}]
redis: {url: "redis://localhost:6379"}
`, nil)
	sec := func(n int) Duration { return Duration(time.Duration(n) * time.Second) }
	delay := sec(5)
	fiveMS := Duration(5 * time.Millisecond)
	want := Config{
		Server: ServerConfig{Listen: "127.0.0.1:8080", MaxBodyBytes: 10 << 20, ShutdownDelay: &delay, DrainTimeout: sec(30), ReadTimeout: sec(60), BodyReadTimeout: sec(10), IdleTimeout: sec(120), DataDir: "./data", LogLevel: "info"},
		Providers: []ProviderConfig{{Name: "o", Type: "openai", BaseURL: "https://api.openai.com/v1", APIKey: "k",
			Timeouts: TimeoutsConfig{sec(5), sec(30), sec(30), sec(600)}}},
		Models: []ModelConfig{{Name: "m", Type: "chat", Deployments: []DeploymentConfig{{Provider: "o", Model: "x", Weight: 1}}}},
		Teams:  []TeamConfig{{Name: "t", APIKeys: []Secret{"k1"}, DowngradePolicy: "keep"}},
		Router: RouterConfig{Strategy: "weighted", MaxAttempts: 3, MaxCooldown: sec(300),
			Breaker:  BreakerConfig{0.5, 10, sec(60), sec(30), 2},
			Timeouts: TimeoutsConfig{sec(5), sec(30), sec(30), sec(600)}},
		Redis: &RedisConfig{URL: "redis://localhost:6379", OnError: "fail_closed", Prefix: "llmproxy", Timeout: sec(3),
			PoolSize: max(64, 10*runtime.GOMAXPROCS(0))},
		Budget: BudgetConfig{Unpriced: "allow"},
		Memory: MemoryConfig{Retention: Duration(720 * time.Hour), CleanupEvery: Duration(time.Hour)},
		Embeddings: EmbeddingsConfig{Batch: EmbedBatchConfig{MaxInputs: 128, MaxWait: &fiveMS},
			Cache: EmbedCacheConfig{TTL: Duration(168 * time.Hour), MaxEntries: 100000, Scope: "team"}},
		RAG: RAGConfig{TopK: 10, RerankTopK: 3, ScoreThreshold: new(float64), MaxContextTokens: 4000, OnError: "fail_closed"},
	}
	c.doc = nil
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("defaults =\n%+v\nwant\n%+v", *c, want)
	}
	for typ, url := range map[string]string{"anthropic": "https://api.anthropic.com", "gemini": "https://generativelanguage.googleapis.com", "demo": ""} {
		c := &Config{Providers: []ProviderConfig{{Type: typ}}}
		c.applyDefaults()
		if got := c.Providers[0].BaseURL; got != url {
			t.Errorf("default base_url for %s = %q; want %q", typ, got, url)
		}
	}
}

func TestSecretRedaction(t *testing.T) {
	const key = "sk-live-do-not-leak"
	c := &Config{
		Server:    ServerConfig{MasterKey: key},
		Providers: []ProviderConfig{{Name: "p", APIKey: key}},
		Teams:     []TeamConfig{{Name: "t", APIKeys: []Secret{key}}},
		Database:  DatabaseConfig{URL: key},
	}
	s := Secret(key)
	var out []string
	for _, f := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x", "%d"} {
		out = append(out, fmt.Sprintf(f, s), fmt.Sprintf(f, c), fmt.Sprintf(f, *c))
	}
	for _, v := range []any{s, c} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	for _, mk := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(mk(&buf)).Info("load", "key", s, "cfg", c, "team", c.Teams[0])
		out = append(out, buf.String())
	}
	for _, o := range out {
		if strings.Contains(o, key) {
			t.Errorf("secret leaked: %s", o)
		}
	}
	if !strings.Contains(out[0], "[redacted]") {
		t.Errorf("Sprintf(%%v, secret) = %q; want [redacted]", out[0])
	}
	if s.Value() != key {
		t.Errorf("Value() = %q; want the key", s.Value())
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"drain_timeout: 1m30s", "1m30s"},
		{`drain_timeout: "250ms"`, "250ms"},
		{"drain_timeout: 30", `server.drain_timeout: 30 is a bare number, not a duration: add a unit, such as "30s" [2:18]`},
		{"drain_timeout: 1.5", `1.5 is a bare number`},
		{`drain_timeout: "30"`, `server.drain_timeout: "30" is not a duration`},
		{"drain_timeout: [1]", `want a duration such as "30s"`},
	} {
		src := "server:\n  " + tc.in + "\nproviders: [{name: d, type: demo}]\nmodels: [{name: m, deployments: [{provider: d, model: m}]}]\n"
		got, err := ParseConfig([]byte(src), cfgEnv(nil))
		switch {
		case err != nil && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: error %q; want it to contain %q", tc.in, err, tc.want)
		case err == nil && got.Server.DrainTimeout.String() != tc.want:
			t.Errorf("%s: drain_timeout = %s; want %s", tc.in, got.Server.DrainTimeout, tc.want)
		}
	}
	if b, _ := Duration(90 * time.Second).MarshalText(); string(b) != "1m30s" {
		t.Errorf("MarshalText = %s; want 1m30s", b)
	}
}
