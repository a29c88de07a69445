package gemini

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"llmproxy/router"
)

// maxBatch is how many texts one batchEmbedContents call carries; the API
// refuses larger batches, so bigger inputs are sent in several calls.
const maxBatch = 100

// Embed serves /v1/embeddings with models/{model}:batchEmbedContents
// ("Embeddings > Method: models.batchEmbedContents"). The reply is OpenAI's
// list, with base64 (little-endian float32) vectors when the client asked
// encoding_format base64. Gemini reports no token counts for embeddings, so
// the usage is an o200k_base estimate marked Estimated.
func (c *Client) Embed(ctx context.Context, req *router.EmbedRequest) (*router.EmbedResponse, error) {
	if req.Input == nil {
		return nil, &router.Error{Kind: router.KindInvalidRequest, Provider: c.name, Param: "input",
			Message: "Gemini embeddings take text input; token arrays are not supported."}
	}
	model := req.Target.Model
	vectors := make([][]float32, 0, len(req.Input))
	for start := 0; start < len(req.Input); start += maxBatch {
		batch := req.Input[start:min(start+maxBatch, len(req.Input))]
		vs, err := c.embedBatch(ctx, model, batch, req.Dimensions)
		if err != nil {
			return nil, err
		}
		vectors = append(vectors, vs...)
	}
	var u router.Usage
	for _, s := range req.Input {
		u.PromptTokens += c.count(s)
	}
	u.TotalTokens, u.Estimated = u.PromptTokens, true
	return &router.EmbedResponse{Data: embeddingList(vectors, model, req.EncodingFormat == "base64", u), Usage: u}, nil
}

type embedRequest struct {
	Model                string  `json:"model"`
	Content              content `json:"content"`
	OutputDimensionality int     `json:"outputDimensionality,omitempty"`
}

// batchBody is a batchEmbedContents request; each item names the model
// again, as the API requires.
func batchBody(model string, texts []string, dims int) ([]byte, error) {
	name := model
	if !strings.Contains(model, "/") {
		name = "models/" + model
	}
	reqs := make([]embedRequest, len(texts))
	for i, t := range texts {
		reqs[i] = embedRequest{Model: name, Content: content{Parts: []part{{Text: t}}}, OutputDimensionality: dims}
	}
	return marshal(map[string]any{"requests": reqs})
}

func (c *Client) embedBatch(ctx context.Context, model string, texts []string, dims int) ([][]float32, error) {
	body, err := batchBody(model, texts, dims)
	if err != nil {
		return nil, err
	}
	call := c.up.Start(ctx, 0)
	resp, err := call.Post(c.modelURL(model, "batchEmbedContents"), body, false)
	if err != nil {
		return nil, err
	}
	raw, err := call.Read(resp, maxBody)
	if err != nil {
		return nil, err
	}
	var out struct {
		Embeddings []struct {
			Values []float32 `json:"values"`
		} `json:"embeddings"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Embeddings) != len(texts) {
		return nil, c.up.Malformed("embeddings reply", err)
	}
	vs := make([][]float32, len(texts))
	for i, e := range out.Embeddings {
		vs[i] = e.Values
	}
	return vs, nil
}

// embeddingList encodes OpenAI's "list" of embedding objects. Floats are
// written as float32, so the float and base64 forms decode to the same
// vector.
func embeddingList(vectors [][]float32, model string, b64 bool, u router.Usage) []byte {
	b := make([]byte, 0, 64+len(vectors)*(32+len(firstOr(vectors))*12))
	b = append(b, `{"object":"list","data":[`...)
	for i, v := range vectors {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"embedding":`...)
		if b64 {
			raw := make([]byte, 4*len(v))
			for j, f := range v {
				binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(f))
			}
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, raw)
			b = append(b, '"')
		} else {
			b = append(b, '[')
			for j, f := range v {
				if j > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendFloat(b, float64(f), 'g', -1, 32)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	b = append(b, `],"model":`...)
	m, _ := marshal(model)
	b = append(b, m...)
	b = append(b, `,"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(u.PromptTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(u.TotalTokens), 10)
	return append(b, "}}"...)
}

func firstOr(vs [][]float32) []float32 {
	if len(vs) == 0 {
		return nil
	}
	return vs[0]
}
