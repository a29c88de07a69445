package budget

import (
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
	g       *Guard
	ctx     context.Context
	inner   router.Stream
	req     *router.ChatRequest
	alias   string
	led     Ledger
	res     Reservation
	price   Price
	prompt  int
	limit   int64 // completion tokens granted
	enforce bool  // cut at limit (the request is charged to a budget)
	// budgetCut: the limit is the budget's, not the client's, so a cut
	// ends with a budget error after the finish chunk.
	budgetCut bool

	counted int64
	usage   *router.Usage
	head    chunkHead
	cut     bool
	pending []*router.Chunk
	endErr  error
	once    sync.Once
}

type chunkHead struct {
	ID      string `json:"id"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
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
			s.counted = int64(s.wholeTokens(c.Data))
		}
		return c, nil
	}
	t := int64(s.deltaTokens(c.Data))
	if s.enforce && t > 0 && s.counted+t > s.limit {
		return s.cutStream()
	}
	s.counted += t
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
		h.Model = s.req.Target.Model
	}
	prefix := `{"id":` + strconv.Quote(h.ID) + `,"object":"chat.completion.chunk","created":` + strconv.FormatInt(h.Created, 10) +
		`,"model":` + strconv.Quote(h.Model)
	fin := &router.Chunk{Data: []byte(prefix + `,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}]}`), Model: h.Model}
	u := s.estimated()
	ub, _ := json.Marshal(u)
	s.pending = []*router.Chunk{{Data: []byte(prefix + `,"choices":[],"usage":` + string(ub) + `}`), Usage: &u, UsageOnly: true, Model: h.Model}}
	s.endErr = io.EOF
	if s.budgetCut {
		s.endErr = &router.Error{Kind: router.KindBudgetExceeded, Code: "insufficient_quota",
			Message: "budget exhausted: the reply was cut at " + strconv.FormatInt(s.limit, 10) + " completion tokens, all that the team's budget had left"}
	}
	return fin, nil
}

func (s *guardedStream) estimated() router.Usage {
	return router.Usage{PromptTokens: s.prompt, CompletionTokens: int(s.counted),
		TotalTokens: s.prompt + int(s.counted), Estimated: true}
}

// Close implements router.Stream: it closes the upstream and settles the
// reservation once.
func (s *guardedStream) Close() error {
	err := s.inner.Close()
	s.once.Do(s.settleNow)
	return err
}

func (s *guardedStream) settleNow() {
	u := s.estimated()
	if s.usage != nil && !s.cut {
		u = *s.usage
	}
	price := s.price
	if s.g.prices != nil {
		if p, ok := s.g.prices.For(s.alias, s.req.Target.Provider, s.req.Target.Model); ok {
			price = p
		}
	}
	cost := price.Cost(u)
	s.g.settle(s.ctx, s.led, s.res, Amount{Tokens: int64(u.PromptTokens + u.CompletionTokens), NanoUSD: ToNano(cost)})
	if m := s.req.Meta; m != nil {
		m.Usage, m.CostUSD, m.Estimated, m.Settled = u, cost, u.Estimated, true
	}
}

// deltaShape is the part of a chat.completion.chunk that costs output.
type deltaShape struct {
	chunkHead
	Choices []struct {
		Delta   choiceText `json:"delta"`
		Message choiceText `json:"message"`
	} `json:"choices"`
}

type choiceText struct {
	Content   string `json:"content"`
	Refusal   string `json:"refusal"`
	Reasoning string `json:"reasoning_content"`
	ToolCalls []struct {
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
}

func (s *guardedStream) deltaTokens(data []byte) int {
	var d deltaShape
	if json.Unmarshal(data, &d) != nil {
		return 0
	}
	if s.head.ID == "" {
		s.head = d.chunkHead
	}
	n := 0
	for _, c := range d.Choices {
		n += s.textTokens(c.Delta)
	}
	return n
}

func (s *guardedStream) wholeTokens(data []byte) int {
	var d deltaShape
	if json.Unmarshal(data, &d) != nil {
		return 0
	}
	n := 0
	for _, c := range d.Choices {
		n += s.textTokens(c.Message)
	}
	return n
}

func (s *guardedStream) textTokens(t choiceText) int {
	cd := s.g.counter.codec(s.alias)
	n := countWith(cd, t.Content) + countWith(cd, t.Refusal) + countWith(cd, t.Reasoning)
	for _, tc := range t.ToolCalls {
		n += countWith(cd, tc.Function.Name) + countWith(cd, tc.Function.Arguments)
	}
	return n
}
