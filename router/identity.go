package router

import "context"

type ctxKey int

const (
	requestIDKey ctxKey = iota
	identityKey
	ledgerRouteKey
)

// Identity says who is calling: the team and the API key's id (a short
// hash prefix, never the key itself).
type Identity struct {
	Team  string
	KeyID string
}

// WithRequestID returns ctx carrying the request's ID.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestID returns the request ID in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// WithIdentity returns ctx carrying the caller's identity.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey, id)
}

// IdentityFrom returns the caller's identity in ctx.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey).(Identity)
	return id, ok
}

// WithLedgerRoute returns ctx whose Go-API calls (embed.Service.Embed on
// behalf of ingestion, RAG or vector-store search) are written to the
// usage ledger under route instead of the HTTP route ("embeddings").
func WithLedgerRoute(ctx context.Context, route string) context.Context {
	return context.WithValue(ctx, ledgerRouteKey, route)
}

// LedgerRoute returns the ledger route set by WithLedgerRoute, or "".
func LedgerRoute(ctx context.Context) string {
	r, _ := ctx.Value(ledgerRouteKey).(string)
	return r
}
