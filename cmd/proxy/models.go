package main

import (
	"encoding/json"
	"strconv"
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
	// Type is "chat" or "embedding".
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
	k := c.Locals(localsKey).(*teamKey)
	rec := &reqRecord{route: routeEmbed, start: time.Now(), team: k.team, keyID: k.id}
	c.Locals(localsReq, rec)
	body := append([]byte(nil), c.Body()...)
	req, err := parseEmbedRequest(body)
	if err != nil {
		return err
	}
	if !k.allows(req.Model) || !s.router.Has(req.Model) {
		return router.ModelNotFound(req.Model)
	}
	rec.model = req.Model
	ctx, cancel := s.requestContext(c, k)
	defer cancel()
	resp, err := s.router.Embed(ctx, req)
	rec.modelUsed, rec.provider, rec.attempts, rec.fallbacks = req.Target.Model, req.Target.Provider, req.Attempts, req.Fallbacks
	if err != nil {
		setAttemptHeaders(c, req.Attempts, req.Target.Provider)
		return err
	}
	rec.usage = resp.Usage
	alias := req.Model
	if req.FallbackAlias != "" {
		alias = req.FallbackAlias
		c.Set("x-llmproxy-fallback-from", req.Model)
	}
	c.Set("x-llmproxy-model", alias+";upstream="+req.Target.Model)
	c.Set("x-llmproxy-provider", req.Target.Provider)
	c.Set("x-llmproxy-attempts", strconv.Itoa(req.Attempts))
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(resp.Data)
}

// parseEmbedRequest validates an embeddings body the way OpenAI does.
func parseEmbedRequest(body []byte) (*router.EmbedRequest, error) {
	var b embedBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, &router.Error{Kind: router.KindInvalidRequest, Message: "We could not parse the JSON body of your request: " + err.Error()}
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
		var tokens []json.RawMessage // token arrays: passed through for upstreams that take them
		if json.Unmarshal(b.Input, &tokens) != nil {
			return nil, &router.Error{Kind: router.KindInvalidRequest, Param: "input", Message: "Invalid type for 'input': expected a string, an array of strings or an array of token arrays."}
		}
	}
	return req, nil
}
