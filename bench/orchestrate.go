package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pinnedEnv marks the re-executed, pinned load generator so it does not
// re-exec again.
const pinnedEnv = "LLMPROXY_BENCH_PINNED"

// CPU layout: the proxy gets a core of its own; the fake upstream and the
// load generator share the other, so the proxy is measured on one core.
const (
	proxyCPU = "0"
	benchCPU = "1"
)

// pinning reports whether taskset can pin us, and why not.
func pinning() (bool, string) {
	if _, err := exec.LookPath("taskset"); err != nil {
		return false, "taskset not found"
	}
	if n := onlineCPUs(); n < 2 {
		return false, fmt.Sprintf("%d online CPU(s); need 2", n)
	}
	if err := exec.Command("taskset", "-c", proxyCPU, "true").Run(); err != nil {
		return false, "taskset -c 0 failed: " + err.Error()
	}
	return true, ""
}

// onlineCPUs counts the machine's CPUs, ignoring our own affinity mask
// (runtime.NumCPU would say 1 once we are pinned).
func onlineCPUs() int {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	n := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		if len(line) > 3 && strings.HasPrefix(line, "cpu") && line[3] >= '0' && line[3] <= '9' {
			n++
		}
	}
	return n
}

// reexecPinned replaces this process with itself under taskset -c 1, so
// every thread of the load generator runs on the bench core. It returns
// only on failure.
func reexecPinned() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return err
	}
	argv := append([]string{"taskset", "-c", benchCPU, exe}, os.Args[1:]...)
	return syscall.Exec(ts, argv, append(os.Environ(), pinnedEnv+"=1"))
}

// allowedCPUs is this process's Cpus_allowed_list, for the report.
func allowedCPUs() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// procs owns the subprocesses the bench starts and kills them all on Close.
type procs struct {
	tmp    string
	pin    bool
	cmds   []*exec.Cmd
	exited map[*exec.Cmd]chan struct{}
}

func newProcs(pin bool) (*procs, error) {
	tmp, err := os.MkdirTemp("", "llmproxy-bench-")
	if err != nil {
		return nil, err
	}
	return &procs{tmp: tmp, pin: pin, exited: map[*exec.Cmd]chan struct{}{}}, nil
}

// command builds argv, under taskset -c cpu when pinning.
func (p *procs) command(ctx context.Context, cpu string, argv ...string) *exec.Cmd {
	if p.pin && cpu != "" {
		argv = append([]string{"taskset", "-c", cpu}, argv...)
	}
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// Own process group, so a terminal ^C reaches only us and we stop the
	// children in order; Pdeathsig kills them if we die without cleanup.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
	c.WaitDelay = 3 * time.Second
	return c
}

func (p *procs) start(c *exec.Cmd) error {
	if err := c.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	p.exited[c] = done
	p.cmds = append(p.cmds, c)
	go func() {
		_ = c.Wait()
		close(done)
	}()
	return nil
}

// Close stops every child (SIGTERM, then SIGKILL after 3 s) and removes
// the temp dir.
func (p *procs) Close() {
	for _, c := range p.cmds {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range p.cmds {
		select {
		case <-p.exited[c]:
		case <-time.After(3 * time.Second):
			_ = c.Process.Kill()
			<-p.exited[c]
		}
	}
	os.RemoveAll(p.tmp)
}

// startUpstreamProc runs the fake upstream as a subprocess (this binary,
// -mode upstream) and reads the address it prints.
func (p *procs) startUpstreamProc(ctx context.Context, opt upstreamOptions) (base string, pid int, err error) {
	exe, err := os.Executable()
	if err != nil {
		return "", 0, err
	}
	c := p.command(ctx, benchCPU, exe, "-mode", "upstream", "-listen", "127.0.0.1:0",
		"-chunks", itoa(opt.Chunks), "-chunk-delay", opt.Delay.String())
	c.Env = append(os.Environ(), pinnedEnv+"=1")
	out, err := c.StdoutPipe()
	if err != nil {
		return "", 0, err
	}
	c.Stderr = os.Stderr
	if err := p.start(c); err != nil {
		return "", 0, fmt.Errorf("start fake upstream: %w", err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				addr <- a
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case a := <-addr:
		return "http://" + a, c.Process.Pid, nil
	case <-p.exited[c]:
		return "", 0, errors.New("fake upstream exited at start")
	case <-time.After(60 * time.Second):
		return "", 0, errors.New("fake upstream did not start in 60s")
	case <-ctx.Done():
		return "", 0, ctx.Err()
	}
}

// buildProxy runs go build for ./cmd/proxy from the module root. The
// build may use every CPU even though we are pinned.
func (p *procs) buildProxy(ctx context.Context) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(p.tmp, "llmproxy")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	argv := []string{"go", "build", "-o", bin, "./cmd/proxy"}
	if p.pin {
		argv = append([]string{"taskset", "-c", "0-" + itoa(onlineCPUs()-1)}, argv...)
	}
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Dir = root
	if out, err := c.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/proxy: %w\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside a Go module; run from the llmproxy repo")
	}
	return filepath.Dir(mod), nil
}

// proxySpec is how to start the proxy under test.
type proxySpec struct {
	bin      string
	config   string // user config; empty writes a minimal one
	upstream string // fake upstream base URL
	key      string
	model    string
	logPath  string // proxy stdout (access log); empty discards it
}

// minimalConfig points one provider, model and team at the fake, with
// pricing, a budget and rate limits on (metrics and the access log always are).
const minimalConfig = `# Written by go run ./bench; removed when it exits.
server:
  listen: %[1]s
  data_dir: %[2]s
  log_level: info
providers:
  - name: up
    type: openai
    base_url: %[3]s/v1
    api_key: x
models:
  - name: %[5]s
    deployments:
      - provider: up
        model: %[5]s
    pricing: {input_per_mtok: 0.15, output_per_mtok: 0.60}
    max_output_tokens: 1024
teams:
  # Budgets and rate limits are on, as users deploy it, with limits the
  # load never reaches: the guard reserves, counts and settles every request.
  - name: t
    api_keys: [%[4]s]
    rate_limit: {rpm: 100000000, tpm: 100000000000}
    budget: {usd: 1000000000, period: month}
`

// startProxy writes the config, starts the proxy pinned to its core and
// waits for /ready.
func (p *procs) startProxy(ctx context.Context, s proxySpec) (base string, pid int, err error) {
	listen, err := freeLoopbackAddr()
	if err != nil {
		return "", 0, err
	}
	data := filepath.Join(p.tmp, "data")
	cfg := s.config
	if cfg == "" {
		cfg = filepath.Join(p.tmp, "bench.yaml")
		body := fmt.Sprintf(minimalConfig, listen, data, s.upstream, s.key, s.model)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			return "", 0, err
		}
	}
	c := p.command(ctx, proxyCPU, s.bin, "-config", cfg, "-listen", listen)
	// A custom -config can refer to the fake and the temp dir as ${NAME}.
	c.Env = append(os.Environ(), "BENCH_UPSTREAM_URL="+s.upstream+"/v1", "BENCH_DATA_DIR="+data, "BENCH_KEY="+s.key)
	stderr, err := os.Create(filepath.Join(p.tmp, "proxy.stderr"))
	if err != nil {
		return "", 0, err
	}
	defer stderr.Close()
	c.Stderr = stderr
	if s.logPath != "" {
		f, err := os.Create(s.logPath)
		if err != nil {
			return "", 0, err
		}
		defer f.Close()
		c.Stdout = f
	} // else nil: /dev/null, so the proxy still formats every access line
	if err := p.start(c); err != nil {
		return "", 0, fmt.Errorf("start proxy: %w", err)
	}
	base = "http://" + listen
	if err := waitReady(ctx, base+"/ready", p.exited[c], 30*time.Second); err != nil {
		tail, _ := os.ReadFile(stderr.Name())
		return "", 0, fmt.Errorf("proxy: %w\n%s", err, lastN(tail, 2000))
	}
	return base, c.Process.Pid, nil
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls url until it answers 200, the process exits, or limit.
func waitReady(ctx context.Context, url string, exited <-chan struct{}, limit time.Duration) error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(url); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("exited before /ready")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %s", url, limit)
}

func lastN(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// pidString is for notes: "?" when the bench does not own the process.
func pidString(pid int) string {
	if pid == 0 {
		return "?"
	}
	return strconv.Itoa(pid)
}
