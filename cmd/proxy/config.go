package main

// This file is the YAML schema: every field's doc comment is the operator's
// manual for that key. Loading lives in load.go, ${NAME} expansion in
// expand.go and the checks in validate.go. configs/example.yaml is the
// worked example and configs/testdata/full.yaml uses every key.

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// Config is the whole proxy configuration: one YAML file. Any value may use
// ${NAME} or ${NAME:-default}; see expand.go for the rules.
type Config struct {
	// Server is the HTTP listener and process settings.
	Server ServerConfig `yaml:"server"`
	// Providers are the upstream accounts (an API root plus a key). At least
	// one is required.
	Providers []ProviderConfig `yaml:"providers"`
	// Models are the aliases clients ask for in "model", each served by one
	// or more deployments on the providers above. At least one is required.
	Models []ModelConfig `yaml:"models"`
	// Teams own the client API keys. With no teams every request gets 401.
	Teams []TeamConfig `yaml:"teams"`
	// Router sets the default routing strategy, retries, circuit breakers and
	// timeouts.
	Router RouterConfig `yaml:"router"`
	// Redis, when set, shares rate limits, budgets, breaker states and
	// cooldowns between replicas. Leave it out to keep that state in
	// process (one replica).
	Redis *RedisConfig `yaml:"redis"`
	// Database is where the usage ledger is written.
	Database DatabaseConfig `yaml:"database"`
	// Budget holds settings that apply to every team's budget.
	Budget BudgetConfig `yaml:"budget"`
	// Memory stores conversations on the server (x-llmproxy-conversation),
	// in the database above.
	Memory MemoryConfig `yaml:"memory"`
	// Embeddings configures the embedding service behind /v1/embeddings
	// (and RAG): request coalescing and the cache.
	Embeddings EmbeddingsConfig `yaml:"embeddings"`
	// VectorStores, when set, serves OpenAI's Files and Vector Stores API
	// (/v1/files, /v1/vector_stores): uploads, durable ingestion jobs
	// (parse, chunk, embed, store) and hybrid search, in the database
	// above. Leave it out to serve neither.
	VectorStores *VectorStoresConfig `yaml:"vector_stores"`
	// Telemetry exports OpenTelemetry traces over OTLP. Every field may be
	// left out: the standard OTEL_* environment variables then decide, as
	// in any OpenTelemetry SDK, and with no endpoint anywhere tracing is
	// off. A field set here wins over its variable.
	Telemetry TelemetryConfig `yaml:"telemetry"`
	// RAG holds retrieval's defaults: for requests that name their vector
	// stores (x-llmproxy-vector-store-ids or the body's vector_store_ids)
	// on an alias without a rag block, and for the fields a models[].rag
	// block leaves unset.
	RAG RAGConfig `yaml:"rag"`

	// doc is the expanded YAML tree this Config was decoded from; Validate
	// reads line:column positions from it. Nil for a Config built in Go.
	doc ast.Node
}

// ServerConfig is the HTTP listener and process settings.
type ServerConfig struct {
	// Listen is the host:port to serve on. Default "127.0.0.1:8080"; use
	// ":8080" or "0.0.0.0:8080" to accept connections from other machines.
	Listen string `yaml:"listen"`
	// MaxBodyBytes caps a request body; larger bodies get 413. Default
	// 10485760 (10 MiB). It applies to the bytes received and, for a body
	// sent with Content-Encoding gzip or deflate (one coding, decoded as it
	// arrives), to the decoded bytes too; any other coding, or more than
	// one, gets 415. A body is read after the API key is checked, into
	// memory that grows with the bytes received, not with the declared
	// Content-Length.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxInflight caps the API requests (and streams still being written)
	// in flight; past it a request is refused at once with 503 overloaded
	// and Retry-After: 1, before its body is read, so memory stays bounded
	// under any load. Default (0): derived from memory, a quarter of the
	// smallest of GOMEMLIMIT, the cgroup's memory.max and the machine's
	// memory at 256 KiB a request, within 64–4096 (512 in a 512 MiB pod).
	// Negative: no limit. Probes, /metrics and /admin are never shed.
	MaxInflight int `yaml:"max_inflight"`
	// ShutdownDelay is how long the proxy keeps accepting and serving after
	// SIGTERM while /ready answers 503, before the drain starts: the time
	// a load balancer or Kubernetes needs to take the pod out of its
	// endpoints, so no new request meets a closed port. SIGINT (Ctrl-C) and
	// a second SIGTERM skip it. Default "5s"; "0s" drains at once.
	ShutdownDelay *Duration `yaml:"shutdown_delay"`
	// DrainTimeout is how long in-flight requests and streams may run after
	// the shutdown delay before they are cut; a cut stream ends with a
	// server_shutting_down error event. Default "30s". Kubernetes'
	// terminationGracePeriodSeconds must cover shutdown_delay plus
	// drain_timeout plus a few seconds to settle budgets and flush the
	// ledger.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// ReadTimeout bounds reading one request (headers and body). Default
	// "60s". Responses have no write timeout, because that would cut long
	// streams.
	ReadTimeout Duration `yaml:"read_timeout"`
	// BodyReadTimeout is how long a client may go silent while sending a
	// request: its headers and first 8 KiB of body must arrive within it
	// (counted from the connection's opening, or from the first byte of a
	// later request on a keep-alive connection), and then every read of
	// the rest of the body must make progress within it (read_timeout
	// still bounds the whole). A client that declares a body and stops
	// sending is cut after it, with 408. Default "10s". See SECURITY.md.
	BodyReadTimeout Duration `yaml:"body_read_timeout"`
	// IdleTimeout closes keep-alive connections idle for this long, so
	// connections a burst opened do not pin memory forever. Default "120s".
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MasterKey guards the /admin endpoints (Authorization: Bearer <key>).
	// Empty disables them. Normally "${LLMPROXY_MASTER_KEY}".
	MasterKey Secret `yaml:"master_key"`
	// DataDir holds local state such as the SQLite usage ledger when
	// database.url is empty. Default "./data".
	DataDir string `yaml:"data_dir"`
	// LogLevel is one of debug, info, warn, error. Default "info".
	LogLevel string `yaml:"log_level"`
	// AllowDemoKeys lets the proxy start with a team key published in
	// configs/example.yaml (sk-demo) on a listen address other machines
	// can reach. Default false: such a config is refused at start, because
	// anyone who read the example could spend the upstream keys.
	AllowDemoKeys bool `yaml:"allow_demo_keys"`
}

// ProviderConfig is one upstream account.
type ProviderConfig struct {
	// Name is how deployments refer to this provider, and its metrics label.
	// Required, unique.
	Name string `yaml:"name"`
	// Type selects the adapter, for example "openai" (any OpenAI-compatible
	// server: OpenAI, vLLM, Ollama, llama.cpp, Groq …) or "demo" (built-in,
	// offline, not a real model). Required.
	Type string `yaml:"type"`
	// BaseURL is the API root including any /v1, for example
	// "http://127.0.0.1:11434/v1" for Ollama. Defaults by type: openai
	// https://api.openai.com/v1, anthropic https://api.anthropic.com, gemini
	// https://generativelanguage.googleapis.com.
	BaseURL string `yaml:"base_url"`
	// APIKey is the upstream credential, normally "${OPENAI_API_KEY}". It is
	// never logged or sent to clients. Empty loads with a warning, and
	// requests to this provider then fail with 502.
	APIKey Secret `yaml:"api_key"`
	// APIVersion is for vendors that version their API by header or query
	// (Azure, Anthropic). Optional.
	APIVersion string `yaml:"api_version"`
	// Headers are extra static headers sent with every upstream request.
	// Their values are never echoed in errors.
	Headers map[string]string `yaml:"headers"`
	// Timeouts for calls to this provider. Unset fields take router.timeouts.
	Timeouts TimeoutsConfig `yaml:"timeouts"`
}

// ModelConfig is one alias clients can ask for.
type ModelConfig struct {
	// Name is the alias clients send as "model". Required, unique.
	Name string `yaml:"name"`
	// Type is "chat" (default), "embedding" or "rerank". A rerank alias
	// serves POST /v1/rerank and RAG's rerank step; its providers speak the
	// rerank API Cohere (v2), Jina, Voyage and vLLM share (type openai with
	// that vendor's base_url, e.g. https://api.jina.ai/v1), or are the
	// demo. Its pricing is per input token (what the reranker reads: the
	// query once per document plus the documents); Cohere's per-search
	// billing is not modelled.
	Type string `yaml:"type"`
	// Deployments are the upstream models that serve this alias. At least
	// one is required.
	Deployments []DeploymentConfig `yaml:"deployments"`
	// Pricing is the price of this alias, used by budgets and the cost
	// strategy. Without it the alias is free unless budget.unpriced is deny.
	Pricing *PricingConfig `yaml:"pricing"`
	// ContextWindow is the alias's context size in tokens; requests that do
	// not fit go to context_window_fallbacks. 0: unknown, not checked.
	ContextWindow int `yaml:"context_window"`
	// MaxOutputTokens is the worst-case completion budgets reserve when the
	// request sets no max_tokens. 0: unknown.
	MaxOutputTokens int `yaml:"max_output_tokens"`
	// Capabilities the alias supports: tools, vision, json_schema. The
	// downgrade ladder only moves a request to a model that covers it.
	Capabilities []string `yaml:"capabilities"`
	// Strategy overrides router.strategy for this alias.
	Strategy string `yaml:"strategy"`
	// Fallbacks are aliases tried, in order, when every deployment failed.
	Fallbacks []string `yaml:"fallbacks"`
	// ContextWindowFallbacks are aliases tried when the prompt plus the
	// completion cap exceed context_window, or the upstream answers
	// context_length_exceeded.
	ContextWindowFallbacks []string `yaml:"context_window_fallbacks"`
	// Timeouts override the provider's timeouts for this alias; unset
	// fields keep the provider's. A request can lower them, never raise them.
	Timeouts *TimeoutsConfig `yaml:"timeouts"`
	// RateLimit caps this alias across all teams.
	RateLimit *RateLimitConfig `yaml:"rate_limit"`
	// Embeddings overrides embeddings.batch for this alias (type
	// embedding); unset fields keep the global values.
	Embeddings *ModelEmbeddingsConfig `yaml:"embeddings"`
	// RAG turns retrieval on for every request to this alias (type chat):
	// the last user message is searched in vector_stores and the best
	// chunks go into the prompt as one system message of numbered
	// references. Unset fields take the top-level rag block's.
	RAG *ModelRAGConfig `yaml:"rag"`
}

// ModelRAGConfig is one alias's retrieval.
type ModelRAGConfig struct {
	// VectorStores are the stores searched, by name or vs_ id, each owned
	// by the calling team (a team without one gets 404). At least one; a
	// request's own x-llmproxy-vector-store-ids or vector_store_ids
	// replaces them, and an empty vector_store_ids turns retrieval off.
	VectorStores []string `yaml:"vector_stores"`
	RAGConfig    `yaml:",inline"`
}

// RAGConfig tunes retrieval (issue 12).
type RAGConfig struct {
	// TopK is how many chunks the hybrid search returns, 1 to 100.
	// Default 10.
	TopK int `yaml:"top_k"`
	// RerankTopK is how many of them the rerank keeps (only with
	// rerank_model), 1 to top_k. Default 3.
	RerankTopK int `yaml:"rerank_top_k"`
	// ScoreThreshold drops chunks whose search score (0 to 1) is below
	// it. Default 0.
	ScoreThreshold *float64 `yaml:"score_threshold"`
	// MaxContextTokens bounds the references in the prompt (counted with
	// the alias's tokenizer): the best chunks are kept while they fit, the
	// first one that does not is cut to the room left. Default 4000.
	MaxContextTokens int `yaml:"max_context_tokens"`
	// RerankModel, when set, names a type rerank alias that reorders the
	// top_k chunks and keeps rerank_top_k; the call is budgeted and
	// written to the usage ledger (route rerank) like any other. A team
	// with a models allow-list needs it on the list. Default: no rerank.
	RerankModel string `yaml:"rerank_model"`
	// Template is the system message, a Go text/template over
	// {.Query, .References[{.Index, .Filename, .FileID, .VectorStoreID,
	// .ChunkIndex, .Score, .Content}]}. Default: answer from the
	// references, say plainly when they do not hold the answer, cite by
	// number, then the references as "[n] filename" and the chunk.
	Template string `yaml:"template"`
	// OnError is what a failed retrieval (the vector store, the query's
	// embedding or the rerank upstream) does to the request: "fail_closed"
	// (default) answers 503; "fail_open" answers without context, with
	// x-llmproxy-rag: skipped, llmproxy_rag_requests_total{outcome=
	// "skipped"} and a Warn line. A store the team does not own is always
	// 404, and a budget or rate limit refusing the embedding always 429.
	OnError string `yaml:"on_error"`
}

// ModelEmbeddingsConfig is an embedding alias's own settings.
type ModelEmbeddingsConfig struct {
	// Batch overrides embeddings.batch for this alias.
	Batch *EmbedBatchConfig `yaml:"batch"`
}

// EmbeddingsConfig configures the embedding service.
type EmbeddingsConfig struct {
	// Batch merges concurrent /v1/embeddings requests of one team for the
	// same alias, dimensions and input kind into upstream calls.
	Batch EmbedBatchConfig `yaml:"batch"`
	// Cache keeps vectors so that an input seen before costs nothing.
	Cache EmbedCacheConfig `yaml:"cache"`
}

// EmbedBatchConfig bounds one coalesced upstream embeddings call.
type EmbedBatchConfig struct {
	// MaxInputs is the most inputs one upstream call carries, 1 to 2048
	// (OpenAI's limit); a batch that reaches it is sent at once. 1 turns
	// coalescing off. Default 128.
	MaxInputs int `yaml:"max_inputs"`
	// MaxWait is the longest a request waits for others to share its
	// upstream call; "0s" sends every request at once. Default "5ms".
	MaxWait *Duration `yaml:"max_wait"`
}

// EmbedCacheConfig is the embeddings cache: in process, or in Redis (shared
// by every replica) when the redis block is set.
type EmbedCacheConfig struct {
	// TTL is how long a vector stays cached. Default "168h" (7 days).
	TTL Duration `yaml:"ttl"`
	// MaxEntries bounds the in-process cache (one entry per input, about
	// 4 bytes per dimension: 100000 × 1536 dimensions ≈ 615 MB). Redis
	// entries are bounded by ttl and Redis's own maxmemory. Default 100000.
	MaxEntries int `yaml:"max_entries"`
	// Scope is "team" (default): a team's cached inputs answer only that
	// team, so nobody learns what another team embedded; or "shared":
	// every team answers from one cache.
	Scope string `yaml:"scope"`
}

// DeploymentConfig is one upstream model behind an alias.
type DeploymentConfig struct {
	// Provider is the name of an entry in providers. Required.
	Provider string `yaml:"provider"`
	// Model is the upstream's model name, sent in place of the alias.
	// Required.
	Model string `yaml:"model"`
	// Weight is this deployment's share of traffic under the weighted
	// strategy. Default 1 (0 also means 1).
	Weight int `yaml:"weight"`
	// Priority orders deployments under the priority strategy: lower is
	// tried first. Default 0.
	Priority int `yaml:"priority"`
	// RPM is the upstream account's requests-per-minute quota for this
	// model; the router never sends more. 0: no limit.
	RPM int `yaml:"rpm"`
	// TPM is the upstream account's tokens-per-minute quota. 0: no limit.
	TPM int `yaml:"tpm"`
	// Pricing overrides the alias's pricing for this deployment.
	Pricing *PricingConfig `yaml:"pricing"`
}

// PricingConfig is a price in USD per million tokens.
type PricingConfig struct {
	// InputPerMTok is USD per million prompt tokens.
	InputPerMTok float64 `yaml:"input_per_mtok"`
	// OutputPerMTok is USD per million completion tokens.
	OutputPerMTok float64 `yaml:"output_per_mtok"`
	// CachedInputPerMTok is USD per million prompt tokens served from the
	// upstream's prompt cache. 0: charged as input_per_mtok.
	CachedInputPerMTok float64 `yaml:"cached_input_per_mtok"`
}

// TeamConfig is a group of client API keys sharing limits and a budget.
type TeamConfig struct {
	// Name identifies the team in usage reports and the usage ledger (not
	// in metrics: their labels stay a closed set). Required, unique.
	Name string `yaml:"name"`
	// APIKeys are the keys clients send as "Authorization: Bearer <key>":
	// either the key itself (normally "${TEAM_KEY}") or "sha256:" followed by
	// the 64 hex digits of its SHA-256, so the file holds no secret. At least
	// one; unique across all teams; a key that expands to "" is an error.
	APIKeys []Secret `yaml:"api_keys"`
	// Models is an allow-list of aliases this team may use; other aliases get
	// 404 model_not_found and are hidden from /v1/models. Empty: all.
	Models []string `yaml:"models"`
	// RateLimit caps the team's requests and tokens per minute.
	RateLimit *RateLimitConfig `yaml:"rate_limit"`
	// Budget caps the team's spend per calendar period (UTC).
	Budget *BudgetLimit `yaml:"budget"`
	// Downgrade is the cost ladder: rules, checked in order, that move a
	// request to a cheaper alias.
	Downgrade []DowngradeRule `yaml:"downgrade"`
	// DowngradePolicy says what happens when a rule's target cannot serve
	// the request (missing capability or context window): "keep" the
	// requested model (default) or "deny" the request.
	DowngradePolicy string `yaml:"downgrade_policy"`
	// KeyBudget caps each of the team's keys on its own, inside the team
	// budget: a request must fit both.
	KeyBudget *BudgetLimit `yaml:"key_budget"`
	// KeyRateLimit caps each of the team's keys on its own, inside the
	// team's rate_limit.
	KeyRateLimit *RateLimitConfig `yaml:"key_rate_limit"`
	// ModelBudgets cap the team's spend on one alias, inside the team
	// budget, for example {gpt-4o: {usd: 10, period: day}}.
	ModelBudgets map[string]BudgetLimit `yaml:"model_budgets"`
}

// RouterConfig holds the defaults for picking and retrying deployments.
type RouterConfig struct {
	// Strategy picks among an alias's deployments: weighted (default),
	// priority, least_latency, least_inflight or cost.
	Strategy string `yaml:"strategy"`
	// MaxAttempts bounds upstream attempts per request, retries and
	// fallbacks included. Default 3.
	MaxAttempts int `yaml:"max_attempts"`
	// Breaker configures the per-deployment circuit breakers.
	Breaker BreakerConfig `yaml:"breaker"`
	// Timeouts are the defaults for every provider.
	Timeouts TimeoutsConfig `yaml:"timeouts"`
	// ProbeInterval turns on active health probes: every interval, each
	// provider (except demo) gets GET {base_url}/models, which costs no
	// tokens, and a provider that fails it is skipped until a probe passes.
	// Default "0s": off; health is then judged from live traffic only.
	ProbeInterval Duration `yaml:"probe_interval"`
	// MaxCooldown caps how long an upstream's Retry-After (or
	// retry-after-ms, or Gemini's retryDelay) is honoured: the longest an
	// upstream 429 benches a deployment (on every replica, with Redis), the
	// longest the router waits to call it again, and the longest
	// Retry-After sent on to the client. An upstream answering
	// "Retry-After: 99999999" would otherwise bench the deployment for
	// years. At most "24h". Default "5m".
	MaxCooldown Duration `yaml:"max_cooldown"`
}

// BreakerConfig configures the per-deployment circuit breakers.
type BreakerConfig struct {
	// FailureRatio opens the breaker when at least this share of requests in
	// the window failed, in (0, 1]. Default 0.5.
	FailureRatio float64 `yaml:"failure_ratio"`
	// MinRequests is how many requests the window needs before the ratio
	// counts. Default 10.
	MinRequests int `yaml:"min_requests"`
	// Window is the rolling window the ratio is computed over. Default "60s".
	Window Duration `yaml:"window"`
	// OpenFor is how long an open breaker rejects before it lets probes
	// through. Default "30s".
	OpenFor Duration `yaml:"open_for"`
	// HalfOpenProbes is how many requests a half-open breaker admits; if
	// they succeed it closes. Default 2.
	HalfOpenProbes int `yaml:"half_open_probes"`
}

// TimeoutsConfig bounds one upstream call. 0 means "inherit" (see where
// the block appears).
type TimeoutsConfig struct {
	// Connect bounds dialing and the TLS handshake. Default "5s".
	Connect Duration `yaml:"connect"`
	// FirstToken bounds the wait for the first content; before it the router
	// may still fail over invisibly. Default "30s".
	FirstToken Duration `yaml:"first_token"`
	// Idle bounds the silence between two streamed chunks. Default "30s".
	Idle Duration `yaml:"idle"`
	// Total bounds the whole call, stream included. Default "600s".
	Total Duration `yaml:"total"`
}

// RedisConfig points at the Redis that replicas share.
type RedisConfig struct {
	// URL is redis://[:password@]host:port/db (or rediss:// for TLS).
	// Required when the redis block is present.
	URL string `yaml:"url"`
	// OnError is what happens to requests while Redis is unreachable:
	// fail_closed (default) rejects them, fail_open serves them with
	// in-process limits only.
	OnError string `yaml:"on_error"`
	// Prefix starts every key and channel this proxy uses, so that
	// several proxy deployments (or test runs) can share one Redis
	// database. Replicas that share budgets and cooldowns must use the
	// same prefix. Letters, digits and "_.:-" only, at most 64: "{" and
	// "}" would break the keys' Cluster hash tags. Default "llmproxy".
	Prefix string `yaml:"prefix"`
	// Timeout bounds one Redis operation on the request path (a budget
	// reservation or settlement, a rate-limit check), waiting for a pooled
	// connection included; past it redis.on_error decides. Default "3s"
	// (go-redis's own read timeout): a shorter one mistakes a busy replica
	// (CPU saturated, a burst queued for connections) for a Redis outage.
	Timeout Duration `yaml:"timeout"`
	// PoolSize is the number of connections to Redis per replica. Default
	// max(64, 10 × GOMAXPROCS): every in-flight request holds one for its
	// reservation and its settlement, and bursts of a few hundred
	// concurrent requests are normal for a gateway.
	PoolSize int `yaml:"pool_size"`
}

// DatabaseConfig selects where the usage ledger is stored.
type DatabaseConfig struct {
	// URL is a PostgreSQL URL (postgres://user:pass@host:5432/db). Empty:
	// a SQLite file under server.data_dir. To keep the ledger's tables in
	// a schema of their own, create the schema and add
	// ?search_path=<schema> to the URL.
	URL Secret `yaml:"url"`
}

// MemoryConfig sets conversation memory. A request that names a
// conversation (header x-llmproxy-conversation or body field
// "conversation": an id, or "new") gets the stored history in front of its
// messages, and its turn is saved once the reply completed.
type MemoryConfig struct {
	// Retention deletes a conversation not updated for this long, in a
	// periodic river job (its tables live in the PostgreSQL database, or in
	// river.db under server.data_dir with SQLite). Default "720h" (30 days).
	Retention Duration `yaml:"retention"`
	// CleanupEvery is how often the retention sweep runs. Default "1h".
	CleanupEvery Duration `yaml:"cleanup_every"`
	// MaxHistoryTokens, when positive, caps the stored history put in front
	// of a request. 0 (default): fit the model's context_window less the
	// completion cap and a margin; without a context_window the whole
	// history is sent. The oldest whole turns are dropped first.
	MaxHistoryTokens int `yaml:"max_history_tokens"`
}

// VectorStoresConfig configures files and vector stores. Every file and
// vector store belongs to the team whose key created it; other teams get
// 404. File bytes live in PostgreSQL when database.url is set (any replica
// can ingest them), else under server.data_dir/files.
type VectorStoresConfig struct {
	// EmbeddingModel is the alias (a model of type embedding) that vector
	// stores embed their chunks and queries with, unless created with the
	// extension field embedding_model. Ingestion and search go through
	// the embedding service: cached, budgeted, rate limited and charged
	// to the team (ledger routes "ingest" and "search"). Required.
	EmbeddingModel string `yaml:"embedding_model"`
	// Chunking is the chunking strategy "auto" stands for: chunks of
	// max_tokens tokens (100 to 4096, default 500) overlapping by
	// overlap_tokens (at most half of max_tokens, default 50), counted
	// with the tokenizer. A request's "static" strategy overrides it.
	Chunking ChunkingConfig `yaml:"chunking"`
	// MaxFileBytes caps one upload to POST /v1/files; a larger file gets
	// 413. Default 52428800 (50 MiB); at most 536870912 (512 MiB,
	// OpenAI's limit). It is independent of server.max_body_bytes, which
	// caps JSON bodies. An upload is held in memory while it is stored.
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// Index is PostgreSQL's approximate nearest-neighbour index, one per
	// embedding dimension: "hnsw" (default: built as chunks arrive, best
	// recall) or "ivfflat" (built once a dimension has 1000 chunks,
	// rebuilt as they grow fourfold; smaller and faster to build). Needs
	// the pgvector extension in the database (CREATE EXTENSION vector, as
	// a superuser). SQLite searches exactly and ignores it.
	Index string `yaml:"index"`
}

// ChunkingConfig is a static chunking strategy.
type ChunkingConfig struct {
	// MaxTokens is a chunk's size in tokens. Default 500.
	MaxTokens int `yaml:"max_tokens"`
	// OverlapTokens is how many tokens a chunk repeats from the previous
	// one. Default 50; 0 is no overlap.
	OverlapTokens *int `yaml:"overlap_tokens"`
}

// BudgetConfig holds settings for every team's budget.
type BudgetConfig struct {
	// Unpriced says what budgets do with an alias that has no pricing:
	// "allow" (default) treats it as free, "deny" refuses requests to it.
	Unpriced string `yaml:"unpriced"`
}

// RateLimitConfig is a per-minute cap. 0 leaves that dimension unlimited.
type RateLimitConfig struct {
	// RPM is requests per minute.
	RPM int `yaml:"rpm"`
	// TPM is tokens (prompt plus completion) per minute.
	TPM int `yaml:"tpm"`
}

// BudgetLimit caps spend per calendar period. When both usd and tokens are
// set, both apply.
type BudgetLimit struct {
	// USD is the most the team may spend per period.
	USD float64 `yaml:"usd"`
	// Tokens is the most tokens the team may use per period.
	Tokens int64 `yaml:"tokens"`
	// Period is day, week or month, in UTC. Required.
	Period string `yaml:"period"`
}

// DowngradeRule moves a request to a cheaper alias. A rule needs at least one
// trigger (at_budget_used, max_prompt_tokens or no_tools); all the triggers
// it sets must hold.
type DowngradeRule struct {
	// AtBudgetUsed fires once this share of the team's budget is spent, in
	// (0, 1]. Needs a team budget.
	AtBudgetUsed float64 `yaml:"at_budget_used"`
	// From limits the rule to requests for this alias. Empty: any alias.
	From string `yaml:"from"`
	// To is the alias the request moves to. Required.
	To string `yaml:"to"`
	// MaxPromptTokens fires for prompts of at most this many tokens.
	MaxPromptTokens int `yaml:"max_prompt_tokens"`
	// NoTools fires only for requests that declare no tools.
	NoTools bool `yaml:"no_tools"`
}

const redacted = "[redacted]"

// Secret is a credential. It prints, logs and marshals as "[redacted]";
// only Value returns the real string.
type Secret string

// Value returns the credential itself. Call it only where the secret is used.
func (s Secret) Value() string { return string(s) }

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// Format prints "[redacted]" for every verb. Without it, a verb that does
// not fit a string (%d) would make fmt print the raw value.
func (Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", redacted)
		return
	}
	fmt.Fprint(f, redacted)
}

// LogValue returns "[redacted]" for log/slog.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "[redacted]".
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalJSON returns "[redacted]" as a JSON string.
func (Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// Duration is a time.Duration written in YAML as a Go duration string such as
// "30s", "1m30s" or "250ms". Bare numbers are rejected: 30 could mean
// seconds or nanoseconds.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d like time.Duration does ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText formats d like String, so a dumped config reads back.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalYAML reads a duration string. It works on the node rather than
// bytes so that it can tell 30 (a number, rejected) from "30s".
func (d *Duration) UnmarshalYAML(n ast.Node) error {
	pos := n.GetToken().Position
	switch v := n.(type) {
	case *ast.NullNode:
		*d = 0
		return nil
	case *ast.StringNode:
		p, err := time.ParseDuration(v.Value)
		if err != nil {
			return fmt.Errorf("[%d:%d] %q is not a duration: want a number with a unit, such as \"30s\", \"1m30s\" or \"250ms\"", pos.Line, pos.Column, v.Value)
		}
		*d = Duration(p)
		return nil
	case *ast.IntegerNode, *ast.FloatNode:
		return fmt.Errorf("[%d:%d] %s is a bare number, not a duration: add a unit, such as \"%ss\"", pos.Line, pos.Column, n.String(), n.String())
	default:
		return fmt.Errorf("[%d:%d] want a duration such as \"30s\", got a %s", pos.Line, pos.Column, n.Type())
	}
}
