package router

import (
	"io"
	"time"
)

// Result is what the chain learned about one request, for the caller that
// started it: what served and how, what the budget decided, and, once the
// stream is closed, what it cost. The outermost caller (cmd/proxy) owns it
// and attaches it to the request (ChatRequest.Result, EmbedRequest.Result);
// each stage fills in its own facts and never reads another stage's except
// to build on them (the budget prices what the router says served). Only
// cmd/proxy turns it into headers, the access record and the ledger row.
//
// A stage that learns something new adds a field here (documented with the
// stage that sets it) and cmd/proxy's resultHeaders sends it, when the
// client should see it.
type Result struct {
	// Set by the router.

	// Alias is the alias the router planned: the one the client asked
	// for, or the budget's downgrade target.
	Alias string
	// Target is the deployment of the last attempt: the one that answered
	// when the request succeeded.
	Target Target
	// Attempts counts the deployments called.
	Attempts int
	// Fallbacks counts the fallback aliases called (not retries of the
	// requested alias).
	Fallbacks int
	// FallbackAlias is the alias that answered when it is not Alias (a
	// fallback or context-window fallback).
	FallbackAlias string

	// Set by the budget guard.

	// DowngradedFrom is the alias the client asked for when the downgrade
	// ladder moved the request (the request's Model is then the target).
	DowngradedFrom string
	// MaxTokensClamped is the completion cap per choice the guard lowered
	// the request to so that it fits the budget; 0: not clamped.
	MaxTokensClamped int
	// BudgetRemainingUSD is the team's budget left, its limit less the
	// spend settled so far: requests in flight are not counted. Valid when
	// HasBudgetUSD.
	BudgetRemainingUSD float64
	HasBudgetUSD       bool
	// RateLimit is the tightest rate limit the request counted against;
	// zero limits mean none.
	RateLimit RateLimitInfo

	// Set in the stream's Close (by the budget guard when there is one),
	// before the caller's access record.

	// Usage is the settled usage: the upstream's report, or the
	// tokenizer's count when Estimated.
	Usage Usage
	// CostUSD is the settled cost of the request.
	CostUSD float64
	// Estimated is true when the upstream reported no usage (or the
	// stream was cut) and the tokenizer counted.
	Estimated bool
	// Settled is true once CostUSD is final.
	Settled bool

	// Set by the embedding service (embed).

	// EmbedCache is "hit", "miss" or "partial" when the embeddings cache
	// answered all, none or some of the inputs (x-llmproxy-cache); "" when
	// no cache ran.
	EmbedCache string
	// CachedInputTokens are the input tokens the embeddings cache served:
	// not in Usage, not charged, not counted against tpm.
	CachedInputTokens int

	// Set by memory.

	// Conversation is the stored conversation the request used
	// (x-llmproxy-conversation).
	Conversation string
	// MemoryDropped is how many of the oldest turns memory left out to fit
	// the context (x-llmproxy-memory-dropped).
	MemoryDropped int

	// Set by rag.

	// RAG is what retrieval did for a request that asked for it
	// (x-llmproxy-rag): "used" (references added), "no_results" (nothing
	// to add) or "skipped" (retrieval failed and the alias fails open);
	// "" when the request did not ask.
	RAG string
	// Sources are the references rag put in the prompt, in their [n]
	// order (the reply's "sources", x-llmproxy-rag-sources); on a dry run,
	// what it would retrieve.
	Sources []Source

	// Set on a dry run (ChatRequest.DryRun) only.

	// Candidates are the router's ordered candidates, as Explain returns
	// them.
	Candidates []Explained
	// Budget is the guard's decision, when a guard with something to
	// enforce saw the request.
	Budget *BudgetDecision
	// Notes are what each stage reports it did or would do, in chain
	// order (outermost first).
	Notes []Note
}

// RateLimitInfo is the tightest rate limit a request counted against.
type RateLimitInfo struct {
	LimitRequests, RemainingRequests int64
	ResetRequests                    time.Duration
	LimitTokens, RemainingTokens     int64
	ResetTokens                      time.Duration
}

// BudgetDecision is what the budget guard would do with a request, as a
// dry run reports it.
type BudgetDecision struct {
	// Team is the team whose budgets apply.
	Team string `json:"team,omitempty"`
	// Admit is false when the request would be refused; Error then says
	// with what.
	Admit bool `json:"admit"`
	// Error is the refusal the client would get (cmd/proxy shows it as
	// OpenAI's error object).
	Error *Error `json:"-"`
	// DowngradeReason is "budget" or "request_size" when the ladder moved
	// the request.
	DowngradeReason string `json:"downgrade_reason,omitempty"`
	// MaxTokensClamped is the completion cap per choice the request would
	// be clamped to; 0: none.
	MaxTokensClamped int `json:"max_tokens_clamped,omitempty"`
	// PromptTokens is the prompt's token count the reservation would use.
	PromptTokens int `json:"prompt_tokens"`
	// ReserveUSD is the worst case the request would hold while in flight.
	ReserveUSD float64 `json:"reserve_usd"`
	// UsedShare is the share of the team budget settled so far, the one
	// the downgrade ladder reads (0 without a team budget).
	UsedShare float64 `json:"budget_used_share"`
}

// Source is one reference RAG put in the prompt, as the reply's "sources"
// lists it.
type Source struct {
	// Index is the reference's number in the prompt ([1] is 1).
	Index         int     `json:"index"`
	VectorStoreID string  `json:"vector_store_id"`
	FileID        string  `json:"file_id"`
	Filename      string  `json:"filename"`
	ChunkIndex    int     `json:"chunk_index"`
	Score         float64 `json:"score"`
}

// Note is one stage's report on a dry run: what it added or decided.
type Note struct {
	Stage string `json:"stage"`
	What  string `json:"what"`
}

// Note appends a stage's note; it does nothing on a nil Result.
func (r *Result) Note(stage, what string) {
	if r != nil {
		r.Notes = append(r.Notes, Note{Stage: stage, What: what})
	}
}

// ServedAlias is the alias that answered: FallbackAlias, else Alias, else
// asked (no router reported, as when the request was refused before it).
func (r *Result) ServedAlias(asked string) string {
	switch {
	case r.FallbackAlias != "":
		return r.FallbackAlias
	case r.Alias != "":
		return r.Alias
	}
	return asked
}

// WithResult returns req and the Result it carries; when it carries none
// (a caller that does not read results, such as a test), a shallow copy
// with a fresh Result, so a stage never writes into its caller's request.
func (req *ChatRequest) WithResult() (*ChatRequest, *Result) {
	if req.Result != nil {
		return req, req.Result
	}
	c := *req
	c.Result = &Result{}
	return &c, c.Result
}

// WithResult is ChatRequest.WithResult for embeddings.
func (req *EmbedRequest) WithResult() (*EmbedRequest, *Result) {
	if req.Result != nil {
		return req, req.Result
	}
	c := *req
	c.Result = &Result{}
	return &c, c.Result
}

// emptyStream is a dry run's reply: no chunks.
type emptyStream struct{}

func (emptyStream) Next() (*Chunk, error) { return nil, io.EOF }
func (emptyStream) Close() error          { return nil }
