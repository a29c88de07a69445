package demo

import (
	"context"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"llmproxy/router"
)

// stream hands out one reply as chat.completion.chunk objects: the role
// delta, one delta per piece, the finish chunk and the usage-only chunk.
type stream struct {
	ctx   context.Context
	delay time.Duration
	r     *reply
	head  []byte // every chunk's bytes up to and including `"choices":[`
	next  int
}

func (s *stream) Next() (*router.Chunk, error) {
	total := len(s.r.pieces) + 3
	if s.next >= total {
		return nil, io.EOF
	}
	if err := s.wait(); err != nil {
		return nil, err
	}
	i := s.next
	s.next++
	c := &router.Chunk{Model: s.r.model}
	switch {
	case i == 0:
		c.Data = s.frame(s.r.firstDelta, "")
	case i <= len(s.r.pieces):
		c.Data = s.frame(func(b []byte) []byte { return s.r.pieceDelta(b, s.r.pieces[i-1]) }, "")
	case i == total-2:
		c.Data = s.frame(func(b []byte) []byte { return append(b, "{}"...) }, s.r.finish)
	default:
		b := append(s.head[:len(s.head):len(s.head)], `],"usage":`...)
		c.Data = append(appendUsage(b, s.r.usage), '}')
		c.Usage, c.UsageOnly = &s.r.usage, true
	}
	return c, nil
}

// wait honours ChunkDelay and the request's cancellation.
func (s *stream) wait() error {
	if s.delay <= 0 {
		if err := s.ctx.Err(); err != nil {
			return router.AsError(err)
		}
		return nil
	}
	t := time.NewTimer(s.delay)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return router.AsError(s.ctx.Err())
	case <-t.C:
		return nil
	}
}

// Close is a no-op: the demo holds no connection.
func (s *stream) Close() error { return nil }

// frame builds one single-choice chunk. The head is copied (its capacity is
// capped), so every chunk owns its bytes.
func (s *stream) frame(delta func([]byte) []byte, finish string) []byte {
	b := make([]byte, 0, len(s.head)+160)
	b = append(b, s.head...)
	b = append(b, `{"index":0,"delta":`...)
	b = delta(b)
	b = append(b, `,"logprobs":null,"finish_reason":`...)
	if finish == "" {
		b = append(b, "null"...)
	} else {
		b = appendString(b, finish)
	}
	return append(b, "}]}"...)
}

func (r *reply) chunkHead() []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"id":`...)
	b = appendString(b, r.id)
	b = append(b, `,"object":"chat.completion.chunk","created":`...)
	b = strconv.AppendInt(b, r.created, 10)
	b = append(b, `,"model":`...)
	b = appendString(b, r.model)
	b = append(b, `,"system_fingerprint":null,"choices":[`...)
	return b[:len(b):len(b)]
}

// firstDelta is the role delta; for a tool call it also carries the call's
// index, id, type and name, which SDKs need on the first tool-call delta.
func (r *reply) firstDelta(b []byte) []byte {
	if r.call == nil {
		return append(b, `{"role":"assistant","content":"","refusal":null}`...)
	}
	b = append(b, `{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":`...)
	b = appendString(b, r.call.id)
	b = append(b, `,"type":"function","function":{"name":`...)
	b = appendString(b, r.call.name)
	return append(b, `,"arguments":""}}],"refusal":null}`...)
}

func (r *reply) pieceDelta(b []byte, p string) []byte {
	if r.call == nil {
		b = append(b, `{"content":`...)
		b = appendString(b, p)
		return append(b, '}')
	}
	b = append(b, `{"tool_calls":[{"index":0,"function":{"arguments":`...)
	b = appendString(b, p)
	return append(b, `}}]}`...)
}

// completion is the whole chat.completion body of a non-streamed reply.
func (r *reply) completion() []byte {
	text := strings.Join(r.pieces, "")
	b := make([]byte, 0, 512+len(text))
	b = append(b, `{"id":`...)
	b = appendString(b, r.id)
	b = append(b, `,"object":"chat.completion","created":`...)
	b = strconv.AppendInt(b, r.created, 10)
	b = append(b, `,"model":`...)
	b = appendString(b, r.model)
	b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	if r.call == nil {
		b = appendString(b, text)
		b = append(b, `,"refusal":null,"annotations":[]}`...)
	} else {
		b = append(b, `null,"refusal":null,"annotations":[],"tool_calls":[{"id":`...)
		b = appendString(b, r.call.id)
		b = append(b, `,"type":"function","function":{"name":`...)
		b = appendString(b, r.call.name)
		b = append(b, `,"arguments":`...)
		b = appendString(b, text)
		b = append(b, `}}]}`...)
	}
	b = append(b, `,"logprobs":null,"finish_reason":`...)
	b = appendString(b, r.finish)
	b = append(b, `}],"usage":`...)
	b = appendUsage(b, r.usage)
	return append(b, `,"system_fingerprint":null}`...)
}

// appendUsage writes u with the detail objects OpenAI always sends.
func appendUsage(b []byte, u router.Usage) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(u.PromptTokens), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(u.CompletionTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(u.TotalTokens), 10)
	return append(b, `,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string literal. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does, so the output is always valid JSON.
func appendString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
