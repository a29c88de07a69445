package embed

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestBatchSpans: two traced requests that share an upstream call each get
// a wait span; the batch's span is a child of the first caller's and links
// the other's, with the batch size.
func TestBatchSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	be := &fakeBackend{}
	b, _ := newBatcher(t, be, BatchOptions{MaxInputs: 2, MaxWait: time.Hour})
	ctx1, req1 := tp.Tracer("test").Start(context.Background(), "request 1")
	ctx2, req2 := tp.Tracer("test").Start(context.Background(), "request 2")
	first := serveAsync(ctx1, b, "one")
	// The second request fills the batch once the first is queued.
	if !eventuallyQueued(b, 1) {
		t.Fatal("the first request was never queued")
	}
	second := serveAsync(ctx2, b, "two")
	for _, ch := range []<-chan served{first, second} {
		if r := <-ch; r.err != nil {
			t.Fatal(r.err)
		}
	}
	req1.End()
	req2.End()
	spans := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = append(spans[s.Name()], s)
	}
	if len(spans["embed.batch.wait"]) != 2 || len(spans["embed.batch"]) != 1 {
		t.Fatalf("spans = %v; want two embed.batch.wait and one embed.batch", spans)
	}
	batch := spans["embed.batch"][0]
	waits := map[string]string{} // wait span id → its request's
	for _, w := range spans["embed.batch.wait"] {
		waits[w.SpanContext().SpanID().String()] = w.Parent().SpanID().String()
	}
	if waits[batch.Parent().SpanID().String()] != req1.SpanContext().SpanID().String() {
		t.Errorf("embed.batch's parent is not request 1's wait span")
	}
	if l := batch.Links(); len(l) != 1 || waits[l[0].SpanContext.SpanID().String()] != req2.SpanContext().SpanID().String() {
		t.Errorf("embed.batch links = %v; want request 2's wait span", l)
	}
	got := map[string]string{}
	for _, kv := range batch.Attributes() {
		got[string(kv.Key)] = kv.Value.Emit()
	}
	if got["llmproxy.embed.batch_inputs"] != "2" || got["llmproxy.embed.batch_calls"] != "2" {
		t.Errorf("embed.batch attributes = %v; want 2 inputs from 2 calls", got)
	}
}

// eventuallyQueued waits until b holds n queued calls.
func eventuallyQueued(b *batcher, n int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		queued := 0
		for _, p := range b.queues {
			queued += len(p.calls)
		}
		b.mu.Unlock()
		if queued >= n {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}
