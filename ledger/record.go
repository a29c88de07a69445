package ledger

import (
	"context"
	"time"
)

// Record is one finished request's usage and cost.
type Record struct {
	// Time is when the request arrived.
	Time      time.Time
	RequestID string
	// Route is "chat" or "embeddings", or for Go-API embeddings made on a
	// team's behalf "ingest", "rag" or "search" (router.WithLedgerRoute).
	Route string
	Team  string
	// KeyID is the API key's safe id ("key_" plus a hash prefix).
	KeyID string
	// Alias is the model the client asked for; empty when it is not
	// configured.
	Alias string
	// Provider and Model are the deployment that served the request.
	Provider string
	Model    string

	PromptTokens     int
	CompletionTokens int
	// CachedTokens are part of PromptTokens, ReasoningTokens part of
	// CompletionTokens (as OpenAI reports them). On an embeddings row,
	// CachedTokens are the input tokens the embeddings cache served
	// instead: not part of PromptTokens and not charged.
	CachedTokens    int
	ReasoningTokens int
	// CostUSD is the price of the tokens above.
	CostUSD float64

	// Latency is arrival to last byte; TTFT is arrival to first chunk (0
	// when none was sent).
	Latency time.Duration
	TTFT    time.Duration
	// Status is the HTTP status sent; Outcome is "ok" or an error kind.
	Status  int
	Outcome string
	Stream  bool
	// Estimated marks tokens counted by the proxy because the upstream
	// reported none.
	Estimated bool
}

// Writer persists records. WriteBatch writes all of recs or none of them,
// honours ctx, and must not keep recs after it returns (the slice is
// reused).
type Writer interface {
	WriteBatch(ctx context.Context, recs []Record) error
}

// Reporter answers usage reports.
type Reporter interface {
	Usage(ctx context.Context, f Filter) ([]Row, error)
}

// Store is a Writer that also answers reports: what cmd/proxy opens.
type Store interface {
	Writer
	Reporter
}

// Filter selects records for a report.
type Filter struct {
	// Team limits the report to one team; empty means every team.
	Team string
	// From (inclusive) and To (exclusive) bound Record.Time.
	From, To time.Time
}

// Row is one group of a report: one team, one model alias, one UTC day.
type Row struct {
	// Day is the UTC date, YYYY-MM-DD.
	Day   string
	Team  string
	Alias string

	Requests int64
	// Failed counts requests whose outcome was not "ok".
	Failed int64
	// Estimated counts requests whose tokens the proxy counted itself.
	Estimated int64

	PromptTokens     int64
	CompletionTokens int64
	CachedTokens     int64
	ReasoningTokens  int64
	CostUSD          float64
}
