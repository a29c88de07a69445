package router

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// Chunks as an OpenAI-compatible adapter hands them out.
var (
	roleChunk = &Chunk{Data: []byte(`{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`)}
	stopChunk = &Chunk{Data: []byte(`{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`)}
)

func contentChunk(s string) *Chunk {
	return &Chunk{Data: []byte(`{"choices":[{"index":0,"delta":{"content":"` + s + `"}}]}`)}
}

func wholeChunk(s string) *Chunk {
	return &Chunk{Whole: true, Data: []byte(`{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"` + s + `"},"finish_reason":"stop"}]}`)}
}

// stallStream hands out chunks, then stays silent until the attempt's
// context ends or idle passes, as an adapter's idle timer would.
type stallStream struct {
	ctx    context.Context
	chunks []*Chunk
	idle   time.Duration
}

func (s *stallStream) Next() (*Chunk, error) {
	if len(s.chunks) > 0 {
		c := s.chunks[0]
		s.chunks = s.chunks[1:]
		return c, nil
	}
	t := time.NewTimer(s.idle)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return nil, AsError(s.ctx.Err())
	case <-t.C:
		return nil, &Error{Kind: KindUpstreamTimeout, Message: "idle timeout"}
	}
}

func (s *stallStream) Close() error { return nil }

var (
	errHTTP500   = &Error{Kind: KindUpstream, Message: "failed upstream (HTTP 500)"}
	errEvent     = &Error{Kind: KindUpstream, Message: "upstream error event"}
	errCut       = &Error{Kind: KindUpstream, Message: "connection reset"}
	errMalformed = &Error{Kind: KindUpstream, Message: "malformed chunk"}
	errStalled   = &Error{Kind: KindUpstreamTimeout, Message: "idle timeout"}
)

// failing is the first deployment's behaviour for one fault: stream
// replies hand out before (chunks) and then fail with err; stall means
// stay silent instead.
type fault struct {
	name   string
	before []*Chunk
	err    *Error
	stall  bool
	atCall bool // the failure comes from Chat itself (non-200)
}

func (f fault) provider() *fakeProvider {
	return &fakeProvider{chat: func(ctx context.Context, req *ChatRequest) (Stream, error) {
		if f.atCall {
			return nil, f.err
		}
		if !req.Stream {
			// A plain reply is read whole inside Chat: every fault
			// surfaces there, before any chunk.
			if f.stall {
				_, err := (&stallStream{ctx: ctx, idle: req.Timeouts.Idle}).Next()
				return nil, err
			}
			return nil, f.err
		}
		if f.stall {
			return &stallStream{ctx: ctx, chunks: append([]*Chunk(nil), f.before...), idle: req.Timeouts.Idle}, nil
		}
		return &fakeStream{chunks: append([]*Chunk(nil), f.before...), err: f.err}, nil
	}}
}

// transcript renders what the client would receive: each chunk's text
// ("role", the content, "stop", or the whole body's content), then
// "[DONE]" or "error:<kind>".
func transcript(s Stream) string {
	var out []string
	for {
		c, err := s.Next()
		if err == io.EOF {
			return strings.Join(append(out, "[DONE]"), " ")
		}
		if err != nil {
			return strings.Join(append(out, "error:"+AsError(err).Kind.String()), " ")
		}
		d := string(c.Data)
		switch {
		case c.Whole:
			out = append(out, "whole:"+between(d, `"content":"`, `"`))
		case strings.Contains(d, `"role"`):
			out = append(out, "role")
		case strings.Contains(d, `"finish_reason":"stop"`):
			out = append(out, "stop")
		default:
			out = append(out, between(d, `"content":"`, `"`))
		}
	}
}

func between(s, from, to string) string {
	_, rest, _ := strings.Cut(s, from)
	v, _, _ := strings.Cut(rest, to)
	return v
}

// TestCommitPoint runs every fault before and after the commit point,
// streamed and not, and checks the client's transcript: a failure before
// the first content is invisible (the second deployment answers), one
// after it ends the stream with an error, never a false [DONE].
func TestCommitPoint(t *testing.T) {
	pre := []*Chunk{roleChunk}
	post := []*Chunk{roleChunk, contentChunk("a"), contentChunk("b")}
	faults := []struct {
		fault
		wantStream string // "" means the invisible failover transcript
	}{
		{fault: fault{name: "non-200 first", err: errHTTP500, atCall: true}},
		{fault: fault{name: "error event after the role chunk", before: pre, err: errEvent}},
		{fault: fault{name: "connection cut after 1 chunk", before: pre, err: errCut}},
		{fault: fault{name: "connection cut after 3 chunks", before: post, err: errCut}, wantStream: "role a b error:upstream"},
		{fault: fault{name: "stall past idle before content", before: pre, stall: true}},
		{fault: fault{name: "stall past idle after content", before: post, stall: true}, wantStream: "role a b error:upstream_timeout"},
		{fault: fault{name: "malformed chunk after the role chunk", before: pre, err: errMalformed}},
		{fault: fault{name: "malformed chunk after content", before: post, err: errMalformed}, wantStream: "role a b error:upstream"},
	}
	for _, f := range faults {
		for _, stream := range []bool{true, false} {
			name := f.name + "/non-stream"
			if stream {
				name = f.name + "/stream"
			}
			t.Run(name, func(t *testing.T) {
				p2 := &fakeProvider{chat: func(_ context.Context, req *ChatRequest) (Stream, error) {
					if !req.Stream {
						return &fakeStream{chunks: []*Chunk{wholeChunk("from p2")}}, nil
					}
					return &fakeStream{chunks: []*Chunk{roleChunk, contentChunk("p2"), stopChunk}}, nil
				}}
				r, err := New(Options{Strategy: StrategyPriority, Timeouts: Timeouts{FirstToken: time.Second, Idle: 30 * time.Millisecond},
					Routes: []Route{{Alias: "chat", Deployments: []Deployment{{Provider: "p1", Model: "m", Client: f.provider()}, {Provider: "p2", Model: "m", Client: p2}}}}})
				if err != nil {
					t.Fatal(err)
				}
				req := &ChatRequest{Model: "chat", Stream: stream, Result: &Result{}}
				s, err := r.Serve(context.Background(), req)
				if err != nil {
					t.Fatalf("Serve() error = %v; want a stream", err)
				}
				got := transcript(s)
				s.Close()
				want, wantAttempts := "role p2 stop [DONE]", 2
				switch {
				case !stream:
					want = "whole:from p2 [DONE]"
				case f.wantStream != "":
					want, wantAttempts = f.wantStream, 1
				}
				if got != want {
					t.Errorf("client transcript = %q; want %q", got, want)
				}
				if req.Result.Attempts != wantAttempts {
					t.Errorf("Attempts = %d; want %d", req.Result.Attempts, wantAttempts)
				}
			})
		}
	}
}

// TestCommitPointFirstTokenTimeout: a stream that sends its role chunk
// but no content within first_token fails over, even though its idle
// timer would wait longer.
func TestCommitPointFirstTokenTimeout(t *testing.T) {
	slow := &fakeProvider{chat: func(ctx context.Context, req *ChatRequest) (Stream, error) {
		return &stallStream{ctx: ctx, chunks: []*Chunk{roleChunk}, idle: time.Minute}, nil
	}}
	p2 := &fakeProvider{chat: answers(roleChunk, contentChunk("p2"))}
	r, err := New(Options{Strategy: StrategyPriority, Timeouts: Timeouts{FirstToken: 40 * time.Millisecond, Idle: time.Minute},
		Routes: []Route{{Alias: "chat", Deployments: []Deployment{{Provider: "p1", Model: "m", Client: slow}, {Provider: "p2", Model: "m", Client: p2}}}}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s, err := r.Serve(context.Background(), &ChatRequest{Model: "chat", Stream: true})
	if err != nil {
		t.Fatalf("Serve() error = %v", err)
	}
	defer s.Close()
	if got := transcript(s); got != "role p2 [DONE]" {
		t.Errorf("transcript = %q; want %q", got, "role p2 [DONE]")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("failover took %v; want about the 40ms first-token timeout", el)
	}
}

func TestCommits(t *testing.T) {
	tests := []struct {
		data string
		want bool
	}{
		{`{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`, false},
		{`{"choices":[{"index":0,"delta":{"content":"hi"}}]}`, true},
		{`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":""}}]}}]}`, true},
		{`{"choices":[{"index":0,"delta":{"reasoning_content":"hmm"}}]}`, true},
		{`{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`, true},
		{`{"choices":[{"index":0,"delta":{"refusal":"no"}}]}`, true},
		{`{"choices":[]}`, false},
		{`not json`, true},
	}
	for _, tc := range tests {
		if got := commits(&Chunk{Data: []byte(tc.data)}); got != tc.want {
			t.Errorf("commits(%s) = %v; want %v", tc.data, got, tc.want)
		}
	}
}

// TestClosedEarlyIsExcluded: a client leaving mid-stream must not count
// against the deployment's breaker.
func TestClosedEarlyIsExcluded(t *testing.T) {
	p := &fakeProvider{chat: answers(roleChunk, contentChunk("a"), contentChunk("b"))}
	r, err := New(Options{Breaker: BreakerSettings{MinRequests: 2, FailureRatio: 0.5},
		Routes: []Route{{Alias: "chat", Deployments: []Deployment{{Provider: "p1", Model: "m", Client: p}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		s, err := r.Serve(context.Background(), &ChatRequest{Model: "chat", Stream: true})
		if err != nil {
			t.Fatal(err)
		}
		s.Next()
		s.Close()
	}
	st := r.states["p1/m"]
	if c := st.cb.Counts(); c.TotalExclusions != 5 || c.TotalFailures != 0 || st.inflight.Load() != 0 {
		t.Errorf("breaker counts = %+v, inflight %d; want 5 exclusions, no failures, 0 in flight", c, st.inflight.Load())
	}
}

// TestWholeReplyCountsAsSuccess: a plain reply's caller stops after the
// one chunk and closes; the breaker must hear a success, not a cancel.
func TestWholeReplyCountsAsSuccess(t *testing.T) {
	p := &fakeProvider{chat: answers(wholeChunk("x"))}
	r, _ := New(Options{Routes: []Route{{Alias: "chat", Deployments: []Deployment{{Provider: "p1", Model: "m", Client: p}}}}})
	s, err := r.Serve(context.Background(), &ChatRequest{Model: "chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Collect(s); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if c := r.states["p1/m"].cb.Counts(); c.TotalSuccesses != 1 || c.TotalExclusions != 0 {
		t.Errorf("breaker counts = %+v; want 1 success", c)
	}
}
