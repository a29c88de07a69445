package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// ev is an expected event; the table compares strings for readable failures.
type ev struct{ event, data, id string }

var cases = []struct {
	name string
	in   string
	want []ev
	err  error // error after the events
}{
	{name: "empty", in: "", err: io.EOF},
	{name: "one event", in: "data: hello\n\n", want: []ev{{data: "hello"}}, err: io.EOF},
	{name: "openai chunks", in: "data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n",
		want: []ev{{data: `{"a":1}`}, {data: `{"a":2}`}, {data: "[DONE]"}}, err: io.EOF},
	{name: "multi-line data", in: "data: a\ndata: b\ndata:\ndata: c\n\n", want: []ev{{data: "a\nb\n\nc"}}, err: io.EOF},
	{name: "crlf", in: "data: a\r\ndata: b\r\n\r\n", want: []ev{{data: "a\nb"}}, err: io.EOF},
	{name: "bare cr", in: "data: a\rdata: b\r\rdata: c\r\r", want: []ev{{data: "a\nb"}, {data: "c"}}, err: io.EOF},
	{name: "mixed endings", in: "data: a\r\n\ndata: b\n\r", want: []ev{{data: "a"}, {data: "b"}}, err: io.EOF},
	{name: "comments ignored", in: ": ping\n\n: ping\ndata: x\n: mid\n\n", want: []ev{{data: "x"}}, err: io.EOF},
	{name: "event and id", in: "event: delta\nid: 7\ndata: x\n\ndata: y\n\n",
		want: []ev{{event: "delta", id: "7", data: "x"}, {id: "7", data: "y"}}, err: io.EOF},
	{name: "id reset", in: "id: 1\ndata: x\n\nid\ndata: y\n\n", want: []ev{{id: "1", data: "x"}, {data: "y"}}, err: io.EOF},
	{name: "id with nul ignored", in: "id: 1\ndata: x\n\nid: a\x00b\ndata: y\n\n", want: []ev{{id: "1", data: "x"}, {id: "1", data: "y"}}, err: io.EOF},
	{name: "no space after colon", in: "data:x\n\n", want: []ev{{data: "x"}}, err: io.EOF},
	{name: "only one space stripped", in: "data:  x\n\n", want: []ev{{data: " x"}}, err: io.EOF},
	{name: "field without colon", in: "data\n\n", want: []ev{{data: ""}}, err: io.EOF},
	{name: "event without data dropped", in: "event: x\n\ndata: y\n\n", want: []ev{{data: "y"}}, err: io.EOF},
	{name: "unknown fields and retry", in: "retry: 10\nfoo: bar\ndata: x\n\n", want: []ev{{data: "x"}}, err: io.EOF},
	{name: "bom", in: "\xEF\xBB\xBFdata: x\n\n", want: []ev{{data: "x"}}, err: io.EOF},
	{name: "cut mid event", in: "data: x\n\ndata: y\n", want: []ev{{data: "x"}}, err: io.ErrUnexpectedEOF},
	{name: "cut mid line", in: "data: x\n\ndata: {\"a\"", want: []ev{{data: "x"}}, err: io.ErrUnexpectedEOF},
	{name: "trailing comment is clean", in: "data: x\n\n: bye", want: []ev{{data: "x"}}, err: io.EOF},
	{name: "too large", in: "data: " + strings.Repeat("x", 100) + "\n\n", err: ErrEventTooLarge},
	{name: "too large across lines", in: strings.Repeat("data: xxxxxxxxxx\n", 10) + "\n", err: ErrEventTooLarge},
	{name: "line too long", in: ": " + strings.Repeat("x", 64+lineSlack) + "\n", err: ErrEventTooLarge},
}

// testMax is the event bound the table runs with.
const testMax = 64

func decodeAll(t *testing.T, r *Reader) ([]ev, error) {
	t.Helper()
	var got []ev
	for i := 0; ; i++ {
		e, err := r.Next()
		if err != nil {
			return got, err
		}
		got = append(got, ev{event: e.Event, data: string(e.Data), id: e.ID})
		if i > 1000 {
			t.Fatal("runaway decode")
		}
	}
}

func TestReader(t *testing.T) {
	// Each input is also fed one byte at a time, which splits every CRLF
	// across reads, and through a reader that returns data with its error.
	readers := map[string]func(string) io.Reader{
		"whole":    func(s string) io.Reader { return strings.NewReader(s) },
		"bytewise": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"dataerr":  func(s string) io.Reader { return iotest.DataErrReader(strings.NewReader(s)) },
	}
	for _, tc := range cases {
		for rname, mk := range readers {
			t.Run(tc.name+"/"+rname, func(t *testing.T) {
				got, err := decodeAll(t, NewReaderSize(mk(tc.in), testMax))
				if !equal(got, tc.want) {
					t.Errorf("events = %q; want %q", got, tc.want)
				}
				if !errors.Is(err, tc.err) {
					t.Errorf("err = %v; want %v", err, tc.err)
				}
			})
		}
	}
}

func equal(a, b []ev) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStickyError(t *testing.T) {
	r := NewReader(strings.NewReader("data: x\n"))
	for i := 0; i < 3; i++ {
		if _, err := r.Next(); err != io.ErrUnexpectedEOF {
			t.Fatalf("Next #%d err = %v; want io.ErrUnexpectedEOF", i, err)
		}
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(strings.NewReader("data: x\n\ndata: y"), iotest.ErrReader(boom)))
	got, err := decodeAll(t, r)
	if len(got) != 1 || !errors.Is(err, boom) {
		t.Fatalf("got %q, %v; want one event then boom", got, err)
	}
}

// TestBareCRNotHeldBack proves an event ending in "\r\r" is dispatched
// without waiting for more input that might be a '\n'.
func TestBareCRNotHeldBack(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	r := NewReader(pr)
	done := make(chan error, 1)
	go func() {
		_, err := pw.Write([]byte("data: x\r\r"))
		done <- err
	}()
	e, err := r.Next()
	if err != nil || string(e.Data) != "x" {
		t.Fatalf("Next = %q, %v; want x", e.Data, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDataReused(t *testing.T) {
	r := NewReader(strings.NewReader("data: aaaa\n\ndata: bbbb\n\n"))
	e1, _ := r.Next()
	first := e1.Data
	e2, _ := r.Next()
	if string(e2.Data) != "bbbb" || !bytes.Equal(first, e2.Data) {
		t.Fatalf("expected the buffer to be reused: first=%q second=%q", first, e2.Data)
	}
}

func TestAllocs(t *testing.T) {
	in := strings.Repeat("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n", 200)
	sr := strings.NewReader(in)
	r := NewReader(sr)
	r.Next() // warm the buffers
	n := testing.AllocsPerRun(100, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("allocs per event = %v; want 0", n)
	}
}

func BenchmarkReader(b *testing.B) {
	in := []byte(strings.Repeat("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello\"}}]}\n\n", 1000))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(in))
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}
