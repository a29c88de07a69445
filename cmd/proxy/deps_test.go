package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is this module's path; internal packages are module + "/...".
const module = "llmproxy"

// importRule says which internal packages pkg may import, and, for the
// packages that own a driver or a framework, which outside modules. pkg
// and allow are paths below the module; "x/..." matches x and everything
// below it. The first rule that matches a package applies.
type importRule struct {
	pkg   string
	allow []string
	why   string
}

// domain is what STYLE.md §1 calls the domain packages: each declares the
// interfaces it needs and imports only router.
var domain = []string{"budget", "ledger", "embed/...", "rag/...", "memory/...", "vectorstore/..."}

// importRules is STYLE.md §1's table: imports point toward router; a
// store/* package may import the domain package whose interface it
// implements; domain packages never import store/*; siblings never import
// each other (cmd/proxy wires them together). embed, rag and memory may
// not exist yet: their rules apply once they land.
var importRules = []importRule{
	{"router", nil, "router is the innermost package and imports no other package of the module"},
	// telemetry is beside the request path: every stage may start spans
	// with it, and it knows only router's types (Tracer, Chunk, Error).
	{"telemetry", []string{"router"}, "telemetry imports only router: the stages import it, never the other way"},
	{"budget", []string{"router", "telemetry"}, "a domain package imports only router and telemetry: no sibling, no store/*"},
	{"ledger", []string{"router", "telemetry"}, "a domain package imports only router and telemetry: no sibling, no store/*"},
	// A package's own subpackages (embed/lexical) are part of it.
	{"embed/...", []string{"router", "telemetry", "embed/..."}, "a domain package imports only router and telemetry: no sibling, no store/*"},
	// Ingestion's parser and chunker are leaves: the standard library and
	// their own libraries (the PDF engine, the tokenizer), nothing of ours.
	{"rag/parse", nil, "rag/parse is a leaf: it imports no package of the module"},
	{"rag/chunk", nil, "rag/chunk is a leaf: it imports no package of the module"},
	{"rag/...", []string{"router", "telemetry", "rag/..."}, "a domain package imports only router and telemetry (it declares Embedder, Retriever): no sibling, no store/*"},
	{"memory/...", []string{"router", "telemetry", "memory/..."}, "a domain package imports only router and telemetry: no sibling, no store/*"},
	// vectorstore declares Storage, Embedder and Queue; cmd/proxy hands it
	// the stores, embed.Service and the river client.
	{"vectorstore/...", []string{"router", "telemetry", "vectorstore/..."}, "a domain package imports only router and telemetry: no sibling, no store/*"},
	{"store", []string{"router"}, "store holds what the stores share; it imports no domain package"},
	{"store/...", append([]string{"router", "store"}, domain...), "a store/* package may import the domain packages whose interfaces it implements and store, never another store/* or providers"},
	{"providers/sse", []string{"router"}, "providers/sse is a decoder under the adapters"},
	{"providers/upstream", []string{"router", "providers/sse"}, "providers/upstream is the adapters' shared HTTP code"},
	{"providers/providertest", []string{"router", "providers/sse", "providers/upstream"}, "providertest is the adapters' shared test kit"},
	// Azure OpenAI speaks OpenAI's wire format: the one vendor that reuses another.
	{"providers/azure", []string{"router", "providers/sse", "providers/upstream", "providers/openai"}, "an adapter imports router and the shared provider code; azure also reuses openai"},
	{"providers/*", []string{"router", "providers/sse", "providers/upstream"}, "an adapter imports router and the shared provider code, never another adapter, budget or a store"},
	{"providers", []string{"router", "providers/*"}, "the registry imports router and the adapters"},
	{"cmd/proxy", []string{"router", "telemetry", "budget", "ledger", "embed/...", "rag/...", "memory/...", "vectorstore/...", "store/...", "providers/..."}, "cmd/proxy wires everything; nothing imports it"},
	{"bench", nil, "bench drives the proxy over HTTP and imports none of its packages"},
}

// externalRules names the outside modules only some packages may import
// (prefix → allowed packages).
var externalRules = []struct {
	dep     string
	allowed []string
}{
	{"github.com/gofiber/", []string{"cmd/proxy"}},
	{"github.com/valyala/fasthttp", []string{"cmd/proxy"}},
	{"github.com/jackc/pgx", []string{"store/postgres", "store/postgres/pgtest"}},
	{"github.com/pgvector/", []string{"store/postgres"}},
	{"github.com/redis/go-redis", []string{"store/redis"}},
	{"modernc.org/sqlite", []string{"store/sqlite"}},
	{"github.com/klippa-app/go-pdfium", []string{"rag/parse"}},
	{"github.com/tetratelabs/wazero", []string{"rag/parse"}},
	// Tracing: the SDK and its exporters are set up in cmd/proxy alone;
	// the stages use telemetry, the stores only the trace API's types and
	// their library's own hook.
	{"go.opentelemetry.io/otel/sdk", []string{"cmd/proxy"}},
	{"go.opentelemetry.io/otel/exporters", []string{"cmd/proxy"}},
	{"github.com/riverqueue/rivercontrib", []string{"cmd/proxy"}},
	{"github.com/redis/go-redis/extra/redisotel", []string{"store/redis"}},
	{"github.com/exaring/otelpgx", []string{"store/postgres"}},
	{"go.opentelemetry.io/otel", []string{"telemetry", "cmd/proxy", "store/redis", "store/postgres"}},
}

// routerExternal is all router may import beyond the standard library.
var routerExternal = []string{"github.com/sony/gobreaker/", "golang.org/x/time/rate"}

// matchPkg reports whether rel (a path below the module) matches pattern:
// "x" is x itself, "x/..." is x and below, "x/*" is x's direct children.
func matchPkg(pattern, rel string) bool {
	switch {
	case strings.HasSuffix(pattern, "/..."):
		base := strings.TrimSuffix(pattern, "/...")
		return rel == base || strings.HasPrefix(rel, base+"/")
	case strings.HasSuffix(pattern, "/*"):
		base := strings.TrimSuffix(pattern, "/*")
		return strings.HasPrefix(rel, base+"/") && !strings.Contains(rel[len(base)+1:], "/")
	}
	return rel == pattern
}

// importViolations checks one package's direct imports against the rules
// and returns one message per violation.
func importViolations(pkg string, imports []string) []string {
	rel, ok := strings.CutPrefix(pkg, module+"/")
	if !ok {
		return nil
	}
	i := slices.IndexFunc(importRules, func(r importRule) bool { return matchPkg(r.pkg, rel) })
	if i < 0 {
		return []string{pkg + ": no import rule for this package; add it to importRules in cmd/proxy/deps_test.go (STYLE.md §1)"}
	}
	rule := importRules[i]
	var out []string
	for _, imp := range imports {
		if irel, internal := strings.CutPrefix(imp, module+"/"); internal {
			if !slices.ContainsFunc(rule.allow, func(p string) bool { return matchPkg(p, irel) }) {
				out = append(out, pkg+" imports "+imp+": "+rule.pkg+" may import "+allowList(rule.allow)+" ("+rule.why+"; STYLE.md §1)")
			}
			continue
		}
		for _, r := range externalRules {
			if strings.HasPrefix(imp, r.dep) && !slices.Contains(r.allowed, rel) {
				out = append(out, pkg+" imports "+imp+": only "+strings.Join(r.allowed, ", ")+" may import "+r.dep+" (STYLE.md §1)")
			}
		}
		if rel == "router" && strings.Contains(strings.Split(imp, "/")[0], ".") &&
			!slices.ContainsFunc(routerExternal, func(p string) bool { return strings.HasPrefix(imp, p) }) {
			out = append(out, pkg+" imports "+imp+": router may use only the standard library, gobreaker and x/time/rate (STYLE.md §1)")
		}
	}
	return out
}

func allowList(allow []string) string {
	if len(allow) == 0 {
		return "no package of the module"
	}
	return "only [" + strings.Join(allow, " ") + "]"
}

// TestImportBoundaries keeps the package graph the shape STYLE.md §1 draws:
// every package's direct imports (go list, production files) against
// importRules and externalRules.
func TestImportBoundaries(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not on PATH")
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		seen++
		for _, v := range importViolations(f[0], f[1:]) {
			t.Error(v)
		}
	}
	if seen < 10 {
		t.Fatalf("go list listed %d packages; want the whole module:\n%s", seen, out)
	}
}

// TestImportRulesCatchViolations feeds importViolations the wrong-way
// imports STYLE.md §1 forbids, so a rule that stopped matching fails here.
func TestImportRulesCatchViolations(t *testing.T) {
	for _, tc := range []struct {
		pkg, imp, want string
	}{
		{"llmproxy/budget", "llmproxy/ledger", "budget may import only [router telemetry]"},
		{"llmproxy/budget", "llmproxy/store/redis", "no sibling, no store/*"},
		{"llmproxy/ledger", "llmproxy/store/postgres", "ledger may import only [router telemetry]"},
		{"llmproxy/providers/openai", "llmproxy/budget", "providers/* may import only"},
		{"llmproxy/providers/openai", "llmproxy/providers/gemini", "never another adapter"},
		{"llmproxy/router", "llmproxy/budget", "router may import no package of the module"},
		{"llmproxy/router", "github.com/redis/go-redis/v9", "router may use only the standard library"},
		{"llmproxy/store/postgres", "llmproxy/store/redis", "never another store/*"},
		{"llmproxy/store/sqlite", "llmproxy/providers", "store/... may import only"},
		{"llmproxy/store/sqlite", "github.com/jackc/pgx/v5", "only store/postgres, store/postgres/pgtest may import github.com/jackc/pgx"},
		{"llmproxy/store/postgres", "github.com/redis/go-redis/v9", "only store/redis may import"},
		{"llmproxy/budget", "github.com/gofiber/fiber/v2", "only cmd/proxy may import github.com/gofiber/"},
		{"llmproxy/embed", "llmproxy/store/redis", "embed/... may import only"},
		{"llmproxy/rag", "llmproxy/embed", "rag/... may import only"},
		{"llmproxy/rag/parse", "llmproxy/rag", "rag/parse is a leaf"},
		{"llmproxy/rag/chunk", "llmproxy/budget", "rag/chunk is a leaf"},
		{"llmproxy/rag", "github.com/tetratelabs/wazero", "only rag/parse may import github.com/tetratelabs/wazero"},
		{"llmproxy/memory", "llmproxy/rag", "memory/... may import only"},
		{"llmproxy/memory/retention", "llmproxy/store/postgres", "memory/... may import only"},
		{"llmproxy/vectorstore", "llmproxy/embed", "vectorstore/... may import only"},
		{"llmproxy/vectorstore", "llmproxy/store/sqlite", "vectorstore/... may import only"},
		{"llmproxy/cmd/other", "llmproxy/router", "no import rule for this package"},
		{"llmproxy/router", "llmproxy/telemetry", "router may import no package of the module"},
		{"llmproxy/router", "go.opentelemetry.io/otel/trace", "router may use only the standard library"},
		{"llmproxy/telemetry", "llmproxy/budget", "telemetry may import only [router]"},
		{"llmproxy/budget", "go.opentelemetry.io/otel/trace", "only telemetry, cmd/proxy, store/redis, store/postgres may import go.opentelemetry.io/otel"},
		{"llmproxy/telemetry", "go.opentelemetry.io/otel/sdk/trace", "only cmd/proxy may import go.opentelemetry.io/otel/sdk"},
		{"llmproxy/store/redis", "github.com/exaring/otelpgx", "only store/postgres may import github.com/exaring/otelpgx"},
	} {
		got := strings.Join(importViolations(tc.pkg, []string{tc.imp}), "\n")
		if !strings.Contains(got, tc.want) {
			t.Errorf("importViolations(%s → %s) = %q; want a message with %q", tc.pkg, tc.imp, got, tc.want)
		}
	}
	for _, ok := range [][2]string{
		{"llmproxy/store/redis", "llmproxy/budget"}, {"llmproxy/store/postgres", "llmproxy/rag"},
		{"llmproxy/store/sqlite", "llmproxy/store"}, {"llmproxy/providers/azure", "llmproxy/providers/openai"},
		{"llmproxy/providers", "llmproxy/providers/gemini"}, {"llmproxy/cmd/proxy", "llmproxy/store/postgres"},
		{"llmproxy/embed/lexical", "llmproxy/embed"}, {"llmproxy/router", "golang.org/x/time/rate"},
		{"llmproxy/store/sqlite", "llmproxy/vectorstore"}, {"llmproxy/vectorstore/vectorstoretest", "llmproxy/vectorstore"},
		{"llmproxy/rag", "llmproxy/telemetry"}, {"llmproxy/telemetry", "go.opentelemetry.io/otel/trace"},
		{"llmproxy/store/redis", "github.com/redis/go-redis/extra/redisotel/v9"},
	} {
		if got := importViolations(ok[0], []string{ok[1]}); len(got) != 0 {
			t.Errorf("importViolations(%s → %s) = %q; want none", ok[0], ok[1], got)
		}
	}
}
