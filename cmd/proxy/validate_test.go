package main

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// validBase is a small valid config the broken cases append to or edit.
const validBase = `providers:
  - {name: demo, type: demo}
  - {name: openai, type: openai, api_key: sk-provider-secret}
models:
  - name: demo-chat
    deployments: [{provider: demo, model: demo-chat}]
  - name: gpt-4o-mini
    deployments: [{provider: openai, model: gpt-4o-mini}]
  - name: demo-embed
    type: embedding
    deployments: [{provider: demo, model: demo-embed}]
teams:
  - name: default
    api_keys: [sk-team-secret]
`

func TestParseConfigBroken(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		env       map[string]string
		want      string
	}{
		{"unknown key", "server:\n  listn: :8080\n" + validBase, nil, `[2:3] unknown field "listn"`},
		{"unknown top-level key", validBase + "rooter: {}\n", nil, `[15:1] unknown field "rooter"`},
		{"duplicate key", "server:\n  listen: :1\n  listen: :2\n" + validBase, nil, `[3:3] mapping key "listen" already defined at [2:3]`},
		{"type error", "server:\n  max_body_bytes: lots\n" + validBase, nil, `server.max_body_bytes: "lots" is not a whole number [2:19]`},
		{"type error deep", "models:\n  - name: x\n    pricing: {input_per_mtok: cheap}\n    deployments: [{provider: demo, model: demo-chat}]\nproviders: [{name: demo, type: demo}]\n",
			nil, `models[0].pricing.input_per_mtok: "cheap" is not a number [3:31]`},
		{"type error in a list", strings.Replace(validBase, "model: gpt-4o-mini}", "model: gpt-4o-mini, weight: heavy}", 1), nil, `models[1].deployments[0].weight: "heavy" is not a whole number [`},
		{"type error not a list", "models: 3\nproviders: [{name: demo, type: demo}]\n", nil, "models: 3 is not a list [1:9]"},
		{"type error secret", "teams:\n  - name: t\n    api_keys: sk-x\nproviders: [{name: demo, type: demo}]\n", nil, "teams[0].api_keys: a string is not a list [3:15]"},
		{"type error expanded", "server: {max_body_bytes: \"${BIG}\"}\n" + validBase, map[string]string{"BIG": "huge"}, `server.max_body_bytes: "huge" is not a whole number [1:26]`},
		{"two documents", validBase + "---\nserver: {}\n", nil, "want one YAML document"},
		{"syntax error", "server: [\n", nil, "[1:"},
		{"empty", "", nil, "providers: at least one provider is required"},
		{"listen", "server: {listen: \"8080\"}\n" + validBase, nil, `server.listen: "8080" is not host:port; want e.g. "127.0.0.1:8080" or ":8080" [1:18]`},
		{"max body", "server: {max_body_bytes: -1}\n" + validBase, nil, "server.max_body_bytes: -1 is not positive"},
		{"body read timeout", "server: {body_read_timeout: -1s}\n" + validBase, nil, `server.body_read_timeout: "-1s" is negative`},
		{"negative duration", "server: {drain_timeout: -5s}\n" + validBase, nil, `server.drain_timeout: "-5s" is negative`},
		{"negative shutdown delay", "server: {shutdown_delay: -1s}\n" + validBase, nil, `server.shutdown_delay: "-1s" is negative`},
		{"log level", "server: {log_level: loud}\n" + validBase, nil, `server.log_level: unknown log level "loud" (want one of: debug, info, warn, error)`},
		{"provider type", strings.Replace(validBase, "type: demo}", "type: opnai}", 1), nil, `providers[0].type: unknown type "opnai" (want one of: anthropic, azure, demo, gemini, openai) [2:24]`},
		{"provider type missing", strings.Replace(validBase, ", type: demo}", "}", 1), nil, "providers[0].type: required: the adapter type (want one of: anthropic, azure, demo, gemini, openai)"},
		{"base url", strings.Replace(validBase, "type: openai,", "type: openai, base_url: api.acme.io,", 1), nil, `providers[1].base_url: "api.acme.io" is not an absolute URL`},
		{"base url password hidden", strings.Replace(validBase, "type: openai,", "type: openai, base_url: \"ftp://u:hunter2@h\",", 1), nil, `"ftp://u:xxxxx@h" is not an absolute URL`},
		{"duplicate provider", strings.Replace(validBase, "name: openai, type: openai", "name: demo, type: openai", 1), nil, `providers[1].name: duplicate provider "demo" (first at providers[0])`},
		{"header name", strings.Replace(validBase, "type: openai,", "type: openai, headers: {\"Bad Header\": v},", 1), nil, `providers[1].headers: "Bad Header" is not a valid header name`},
		{"unknown deployment provider", strings.Replace(validBase, "provider: openai", "provider: opneai", 1), nil, `models[1].deployments[0].provider: unknown provider "opneai" (want one of: demo, openai) [8:30]`},
		{"no deployments", strings.Replace(validBase, "teams:", "  - name: lonely\nteams:", 1), nil, "models[3].deployments: at least one deployment is required [12:5]"},
		{"duplicate model", strings.Replace(validBase, "name: gpt-4o-mini", "name: demo-chat", 1), nil, `models[1].name: duplicate model "demo-chat" (first at models[0])`},
		{"model type", strings.Replace(validBase, "type: embedding", "type: embeding", 1), nil, `models[2].type: unknown type "embeding" (want one of: chat, embedding, rerank)`},
		{"fallback unknown", strings.Replace(validBase, "  - name: gpt-4o-mini\n", "  - name: gpt-4o-mini\n    fallbacks: [gpt-5]\n", 1), nil, `models[1].fallbacks[0]: unknown model "gpt-5"`},
		{"fallback type", strings.Replace(validBase, "  - name: gpt-4o-mini\n", "  - name: gpt-4o-mini\n    context_window_fallbacks: [demo-embed]\n", 1), nil, `models[1].context_window_fallbacks[0]: "demo-embed" is a embedding model; want a chat model like "gpt-4o-mini"`},
		{"strategy", strings.Replace(validBase, "  - name: gpt-4o-mini\n", "  - name: gpt-4o-mini\n    strategy: fastest\n", 1), nil, `models[1].strategy: unknown strategy "fastest" (want one of: weighted, priority, least_latency, least_inflight, cost)`},
		{"capability", strings.Replace(validBase, "  - name: gpt-4o-mini\n", "  - name: gpt-4o-mini\n    capabilities: [tool]\n", 1), nil, `models[1].capabilities[0]: unknown capability "tool"`},
		{"max output over window", strings.Replace(validBase, "  - name: gpt-4o-mini\n", "  - name: gpt-4o-mini\n    context_window: 100\n    max_output_tokens: 200\n", 1), nil, "models[1].max_output_tokens: 200 is more than context_window 100"},
		{"negative weight", strings.Replace(validBase, "model: gpt-4o-mini}", "model: gpt-4o-mini, weight: -2}", 1), nil, "models[1].deployments[0].weight: -2 is negative"},
		{"negative price", strings.Replace(validBase, "  - name: gpt-4o-mini\n", "  - name: gpt-4o-mini\n    pricing: {input_per_mtok: -1}\n", 1), nil, "models[1].pricing.input_per_mtok: -1 is negative"},
		{"empty key", strings.Replace(validBase, "[sk-team-secret]", "[sk-team-secret, \"${EMPTY_KEY}\"]", 1), map[string]string{"EMPTY_KEY": ""}, "teams[0].api_keys[1]: empty key"},
		{"whitespace key", strings.Replace(validBase, "[sk-team-secret]", "[\"${K}\"]", 1), map[string]string{"K": "sk-x\n"}, "teams[0].api_keys[0]: key has leading or trailing whitespace"},
		{"duplicate key across teams", validBase + "  - name: other\n    api_keys: [sk-team-secret]\n", nil, "teams[1].api_keys[0]: duplicate key (same as teams[0].api_keys[0])"},
		{"key equals its hash", validBase + "  - name: other\n    api_keys: [\"sha256:" + sha256Hex("sk-team-secret") + "\"]\n", nil, "teams[1].api_keys[0]: duplicate key"},
		{"short hash", strings.Replace(validBase, "[sk-team-secret]", "[\"sha256:abcd\"]", 1), nil, `teams[0].api_keys[0]: want "sha256:" followed by 64 hex digits, got 4 characters after it`},
		{"non-hex hash", strings.Replace(validBase, "[sk-team-secret]", "[\"sha256:"+strings.Repeat("g", 64)+"\"]", 1), nil, "found another character"},
		{"team without keys", validBase + "  - name: other\n", nil, "teams[1].api_keys: at least one key is required"},
		{"duplicate team", validBase + "  - name: default\n    api_keys: [k2]\n", nil, `teams[1].name: duplicate team "default" (first at teams[0])`},
		{"team model", validBase + "    models: [demo-chat, gpt-5]\n", nil, `teams[0].models[1]: unknown model "gpt-5"`},
		{"budget period", validBase + "    budget: {usd: 5, period: year}\n", nil, `teams[0].budget.period: unknown period "year" (want one of: day, week, month)`},
		{"budget period missing", validBase + "    budget: {usd: 5}\n", nil, "teams[0].budget.period: required"},
		{"budget empty", validBase + "    budget: {period: day}\n", nil, "teams[0].budget: no limit; set usd, tokens or both"},
		{"key_budget period", validBase + "    key_budget: {usd: 5, period: year}\n", nil, `teams[0].key_budget.period: unknown period "year"`},
		{"model_budgets unknown model", validBase + "    model_budgets: {nope: {usd: 1, period: day}}\n", nil, `teams[0].model_budgets.nope: unknown model "nope"`},
		{"key_rate_limit negative", validBase + "    key_rate_limit: {rpm: -1}\n", nil, "teams[0].key_rate_limit.rpm"},
		{"at_budget_used range", validBase + "    budget: {usd: 5, period: day}\n    downgrade: [{at_budget_used: 1.5, to: demo-chat}]\n", nil, "teams[0].downgrade[0].at_budget_used: 1.5 is out of range; want a share of the budget in (0, 1]"},
		{"at_budget_used without budget", validBase + "    downgrade: [{at_budget_used: 0.5, to: demo-chat}]\n", nil, `teams[0].downgrade[0].at_budget_used: team "default" has no budget`},
		{"downgrade to unknown", validBase + "    downgrade: [{max_prompt_tokens: 10, to: gpt-4o-mni}]\n", nil, `teams[0].downgrade[0].to: unknown model "gpt-4o-mni"`},
		{"downgrade from unknown", validBase + "    downgrade: [{no_tools: true, from: gpt4, to: demo-chat}]\n", nil, `teams[0].downgrade[0].from: unknown model "gpt4"`},
		{"downgrade outside allow-list", validBase + "    models: [gpt-4o-mini]\n    downgrade: [{no_tools: true, from: gpt-4o-mini, to: demo-chat}]\n", nil, `teams[0].downgrade[0].to: "demo-chat" is not in team "default"'s models allow-list`},
		{"downgrade no trigger", validBase + "    downgrade: [{to: demo-chat}]\n", nil, "teams[0].downgrade[0]: no trigger"},
		{"downgrade policy", validBase + "    downgrade_policy: maybe\n", nil, `teams[0].downgrade_policy: unknown downgrade policy "maybe" (want one of: keep, deny)`},
		{"router strategy", validBase + "router: {strategy: random}\n", nil, `router.strategy: unknown strategy "random"`},
		{"failure ratio", validBase + "router: {breaker: {failure_ratio: 2}}\n", nil, "router.breaker.failure_ratio: 2 is out of range"},
		{"max cooldown too long", validBase + "router: {max_cooldown: 48h}\n", nil, `router.max_cooldown: "48h0m0s" is longer than 24h0m0s`},
		{"max cooldown negative", validBase + "router: {max_cooldown: -1s}\n", nil, `router.max_cooldown: "-1s" is negative`},
		{"max attempts", validBase + "router: {max_attempts: -1}\n", nil, "router.max_attempts: -1 is not positive"},
		{"first token over total", validBase + "router: {timeouts: {first_token: 10m, total: 1m}}\n", nil, `router.timeouts.first_token: "10m0s" is longer than total "1m0s"`},
		{"on_error", validBase + "redis: {url: \"redis://h:6379\", on_error: ignore}\n", nil, `redis.on_error: unknown on_error "ignore" (want one of: fail_open, fail_closed)`},
		{"redis url", validBase + "redis: {url: \"http://:pw@h\"}\n", nil, `redis.url: "http://:xxxxx@h" is not a Redis URL`},
		{"redis url missing", validBase + "redis: {on_error: fail_open}\n", nil, `redis.url: "" is not a Redis URL`},
		{"redis prefix", validBase + "redis: {url: \"redis://h:6379\", prefix: \"a{b}\"}\n", nil, `redis.prefix: "a{b}" is not a key prefix; want 1 to 64 letters, digits or "_.:-"`},
		{"database url", validBase + "database: {url: \"${DB}\"}\n", map[string]string{"DB": "mysql://u:pw@h/db"}, "database.url: not a PostgreSQL URL (value not shown)"},
		{"unpriced", validBase + "budget: {unpriced: maybe}\n", nil, `budget.unpriced: unknown unpriced policy "maybe" (want one of: allow, deny)`},
		{"memory retention", validBase + "memory: {retention: -1h}\n", nil, `memory.retention: "-1h0m0s" is negative`},
		{"memory history", validBase + "memory: {max_history_tokens: -5}\n", nil, `memory.max_history_tokens: -5 is negative`},
		{"embed max_inputs", validBase + "embeddings: {batch: {max_inputs: 4096}}\n", nil, `embeddings.batch.max_inputs: 4096 is out of range; want 1 to 2048`},
		{"embed max_wait", validBase + "embeddings: {batch: {max_wait: 2s}}\n", nil, `embeddings.batch.max_wait: "2s" is more than 1s`},
		{"embed negative wait", validBase + "embeddings: {batch: {max_wait: -1ms}}\n", nil, `embeddings.batch.max_wait: "-1ms" is negative`},
		{"telemetry endpoint", validBase + "telemetry: {endpoint: \"collector:4318\"}\n", nil, `telemetry.endpoint: "collector:4318" is not an http:// or https:// URL`},
		{"telemetry protocol", validBase + "telemetry: {protocol: http/json}\n", nil, `telemetry.protocol: "http/json" is not one of grpc, http/protobuf`},
		{"telemetry sampler", validBase + "telemetry: {sampler: sometimes}\n", nil, `telemetry.sampler: "sometimes" is not one of always_on,`},
		{"telemetry sampler_arg", validBase + "telemetry: {sampler_arg: 2}\n", nil, `telemetry.sampler_arg: 2 is not a ratio between 0 and 1`},
		{"embed scope", validBase + "embeddings: {cache: {scope: global}}\n", nil, `embeddings.cache.scope: unknown scope "global" (want one of: team, shared)`},
		{"embed ttl", validBase + "embeddings: {cache: {ttl: -1h}}\n", nil, `embeddings.cache.ttl: "-1h0m0s" is negative`},
		{"vector stores without a model", validBase + "vector_stores: {index: hnsw}\n", nil, `vector_stores.embedding_model: is required; want an alias with type: embedding`},
		{"vector stores on a chat model", validBase + "vector_stores: {embedding_model: demo-chat}\n", nil, `vector_stores.embedding_model: "demo-chat" is a chat model; want an alias with type: embedding`},
		{"vector stores unknown model", validBase + "vector_stores: {embedding_model: nope}\n", nil, `vector_stores.embedding_model: "nope" is not a model alias`},
		{"vector stores chunk size", validBase + "vector_stores: {embedding_model: demo-embed, chunking: {max_tokens: 50}}\n", nil, `vector_stores.chunking.max_tokens: 50 is out of range; want 100 to 4096`},
		{"vector stores overlap", validBase + "vector_stores: {embedding_model: demo-embed, chunking: {max_tokens: 400, overlap_tokens: 201}}\n", nil, `vector_stores.chunking.overlap_tokens: 201 is out of range; want 0 to half of max_tokens (200)`},
		{"vector stores file size", validBase + "vector_stores: {embedding_model: demo-embed, max_file_bytes: 1073741824}\n", nil, `vector_stores.max_file_bytes: 1073741824 is out of range`},
		{"vector stores index", validBase + "vector_stores: {embedding_model: demo-embed, index: flat}\n", nil, `vector_stores.index: unknown index "flat" (want one of: hnsw, ivfflat)`},
		{"rag top_k", validBase + "rag: {top_k: 500}\n", nil, `rag.top_k: 500 is out of range; want 1 to 100`},
		{"rag rerank_top_k", validBase + "rag: {top_k: 2, rerank_top_k: 5}\n", nil, `rag.rerank_top_k: 5 is out of range; want 1 to top_k (2)`},
		{"rag threshold", validBase + "rag: {score_threshold: 1.5}\n", nil, `rag.score_threshold: 1.5 is out of range; want 0 to 1`},
		{"rag on_error", validBase + "rag: {on_error: ignore}\n", nil, `rag.on_error: unknown on_error "ignore" (want one of: fail_open, fail_closed)`},
		{"rag template", validBase + "rag: {template: \"{{.Nope}}\"}\n", nil, `rag.template: template: rag:1:2: executing "rag" at <.Nope>: can't evaluate field Nope`},
		{"rag rerank unknown", validBase + "rag: {rerank_model: nope}\n", nil, `rag.rerank_model: unknown model "nope"`},
		{"rag rerank not rerank", validBase + "rag: {rerank_model: demo-embed}\n", nil, `rag.rerank_model: "demo-embed" is a embedding model; want a type rerank model`},
		{"model rag no stores", strings.Replace(validBase, "    deployments: [{provider: demo, model: demo-chat}]", "    deployments: [{provider: demo, model: demo-chat}]\n    rag: {top_k: 3}", 1), nil, `models[0].rag.vector_stores: required: at least one vector store name or vs_ id`},
		{"model rag bad store", strings.Replace(validBase, "    deployments: [{provider: demo, model: demo-chat}]", "    deployments: [{provider: demo, model: demo-chat}]\n    rag: {vector_stores: [\"a,b\"]}", 1), nil, `models[0].rag.vector_stores[0]: "a,b" is not a store name or vs_ id`},
		{"model rag rerank_top_k", strings.Replace(validBase, "    deployments: [{provider: demo, model: demo-chat}]", "    deployments: [{provider: demo, model: demo-chat}]\n    rag: {vector_stores: [h], top_k: 2, rerank_top_k: 4}", 1), nil, `models[0].rag.rerank_top_k: 4 is out of range; want 1 to top_k (2)`},
		{"rag on embedding", strings.Replace(validBase, "    deployments: [{provider: demo, model: demo-embed}]", "    deployments: [{provider: demo, model: demo-embed}]\n    rag: {vector_stores: [h]}", 1), nil, `models[2].rag: is set on a "embedding" model; want type chat`},
		{"embed on chat", strings.Replace(validBase, "    deployments: [{provider: demo, model: demo-chat}]", "    deployments: [{provider: demo, model: demo-chat}]\n    embeddings: {batch: {max_inputs: 8}}", 1), nil, `models[0].embeddings: is set on a "chat" model; want type embedding`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.src), cfgEnv(tc.env))
			if err == nil {
				t.Fatalf("ParseConfig = nil error; want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseConfig error:\n%v\nwant it to contain %q", err, tc.want)
			}
			for _, secret := range []string{"sk-provider-secret", "sk-team-secret", "sk-x", "hunter2", ":pw@"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks %q:\n%v", secret, err)
				}
			}
		})
	}
}

// TestValidateReportsEverything: one broken config yields every problem.
func TestValidateReportsEverything(t *testing.T) {
	src := `server: {listen: nope}
providers:
  - {name: demo, type: demo}
  - {name: acme, type: openai, base_url: api.acme.io, api_key: sk-provider-secret}
models:
  - name: m
    deployments: [{provider: opneai, model: x}]
teams:
  - name: t
    api_keys: [sk-team-secret, ""]
    models: [nope]
router: {strategy: fastest}
`
	_, err := ParseConfig([]byte(src), cfgEnv(nil))
	if err == nil {
		t.Fatal("ParseConfig = nil error")
	}
	want := []string{
		`server.listen: "nope" is not host:port`,
		`providers[1].base_url: "api.acme.io" is not an absolute URL; want http(s)://host[:port]/path [4:42]`,
		`models[0].deployments[0].provider: unknown provider "opneai" (want one of: demo, acme) [7:30]`,
		`teams[0].api_keys[1]: empty key [10:32]`,
		`teams[0].models[0]: unknown model "nope"`,
		`router.strategy: unknown strategy "fastest"`,
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error\n%v\nwants %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks a key:\n%v", err)
	}
}

func TestValidateWithoutYAML(t *testing.T) {
	c := &Config{Providers: []ProviderConfig{{Name: "p", Type: "future"}}}
	c.applyDefaults()
	err := c.Validate(nil) // nil: provider types are not checked
	if err == nil || strings.Contains(err.Error(), "providers[0].type") || !strings.Contains(err.Error(), "models: at least one model is required") {
		t.Errorf("Validate(nil) = %v; want only the missing models", err)
	}
	if err := c.Validate([]string{"demo"}); err == nil || !strings.Contains(err.Error(), `providers[0].type: unknown type "future" (want one of: demo)`) {
		t.Errorf("Validate(demo) = %v; want unknown type", err)
	}
}

func TestWarnings(t *testing.T) {
	c := mustParseConfig(t, strings.Replace(validBase, ", api_key: sk-provider-secret", "", 1)+"budget: {unpriced: deny}\n", nil)
	want := []string{
		`providers[1] "openai": api_key is empty; requests to it will fail with 502`,
		`models[0] "demo-chat": no pricing and budget.unpriced is deny; requests to it will be refused`,
	}
	got := c.Warnings()
	if len(got) != 4 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Warnings() = %q; want %q and two more models", got, want)
	}
	c = mustParseConfig(t, strings.Replace(validBase, "teams:\n  - name: default\n    api_keys: [sk-team-secret]\n", "", 1), nil)
	if got := c.Warnings(); len(got) != 1 || !strings.Contains(got[0], "teams: none configured") {
		t.Errorf("Warnings() = %q; want no teams", got)
	}
}
