package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
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
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
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
// verify finds nothing.
func TestEndToEndKVOutage(t *testing.T) {
	rdir := t.TempDir()
	r := startRedis(t, 0, rdir)
	s := startServer(t, nil, "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0",
		"--kv", "redis://"+r.addr()+"/0", "--replay-interval", "100ms", "--log-format", "json")
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
