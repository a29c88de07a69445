package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportBoundaries keeps the package graph the shape STYLE.md §1 draws:
// fiber only in cmd/proxy, database and Redis drivers only in store/, and
// router on nothing but the standard library, gobreaker and x/time/rate.
func TestImportBoundaries(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not on PATH")
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "llmproxy/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	rules := []struct {
		dep     string
		allowed func(pkg string) bool
	}{
		{"github.com/gofiber/", func(p string) bool { return p == "llmproxy/cmd/proxy" }},
		{"github.com/valyala/fasthttp", func(p string) bool { return p == "llmproxy/cmd/proxy" }},
		{"github.com/jackc/pgx", func(p string) bool { return strings.HasPrefix(p, "llmproxy/store/") }},
		{"github.com/pgvector/", func(p string) bool { return strings.HasPrefix(p, "llmproxy/store/") }},
		{"github.com/redis/go-redis", func(p string) bool { return strings.HasPrefix(p, "llmproxy/store/") }},
		{"modernc.org/sqlite", func(p string) bool { return strings.HasPrefix(p, "llmproxy/store/") }},
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pkg, imports := f[0], f[1:]
		for _, imp := range imports {
			for _, r := range rules {
				if strings.HasPrefix(imp, r.dep) && !r.allowed(pkg) {
					t.Errorf("%s imports %s; only its allowed packages may", pkg, imp)
				}
			}
			if pkg == "llmproxy/router" && strings.Contains(imp, ".") && !strings.HasPrefix(imp, "github.com/sony/gobreaker") && !strings.HasPrefix(imp, "golang.org/x/time/rate") {
				t.Errorf("llmproxy/router imports %s; router may use only the standard library, gobreaker and x/time/rate", imp)
			}
		}
	}
}
