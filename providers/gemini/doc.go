// Package gemini is the adapter for Google's Generative Language API
// (Gemini). It sits at the far end of the request path, behind
// router.Router: translate.go and schema.go turn an OpenAI chat request into
// a generateContent body, reply.go and stream.go turn Gemini's
// GenerateContentResponse objects back into OpenAI chat.completion JSON, and
// embed.go serves /v1/embeddings with batchEmbedContents. errors.go is the
// only place that reads Google's error codes.
package gemini
