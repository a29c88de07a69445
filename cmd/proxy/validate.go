package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"llmproxy/providers/upstream"
)

// The closed sets of values the schema accepts.
var (
	modelTypes       = []string{"chat", "embedding", "rerank"}
	routerStrategies = []string{"weighted", "priority", "least_latency", "least_inflight", "cost"}
	capabilityNames  = []string{"tools", "vision", "json_schema"}
	budgetPeriods    = []string{"day", "week", "month"}
	downgradePolicys = []string{"keep", "deny"}
	redisOnError     = []string{"fail_open", "fail_closed"}
	ragOnError       = []string{"fail_open", "fail_closed"}
	unpricedPolicies = []string{"allow", "deny"}
	logLevels        = []string{"debug", "info", "warn", "error"}
)

// Validate reports every problem in c at once, joined with errors.Join. Each
// message starts with the field path, quotes the bad value (never a Secret)
// and says what is wanted; when c came from YAML it ends with [line:col].
// knownProviderTypes are the adapter types this build has (providers.Types);
// nil skips that one check. Validate expects applyDefaults to have run, as
// ParseConfig does.
func (c *Config) Validate(knownProviderTypes []string) error {
	v := &validator{c: c}
	v.server()
	v.providers(knownProviderTypes)
	v.models()
	v.teams()
	v.router()
	v.stores()
	v.embeddings()
	v.vectorStores()
	v.telemetry()
	v.rag()
	return errors.Join(v.errs...)
}

type validator struct {
	c    *Config
	errs []error
}

// add records "path: msg [line:col]".
func (v *validator) add(path, format string, args ...any) {
	msg := path + ": " + fmt.Sprintf(format, args...)
	if pos := v.pos(path); pos != "" {
		msg += " " + pos
	}
	v.errs = append(v.errs, errors.New(msg))
}

// pos finds where path is in the YAML, or where its nearest parent is when
// the field itself was not written (a missing or defaulted value).
func (v *validator) pos(path string) string {
	if v.c.doc == nil {
		return ""
	}
	for p := path; p != ""; p = parentPath(p) {
		yp, err := yaml.PathString("$." + p)
		if err != nil {
			continue
		}
		n, err := yp.FilterNode(v.c.doc)
		if err != nil || n == nil {
			continue
		}
		// A block mapping's own token is its first ":"; point at the first
		// key instead.
		if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 && !m.IsFlowStyle {
			n = m.Values[0].Key
		}
		if tk := n.GetToken(); tk != nil && tk.Position != nil {
			return fmt.Sprintf("[%d:%d]", tk.Position.Line, tk.Position.Column)
		}
	}
	return ""
}

// parentPath drops the last ".key" or "[i]" of path.
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func (v *validator) oneOf(path, noun, got string, allowed []string) {
	if !slices.Contains(allowed, got) {
		v.add(path, "unknown %s %q%s", noun, got, wantOneOf(allowed))
	}
}

// wantOneOf is " (want one of: a, b)", or "" when there is nothing to offer.
func wantOneOf(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return " (want one of: " + strings.Join(names, ", ") + ")"
}

func (v *validator) name(path, kind, got string, seen map[string]string) {
	switch {
	case got == "":
		v.add(path, "required: give the %s a name", kind)
	case strings.IndexFunc(got, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		v.add(path, "%q contains whitespace; want a name without spaces", got)
	case seen[got] != "":
		v.add(path, "duplicate %s %q (first at %s)", kind, got, seen[got])
	default:
		seen[got] = strings.TrimSuffix(path, ".name")
	}
}

func (v *validator) notNegative(path string, n float64) {
	if n < 0 {
		v.add(path, "%s is negative; want 0 or more", strconv.FormatFloat(n, 'g', -1, 64))
	}
}

func (v *validator) positive(path string, n float64) {
	if n <= 0 {
		v.add(path, "%s is not positive; want more than 0", strconv.FormatFloat(n, 'g', -1, 64))
	}
}

func (v *validator) duration(path string, d Duration, wantPositive bool) {
	switch {
	case d < 0:
		v.add(path, "%q is negative; want a duration of 0 or more", d.String())
	case d == 0 && wantPositive:
		v.add(path, "%q is zero; want a duration such as \"30s\"", d.String())
	}
}

func (v *validator) timeouts(path string, t TimeoutsConfig) {
	v.duration(path+".connect", t.Connect, false)
	v.duration(path+".first_token", t.FirstToken, false)
	v.duration(path+".idle", t.Idle, false)
	v.duration(path+".total", t.Total, false)
	if t.Total > 0 && t.FirstToken > t.Total {
		v.add(path+".first_token", "%q is longer than total %q; want first_token <= total", t.FirstToken.String(), t.Total.String())
	}
}

func (v *validator) rateLimit(path string, r *RateLimitConfig) {
	if r == nil {
		return
	}
	v.notNegative(path+".rpm", float64(r.RPM))
	v.notNegative(path+".tpm", float64(r.TPM))
}

func (v *validator) pricing(path string, p *PricingConfig) {
	if p == nil {
		return
	}
	v.notNegative(path+".input_per_mtok", p.InputPerMTok)
	v.notNegative(path+".output_per_mtok", p.OutputPerMTok)
	v.notNegative(path+".cached_input_per_mtok", p.CachedInputPerMTok)
}

func (v *validator) server() {
	s := v.c.Server
	host, port, err := net.SplitHostPort(s.Listen)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 || strings.ContainsAny(host, " /") {
		v.add("server.listen", "%q is not host:port; want e.g. \"127.0.0.1:8080\" or \":8080\"", s.Listen)
	}
	v.positive("server.max_body_bytes", float64(s.MaxBodyBytes))
	if s.ShutdownDelay != nil {
		v.duration("server.shutdown_delay", *s.ShutdownDelay, false)
	}
	v.duration("server.drain_timeout", s.DrainTimeout, false)
	v.duration("server.read_timeout", s.ReadTimeout, false)
	v.duration("server.body_read_timeout", s.BodyReadTimeout, false)
	v.duration("server.idle_timeout", s.IdleTimeout, false)
	v.oneOf("server.log_level", "log level", s.LogLevel, logLevels)
	if s.DataDir == "" {
		v.add("server.data_dir", "required: a directory for local state")
	}
}

func (v *validator) providers(known []string) {
	if len(v.c.Providers) == 0 {
		v.add("providers", "at least one provider is required (the built-in one is {name: demo, type: demo})")
	}
	seen := map[string]string{}
	for i, p := range v.c.Providers {
		path := fmt.Sprintf("providers[%d]", i)
		v.name(path+".name", "provider", p.Name, seen)
		switch {
		case p.Type == "":
			v.add(path+".type", "required: the adapter type%s", wantOneOf(known))
		case known != nil:
			v.oneOf(path+".type", "type", p.Type, known)
		}
		if p.BaseURL != "" {
			if u, err := url.Parse(p.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				v.add(path+".base_url", "%q is not an absolute URL; want http(s)://host[:port]/path", redactURL(p.BaseURL))
			}
		}
		for k := range p.Headers {
			if k == "" || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == ':' || r >= 0x7f }) {
				v.add(path+".headers", "%q is not a valid header name", k)
			}
		}
		v.timeouts(path+".timeouts", p.Timeouts)
	}
}

// modelIndex maps model names to their position in c.Models.
func (c *Config) modelIndex() map[string]int {
	idx := make(map[string]int, len(c.Models))
	for i, m := range c.Models {
		if _, dup := idx[m.Name]; !dup {
			idx[m.Name] = i
		}
	}
	return idx
}

func (v *validator) models() {
	if len(v.c.Models) == 0 {
		v.add("models", "at least one model is required")
	}
	providers := map[string]bool{}
	var providerNames []string
	for _, p := range v.c.Providers {
		providers[p.Name] = true
		providerNames = append(providerNames, p.Name)
	}
	seen := map[string]string{}
	for i, m := range v.c.Models {
		path := fmt.Sprintf("models[%d]", i)
		v.name(path+".name", "model", m.Name, seen)
		v.oneOf(path+".type", "type", m.Type, modelTypes)
		if len(m.Deployments) == 0 {
			v.add(path+".deployments", "at least one deployment is required")
		}
		for j, d := range m.Deployments {
			dp := fmt.Sprintf("%s.deployments[%d]", path, j)
			switch {
			case d.Provider == "":
				v.add(dp+".provider", "required%s", wantOneOf(providerNames))
			case !providers[d.Provider]:
				v.add(dp+".provider", "unknown provider %q%s", d.Provider, wantOneOf(providerNames))
			}
			if d.Model == "" {
				v.add(dp+".model", "required: the upstream's model name")
			}
			v.notNegative(dp+".weight", float64(d.Weight))
			v.notNegative(dp+".priority", float64(d.Priority))
			v.notNegative(dp+".rpm", float64(d.RPM))
			v.notNegative(dp+".tpm", float64(d.TPM))
			v.pricing(dp+".pricing", d.Pricing)
		}
		v.pricing(path+".pricing", m.Pricing)
		v.notNegative(path+".context_window", float64(m.ContextWindow))
		v.notNegative(path+".max_output_tokens", float64(m.MaxOutputTokens))
		if m.ContextWindow > 0 && m.MaxOutputTokens > m.ContextWindow {
			v.add(path+".max_output_tokens", "%d is more than context_window %d", m.MaxOutputTokens, m.ContextWindow)
		}
		for j, capName := range m.Capabilities {
			v.oneOf(fmt.Sprintf("%s.capabilities[%d]", path, j), "capability", capName, capabilityNames)
		}
		if m.Strategy != "" {
			v.oneOf(path+".strategy", "strategy", m.Strategy, routerStrategies)
		}
		v.fallbacks(path+".fallbacks", m, m.Fallbacks)
		v.fallbacks(path+".context_window_fallbacks", m, m.ContextWindowFallbacks)
		if m.Timeouts != nil {
			v.timeouts(path+".timeouts", *m.Timeouts)
		}
		v.rateLimit(path+".rate_limit", m.RateLimit)
	}
}

func (v *validator) fallbacks(path string, m ModelConfig, names []string) {
	idx := v.c.modelIndex()
	for j, name := range names {
		fp := fmt.Sprintf("%s[%d]", path, j)
		k, ok := idx[name]
		switch {
		case !ok:
			v.add(fp, "unknown model %q", name)
		case name == m.Name:
			v.add(fp, "%q falls back to itself", name)
		case v.c.Models[k].Type != m.Type:
			v.add(fp, "%q is a %s model; want a %s model like %q", name, v.c.Models[k].Type, m.Type, m.Name)
		}
	}
}

func (v *validator) router() {
	r := v.c.Router
	v.oneOf("router.strategy", "strategy", r.Strategy, routerStrategies)
	v.positive("router.max_attempts", float64(r.MaxAttempts))
	if b := r.Breaker; b.FailureRatio <= 0 || b.FailureRatio > 1 {
		v.add("router.breaker.failure_ratio", "%s is out of range; want a share in (0, 1], e.g. 0.5", strconv.FormatFloat(b.FailureRatio, 'g', -1, 64))
	}
	v.positive("router.breaker.min_requests", float64(r.Breaker.MinRequests))
	v.duration("router.breaker.window", r.Breaker.Window, true)
	v.duration("router.breaker.open_for", r.Breaker.OpenFor, true)
	v.positive("router.breaker.half_open_probes", float64(r.Breaker.HalfOpenProbes))
	v.timeouts("router.timeouts", r.Timeouts)
	v.duration("router.probe_interval", r.ProbeInterval, false)
	v.duration("router.max_cooldown", r.MaxCooldown, true)
	if r.MaxCooldown.Std() > upstream.MaxRetryAfter {
		v.add("router.max_cooldown", "%q is longer than %s; want at most \"24h\"", r.MaxCooldown.String(), upstream.MaxRetryAfter)
	}
}

func (v *validator) stores() {
	if r := v.c.Redis; r != nil {
		if u, err := url.Parse(r.URL); r.URL == "" || err != nil || !slices.Contains([]string{"redis", "rediss", "unix"}, u.Scheme) {
			v.add("redis.url", "%q is not a Redis URL; want redis://host:6379/0 or rediss://…", redactURL(r.URL))
		}
		v.oneOf("redis.on_error", "on_error", r.OnError, redisOnError)
		if !validRedisPrefix(r.Prefix) {
			v.add("redis.prefix", "%q is not a key prefix; want 1 to 64 letters, digits or \"_.:-\", such as \"llmproxy\"", r.Prefix)
		}
	}
	if db := v.c.Database.URL.Value(); db != "" {
		// The URL usually holds a password: never quote it.
		if u, err := url.Parse(db); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			v.add("database.url", "not a PostgreSQL URL (value not shown); want postgres://user:pass@host:5432/db, or empty for SQLite")
		}
	}
	v.oneOf("budget.unpriced", "unpriced policy", v.c.Budget.Unpriced, unpricedPolicies)
	v.duration("memory.retention", v.c.Memory.Retention, true)
	v.duration("memory.cleanup_every", v.c.Memory.CleanupEvery, true)
	v.notNegative("memory.max_history_tokens", float64(v.c.Memory.MaxHistoryTokens))
}

// validRedisPrefix reports whether p is 1 to 64 of [A-Za-z0-9_.:-]: no
// braces, which would change the keys' Cluster hash tags, and nothing a
// SCAN pattern treats as a wildcard.
func validRedisPrefix(p string) bool {
	if p == "" || len(p) > 64 {
		return false
	}
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_.:-", c)) {
			return false
		}
	}
	return true
}

// redactURL hides any password in a URL that is about to be quoted in an
// error. Text that does not parse is hidden whole if it might hold one.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return "[redacted]"
		}
		return s
	}
	return u.Redacted()
}
