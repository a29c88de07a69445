package embed

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"

	"llmproxy/router"
)

// maxInputs is OpenAI's limit on inputs per call; a request with more is
// refused before it is batched.
const maxInputs = 2048

// inputs are one request's inputs: strings, or token arrays.
type inputs struct {
	texts []string
	toks  [][]int
	// extras are the body's other fields (input_type, truncate … for
	// servers that take them; never model, input, encoding_format,
	// dimensions or user) as canonical JSON, "" for none. They can change
	// the vectors, so they are part of the cache key and of the batch key,
	// and the upstream call carries them.
	extras string
}

// known are the body fields the service itself handles.
var known = []string{"model", "input", "encoding_format", "dimensions", "user"}

// extraFields is body without the known fields, keys sorted; "" when
// nothing is left.
func extraFields(body []byte) string {
	var m map[string]json.RawMessage
	if len(body) == 0 || json.Unmarshal(body, &m) != nil {
		return ""
	}
	for _, k := range known {
		delete(m, k)
	}
	if len(m) == 0 {
		return ""
	}
	b, _ := json.Marshal(m) // maps marshal with sorted keys
	return string(b)
}

// withExtras is the JSON object fields plus extras (canonical JSON).
func withExtras(fields map[string]any, extras string) ([]byte, error) {
	if extras != "" {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(extras), &m); err != nil {
			return nil, err
		}
		for k, v := range m {
			fields[k] = v
		}
	}
	return json.Marshal(fields)
}

func (in *inputs) tokens() bool { return in.texts == nil }

func (in *inputs) len() int {
	if in.tokens() {
		return len(in.toks)
	}
	return len(in.texts)
}

// weight is input i's share key for splitting usage: its length in bytes
// or tokens.
func (in *inputs) weight(i int) int {
	if in.tokens() {
		return len(in.toks[i])
	}
	return len(in.texts[i])
}

// subset returns the inputs at idx, in that order.
func (in *inputs) subset(idx []int) inputs {
	out := inputs{extras: in.extras}
	for _, i := range idx {
		if in.tokens() {
			out.toks = append(out.toks, in.toks[i])
		} else {
			out.texts = append(out.texts, in.texts[i])
		}
	}
	return out
}

// parseInputs reads req's inputs: req.Input for strings, else the token
// arrays in req.Body. Each caller is checked on its own, so an invalid
// input fails only its request.
func parseInputs(req *router.EmbedRequest) (inputs, error) {
	in := inputs{extras: extraFields(req.Body)}
	if req.Input != nil {
		in.texts = req.Input
	} else {
		var body struct {
			Input json.RawMessage `json:"input"`
		}
		if json.Unmarshal(req.Body, &body) != nil {
			return in, invalid("Invalid type for 'input': expected a string, an array of strings or an array of token arrays.")
		}
		var one []int
		if json.Unmarshal(body.Input, &one) == nil {
			in.toks = [][]int{one}
		} else if json.Unmarshal(body.Input, &in.toks) != nil {
			return in, invalid("Invalid type for 'input': expected a string, an array of strings or an array of token arrays.")
		}
		if in.toks == nil {
			in.toks = [][]int{}
		}
	}
	n := in.len()
	if n == 0 {
		return in, invalid("'input' must not be empty.")
	}
	if n > maxInputs {
		return in, invalid("'input' must have at most " + strconv.Itoa(maxInputs) + " items.")
	}
	for i := range n {
		if in.weight(i) == 0 {
			return in, invalid("'input' cannot contain an empty string or an empty token array.")
		}
	}
	return in, nil
}

func invalid(msg string) *router.Error {
	return &router.Error{Kind: router.KindInvalidRequest, Param: "input", Message: msg}
}

// keySpec is what a cache key covers besides the input.
type keySpec struct {
	team   string // "" under scope shared
	target router.Target
	dims   int
}

// key is the cache key of input i under k: hex SHA-256 over
// length-prefixed fields, so no two field lists hash alike.
func (k keySpec) key(in *inputs, i int) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	field := func(b []byte) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
		h.Write(b)
	}
	field([]byte(k.team))
	field([]byte(k.target.Provider))
	field([]byte(k.target.Model))
	field(strconv.AppendInt(nil, int64(k.dims), 10))
	field([]byte(in.extras))
	if in.tokens() {
		field([]byte("tokens"))
		b := make([]byte, 0, 4*len(in.toks[i]))
		for _, t := range in.toks[i] {
			b = binary.AppendVarint(b, int64(t))
		}
		field(b)
	} else {
		field([]byte("text"))
		field([]byte(in.texts[i]))
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// vector is one embedding: the float32 values the upstream sent, and the
// input's share of the upstream's token count.
type vector struct {
	tokens int
	vals   []float32
}

// encode is a cache value: the token share (uint32) then the floats, all
// little-endian, as base64 carries them.
func (v vector) encode() []byte {
	b := make([]byte, 4, 4+4*len(v.vals))
	binary.LittleEndian.PutUint32(b, uint32(v.tokens))
	for _, f := range v.vals {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

func decodeVector(b []byte) (vector, bool) {
	if len(b) < 8 || len(b)%4 != 0 {
		return vector{}, false
	}
	v := vector{tokens: int(binary.LittleEndian.Uint32(b)), vals: make([]float32, (len(b)-4)/4)}
	for i := range v.vals {
		v.vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4+4*i:]))
	}
	return v, true
}
