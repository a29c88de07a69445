package demo

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math"
	"strconv"

	"llmproxy/router"
)

// Embedding limits. 384 matches small sentence-embedding models, so a demo
// index has the shape a real one would.
const (
	DefaultDimensions = 384
	maxDimensions     = 4096
	maxInputs         = 2048
)

// Embed returns lexical embeddings: each lowercase word of an input is
// hashed (FNV-1a) to one of the vector's dimensions with a hash-chosen sign,
// and the counts are L2-normalised. Texts that share words get a high
// cosine; synonyms get none. It is a stand-in for tests and demos, not a
// semantic model.
func (c *Client) Embed(ctx context.Context, req *router.EmbedRequest) (*router.EmbedResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, router.AsError(err)
	}
	in, format, dims, err := decodeEmbed(req)
	if err != nil {
		return nil, err
	}
	model := req.Target.Model
	if model == "" {
		model = req.Model
	}
	var usage router.Usage
	b := make([]byte, 0, 64+len(in)*dims*12)
	b = append(b, `{"object":"list","data":[`...)
	vec := make([]float32, dims)
	for i, text := range in {
		usage.PromptTokens += c.count(text)
		hashEmbed(vec, text)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"embedding":`...)
		if format == "base64" {
			b = appendBase64(b, vec)
		} else {
			b = appendFloats(b, vec)
		}
		b = append(b, '}')
	}
	usage.TotalTokens = usage.PromptTokens
	b = append(b, `],"model":`...)
	b = appendString(b, model)
	b = append(b, `,"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(usage.PromptTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(usage.TotalTokens), 10)
	b = append(b, "}}"...)
	return &router.EmbedResponse{Data: b, Usage: usage}, nil
}

// decodeEmbed reads input, encoding_format and dimensions from the body;
// the request's decoded fields win where they are set.
func decodeEmbed(req *router.EmbedRequest) (in []string, format string, dims int, err error) {
	var body struct {
		Input          json.RawMessage `json:"input"`
		EncodingFormat string          `json:"encoding_format"`
		Dimensions     int             `json:"dimensions"`
	}
	if len(req.Body) > 0 && json.Unmarshal(req.Body, &body) != nil {
		return nil, "", 0, invalid("", "We could not parse the JSON body of your request.")
	}
	in = req.Input
	if len(body.Input) > 0 && string(body.Input) != "null" {
		if in, err = decodeInput(body.Input); err != nil {
			return nil, "", 0, err
		}
	}
	if len(in) == 0 {
		if len(body.Input) > 0 && string(body.Input) != "null" {
			return nil, "", 0, invalid("input", "'input' must not be empty.")
		}
		return nil, "", 0, invalid("input", "Missing required parameter: 'input'.")
	}
	if len(in) > maxInputs {
		return nil, "", 0, invalid("input", "'input' must have at most "+strconv.Itoa(maxInputs)+" items.")
	}
	for _, s := range in {
		if s == "" {
			return nil, "", 0, invalid("input", "'input' cannot contain an empty string.")
		}
	}
	format = req.EncodingFormat
	if format == "" {
		format = body.EncodingFormat
	}
	if format != "" && format != "float" && format != "base64" {
		return nil, "", 0, invalid("encoding_format", "'encoding_format' must be 'float' or 'base64'.")
	}
	dims = req.Dimensions
	if dims == 0 {
		dims = body.Dimensions
	}
	if dims == 0 {
		dims = DefaultDimensions
	}
	if dims < 1 || dims > maxDimensions {
		return nil, "", 0, invalid("dimensions", "'dimensions' must be between 1 and "+strconv.Itoa(maxDimensions)+".")
	}
	return in, format, dims, nil
}

// decodeInput accepts a string or an array of strings. Token arrays need
// the upstream's own tokenizer, which a hash embedder does not have.
func decodeInput(raw json.RawMessage) ([]string, error) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return many, nil
	}
	if raw[0] == '[' {
		return nil, invalid("input", "The demo embedder does not accept token arrays: send 'input' as a string or an array of strings.")
	}
	return nil, invalid("input", "Invalid type for 'input': expected a string or an array of strings.")
}

func invalid(param, msg string) *router.Error {
	return &router.Error{Kind: router.KindInvalidRequest, Param: param, Message: msg}
}

// hashEmbed overwrites vec with the normalised feature hash of text. Text
// without a letter or digit is hashed whole, so no vector is all zeros.
func hashEmbed(vec []float32, text string) {
	acc := make([]float64, len(vec))
	add := func(tok string) {
		h := fnv.New64a()
		h.Write([]byte(tok))
		sum := h.Sum64()
		sign := 1.0
		if sum>>63 == 1 {
			sign = -1
		}
		acc[sum%uint64(len(acc))] += sign
	}
	for _, t := range terms(text) {
		add(t)
	}
	norm := 0.0
	for _, v := range acc {
		norm += v * v
	}
	if norm == 0 {
		// Every token cancelled out, or there were none.
		clear(acc)
		add("\x00" + text)
		norm = 1
	}
	norm = math.Sqrt(norm)
	for i, v := range acc {
		vec[i] = float32(v / norm)
	}
}

func appendFloats(b []byte, vec []float32) []byte {
	b = append(b, '[')
	for i, v := range vec {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(v), 'g', -1, 32)
	}
	return append(b, ']')
}

// appendBase64 writes vec as the SDKs expect it: base64 of little-endian
// float32 bytes.
func appendBase64(b []byte, vec []float32) []byte {
	raw := make([]byte, 4*len(vec))
	for i, v := range vec {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, raw)
	return append(b, '"')
}
