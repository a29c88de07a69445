package embed

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"sort"
	"strconv"
)

// errMalformed is an upstream reply the batcher cannot split.
var errMalformed = errors.New("malformed embeddings reply")

// parseVectors reads the n vectors of an OpenAI embeddings list, in index
// order. Each embedding may be base64 (little-endian float32, what the
// batcher asks for) or a float array (an upstream that ignored
// encoding_format).
func parseVectors(data []byte, n int) ([][]float32, error) {
	var body struct {
		Data []struct {
			Index     int             `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &body); err != nil {
		return nil, errors.Join(errMalformed, err)
	}
	if len(body.Data) != n {
		return nil, errMalformed
	}
	out := make([][]float32, n)
	for _, d := range body.Data {
		if d.Index < 0 || d.Index >= n || out[d.Index] != nil {
			return nil, errMalformed
		}
		v, err := decodeEmbedding(d.Embedding)
		if err != nil || len(v) == 0 {
			return nil, errMalformed
		}
		out[d.Index] = v
	}
	return out, nil
}

func decodeEmbedding(raw json.RawMessage) ([]float32, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b)%4 != 0 {
			return nil, errMalformed
		}
		v := make([]float32, len(b)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return v, nil
	}
	var f []float32
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, err
	}
	return f, nil
}

// render encodes OpenAI's list of embeddings for vecs, in order, as the
// client asked (base64 or float), with model and the prompt tokens of
// every input, cached or not: the body the upstream would have sent.
func render(vecs []vector, model string, b64 bool) []byte {
	dims := 0
	if len(vecs) > 0 {
		dims = len(vecs[0].vals)
	}
	per := 48 + dims*12
	if b64 {
		per = 48 + dims*6
	}
	b := make([]byte, 0, 96+len(model)+len(vecs)*per)
	b = append(b, `{"object":"list","data":[`...)
	tokens := 0
	for i, v := range vecs {
		tokens += v.tokens
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"embedding":`...)
		if b64 {
			b = appendBase64(b, v.vals)
		} else {
			b = appendFloats(b, v.vals)
		}
		b = append(b, '}')
	}
	b = append(b, `],"model":`...)
	m, _ := json.Marshal(model) // a string always marshals
	b = append(b, m...)
	b = append(b, `,"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(tokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(tokens), 10)
	return append(b, "}}"...)
}

// appendFloats prints each float32 in its shortest round-trip form.
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

// appendBase64 writes vec as the SDKs decode it: base64 of little-endian
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

// split divides total among weights in proportion, largest remainder
// first, so the parts add up to total exactly.
func split(total int, weights []int) []int {
	out := make([]int, len(weights))
	sum := 0
	for _, w := range weights {
		sum += w
	}
	if total <= 0 || sum <= 0 {
		return out
	}
	type rem struct{ i, r int }
	rems := make([]rem, len(weights))
	given := 0
	for i, w := range weights {
		p := total * w
		out[i] = p / sum
		given += out[i]
		rems[i] = rem{i, p % sum}
	}
	// Hand the leftover units to the largest remainders; ties by index
	// keep it deterministic.
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
	for j := 0; j < total-given; j++ {
		out[rems[j].i]++
	}
	return out
}
