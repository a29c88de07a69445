package upstream

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// TestReadAll checks the sized read against io.ReadAll for declared
// lengths that are right, short, long, absent and over the limit, with
// readers that return one byte at a time and data with EOF.
func TestReadAll(t *testing.T) {
	const limit = 1 << 10
	for _, n := range []int{0, 1, 700, limit, limit + 1, 3 * limit} {
		data := bytes.Repeat([]byte("x"), n)
		want, _ := io.ReadAll(io.LimitReader(bytes.NewReader(data), limit+1))
		for _, declared := range []int64{-1, 0, int64(n), int64(n) / 2, int64(n) + 5, limit + 10} {
			for name, r := range map[string]io.Reader{
				"plain":   bytes.NewReader(data),
				"onebyte": iotest.OneByteReader(bytes.NewReader(data)),
				"dataeof": iotest.DataErrReader(bytes.NewReader(data)),
			} {
				got, err := readAll(r, declared, limit)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("n=%d declared=%d %s: got %d bytes, err %v; want %d", n, declared, name, len(got), err, len(want))
				}
			}
		}
	}
	if _, err := readAll(iotest.ErrReader(io.ErrUnexpectedEOF), 10, limit); err != io.ErrUnexpectedEOF {
		t.Fatalf("err = %v, want the reader's", err)
	}
}
