//go:build integration

package redis

import (
	"bytes"
	"context"
	"testing"
	"time"

	"llmproxy/embed"
)

// TestEmbedCache: values written by one replica's pipeline come back from
// another's MGET, byte for byte, misses as nil, with the ttl set.
func TestEmbedCache(t *testing.T) {
	url, prefix := mustRedis(t)
	open := func() *EmbedCache {
		c, err := New(Options{URL: url, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.EmbedCache()
	}
	a, b := open(), open()
	ctx := context.Background()
	val := []byte{3, 0, 0, 0, 0x00, 0x00, 0x80, 0x3f, 0xff, 0xff, 0x7f, 0x7f} // binary, with zero bytes
	if err := a.SetMulti(ctx, []embed.Item{{Key: "k1", Value: val}, {Key: "k2", Value: []byte{1, 2, 3, 4}}}, time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := b.GetMulti(ctx, []string{"k2", "missing", "k1"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[0], []byte{1, 2, 3, 4}) || got[1] != nil || !bytes.Equal(got[2], val) {
		t.Fatalf("GetMulti = %v; want k2's value, nil, k1's value", got)
	}
	ttl, err := b.c.rdb.TTL(ctx, b.c.key("emb", "k1")).Result()
	if err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("ttl = %v (%v); want about 1h", ttl, err)
	}
}
