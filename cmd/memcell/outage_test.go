package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server of the test's own on a free port, with an
// append-only file so that a restart keeps what it held.
type redisServer struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

func startRedis(t *testing.T, port int, dir string) *redisServer {
	t.Helper()
	if port == 0 {
		port = freePort(t)
	}
	r := &redisServer{t: t, port: port, dir: dir}
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", dir)
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v (the tests need redis-server on PATH)", err)
	}
	t.Cleanup(func() { r.stop() })
	c := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s does not answer", r.addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r
}

func (r *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

// stop kills the server and waits for it to exit.
func (r *redisServer) stop() {
	if r.cmd.ProcessState != nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}

// TestEndToEndKVOutage stops the KV under a running memcell serve: writes
// still succeed (their KV writes fail and are recorded), and once the KV is
// back the replayer brings its copies up to date without a repair, so a
// verify finds nothing. It runs in sync mode, where each answer reports
// its KV write; TestAsyncKVTrouble is the async mode's.
func TestEndToEndKVOutage(t *testing.T) {
	rdir := t.TempDir()
	r := startRedis(t, 0, rdir)
	s := startServer(t, nil, "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0",
		"--kv", "redis://"+r.addr()+"/0", "--replay-interval", "100ms", "--log-format", "json", "--mirror-mode", "sync")
	post := func(i int) (string, string) {
		var created doc
		resp := s.want("POST", "/v1/memcells", doc{"user_id": "outage", "timestamp": fmt.Sprintf("2026-02-0%dT10:00:00Z", i+1), "summary": "m"}, http.StatusCreated, &created)
		id, _ := created["event_id"].(string)
		return id, resp.Header.Get("Memcell-Mirror")
	}
	var ids []string
	for i := range 3 {
		id, mir := post(i)
		if mir != "ok" {
			t.Fatalf("POST with the KV up: Memcell-Mirror %q, want ok", mir)
		}
		ids = append(ids, id)
	}

	r.stop()
	for i := 3; i < 6; i++ {
		id, mir := post(i)
		if mir != "failed" {
			t.Errorf("POST with the KV down: Memcell-Mirror %q, want failed", mir)
		}
		ids = append(ids, id)
	}
	resp := s.want("PATCH", "/v1/memcells/"+ids[0], doc{"summary": "changed while the KV was down"}, http.StatusOK, nil)
	if mir := resp.Header.Get("Memcell-Mirror"); mir != "failed" {
		t.Errorf("PATCH with the KV down: Memcell-Mirror %q, want failed", mir)
	}

	startRedis(t, r.port, rdir)
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range ids {
		for {
			resp := s.want("GET", "/v1/memcells/"+id, nil, http.StatusOK, nil)
			if v := resp.Header.Get("Memcell-Validation"); v == "consistent" {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("%s: Memcell-Validation %q 30 s after the KV came back, want consistent\n%s", id, v, s.stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	out, err := exec.Command(binary(t), "kv", "verify", "--server", s.url, "--progress", "none").CombinedOutput()
	if err != nil {
		t.Fatalf("kv verify after the replay: %v\n%s", err, out)
	}
	s.stop()
}

// TestStartWithoutKV starts memcell serve with its Redis stopped: it
// serves every write from the primary, says on /readyz that the KV is
// missing, counts each write it could not mirror, opens the store by
// itself once Redis is started under load, and catches up without a
// repair. It runs in sync mode, whose answers say which writes were not
// mirrored, so that they can be counted.
func TestStartWithoutKV(t *testing.T) {
	port := freePort(t)
	rdir := t.TempDir()
	s := startServer(t, nil, "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0",
		"--kv", fmt.Sprintf("redis://127.0.0.1:%d/0", port), "--replay-interval", "100ms", "--log-format", "json", "--mirror-mode", "sync")

	resp, body := s.call("GET", "/readyz", "", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "not ready: the KV store does not answer") {
		t.Fatalf("/readyz with the KV down = %d %s", resp.StatusCode, body)
	}
	s.want("GET", "/healthz", nil, http.StatusOK, nil)

	// Four writers create and update documents while Redis is down, then
	// while it starts.
	var (
		stop               atomic.Bool
		unmirrored, writes atomic.Int64
		mu                 sync.Mutex
		ids                []string
		problems           []string
		wg                 sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 10 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	do := func(method, path string, body any, status int, out any) bool {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, s.url+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fail("%s %s: %v", method, path, err)
			return false
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != status {
			fail("%s %s = %d %s", method, path, resp.StatusCode, data)
			return false
		}
		writes.Add(1)
		if resp.Header.Get("Memcell-Mirror") == "failed" {
			unmirrored.Add(1)
		}
		return out == nil || json.Unmarshal(data, out) == nil
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				var created doc
				if !do("POST", "/v1/memcells", doc{"user_id": fmt.Sprintf("w%d", w), "timestamp": "2026-03-01T10:00:00Z", "summary": "written without the KV"}, http.StatusCreated, &created) {
					return
				}
				id, _ := created["event_id"].(string)
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
				if !do("PATCH", "/v1/memcells/"+id, doc{"summary": fmt.Sprintf("updated %d", i)}, http.StatusOK, nil) {
					return
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	downWrites := writes.Load()
	startRedis(t, port, rdir)
	time.Sleep(2 * time.Second)
	stop.Store(true)
	wg.Wait()
	if len(problems) > 0 {
		t.Fatalf("writes failed:\n%s\n%s", strings.Join(problems, "\n"), s.stderr)
	}
	if downWrites == 0 || unmirrored.Load() < downWrites {
		t.Fatalf("%d writes with the KV down, %d of %d answered Memcell-Mirror: failed", downWrites, unmirrored.Load(), writes.Load())
	}

	deadline := time.Now().Add(time.Minute)
	for {
		resp, body := s.call("GET", "/readyz", "", nil, nil)
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz a minute after Redis started = %d %s\n%s", resp.StatusCode, body, s.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Every write it could not mirror is counted.
	_, metrics := s.call("GET", "/metrics", "", nil, nil)
	if got := metricSum(string(metrics), "memcell_kv_write_failures_total"); got != float64(unmirrored.Load()) {
		t.Errorf("memcell_kv_write_failures_total = %v, want the %d writes answered Memcell-Mirror: failed", got, unmirrored.Load())
	}
	// The replayer catches up: no repair is run.
	for {
		out, err := exec.Command(binary(t), "kv", "verify", "--server", s.url, "--progress", "none").CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kv verify a minute after Redis started: %v\n%s\n%s", err, out, s.stderr)
		}
		time.Sleep(time.Second)
	}
	for _, id := range ids[:min(len(ids), 20)] {
		if v := s.want("GET", "/v1/memcells/"+id, nil, http.StatusOK, nil).Header.Get("Memcell-Validation"); v != "consistent" {
			t.Errorf("%s: Memcell-Validation %q after the catch-up", id, v)
		}
	}
	t.Logf("%d writes, %d with the KV down, %d unmirrored and caught up", writes.Load(), downWrites, unmirrored.Load())
	s.stop()
}

// metricSum adds up every sample of a metric in a Prometheus text page.
func metricSum(page, name string) float64 {
	var sum float64
	for line := range strings.Lines(page) {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(fields) > 0 {
			v, _ := strconv.ParseFloat(fields[0], 64)
			sum += v
		}
	}
	return sum
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
