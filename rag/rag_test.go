package rag

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"llmproxy/router"
)

// upstreamMessages decodes the messages the next stage got.
func upstreamMessages(t *testing.T, req *router.ChatRequest) []router.Message {
	t.Helper()
	ms, err := req.Messages()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestPassThrough: a request that asks for nothing reaches the next stage
// as it came: same request, same body, no search, nothing reported.
func TestPassThrough(t *testing.T) {
	hs := newHarness(t, Options{Aliases: map[string]Settings{"docs": {VectorStores: []string{"handbook"}}}})
	req := chat(t, `{"model":"plain","messages":[{"role":"user","content":"hi"}]}`)
	body := string(req.Body)
	if _, err := hs.h.Serve(teamCtx("t"), req); err != nil {
		t.Fatal(err)
	}
	if got := hs.next.last(t); got != req || string(got.Body) != body || got.Result.RAG != "" || got.Result.Sources != nil {
		t.Errorf("next got %+v; want the request untouched", got)
	}
	if n := hs.ret.searches(); n != 0 || len(hs.obs.list()) != 0 {
		t.Errorf("%d searches, observed %v; want none", n, hs.obs.list())
	}
}

// TestAugment: an alias with a rag block, or a request naming its stores
// by header or body field, gets one system message of numbered references
// after the client's system messages; the body field is gone; the
// sources are reported in order.
func TestAugment(t *testing.T) {
	hs := newHarness(t, Options{Aliases: map[string]Settings{"docs": {VectorStores: []string{"handbook"}}}})
	for _, tc := range []struct {
		name, body, header string
		wantFiles          []string
		wantAt             int // index of the added system message
	}{
		{"alias", `{"model":"docs","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"How long do refunds take?"}]}`, "",
			[]string{"file-refunds", "file-parking"}, 1},
		{"header on a plain alias", `{"model":"plain","messages":[{"role":"user","content":"How long do refunds take?"}]}`, " faq , vs_hb ",
			[]string{"file-refunds", "file-parking", "file-faq"}, 0},
		{"body field replaces the alias's stores", `{"model":"docs","vector_store_ids":["faq"],"messages":[{"role":"developer","content":"x"},{"role":"user","content":"a"},{"role":"system","content":"late"},{"role":"user","content":"Receipts?"}]}`, "",
			[]string{"file-faq"}, 3},
		{"header and body agree", `{"model":"plain","vector_store_ids":["faq"],"messages":[{"role":"user","content":"Receipts?"}]}`, "faq",
			[]string{"file-faq"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := chat(t, tc.body)
			req.VectorStoreIDs = tc.header
			in, _ := req.Messages()
			if _, err := hs.h.Serve(teamCtx("t"), req); err != nil {
				t.Fatal(err)
			}
			got := hs.next.last(t)
			if router.TopField(got.Body, "vector_store_ids") != nil {
				t.Errorf("body still has vector_store_ids: %s", got.Body)
			}
			ms := upstreamMessages(t, got)
			if len(ms) != len(in)+1 || ms[tc.wantAt].Role != "system" || !strings.HasPrefix(ms[tc.wantAt].Text(), "Answer the user's question using the numbered references") {
				t.Fatalf("messages = %+v; want the references as a system message at %d", ms, tc.wantAt)
			}
			for i, f := range tc.wantFiles {
				src := got.Result.Sources[i]
				if src.FileID != f || src.Index != i+1 {
					t.Errorf("source %d = %+v; want %s numbered %d", i, src, f, i+1)
				}
				hit := hitOf(hs.ret, f)
				if want := "[" + string(rune('1'+i)) + "] " + hit.Filename + "\n" + hit.Content; !strings.Contains(ms[tc.wantAt].Text(), want) {
					t.Errorf("system message lacks %q:\n%s", want, ms[tc.wantAt].Text())
				}
			}
			if len(got.Result.Sources) != len(tc.wantFiles) || got.Result.RAG != "used" || got.PromptTokens != 0 {
				t.Errorf("result = %+v, PromptTokens %d; want %d sources, used, tokens to count again", got.Result, got.PromptTokens, len(tc.wantFiles))
			}
			others := slices.DeleteFunc(slices.Clone(ms), func(m router.Message) bool { return strings.HasPrefix(m.Text(), "Answer the user") })
			if !reflect.DeepEqual(others, in) {
				t.Errorf("the client's messages changed: %+v; want %+v", others, in)
			}
		})
	}
	if q := hs.ret.queries[0]; q != "How long do refunds take?" {
		t.Errorf("query = %q; want the last user message", q)
	}
	if route := router.LedgerRoute(hs.ret.ctxs[0]); route != "rag" {
		t.Errorf("search context's ledger route = %q; want rag", route)
	}
}

func hitOf(f *fakeRetriever, fileID string) Hit {
	for _, h := range f.hits {
		if h.FileID == fileID {
			return h
		}
	}
	return Hit{}
}

// TestRequestErrors: a store the team does not own is a 404 naming it
// (another team's included), and a bad list is a 400; neither reaches the
// next stage.
func TestRequestErrors(t *testing.T) {
	hs := newHarness(t, Options{})
	for _, tc := range []struct {
		name, body, header string
		kind               router.Kind
		msg                string
	}{
		{"another team's store", `{"model":"m","messages":[{"role":"user","content":"q"}]}`, "secret", router.KindNotFound, "No vector store found with id 'secret'."},
		{"unknown id in body", `{"model":"m","vector_store_ids":["vs_nope"],"messages":[{"role":"user","content":"q"}]}`, "", router.KindNotFound, "vs_nope"},
		{"not an array", `{"model":"m","vector_store_ids":"faq","messages":[{"role":"user","content":"q"}]}`, "", router.KindInvalidRequest, "expected an array"},
		{"header and body differ", `{"model":"m","vector_store_ids":["faq"],"messages":[{"role":"user","content":"q"}]}`, "handbook", router.KindInvalidRequest, "differ"},
		{"too many", `{"model":"m","vector_store_ids":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"],"messages":[]}`, "", router.KindInvalidRequest, "at most 16"},
		{"empty id", `{"model":"m","vector_store_ids":[""],"messages":[]}`, "", router.KindInvalidRequest, "Invalid vector store id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := chat(t, tc.body)
			req.VectorStoreIDs = tc.header
			_, err := hs.h.Serve(teamCtx("t"), req)
			var e *router.Error
			if !errors.As(err, &e) || e.Kind != tc.kind || e.Param != "vector_store_ids" || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("Serve() = %v; want %v on vector_store_ids with %q", err, tc.kind, tc.msg)
			}
		})
	}
	if len(hs.next.reqs) != 0 {
		t.Errorf("next got %d requests; want none", len(hs.next.reqs))
	}
}

// TestEmptyListTurnsOff: "vector_store_ids": [] on a rag alias sends the
// request without retrieval.
func TestEmptyListTurnsOff(t *testing.T) {
	hs := newHarness(t, Options{Aliases: map[string]Settings{"docs": {VectorStores: []string{"handbook"}}}})
	req := chat(t, `{"model":"docs","vector_store_ids":[],"messages":[{"role":"user","content":"q"}]}`)
	if _, err := hs.h.Serve(teamCtx("t"), req); err != nil {
		t.Fatal(err)
	}
	if got := hs.next.last(t); string(got.Body) != `{"model":"docs","messages":[{"role":"user","content":"q"}]}` || hs.ret.searches() != 0 {
		t.Errorf("next got %s after %d searches; want the body without the field, no search", got.Body, hs.ret.searches())
	}
}

// fakeRerank reranks by reversing the hits and records its calls.
type fakeRerank struct {
	calls []*router.RerankRequest
	err   error
}

func (f *fakeRerank) ServeRerank(_ context.Context, req *router.RerankRequest) (*router.RerankResponse, error) {
	f.calls = append(f.calls, req)
	if f.err != nil {
		return nil, f.err
	}
	var out []router.Ranked
	for i := len(req.Documents) - 1; i >= 0 && len(out) < req.TopN; i-- {
		out = append(out, router.Ranked{Index: i, Score: 0.1 * float64(i+1)})
	}
	return &router.RerankResponse{Results: out}, nil
}

// TestRerank: with a rerank model the hits go through it and the best
// rerank_top_k, in its order with its scores, become the references.
func TestRerank(t *testing.T) {
	rr := &fakeRerank{}
	hs := newHarness(t, Options{Rerank: rr, Aliases: map[string]Settings{"docs": {VectorStores: []string{"handbook", "faq"}, RerankModel: "rr", RerankTopK: 2}}})
	req := chat(t, `{"model":"docs","messages":[{"role":"user","content":"receipts"}]}`)
	if _, err := hs.h.Serve(teamCtx("t"), req); err != nil {
		t.Fatal(err)
	}
	if len(rr.calls) != 1 || rr.calls[0].Model != "rr" || rr.calls[0].Query != "receipts" || len(rr.calls[0].Documents) != 3 || rr.calls[0].TopN != 2 {
		t.Fatalf("rerank calls = %+v; want one of rr with the 3 hits, top 2", rr.calls)
	}
	src := hs.next.last(t).Result.Sources
	want := []router.Source{
		{Index: 1, VectorStoreID: "vs_faq", FileID: "file-faq", Filename: "faq.md", ChunkIndex: 7, Score: 0.30000000000000004},
		{Index: 2, VectorStoreID: "vs_hb", FileID: "file-parking", Filename: "parking.md", ChunkIndex: 0, Score: 0.2},
	}
	if !reflect.DeepEqual(src, want) {
		t.Errorf("sources = %+v; want %+v", src, want)
	}
}

// TestMaxContextTokens: the best references are kept while they fit; the
// first that does not is cut to the room left when that is worth it.
func TestMaxContextTokens(t *testing.T) {
	long := strings.Repeat("word ", 200)
	ret := newFakeRetriever()
	ret.hits = []Hit{
		{StoreID: "vs_hb", FileID: "f1", Filename: "a.md", Score: 0.9, Content: strings.Repeat("alpha ", 50)},
		{StoreID: "vs_hb", FileID: "f2", Filename: "b.md", Score: 0.8, Content: long},
		{StoreID: "vs_hb", FileID: "f3", Filename: "c.md", Score: 0.7, Content: "small"},
	}
	for _, tc := range []struct {
		max       int
		wantFiles int
		cutWords  int // words left of f2; -1 not present
	}{
		{max: 1000, wantFiles: 3, cutWords: 200},
		{max: 200, wantFiles: 2, cutWords: 200 - 59 - 9}, // 59 for a.md, 9 for b.md's head
		{max: 100, wantFiles: 1, cutWords: -1},           // 41 left: not worth a cut
	} {
		hs := newHarness(t, Options{Retriever: ret, Aliases: map[string]Settings{"docs": {VectorStores: []string{"handbook"}, MaxContextTokens: tc.max}}})
		if _, err := hs.h.Serve(teamCtx("t"), chat(t, `{"model":"docs","messages":[{"role":"user","content":"q"}]}`)); err != nil {
			t.Fatal(err)
		}
		got := hs.next.last(t)
		text := upstreamMessages(t, got)[0].Text()
		if len(got.Result.Sources) != tc.wantFiles {
			t.Errorf("max %d: %d sources; want %d", tc.max, len(got.Result.Sources), tc.wantFiles)
		}
		if tc.cutWords >= 0 {
			if n := strings.Count(text, "word"); n != tc.cutWords {
				t.Errorf("max %d: %d words of b.md kept; want %d", tc.max, n, tc.cutWords)
			}
		} else if strings.Contains(text, "word") {
			t.Errorf("max %d: b.md is in the prompt; want it left out", tc.max)
		}
	}
}

// TestFailurePolicy: a failing search fails closed with a 503, or open:
// the request goes on unchanged with RAG "skipped", a metric and a Warn
// line without the prompt. The client's own errors pass through either
// way.
func TestFailurePolicy(t *testing.T) {
	broken := &router.Error{Kind: router.KindUpstream, Message: "embedding upstream down"}
	refused := &router.Error{Kind: router.KindBudgetExceeded, Message: "You exceeded your current quota"}
	const secret = "QUERY-CANARY-91"
	for _, tc := range []struct {
		name     string
		open     bool
		err      error
		wantKind router.Kind // 0: served
		outcome  string
	}{
		{"fail_closed", false, broken, router.KindNoProvider, "failed"},
		{"fail_open", true, broken, 0, "skipped"},
		{"budget refusal, fail_open", true, refused, router.KindBudgetExceeded, "refused"},
		{"plain error, fail_closed", false, errors.New("disk on fire"), router.KindNoProvider, "failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, Options{Aliases: map[string]Settings{"docs": {VectorStores: []string{"handbook"}, FailOpen: tc.open}}})
			hs.ret.err = tc.err
			body := `{"model":"docs","messages":[{"role":"user","content":"` + secret + `"}]}`
			req := chat(t, body)
			_, err := hs.h.Serve(teamCtx("t"), req)
			if tc.wantKind != 0 {
				if e := router.AsError(err); e.Kind != tc.wantKind {
					t.Errorf("Serve() = %v; want %v", err, tc.wantKind)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				got := hs.next.last(t)
				if string(got.Body) != body || got.Result.RAG != "skipped" || got.Result.Sources != nil {
					t.Errorf("next got %s, RAG %q; want the body unchanged, skipped", got.Body, got.Result.RAG)
				}
				if !strings.Contains(hs.logs.String(), `"level":"WARN"`) || !strings.Contains(hs.logs.String(), "answering without context") {
					t.Errorf("logs = %s; want a Warn line", hs.logs)
				}
			}
			if strings.Contains(hs.logs.String(), secret) {
				t.Errorf("logs hold the prompt: %s", hs.logs)
			}
			if got := hs.obs.list(); !slices.Equal(got, []string{tc.outcome}) {
				t.Errorf("observed %v; want [%s]", got, tc.outcome)
			}
		})
	}
}

// TestNoRetriever: a server without vector stores fails retrieval, as
// the alias's on_error says.
func TestNoRetriever(t *testing.T) {
	r, err := New(Options{Count: wordCount, Log: discard(), Default: Settings{FailOpen: false}})
	if err != nil {
		t.Fatal(err)
	}
	req := chat(t, `{"model":"m","messages":[{"role":"user","content":"q"}]}`)
	req.VectorStoreIDs = "handbook"
	if _, err := r.Middleware()(&fakeNext{}).Serve(teamCtx("t"), req); router.AsError(err).Kind != router.KindNoProvider {
		t.Errorf("Serve() = %v; want 503", err)
	}
}

// TestDryRun: explain retrieves (the search is real) but does not
// rerank; it reports the references and notes, and still changes the
// body so that the budget's decision counts them.
func TestDryRun(t *testing.T) {
	rr := &fakeRerank{}
	hs := newHarness(t, Options{Rerank: rr, Aliases: map[string]Settings{"docs": {VectorStores: []string{"handbook"}, RerankModel: "rr", RerankTopK: 1}}})
	req := chat(t, `{"model":"docs","messages":[{"role":"user","content":"refunds"}]}`)
	req.DryRun = true
	if _, err := hs.h.Serve(teamCtx("t"), req); err != nil {
		t.Fatal(err)
	}
	res := hs.next.last(t).Result
	if len(rr.calls) != 0 || hs.ret.searches() != 1 {
		t.Errorf("%d rerank calls, %d searches; want no rerank, one search", len(rr.calls), hs.ret.searches())
	}
	if len(res.Sources) != 1 || res.Sources[0].FileID != "file-refunds" || len(res.Notes) != 2 ||
		!strings.Contains(res.Notes[0].What, "not run on a dry run") || !strings.Contains(res.Notes[1].What, "charged to the team") {
		t.Errorf("result = %+v; want the best hit by search score and two notes", res)
	}
	if len(upstreamMessages(t, hs.next.last(t))) != 2 || len(hs.obs.list()) != 0 {
		t.Errorf("dry run: want the references in the body and no metric")
	}
}

// TestQueryIsLastUserText: the query is the last user message's text
// parts; a request without one is sent without retrieval.
func TestQueryIsLastUserText(t *testing.T) {
	hs := newHarness(t, Options{Aliases: map[string]Settings{"docs": {VectorStores: []string{"handbook"}}}})
	body := `{"model":"docs","messages":[{"role":"user","content":"old"},{"role":"assistant","content":"a"},` +
		`{"role":"user","content":[{"type":"text","text":"what is"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},{"type":"text","text":"this?"}]}]}`
	if _, err := hs.h.Serve(teamCtx("t"), chat(t, body)); err != nil {
		t.Fatal(err)
	}
	if q := hs.ret.queries[0]; q != "what is\nthis?" {
		t.Errorf("query = %q; want the text parts of the last user message", q)
	}
	req := chat(t, `{"model":"docs","messages":[{"role":"system","content":"s"}]}`)
	if _, err := hs.h.Serve(teamCtx("t"), req); err != nil || hs.next.last(t).Result.RAG != "no_results" || hs.ret.searches() != 1 {
		t.Errorf("no user message: err %v, RAG %q, %d searches; want no_results without a search", err, hs.next.last(t).Result.RAG, hs.ret.searches())
	}
}

func TestParseTemplate(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"{{range .References}}[{{.Index}}] {{.Content}}{{end}}", ""},
		{"{{.Nope}}", "Nope"},
		{"{{range .References}", "bad character"},
		{"", "empty"},
	} {
		_, err := ParseTemplate(tc.text)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("ParseTemplate(%q) = %v; want an error with %q", tc.text, err, tc.want)
		}
	}
	custom, _ := ParseTemplate("Docs:{{range .References}} ({{.Index}}) {{.FileID}}{{end}}")
	hs := newHarness(t, Options{Aliases: map[string]Settings{"docs": {VectorStores: []string{"faq"}, Template: custom}}})
	hs.h.Serve(teamCtx("t"), chat(t, `{"model":"docs","messages":[{"role":"user","content":"q"}]}`))
	if got := upstreamMessages(t, hs.next.last(t))[0].Text(); got != "Docs: (1) file-faq" {
		t.Errorf("system message = %q; want the custom template's", got)
	}
}

func TestNewChecks(t *testing.T) {
	for _, o := range []Options{
		{Count: wordCount},
		{Count: wordCount, Log: discard(), Aliases: map[string]Settings{"a": {}}},
		{Count: wordCount, Log: discard(), Aliases: map[string]Settings{"a": {VectorStores: []string{"x"}, RerankModel: "rr"}}},
		{Count: wordCount, Log: discard(), Aliases: map[string]Settings{"a": {VectorStores: []string{"x"}, TopK: 2, RerankTopK: 3}}},
		{Count: wordCount, Log: discard(), Default: Settings{ScoreThreshold: 2}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) = nil error", o)
		}
	}
}

// FuzzStoreRefs: no header or body field panics the parser; what it
// accepts is at most MaxStores distinct, non-empty refs, and the field is
// gone from the body.
func FuzzStoreRefs(f *testing.F) {
	f.Add(`{"vector_store_ids":["a","b"],"messages":[]}`, "")
	f.Add(`{"vector_store_ids":"a","messages":[]}`, "a,b")
	f.Add(`{"messages":[]}`, " , vs_1 ,")
	f.Add(`{"vector_store_ids":null}`, "x")
	f.Fuzz(func(t *testing.T, body, hdr string) {
		if !json.Valid([]byte(body)) {
			return
		}
		req := &router.ChatRequest{Body: []byte(body), VectorStoreIDs: hdr}
		refs, _, err := storeRefs(req)
		if err != nil {
			if router.AsError(err).Kind != router.KindInvalidRequest {
				t.Fatalf("storeRefs error %v; want a 400", err)
			}
			return
		}
		if len(refs) > MaxStores || slices.Contains(refs, "") || len(slices.Compact(slices.Sorted(slices.Values(refs)))) != len(refs) {
			t.Fatalf("storeRefs = %q", refs)
		}
		if router.TopField(req.Body, "vector_store_ids") != nil && router.TopField([]byte(body), "vector_store_ids") != nil {
			t.Fatalf("vector_store_ids left in %s", req.Body)
		}
	})
}

// BenchmarkPassThrough is the stage's cost for a request that asks for no
// retrieval on a server where other aliases use it: what every plain chat
// request pays.
func BenchmarkPassThrough(b *testing.B) {
	r, err := New(Options{Count: wordCount, Log: discard(), Aliases: map[string]Settings{"docs": {VectorStores: []string{"handbook"}}}})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"model":"bench","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":64}`)
	ctx := teamCtx("t")
	req := &router.ChatRequest{Model: "bench", Body: body}
	h := r.Middleware()(router.HandlerFunc(func(context.Context, *router.ChatRequest) (router.Stream, error) { return emptyStream{}, nil }))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Serve(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCutAndTail: the longest prefix (suffix) within the limit, cut at a
// rune boundary: one more rune would pass the limit.
func TestCutAndTail(t *testing.T) {
	r, _ := New(Options{Count: wordCount, Log: discard()})
	for _, s := range []string{"", "ä", "één twee drie vier", "日本 語の 文章 です よ", strings.Repeat("x y ", 10)} {
		for limit := 0; limit <= 6; limit++ {
			c, tl := r.cut("m", s, limit), r.tail("m", s, limit)
			if !strings.HasPrefix(s, c) || !strings.HasSuffix(s, tl) || wordCount("m", c) > limit || wordCount("m", tl) > limit {
				t.Fatalf("cut/tail(%q, %d) = %q, %q; want a prefix and a suffix within the limit", s, limit, c, tl)
			}
			if rest := s[len(c):]; rest != "" {
				_, n := utf8.DecodeRuneInString(rest)
				if wordCount("m", s[:len(c)+n]) <= limit {
					t.Errorf("cut(%q, %d) = %q; one more rune still fits", s, limit, c)
				}
			}
			if rest := s[:len(s)-len(tl)]; rest != "" {
				_, n := utf8.DecodeLastRuneInString(rest)
				if wordCount("m", s[len(rest)-n:]) <= limit {
					t.Errorf("tail(%q, %d) = %q; one more rune still fits", s, limit, tl)
				}
			}
		}
	}
}

// TestLongQuery: a user message longer than MaxQueryTokens is searched by
// its end, where the question is.
func TestLongQuery(t *testing.T) {
	hs := newHarness(t, Options{Aliases: map[string]Settings{"docs": {VectorStores: []string{"handbook"}}}})
	long := strings.Repeat("filler ", 3000) + "how long do refunds take?"
	if _, err := hs.h.Serve(teamCtx("t"), chat(t, `{"model":"docs","messages":[{"role":"user","content":"`+long+`"}]}`)); err != nil {
		t.Fatal(err)
	}
	q := hs.ret.queries[0]
	if wordCount("", q) != MaxQueryTokens || !strings.HasSuffix(q, "how long do refunds take?") {
		t.Errorf("query has %d words and ends %q; want the last %d", wordCount("", q), q[max(len(q)-30, 0):], MaxQueryTokens)
	}
}

// TestEscapedStoreField: the body field spelled with a \u escape is
// still the field (the fast path's substring search must not miss it).
func TestEscapedStoreField(t *testing.T) {
	hs := newHarness(t, Options{})
	req := chat(t, `{"model":"m","\u0076ector_store_ids":["faq"],"messages":[{"role":"user","content":"receipts"}]}`)
	if _, err := hs.h.Serve(teamCtx("t"), req); err != nil {
		t.Fatal(err)
	}
	got := hs.next.last(t)
	if got.Result.RAG != "used" || strings.Contains(string(got.Body), "ector_store_ids") {
		t.Errorf("next got %s, RAG %q; want retrieval and the field removed", got.Body, got.Result.RAG)
	}
}
