package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"llmproxy/router"
)

// CaptureContentEnv is the GenAI conventions' opt-in for recording prompts
// and completions in spans ("true" turns it on).
const CaptureContentEnv = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

// FirstChunkEvent is the event an attempt's span gets when the upstream's
// first chunk arrives; it carries gen_ai.response.time_to_first_chunk.
const FirstChunkEvent = "gen_ai.first_chunk"

// Attributes of llmproxy's own, beside the GenAI ones.
const (
	// AttrProvider is the configured provider name of an attempt.
	AttrProvider = "llmproxy.provider"
	// AttrAlias is the model alias an attempt serves.
	AttrAlias = "llmproxy.model_alias"
	// AttrConversation is the stored conversation a request continues
	// (memory): the GenAI conventions' gen_ai.conversation.id.
	AttrConversation = string(semconv.GenAIConversationIDKey)
)

// ProviderName is gen_ai.provider.name for a provider type of the config
// (providers[].type): the conventions' well-known value, or "llmproxy.<type>"
// for one they do not name (the offline demo).
func ProviderName(typ string) string {
	switch typ {
	case "openai":
		return semconv.GenAIProviderNameOpenAI.Value.AsString()
	case "anthropic":
		return semconv.GenAIProviderNameAnthropic.Value.AsString()
	case "azure":
		return semconv.GenAIProviderNameAzureAIOpenAI.Value.AsString()
	case "gemini":
		return semconv.GenAIProviderNameGCPGemini.Value.AsString()
	}
	return "llmproxy." + typ
}

// Attempts is the router.Tracer that records each upstream attempt as a
// GenAI client span: a child of the span in the attempt's context, so an
// attempt of a request that is not traced costs one context lookup.
type Attempts struct {
	// Providers maps a configured provider name to its
	// gen_ai.provider.name (see ProviderName).
	Providers map[string]string
	// CaptureContent records gen_ai.input.messages and
	// gen_ai.output.messages: prompts and completions. Off unless the
	// operator opts in (CaptureContentEnv).
	CaptureContent bool
}

var _ router.Tracer = (*Attempts)(nil)

// StartAttempt implements router.Tracer.
func (a *Attempts) StartAttempt(ctx context.Context, at router.Attempt) (context.Context, router.AttemptSpan) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, nil
	}
	prov, ok := a.Providers[at.Target.Provider]
	if !ok {
		prov = "llmproxy." + at.Target.Provider
	}
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs,
		semconv.GenAIOperationNameKey.String(at.Operation),
		semconv.GenAIProviderNameKey.String(prov),
		semconv.GenAIRequestModelKey.String(at.Target.Model),
		attribute.String(AttrProvider, at.Target.Provider),
		attribute.String(AttrAlias, at.Alias))
	if at.Operation == "chat" {
		attrs = append(attrs, semconv.GenAIRequestStreamKey.Bool(at.Stream))
	}
	if at.MaxTokens > 0 {
		attrs = append(attrs, semconv.GenAIRequestMaxTokensKey.Int(at.MaxTokens))
	}
	if a.CaptureContent && at.Operation == "chat" {
		attrs = append(attrs, semconv.GenAIInputMessagesKey.String(inputMessages(at.Body)))
	}
	ctx, sp := tracer(parent).Start(ctx, at.Operation+" "+at.Target.Model,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx, &attemptSpan{s: sp, start: time.Now(), capture: a.CaptureContent, chat: at.Operation == "chat"}
}

// attemptSpan gathers the response attributes from the chunks and sets
// them when the attempt ends.
type attemptSpan struct {
	s       trace.Span
	start   time.Time
	chunks  int
	capture bool
	chat    bool // a chat attempt (embeddings have no output tokens)
	id      string
	model   string
	// finish holds each choice's finish reason, by choice index.
	finish []string
	// out is each choice's text, by choice index (content capture only).
	out []bytes.Buffer
}

// chunkProbe is the part of a chunk (or a whole chat.completion) the span
// reads.
type chunkProbe struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Index        int     `json:"index"`
		FinishReason *string `json:"finish_reason"`
		Delta        struct {
			Content *string `json:"content"`
		} `json:"delta"`
		Message struct {
			Content *string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
}

// maxChoices bounds the choices a span keeps track of (OpenAI's "n" limit).
const maxChoices = router.MaxChoices

// Chunk implements router.AttemptSpan.
func (a *attemptSpan) Chunk(c *router.Chunk) {
	if a.chunks == 0 {
		ttfc := semconv.GenAIResponseTimeToFirstChunk(time.Since(a.start).Seconds())
		a.s.AddEvent(FirstChunkEvent, trace.WithAttributes(ttfc))
		a.s.SetAttributes(ttfc)
	}
	a.chunks++
	if c.Model != "" {
		a.model = c.Model
	}
	// Most chunks of a stream are a delta with "finish_reason":null: only
	// the first (id, model), the last (finish reason) and, when content is
	// captured, all of them are worth decoding.
	if a.id != "" && !c.Whole && !a.capture && !finishes(c.Data) {
		return
	}
	var p chunkProbe
	if json.Unmarshal(c.Data, &p) != nil {
		return
	}
	if a.id == "" {
		a.id = p.ID
	}
	if a.model == "" {
		a.model = p.Model
	}
	for _, ch := range p.Choices {
		if ch.Index < 0 || ch.Index >= maxChoices {
			continue
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			a.finish = grow(a.finish, ch.Index)
			a.finish[ch.Index] = *ch.FinishReason
		}
		if !a.capture {
			continue
		}
		text := ch.Delta.Content
		if c.Whole {
			text = ch.Message.Content
		}
		if text != nil {
			a.out = grow(a.out, ch.Index)
			a.out[ch.Index].WriteString(*text)
		}
	}
}

// finishes reports whether a chunk may carry a finish reason: some
// "finish_reason" member that is not null. One scan, as it runs on every
// chunk of a traced stream.
func finishes(data []byte) bool {
	key := []byte(`"finish_reason"`)
	for {
		i := bytes.Index(data, key)
		if i < 0 {
			return false
		}
		data = bytes.TrimLeft(data[i+len(key):], " \t\r\n:")
		if !bytes.HasPrefix(data, []byte("null")) {
			return true
		}
	}
}

func grow[T any](s []T, i int) []T {
	for len(s) <= i {
		var zero T
		s = append(s, zero)
	}
	return s
}

// End implements router.AttemptSpan.
func (a *attemptSpan) End(usage *router.Usage, err error) {
	attrs := make([]attribute.KeyValue, 0, 8)
	if a.id != "" {
		attrs = append(attrs, semconv.GenAIResponseIDKey.String(a.id))
	}
	if a.model != "" {
		attrs = append(attrs, semconv.GenAIResponseModelKey.String(a.model))
	}
	if reasons := nonEmpty(a.finish); len(reasons) > 0 {
		attrs = append(attrs, semconv.GenAIResponseFinishReasonsKey.StringSlice(reasons))
	}
	if usage != nil {
		attrs = append(attrs, semconv.GenAIUsageInputTokensKey.Int(usage.PromptTokens))
		if a.chat {
			attrs = append(attrs, semconv.GenAIUsageOutputTokensKey.Int(usage.CompletionTokens))
		}
		if usage.CachedTokens > 0 {
			attrs = append(attrs, semconv.GenAIUsageCacheReadInputTokensKey.Int(usage.CachedTokens))
		}
		if usage.ReasoningTokens > 0 {
			attrs = append(attrs, semconv.GenAIUsageReasoningOutputTokensKey.Int(usage.ReasoningTokens))
		}
	}
	if a.capture && len(a.out) > 0 {
		attrs = append(attrs, semconv.GenAIOutputMessagesKey.String(outputMessages(a.out, a.finish)))
	}
	a.s.SetAttributes(attrs...)
	if err != nil {
		setError(a.s, err)
	}
	a.s.End()
}

func nonEmpty(s []string) []string {
	out := make([]string, 0, len(s))
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
