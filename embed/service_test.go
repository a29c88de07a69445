package embed

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"llmproxy/router"
)

// chatless adds the chat method a chain's innermost handler needs.
type chatless struct{ *fakeBackend }

func (chatless) Serve(context.Context, *router.ChatRequest) (router.Stream, error) {
	return nil, errors.New("chat not served")
}

// failingCache fails every call.
type failingCache struct{}

func (failingCache) GetMulti(context.Context, []string) ([][]byte, error) {
	return nil, errors.New("connection refused")
}
func (failingCache) SetMulti(context.Context, []Item, time.Duration) error {
	return errors.New("connection refused")
}

// newService is a Service over be with batching off (max_wait 0), bound
// to the chain Lookup → Batch → be.
func newService(t *testing.T, be *fakeBackend, edit func(*Options)) *Service {
	t.Helper()
	o := Options{Batch: BatchOptions{MaxInputs: 16, MaxWait: 0},
		Targets: func(string) []router.Target { return []router.Target{{Provider: "fake", Model: "fake-embed"}} }}
	if edit != nil {
		edit(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	s.Bind(router.Chain(chatless{be}, s.Lookup(), s.Batch()).(router.EmbedHandler), nil)
	t.Cleanup(s.Close)
	return s
}

func team(name string) router.Identity { return router.Identity{Team: name} }

func TestServiceCacheStates(t *testing.T) {
	be := &fakeBackend{}
	s := newService(t, be, nil)
	ctx := context.Background()
	steps := []struct {
		texts      []string
		wantCache  string
		wantSent   []string // inputs the upstream got; nil: no call
		wantCached int      // tokens served from the cache
	}{
		{[]string{"alpha", "beta"}, "miss", []string{"alpha", "beta"}, 0},
		{[]string{"beta", "alpha"}, "hit", nil, 9},
		{[]string{"gamma", "alpha", "delta"}, "partial", []string{"gamma", "delta"}, 5},
	}
	for i, st := range steps {
		calls := len(be.calls)
		vecs, meta, err := s.Embed(ctx, team("a"), "emb", st.texts)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		for j, text := range st.texts {
			if !slices.Equal(vecs[j], fakeVector(text)) {
				t.Errorf("step %d: vector %d is not the upstream's for %q", i, j, text)
			}
		}
		if meta.EmbedCache != st.wantCache || meta.CachedInputTokens != st.wantCached {
			t.Errorf("step %d: cache %q, %d cached tokens; want %q, %d", i, meta.EmbedCache, meta.CachedInputTokens, st.wantCache, st.wantCached)
		}
		switch {
		case st.wantSent == nil && len(be.calls) != calls:
			t.Errorf("step %d: upstream called; want a full hit", i)
		case st.wantSent != nil && (len(be.calls) != calls+1 || !slices.Equal(be.calls[calls].Input, st.wantSent)):
			t.Errorf("step %d: upstream got %v; want one call with %v", i, be.calls[len(be.calls)-1].Input, st.wantSent)
		}
		if st.wantCache == "hit" && (!meta.Settled || meta.CostUSD != 0 || meta.Usage.PromptTokens != 0) {
			t.Errorf("step %d: full hit meta %+v; want settled at $0 with no tokens", i, meta)
		}
	}
}

func TestServiceScope(t *testing.T) {
	for _, tc := range []struct {
		shared    bool
		wantCache string
	}{{false, "miss"}, {true, "hit"}} {
		be := &fakeBackend{}
		s := newService(t, be, func(o *Options) { o.Shared = tc.shared })
		ctx := context.Background()
		if _, _, err := s.Embed(ctx, team("a"), "emb", []string{"secret plan"}); err != nil {
			t.Fatal(err)
		}
		_, meta, err := s.Embed(ctx, team("b"), "emb", []string{"secret plan"})
		if err != nil || meta.EmbedCache != tc.wantCache {
			t.Errorf("shared=%v: team b got %q (%v); want %q", tc.shared, meta.EmbedCache, err, tc.wantCache)
		}
	}
}

func TestServiceKeyCoversModelAndDimensions(t *testing.T) {
	in := inputs{texts: []string{"x"}}
	base := keySpec{team: "a", target: router.Target{Provider: "p", Model: "m"}, dims: 0}
	other := []keySpec{
		{team: "b", target: base.target},
		{team: "a", target: router.Target{Provider: "p", Model: "m2"}},
		{team: "a", target: router.Target{Provider: "p2", Model: "m"}},
		{team: "a", target: base.target, dims: 256},
	}
	for _, o := range other {
		if o.key(&in, 0) == base.key(&in, 0) {
			t.Errorf("key(%+v) = key(%+v); want different", o, base)
		}
	}
	toks := inputs{toks: [][]int{{120}}}
	if base.key(&toks, 0) == base.key(&inputs{texts: []string{"x"}}, 0) {
		t.Error("a token array and a string share a key")
	}
}

func TestServiceProbesEveryDeployment(t *testing.T) {
	be := &fakeBackend{}
	cache := NewMemoryCache(100, time.Hour)
	t.Cleanup(cache.Close)
	targets := []router.Target{{Provider: "p1", Model: "m"}, {Provider: "fake", Model: "fake-embed"}}
	s := newService(t, be, func(o *Options) {
		o.Cache = cache
		o.Targets = func(string) []router.Target { return targets }
	})
	ctx := context.Background()
	if _, _, err := s.Embed(ctx, team("a"), "emb", []string{"hello"}); err != nil { // served by fake/fake-embed
		t.Fatal(err)
	}
	_, meta, err := s.Embed(ctx, team("a"), "emb", []string{"hello"})
	if err != nil || meta.EmbedCache != "hit" || len(be.calls) != 1 {
		t.Fatalf("second call: %q, %d upstream calls (%v); want a hit found under the second deployment", meta.EmbedCache, len(be.calls), err)
	}
}

func TestServiceCacheDownServesMisses(t *testing.T) {
	be := &fakeBackend{}
	s := newService(t, be, func(o *Options) { o.Cache = failingCache{} })
	for range 2 {
		vecs, meta, err := s.Embed(context.Background(), team("a"), "emb", []string{"still served"})
		if err != nil || meta.EmbedCache != "miss" || !slices.Equal(vecs[0], fakeVector("still served")) {
			t.Fatalf("with the cache down: %q %v; want a miss served by the upstream", meta.EmbedCache, err)
		}
	}
}

func TestServiceInvalidInput(t *testing.T) {
	s := newService(t, &fakeBackend{}, nil)
	_, _, err := s.Embed(context.Background(), team("a"), "emb", []string{"ok", ""})
	var re *router.Error
	if !errors.As(err, &re) || re.Kind != router.KindInvalidRequest || re.Param != "input" {
		t.Fatalf("empty input: %v; want invalid_request on input", err)
	}
}

func TestRenderRoundTrips(t *testing.T) {
	vecs := []vector{{tokens: 2, vals: fakeVector("a")}, {tokens: 3, vals: fakeVector("b")}}
	for _, b64 := range []bool{false, true} {
		got, err := parseVectors(render(vecs, "m", b64), 2)
		if err != nil {
			t.Fatal(err)
		}
		for i := range vecs {
			if !slices.Equal(got[i], vecs[i].vals) {
				t.Errorf("base64=%v: vector %d changed in a round trip", b64, i)
			}
		}
	}
}

func TestSplitAddsUp(t *testing.T) {
	for _, tc := range []struct {
		total   int
		weights []int
		want    []int
	}{
		{10, []int{1, 1, 1}, []int{4, 3, 3}},
		{7, []int{5, 0, 2}, []int{5, 0, 2}},
		{0, []int{1, 2}, []int{0, 0}},
		{100, []int{1, 2, 3, 4}, []int{10, 20, 30, 40}},
	} {
		if got := split(tc.total, tc.weights); !slices.Equal(got, tc.want) {
			t.Errorf("split(%d, %v) = %v; want %v", tc.total, tc.weights, got, tc.want)
		}
	}
}

func TestServiceExtraFieldsKeyAndBatch(t *testing.T) {
	be := &fakeBackend{}
	s := newService(t, be, nil)
	head := s.head
	embedWith := func(body string) *router.Result {
		t.Helper()
		req := &router.EmbedRequest{Model: "emb", Body: []byte(body), Input: []string{"same text"}, Result: &router.Result{}}
		if _, err := head.ServeEmbed(router.WithIdentity(context.Background(), team("a")), req); err != nil {
			t.Fatal(err)
		}
		return req.Result
	}
	if m := embedWith(`{"model":"emb","input":"same text","input_type":"query"}`); m.EmbedCache != "miss" {
		t.Fatalf("first: %q; want miss", m.EmbedCache)
	}
	if m := embedWith(`{"model":"emb","input":"same text","input_type":"document"}`); m.EmbedCache != "miss" {
		t.Fatalf("another input_type: %q; want miss (it can change the vector)", m.EmbedCache)
	}
	if m := embedWith(`{"input_type":"query","input":"same text","model":"emb","user":"u1"}`); m.EmbedCache != "hit" {
		t.Fatalf("same fields again: %q; want hit", m.EmbedCache)
	}
	if sent := string(be.calls[1].Body); !strings.Contains(sent, `"input_type":"document"`) {
		t.Fatalf("upstream body %s; want input_type passed on", sent)
	}
}

func TestServiceCloseFailsLateBatches(t *testing.T) {
	be := &fakeBackend{}
	s := newService(t, be, nil)
	s.Close()
	_, _, err := s.Embed(context.Background(), team("a"), "emb", []string{"late"})
	var re *router.Error
	if !errors.As(err, &re) || re.Kind != router.KindNoProvider {
		t.Fatalf("after Close: %v; want a 503", err)
	}
}
