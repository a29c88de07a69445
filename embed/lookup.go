package embed

import (
	"context"
	"time"

	"llmproxy/router"
	"llmproxy/telemetry"
)

// cacheWriteTimeout bounds writing a reply's misses to the cache, which
// runs after the client may have gone.
const cacheWriteTimeout = 2 * time.Second

// lookup answers what it can from the cache and sends the rest on as a
// smaller request, then stores what came back.
func (s *Service) lookup(ctx context.Context, req *router.EmbedRequest, next router.EmbedHandler) (*router.EmbedResponse, error) {
	in, err := parseInputs(req)
	if err != nil {
		return nil, err
	}
	req, res := req.WithResult()
	id, _ := router.IdentityFrom(ctx)
	spec := keySpec{team: id.Team, dims: req.Dimensions}
	if s.shared {
		spec.team = ""
	}
	n := in.len()
	pctx, sp := telemetry.Start(ctx, "embed.cache.lookup")
	vecs, hitTarget, misses := s.probe(pctx, spec, req.Model, &in)
	sp.SetInt("llmproxy.embed.inputs", n)
	sp.SetInt("llmproxy.embed.cache_hits", n-len(misses))
	sp.End(nil)
	s.m.hits.Add(float64(n - len(misses)))
	s.m.misses.Add(float64(len(misses)))
	target, usage := hitTarget, router.Usage{}
	if len(misses) > 0 {
		sub, err := subRequest(req, in.subset(misses))
		if err != nil {
			return nil, err
		}
		resp, err := next.ServeEmbed(ctx, sub) // sub shares res: the stages below report into it
		if err != nil {
			return nil, err
		}
		if len(resp.Vectors) != len(misses) {
			return nil, &router.Error{Kind: router.KindInternal, Message: "internal error"}
		}
		weights := make([]int, len(misses))
		for k, i := range misses {
			weights[k] = in.weight(i)
		}
		shares := split(resp.Usage.PromptTokens, weights)
		items := make([]Item, len(misses))
		spec.target = res.Target
		for k, i := range misses {
			vecs[i] = vector{tokens: shares[k], vals: resp.Vectors[k]}
			items[k] = Item{Key: spec.key(&in, i), Value: vecs[i].encode()}
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cacheWriteTimeout)
		if err := s.store().SetMulti(wctx, items, s.ttl); err != nil {
			s.log.WarnContext(ctx, "embeddings cache write failed", "err", err, "entries", len(items))
		}
		cancel()
		target, usage = res.Target, resp.Usage
	} else {
		res.Alias, res.Target = req.Model, target
		res.Settled = true // nothing to charge: $0, no tokens
	}
	res.EmbedCache = cacheStatus(n, len(misses))
	for i, v := range vecs {
		if !containsInt(misses, i) {
			res.CachedInputTokens += v.tokens
		}
	}
	out := make([][]float32, n)
	for i, v := range vecs {
		out[i] = v.vals
	}
	return &router.EmbedResponse{Data: render(vecs, target.Model, req.EncodingFormat == "base64"), Usage: usage, Vectors: out}, nil
}

// probe looks every input up under each of alias's deployments in one
// GetMulti; it returns the hits (misses left zero), the deployment of the
// first hit and the indexes of the misses.
func (s *Service) probe(ctx context.Context, spec keySpec, alias string, in *inputs) ([]vector, router.Target, []int) {
	n := in.len()
	vecs := make([]vector, n)
	targets := s.targets(alias)
	var vals [][]byte
	if len(targets) > 0 {
		keys := make([]string, 0, n*len(targets))
		for i := range n {
			for _, t := range targets {
				spec.target = t
				keys = append(keys, spec.key(in, i))
			}
		}
		var err error
		if vals, err = s.store().GetMulti(ctx, keys); err != nil || len(vals) != len(keys) {
			if err != nil {
				s.log.WarnContext(ctx, "embeddings cache read failed: serving as misses", "err", err, "keys", len(keys))
			}
			vals = nil
		}
	}
	var first router.Target
	var misses []int
	for i := range n {
		hit := false
		for j := 0; vals != nil && j < len(targets); j++ {
			if v, ok := decodeVector(vals[i*len(targets)+j]); ok {
				if first == (router.Target{}) {
					first = targets[j]
				}
				vecs[i], hit = v, true
				break
			}
		}
		if !hit {
			misses = append(misses, i)
		}
	}
	return vecs, first, misses
}

func cacheStatus(n, misses int) string {
	switch misses {
	case 0:
		return "hit"
	case n:
		return "miss"
	}
	return "partial"
}

func containsInt(sorted []int, v int) bool {
	for _, x := range sorted {
		if x == v {
			return true
		}
		if x > v {
			return false
		}
	}
	return false
}

// subRequest is req reduced to the inputs in, for the guard and the
// batcher; it shares req's Result.
func subRequest(req *router.EmbedRequest, in inputs) (*router.EmbedRequest, error) {
	sub := &router.EmbedRequest{Model: req.Model, Dimensions: req.Dimensions, EncodingFormat: "base64", Result: req.Result}
	body := map[string]any{"model": req.Model, "encoding_format": "base64"}
	if req.Dimensions > 0 {
		body["dimensions"] = req.Dimensions
	}
	if in.tokens() {
		body["input"] = in.toks
		for _, t := range in.toks {
			sub.InputTokens += len(t)
		}
	} else {
		body["input"] = in.texts
		sub.Input = in.texts
	}
	var err error
	sub.Body, err = withExtras(body, in.extras)
	return sub, err
}
