package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzReader checks that no input panics, that the bound holds, and that
// the events decoded from any input survive a canonical re-encoding.
func FuzzReader(f *testing.F) {
	for _, tc := range cases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReaderSize(bytes.NewReader(in), testMax)
		var got []Event
		var err error
		for {
			var e Event
			e, err = r.Next()
			if err != nil {
				break
			}
			if len(e.Data) > testMax {
				t.Fatalf("event of %d bytes passed a %d-byte bound", len(e.Data), testMax)
			}
			got = append(got, Event{Event: e.Event, Data: bytes.Clone(e.Data), ID: e.ID})
		}
		if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrEventTooLarge) {
			t.Fatalf("unexpected error %v", err)
		}
		enc := encode(got)
		r2 := NewReaderSize(strings.NewReader(enc), testMax)
		for i, want := range got {
			e, err := r2.Next()
			if err != nil {
				t.Fatalf("re-decode event %d: %v (encoded %q)", i, err, enc)
			}
			if e.Event != want.Event || e.ID != want.ID || !bytes.Equal(e.Data, want.Data) {
				t.Fatalf("re-decode event %d = %+v; want %+v", i, e, want)
			}
		}
		if _, err := r2.Next(); err != io.EOF {
			t.Fatalf("re-decode end = %v; want io.EOF", err)
		}
	})
}

// encode writes events in canonical form: every field on its own line, the
// id always restated (it persists across events otherwise).
func encode(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		if e.Event != "" {
			b.WriteString("event: " + e.Event + "\n")
		}
		b.WriteString("id: " + e.ID + "\n")
		for _, line := range strings.Split(string(e.Data), "\n") {
			b.WriteString("data: " + line + "\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}
