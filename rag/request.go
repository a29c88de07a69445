package rag

import (
	"encoding/json"
	"slices"
	"strings"

	"llmproxy/router"
)

// maxRefLen bounds one store reference (a name or a vs_ id).
const maxRefLen = 256

// storeRefs returns the stores the request names (the
// x-llmproxy-vector-store-ids header, or the body field vector_store_ids,
// which it removes: it is ours, not the upstream's) and whether it named
// any (an empty list counts: it turns the alias's RAG off).
func storeRefs(req *router.ChatRequest) (refs []string, asked bool, err error) {
	var hdr []string
	hdrSet := strings.TrimSpace(req.VectorStoreIDs) != ""
	if hdrSet {
		for _, p := range strings.Split(req.VectorStoreIDs, ",") {
			if p = strings.TrimSpace(p); p != "" {
				hdr = append(hdr, p)
			}
		}
	}
	refs = hdr
	if v := router.TopField(req.Body, "vector_store_ids"); v != nil {
		req.Body = router.DeleteField(req.Body, "vector_store_ids")
		if string(v) != "null" {
			var body []string
			if json.Unmarshal(v, &body) != nil {
				return nil, false, invalid("Invalid type for 'vector_store_ids': expected an array of strings.")
			}
			if hdrSet && !slices.Equal(body, hdr) {
				return nil, false, invalid("The vector_store_ids in the body differ from the x-llmproxy-vector-store-ids header.")
			}
			refs, hdrSet = body, true
		}
	}
	if len(refs) > MaxStores {
		return nil, false, invalid("Too many vector stores: at most 16 per request.")
	}
	out := refs[:0:0]
	for _, r := range refs {
		if r == "" || len(r) > maxRefLen || strings.ContainsFunc(r, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			return nil, false, invalid("Invalid vector store id '" + router.Clip(r) + "'.")
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, hdrSet, nil
}

func invalid(msg string) *router.Error {
	return &router.Error{Kind: router.KindInvalidRequest, Param: "vector_store_ids", Message: msg}
}

// query is the text of the last user message (the text parts of
// multimodal content), "" when there is none.
func query(msgs []router.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			return msgs[i].Text()
		}
	}
	return ""
}
