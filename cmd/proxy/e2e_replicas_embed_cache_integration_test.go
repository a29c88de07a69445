//go:build integration

package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestE2EReplicaEmbedCache: two replicas share the embeddings cache in
// Redis. 1,000 distinct texts through replica 1 fill it (coalesced); the
// same 1,000 through replica 2 make no upstream call and are all hits,
// with the upstream's own vectors.
func TestE2EReplicaEmbedCache(t *testing.T) {
	st := mustSharedStores(t)
	up := newFakeUpstream(t)
	up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) { serveTextEmbeddings(w, body) })
	reps := startReplicas(t, st, 2, up, nil, func(c *Config) {
		c.Models = append(c.Models, ModelConfig{Name: "emb", Type: "embedding",
			Deployments: []DeploymentConfig{{Provider: "a", Model: upstreamEmbed, Weight: 1}}})
		d := Duration(time.Second) // the longest allowed: batches fill even when arrivals trickle in under load
		c.Embeddings.Batch.MaxWait = &d
	})
	texts := make([]string, 1000)
	for i := range texts {
		texts[i] = fmt.Sprintf("replica document %d", i)
	}
	// 256 connections at most, closed after each round: a thousand idle
	// keep-alive connections slow the replicas' drain under -race.
	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 256, MaxIdleConnsPerHost: 256}}
	defer hc.CloseIdleConnections()
	for i, want := range []string{"miss", "hit"} {
		c := reps[i].client(option.WithHTTPClient(hc))
		got := embedAll(&c, texts, openai.EmbeddingNewParamsEncodingFormatFloat)
		bad := 0
		for j, g := range got {
			if g.err != nil || g.cache != want || g.raw != upstreamFloat(textVector(texts[j])) {
				t.Errorf("replica %d text %d: %q %v; want %s with the upstream's vector", i+1, j, g.cache, g.err, want)
				if bad++; bad > 5 {
					t.FailNow()
				}
			}
		}
		hc.CloseIdleConnections()
		t.Logf("after replica %d: %d upstream calls", i+1, up.count())
	}
	if n := up.count(); n > 1000/128*2 {
		t.Errorf("upstream got %d calls; want at most %d, all from replica 1", n, 1000/128*2)
	}
}
