package router

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Kind classifies an Error. It decides the HTTP status, whether the breaker
// counts a failure and whether the router tries the next deployment.
type Kind int

// The error kinds, with the status each maps to (see StatusCode).
const (
	KindInternal            Kind = iota // 500, message "internal error"
	KindInvalidRequest                  // 400 (or the upstream's own 4xx)
	KindUnauthorized                    // 401
	KindNotFound                        // 404: unknown model or route
	KindBudgetExceeded                  // 429 insufficient_quota
	KindRateLimited                     // 429 from our own limiter
	KindUpstreamRateLimited             // 429 from the upstream
	KindUpstream                        // 502
	KindUpstreamTimeout                 // 504
	KindNoProvider                      // 503
	KindCanceled                        // 499, the client left
)

var kindNames = [...]string{
	KindInternal:            "internal",
	KindInvalidRequest:      "invalid_request",
	KindUnauthorized:        "unauthorized",
	KindNotFound:            "not_found",
	KindBudgetExceeded:      "budget_exceeded",
	KindRateLimited:         "rate_limited",
	KindUpstreamRateLimited: "upstream_rate_limited",
	KindUpstream:            "upstream",
	KindUpstreamTimeout:     "upstream_timeout",
	KindNoProvider:          "no_provider",
	KindCanceled:            "canceled",
}

// String returns the kind's metric label.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is a failure that means something to a client.
// ErrNotConfigured, as an Error's cause, marks a failure of the
// deployment's configuration (a provider with no API key): the router
// moves to the next candidate at once and never retries that deployment,
// because a retry cannot help.
var ErrNotConfigured = errors.New("provider not configured")

type Error struct {
	Kind Kind
	// Message is written for the client. It never holds a credential or
	// upstream text that could carry one.
	Message string
	// Provider names the configured provider that failed, if any.
	Provider string
	// Status overrides the kind's HTTP status (an upstream 4xx the request
	// caused keeps its own status).
	Status int
	// Type, Param and Code fill the OpenAI error body; empty Type means the
	// kind's default.
	Type, Param, Code string
	// RetryAfter is how long the client should wait (429, 503).
	RetryAfter time.Duration
	// Err is the cause: logged, never sent.
	Err error
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Provider != "" {
		msg = e.Provider + ": " + msg
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an Error of kind k with a client-facing message.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error; anything unknown becomes KindInternal.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Kind: KindCanceled, Message: "request canceled", Err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Kind: KindUpstreamTimeout, Message: "upstream timed out", Err: err}
	}
	return &Error{Kind: KindInternal, Message: "internal error", Err: err}
}

// StatusCode is the HTTP status the client sees.
func (e *Error) StatusCode() int {
	if e.Status != 0 {
		return e.Status
	}
	switch e.Kind {
	case KindInvalidRequest:
		return http.StatusBadRequest
	case KindUnauthorized:
		return http.StatusUnauthorized
	case KindNotFound:
		return http.StatusNotFound
	case KindBudgetExceeded, KindRateLimited, KindUpstreamRateLimited:
		return http.StatusTooManyRequests
	case KindUpstream:
		return http.StatusBadGateway
	case KindUpstreamTimeout:
		return http.StatusGatewayTimeout
	case KindNoProvider:
		return http.StatusServiceUnavailable
	case KindCanceled:
		return 499
	default:
		return http.StatusInternalServerError
	}
}

// TypeName is the OpenAI error "type" field.
func (e *Error) TypeName() string {
	if e.Type != "" {
		return e.Type
	}
	switch e.Kind {
	case KindInvalidRequest, KindNotFound:
		return "invalid_request_error"
	case KindUnauthorized:
		return "authentication_error"
	case KindBudgetExceeded:
		return "insufficient_quota"
	case KindRateLimited, KindUpstreamRateLimited:
		return "rate_limit_error"
	default:
		return "api_error"
	}
}

// Retryable reports whether another deployment might answer where this one
// failed: the breaker counts it, and the router moves on.
func (e *Error) Retryable() bool {
	switch e.Kind {
	case KindUpstream, KindUpstreamTimeout, KindUpstreamRateLimited, KindNoProvider:
		return true
	}
	return false
}

// ClientRetryable reports whether the client's own retry could help; when
// false the HTTP layer sends x-should-retry: false.
func (e *Error) ClientRetryable() bool {
	switch e.Kind {
	case KindUpstream, KindUpstreamTimeout, KindUpstreamRateLimited, KindRateLimited, KindNoProvider, KindInternal:
		return true
	}
	return false
}
