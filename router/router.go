package router

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Deployment is one upstream that can serve an alias.
type Deployment struct {
	// Provider is the configured provider name.
	Provider string
	// Model is the upstream model name.
	Model string
	// Client serves chat; it may also implement Embedder.
	Client Provider
}

// Route is one model alias and its deployments, tried in order.
type Route struct {
	Alias       string
	Deployments []Deployment
}

// Observer receives one call per upstream attempt. outcome is "ok" or an
// error Kind's label; ttft is the time to the first chunk (or to failure).
type Observer interface {
	Attempt(provider, model, outcome string, ttft time.Duration)
}

// Options configures a Router.
type Options struct {
	Routes   []Route
	Observer Observer // optional
	Timeouts Timeouts
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Router picks deployments for an alias and commits to the first one that
// answers. It is the innermost Handler.
type Router struct {
	routes map[string]*Route
	obs    Observer
	to     Timeouts
	now    func() time.Time
}

// New checks opts and builds a Router.
func New(opts Options) (*Router, error) {
	r := &Router{routes: make(map[string]*Route, len(opts.Routes)), obs: opts.Observer, to: opts.Timeouts, now: opts.Now}
	if r.now == nil {
		r.now = time.Now
	}
	for i := range opts.Routes {
		rt := &opts.Routes[i]
		if rt.Alias == "" {
			return nil, fmt.Errorf("route %d: empty alias", i)
		}
		if _, dup := r.routes[rt.Alias]; dup {
			return nil, fmt.Errorf("route %q: duplicate alias", rt.Alias)
		}
		if len(rt.Deployments) == 0 {
			return nil, fmt.Errorf("route %q: no deployments", rt.Alias)
		}
		for j, d := range rt.Deployments {
			if d.Client == nil {
				return nil, fmt.Errorf("route %q: deployment %d has no client", rt.Alias, j)
			}
		}
		r.routes[rt.Alias] = rt
	}
	return r, nil
}

// Has reports whether alias is routable.
func (r *Router) Has(alias string) bool { _, ok := r.routes[alias]; return ok }

// Serve implements Handler. On success req.Target names the deployment
// that answered and req.Attempts how many were tried.
func (r *Router) Serve(ctx context.Context, req *ChatRequest) (Stream, error) {
	rt, ok := r.routes[req.Model]
	if !ok {
		return nil, modelNotFound(req.Model)
	}
	var last *Error
	for _, d := range rt.Deployments {
		if err := ctx.Err(); err != nil {
			return nil, AsError(err)
		}
		req.Target = Target{Provider: d.Provider, Model: d.Model}
		req.Attempts++
		if req.Timeouts == (Timeouts{}) {
			req.Timeouts = r.to
		}
		s, err := r.attempt(ctx, d, req)
		if err == nil {
			return s, nil
		}
		last = attributed(err, d.Provider)
		if !last.Retryable() {
			return nil, last
		}
	}
	return nil, last
}

// attempt calls one deployment and reads its first chunk, so that a
// failure before any byte reaches the client can still move on.
func (r *Router) attempt(ctx context.Context, d Deployment, req *ChatRequest) (Stream, error) {
	start := r.now()
	s, err := d.Client.Chat(ctx, req)
	if err != nil {
		r.observe(d, err, r.now().Sub(start))
		return nil, err
	}
	first, err := s.Next()
	if err != nil && err != io.EOF {
		s.Close()
		r.observe(d, err, r.now().Sub(start))
		return nil, err
	}
	r.observe(d, nil, r.now().Sub(start))
	return &peeked{Stream: s, first: first, firstErr: err}, nil
}

func (r *Router) observe(d Deployment, err error, ttft time.Duration) {
	if r.obs == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = AsError(err).Kind.String()
	}
	r.obs.Attempt(d.Provider, d.Model, outcome, ttft)
}

// Embed routes an embeddings call the same way: in order, moving on only
// after failures another deployment might not have.
func (r *Router) Embed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error) {
	rt, ok := r.routes[req.Model]
	if !ok {
		return nil, modelNotFound(req.Model)
	}
	var last *Error
	for _, d := range rt.Deployments {
		e, ok := d.Client.(Embedder)
		if !ok {
			last = &Error{Kind: KindInvalidRequest, Message: fmt.Sprintf("model %q does not support embeddings", req.Model), Param: "model"}
			continue
		}
		req.Target = Target{Provider: d.Provider, Model: d.Model}
		start := r.now()
		resp, err := e.Embed(ctx, req)
		r.observe(d, err, r.now().Sub(start))
		if err == nil {
			return resp, nil
		}
		last = attributed(err, d.Provider)
		if !last.Retryable() {
			return nil, last
		}
	}
	return nil, last
}

// attributed returns err as an *Error naming provider. It copies rather
// than sets the field: the *Error belongs to the provider, which may return
// the same value to many concurrent requests.
func attributed(err error, provider string) *Error {
	e := AsError(err)
	if e.Provider != "" {
		return e
	}
	cp := *e
	cp.Provider = provider
	return &cp
}

func modelNotFound(model string) *Error {
	return &Error{Kind: KindNotFound, Code: "model_not_found", Param: "model",
		Message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", model)}
}

// ModelNotFound is the error for an alias that is unknown or not allowed.
func ModelNotFound(model string) *Error { return modelNotFound(model) }

// peeked replays the chunk the router read to commit.
type peeked struct {
	Stream
	first    *Chunk
	firstErr error
	done     bool
}

func (p *peeked) Next() (*Chunk, error) {
	if !p.done {
		p.done = true
		if p.firstErr != nil {
			return nil, p.firstErr
		}
		return p.first, nil
	}
	return p.Stream.Next()
}
