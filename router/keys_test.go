package router

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

var checkKeysTests = []struct {
	name, body string
	params     []string
	wantParam  string // "" accepts
}{
	{"plain", `{"model":"e","input":"x"}`, []string{"model", "input"}, ""},
	{"not an object", `[1,2]`, []string{"model"}, ""},
	{"model twice", `{"model":"a","input":"x","model":"b"}`, []string{"model", "input"}, "model"},
	{"model in two cases", `{"model":"a","input":"x","Model":"b"}`, []string{"model", "input"}, "model"},
	{"variant alone", `{"MODEL":"a","input":"x"}`, []string{"model", "input"}, "MODEL"},
	{"long-s collision", "{\"model\":\"a\",\"input\":\"x\",\"dimensions\":8,\"dimen\u017fions\":4096}",
		[]string{"model", "input", "dimensions"}, "dimensions"},
	{"unknown keys in two cases", `{"model":"a","foo":1,"FOO":2}`, []string{"model"}, "foo"},
	{"many keys, one collision", manyKeys(40, `"k7":1,"K7":2`), nil, "k7"},
	{"many keys, none", manyKeys(40, `"x":1`), nil, ""},
}

// manyKeys is an object with n distinct keys and extra members: past the
// 16-key pairwise path.
func manyKeys(n int, extra string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		b.WriteString(`"key` + strings.Repeat("x", i) + `":0,`)
	}
	return b.String() + extra + "}"
}

func TestCheckKeys(t *testing.T) {
	for _, tc := range checkKeysTests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckKeys([]byte(tc.body), tc.params...)
			if tc.wantParam == "" {
				if err != nil {
					t.Fatalf("CheckKeys(%s) = %v; want nil", tc.body, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalidRequest || e.StatusCode() != 400 || e.Param != tc.wantParam {
				t.Fatalf("CheckKeys(%s) = %#v; want a 400 with param %q", tc.body, err, tc.wantParam)
			}
		})
	}
}

func TestCheckKeysClipsHugeKeys(t *testing.T) {
	k := strings.Repeat("k", 1<<20)
	err := CheckKeys([]byte(`{"` + k + `":1,"` + strings.ToUpper(k) + `":2}`))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("CheckKeys = %v; want an *Error", err)
	}
	if len(e.Message) > 2*MaxEcho+200 || len(e.Param) > MaxEcho+40 {
		t.Errorf("message %d bytes, param %d bytes; want both clipped near %d", len(e.Message), len(e.Param), MaxEcho)
	}
}

func TestClip(t *testing.T) {
	tests := []struct {
		in       string
		wantLen  int // of the kept prefix
		wantMark bool
	}{
		{"short", 5, false},
		{strings.Repeat("a", MaxEcho), MaxEcho, false},
		{strings.Repeat("a", MaxEcho+1), MaxEcho, true},
		{strings.Repeat("a", MaxEcho-1) + "é" + "zz", MaxEcho - 1, true}, // é straddles the cut
		{strings.Repeat("a", 5<<20), MaxEcho, true},
	}
	for _, tc := range tests {
		got := Clip(tc.in)
		if !utf8.ValidString(got) {
			t.Errorf("Clip(%d bytes) = %q: not valid UTF-8", len(tc.in), got)
		}
		if !strings.HasPrefix(got, tc.in[:tc.wantLen]) || strings.Contains(got, "more bytes]") != tc.wantMark || len(got) > MaxEcho+40 {
			t.Errorf("Clip(%d bytes) = %q; want the first %d bytes, marker %v", len(tc.in), got, tc.wantLen, tc.wantMark)
		}
	}
}

// FuzzCheckKeys checks that the folded-map path (many keys) and the
// pairwise path agree with strings.EqualFold, which is how encoding/json
// matches keys: foldKey(a) == foldKey(b) exactly when EqualFold(a, b).
func FuzzCheckKeys(f *testing.F) {
	for _, tc := range checkKeysTests {
		f.Add([]byte(tc.body), "model")
	}
	f.Add([]byte(`{}`), "K")
	f.Add([]byte(`{}`), "\u212a")
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		_ = CheckKeys(body, "model", key) // must not panic
		for _, other := range []string{strings.ToUpper(key), strings.ToLower(key), "k", "s", "\u017f", "\u212a"} {
			if (foldKey(key) == foldKey(other)) != strings.EqualFold(key, other) {
				t.Fatalf("foldKey(%q) == foldKey(%q) is %v; EqualFold says %v", key, other, foldKey(key) == foldKey(other), strings.EqualFold(key, other))
			}
			if foldEqual(key, other) != strings.EqualFold(key, other) {
				t.Fatalf("foldEqual(%q, %q) != EqualFold", key, other)
			}
		}
	})
}

// TestConversationKeyVariant: memory reads "conversation" and removes it;
// a case variant would pass it by and reach a lenient upstream.
func TestConversationKeyVariant(t *testing.T) {
	_, err := ParseChatRequest([]byte(`{"model":"m","messages":[],"Conversation":"conv_x"}`))
	var e *Error
	if !errors.As(err, &e) || e.Param != "Conversation" {
		t.Errorf("ParseChatRequest = %v; want a 400 naming Conversation", err)
	}
}
