package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"

	"llmproxy/router"
)

// modelInfo is one entry of /v1/models, in OpenAI's "model" shape. The
// extra fields are ignored by the SDKs and tell people what they get.
type modelInfo struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// Type is "chat", "embedding" or "rerank".
	Type string `json:"llmproxy_type,omitempty"`
	// Description marks the offline demo as not a real model.
	Description string `json:"description,omitempty"`
}

type modelList struct {
	Object string       `json:"object"`
	Data   []*modelInfo `json:"data"`
}

func (s *Server) listModels(c *fiber.Ctx) error {
	k := c.Locals(localsKey).(*teamKey)
	out := modelList{Object: "list", Data: make([]*modelInfo, 0, len(s.models))}
	for i := range s.models {
		if k.allows(s.models[i].ID) {
			out.Data = append(out.Data, &s.models[i])
		}
	}
	return c.JSON(out)
}

// Model types (models[].type).
const (
	modelTypeChat      = "chat"
	modelTypeEmbedding = "embedding"
	modelTypeRerank    = "rerank"
)

// checkModel is the 404 for an alias that is unknown or not allowed to k,
// and the 400 for one of the wrong type for the route: an embedding alias
// cannot serve chat, nor a chat alias embeddings.
func (s *Server) checkModel(k *teamKey, alias, want string) error {
	if !k.allows(alias) || !s.router.Has(alias) {
		return router.ModelNotFound(alias)
	}
	m := s.byModel[alias]
	if m == nil {
		return nil
	}
	typ := m.Type
	if typ == "" {
		typ = modelTypeChat
	}
	if typ == want {
		return nil
	}
	article := "a " + typ
	if typ == modelTypeEmbedding {
		article = "an " + typ
	}
	route := map[string]string{modelTypeChat: "/v1/chat/completions", modelTypeEmbedding: "/v1/embeddings", modelTypeRerank: "/v1/rerank"}[want]
	return &router.Error{Kind: router.KindInvalidRequest, Param: "model", Code: "model_type_mismatch",
		Message: "The model `" + alias + "` is " + article + " model and cannot be used with " + route + "."}
}

func (s *Server) getModel(c *fiber.Ctx) error {
	k := c.Locals(localsKey).(*teamKey)
	id := c.Params("id")
	m, ok := s.byModel[id]
	if !ok || !k.allows(id) {
		return router.ModelNotFound(id)
	}
	return c.JSON(m)
}

// embedBody is the part of an embeddings request the proxy reads.
type embedBody struct {
	Model          *string         `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     int             `json:"dimensions"`
}

func (s *Server) embeddingsHandler(c *fiber.Ctx) error {
	k, rec, body, err := s.wholeBody(c, routeEmbed)
	if err != nil {
		return err
	}
	req, err := parseEmbedRequest(body)
	if err != nil {
		return err
	}
	if err := s.checkModel(k, req.Model, modelTypeEmbedding); err != nil {
		return err
	}
	var resp *router.EmbedResponse
	err = s.serveWhole(c, k, rec, req.Model, func(ctx context.Context, res *router.Result) (err error) {
		req.Result = res
		resp, err = s.embed.ServeEmbed(ctx, req) // the chain: usage, budget, rate limits, router
		return err
	})
	if err != nil {
		return err
	}
	rec.usage = resp.Usage
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(resp.Data)
}

// wholeBody starts a whole-reply request (embeddings, rerank): its team
// key, its access record, and its body.
func (s *Server) wholeBody(c *fiber.Ctx, route string) (*teamKey, *reqRecord, []byte, error) {
	k := c.Locals(localsKey).(*teamKey)
	rec := &reqRecord{route: route, start: time.Now(), team: k.team, keyID: k.id}
	c.Locals(localsReq, rec)
	body, err := s.readBody(c)
	return k, rec, body, err
}

// serveWhole runs call for alias with the request's context and the
// record's Result, then sets the headers of what happened: the budget's
// and, on success, what served, or on failure what was tried.
func (s *Server) serveWhole(c *fiber.Ctx, k *teamKey, rec *reqRecord, alias string, call func(ctx context.Context, res *router.Result) error) error {
	rec.model = alias
	ctx, cancel := s.requestContext(c, k)
	defer cancel()
	err := call(ctx, &rec.result)
	rec.fill()
	setResultHeaders(c, &rec.result)
	if err != nil {
		setAttemptHeaders(c, rec.result.Attempts, rec.result.Target.Provider)
		return err
	}
	setRouteHeaders(c, &rec.result)
	return nil
}

// parseEmbedRequest validates an embeddings body the way OpenAI does.
func parseEmbedRequest(body []byte) (*router.EmbedRequest, error) {
	var b embedBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, &router.Error{Kind: router.KindInvalidRequest, Message: "We could not parse the JSON body of your request: " + err.Error()}
	}
	// encoding/json matched those fields case-insensitively: refuse a
	// body another reader could take differently (issue 16).
	if err := router.CheckKeys(body, "model", "input", "encoding_format", "dimensions", "user"); err != nil {
		return nil, err
	}
	if b.Model == nil || *b.Model == "" {
		return nil, &router.Error{Kind: router.KindInvalidRequest, Param: "model", Message: "you must provide a model parameter"}
	}
	req := &router.EmbedRequest{Model: *b.Model, Body: body, EncodingFormat: b.EncodingFormat, Dimensions: b.Dimensions}
	switch b.EncodingFormat {
	case "", "float", "base64":
	default:
		return nil, &router.Error{Kind: router.KindInvalidRequest, Param: "encoding_format", Message: "Invalid value for 'encoding_format': expected 'float' or 'base64'."}
	}
	if len(b.Input) == 0 || string(b.Input) == "null" {
		return nil, &router.Error{Kind: router.KindInvalidRequest, Param: "input", Message: "Missing required parameter: 'input'."}
	}
	var one string
	var many []string
	switch {
	case json.Unmarshal(b.Input, &one) == nil:
		req.Input = []string{one}
	case json.Unmarshal(b.Input, &many) == nil:
		if len(many) == 0 {
			return nil, &router.Error{Kind: router.KindInvalidRequest, Param: "input", Message: "'input' must not be empty."}
		}
		req.Input = many
	default:
		// Token arrays: passed through for upstreams that take them, and
		// counted by their length so that budgets see them.
		n, ok := tokenArrayLen(b.Input)
		if !ok {
			return nil, &router.Error{Kind: router.KindInvalidRequest, Param: "input", Message: "Invalid type for 'input': expected a string, an array of strings or an array of token arrays."}
		}
		req.InputTokens = n
	}
	return req, nil
}

// tokenArrayLen counts the tokens of an input that is one token array
// ([1,2]) or an array of them ([[1,2],[3]]); false for anything else.
func tokenArrayLen(raw json.RawMessage) (int, bool) {
	var one []int
	if json.Unmarshal(raw, &one) == nil {
		return len(one), len(one) > 0
	}
	var many [][]int
	if json.Unmarshal(raw, &many) != nil || len(many) == 0 {
		return 0, false
	}
	n := 0
	for _, t := range many {
		if len(t) == 0 {
			return 0, false
		}
		n += len(t)
	}
	return n, true
}
