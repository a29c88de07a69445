package azure

import (
	"llmproxy/router"
)

// stream folds Azure's prompt-annotation chunk into the next chunk.
//
// With content filtering on, an Azure stream opens with a chunk that has
// "choices": [], empty id/object/model and only prompt_filter_results
// ("Azure OpenAI content filtering > Streaming > Annotations"). OpenAI never
// sends such a chunk before the content, and client code that reads
// choices[0] breaks on it, so it is held back and its prompt_filter_results
// member is spliced into the next chunk, byte for byte. It has no usage, so
// it is never the UsageOnly chunk. If the stream ends before another chunk,
// the annotation is dropped with it.
type stream struct {
	inner router.Stream
	c     *Client
	held  []byte // prompt_filter_results waiting for the next chunk
}

func (s *stream) Next() (*router.Chunk, error) {
	for {
		ch, err := s.inner.Next()
		if err != nil {
			return nil, err
		}
		if pf := promptAnnotation(ch); pf != nil {
			s.held = pf
			continue
		}
		if s.held != nil {
			if router.TopField(ch.Data, "prompt_filter_results") == nil {
				ch.Data = router.SetField(ch.Data, "prompt_filter_results", s.held)
			}
			s.held = nil
		}
		return ch, nil
	}
}

func (s *stream) Close() error { return s.inner.Close() }

// promptAnnotation returns the prompt_filter_results of a metadata-only
// chunk (no choices, no usage), or nil for any other chunk.
func promptAnnotation(ch *router.Chunk) []byte {
	if ch.Usage != nil || ch.Whole {
		return nil
	}
	pf := router.TopField(ch.Data, "prompt_filter_results")
	if len(pf) == 0 || pf[0] != '[' || !emptyArray(router.TopField(ch.Data, "choices")) {
		return nil
	}
	return pf
}

// emptyArray reports whether raw is absent, null or [] with any spacing.
func emptyArray(raw []byte) bool {
	if len(raw) == 0 || string(raw) == "null" {
		return true
	}
	if raw[0] != '[' {
		return false
	}
	for _, b := range raw[1 : len(raw)-1] {
		switch b {
		case ' ', '\t', '\r', '\n':
		default:
			return false
		}
	}
	return true
}
