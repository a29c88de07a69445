package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"

	"llmproxy/store/sqlite"
)

// Files and vector stores end to end (issue 11), driven by the official Go
// SDK: upload, uploadAndPoll, search with and without a filter, delete.
// The demo provider's embeddings are lexical (hashed words), so a query
// that shares words with a chunk finds it.

// teamKeyOther belongs to a third team that owns nothing of the default
// team's.
const teamKeyOther = "sk-other-team"

// vectorConfig is e2eConfig with vector stores on demo-embed, uploads of
// up to 200000 bytes (more than server.max_body_bytes), a team that may
// not embed, and another team; server and extra as for memoryConfig.
func vectorConfig(server, extra string) string {
	return memoryConfig(server, extra) + `
vector_stores:
  embedding_model: demo-embed
  max_file_bytes: 200000
`
}

const vectorTeams = `
  - name: other
    api_keys: ["` + teamKeyOther + `"]
`

// withOtherTeam adds the other team to config's teams list.
func withOtherTeam(config string) string {
	return strings.Replace(config, "    models: [demo-chat]\n", "    models: [demo-chat]\n"+vectorTeams, 1)
}

var docs = map[string]string{
	"cats.txt":    "Cats are small carnivorous mammals. The domestic cat purrs, sleeps all day and chases mice at night.",
	"rockets.txt": "A rocket engine burns propellant to produce thrust. Orbital launch vehicles stack several rocket stages.",
	"bread.md":    "# Sourdough\n\nSourdough bread rises with a wild yeast starter and needs a long, slow fermentation.",
}

func docParams() []openai.FileNewParams {
	var out []openai.FileNewParams
	for _, name := range []string{"cats.txt", "rockets.txt", "bread.md"} {
		out = append(out, openai.FileNewParams{File: openai.File(strings.NewReader(docs[name]), name, "text/plain"),
			Purpose: openai.FilePurposeAssistants})
	}
	return out
}

func TestVectorStoresE2ESQLite(t *testing.T) {
	dir := t.TempDir()
	e := startE2EWith(t, withOtherTeam(vectorConfig("  data_dir: "+dir+"\n", "")))
	runVectorStoresE2E(t, e)
	if err := e.stop(5 * time.Second); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	routes := ledgerRoutesSQLite(t, filepath.Join(dir, sqlite.FileName))
	if routes["ingest"] < 1 || routes["search"] < 1 {
		t.Errorf("ledger routes = %v; want ingest and search rows (the embeddings charged to the team)", routes)
	}
}

// runVectorStoresE2E is the SDK walk-through both databases pass.
func runVectorStoresE2E(t *testing.T, e *e2e) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := e.client()
	vs, err := c.VectorStores.New(ctx, openai.VectorStoreNewParams{Name: openai.String("docs"),
		Metadata: shared.Metadata{"project": "e2e"}})
	if err != nil {
		t.Fatalf("vectorStores.create: %v", err)
	}
	if !strings.HasPrefix(vs.ID, "vs_") || vs.Name != "docs" || vs.Status != openai.VectorStoreStatusCompleted {
		t.Fatalf("vector store = %+v", vs)
	}
	batch, err := c.VectorStores.FileBatches.UploadAndPoll(ctx, vs.ID, docParams(), nil, 0)
	if err != nil {
		t.Fatalf("fileBatches.uploadAndPoll: %v", err)
	}
	if batch.Status != openai.VectorStoreFileBatchStatusCompleted || batch.FileCounts.Completed != 3 || batch.FileCounts.Total != 3 {
		t.Fatalf("batch = %s %+v; want completed with 3 files", batch.Status, batch.FileCounts)
	}
	got, err := c.VectorStores.Get(ctx, vs.ID)
	if err != nil || got.FileCounts.Completed != 3 || got.Status != openai.VectorStoreStatusCompleted || got.UsageBytes <= 0 {
		t.Fatalf("vectorStores.retrieve = %+v, %v; want 3 completed files and usage", got, err)
	}

	page, err := c.VectorStores.Search(ctx, vs.ID, openai.VectorStoreSearchParams{
		Query:         openai.VectorStoreSearchParamsQueryUnion{OfString: openai.String("how does a rocket produce thrust")},
		MaxNumResults: openai.Int(2),
	})
	if err != nil {
		t.Fatalf("vectorStores.search: %v", err)
	}
	if len(page.Data) == 0 || page.Data[0].Filename != "rockets.txt" || page.Data[0].Score <= 0 || page.Data[0].Score > 1 ||
		len(page.Data[0].Content) != 1 || !strings.Contains(page.Data[0].Content[0].Text, "thrust") || len(page.Data) > 2 {
		t.Fatalf("search results = %+v; want rockets.txt first, score in (0, 1], at most 2", page.Data)
	}
	rocketID := page.Data[0].FileID

	// Attributes and a filter: only the file tagged space remains.
	if _, err := c.VectorStores.Files.Update(ctx, vs.ID, rocketID, openai.VectorStoreFileUpdateParams{
		Attributes: map[string]openai.VectorStoreFileUpdateParamsAttributeUnion{"topic": {OfString: openai.String("space")}},
	}); err != nil {
		t.Fatalf("vectorStores.files.update: %v", err)
	}
	page, err = c.VectorStores.Search(ctx, vs.ID, openai.VectorStoreSearchParams{
		Query: openai.VectorStoreSearchParamsQueryUnion{OfString: openai.String("cats mammals bread rocket")},
		Filters: openai.VectorStoreSearchParamsFiltersUnion{OfComparisonFilter: &shared.ComparisonFilterParam{
			Key: "topic", Type: shared.ComparisonFilterTypeEq, Value: shared.ComparisonFilterValueUnionParam{OfString: openai.String("space")}}},
	})
	if err != nil || len(page.Data) != 1 || page.Data[0].FileID != rocketID || page.Data[0].Attributes["topic"].OfString != "space" {
		t.Fatalf("filtered search = %+v, %v; want the rocket file only, with its attribute", page.Data, err)
	}

	// Lists paginate: after, has_more.
	files, err := c.VectorStores.Files.List(ctx, vs.ID, openai.VectorStoreFileListParams{Limit: openai.Int(2)})
	if err != nil || len(files.Data) != 2 || !files.HasMore {
		t.Fatalf("vectorStores.files.list limit 2 = %d, has_more %v, %v", len(files.Data), files.HasMore, err)
	}
	rest, err := c.VectorStores.Files.List(ctx, vs.ID, openai.VectorStoreFileListParams{After: openai.String(files.Data[1].ID)})
	if err != nil || len(rest.Data) != 1 || rest.HasMore {
		t.Fatalf("vectorStores.files.list after = %d, has_more %v, %v; want the last one", len(rest.Data), rest.HasMore, err)
	}
	content, err := c.Files.Content(ctx, rocketID)
	if err != nil {
		t.Fatalf("files.content: %v", err)
	}
	b, _ := io.ReadAll(content.Body)
	content.Body.Close()
	if string(b) != docs["rockets.txt"] {
		t.Errorf("files.content = %q; want the upload", b)
	}

	// Deleting the file takes its chunks out of the store.
	del, err := c.Files.Delete(ctx, rocketID)
	if err != nil || !del.Deleted || del.ID != rocketID {
		t.Fatalf("files.delete = %+v, %v", del, err)
	}
	page, err = c.VectorStores.Search(ctx, vs.ID, openai.VectorStoreSearchParams{
		Query: openai.VectorStoreSearchParamsQueryUnion{OfString: openai.String("rocket thrust")}})
	if err != nil {
		t.Fatalf("search after delete: %v", err)
	}
	for _, r := range page.Data {
		if r.FileID == rocketID {
			t.Errorf("search after files.delete still finds %s", rocketID)
		}
	}
	if got, err := c.VectorStores.Get(ctx, vs.ID); err != nil || got.FileCounts.Total != 2 {
		t.Errorf("file counts after delete = %+v, %v; want 2 files", got.FileCounts, err)
	}
	if _, err := c.Files.Get(ctx, rocketID); !isStatus(err, http.StatusNotFound) {
		t.Errorf("files.retrieve after delete: %v; want 404", err)
	}

	// Uploads have their own cap: above server.max_body_bytes is fine,
	// above vector_stores.max_file_bytes is 413.
	big := bytes.Repeat([]byte("word "), 30000) // 150000 bytes
	if f, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(bytes.NewReader(big), "big.txt", "text/plain"),
		Purpose: openai.FilePurposeAssistants}); err != nil || f.Bytes != int64(len(big)) {
		t.Errorf("upload of %d bytes = %+v, %v; want it stored", len(big), f, err)
	}
	huge := bytes.Repeat([]byte("x"), 250000)
	_, err = e.noRetry().Files.New(ctx, openai.FileNewParams{File: openai.File(bytes.NewReader(huge), "huge.txt", "text/plain"),
		Purpose: openai.FilePurposeAssistants})
	if !isStatus(err, http.StatusRequestEntityTooLarge) {
		t.Errorf("upload over max_file_bytes: %v; want 413", err)
	}
	if _, err := c.VectorStores.Delete(ctx, vs.ID); err != nil {
		t.Errorf("vectorStores.delete: %v", err)
	}
}

func isStatus(err error, status int) bool {
	var ae *openai.Error
	return errors.As(err, &ae) && ae.StatusCode == status
}

// ledgerRoutesSQLite counts the usage ledger's rows by route.
func ledgerRoutesSQLite(t *testing.T, path string) map[string]int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT route, count(*) FROM usage_ledger GROUP BY route`)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var r string
		var n int
		if err := rows.Scan(&r, &n); err != nil {
			t.Fatal(err)
		}
		out[r] = n
	}
	return out
}
