package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// dashboardPath is the Grafana dashboard shipped for operators.
const dashboardPath = "../../deploy/grafana/llmproxy.json"

// dashboardConfig turns on every subsystem that registers metrics: a
// budget (the guard's), memory, the embeddings service, the ledger.
const dashboardConfig = `
server: {listen: 127.0.0.1:0}
providers:
  - {name: demo, type: demo}
models:
  - name: demo-chat
    deployments: [{provider: demo, model: demo-chat}]
  - name: demo-embed
    type: embedding
    deployments: [{provider: demo, model: demo-embed}]
teams:
  - name: t
    api_keys: [sk-dashboard]
    budget: {usd: 1, period: day}
`

// TestDashboardMetrics reads every PromQL expression of the Grafana
// dashboard and checks each metric it names against the registry of a
// proxy built with every subsystem on: a dashboard panel over a metric
// that was renamed or never existed fails here, not in front of an
// operator. A name is registered when the registry refuses a second
// collector of that name (the registry lists no descriptors, and a vector
// with no series yet gathers nothing).
func TestDashboardMetrics(t *testing.T) {
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var dash dashboard
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	exprs := dash.exprs()
	if len(exprs) < 20 {
		t.Fatalf("%s has %d expressions; want the whole dashboard", dashboardPath, len(exprs))
	}
	reg := prometheus.NewRegistry()
	cfg := parseTestConfig(t, dashboardConfig, nil)
	cfg.Server.DataDir = t.TempDir()
	srv, err := buildServer(cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), reg, deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(0) })
	known := map[string]bool{}
	for _, e := range exprs {
		names, err := promqlMetrics(e.expr)
		if err != nil {
			t.Errorf("panel %q: %v in %s", e.panel, err, e.expr)
			continue
		}
		if len(names) == 0 {
			t.Errorf("panel %q: expression names no metric: %s", e.panel, e.expr)
		}
		for _, n := range names {
			base := histogramBase(n)
			ok, seen := known[base]
			if !seen {
				ok = registered(reg, base)
				known[base] = ok
			}
			if !ok {
				t.Errorf("panel %q: %s is not a metric the proxy exports (expression %s)", e.panel, n, e.expr)
			}
		}
	}
	if !registered(reg, "llmproxy_requests_total") || registered(reg, "llmproxy_no_such_metric_total") {
		t.Fatal("registered() cannot tell a registered metric from an unknown one")
	}
}

// dashboard is the part of a Grafana dashboard that holds queries.
type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // a collapsed row's
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

type panelExpr struct{ panel, expr string }

// exprs lists every target expression, rows' panels included, and the
// label_values() queries of the variables.
func (d *dashboard) exprs() []panelExpr {
	var out []panelExpr
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, panelExpr{p.Title, tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(string); ok && v.Type == "query" {
			q = strings.TrimSuffix(strings.TrimPrefix(q, "label_values("), ")")
			q, _, _ = strings.Cut(q, ",")
			out = append(out, panelExpr{"variable " + v.Name, q})
		}
	}
	return out
}

// registered reports whether reg has a metric named name.
func registered(reg *prometheus.Registry, name string) bool {
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "dashboard test probe"})
	err := reg.Register(probe)
	if err == nil {
		reg.Unregister(probe)
		return false
	}
	var already prometheus.AlreadyRegisteredError
	return !errors.As(err, &already) || already.ExistingCollector != nil
}

// histogramBase maps a histogram's series (_bucket, _sum, _count) to the
// histogram's name.
func histogramBase(n string) string {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(n, suf); ok && !strings.HasSuffix(b, "_total") {
			return b
		}
	}
	return n
}

// promqlFuncs are the functions and aggregations the dashboard may use.
var promqlFuncs = []string{"rate", "increase", "irate", "delta", "sum", "max", "min", "avg", "count", "topk", "bottomk",
	"histogram_quantile", "clamp_min", "clamp_max", "abs", "label_values", "time", "vector", "scalar"}

// promqlWords are PromQL's keywords: not metric names.
var promqlWords = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}

// promqlMetrics returns the metric names an expression selects. It is a
// small PromQL lexer: strings, label matchers ({...}), ranges ([...]) and
// the label lists of by/without/on/ignoring are skipped; an identifier
// followed by "(" must be a known function; any other identifier is a
// metric name. Unbalanced brackets and unknown functions are errors.
func promqlMetrics(expr string) ([]string, error) {
	var names []string
	var stack []byte
	skipLabels := false // the next "(" opens a label list
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(expr, i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '{' || c == '[':
			end := map[byte]byte{'{': '}', '[': ']'}[c]
			j := i + 1
			for j < len(expr) && expr[j] != end {
				if q := expr[j]; q == '"' || q == '\'' || q == '`' {
					k, err := skipString(expr, j)
					if err != nil {
						return nil, err
					}
					j = k
					continue
				}
				j++
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unclosed %q", c)
			}
			i = j + 1
		case c == '(':
			if skipLabels {
				j := strings.IndexByte(expr[i:], ')')
				if j < 0 {
					return nil, errors.New("unclosed label list")
				}
				i += j + 1
				skipLabels = false
				continue
			}
			stack = append(stack, c)
			i++
		case c == ')':
			if len(stack) == 0 {
				return nil, errors.New("unbalanced )")
			}
			stack = stack[:len(stack)-1]
			i++
		case c >= '0' && c <= '9': // a number: 0.95, 3600, 1e-9
			i++
			for i < len(expr) && (expr[i] >= '0' && expr[i] <= '9' || expr[i] == '.') {
				i++
			}
			if i < len(expr) && expr[i]|0x20 == 'e' {
				i++
				if i < len(expr) && (expr[i] == '-' || expr[i] == '+') {
					i++
				}
				for i < len(expr) && expr[i] >= '0' && expr[i] <= '9' {
					i++
				}
			}
		case c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z'):
			j := i
			for j < len(expr) && (expr[j] == '_' || expr[j] == ':' || (expr[j]|0x20 >= 'a' && expr[j]|0x20 <= 'z') || (expr[j] >= '0' && expr[j] <= '9')) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && expr[k] == ' ' {
				k++
			}
			switch {
			case slices.Contains(promqlFuncs, word): // sum(...) or sum by (...) (...)
			case slices.Contains(promqlWords, word):
				skipLabels = word != "and" && word != "or" && word != "unless" && word != "bool" && word != "offset"
			case k < len(expr) && expr[k] == '(':
				return nil, fmt.Errorf("unknown function %s", word)
			default:
				names = append(names, word)
			}
			i = j
		default:
			i++
		}
	}
	if len(stack) > 0 {
		return nil, errors.New("unbalanced (")
	}
	return names, nil
}

// skipString returns the index after the quoted string at expr[i].
func skipString(expr string, i int) (int, error) {
	q := expr[i]
	j := i + 1
	for j < len(expr) && expr[j] != q {
		if expr[j] == '\\' {
			j++
		}
		j++
	}
	if j >= len(expr) {
		return 0, errors.New("unterminated string")
	}
	return j + 1, nil
}

// TestPromQLMetrics pins the lexer the dashboard test relies on.
func TestPromQLMetrics(t *testing.T) {
	for _, tc := range []struct{ expr, want, err string }{
		{`sum by (route) (rate(llmproxy_requests_total{outcome!="ok"}[5m]))`, "llmproxy_requests_total", ""},
		{`histogram_quantile(0.95, sum by (le) (rate(a_bucket[$__rate_interval]))) / b`, "a_bucket b", ""},
		{`sum(rate(x[1m])) * 3600 / clamp_min(y, 1e-9)`, "x y", ""},
		{`max by (deployment) (llmproxy_breaker_state)`, "llmproxy_breaker_state", ""},
		{`sum(rate(x[1m])`, "", "unbalanced ("},
		{`summ(x)`, "", "unknown function summ"},
		{`x{a="}`, "", "unterminated string"},
	} {
		got, err := promqlMetrics(tc.expr)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("promqlMetrics(%s) error = %v; want %q", tc.expr, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("promqlMetrics(%s) = %v, %v; want %s", tc.expr, got, err, tc.want)
		}
	}
}
