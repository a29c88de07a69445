package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The hostile mode (-mode hostile) replays the client-side attacks of
// issue 16 against one proxy and reports what they cost it: resident
// memory (VmRSS sampled every 10 ms) and how long the proxy takes to
// answer or cut the connection.
//
//	go run ./bench -mode hostile                       # builds ./cmd/proxy
//	go run ./bench -mode hostile -proxy-bin /tmp/old   # an older build
//
// slow bodies: -hostile-conns sockets each send the headers of a chat
// request declaring Content-Length 10485760 and one body byte, then go
// silent (once without a key, once with the team key). The proxy must not
// allocate the declared size, and must cut them long before read_timeout.
//
// bomb: one chat request whose body is 1 GiB of JSON once gzipped
// ("gzip", about 1 MB on the wire) and gzipped twice ("gzip, gzip", about
// 10 KB). The proxy must not decode it unbounded.

// hostileDeclared is what each slow-body socket declares: fasthttp used to
// allocate it up front.
const hostileDeclared = 10 << 20

func runHostile(ctx context.Context, o *options) error {
	p, err := newProcs(false)
	if err != nil {
		return err
	}
	defer p.Close()
	_, proxy, err := setupTargets(ctx, o, p)
	if err != nil {
		return err
	}
	if proxy.pid == 0 {
		return fmt.Errorf("hostile mode reads the proxy's RSS: pass -proxy-pid with -proxy")
	}
	fmt.Printf("proxy %s (pid %d)\n", proxy.base, proxy.pid)
	only := map[string]bool{}
	for f := range strings.SplitSeq(o.hostileOnly, ",") {
		only[strings.TrimSpace(f)] = true
	}
	if only["slow"] {
		for _, keyed := range []bool{false, true} {
			if err := slowBodies(ctx, proxy, o.hostileConns, keyed, o.hostileWait); err != nil {
				return err
			}
		}
	}
	if !only["bomb"] && !only["gzip2"] {
		return nil
	}
	once, twice, err := bombBodies(1 << 30)
	if err != nil {
		return err
	}
	if only["bomb"] {
		if err := bomb(ctx, proxy, "gzip", once, o.hostileWait); err != nil {
			return err
		}
	}
	return bomb(ctx, proxy, "gzip, gzip", twice, o.hostileWait)
}

// slowBodies opens n sockets that each send the headers and one body byte,
// and reports the proxy's RSS and when it closed them.
func slowBodies(ctx context.Context, t target, n int, keyed bool, limit time.Duration) error {
	u, err := url.Parse(t.base)
	if err != nil {
		return err
	}
	settle()
	before, _, _ := procMem(t.pid)
	auth := ""
	if keyed {
		auth = "Authorization: Bearer " + t.key + "\r\n"
	}
	head := fmt.Sprintf("POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n{",
		u.Host, auth, hostileDeclared)
	rss := startRSSSampler(t.pid, 10*time.Millisecond)
	start := time.Now()
	closed := make([]time.Duration, n)
	status := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return fmt.Errorf("dial %d: %w", i, err)
		}
		if _, err := io.WriteString(c, head); err != nil {
			c.Close()
			return err
		}
		wg.Go(func() {
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(limit))
			line, _ := bufio.NewReader(c).ReadString('\n')
			status[i] = strings.TrimSpace(line)
			io.Copy(io.Discard, c) // until the proxy closes (or limit)
			closed[i] = time.Since(start)
		})
	}
	sent := time.Since(start)
	time.Sleep(time.Second) // let every header reach the proxy
	during, _, _ := procMem(t.pid)
	wg.Wait()
	peak := rss.Stop()
	settle()
	after, _, _ := procMem(t.pid)
	slices.Sort(closed)
	who := "no key"
	if keyed {
		who = "team key"
	}
	fmt.Printf("slow bodies (%s): %d sockets, Content-Length %d + 1 byte, sent in %s\n", who, n, hostileDeclared, sent.Round(time.Millisecond))
	fmt.Printf("  RSS before %s, 1 s in %s, peak %s, after %s\n", mb(before)+" MB", mb(during)+" MB", mb(peak)+" MB", mb(after)+" MB")
	fmt.Printf("  closed by the proxy after: min %s, median %s, max %s (limit %s)\n",
		closed[0].Round(10*time.Millisecond), closed[n/2].Round(10*time.Millisecond), closed[n-1].Round(10*time.Millisecond), limit)
	fmt.Printf("  first answer: %q\n", status[0])
	return nil
}

// bomb sends one compressed chat body with the team key and reports the
// status, the time to answer and the proxy's peak RSS.
func bomb(ctx context.Context, t target, enc string, body []byte, limit time.Duration) error {
	u, err := url.Parse(t.base)
	if err != nil {
		return err
	}
	settle()
	before, _, _ := procMem(t.pid)
	rss := startRSSSampler(t.pid, 10*time.Millisecond)
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n",
		u.Host, t.key, enc, len(body))
	c.Write(body)
	c.SetReadDeadline(time.Now().Add(limit))
	line, _ := bufio.NewReader(c).ReadString('\n')
	took := time.Since(start)
	peak := rss.Stop()
	fmt.Printf("bomb (Content-Encoding %q, %d bytes on the wire, 1 GiB decoded): %q after %s\n", enc, len(body), strings.TrimSpace(line), took.Round(time.Millisecond))
	fmt.Printf("  RSS before %s, peak %s\n", mb(before)+" MB", mb(peak)+" MB")
	return nil
}

// bombBodies returns a chat body of size bytes gzipped once and twice.
func bombBodies(size int64) (once, twice []byte, err error) {
	var b1 bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b1, gzip.BestCompression)
	prefix := `{"model":"bench","messages":[{"role":"user","content":"`
	io.WriteString(zw, prefix)
	pad := bytes.Repeat([]byte("a"), 1<<20)
	for left := size - int64(len(prefix)) - 3; left > 0; left -= int64(len(pad)) {
		zw.Write(pad[:min(int64(len(pad)), left)])
	}
	io.WriteString(zw, `"}]}`)
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	var b2 bytes.Buffer
	zw2, _ := gzip.NewWriterLevel(&b2, gzip.BestCompression)
	zw2.Write(b1.Bytes())
	err = zw2.Close()
	return b1.Bytes(), b2.Bytes(), err
}

// settle gives the proxy a moment to finish the previous step (its GC,
// closing connections) so a reading is not the last step's garbage.
func settle() { time.Sleep(2 * time.Second) }
