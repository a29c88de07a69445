package main

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// upload posts a multipart file with key and returns the status and body.
func (e *e2e) upload(key, name, purpose string, data []byte) (int, []byte) {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if purpose != "" {
		_ = mw.WriteField("purpose", purpose)
	}
	if name != "" {
		fw, _ := mw.CreateFormFile("file", name)
		fw.Write(data)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", e.url+"/v1/files", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("upload: %v", err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp.StatusCode, out.Bytes()
}

// TestVectorStoresIsolation: every route answers another team's key with
// 404 (in OpenAI's shape), search included, and lists show it nothing.
func TestVectorStoresIsolation(t *testing.T) {
	e := startE2EWith(t, withOtherTeam(vectorConfig("", "")))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := e.client()
	vs, err := c.VectorStores.New(ctx, openai.VectorStoreNewParams{Name: openai.String("secret")})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.VectorStores.FileBatches.UploadAndPoll(ctx, vs.ID, docParams(), nil, 0)
	if err != nil || batch.FileCounts.Completed != 3 {
		t.Fatalf("uploadAndPoll = %+v, %v", batch, err)
	}
	files, err := c.VectorStores.Files.List(ctx, vs.ID, openai.VectorStoreFileListParams{})
	if err != nil || len(files.Data) == 0 {
		t.Fatal(err)
	}
	fid := files.Data[0].ID
	status, body := e.upload(teamKeyOther, "mine.txt", "assistants", []byte("my own words"))
	var own struct{ ID string }
	if status != 200 || json.Unmarshal(body, &own) != nil {
		t.Fatalf("other team's upload = %d %s", status, body)
	}
	resp, body := e.do("POST", "/v1/vector_stores", `{"name":"mine"}`, authHeader(teamKeyOther))
	var ownVS struct{ ID string }
	if resp.StatusCode != 200 || json.Unmarshal(body, &ownVS) != nil {
		t.Fatalf("other team's store = %d %s", resp.StatusCode, body)
	}
	base := "/v1/vector_stores/" + vs.ID
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v1/files/" + fid, ""},
		{"GET", "/v1/files/" + fid + "/content", ""},
		{"DELETE", "/v1/files/" + fid, ""},
		{"GET", base, ""},
		{"POST", base, `{"name":"taken"}`},
		{"DELETE", base, ""},
		{"POST", base + "/search", `{"query":"rocket thrust"}`},
		{"POST", base + "/files", `{"file_id":"` + own.ID + `"}`},
		{"GET", base + "/files", ""},
		{"GET", base + "/files/" + fid, ""},
		{"POST", base + "/files/" + fid, `{"attributes":{"a":"b"}}`},
		{"DELETE", base + "/files/" + fid, ""},
		{"GET", base + "/files/" + fid + "/content", ""},
		{"POST", base + "/file_batches", `{"file_ids":["` + own.ID + `"]}`},
		{"GET", base + "/file_batches/" + batch.ID, ""},
		{"POST", base + "/file_batches/" + batch.ID + "/cancel", ""},
		{"GET", base + "/file_batches/" + batch.ID + "/files", ""},
		// Its own store cannot take the other team's file.
		{"POST", "/v1/vector_stores/" + ownVS.ID + "/files", `{"file_id":"` + fid + `"}`},
		{"POST", "/v1/vector_stores/" + ownVS.ID + "/file_batches", `{"file_ids":["` + fid + `"]}`},
	} {
		resp, body := e.do(r.method, r.path, r.body, authHeader(teamKeyOther))
		var eb struct {
			Error struct{ Type, Message string } `json:"error"`
		}
		if resp.StatusCode != 404 || json.Unmarshal(body, &eb) != nil || eb.Error.Type != "invalid_request_error" || eb.Error.Message == "" {
			t.Errorf("%s %s by another team = %d %s; want 404 in OpenAI's shape", r.method, r.path, resp.StatusCode, body)
		}
	}
	for _, path := range []string{"/v1/files", "/v1/vector_stores"} {
		resp, body := e.do("GET", path, "", authHeader(teamKeyOther))
		var list struct{ Data []struct{ ID string } }
		if resp.StatusCode != 200 || json.Unmarshal(body, &list) != nil || len(list.Data) != 1 {
			t.Errorf("GET %s by another team = %d %s; want its own one object", path, resp.StatusCode, body)
		}
	}
	// The owner still has everything.
	if got, err := c.VectorStores.Get(ctx, vs.ID); err != nil || got.FileCounts.Completed != 3 {
		t.Errorf("owner's store after the other team tried = %+v, %v", got, err)
	}
}

// TestVectorStoresBudget: a team whose budget cannot pay for embeddings
// gets its files failed with rate_limit_exceeded and its searches 429
// insufficient_quota in OpenAI's shape; the Files API itself needs no
// budget.
func TestVectorStoresBudget(t *testing.T) {
	const poorKey = "sk-poor-team"
	config := strings.Replace(vectorConfig("", ""), "    models: [demo-chat]\n",
		"    models: [demo-chat]\n  - name: poor\n    api_keys: [\""+poorKey+"\"]\n    budget: {tokens: 5, period: month}\n", 1)
	e := startE2EWith(t, config)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := e.client(option.WithAPIKey(poorKey))
	vs, err := c.VectorStores.New(ctx, openai.VectorStoreNewParams{Name: openai.String("poor")})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.VectorStores.FileBatches.UploadAndPoll(ctx, vs.ID, docParams()[:1], nil, 0)
	if err != nil {
		t.Fatalf("uploadAndPoll: %v", err)
	}
	if batch.Status != openai.VectorStoreFileBatchStatusFailed || batch.FileCounts.Failed != 1 {
		t.Fatalf("batch = %s %+v; want the file failed", batch.Status, batch.FileCounts)
	}
	files, err := c.VectorStores.Files.List(ctx, vs.ID, openai.VectorStoreFileListParams{Filter: openai.VectorStoreFileListParamsFilterFailed})
	if err != nil || len(files.Data) != 1 {
		t.Fatalf("failed files = %v, %v", files, err)
	}
	if le := files.Data[0].LastError; le.Code != "rate_limit_exceeded" || !strings.Contains(le.Message, "budget") {
		t.Errorf("last_error = %+v; want rate_limit_exceeded naming the budget", le)
	}
	resp, body := e.do("POST", "/v1/vector_stores/"+vs.ID+"/search", `{"query":"alpha beta gamma delta epsilon zeta eta theta"}`, authHeader(poorKey))
	var eb struct {
		Error struct{ Type, Message string } `json:"error"`
	}
	if resp.StatusCode != 429 || json.Unmarshal(body, &eb) != nil || eb.Error.Type != "insufficient_quota" ||
		resp.Header.Get("x-should-retry") != "false" {
		t.Errorf("search over budget = %d %s (x-should-retry %q); want 429 insufficient_quota", resp.StatusCode, body, resp.Header.Get("x-should-retry"))
	}
}

// TestFilesUploadErrors: a malformed upload is refused in OpenAI's shape,
// and a body is not read before the key is checked.
func TestFilesUploadErrors(t *testing.T) {
	e := startE2EWith(t, vectorConfig("", ""))
	for _, tc := range []struct {
		name, key, file, purpose string
		status                   int
		want                     string
	}{
		{"no key", "nope", "a.txt", "assistants", 401, "Incorrect API key"},
		{"no purpose", teamKeyDefault, "a.txt", "", 400, "'purpose'"},
		{"bad purpose", teamKeyDefault, "a.txt", "chat", 400, "Invalid 'purpose'"},
		{"no file", teamKeyDefault, "", "assistants", 400, "'file'"},
		{"slash in name", teamKeyDefault, "../../etc/passwd", "assistants", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.upload(tc.key, tc.file, tc.purpose, []byte("hello"))
			if status != tc.status || !strings.Contains(string(body), tc.want) {
				t.Errorf("upload = %d %s; want %d with %q", status, body, tc.status, tc.want)
			}
		})
	}
	resp, body := e.do("POST", "/v1/files", `{"file":"x"}`, authHeader(teamKeyDefault))
	if resp.StatusCode != 415 || !strings.Contains(string(body), "multipart/form-data") {
		t.Errorf("JSON upload = %d %s; want 415", resp.StatusCode, body)
	}
	resp, body = e.do("GET", "/v1/files?limit=0", "", authHeader(teamKeyDefault))
	if resp.StatusCode != 400 || !strings.Contains(string(body), "'limit'") {
		t.Errorf("limit=0 = %d %s; want 400", resp.StatusCode, body)
	}
	resp, body = e.do("POST", "/v1/vector_stores", `{"embedding_model":"demo-chat"}`, authHeader(teamKeyDefault))
	if resp.StatusCode != 400 || !strings.Contains(string(body), "not an embedding model") {
		t.Errorf("store with a chat model = %d %s; want 400", resp.StatusCode, body)
	}
	resp, body = e.do("POST", "/v1/vector_stores", `{"name":"x"}`, authHeader(teamKeyLimited))
	if resp.StatusCode != 403 || !strings.Contains(string(body), "may not use") {
		t.Errorf("store by a team without demo-embed = %d %s; want 403", resp.StatusCode, body)
	}
	resp, body = e.do("POST", "/v1/vector_stores", `{"chunking_strategy":{"type":"static","static":{"max_chunk_size_tokens":50,"chunk_overlap_tokens":0}}}`, authHeader(teamKeyDefault))
	if resp.StatusCode != 400 || !strings.Contains(string(body), "chunking_strategy") {
		t.Errorf("static chunking of 50 tokens = %d %s; want 400", resp.StatusCode, body)
	}
	for _, q := range []string{`{"query":""}`, `{"query":"x","max_num_results":51}`, `{"query":"x","filters":{"type":"like","key":"a","value":1}}`} {
		resp, body := e.do("POST", "/v1/vector_stores/vs_nope/search", q, authHeader(teamKeyDefault))
		if resp.StatusCode != 400 {
			t.Errorf("search %s = %d %s; want 400", q, resp.StatusCode, body)
		}
	}
	if resp, body := e.do("POST", "/v1/vector_stores/vs_nope/search", `{"query":"x"}`, authHeader(teamKeyDefault)); resp.StatusCode != 404 {
		t.Errorf("search of an unknown store = %d %s; want 404", resp.StatusCode, body)
	}
}

// TestVectorStoresBadFiles: a corrupt PDF and an unsupported binary end
// failed with a clear last_error while the other files of the batch
// complete, and the batch and store say so.
func TestVectorStoresBadFiles(t *testing.T) {
	e := startE2EWith(t, vectorConfig("", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := e.client()
	vs, err := c.VectorStores.New(ctx, openai.VectorStoreNewParams{Name: openai.String("mixed")})
	if err != nil {
		t.Fatal(err)
	}
	bin := make([]byte, 4096)
	for i := range bin {
		bin[i] = byte(i*7 + i/13)
	}
	files := append(docParams(),
		openai.FileNewParams{File: openai.File(strings.NewReader("%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\ngarbage"), "broken.pdf", "application/pdf"),
			Purpose: openai.FilePurposeAssistants},
		openai.FileNewParams{File: openai.File(bytes.NewReader(bin), "blob.bin", "application/octet-stream"), Purpose: openai.FilePurposeAssistants})
	batch, err := c.VectorStores.FileBatches.UploadAndPoll(ctx, vs.ID, files, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if batch.Status != openai.VectorStoreFileBatchStatusCompleted || batch.FileCounts.Completed != 3 || batch.FileCounts.Failed != 2 {
		t.Fatalf("batch = %s %+v; want completed with 3 completed and 2 failed", batch.Status, batch.FileCounts)
	}
	failed, err := c.VectorStores.FileBatches.ListFiles(ctx, vs.ID, batch.ID, openai.VectorStoreFileBatchListFilesParams{Filter: "failed"})
	if err != nil || len(failed.Data) != 2 {
		t.Fatalf("failed files = %v, %v", failed, err)
	}
	codes := map[string]string{}
	for _, f := range failed.Data {
		got, err := c.Files.Get(ctx, f.ID)
		if err != nil {
			t.Fatal(err)
		}
		if f.LastError.Message == "" {
			t.Errorf("%s failed without a message", got.Filename)
		}
		codes[got.Filename] = string(f.LastError.Code)
	}
	if codes["broken.pdf"] != "invalid_file" || codes["blob.bin"] != "unsupported_file" {
		t.Errorf("last_error codes = %v; want broken.pdf invalid_file, blob.bin unsupported_file", codes)
	}
	if got, err := c.VectorStores.Get(ctx, vs.ID); err != nil || got.FileCounts.Failed != 2 || got.FileCounts.Completed != 3 ||
		got.Status != openai.VectorStoreStatusCompleted {
		t.Errorf("store = %s %+v, %v", got.Status, got.FileCounts, err)
	}
}

// TestVectorStoresCancelBatch: cancelling a batch whose embeddings are
// still on their way ends its files cancelled at once; the jobs notice at
// their next heartbeat, cancel their upstream calls and store nothing.
func TestVectorStoresCancelBatch(t *testing.T) {
	config := strings.Replace(vectorConfig("", ""), "embedding_model: demo-embed", "embedding_model: embed-test", 1)
	e := startE2EWith(t, config)
	var waiting, cancelled atomic.Int64
	e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		waiting.Add(1)
		<-r.Context().Done() // never answers: only a cancel ends the call
		cancelled.Add(1)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := e.client()
	vs, err := c.VectorStores.New(ctx, openai.VectorStoreNewParams{Name: openai.String("cancel")})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range docParams() {
		f, err := c.Files.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, f.ID)
	}
	batch, err := c.VectorStores.FileBatches.New(ctx, vs.ID, openai.VectorStoreFileBatchNewParams{FileIDs: ids})
	if err != nil || batch.Status != openai.VectorStoreFileBatchStatusInProgress {
		t.Fatalf("batch = %+v, %v; want in_progress", batch, err)
	}
	waitFor(t, 10*time.Second, "an embedding call waiting upstream", func() bool { return waiting.Load() > 0 })
	got, err := c.VectorStores.FileBatches.Cancel(ctx, vs.ID, batch.ID)
	if err != nil || got.Status != openai.VectorStoreFileBatchStatusCancelled || got.FileCounts.Cancelled != 3 || got.FileCounts.InProgress != 0 {
		t.Fatalf("cancel = %s %+v, %v; want cancelled with 3 files cancelled", got.Status, got.FileCounts, err)
	}
	waitFor(t, 15*time.Second, "the jobs to cancel their upstream calls", func() bool {
		return cancelled.Load() == waiting.Load()
	})
	st, err := c.VectorStores.Get(ctx, vs.ID)
	if err != nil || st.FileCounts.Cancelled != 3 || st.FileCounts.Completed != 0 || st.Status != openai.VectorStoreStatusCompleted {
		t.Fatalf("store after cancel = %+v, %v; want 3 cancelled files and nothing else", st, err)
	}
	for _, id := range ids {
		resp, body := e.do("GET", "/v1/vector_stores/"+vs.ID+"/files/"+id+"/content", "", authHeader(teamKeyDefault))
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"data":[]`) {
			t.Errorf("content of cancelled %s = %d %s; want no chunks", id, resp.StatusCode, body)
		}
	}
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
