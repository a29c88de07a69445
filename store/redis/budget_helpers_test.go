//go:build integration

package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// budgetRedisURL is the shared Redis the integration tests use (database 15).
func budgetRedisURL() string {
	if u := os.Getenv("LLMPROXY_TEST_REDIS"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/15"
}

// mustBudgetRedis connects with a fresh key prefix and deletes every key under
// it when the test ends. Without Redis the test skips, or fails under CI.
func mustBudgetRedis(tb testing.TB) *Client {
	tb.Helper()
	return mustBudgetRedisURL(tb, budgetRedisURL(), budgetPrefix())
}

func budgetPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

func mustBudgetRedisURL(tb testing.TB, url, prefix string) *Client {
	tb.Helper()
	c, err := New(Options{URL: url, Prefix: prefix})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		c.Close()
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis %s: %v", url, err)
		}
		tb.Skipf("redis %s not reachable: %v", url, err)
	}
	tb.Cleanup(func() {
		ctx := context.Background()
		iter := c.rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			c.rdb.Del(ctx, keys...)
		}
		c.Close()
	})
	return c
}

// tempRedis starts a private redis-server on a free port, so a test can
// kill it without touching the shared one. restart starts it again on the
// same port.
type tempRedis struct {
	tb   testing.TB
	port int
	cmd  *exec.Cmd
}

func startTempRedis(tb testing.TB) *tempRedis {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal("redis-server not on PATH")
		}
		tb.Skip("redis-server not on PATH")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &tempRedis{tb: tb, port: port}
	r.start()
	tb.Cleanup(r.stop)
	return r
}

func (r *tempRedis) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *tempRedis) start() {
	r.tb.Helper()
	r.cmd = exec.Command("redis-server", "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.tb.TempDir())
	if err := r.cmd.Start(); err != nil {
		r.tb.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.tb.Fatal("temp redis did not start")
}

// stop kills the server this test started (by its own process handle).
func (r *tempRedis) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}
