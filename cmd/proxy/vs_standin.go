package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"llmproxy/vectorstore"
)

// TODO(vstore): replace with rag/parse and rag/chunk once they land #11.

func parseText(_ context.Context, name string, data []byte) (string, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".txt", ".md":
	case ".pdf":
		return "", &vectorstore.FileError{Code: vectorstore.CodeInvalidFile, Message: "the PDF could not be read"}
	default:
		return "", &vectorstore.FileError{Code: vectorstore.CodeUnsupportedFile, Message: "unsupported file type"}
	}
	if !utf8.Valid(data) {
		return "", &vectorstore.FileError{Code: vectorstore.CodeInvalidFile, Message: "not UTF-8 text"}
	}
	return string(data), nil
}

func chunkText(text string, c vectorstore.Chunking) []vectorstore.TextChunk {
	words := strings.Fields(text)
	size := max(1, c.MaxTokens*3/4)
	step := max(1, size-c.OverlapTokens*3/4)
	var out []vectorstore.TextChunk
	for lo := 0; lo < len(words); lo += step {
		hi := min(lo+size, len(words))
		out = append(out, vectorstore.TextChunk{Index: len(out), Text: strings.Join(words[lo:hi], " "), Tokens: hi - lo})
		if hi == len(words) {
			break
		}
	}
	return out
}

func checkChunking(c vectorstore.Chunking) error {
	if c.MaxTokens < 100 || c.MaxTokens > 4096 || c.OverlapTokens < 0 || c.OverlapTokens > c.MaxTokens/2 {
		return errors.New("max_chunk_size_tokens is 100 to 4096 and chunk_overlap_tokens at most half of it")
	}
	return nil
}
