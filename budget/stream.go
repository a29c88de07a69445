package budget

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strconv"
	"sync"

	"llmproxy/router"
)

// guardedStream counts the reply as it passes, cuts it when the
// reservation is used up, and settles the reservation in Close.
//
// Aborts: on a client disconnect or an upstream error the output read so
// far is what gets charged; without an upstream usage report the
// tokenizer counts the prompt and the output and the usage is marked
// estimated. A chunk that would take the output past the reservation is
// withheld and not charged (at most one per request, which the upstream
// may still bill), so a team's recorded spend never exceeds its budget.
type guardedStream struct {
	g      *Guard
	ctx    context.Context
	inner  router.Stream
	req    *router.ChatRequest
	alias  string
	led    Ledger
	res    Reservation
	price  Price
	prompt *promptCount
	limit  int64 // completion tokens granted, all choices together
	n      int   // choices asked (n)
	// team and teamLimit name the team budget the settlement adds to
	// (teamLimit zero: none).
	team      string
	teamLimit Amount
	enforce   bool // cut at limit (the request is charged to a budget)
	// budgetCut: the limit is the budget's, not the client's, so a cut
	// ends with a budget error after the finish chunk.
	budgetCut bool

	// counted is the output so far: the sum of the chunks' bounds (see
	// scan) until exact is set, then the tokenizer's count.
	counted int64
	exact   bool
	// buf holds the output text not yet counted as raw JSON string
	// contents, for the tokenizer: when enforcement switches to exact
	// counting, or at settle time when the upstream reported no usage.
	// Until then it is a tail of at most about flushAt bytes; the text
	// before it is counted in flushed (streamcount.go). In exact mode it
	// holds only the current chunk. It comes from the guard's pool.
	buf     *[]byte
	flushed int64
	spare   []byte // buf after Close, when the pooled one went back
	usage   *router.Usage
	head    chunkHead
	cut     bool
	pending []*router.Chunk
	endErr  error
	once    sync.Once
}

// chunkHead is what a cut stream's finish chunk repeats of the stream's.
type chunkHead struct {
	ID      string
	Created int64
	Model   string
}

// Next implements router.Stream.
func (s *guardedStream) Next() (*router.Chunk, error) {
	if len(s.pending) > 0 {
		c := s.pending[0]
		s.pending = s.pending[1:]
		return c, nil
	}
	if s.endErr != nil {
		return nil, s.endErr
	}
	c, err := s.inner.Next()
	if err != nil {
		return nil, err
	}
	if c.Usage != nil {
		u := *c.Usage
		s.usage = &u
	}
	if c.UsageOnly {
		return c, nil
	}
	if c.Whole {
		// A whole reply is never cut, so the count is only the fallback
		// for a reply without usage: skip the tokenizer when it has one.
		if s.usage == nil {
			*s.buf = (*s.buf)[:0]
			s.scan(c.Data, "message")
			s.counted, s.exact = int64(s.tokens(*s.buf)), true
			*s.buf = (*s.buf)[:0]
		}
		return c, nil
	}
	mark := len(*s.buf)
	t := int64(s.scan(c.Data, "delta"))
	if s.exact {
		if t > 0 {
			t = int64(s.tokens((*s.buf)[mark:]))
		}
		*s.buf = (*s.buf)[:0]
	}
	if s.enforce && t > 0 && s.counted+t > s.limit {
		if !s.exact {
			// The bound would cross the cap: from here on count exactly,
			// so the cut lands within one chunk of the exact limit.
			b := *s.buf
			s.counted, s.exact = s.flushed+int64(s.tokens(b[:mark])), true
			t = int64(s.tokens(b[mark:]))
			*s.buf = b[:0]
		}
		if s.counted+t > s.limit {
			return s.cutStream()
		}
	}
	s.counted += t
	if !s.exact && len(*s.buf) >= flushAt {
		s.flush()
	}
	return c, nil
}

// cutStream ends the reply well-formed: a finish chunk with
// finish_reason "length", the estimated usage (dropped by the HTTP layer
// unless the client asked for it), then a budget error or EOF. Closing the
// inner stream cancels the upstream.
func (s *guardedStream) cutStream() (*router.Chunk, error) {
	s.cut = true
	_ = s.inner.Close()
	h := s.head
	if h.ID == "" {
		h.ID = "chatcmpl-llmproxy"
	}
	if h.Model == "" {
		h.Model = s.req.Result.Target.Model
	}
	prefix := `{"id":` + strconv.Quote(h.ID) + `,"object":"chat.completion.chunk","created":` + strconv.FormatInt(h.Created, 10) +
		`,"model":` + strconv.Quote(h.Model)
	// Every choice ends: with n > 1 the grant is shared by all of them.
	fin := []byte(prefix + `,"choices":[`)
	for i := range max(s.n, 1) {
		if i > 0 {
			fin = append(fin, ',')
		}
		fin = append(fin, `{"index":`+strconv.Itoa(i)+`,"delta":{},"logprobs":null,"finish_reason":"length"}`...)
	}
	fin = append(fin, "]}"...)
	u := s.estimated()
	ub, _ := json.Marshal(u)
	s.pending = []*router.Chunk{{Data: []byte(prefix + `,"choices":[],"usage":` + string(ub) + `}`), Usage: &u, UsageOnly: true, Model: h.Model}}
	s.endErr = io.EOF
	if s.budgetCut {
		s.endErr = &router.Error{Kind: router.KindBudgetExceeded, Code: "insufficient_quota",
			Message: "budget exhausted: the reply was cut at " + strconv.FormatInt(s.limit, 10) + " completion tokens, all that the team's budget had left"}
	}
	return &router.Chunk{Data: fin, Model: h.Model}, nil
}

// estimated is the tokenizer's usage of what was read: the exact prompt
// and output counts, counted now if enforcement did not need them.
func (s *guardedStream) estimated() router.Usage {
	if !s.exact {
		s.counted, s.exact = s.flushed+int64(s.tokens(*s.buf)), true
		*s.buf = (*s.buf)[:0]
	}
	p := s.prompt.exact()
	return router.Usage{PromptTokens: p, CompletionTokens: int(s.counted),
		TotalTokens: p + int(s.counted), Estimated: true}
}

// Close implements router.Stream: it closes the upstream and settles the
// reservation once.
func (s *guardedStream) Close() error {
	err := s.inner.Close()
	s.once.Do(s.settleNow)
	return err
}

func (s *guardedStream) settleNow() {
	var u router.Usage
	if s.usage != nil && !s.cut {
		u = *s.usage
		u.Clamp() // the adapters clamp already; a negative count must never refund a budget
	} else {
		u = s.estimated()
	}
	s.g.release(s.buf)
	s.buf = &s.spare // a Next after Close must not touch the pooled buffer
	// Bill what was served: a fallback answers at its own alias's price,
	// as a downgrade does (s.alias is then already the target).
	res := s.req.Result
	s.g.settleUsage(s.ctx, settlement{led: s.led, res: s.res, alias: res.ServedAlias(s.alias), target: res.Target, price: s.price, usage: u,
		result: res, team: s.team, teamLimit: s.teamLimit})
}

// scan adds up the bound of one chunk's output text: the byte lengths of
// the string literals of choices[].<field> (delta or message) content,
// refusal, reasoning_content and tool-call name and arguments, each an
// upper bound on its tokens (see litBytes). It appends their raw contents
// to buf for the tokenizer and notes the stream's head from the first
// chunk that has an id. It does not allocate.
func (s *guardedStream) scan(data []byte, field string) int {
	m, ok := objectMembers(data)
	if !ok {
		return 0
	}
	n, head := 0, false
	for {
		k, v, ok := m.next()
		if !ok {
			break
		}
		switch {
		case router.KeyIs(k, "choices"):
			e, ok := arrayElems(v)
			if !ok {
				continue
			}
			for ch, ok := e.next(); ok; ch, ok = e.next() {
				cm, ok := objectMembers(ch)
				if !ok {
					continue
				}
				for {
					k, v, ok := cm.next()
					if !ok {
						break
					}
					if router.KeyIs(k, field) {
						n += s.textBound(v)
					}
				}
			}
		case s.head.ID == "" && router.KeyIs(k, "id") && len(v) > 2 && isString(v):
			head = true
		}
	}
	if head {
		s.readHead(data)
	}
	return n
}

// readHead notes the id, created and model of the chunk, once per stream.
func (s *guardedStream) readHead(data []byte) {
	m, _ := objectMembers(data)
	for {
		k, v, ok := m.next()
		if !ok {
			return
		}
		switch {
		case router.KeyIs(k, "id"):
			s.head.ID, _ = strValue(v)
		case router.KeyIs(k, "model"):
			s.head.Model, _ = strValue(v)
		case router.KeyIs(k, "created"):
			s.head.Created, _ = strconv.ParseInt(string(v), 10, 64)
		}
	}
}

// textBound is scan's work on one delta or message object.
func (s *guardedStream) textBound(v []byte) int {
	m, ok := objectMembers(v)
	if !ok {
		return 0
	}
	n := 0
	for {
		k, v, ok := m.next()
		if !ok {
			break
		}
		switch {
		case router.KeyIs(k, "content"), router.KeyIs(k, "refusal"), router.KeyIs(k, "reasoning_content"):
			n += s.take(v)
		case router.KeyIs(k, "tool_calls"):
			eachToolCall(v, nil, func(lit []byte) { n += s.take(lit) })
		}
	}
	return n
}

// take appends a string literal's raw contents to buf and returns its
// bound; other values (null) cost nothing.
func (s *guardedStream) take(v []byte) int {
	if !isString(v) || len(v) == 2 {
		return 0
	}
	*s.buf = append(*s.buf, v[1:len(v)-1]...)
	return litBytes(v)
}

// tokens counts raw JSON string contents (pieces of literals, which
// concatenate into valid string contents) with the alias's tokenizer.
func (s *guardedStream) tokens(raw []byte) int {
	if len(raw) == 0 {
		return 0
	}
	cd := s.g.counter.codec(s.alias)
	if bytes.IndexByte(raw, '\\') < 0 {
		return countBytesWith(cd, raw)
	}
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	if !router.ValidJSON(q) {
		return litBytes(raw) // not reached for valid chunks; the bound is safe
	}
	return countBytesWith(cd, unquoteTo(q[:0], raw))
}
