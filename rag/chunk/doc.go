// Package chunk cuts document text into overlapping windows of tokens for
// ingestion (issue 11): parse → chunk → embed → insert. A chunk is what one
// embedding input and one search result hold.
//
// Tokens are cl100k_base's, the encoding of OpenAI's embedding models
// (text-embedding-3-*, ada-002), so a chunk's Tokens is what an OpenAI
// embedding request is billed for it; other vendors' counts differ a
// little. The package is a leaf: it imports only the tokenizer.
package chunk
