// Package telemetry is llmproxy's tracing: OpenTelemetry spans for the
// stages of a request, named and attributed after the OpenTelemetry GenAI
// semantic conventions.
//
// It sits beside the request path rather than in it. cmd/proxy builds the
// SDK (exporter, sampler, resource from the OTEL_* variables and the
// telemetry: config section) and starts one server span per HTTP request;
// every other span is a child of the span in its context:
//
//   - the router's upstream attempts, through Attempts (a router.Tracer):
//     one client span per call, named "{gen_ai.operation.name}
//     {gen_ai.request.model}";
//   - a stage's own work, through Start: budget admission and settlement,
//     memory load and save, the embedding cache and batcher;
//   - Redis and PostgreSQL calls through their libraries' hooks (redisotel,
//     otelpgx, behind ChildOnly), and river jobs through otelriver.
//
// A new stage (RAG retrieve and rerank, an ingestion job) adds its span
// with one line, and attributes that cost nothing when it is off:
//
//	ctx, sp := telemetry.Start(ctx, "rag.retrieve")
//	defer func() { sp.End(err) }() // err: the function's named result
//	sp.SetInt("llmproxy.rag.results", len(hits))
//
// There is no package-level tracer: a span's tracer is its parent's (the
// TracerProvider of the span in ctx). With tracing off, or for a request
// the sampler dropped, there is no recording span in the context and Start
// returns ctx and a zero Span without allocating: instrumented code costs
// a context lookup.
//
// Spans never hold prompt or completion text unless the operator opts in
// with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true (the GenAI
// conventions' switch; Attempts.CaptureContent), and never a key: request
// bodies reach a span only through that opt-in, and headers never do.
//
// # Semantic conventions version
//
// Attribute names are those of semantic conventions v1.41.0 (SchemaURL),
// the last release of the core conventions that carries the gen_ai.*
// attributes: they moved to their own repository
// (open-telemetry/semantic-conventions-genai), which has made no release
// yet, and its maintainers ask instrumentations to keep using the core
// constants until it does.
package telemetry
