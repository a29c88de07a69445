package router

import "context"

// Tracer traces upstream attempts: one span per call to a deployment
// (package telemetry turns them into OpenTelemetry GenAI client spans).
// Options.Tracer nil traces nothing and costs nothing. router declares it
// so that it stays free of the OpenTelemetry packages.
type Tracer interface {
	// StartAttempt is called before each upstream call. The context it
	// returns is the call's: it carries the span to the provider's HTTP
	// request (the traceparent the upstream receives). A nil span means
	// nothing is recorded for this attempt.
	StartAttempt(ctx context.Context, a Attempt) (context.Context, AttemptSpan)
}

// AttemptSpan is one attempt's span.
type AttemptSpan interface {
	// Chunk sees each chunk the upstream produced, in order, as it
	// arrives (the first one marks the time to first chunk).
	Chunk(c *Chunk)
	// End ends the span once: usage is the upstream's report (nil when it
	// sent none), err the attempt's failure (nil on success).
	End(usage *Usage, err error)
}

// Attempt describes one upstream call to a Tracer.
type Attempt struct {
	// Operation is "chat" or "embeddings".
	Operation string
	// Alias is the alias the attempt serves (a fallback's, when it is
	// one).
	Alias string
	// Target is the deployment called.
	Target Target
	// Stream is true for a streamed chat request.
	Stream bool
	// MaxTokens is the request's completion cap per choice; 0: none.
	MaxTokens int
	// Body is the request body as the chain passes it on (after memory
	// and RAG). A Tracer reads it only when content capture is on.
	Body []byte
}

// startAttempt starts a span for one attempt when a Tracer is set.
func (r *Router) startAttempt(ctx context.Context, a Attempt) (context.Context, AttemptSpan) {
	if r.opts.Tracer == nil {
		return ctx, nil
	}
	return r.opts.Tracer.StartAttempt(ctx, a)
}

// tracedStream shows each chunk of an upstream stream to its attempt's
// span; only attempts with a span are wrapped.
type tracedStream struct {
	Stream
	span AttemptSpan
}

func (t tracedStream) Next() (*Chunk, error) {
	c, err := t.Stream.Next()
	if err == nil && c != nil {
		t.span.Chunk(c)
	}
	return c, err
}
