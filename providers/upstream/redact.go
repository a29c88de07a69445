package upstream

import (
	"errors"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"llmproxy/router"
)

// Redacted is what a secret becomes in upstream text.
const Redacted = "[redacted]"

// Secret fragments: a secret this long or longer is also redacted by its
// first and last fragLen bytes (what a log line or an upstream's "key
// ending in …" message shows of it), and by masked forms such as
// "sk-abc…wxyz". Shorter secrets are redacted whole only, so that a short
// header value cannot blank out ordinary words.
const (
	// minFormSecret is the length from which a secret's re-cased and
	// escaped forms are redacted too (a placeholder key such as "EMPTY"
	// is redacted as written only).
	minFormSecret = 8
	fragLen       = 8
	minFragSecret = 12
	// minMaskedEvidence is how many unmasked bytes a masked token must
	// share with a secret (its prefix plus its suffix) to be redacted.
	minMaskedEvidence = 4
)

// Redactor removes every configured secret of one provider from upstream
// text: the API key, credential-looking header values and credentials in
// the base URL, each in its exact, lower- and upper-cased, query- and
// path-escaped forms, its first and last bytes, and masked forms
// ("sk-…abcd", "sk-proj-****abcd"). It is built once per provider; the
// zero-secret Redactor returns text unchanged. It is safe for concurrent
// use.
type Redactor struct {
	rep     *strings.Replacer // nil without secrets
	secrets []string          // for the masked-token pass, longest first
}

// NewRedactor builds the Redactor of a provider's key, its static extra
// headers and its base URL (userinfo and credential-looking query values).
func NewRedactor(key string, headers map[string]string, baseURL string) *Redactor {
	var secrets []string
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" {
			secrets = append(secrets, s)
		}
	}
	add(key)
	for name, v := range headers {
		if !credentialName(name) {
			continue
		}
		add(v)
		if _, cred, ok := strings.Cut(strings.TrimSpace(v), " "); ok { // "Bearer x", "Basic x"
			add(cred)
		}
	}
	if u, err := url.Parse(baseURL); err == nil {
		if p, ok := u.User.Password(); ok {
			add(p)
		}
		for name, vs := range u.Query() {
			if credentialName(name) {
				for _, v := range vs {
					add(v)
				}
			}
		}
	}
	return newRedactor(secrets)
}

func newRedactor(secrets []string) *Redactor {
	forms := map[string]bool{}
	for _, s := range secrets {
		forms[s] = true
		if len(s) < minFormSecret {
			continue // "EMPTY", "none": re-cased forms would blank out words
		}
		for _, c := range []string{s, strings.ToLower(s), strings.ToUpper(s)} {
			forms[c], forms[url.QueryEscape(c)], forms[url.PathEscape(c)] = true, true, true
			if len(c) >= minFragSecret {
				forms[prefix(c, fragLen)], forms[suffix(c, fragLen)] = true, true
			}
		}
	}
	if len(forms) == 0 {
		return &Redactor{}
	}
	list := make([]string, 0, len(forms))
	for f := range forms {
		list = append(list, f)
	}
	// Longest first: strings.Replacer picks the first of the old strings
	// that matches at a position, so a whole secret beats its fragment.
	sort.Slice(list, func(i, j int) bool {
		if len(list[i]) != len(list[j]) {
			return len(list[i]) > len(list[j])
		}
		return list[i] < list[j]
	})
	pairs := make([]string, 0, 2*len(list))
	for _, f := range list {
		pairs = append(pairs, f, Redacted)
	}
	long := []string{}
	for _, s := range secrets {
		if len(s) >= minFragSecret {
			long = append(long, s)
		}
	}
	return &Redactor{rep: strings.NewReplacer(pairs...), secrets: long}
}

// prefix and suffix cut s to about n bytes without splitting a rune.
func prefix(s string, n int) string {
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func suffix(s string, n int) string {
	i := len(s) - n
	for i > 0 && i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return s[i:]
}

// credentialName reports a header or query parameter that carries a
// credential: Authorization, x-api-key, api-key, x-goog-api-key, a
// cookie, or any name with key, token, secret, password or auth in it.
func credentialName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"auth", "key", "token", "secret", "password", "cookie", "signature", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// String returns s with every form of every secret replaced by Redacted.
func (r *Redactor) String(s string) string {
	if r == nil || r.rep == nil || s == "" {
		return s
	}
	return r.rep.Replace(r.masked(s))
}

// Error redacts every field of e that can carry upstream text, in place,
// and returns it: Message, Type, Param, Code and the text of Err.
func (r *Redactor) Error(e *router.Error) *router.Error {
	if e == nil || r == nil || r.rep == nil {
		return e
	}
	e.Message = r.String(e.Message)
	e.Type = r.String(e.Type)
	e.Param = r.String(e.Param)
	e.Code = r.String(e.Code)
	e.Err = r.Err(e.Err)
	return e
}

// Err returns err, or an error with its redacted text when the text held a
// secret. errors.Is chains survive only in the common, clean case.
func (r *Redactor) Err(err error) error {
	if err == nil || r == nil || r.rep == nil {
		return err
	}
	var inner *router.Error
	if errors.As(err, &inner) {
		r.Error(inner) // a wrapped *router.Error is read with errors.As
	}
	msg := err.Error()
	if red := r.String(msg); red != msg {
		return errors.New(red)
	}
	return err
}

// isMask reports a byte that masks part of a key: "*", "#" or "." (in a
// "..." run). "x" is not one: it is common in keys.
func isMask(b byte) bool { return b == '*' || b == '.' || b == '#' }

// isKeyByte reports a byte that may be part of an API key.
func isKeyByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_'
}

// masked replaces tokens that show a secret's start and end around a run
// of at least three mask bytes ("sk-ab...wxyz", "sk-proj-****wxyz") or an
// ellipsis or bullets ("sk-ab…wxyz"), when the visible bytes are a prefix
// and a suffix of one secret (case-insensitively) and there are at least
// minMaskedEvidence of them.
func (r *Redactor) masked(s string) string {
	if len(r.secrets) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		j := maskRun(s, i)
		if j == i {
			i++
			continue
		}
		start, end := i, j
		for start > last && isKeyByte(s[start-1]) {
			start--
		}
		for end < len(s) && isKeyByte(s[end]) {
			end++
		}
		if r.revealsSecret(s[start:i], s[j:end]) {
			b.WriteString(s[last:start])
			b.WriteString(Redacted)
			last = end
		}
		i = end
		if i == j && i < len(s) { // no progress past the run
			i++
		}
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// maskRun returns the end of a mask run starting at i: three or more mask
// bytes, or any number of "…" or "•"; i when there is none.
func maskRun(s string, i int) int {
	j, symbol := i, false
	for j < len(s) {
		if isMask(s[j]) {
			j++
			continue
		}
		if strings.HasPrefix(s[j:], "…") || strings.HasPrefix(s[j:], "•") {
			j += len("…") // both are three bytes
			symbol = true
			continue
		}
		break
	}
	if j-i >= 3 || symbol {
		return j
	}
	return i
}

func (r *Redactor) revealsSecret(head, tail string) bool {
	if len(head)+len(tail) < minMaskedEvidence {
		return false
	}
	for _, sec := range r.secrets {
		if len(head)+len(tail) < len(sec) &&
			len(head) <= len(sec) && strings.EqualFold(sec[:len(head)], head) &&
			len(tail) <= len(sec) && strings.EqualFold(sec[len(sec)-len(tail):], tail) {
			return true
		}
	}
	return false
}
