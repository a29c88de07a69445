//go:build integration

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// The proxy SIGKILLed in the middle of a 50-file batch: after a restart on
// the same database every file ends completed, with exactly the chunks a
// run without the kill gives (the reconciler queues the ingestions whose
// process died; a file's chunks are replaced in one transaction).

const killKey = "sk-kill-test"

func TestVectorStoresKillMidIngestion(t *testing.T) {
	bin := buildProxyBinary(t)
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			dbBlock := ""
			if db == "postgres" {
				dbBlock = "database:\n  url: \"" + testSchema(t, "llmproxy_vskill_") + "\"\n"
			}
			runKillTest(t, bin, dbBlock)
		})
	}
}

// buildProxyBinary builds cmd/proxy (the package under test) into a temp
// dir; the build cache makes repeated runs quick.
func buildProxyBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "llmproxy")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// slowEmbeddings is an OpenAI embeddings upstream that takes latency per
// call.
func slowEmbeddings(t *testing.T, latency time.Duration) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
		serveEmbeddings(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// proc is the proxy binary running.
type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
	done chan error
}

// startBinary runs bin with config and waits for its "listening" line.
func startBinary(t *testing.T, bin, config string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "-config", config, "-listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &proc{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.logs.Write(append(append([]byte{}, line...), '\n'))
			var l struct{ Msg, Addr string }
			if json.Unmarshal(line, &l) == nil && l.Msg == "listening" {
				select {
				case addr <- l.Addr:
				default:
				}
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case a := <-addr:
		p.url = "http://" + a
	case err := <-p.done:
		t.Fatalf("proxy exited before listening: %v\n%s", err, p.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("proxy did not listen within 30s:\n%s", p.logs.String())
	}
	return p
}

func (p *proc) client() *openai.Client {
	c := openai.NewClient(option.WithBaseURL(p.url+"/v1/"), option.WithAPIKey(killKey), option.WithMaxRetries(0))
	return &c
}

// killDocs are 50 documents of a few chunks each.
func killDocs() []string {
	docs := make([]string, 50)
	for i := range docs {
		var b strings.Builder
		for w := range 600 + 37*i {
			fmt.Fprintf(&b, "doc%d word%d ", i, w%97)
		}
		docs[i] = b.String()
	}
	return docs
}

func runKillTest(t *testing.T, bin, dbBlock string) {
	up := slowEmbeddings(t, 300*time.Millisecond)
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte(`server:
  data_dir: `+dir+`
  shutdown_delay: 0s
providers:
  - name: fake
    type: openai
    base_url: `+up.URL+`/v1
    api_key: sk-upstream
models:
  - name: emb
    type: embedding
    deployments:
      - provider: fake
        model: text-embedding-3-small
teams:
  - name: kill
    api_keys: ["`+killKey+`"]
vector_stores:
  embedding_model: emb
`+dbBlock), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := startBinary(t, bin, config)
	c := p.client()
	vs, err := c.VectorStores.New(ctx, openai.VectorStoreNewParams{Name: openai.String("killed")})
	if err != nil {
		t.Fatal(err)
	}
	ids := uploadAll(ctx, t, c, killDocs())
	batch, err := c.VectorStores.FileBatches.New(ctx, vs.ID, openai.VectorStoreFileBatchNewParams{FileIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	// Kill once some files are done and others are being ingested.
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := c.VectorStores.FileBatches.Get(ctx, vs.ID, batch.ID)
		if err != nil {
			t.Fatal(err)
		}
		if b.FileCounts.Completed >= 8 {
			if b.FileCounts.InProgress == 0 {
				t.Fatalf("the batch finished before the kill: %+v; slow the upstream", b.FileCounts)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch did not progress: %+v\n%s", b.FileCounts, p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done

	p2 := startBinary(t, bin, config)
	c = p2.client()
	b, err := c.VectorStores.FileBatches.PollStatus(ctx, vs.ID, batch.ID, 200)
	if err != nil {
		t.Fatalf("poll after restart: %v\n%s", err, p2.logs.String())
	}
	if b.Status != openai.VectorStoreFileBatchStatusCompleted || b.FileCounts.Completed != 50 || b.FileCounts.Total != 50 {
		t.Fatalf("after restart the batch is %s %+v; want 50 files completed\n%s", b.Status, b.FileCounts, p2.logs.String())
	}
	if n := metricValue(t, p2.url, "llmproxy_vector_store_requeued_total"); n < 1 {
		t.Errorf("llmproxy_vector_store_requeued_total = %v; want the ingestions that died with the process queued again", n)
	}

	// The same files in a store of their own, without a kill.
	ref, err := c.VectorStores.New(ctx, openai.VectorStoreNewParams{Name: openai.String("reference")})
	if err != nil {
		t.Fatal(err)
	}
	if rb, err := c.VectorStores.FileBatches.NewAndPoll(ctx, ref.ID, openai.VectorStoreFileBatchNewParams{FileIDs: ids}, 200); err != nil ||
		rb.FileCounts.Completed != 50 {
		t.Fatalf("reference batch = %+v, %v", rb, err)
	}
	total, want := 0, 0
	for _, id := range ids {
		got, exp := chunkCount(ctx, t, p2.url, vs.ID, id), chunkCount(ctx, t, p2.url, ref.ID, id)
		total, want = total+got, want+exp
		if got != exp {
			t.Errorf("file %s has %d chunks after the kill; %d without", id, got, exp)
		}
	}
	if total != want || want < 100 {
		t.Errorf("%d chunks after the kill, %d without; want equal (and the documents to make > 100)", total, want)
	}
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-p2.done; err != nil {
		t.Errorf("proxy exit after SIGTERM: %v", err)
	}
	if strings.Contains(p2.logs.String(), `"level":"ERROR"`) {
		t.Errorf("ERROR lines after the restart:\n%s", p2.logs.String())
	}
}

// uploadAll uploads docs, 8 at a time, and returns their ids in order.
func uploadAll(ctx context.Context, t *testing.T, c *openai.Client, docs []string) []string {
	t.Helper()
	ids := make([]string, len(docs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, d := range docs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			f, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(strings.NewReader(d), fmt.Sprintf("doc%02d.txt", i), "text/plain"),
				Purpose: openai.FilePurposeAssistants})
			if err != nil {
				t.Errorf("upload %d: %v", i, err)
				return
			}
			ids[i] = f.ID
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return ids
}

// chunkCount is how many chunks a vector-store file has, by its content
// page (one part per chunk).
func chunkCount(ctx context.Context, t *testing.T, url, vs, file string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/vector_stores/"+vs+"/files/"+file+"/content", nil)
	req.Header.Set("Authorization", "Bearer "+killKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct{ Data []struct{ Text string } }
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&page) != nil {
		t.Fatalf("content of %s in %s: %d", file, vs, resp.StatusCode)
	}
	return len(page.Data)
}

var metricLine = regexp.MustCompile(`(?m)^(\S+?)(?:\{[^}]*\})? (\S+)$`)

// metricValue sums a metric's samples at url's /metrics.
func metricValue(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, m := range metricLine.FindAllStringSubmatch(string(b), -1) {
		if m[1] == name {
			v, _ := strconv.ParseFloat(m[2], 64)
			sum += v
		}
	}
	return sum
}
