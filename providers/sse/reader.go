package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// MaxEventSize is the default bound on one event's data. OpenAI chunks are a
// few hundred bytes; 4 MiB leaves room for large tool-call arguments while
// keeping a broken or hostile upstream from growing memory without limit.
const MaxEventSize = 4 << 20

// lineSlack is how much longer than the data bound a single line may be: the
// field name, the colon and a space.
const lineSlack = 1 << 10

// ErrEventTooLarge is returned when an event's data, or a single line,
// exceeds the Reader's bound. The Reader is unusable afterwards.
var ErrEventTooLarge = errors.New("sse: event too large")

// Event is one dispatched Server-Sent Event.
type Event struct {
	// Event is the "event:" field; empty means the default type, "message".
	Event string
	// Data is the event's data lines joined by "\n". It aliases the
	// Reader's buffer and is only valid until the next call to Next: copy it
	// to keep it.
	Data []byte
	// ID is the last event ID seen on the stream; per the spec it carries
	// over to later events that have no "id:" field.
	ID string
}

// Reader decodes events from an io.Reader. It is not safe for concurrent
// use.
type Reader struct {
	sc        *bufio.Scanner
	max       int
	data      []byte // data lines, each followed by '\n'
	event     string
	id        string
	crPending bool // the last line ended in '\r': skip a '\n' that follows
	first     bool // no line read yet: strip a UTF-8 BOM
	err       error
}

// NewReader returns a Reader over r that rejects events larger than
// MaxEventSize.
func NewReader(r io.Reader) *Reader { return NewReaderSize(r, MaxEventSize) }

// NewReaderSize returns a Reader over r that rejects events whose data is
// longer than maxEvent bytes. A maxEvent below 1 means MaxEventSize.
func NewReaderSize(r io.Reader, maxEvent int) *Reader {
	if maxEvent < 1 {
		maxEvent = MaxEventSize
	}
	rd := &Reader{max: maxEvent, first: true}
	rd.sc = bufio.NewScanner(r)
	// Start small: most streams never need more than a few KiB, and the
	// scanner grows the buffer only up to the bound.
	rd.sc.Buffer(make([]byte, 0, min(4096, maxEvent+lineSlack)), maxEvent+lineSlack)
	rd.sc.Split(rd.split)
	return rd
}

// Next returns the next event. It returns io.EOF when the stream ends
// between events, io.ErrUnexpectedEOF when it ends inside one (a field line
// was read but no blank line followed), ErrEventTooLarge for an oversized
// event, or the underlying reader's error. Errors are sticky. Comment lines
// and events without data are skipped, as the spec requires.
func (r *Reader) Next() (Event, error) {
	if r.err != nil {
		return Event{}, r.err
	}
	r.data = r.data[:0]
	r.event = ""
	pending := false // a field line has been read since the last dispatch
	for r.sc.Scan() {
		line := r.sc.Bytes()
		if r.first {
			r.first = false
			line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
		}
		if len(line) == 0 {
			if len(r.data) == 0 {
				// The spec drops an event with no data and resets its type.
				r.event, pending = "", false
				continue
			}
			return Event{Event: r.event, Data: r.data[:len(r.data)-1], ID: r.id}, nil
		}
		if line[0] == ':' {
			continue // comment, e.g. ": ping" keep-alives
		}
		pending = true
		name, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			name, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(name) {
		case "data":
			if len(r.data)+len(value) > r.max {
				r.err = ErrEventTooLarge
				return Event{}, r.err
			}
			r.data = append(r.data, value...)
			r.data = append(r.data, '\n')
		case "event":
			if string(value) != r.event { // reuse the string while the type repeats
				r.event = string(value)
			}
		case "id":
			if bytes.IndexByte(value, 0) < 0 && string(value) != r.id {
				r.id = string(value)
			}
		}
		// "retry" and unknown fields are ignored: we never reconnect.
	}
	switch err := r.sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		r.err = ErrEventTooLarge
	case err != nil:
		r.err = err
	case pending:
		r.err = io.ErrUnexpectedEOF
	default:
		r.err = io.EOF
	}
	return Event{}, r.err
}

// split is a bufio.SplitFunc for SSE lines, which end in "\r\n", "\n" or a
// lone "\r". A '\r' ends its line at once, so an upstream using bare CRs is
// not held back waiting to see whether a '\n' follows; the '\n' of a CRLF
// split across reads is skipped on the next call instead.
func (r *Reader) split(data []byte, atEOF bool) (advance int, token []byte, err error) {
	skip := 0
	if r.crPending && len(data) > 0 {
		r.crPending = false
		if data[0] == '\n' {
			skip = 1
		}
	}
	for i := skip; i < len(data); i++ {
		switch data[i] {
		case '\n':
			return i + 1, data[skip:i], nil
		case '\r':
			if i+1 < len(data) {
				if data[i+1] == '\n' {
					return i + 2, data[skip:i], nil
				}
				return i + 1, data[skip:i], nil
			}
			r.crPending = true
			return i + 1, data[skip:i], nil
		}
	}
	if atEOF && len(data) > skip {
		return len(data), data[skip:], nil
	}
	// Consume a skipped '\n' now: the flag is already cleared.
	return skip, nil, nil
}
