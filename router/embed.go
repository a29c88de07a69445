package router

import (
	"context"
	"fmt"
)

// Embed routes an embeddings call in configuration order, moving on only
// after failures another deployment might not have. Embeddings are short
// and unstreamed, so they skip breakers, limiters and cooldowns.
func (r *Router) Embed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error) {
	rt, ok := r.routes[req.Model]
	if !ok {
		return nil, modelNotFound(req.Model)
	}
	var last *Error
	for i := range rt.Deployments {
		d := &rt.Deployments[i]
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
