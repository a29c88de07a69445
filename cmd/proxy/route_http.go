package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"llmproxy/router"
)

// headerTimeout lets a request lower its timeouts: a Go duration ("30s")
// or seconds ("12.5"). It never raises them.
const headerTimeout = "x-llmproxy-timeout"

// timeoutHeader parses x-llmproxy-timeout; "" is no cap.
func timeoutHeader(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		secs, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil {
			d = -1
		} else {
			d = time.Duration(secs * float64(time.Second))
		}
	}
	if d <= 0 {
		return 0, &router.Error{Kind: router.KindInvalidRequest, Param: headerTimeout,
			Message: "Invalid " + headerTimeout + " header: want a positive duration such as \"30s\" or a number of seconds."}
	}
	return d, nil
}

// masterKey is the SHA-256 of server.master_key; set is false when none
// is configured and the /admin routes answer 404.
type masterKey struct {
	hash [32]byte
	set  bool
}

func newMasterKey(s Secret) masterKey {
	if s.Value() == "" {
		return masterKey{}
	}
	return masterKey{hash: sha256.Sum256([]byte(s.Value())), set: true}
}

// check returns nil when auth carries the master key.
func (m masterKey) check(auth []byte) error {
	if !m.set {
		return fiber.ErrNotFound
	}
	if len(auth) > len(bearer) && bytes.EqualFold(auth[:len(bearer)], bearer) {
		h := sha256.Sum256(bytes.TrimSpace(auth[len(bearer):]))
		if subtle.ConstantTimeCompare(h[:], m.hash[:]) == 1 {
			return nil
		}
	}
	return &router.Error{Kind: router.KindUnauthorized, Code: "invalid_api_key",
		Message: "This endpoint needs the master key (Authorization: Bearer <server.master_key>)."}
}

// adminDeployments is GET /admin/deployments: every deployment's breaker,
// cooldown, in-flight count and EWMA latency on this replica.
func (s *Server) adminDeployments(c *fiber.Ctx) error {
	if err := s.master.check(c.Request().Header.Peek(fiber.HeaderAuthorization)); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"object": "list", "data": s.router.Deployments()})
}

// explainHandler is POST /v1/route/explain: a chat-completions body in,
// what the chain would do with it out. It runs the same chain as
// /v1/chat/completions as a dry run (router.ChatRequest.DryRun): the
// budget guard reports its decision (downgrade, clamp, refusal) without
// reserving or counting the request against a rate limit, the router
// reports its ordered candidates without calling an upstream, and every
// stage may add a note. It changes no state, except that a request asking
// for retrieval has its query embedded (and charged) for real.
func (s *Server) explainHandler(c *fiber.Ctx) error {
	k := c.Locals(localsKey).(*teamKey)
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	req, err := router.ParseChatRequest(body)
	if err != nil {
		return err
	}
	if err := s.checkModel(k, req.Model, modelTypeChat); err != nil {
		return err
	}
	req.VectorStoreIDs = c.Get(headerVectorStores)
	ctx, cancel := s.requestContext(c, k)
	defer cancel()
	asked := req.Model // read before the chain: the caller does not read the request back
	res := &router.Result{}
	req.DryRun, req.Result = true, res
	st, err := s.chat.Serve(ctx, req)
	if err != nil {
		return err
	}
	st.Close()
	out := explainBody{Object: "route.explain", Model: asked, Stream: req.Stream, Candidates: res.Candidates,
		RoutedModel: res.Alias, DowngradedFrom: res.DowngradedFrom, Budget: res.Budget, Stages: res.Notes}
	if res.RAG != "" {
		out.Retrieval = &explainRetrieval{Status: res.RAG, Sources: res.Sources}
		if out.Retrieval.Sources == nil {
			out.Retrieval.Sources = []router.Source{}
		}
	}
	if out.Stages == nil {
		out.Stages = []router.Note{}
	}
	if b := res.Budget; b != nil && b.Error != nil {
		e := errorBody(b.Error)
		out.WouldFail = &e.Error
	}
	return c.JSON(out)
}

// explainBody is POST /v1/route/explain's answer.
type explainBody struct {
	Object string `json:"object"`
	// Model is the alias asked for.
	Model  string `json:"model"`
	Stream bool   `json:"stream"`
	// Candidates are the deployments of RoutedModel (and its fallbacks)
	// in the order the router would try them.
	Candidates []router.Explained `json:"candidates"`
	// RoutedModel is the alias the router would plan: Model, or the
	// downgrade target.
	RoutedModel string `json:"routed_model"`
	// DowngradedFrom is Model when the budget's ladder moved the request.
	DowngradedFrom string `json:"downgraded_from,omitempty"`
	// Budget is the guard's decision; null when no budget or rate limit
	// applies.
	Budget *router.BudgetDecision `json:"budget"`
	// WouldFail is the error the budget would answer the request with
	// (OpenAI's error object); absent when it would admit it.
	WouldFail *apiErrorBody `json:"would_fail,omitempty"`
	// Stages are the notes each stage left, outermost first.
	Stages []router.Note `json:"stages"`
	// Retrieval is what RAG would put in the prompt, when the request
	// asks for it. Its search is real: the query's embedding is an
	// upstream call, charged to the team (ledger route "rag"); the rerank
	// is not run.
	Retrieval *explainRetrieval `json:"retrieval,omitempty"`
}

// explainRetrieval is RAG's part of an explain answer.
type explainRetrieval struct {
	// Status is what retrieval did: used, no_results or skipped.
	Status string `json:"status"`
	// Sources are the chunks that would be cited (file, chunk, score).
	Sources []router.Source `json:"sources"`
}

// setAttemptHeaders tells an operator what a failed request went through:
// how many upstream calls the router made and the provider of the last.
// Nothing is set when no call was made (the request was refused first).
func setAttemptHeaders(c *fiber.Ctx, attempts int, provider string) {
	if attempts == 0 {
		return
	}
	c.Set("x-llmproxy-attempts", strconv.Itoa(attempts))
	if provider != "" {
		c.Set("x-llmproxy-provider", provider)
	}
}
