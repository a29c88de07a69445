package embed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"llmproxy/router"
)

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type served struct {
	resp *router.EmbedResponse
	err  error
}

// serveAsync runs b.serve for texts on a goroutine.
func serveAsync(ctx context.Context, b *batcher, texts ...string) <-chan served {
	ch := make(chan served, 1)
	go func() {
		resp, err := b.serve(ctx, &router.EmbedRequest{Model: "emb", Input: texts})
		ch <- served{resp, err}
	}()
	return ch
}

func TestBatchLoneRequestWaitsMaxWait(t *testing.T) {
	be := &fakeBackend{}
	b, clk := newBatcher(t, be, BatchOptions{MaxInputs: 8, MaxWait: 5 * time.Millisecond})
	got := serveAsync(context.Background(), b, "alone")
	tm := <-clk.timers
	if tm.d != 5*time.Millisecond {
		t.Fatalf("timer armed for %v; want max_wait 5ms", tm.d)
	}
	if n := be.n.Load(); n != 0 {
		t.Fatalf("upstream called %d times before max_wait ran out; want 0", n)
	}
	tm.fire()
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !slices.Equal(r.resp.Vectors[0], fakeVector("alone")) {
		t.Fatalf("vector = %v; want the upstream's", r.resp.Vectors[0])
	}
	if r.resp.Usage.PromptTokens != len("alone") {
		t.Fatalf("usage = %d; want %d", r.resp.Usage.PromptTokens, len("alone"))
	}
}

func TestBatchFullBatchGoesAtOnce(t *testing.T) {
	be := &fakeBackend{}
	b, clk := newBatcher(t, be, BatchOptions{MaxInputs: 4, MaxWait: time.Hour})
	var chans []<-chan served
	for i := range 4 {
		chans = append(chans, serveAsync(context.Background(), b, fmt.Sprint("text ", i)))
	}
	for _, ch := range chans {
		if r := <-ch; r.err != nil {
			t.Fatal(r.err)
		}
	}
	tm := <-clk.timers // the first caller armed it; the fourth sent the batch
	if !tm.stopped.Load() {
		t.Fatal("the full batch left its max_wait timer running")
	}
	if len(be.calls) != 1 || len(be.calls[0].Input) != 4 {
		t.Fatalf("upstream calls = %d (first with %d inputs); want 1 with 4", len(be.calls), len(be.calls[0].Input))
	}
}

func TestBatchSplitsBackInOrder(t *testing.T) {
	be := &fakeBackend{}
	b, clk := newBatcher(t, be, BatchOptions{MaxInputs: 100, MaxWait: time.Millisecond})
	callers := [][]string{{"a1", "a22", "a333"}, {"b1"}, {"c1", "c22"}}
	var chans []<-chan served
	for i, texts := range callers {
		chans = append(chans, serveAsync(context.Background(), b, texts...))
		waitFor(t, "caller queued", func() bool { return b.queued() == countInputs(callers[:i+1]) })
	}
	(<-clk.timers).fire()
	for i, ch := range chans {
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		want := 0
		for j, text := range callers[i] {
			if !slices.Equal(r.resp.Vectors[j], fakeVector(text)) {
				t.Errorf("caller %d vector %d is not the upstream's for %q", i, j, text)
			}
			want += len(text)
		}
		if r.resp.Usage.PromptTokens != want {
			t.Errorf("caller %d usage = %d; want its share %d", i, r.resp.Usage.PromptTokens, want)
		}
	}
	if len(be.calls) != 1 {
		t.Fatalf("upstream calls = %d; want 1", len(be.calls))
	}
}

func countInputs(cs [][]string) int {
	n := 0
	for _, c := range cs {
		n += len(c)
	}
	return n
}

func TestBatchOverflowSendsPendingFirst(t *testing.T) {
	be := &fakeBackend{}
	b, clk := newBatcher(t, be, BatchOptions{MaxInputs: 3, MaxWait: time.Hour})
	first := serveAsync(context.Background(), b, "x1", "x2")
	waitFor(t, "first queued", func() bool { return b.queued() == 2 })
	second := serveAsync(context.Background(), b, "y1", "y2") // 4 > 3: the first goes alone
	if r := <-first; r.err != nil || len(r.resp.Vectors) != 2 {
		t.Fatalf("first = %+v", r)
	}
	<-clk.timers // first's
	(<-clk.timers).fire()
	if r := <-second; r.err != nil || !slices.Equal(r.resp.Vectors[1], fakeVector("y2")) {
		t.Fatalf("second = %+v", r)
	}
	if len(be.calls) != 2 {
		t.Fatalf("upstream calls = %d; want 2", len(be.calls))
	}
}

func TestBatchPerCallerErrors(t *testing.T) {
	const ok = router.Kind(-1)
	refuse := func(_ context.Context, req *router.EmbedRequest) (*router.EmbedResponse, error) {
		if slices.ContainsFunc(req.Input, func(s string) bool { return strings.HasPrefix(s, "bad") }) {
			return nil, &router.Error{Kind: router.KindInvalidRequest, Param: "input", Message: "This model's maximum context length is 8192 tokens."}
		}
		return upstreamReply(req), nil
	}
	down := func(context.Context, *router.EmbedRequest) (*router.EmbedResponse, error) {
		return nil, &router.Error{Kind: router.KindUpstream, Message: "upstream down"}
	}
	for _, tc := range []struct {
		name    string
		fn      func(context.Context, *router.EmbedRequest) (*router.EmbedResponse, error)
		wantErr []router.Kind // per caller; ok = success
	}{
		{"invalid input fails its caller only", refuse, []router.Kind{ok, router.KindInvalidRequest, ok}},
		{"upstream error reaches every caller", down, []router.Kind{router.KindUpstream, router.KindUpstream, router.KindUpstream}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := &fakeBackend{fn: tc.fn}
			b, clk := newBatcher(t, be, BatchOptions{MaxInputs: 10, MaxWait: time.Hour})
			texts := []string{"good one", "bad one", "good two"}
			var chans []<-chan served
			for i, text := range texts {
				chans = append(chans, serveAsync(context.Background(), b, text))
				waitFor(t, "queued", func() bool { return b.queued() == i+1 })
			}
			(<-clk.timers).fire()
			var errs []*router.Error
			for i, ch := range chans {
				r := <-ch
				var re *router.Error
				errors.As(r.err, &re)
				switch {
				case tc.wantErr[i] == ok && r.err != nil:
					t.Errorf("caller %d: %v; want success", i, r.err)
				case tc.wantErr[i] == ok && !slices.Equal(r.resp.Vectors[0], fakeVector(texts[i])):
					t.Errorf("caller %d: wrong vector", i)
				case tc.wantErr[i] != ok && (re == nil || re.Kind != tc.wantErr[i]):
					t.Errorf("caller %d: err %v; want kind %s", i, r.err, tc.wantErr[i])
				}
				if re != nil {
					errs = append(errs, re)
				}
			}
			for i := 1; i < len(errs); i++ {
				if errs[i] == errs[0] {
					t.Error("callers share one *router.Error; each needs its own")
				}
			}
		})
	}
}

func TestBatchCancelsUpstreamWhenEveryCallerLeft(t *testing.T) {
	upstreamDone := make(chan error, 1)
	be := &fakeBackend{fn: func(ctx context.Context, req *router.EmbedRequest) (*router.EmbedResponse, error) {
		<-ctx.Done()
		upstreamDone <- ctx.Err()
		return nil, router.AsError(ctx.Err())
	}, seen: make(chan *router.EmbedRequest, 1)}
	b, clk := newBatcher(t, be, BatchOptions{MaxInputs: 10, MaxWait: time.Hour})
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	r1 := serveAsync(ctx1, b, "one")
	waitFor(t, "queued", func() bool { return b.queued() == 1 })
	r2 := serveAsync(ctx2, b, "two")
	waitFor(t, "queued", func() bool { return b.queued() == 2 })
	(<-clk.timers).fire()
	<-be.seen
	cancel1()
	<-r1
	select {
	case <-upstreamDone:
		t.Fatal("upstream call cancelled while a caller still waits")
	default:
	}
	cancel2()
	<-r2
	if err := <-upstreamDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("upstream ctx err = %v; want canceled", err)
	}
}

func TestBatchKeepsTeamsApart(t *testing.T) {
	be := &fakeBackend{}
	b, clk := newBatcher(t, be, BatchOptions{MaxInputs: 10, MaxWait: time.Hour})
	var wg sync.WaitGroup
	for _, team := range []string{"a", "b"} {
		ctx := router.WithIdentity(context.Background(), router.Identity{Team: team})
		ch := serveAsync(ctx, b, "same text")
		wg.Add(1)
		go func() { defer wg.Done(); <-ch }()
	}
	(<-clk.timers).fire()
	(<-clk.timers).fire()
	wg.Wait()
	if len(be.calls) != 2 {
		t.Fatalf("upstream calls = %d; want one per team", len(be.calls))
	}
}
