package ledger

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeWriter is a Writer whose behaviour each test sets.
type fakeWriter struct {
	mu      sync.Mutex
	batches [][]Record
	calls   int
	write   func(ctx context.Context, call int, recs []Record) error
}

func (f *fakeWriter) WriteBatch(ctx context.Context, recs []Record) error {
	f.mu.Lock()
	f.calls++
	call := f.calls
	fn := f.write
	f.mu.Unlock()
	if fn != nil {
		if err := fn(ctx, call, recs); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.batches = append(f.batches, append([]Record(nil), recs...))
	f.mu.Unlock()
	return nil
}

func (f *fakeWriter) sizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, b := range f.batches {
		out = append(out, len(b))
	}
	return out
}

func (f *fakeWriter) total() int {
	n := 0
	for _, s := range f.sizes() {
		n += s
	}
	return n
}

func mustNew(tb testing.TB, o Options) *Ledger {
	tb.Helper()
	l, err := New(o)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = l.Close(context.Background()) })
	return l
}

func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

func rec(i int) Record {
	return Record{RequestID: "req-" + string(rune('a'+i%26)), Team: "t", PromptTokens: i}
}

func TestBatching(t *testing.T) {
	w := &fakeWriter{}
	l := mustNew(t, Options{Writer: w, BatchSize: 10, FlushEvery: time.Hour})
	for i := range 25 {
		if !l.Add(rec(i)) {
			t.Fatalf("Add(%d) = false; want true", i)
		}
	}
	if !eventually(2*time.Second, func() bool { return w.total() == 20 }) {
		t.Fatalf("full batches written = %v; want [10 10] before Close", w.sizes())
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := w.sizes(); len(got) != 3 || got[0] != 10 || got[1] != 10 || got[2] != 5 {
		t.Errorf("batch sizes = %v; want [10 10 5]", got)
	}
	w.mu.Lock()
	for i, r := range append(append(w.batches[0], w.batches[1]...), w.batches[2]...) {
		if r.PromptTokens != i {
			t.Errorf("record %d has PromptTokens %d; want order kept", i, r.PromptTokens)
		}
	}
	w.mu.Unlock()
	if st := l.Stats(); st.Written != 25 || st.Queued != 0 || st.Dropped() != 0 {
		t.Errorf("Stats = %+v; want 25 written, none queued or dropped", st)
	}
}

func TestFlushEvery(t *testing.T) {
	w := &fakeWriter{}
	l := mustNew(t, Options{Writer: w, BatchSize: 100, FlushEvery: 10 * time.Millisecond})
	for i := range 3 {
		l.Add(rec(i))
	}
	if !eventually(2*time.Second, func() bool { return w.total() == 3 }) {
		t.Errorf("written = %v; want 3 records flushed by the timer", w.sizes())
	}
}

func TestDropWhenFull(t *testing.T) {
	var logs syncBuf
	entered, release := make(chan struct{}, 1), make(chan struct{})
	w := &fakeWriter{write: func(ctx context.Context, call int, _ []Record) error {
		if call == 1 {
			entered <- struct{}{}
			<-release
		}
		return nil
	}}
	l := mustNew(t, Options{Writer: w, Capacity: 2, BatchSize: 1, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	l.Add(rec(0))
	<-entered // the writer holds record 0; the queue is empty
	if !l.Add(rec(1)) || !l.Add(rec(2)) {
		t.Fatal("Add into a queue with room = false; want true")
	}
	for i := 3; i < 6; i++ {
		if l.Add(rec(i)) {
			t.Fatalf("Add(%d) into a full queue = true; want false", i)
		}
	}
	if st := l.Stats(); st.DroppedFull != 3 || st.Queued != 3 {
		t.Errorf("Stats = %+v; want 3 dropped_full, 3 queued", st)
	}
	if n := strings.Count(logs.String(), `"level":"WARN"`); n != 1 {
		t.Errorf("%d drop warnings logged; want exactly 1 (rate-limited):\n%s", n, logs.String())
	}
	close(release)
	if err := l.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := w.total(); got != 3 {
		t.Errorf("written = %d; want the 3 queued records", got)
	}
}

func TestRetry(t *testing.T) {
	tests := []struct {
		name       string
		failures   int
		wantCalls  int
		wantWrite  uint64
		wantFailed uint64
	}{
		{"succeeds on the third try", 2, 3, 4, 0},
		{"fails every try", 99, 3, 0, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &fakeWriter{write: func(_ context.Context, call int, _ []Record) error {
				if call <= tc.failures {
					return errors.New("database is down")
				}
				return nil
			}}
			l := mustNew(t, Options{Writer: w, BatchSize: 4, Retries: 2, RetryBackoff: time.Millisecond,
				Log: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))})
			for i := range 4 {
				l.Add(rec(i))
			}
			if err := l.Close(context.Background()); err != nil {
				t.Fatalf("Close: %v", err)
			}
			st := l.Stats()
			if w.calls != tc.wantCalls || st.Written != tc.wantWrite || st.DroppedFailed != tc.wantFailed {
				t.Errorf("calls, written, dropped_failed = %d, %d, %d; want %d, %d, %d",
					w.calls, st.Written, st.DroppedFailed, tc.wantCalls, tc.wantWrite, tc.wantFailed)
			}
		})
	}
}

func TestWriterPanicIsRecovered(t *testing.T) {
	w := &fakeWriter{write: func(_ context.Context, call int, _ []Record) error {
		if call == 1 {
			panic("store bug")
		}
		return nil
	}}
	var logs syncBuf
	l := mustNew(t, Options{Writer: w, BatchSize: 1, RetryBackoff: time.Millisecond, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	l.Add(rec(0))
	if err := l.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := w.total(); got != 1 {
		t.Errorf("written = %d; want the record written on the retry after the panic", got)
	}
	if !strings.Contains(logs.String(), "panic in ledger writer") {
		t.Errorf("the panic was not logged:\n%s", logs.String())
	}
}

func TestCloseTimeoutDropsAndCounts(t *testing.T) {
	w := &fakeWriter{write: func(ctx context.Context, _ int, _ []Record) error {
		<-ctx.Done() // a database that never answers
		return ctx.Err()
	}}
	l := mustNew(t, Options{Writer: w, BatchSize: 2, FlushEvery: time.Hour, Log: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))})
	for i := range 5 {
		l.Add(rec(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := l.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v; want a deadline error", err)
	}
	if st := l.Stats(); st.DroppedClosed != 5 || st.Queued != 0 {
		t.Errorf("Stats = %+v; want 5 dropped_closed, none queued", st)
	}
	if err2 := l.Close(context.Background()); err2 != err {
		t.Errorf("second Close = %v; want the first result %v", err2, err)
	}
}

func TestAddAfterClose(t *testing.T) {
	w := &fakeWriter{}
	l := mustNew(t, Options{Writer: w})
	if err := l.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if l.Add(rec(0)) {
		t.Error("Add after Close = true; want false")
	}
	if st := l.Stats(); st.DroppedClosed != 1 {
		t.Errorf("dropped_closed = %d; want 1", st.DroppedClosed)
	}
}

func TestConcurrentAddLosesNothing(t *testing.T) {
	w := &fakeWriter{}
	l := mustNew(t, Options{Writer: w, Capacity: 100000, BatchSize: 64, FlushEvery: time.Millisecond})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				l.Add(rec(g*1000 + i))
			}
		}()
	}
	wg.Wait()
	if err := l.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := w.total(); got != 8000 {
		t.Errorf("written = %d; want 8000", got)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{{}, {Writer: &fakeWriter{}, Capacity: -1}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) = nil error; want one", o)
		}
	}
}

func BenchmarkAdd(b *testing.B) {
	l := mustNew(b, Options{Writer: discard{}, Capacity: 1 << 16})
	r := Record{Time: time.Now(), RequestID: "req_0123456789ab-1", Route: "chat", Team: "search", KeyID: "key_deadbeef",
		Alias: "gpt-4o", Provider: "openai", Model: "gpt-4o-2024-08-06", PromptTokens: 120, CompletionTokens: 300, CostUSD: 0.0033}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l.Add(r)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Add(r)
			}
		})
	})
}

// discard is a Writer that accepts everything at once.
type discard struct{}

func (discard) WriteBatch(context.Context, []Record) error { return nil }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
