package router

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeProvider is a Provider whose behaviour is a function field.
type fakeProvider struct {
	chat  func(ctx context.Context, req *ChatRequest) (Stream, error)
	calls int
	seen  []Target
}

func (f *fakeProvider) Chat(ctx context.Context, req *ChatRequest) (Stream, error) {
	f.calls++
	f.seen = append(f.seen, req.Target)
	return f.chat(ctx, req)
}

// fakeEmbedder is a Provider that also embeds.
type fakeEmbedder struct {
	fakeProvider
	embed func(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error)
}

func (f *fakeEmbedder) Embed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error) {
	f.calls++
	f.seen = append(f.seen, req.Target)
	return f.embed(ctx, req)
}

// fakeStream hands out chunks, then fails with err (io.EOF if nil).
type fakeStream struct {
	chunks []*Chunk
	err    error
	closed int
}

func (s *fakeStream) Next() (*Chunk, error) {
	if len(s.chunks) == 0 {
		if s.err != nil {
			return nil, s.err
		}
		return nil, io.EOF
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return c, nil
}

func (s *fakeStream) Close() error { s.closed++; return nil }

// fakeObserver records Attempt calls.
type fakeObserver struct {
	mu    sync.Mutex
	calls []string
}

func (o *fakeObserver) Attempt(provider, model, outcome string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, provider+"/"+model+":"+outcome)
}

func text(s string) *Chunk { return &Chunk{Data: []byte(s)} }

func answers(chunks ...*Chunk) func(context.Context, *ChatRequest) (Stream, error) {
	return func(context.Context, *ChatRequest) (Stream, error) { return &fakeStream{chunks: chunks}, nil }
}

func fails(err error) func(context.Context, *ChatRequest) (Stream, error) {
	return func(context.Context, *ChatRequest) (Stream, error) { return nil, err }
}

func newRouter(t *testing.T, obs Observer, ds ...Deployment) *Router {
	t.Helper()
	r, err := New(Options{Routes: []Route{{Alias: "chat", Deployments: ds}}, Observer: obs, Strategy: StrategyPriority})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	return r
}

func readAll(t *testing.T, s Stream) ([]string, error) {
	t.Helper()
	var out []string
	for {
		c, err := s.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, string(c.Data))
	}
}

func TestServe(t *testing.T) {
	upstream502 := &Error{Kind: KindUpstream, Message: "bad gateway"}
	tests := []struct {
		name         string
		first        func(context.Context, *ChatRequest) (Stream, error)
		wantChunks   []string
		wantKind     Kind // checked when wantErr
		wantErr      bool
		wantProvider string
		wantAttempts int
		wantSecond   int // calls to the second deployment
		wantObserved []string
	}{
		{
			name: "first answers", first: answers(text("a"), text("b")),
			wantChunks: []string{"a", "b"}, wantProvider: "p1", wantAttempts: 1,
			wantObserved: []string{"p1/m1:ok"},
		},
		{
			name: "retryable error before the call falls back", first: fails(upstream502),
			wantChunks: []string{"second"}, wantProvider: "p2", wantAttempts: 2, wantSecond: 1,
			wantObserved: []string{"p1/m1:upstream", "p2/m2:ok"},
		},
		{
			name: "rate limited first chunk falls back",
			first: func(context.Context, *ChatRequest) (Stream, error) {
				return &fakeStream{err: &Error{Kind: KindUpstreamRateLimited, Message: "slow down"}}, nil
			},
			wantChunks: []string{"second"}, wantProvider: "p2", wantAttempts: 2, wantSecond: 1,
			wantObserved: []string{"p1/m1:upstream_rate_limited", "p2/m2:ok"},
		},
		{
			name: "timeout before first chunk falls back",
			first: func(context.Context, *ChatRequest) (Stream, error) {
				return &fakeStream{err: context.DeadlineExceeded}, nil
			},
			wantChunks: []string{"second"}, wantProvider: "p2", wantAttempts: 2, wantSecond: 1,
			wantObserved: []string{"p1/m1:upstream_timeout", "p2/m2:ok"},
		},
		{
			name: "400 is returned at once", first: fails(&Error{Kind: KindInvalidRequest, Status: 400, Message: "bad"}),
			wantErr: true, wantKind: KindInvalidRequest, wantProvider: "p1", wantAttempts: 1,
			wantObserved: []string{"p1/m1:invalid_request"},
		},
		{
			name: "unknown error is internal and not retried", first: fails(errors.New("boom")),
			wantErr: true, wantKind: KindInternal, wantProvider: "p1", wantAttempts: 1,
			wantObserved: []string{"p1/m1:internal"},
		},
		{
			name: "failure after the first chunk reaches the caller",
			first: func(context.Context, *ChatRequest) (Stream, error) {
				return &fakeStream{chunks: []*Chunk{text("a")}, err: upstream502}, nil
			},
			wantChunks: []string{"a"}, wantErr: true, wantKind: KindUpstream, wantProvider: "p1", wantAttempts: 1,
			wantObserved: []string{"p1/m1:ok"},
		},
		{
			name: "empty stream commits", first: answers(),
			wantChunks: nil, wantProvider: "p1", wantAttempts: 1,
			wantObserved: []string{"p1/m1:ok"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p1 := &fakeProvider{chat: tc.first}
			p2 := &fakeProvider{chat: answers(text("second"))}
			obs := &fakeObserver{}
			r := newRouter(t, obs, Deployment{Provider: "p1", Model: "m1", Client: p1}, Deployment{Provider: "p2", Model: "m2", Client: p2})
			req := &ChatRequest{Model: "chat", Result: &Result{}}
			s, err := r.Serve(context.Background(), req)
			var chunks []string
			if err == nil {
				chunks, err = readAll(t, s)
				s.Close()
			}
			if tc.wantErr {
				if e := AsError(err); err == nil || e.Kind != tc.wantKind {
					t.Errorf("Serve() error = %v; want kind %v", err, tc.wantKind)
				}
			} else if err != nil {
				t.Errorf("Serve() error = %v; want nil", err)
			}
			if len(chunks) != len(tc.wantChunks) || (len(chunks) > 0 && chunks[0] != tc.wantChunks[0]) {
				t.Errorf("Serve() chunks = %q; want %q", chunks, tc.wantChunks)
			}
			if req.Result.Target.Provider != tc.wantProvider {
				t.Errorf("Serve() Target.Provider = %q; want %q", req.Result.Target.Provider, tc.wantProvider)
			}
			if req.Result.Attempts != tc.wantAttempts {
				t.Errorf("Serve() Attempts = %d; want %d", req.Result.Attempts, tc.wantAttempts)
			}
			if p2.calls != tc.wantSecond {
				t.Errorf("second deployment called %d times; want %d", p2.calls, tc.wantSecond)
			}
			if len(obs.calls) != len(tc.wantObserved) {
				t.Fatalf("Observer calls = %q; want %q", obs.calls, tc.wantObserved)
			}
			for i := range obs.calls {
				if obs.calls[i] != tc.wantObserved[i] {
					t.Errorf("Observer call %d = %q; want %q", i, obs.calls[i], tc.wantObserved[i])
				}
			}
		})
	}
}

func TestServeTargets(t *testing.T) {
	p1 := &fakeProvider{chat: fails(&Error{Kind: KindUpstream, Message: "down"})}
	p2 := &fakeProvider{chat: answers(text("x"))}
	r := newRouter(t, nil, Deployment{Provider: "p1", Model: "m1", Client: p1}, Deployment{Provider: "p2", Model: "m2", Client: p2})
	s, err := r.Serve(context.Background(), &ChatRequest{Model: "chat"})
	if err != nil {
		t.Fatalf("Serve() error = %v", err)
	}
	s.Close()
	if len(p1.seen) != 1 || p1.seen[0] != (Target{"p1", "m1"}) {
		t.Errorf("first deployment saw Target %+v; want {p1 m1}", p1.seen)
	}
	if len(p2.seen) != 1 || p2.seen[0] != (Target{"p2", "m2"}) {
		t.Errorf("second deployment saw Target %+v; want {p2 m2}", p2.seen)
	}
}

func TestServeClosesFailedFirstStream(t *testing.T) {
	bad := &fakeStream{err: &Error{Kind: KindUpstream, Message: "reset"}}
	p1 := &fakeProvider{chat: func(context.Context, *ChatRequest) (Stream, error) { return bad, nil }}
	r := newRouter(t, nil, Deployment{Provider: "p1", Model: "m1", Client: p1}, Deployment{Provider: "p2", Model: "m2", Client: &fakeProvider{chat: answers(text("x"))}})
	s, err := r.Serve(context.Background(), &ChatRequest{Model: "chat"})
	if err != nil {
		t.Fatalf("Serve() error = %v", err)
	}
	s.Close()
	if bad.closed != 1 {
		t.Errorf("failed stream closed %d times; want 1", bad.closed)
	}
}

func TestServeAllFail(t *testing.T) {
	down := fails(&Error{Kind: KindUpstream, Message: "down"})
	r := newRouter(t, nil, Deployment{Provider: "p1", Model: "m1", Client: &fakeProvider{chat: down}}, Deployment{Provider: "p2", Model: "m2", Client: &fakeProvider{chat: down}})
	req := &ChatRequest{Model: "chat", Result: &Result{}}
	_, err := r.Serve(context.Background(), req)
	// p1, p2, then p1 again after a backoff: max_attempts is 3.
	if e := AsError(err); e.Kind != KindUpstream || e.Provider != "p1" || req.Result.Attempts != 3 {
		t.Errorf("Serve() error = %v (provider %q, %d attempts); want KindUpstream from p1 after 3 attempts", err, e.Provider, req.Result.Attempts)
	}
}

func TestServeCanceled(t *testing.T) {
	p1 := &fakeProvider{chat: answers(text("x"))}
	r := newRouter(t, nil, Deployment{Provider: "p1", Model: "m1", Client: p1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Serve(ctx, &ChatRequest{Model: "chat"})
	if e := AsError(err); e.Kind != KindCanceled {
		t.Errorf("Serve(canceled) error = %v; want KindCanceled", err)
	}
	if p1.calls != 0 {
		t.Errorf("Serve(canceled) called the provider %d times; want 0", p1.calls)
	}
}

func TestUnknownAlias(t *testing.T) {
	r := newRouter(t, nil, Deployment{Provider: "p1", Model: "m1", Client: &fakeProvider{chat: answers()}})
	_, chatErr := r.Serve(context.Background(), &ChatRequest{Model: "nope"})
	_, embedErr := r.Embed(context.Background(), &EmbedRequest{Model: "nope"})
	for name, err := range map[string]error{"Serve": chatErr, "Embed": embedErr} {
		e := AsError(err)
		if e.Kind != KindNotFound || e.StatusCode() != 404 || e.Code != "model_not_found" || e.Param != "model" {
			t.Errorf("%s(nope) error = %+v; want 404 model_not_found on param model", name, e)
		}
	}
	if r.Has("nope") || !r.Has("chat") {
		t.Errorf("Has(nope), Has(chat) = %v, %v; want false, true", r.Has("nope"), r.Has("chat"))
	}
}

func TestEmbed(t *testing.T) {
	ok := func(context.Context, *EmbedRequest) (*EmbedResponse, error) {
		return &EmbedResponse{Data: []byte(`{"object":"list"}`)}, nil
	}
	down := func(context.Context, *EmbedRequest) (*EmbedResponse, error) {
		return nil, &Error{Kind: KindUpstream, Message: "down"}
	}
	bad := func(context.Context, *EmbedRequest) (*EmbedResponse, error) {
		return nil, &Error{Kind: KindInvalidRequest, Message: "bad input"}
	}
	chatOnly := &fakeProvider{chat: answers()}
	tests := []struct {
		name         string
		first        Provider
		wantErr      Kind
		wantOK       bool
		wantProvider string
		wantSecond   int
	}{
		{"first embeds", &fakeEmbedder{embed: ok}, 0, true, "p1", 0},
		{"retryable falls back", &fakeEmbedder{embed: down}, 0, true, "p2", 1},
		{"chat-only deployment is skipped", chatOnly, 0, true, "p2", 1},
		{"invalid request stops", &fakeEmbedder{embed: bad}, KindInvalidRequest, false, "p1", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			second := &fakeEmbedder{embed: ok}
			obs := &fakeObserver{}
			r := newRouter(t, obs, Deployment{Provider: "p1", Model: "e1", Client: tc.first}, Deployment{Provider: "p2", Model: "e2", Client: second})
			req := &EmbedRequest{Model: "chat", Result: &Result{}}
			resp, err := r.Embed(context.Background(), req)
			if tc.wantOK != (err == nil) || (err != nil && AsError(err).Kind != tc.wantErr) {
				t.Fatalf("Embed() = %v, %v; want ok %v kind %v", resp, err, tc.wantOK, tc.wantErr)
			}
			if req.Result.Target.Provider != tc.wantProvider {
				t.Errorf("Embed() Target.Provider = %q; want %q", req.Result.Target.Provider, tc.wantProvider)
			}
			if second.calls != tc.wantSecond {
				t.Errorf("second deployment embedded %d times; want %d", second.calls, tc.wantSecond)
			}
			if len(obs.calls) == 0 {
				t.Errorf("Observer saw no attempts")
			}
		})
	}
	t.Run("no deployment embeds", func(t *testing.T) {
		r := newRouter(t, nil, Deployment{Provider: "p1", Model: "m1", Client: chatOnly})
		_, err := r.Embed(context.Background(), &EmbedRequest{Model: "chat"})
		if e := AsError(err); e.Kind != KindInvalidRequest || e.Param != "model" {
			t.Errorf("Embed() error = %+v; want KindInvalidRequest on param model", e)
		}
	})
}

func TestNewRejects(t *testing.T) {
	p := &fakeProvider{chat: answers()}
	tests := []struct {
		name   string
		routes []Route
	}{
		{"empty alias", []Route{{Deployments: []Deployment{{Client: p}}}}},
		{"duplicate alias", []Route{{Alias: "a", Deployments: []Deployment{{Client: p}}}, {Alias: "a", Deployments: []Deployment{{Client: p}}}}},
		{"no deployments", []Route{{Alias: "a"}}},
		{"nil client", []Route{{Alias: "a", Deployments: []Deployment{{Provider: "x"}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(Options{Routes: tc.routes}); err == nil {
				t.Errorf("New(%s) error = nil; want an error", tc.name)
			}
		})
	}
}

func TestServeDoesNotMutateProviderErrors(t *testing.T) {
	shared := &Error{Kind: KindInvalidRequest, Message: "bad"} // a provider's sentinel
	r := newRouter(t, nil, Deployment{Provider: "p1", Model: "m1", Client: &fakeProvider{chat: fails(shared)}})
	_, err := r.Serve(context.Background(), &ChatRequest{Model: "chat"})
	if e := AsError(err); e.Provider != "p1" {
		t.Errorf("Serve() error provider = %q; want %q", e.Provider, "p1")
	}
	if shared.Provider != "" {
		t.Errorf("Serve() set Provider = %q on the provider's own error; want it untouched", shared.Provider)
	}
}
