// Package anthropic is the adapter for Anthropic's Messages API
// (POST {base_url}/v1/messages with x-api-key and anthropic-version). It
// sits at the far end of the request path, behind router.Router: the
// client's OpenAI chat-completions JSON is translated to a Messages request,
// and the reply comes back as OpenAI JSON, so an OpenAI SDK cannot tell
// which vendor answered.
//
// # Request mapping (translate.go)
//
//   - system and developer messages, wherever they appear, become the
//     top-level "system" blocks, in order.
//   - assistant tool_calls become tool_use blocks (arguments parsed; ""
//     means {}); consecutive tool messages become one user turn of
//     tool_result blocks; consecutive turns of one role are merged, since
//     Anthropic wants them alternating.
//   - image_url parts: data URLs become base64 sources, http(s) URLs url
//     sources; "detail" is dropped. file parts with a data URL become
//     document blocks (PDF).
//   - tools become input_schema tools (no parameters: an empty object
//     schema). tool_choice auto/none/required/{function} becomes
//     auto/none/any/tool; "none" keeps the tools and sends {"type":"none"},
//     because Anthropic rejects tool_use history without tools.
//     parallel_tool_calls: false becomes disable_parallel_tool_use.
//   - max_completion_tokens, else max_tokens, becomes max_tokens; when the
//     client sent neither, Config.MaxTokens (default DefaultMaxTokens, 4096),
//     because Anthropic requires it.
//   - stop becomes stop_sequences; temperature and top_p pass through as
//     written (Anthropic's temperature range is 0–1 and it rejects more;
//     we do not rescale). user (else safety_identifier) becomes
//     metadata.user_id.
//   - response_format json_object / json_schema: when the client sent no
//     tools, the request carries one tool, "json_response", whose
//     input_schema is the client's schema ({"type":"object"} for
//     json_object), forced with tool_choice. Tool inputs are always a JSON
//     object, so this is the robust choice across Claude models (the
//     native structured-output feature is a beta on some models only). The
//     tool's input is returned as the message content and its tool_use stop
//     as finish_reason "stop". When the client also sent tools, forcing a
//     tool would stop the model calling the client's, so a system
//     instruction asks for the JSON (with the schema) instead: best effort.
//   - n > 1 and the legacy functions parameter are rejected with 400
//     (Anthropic returns one choice, and functions would need function_call
//     replies).
//   - Dropped, since Anthropic has no equivalent: frequency_penalty,
//     presence_penalty, logit_bias, logprobs, top_logprobs, seed,
//     service_tier, store, metadata (OpenAI's stored-completion tags),
//     modalities, audio, prediction, reasoning_effort, verbosity,
//     web_search_options, prompt_cache_key, stream_options (Anthropic
//     always reports usage; the router strips the usage chunk when the
//     client did not ask), and the name field of messages.
//
// # Reply mapping (translate_reply.go, decode.go)
//
// Text blocks are joined into content and tool_use blocks become
// tool_calls; thinking, redacted_thinking and server-tool blocks are
// dropped. stop_reason end_turn/stop_sequence/pause_turn → "stop",
// max_tokens/model_context_window_exceeded → "length", tool_use →
// "tool_calls", refusal → "content_filter". Usage: prompt_tokens is
// input_tokens + cache_read_input_tokens + cache_creation_input_tokens
// (Anthropic's input_tokens excludes cached input),
// prompt_tokens_details.cached_tokens is the cache reads, completion_tokens
// is output_tokens (thinking included: Anthropic has no separate reasoning
// count). The reply id is "chatcmpl-" + Anthropic's message id.
//
// A stream becomes OpenAI chunks sharing one id, created and model:
// message_start → the role chunk; text_delta → content; a tool_use block →
// a first tool-call delta with index, id, type "function", name and empty
// arguments, then one delta per input_json_delta fragment, the index
// counting tool calls rather than content blocks; message_delta → the
// finish_reason chunk; message_stop → a usage-only chunk (choices: [])
// with message_start's usage updated by message_delta's cumulative counts.
// ping resets the idle timer; an error event ends the stream as
// KindUpstream with Anthropic's message.
package anthropic
