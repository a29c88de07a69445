package rag

import (
	"encoding/json"
	"fmt"

	"llmproxy/router"
)

const (
	// perReference is the template's cost of one reference beyond its
	// filename and content (the "[n]" line, blank lines).
	perReference = 8
	// minReference is the least room worth a cut reference: below it the
	// references end instead.
	minReference = 64
)

// fit numbers the hits, best first, while their filenames and contents
// fit maxTokens; the first one that does not fit is cut to the room left
// when that is at least minReference tokens, and the list ends there. It
// returns the references and their token count.
func (r *RAG) fit(model string, hits []Hit, maxTokens int) ([]Reference, int) {
	var out []Reference
	used := 0
	for _, h := range hits {
		head := r.o.Count(model, h.Filename) + perReference
		n := head + r.o.Count(model, h.Content)
		if used+n > maxTokens {
			room := maxTokens - used - head
			if room < minReference {
				break
			}
			h.Content = r.cut(model, h.Content, room)
			n = head + r.o.Count(model, h.Content)
		}
		used += n
		out = append(out, Reference{Index: len(out) + 1, VectorStoreID: h.StoreID, FileID: h.FileID, Filename: h.Filename,
			ChunkIndex: h.ChunkIndex, Score: h.Score, Content: h.Content})
		if used >= maxTokens-minReference {
			break
		}
	}
	return out, used
}

// cut returns the longest prefix of s, ending at a rune boundary, whose
// token count is at most limit.
func (r *RAG) cut(model, s string, limit int) string {
	b := runeStarts(s)
	// The most runes that fit: s[:b[k]] for the largest k.
	k := lastFit(len(b)-1, func(k int) bool { return r.o.Count(model, s[:b[k]]) <= limit })
	return s[:b[k]]
}

// tail returns the longest suffix of s, starting at a rune boundary,
// whose token count is at most limit.
func (r *RAG) tail(model, s string, limit int) string {
	b := runeStarts(s)
	n := len(b) - 1
	k := lastFit(n, func(k int) bool { return r.o.Count(model, s[b[n-k]:]) <= limit })
	return s[b[n-k]:]
}

// runeStarts are the byte offsets of s's runes, and len(s).
func runeStarts(s string) []int {
	b := make([]int, 0, len(s)+1)
	for i := range s {
		b = append(b, i)
	}
	return append(b, len(s))
}

// lastFit is the largest k in [0, n] with fits(k), for fits true at 0 and
// monotone (true up to some k, false after): a binary search.
func lastFit(n int, fits func(k int) bool) int {
	lo, hi := 0, n
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if fits(mid) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// insertSystem returns body with a system message of text placed after
// the last system or developer message (with memory, those follow the
// stored history), else first. The other messages keep their bytes.
func insertSystem(body []byte, msgs []router.Message, text string) ([]byte, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(router.TopField(body, "messages"), &raw); err != nil || len(raw) != len(msgs) {
		return nil, fmt.Errorf("rag: messages: %v", err)
	}
	at := 0
	for i, m := range msgs {
		if m.Role == "system" || m.Role == "developer" {
			at = i + 1
		}
	}
	sys, _ := json.Marshal(struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}{"system", text})
	all := make([]json.RawMessage, 0, len(raw)+1)
	all = append(append(append(all, raw[:at]...), sys), raw[at:]...)
	b, err := json.Marshal(all)
	if err != nil {
		return nil, fmt.Errorf("rag: encode messages: %w", err)
	}
	return router.SetField(body, "messages", b), nil
}

// sources are the references as the reply lists them.
func sources(refs []Reference) []router.Source {
	out := make([]router.Source, len(refs))
	for i, f := range refs {
		out[i] = router.Source{Index: f.Index, VectorStoreID: f.VectorStoreID, FileID: f.FileID, Filename: f.Filename,
			ChunkIndex: f.ChunkIndex, Score: f.Score}
	}
	return out
}
