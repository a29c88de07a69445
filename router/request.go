package router

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// ChatRequest is one /v1/chat/completions call as it travels through the
// middleware chain. Body is the client's JSON as received: the proxy reads
// the few fields it routes on and forwards everything else untouched.
type ChatRequest struct {
	// Model is the alias the client asked for.
	Model string
	// Body is the client's JSON object. Middlewares that change the
	// conversation replace it (with SetField); nobody edits it in place.
	Body []byte
	// Stream is the body's "stream" flag.
	Stream bool
	// IncludeUsage is stream_options.include_usage.
	IncludeUsage bool
	// MaxTokens is max_completion_tokens, else max_tokens; 0 when absent.
	// The budget guard lowers it when it clamps (see CompletionCap), so
	// adapters that translate the request send the clamped cap.
	MaxTokens int
	// N is the number of choices asked for ("n"), 1 when absent.
	N int
	// CompletionCap, when positive, is the completion cap per choice the
	// budget guard imposed and could not write into the body because the
	// client sent no cap field: an adapter writes it in the spelling its
	// upstream accepts (the guard rewrites a field the client sent itself).
	// Zero leaves the body's cap, or its absence, as the client sent it.
	CompletionCap int
	// PromptTokens is the prompt's estimated token count, set by the first
	// stage that counts it (the budget guard) so that the router does not
	// tokenize the body again; 0 means not counted. A middleware that
	// changes the messages after it is set must reset it and
	// PromptTokensExact.
	PromptTokens int
	// PromptTokensExact, when set, means PromptTokens is an upper bound
	// (the guard's cheap one: a token is at least a byte) and returns the
	// tokenizer's count, computing it on the first call. The router calls
	// it only when a decision depends on the difference: a context window,
	// a deployment's TPM room, or the cost strategy's ordering.
	PromptTokensExact func() int
	// Target is the deployment of the current attempt: the router's
	// instruction to the provider it calls (Result.Target reports it).
	Target Target
	// Timeouts bound the current attempt, set by the router for the
	// provider.
	Timeouts Timeouts
	// TimeoutCap, when positive, lowers every timeout of the request (the
	// x-llmproxy-timeout header); it never raises one.
	TimeoutCap time.Duration
	// DryRun asks the chain to decide without acting (POST
	// /v1/route/explain): the budget computes its decision without
	// reserving, the router plans without calling an upstream, and each
	// stage reports into Result (Budget, Candidates, Notes). The stream
	// returned is empty.
	DryRun bool
	// Result is where the stages report what they learned, for the caller
	// that attached it (see Result); nil when the caller reads nothing.
	// Stages fill it; they never report by changing the request's other
	// fields. Copies of the request share it.
	Result *Result
	// Conversation is the x-llmproxy-conversation header: the stored
	// conversation (memory) the request continues, "new", or "".
	Conversation string
	// VectorStoreIDs is the x-llmproxy-vector-store-ids header: the
	// vector stores (names or vs_ ids, comma-separated) RAG retrieves
	// from for this request, or "".
	VectorStoreIDs string
}

// MaxChoices is the largest "n" accepted, OpenAI's limit.
const MaxChoices = 128

// ParseChatRequest reads the routing fields of a chat-completions body. The
// errors are *Error of KindInvalidRequest naming the bad parameter.
func ParseChatRequest(body []byte) (*ChatRequest, error) {
	if !json.Valid(body) {
		return nil, &Error{Kind: KindInvalidRequest, Message: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"}
	}
	fields, ok := topLevel(body)
	if !ok {
		return nil, &Error{Kind: KindInvalidRequest, Message: "The request body must be a JSON object."}
	}
	if e := keyError(fields, chatParams[:]); e != nil {
		// A duplicate or a case variant would let the routed model or the
		// counted messages differ from what the upstream acts on (keys.go).
		return nil, e
	}
	req := &ChatRequest{Body: body, N: 1}
	var hasMessages bool
	for _, f := range fields {
		v := body[f.start:f.end]
		switch f.key {
		case "model":
			if plainString(v) { // the common case, without reflection
				req.Model = string(v[1 : len(v)-1])
			} else if json.Unmarshal(v, &req.Model) != nil {
				return nil, invalidParam("model", "Invalid type for 'model': expected a string.")
			}
		case "stream":
			switch string(v) {
			case "true", "false":
				req.Stream = v[0] == 't'
				continue
			}
			if string(v) != "null" && json.Unmarshal(v, &req.Stream) != nil {
				return nil, invalidParam("stream", "Invalid type for 'stream': expected a boolean.")
			}
		case "stream_options":
			var so struct {
				IncludeUsage bool `json:"include_usage"`
			}
			if string(v) != "null" && json.Unmarshal(v, &so) != nil {
				return nil, invalidParam("stream_options", "Invalid type for 'stream_options': expected an object.")
			}
			req.IncludeUsage = so.IncludeUsage
		case "max_tokens", "max_completion_tokens":
			if string(v) == "null" {
				continue
			}
			n, err := strconv.Atoi(string(v))
			if err != nil || n < 0 {
				return nil, invalidParam(f.key, "Invalid '"+f.key+"': expected a non-negative integer.")
			}
			if f.key == "max_completion_tokens" || req.MaxTokens == 0 {
				req.MaxTokens = n
			}
		case "n":
			if string(v) == "null" {
				continue
			}
			// OpenAI's bounds: every choice is billed, so n multiplies the
			// completion a budget must reserve.
			n, err := strconv.Atoi(string(v))
			if err != nil || n < 1 || n > MaxChoices {
				return nil, invalidParam("n", "Invalid 'n': expected an integer from 1 to "+strconv.Itoa(MaxChoices)+".")
			}
			req.N = n
		case "messages":
			hasMessages = len(v) > 0 && v[0] == '['
			if !hasMessages {
				return nil, invalidParam("messages", "Invalid type for 'messages': expected an array.")
			}
		}
	}
	if req.Model == "" {
		return nil, invalidParam("model", "you must provide a model parameter")
	}
	if !hasMessages {
		return nil, invalidParam("messages", "Missing required parameter: 'messages'.")
	}
	if !req.Stream && req.IncludeUsage {
		req.IncludeUsage = false
	}
	return req, nil
}

// plainString reports a JSON string value (already validated) without
// escapes, whose bytes between the quotes are its text.
func plainString(v []byte) bool {
	return len(v) >= 2 && v[0] == '"' && bytes.IndexByte(v, '\\') < 0
}

func invalidParam(param, msg string) *Error {
	return &Error{Kind: KindInvalidRequest, Message: msg, Param: param}
}

// UpstreamBody is the body to send to an OpenAI-compatible upstream: the
// client's JSON with "model" set to model. For streams it also asks the
// upstream for its usage chunk, so budgets and metrics see real counts even
// when the client did not ask (the chunk is then dropped on the way back).
func (r *ChatRequest) UpstreamBody(model string) []byte {
	fields, ok := topLevel(r.Body)
	if !ok {
		return r.Body
	}
	var buf [2][]byte
	keys, values := []string{"model", "stream_options"}, buf[:1]
	values[0] = appendJSONString(make([]byte, 0, len(model)+2), model)
	if r.Stream && !r.IncludeUsage {
		// Merge into the client's stream_options (for example
		// include_obfuscation) instead of replacing them.
		so := []byte(`{"include_usage":true}`)
		for _, f := range fields {
			if old := r.Body[f.start:f.end]; f.key == "stream_options" && old[0] == '{' {
				so = SetField(old, "include_usage", []byte("true"))
				break
			}
		}
		values = append(values, so)
	}
	return setFields(r.Body, fields, keys[:len(values)], values)
}

// Messages decodes the body's messages for adapters and middlewares that
// need them (they are not on the OpenAI pass-through path).
func (r *ChatRequest) Messages() ([]Message, error) {
	fields, _ := topLevel(r.Body)
	for _, f := range fields {
		if f.key == "messages" {
			var ms []Message
			if err := json.Unmarshal(r.Body[f.start:f.end], &ms); err != nil {
				return nil, invalidParam("messages", "Invalid 'messages': "+err.Error())
			}
			return ms, nil
		}
	}
	return nil, nil
}

// Field returns the raw JSON value of a top-level member, or nil.
func (r *ChatRequest) Field(key string) []byte {
	fields, _ := topLevel(r.Body)
	for _, f := range fields {
		if f.key == key {
			return r.Body[f.start:f.end]
		}
	}
	return nil
}

// Message is one chat message. Content stays raw because it is either a
// string or an array of parts.
type Message struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content,omitempty"`
	Name       string          `json:"name,omitempty"`
	ToolCalls  json.RawMessage `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

// Text returns the message's text: the string content, or its text parts
// joined by newlines.
func (m Message) Text() string {
	if len(m.Content) == 0 || string(m.Content) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(m.Content, &parts) != nil {
		return ""
	}
	out := ""
	for _, p := range parts {
		if p.Type == "text" {
			if out != "" {
				out += "\n"
			}
			out += p.Text
		}
	}
	return out
}
