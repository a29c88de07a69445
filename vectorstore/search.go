package vectorstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"llmproxy/router"
	"llmproxy/telemetry"
)

// SearchRequest is a hybrid search over team's stores.
type SearchRequest struct {
	StoreIDs []string
	Query    string
	// MaxResults is at most 50; 0 is 10.
	MaxResults int
	Filters    *Filter
	// ScoreThreshold drops results scoring below it.
	ScoreThreshold float64
}

// Result is one chunk a search found.
type Result struct {
	StoreID, FileID, Filename string
	ChunkIndex                int
	// Score is the reciprocal-rank fusion of the vector and full-text
	// ranks, normalised to [0, 1] (Fuse).
	Score      float64
	Content    string
	Attributes map[string]any
}

const (
	defaultMaxResults = 10
	maxMaxResults     = 50
	maxTerms          = 32
	maxQueryBytes     = 8 << 10
)

// Search embeds the query once per distinct embedding model of the
// stores (through the embedding service, charged to team; the ledger
// route is ctx's, "search" when ctx sets none), runs the vector and
// full-text searches and returns the fused results, best first. A store
// id the team does not own is an error wrapping ErrNotFound.
func (s *Service) Search(ctx context.Context, team string, req SearchRequest) (out []Result, err error) {
	ctx, sp := telemetry.Start(ctx, "vectorstore.search")
	defer func() {
		sp.SetInt("llmproxy.vector_store.results", len(out))
		sp.End(err)
	}()
	start := s.o.Now()
	defer func() { s.m.search.Observe(s.o.Now().Sub(start).Seconds()) }()
	if req.MaxResults <= 0 {
		req.MaxResults = defaultMaxResults
	}
	req.MaxResults = min(req.MaxResults, maxMaxResults)
	ids := dedupe(req.StoreIDs)
	if len(ids) == 0 || strings.TrimSpace(req.Query) == "" {
		return nil, nil
	}
	stores, err := s.o.Storage.FindStores(ctx, team, ids)
	if err != nil {
		return nil, err
	}
	byModel := map[string][]string{}
	var models []string
	for _, id := range ids {
		i := slices.IndexFunc(stores, func(st Store) bool { return st.ID == id })
		if i < 0 {
			return nil, fmt.Errorf("vector store %q: %w", router.Clip(id), ErrNotFound)
		}
		m := stores[i].EmbeddingModel
		if _, ok := byModel[m]; !ok {
			models = append(models, m)
		}
		byModel[m] = append(byModel[m], id)
	}
	who := router.Identity{Team: team}
	if id, ok := router.IdentityFrom(ctx); ok && id.Team == team {
		who = id
	}
	if router.LedgerRoute(ctx) == "" {
		ctx = router.WithLedgerRoute(ctx, "search")
	}
	k := min(max(4*req.MaxResults, 40), 200)
	var vec []Hit
	for _, m := range models {
		vs, _, err := s.o.Embedder.Embed(ctx, who, m, []string{req.Query})
		if err != nil {
			return nil, err
		}
		if len(vs) != 1 {
			return nil, fmt.Errorf("vectorstore: embedding service returned %d vectors for 1 query", len(vs))
		}
		hits, err := s.o.Storage.VectorSearch(ctx, VectorQuery{StoreIDs: byModel[m], Vector: vs[0], Filter: req.Filters, K: k})
		if err != nil {
			return nil, fmt.Errorf("vectorstore: vector search: %w", err)
		}
		vec = append(vec, hits...)
	}
	if len(models) > 1 {
		// Similarities of different models share a scale only roughly;
		// it is the best order there is.
		slices.SortStableFunc(vec, func(a, b Hit) int { return cmp.Compare(b.Score, a.Score) })
	}
	var text []Hit
	if terms := Terms(req.Query); len(terms) > 0 {
		if text, err = s.o.Storage.TextSearch(ctx, TextQuery{StoreIDs: ids, Terms: terms, Filter: req.Filters, K: k}); err != nil {
			return nil, fmt.Errorf("vectorstore: text search: %w", err)
		}
	}
	fused := Fuse(vec, text)
	out = make([]Result, 0, min(len(fused), req.MaxResults))
	for _, h := range fused {
		if len(out) == req.MaxResults {
			break
		}
		if h.Score < req.ScoreThreshold {
			break // best first: the rest score lower
		}
		out = append(out, Result{StoreID: h.StoreID, FileID: h.FileID, Filename: h.Filename, ChunkIndex: h.ChunkIndex,
			Score: h.Score, Content: h.Content, Attributes: orEmpty(h.Attributes)})
	}
	return out, nil
}

// Terms splits a query into the full-text search's terms: lowercased
// runs of letters and digits, at least two characters, no repeats, no
// English stop words (a term in nearly every chunk adds nothing to the
// ranking and makes the search read them all), at most 32.
func Terms(q string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(q), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if len([]rune(w)) < 2 || slices.Contains(out, w) || stopWords[w] {
			continue
		}
		out = append(out, w)
		if len(out) == maxTerms {
			break
		}
	}
	return out
}

// stopWords are common English words left out of full-text queries.
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a about above after again against all am an and any are as at be because been
		before being below between both but by can could did do does doing down during each few for from further had
		has have having he her here hers herself him himself his how i if in into is it its itself just me more most
		my myself no nor not now of off on once only or other our ours ourselves out over own same she should so some
		such than that the their theirs them themselves then there these they this those through to too under until
		up very was we were what when where which while who whom why will with would you your yours yourself
		yourselves`) {
		m[w] = true
	}
	return m
}()

// SearchPage is OpenAI's vector_store.search_results.page.
type SearchPage struct {
	Object      string         `json:"object"`
	SearchQuery []string       `json:"search_query"`
	Data        []SearchResult `json:"data"`
	HasMore     bool           `json:"has_more"`
	NextPage    *string        `json:"next_page"`
}

// SearchResult is one result of a SearchPage.
type SearchResult struct {
	FileID     string         `json:"file_id"`
	Filename   string         `json:"filename"`
	Score      float64        `json:"score"`
	Attributes map[string]any `json:"attributes"`
	Content    []ContentPart  `json:"content"`
}

// SearchStore is POST /v1/vector_stores/{id}/search.
func (s *Service) SearchStore(ctx context.Context, team, storeID string, body []byte) (*SearchPage, error) {
	var b struct {
		Query          json.RawMessage `json:"query"`
		Filters        json.RawMessage `json:"filters"`
		MaxNumResults  *int            `json:"max_num_results"`
		RankingOptions *struct {
			Ranker         string   `json:"ranker"`
			ScoreThreshold *float64 `json:"score_threshold"`
		} `json:"ranking_options"`
		RewriteQuery bool `json:"rewrite_query"`
	}
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	queries, err := searchQueries(b.Query)
	if err != nil {
		return nil, err
	}
	req := SearchRequest{StoreIDs: []string{storeID}, Query: strings.Join(queries, "\n"), MaxResults: defaultMaxResults}
	if b.MaxNumResults != nil {
		if *b.MaxNumResults < 1 || *b.MaxNumResults > maxMaxResults {
			return nil, invalid("max_num_results", "Invalid 'max_num_results': expected an integer from 1 to 50.")
		}
		req.MaxResults = *b.MaxNumResults
	}
	if len(b.Filters) > 0 && string(bytes.TrimSpace(b.Filters)) != "null" {
		f, err := ParseFilter(b.Filters)
		if err != nil {
			return nil, invalid("filters", "Invalid 'filters': "+router.Clip(err.Error()))
		}
		req.Filters = f
	}
	if ro := b.RankingOptions; ro != nil && ro.ScoreThreshold != nil {
		if *ro.ScoreThreshold < 0 || *ro.ScoreThreshold > 1 {
			return nil, invalid("ranking_options.score_threshold", "Invalid 'ranking_options.score_threshold': expected a number from 0 to 1.")
		}
		req.ScoreThreshold = *ro.ScoreThreshold
	}
	rs, err := s.Search(ctx, team, req)
	if err != nil {
		return nil, storeErr(err, "vector store", storeID)
	}
	out := &SearchPage{Object: "vector_store.search_results.page", SearchQuery: queries, Data: make([]SearchResult, len(rs))}
	for i, r := range rs {
		out.Data[i] = SearchResult{FileID: r.FileID, Filename: r.Filename, Score: r.Score, Attributes: r.Attributes,
			Content: []ContentPart{{Type: "text", Text: r.Content}}}
	}
	return out, nil
}

// searchQueries decodes query: a string or a list of strings.
func searchQueries(raw json.RawMessage) ([]string, error) {
	bad := invalid("query", "Invalid 'query': expected a non-empty string or list of strings.")
	var one string
	var many []string
	if err := json.Unmarshal(raw, &one); err == nil {
		many = []string{one}
	} else if err := json.Unmarshal(raw, &many); err != nil {
		return nil, bad
	}
	n := 0
	for _, q := range many {
		if strings.TrimSpace(q) == "" {
			return nil, bad
		}
		n += len(q)
	}
	if len(many) == 0 {
		return nil, bad
	}
	if n > maxQueryBytes {
		return nil, invalid("query", fmt.Sprintf("Invalid 'query': at most %d bytes.", maxQueryBytes))
	}
	return many, nil
}
