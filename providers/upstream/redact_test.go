package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"llmproxy/providers/sse"
	"llmproxy/router"
)

// redactKey has bytes that URL escaping changes, so its escaped forms
// differ from the exact one.
const redactKey = "sk-Up/St+ream=Secret 0xDeadBeef"

// leakedForms are the ways issue 16 saw (or could see) a key come back
// from an upstream: whole, re-cased, URL-escaped, partly masked, cut.
func leakedForms(key string) map[string]string {
	return map[string]string{
		"exact":        key,
		"lower":        strings.ToLower(key),
		"upper":        strings.ToUpper(key),
		"query escape": url.QueryEscape(key),
		"path escape":  url.PathEscape(key),
		"dots":         key[:5] + "..." + key[len(key)-4:],
		"stars":        key[:3] + strings.Repeat("*", 20) + key[len(key)-4:],
		"ellipsis":     key[:6] + "…" + key[len(key)-4:],
		"first 8":      key[:8],
		"last 8":       key[len(key)-8:],
		"lower last 8": strings.ToLower(key[len(key)-8:]),
	}
}

// leaks reports which form of key s still holds.
func leaks(s, key string) []string {
	var out []string
	for name, f := range leakedForms(key) {
		if strings.Contains(s, f) {
			out = append(out, name)
		}
	}
	return out
}

func TestRedactorForms(t *testing.T) {
	r := NewRedactor(redactKey, map[string]string{
		"Authorization": "Bearer hdr-token-ABCDEFGHIJ",
		"X-Trace":       "not-a-secret-value",
	}, "https://user:url-pass-1234567890@api.example/v1?api-key=query-key-0987654321&region=eu")
	for name, f := range leakedForms(redactKey) {
		t.Run(name, func(t *testing.T) {
			in := `{"param":"` + f + `","note":"key ` + f + ` was rejected"}`
			out := r.String(in)
			if l := leaks(out, redactKey); len(l) > 0 {
				t.Errorf("String(%q) = %q; still holds %v", in, out, l)
			}
			if !strings.Contains(out, Redacted) {
				t.Errorf("String(%q) = %q; want %s", in, out, Redacted)
			}
		})
	}
	for _, secret := range []string{"hdr-token-ABCDEFGHIJ", "Bearer hdr-token-ABCDEFGHIJ", "url-pass-1234567890", "query-key-0987654321"} {
		if out := r.String("got " + secret + " here"); strings.Contains(out, secret) {
			t.Errorf("String(%q) = %q; want the credential redacted", secret, out)
		}
	}
	for _, keep := range []string{
		"not-a-secret-value",
		"Invalid value for 'temperature'... expected <= 2",
		"model gpt-4o-mini does not exist",
		"wait... what",
	} {
		if out := r.String(keep); out != keep {
			t.Errorf("String(%q) = %q; want it unchanged", keep, out)
		}
	}
}

func TestRedactorError(t *testing.T) {
	r := NewRedactor(redactKey, nil, "")
	inner := &router.Error{Kind: router.KindInvalidRequest, Param: strings.ToLower(redactKey)}
	e := r.Error(&router.Error{Kind: router.KindInvalidRequest,
		Message: "bad key " + redactKey, Type: url.QueryEscape(redactKey), Param: redactKey[:5] + "..." + redactKey[len(redactKey)-4:],
		Code: strings.ToUpper(redactKey), Err: fmt.Errorf("upstream said %s: %w", url.PathEscape(redactKey), inner)})
	for field, v := range map[string]string{"Message": e.Message, "Type": e.Type, "Param": e.Param, "Code": e.Code,
		"Err": e.Err.Error(), "Error()": e.Error(), "inner": inner.Param} {
		if l := leaks(v, redactKey); len(l) > 0 {
			t.Errorf("%s = %q; still holds %v", field, v, l)
		}
	}
}

// TestRedactUpstreamError drives Post, Reply and Stream with a vendor whose
// Status and Decoder copy upstream text into every field, as an OpenAI
// 4xx's param/type/code did in issue 16.
func TestRedactUpstreamError(t *testing.T) {
	echo := func(text string) *router.Error {
		return &router.Error{Kind: router.KindInvalidRequest, Message: text, Type: text, Param: text, Code: text,
			Err: errors.New("upstream: " + text)}
	}
	all := strings.Join(func() []string {
		var v []string
		for _, f := range leakedForms(redactKey) {
			v = append(v, f)
		}
		return v
	}(), " | ")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(400)
		}
		_, _ = io.WriteString(w, all)
	}))
	defer srv.Close()
	c := &Client{Name: "p", Key: redactKey, HTTP: srv.Client(), Redactor: NewRedactor(redactKey, nil, ""),
		Status: func(r *http.Response) *router.Error {
			b, _ := io.ReadAll(r.Body)
			return echo(string(b))
		}}
	check := func(t *testing.T, err error) {
		t.Helper()
		var e *router.Error
		if !errors.As(err, &e) {
			t.Fatalf("err = %v; want a *router.Error", err)
		}
		for field, v := range map[string]string{"Message": e.Message, "Type": e.Type, "Param": e.Param, "Code": e.Code, "Error()": e.Error()} {
			if l := leaks(v, redactKey); len(l) > 0 {
				t.Errorf("%s = %q; still holds %v", field, v, l)
			}
		}
	}
	t.Run("status", func(t *testing.T) {
		_, err := c.Start(context.Background(), 0).Post(srv.URL+"/fail", nil, false)
		check(t, err)
	})
	t.Run("reply", func(t *testing.T) {
		k := c.Start(context.Background(), 0)
		resp, err := k.Post(srv.URL+"/ok", nil, false)
		if err != nil {
			t.Fatal(err)
		}
		_, err = k.Reply(resp, 1<<20, false, func(b []byte) (*router.Chunk, error) { return nil, echo(string(b)) })
		check(t, err)
	})
	t.Run("stream event", func(t *testing.T) {
		k := c.Start(context.Background(), 0)
		var s Stream
		k.Open(&s, StreamConfig{Body: io.NopCloser(strings.NewReader("data: ok\n\ndata: " + all + "\n\n")),
			Decoder: echoDecoder{echo}})
		_, err := collect(&s)
		check(t, err)
	})
}

// echoDecoder passes "ok" through and turns any other event into an error
// echoing its data in every field.
type echoDecoder struct{ echo func(string) *router.Error }

func (d echoDecoder) Decode(out []*router.Chunk, ev sse.Event) ([]*router.Chunk, bool, error) {
	if string(ev.Data) == "ok" {
		return append(out, &router.Chunk{Data: []byte("ok")}), false, nil
	}
	return out, false, d.echo(string(ev.Data))
}

// FuzzRedactor checks that no input makes the redactor panic or leave the
// exact, lower-cased or escaped key in its output.
func FuzzRedactor(f *testing.F) {
	for _, s := range leakedForms(redactKey) {
		f.Add(s)
		f.Add("x" + s + "...")
	}
	f.Add("sk-...****…•")
	r := NewRedactor(redactKey, nil, "")
	f.Fuzz(func(t *testing.T, s string) {
		out := r.String(s)
		for _, form := range []string{redactKey, strings.ToLower(redactKey), url.QueryEscape(redactKey), url.PathEscape(redactKey)} {
			if strings.Contains(out, form) {
				t.Fatalf("String(%q) = %q; holds %q", s, out, form)
			}
		}
	})
}

// TestRedactorShortSecret: a placeholder key is redacted as written, and
// its re-cased forms are ordinary words.
func TestRedactorShortSecret(t *testing.T) {
	r := NewRedactor("EMPTY", nil, "")
	if got := r.String("key EMPTY: messages must not be empty"); got != "key [redacted]: messages must not be empty" {
		t.Errorf("String = %q", got)
	}
}
