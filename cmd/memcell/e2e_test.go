package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/memcell/memcell/kv/rediskv/redistest"
	"github.com/memcell/memcell/memcelltest"
)

// The end-to-end tests build the memcell binary and use it as a user
// would: start it, talk HTTP to it, stop it with SIGTERM, start it again.

// builds holds one *build per set of build tags: each binary is built
// once per test run, when a test first needs it.
var builds sync.Map

type build struct {
	once sync.Once
	path string
	err  error
}

// binary returns the memcell binary of the default build.
func binary(t *testing.T) string {
	t.Helper()
	return binaryWithTags(t, "")
}

// binaryWithTags returns the memcell binary built with the build tags tags
// (a comma-separated list, as go build -tags takes it; "" for none).
func binaryWithTags(t *testing.T, tags string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(tags, &build{})
	b := v.(*build)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "memcell-e2e-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "memcell")
		args := []string{"build", "-o", b.path}
		if tags != "" {
			args = append(args, "-tags", tags)
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build -tags %q: %v\n%s", tags, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// server is a running memcell serve process.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	stdout *memcelltest.Buffer // the lines read so far
	stderr *memcelltest.Buffer
	done   chan error
	// client makes the requests of call; http.DefaultClient when nil.
	client *http.Client
}

// startServer runs memcell serve with args and waits until it answers.
func startServer(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	return startServerOf(t, binary(t), env, args...)
}

// startServerOf runs serve of the memcell binary bin with args and waits
// until it answers.
func startServerOf(t *testing.T, bin string, env []string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, stdout: &memcelltest.Buffer{}, stderr: &memcelltest.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(s.stdout, sc.Text())
			if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "api:"); ok {
				urls <- strings.TrimSpace(rest)
			}
		}
	}()
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-s.done
		}
	})
	select {
	case s.url = <-urls:
	case err := <-s.done:
		t.Fatalf("memcell serve exited at start: %v\n%s", err, s.stderr)
	case <-time.After(2 * time.Minute):
		t.Fatalf("memcell serve printed no api line\n%s", s.stderr)
	}
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Fatalf("memcell serve exited with %v after SIGTERM\n%s", err, s.stderr)
		}
	case <-time.After(time.Minute):
		s.t.Fatalf("memcell serve did not stop within a minute of SIGTERM\n%s", s.stderr)
	}
}

// call makes one request and decodes a JSON answer into out (if non-nil).
func (s *server) call(method, path, token string, body any, out any) (*http.Response, []byte) {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := s.client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: %d %q is not JSON: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp, data
}

func (s *server) want(method, path string, body any, status int, out any) *http.Response {
	s.t.Helper()
	resp, data := s.call(method, path, "", body, out)
	if resp.StatusCode != status {
		s.t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, data, status)
	}
	return resp
}

type doc = map[string]any

// exercise runs every route against s and returns the ids it left live.
func exercise(t *testing.T, s *server) map[string]doc {
	t.Helper()
	live := map[string]doc{}
	var ids []string
	for i, user := range []string{"alice", "alice", "bob", "carol"} {
		var created doc
		resp := s.want("POST", "/v1/memcells", doc{
			"user_id":       user,
			"timestamp":     fmt.Sprintf("2026-01-1%dT10:30:00.123456+02:00", i),
			"summary":       "memory " + user,
			"participants":  []string{user, "dave"},
			"keywords":      []string{"k" + user, "shared"},
			"type":          "Conversation",
			"original_data": []doc{{"data_type": "Conversation", "messages": []doc{{"content": "hello ✓"}}}},
			"tenant_id":     "t-1",
		}, http.StatusCreated, &created)
		id, _ := created["event_id"].(string)
		if len(id) != 24 || resp.Header.Get("Location") != "/v1/memcells/"+id || created["timestamp"] != fmt.Sprintf("2026-01-1%dT08:30:00.123Z", i) {
			t.Fatalf("created %v (Location %q)", created, resp.Header.Get("Location"))
		}
		ids = append(ids, id)
		live[id] = created
	}
	var got doc
	resp := s.want("GET", "/v1/memcells/"+ids[0], nil, http.StatusOK, &got)
	if v := resp.Header.Get("Memcell-Validation"); v != "consistent" {
		t.Errorf("Memcell-Validation = %q, want consistent", v)
	}
	var batch struct {
		Memcells map[string]doc `json:"memcells"`
		Missing  []string       `json:"missing"`
	}
	s.want("POST", "/v1/memcells/batch-get", doc{"event_ids": []string{ids[0], ids[1], "65a1b2c3d4e5f60718293a4b"}, "validate": true}, http.StatusOK, &batch)
	if len(batch.Memcells) != 2 || len(batch.Missing) != 1 {
		t.Errorf("batch-get = %d found, missing %v", len(batch.Memcells), batch.Missing)
	}
	var patched doc
	s.want("PATCH", "/v1/memcells/"+ids[0], doc{"summary": "edited"}, http.StatusOK, &patched)
	if patched["summary"] != "edited" {
		t.Errorf("PATCH = %v", patched)
	}
	live[ids[0]] = patched
	var list struct {
		Memcells []doc `json:"memcells"`
	}
	s.want("GET", "/v1/memcells?user_id=alice&sort=asc&limit=10", nil, http.StatusOK, &list)
	if len(list.Memcells) != 2 || list.Memcells[0]["event_id"] != ids[0] {
		t.Errorf("list by user = %v", list.Memcells)
	}
	s.want("GET", "/v1/memcells?keywords=kbob,kcarol&participants=dave", nil, http.StatusOK, &list)
	if len(list.Memcells) != 2 {
		t.Errorf("list by keywords = %d", len(list.Memcells))
	}
	var count struct {
		Count int `json:"count"`
	}
	s.want("GET", "/v1/memcells/count?user_id=alice", nil, http.StatusOK, &count)
	if count.Count != 2 {
		t.Errorf("count = %d", count.Count)
	}
	// Soft delete, restore, hard delete of single documents.
	s.want("DELETE", "/v1/memcells/"+ids[2]+"?deleted_by=e2e", nil, http.StatusNoContent, nil)
	s.want("GET", "/v1/memcells/"+ids[2], nil, http.StatusNotFound, nil)
	s.want("POST", "/v1/memcells/"+ids[2]+"/restore", nil, http.StatusOK, nil)
	s.want("DELETE", "/v1/memcells/"+ids[3]+"?hard=true", nil, http.StatusNoContent, nil)
	delete(live, ids[3])
	// Bulk by user: soft delete then restore.
	var n struct {
		Deleted  int `json:"deleted"`
		Restored int `json:"restored"`
	}
	s.want("DELETE", "/v1/memcells?user_id=alice", nil, http.StatusOK, &n)
	if n.Deleted != 2 {
		t.Errorf("bulk delete = %d", n.Deleted)
	}
	s.want("POST", "/v1/memcells/restore?user_id=alice", nil, http.StatusOK, &n)
	if n.Restored != 2 {
		t.Errorf("bulk restore = %d", n.Restored)
	}
	var stats struct {
		Backend    string `json:"backend"`
		EntryCount int    `json:"entry_count"`
	}
	s.want("GET", "/v1/kv/stats", nil, http.StatusOK, &stats)
	if stats.EntryCount != len(live) {
		t.Errorf("kv stats = %+v, want %d entries", stats, len(live))
	}
	var flags doc
	s.want("GET", "/v1/admin/flags", nil, http.StatusOK, &flags)
	s.want("PUT", "/v1/admin/flags", flags, http.StatusOK, nil)
	s.want("GET", "/healthz", nil, http.StatusOK, nil)
	s.want("GET", "/readyz", nil, http.StatusOK, nil)
	_, metrics := s.call("GET", "/metrics", "", nil, nil)
	for _, name := range []string{"memcell_kv_write_latency_seconds", "memcell_http_requests_total", "memcell_validations_total"} {
		if !bytes.Contains(metrics, []byte(name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	// Refresh what the server now holds.
	for id := range live {
		var d doc
		s.want("GET", "/v1/memcells/"+id, nil, http.StatusOK, &d)
		live[id] = d
	}
	return live
}

// readBack checks that every document reads back, validated, as before.
func readBack(t *testing.T, s *server, live map[string]doc) {
	t.Helper()
	for id, want := range live {
		var got doc
		resp := s.want("GET", "/v1/memcells/"+id, nil, http.StatusOK, &got)
		if v := resp.Header.Get("Memcell-Validation"); v != "consistent" {
			t.Errorf("after restart %s validates %q", id, v)
		}
		wb, _ := json.Marshal(want)
		gb, _ := json.Marshal(got)
		if !bytes.Equal(wb, gb) {
			t.Errorf("after restart %s =\n%s\nwant\n%s", id, gb, wb)
		}
	}
	var stats struct {
		EntryCount int `json:"entry_count"`
	}
	s.want("GET", "/v1/kv/stats", nil, http.StatusOK, &stats)
	if stats.EntryCount != len(live) {
		t.Errorf("after restart kv holds %d entries, want %d", stats.EntryCount, len(live))
	}
}

func TestEndToEndEmbedded(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0", "--log-format", "json"}
	s := startServer(t, nil, args...)
	live := exercise(t, s)

	// Without a token, a request naming another host (a page that rebound
	// its name to 127.0.0.1) is refused; the probes still answer.
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"PUT", "/v1/admin/flags", `{"mirroring":false,"validation":"off"}`, http.StatusForbidden},
		{"DELETE", "/v1/memcells?user_id=alice&hard=true", "", http.StatusForbidden},
		{"GET", "/healthz", "", http.StatusOK},
		{"GET", "/readyz", "", http.StatusOK},
	} {
		req, err := http.NewRequest(tc.method, s.url+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "attacker.example:8080"
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s naming attacker.example = %d %s, want %d", tc.method, tc.path, resp.StatusCode, body, tc.status)
		}
	}
	var flags doc
	s.want("GET", "/v1/admin/flags", nil, http.StatusOK, &flags)
	if flags["mirroring"] != true {
		t.Errorf("flags after the refused requests: %v", flags)
	}

	// memcell kv stats against the running server.
	out, err := exec.Command(binary(t), "kv", "stats", "--server", s.url).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(`"backend": "pebble"`)) {
		t.Errorf("kv stats against the server = %s, %v", out, err)
	}
	s.stop()
	if !strings.Contains(s.stderr.String(), "memcell stopped") {
		t.Errorf("no clean stop in the log:\n%s", s.stderr)
	}
	requestIDOnce(t, s.stderr)
	s = startServer(t, nil, args...)
	readBack(t, s, live)
	s.stop()
	requestIDOnce(t, s.stderr)
}

// requestIDOnce fails the test unless the JSON log has request lines and
// each line has request_id at most once. It counts the key in the raw
// lines: decoding a line into a map would hide a duplicate.
func requestIDOnce(t *testing.T, log *memcelltest.Buffer) {
	t.Helper()
	if len(log.Lines(`"msg":"http request"`, `"request_id":`)) == 0 {
		t.Errorf("no request line with a request_id in the log:\n%s", log)
	}
	for _, l := range log.Lines(`"request_id":`) {
		if n := strings.Count(l, `"request_id":`); n != 1 {
			t.Errorf("a log line has request_id %d times: %s", n, l)
		}
	}
}

func TestEndToEndRedis(t *testing.T) {
	tg := redistest.Standalone()
	tg.Require(t)
	prefix := redistest.UniquePrefix()
	t.Cleanup(func() { tg.DeleteNamespace(t, prefix) })
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0",
		"--kv", tg.URL("prefix=" + prefix)}
	s := startServer(t, nil, args...)
	live := exercise(t, s)
	s.stop()
	s = startServer(t, nil, args...)
	readBack(t, s, live)
	s.stop()
}

func TestServeSecurity(t *testing.T) {
	dir := t.TempDir()
	// A non-loopback address without a token is refused.
	cmd := exec.Command(binary(t), "serve", "--data-dir", dir, "--addr", "0.0.0.0:0")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !bytes.Contains(out, []byte("without an API token")) {
		t.Errorf("serve on 0.0.0.0 without a token = %v: %s", err, out)
	}
	// Credentials never reach the output, even when the connection fails.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd = exec.CommandContext(ctx, binary(t), "serve", "--data-dir", dir, "--addr", "127.0.0.1:0",
		"--mongo-uri", "mongodb://admin:hunter2secret@127.0.0.1:1/?serverSelectionTimeoutMS=500")
	out, err = cmd.CombinedOutput()
	if err == nil || bytes.Contains(out, []byte("hunter2secret")) {
		t.Errorf("serve with an unreachable primary = %v, output leaks the password or it started:\n%s", err, out)
	}
	// With a token, every route but /healthz and /readyz needs it;
	// /metrics takes the metrics token too, which opens nothing else.
	s := startServer(t, []string{"MEMCELL_API_TOKEN=tok-e2e", "MEMCELL_METRICS_TOKEN=scrape-e2e"}, "--data-dir", dir, "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0")
	for _, tc := range []struct {
		path, token string
		status      int
	}{
		{"/v1/kv/stats", "", http.StatusUnauthorized},
		{"/v1/kv/stats", "tok-e2e", http.StatusOK},
		{"/v1/kv/stats", "scrape-e2e", http.StatusUnauthorized},
		{"/openapi.yaml", "", http.StatusUnauthorized},
		{"/openapi.yaml", "tok-e2e", http.StatusOK},
		{"/metrics", "", http.StatusUnauthorized},
		{"/metrics", "scrape-e2e", http.StatusOK},
		{"/metrics", "tok-e2e", http.StatusOK},
		{"/healthz", "", http.StatusOK},
		{"/readyz", "", http.StatusOK},
	} {
		if resp, body := s.call("GET", tc.path, tc.token, nil, nil); resp.StatusCode != tc.status {
			t.Errorf("GET %s with token %q = %d %.200s, want %d", tc.path, tc.token, resp.StatusCode, body, tc.status)
		}
	}
	for _, secret := range []string{"tok-e2e", "scrape-e2e"} {
		if strings.Contains(s.stderr.String(), secret) {
			t.Errorf("the token %s appears in the log", secret)
		}
	}
	s.stop()
}

// TestWithoutRocksDB checks that the default build, which has no RocksDB,
// answers a rocksdb URL with how to build one that has it, as a usage
// error, and that serve stops at start instead of retrying.
func TestWithoutRocksDB(t *testing.T) {
	const want = `this memcell was built without RocksDB: build it with "make build-rocksdb" (go build -tags rocksdb ./cmd/memcell, needs librocksdb-dev)`
	dir := t.TempDir()
	for _, args := range [][]string{
		{"serve", "--data-dir", dir, "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0", "--kv", "rocksdb:/x"},
		{"kv", "stats", "--kv", "rocksdb:/x"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, binary(t), args...).CombinedOutput()
		cancel()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !bytes.Contains(out, []byte(want)) {
			t.Errorf("memcell %s = %v:\n%s\nwant exit status 2 and %s", strings.Join(args, " "), err, out, want)
		}
	}
}
