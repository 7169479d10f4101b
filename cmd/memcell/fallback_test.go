package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/memcell/memcell/kv/rediskv/redistest"
)

// TestEndToEndReadFallback stops the primary under a memcell serve with
// --read-fallback. The primary is the embedded one of a first memcell
// serve; the second serves the API on it (a short server selection
// timeout), both over the same Redis KV. While the first is stopped the
// second answers gets from the KV copies with Memcell-Source: kv and the
// body it answered before, refuses writes and is not ready; once the first
// is back its answers come from the primary again.
func TestEndToEndReadFallback(t *testing.T) {
	tg := redistest.Standalone()
	tg.Require(t)
	prefix := redistest.UniquePrefix()
	t.Cleanup(func() { tg.DeleteNamespace(t, prefix) })
	kvURL := tg.URL("prefix=" + prefix)
	primaryDir := t.TempDir()
	embeddedAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	first := []string{"--data-dir", primaryDir, "--addr", "127.0.0.1:0", "--embedded-addr", embeddedAddr, "--kv", kvURL}
	p := startServer(t, nil, first...)
	// Sync mode: the copies are in the KV when the writes answer.
	s := startServer(t, nil, "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--kv", kvURL, "--read-fallback", "--mirror-mode", "sync",
		"--mongo-uri", "mongodb://"+embeddedAddr+"/?serverSelectionTimeoutMS=500&connectTimeoutMS=500")

	var ids []string
	for i, summary := range []string{"kept", "deleted"} {
		var created doc
		resp := s.want("POST", "/v1/memcells", doc{"user_id": "fallback", "timestamp": fmt.Sprintf("2026-03-0%dT10:00:00Z", i+1), "summary": summary}, http.StatusCreated, &created)
		if mir := resp.Header.Get("Memcell-Mirror"); mir != "ok" {
			t.Fatalf("POST: Memcell-Mirror %q, want ok", mir)
		}
		ids = append(ids, created["event_id"].(string))
	}
	kept, deleted := ids[0], ids[1]
	s.want("DELETE", "/v1/memcells/"+deleted, nil, http.StatusNoContent, nil)
	resp, before := s.call("GET", "/v1/memcells/"+kept, "", nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Memcell-Source") != "" {
		t.Fatalf("GET with the primary up = %d (Memcell-Source %q) %s", resp.StatusCode, resp.Header.Get("Memcell-Source"), before)
	}

	p.stop() // the embedded primary goes with it
	start := time.Now()
	resp, during := s.call("GET", "/v1/memcells/"+kept, "", nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Memcell-Source") != "kv" {
		t.Fatalf("GET with the primary stopped = %d (Memcell-Source %q) %s, want 200 from the KV\n%s", resp.StatusCode, resp.Header.Get("Memcell-Source"), during, s.stderr)
	}
	t.Logf("first GET with the primary stopped: %s", time.Since(start).Round(time.Millisecond))
	if string(during) != string(before) {
		t.Errorf("the KV's answer differs from the primary's:\n%s\n%s", during, before)
	}
	start = time.Now()
	resp = s.want("GET", "/v1/memcells/"+deleted, nil, http.StatusNotFound, nil)
	if src := resp.Header.Get("Memcell-Source"); src != "kv" {
		t.Errorf("GET of the soft-deleted one: Memcell-Source %q, want kv", src)
	}
	var batch struct {
		MemCells map[string]doc `json:"memcells"`
		Missing  []string       `json:"missing"`
	}
	resp = s.want("POST", "/v1/memcells/batch-get", doc{"event_ids": []string{kept, deleted}}, http.StatusOK, &batch)
	if src := resp.Header.Get("Memcell-Source"); src != "kv" || len(batch.MemCells) != 1 || batch.MemCells[kept] == nil || len(batch.Missing) != 1 {
		t.Errorf("batch-get with the primary stopped: Memcell-Source %q, %+v", src, batch)
	}
	t.Logf("two more reads during the hold: %s", time.Since(start).Round(time.Millisecond))
	s.want("GET", "/v1/memcells/0123456789abcdef01234567", nil, http.StatusServiceUnavailable, nil) // no copy: unknown
	s.want("POST", "/v1/memcells", doc{"user_id": "fallback", "timestamp": "2026-03-09T10:00:00Z"}, http.StatusServiceUnavailable, nil)
	if _, body := s.call("GET", "/readyz", "", nil, nil); !strings.Contains(string(body), "the primary store does not answer") {
		t.Errorf("/readyz with the primary stopped = %s", body)
	}
	_, metrics := s.call("GET", "/metrics", "", nil, nil)
	if !regexp.MustCompile(`memcell_fallback_reads_total\{backend="redis",op="get",result="served"\} [1-9]`).Match(metrics) {
		t.Errorf("/metrics counts no served fallback read:\n%s", grepLines(string(metrics), "memcell_fallback_reads_total"))
	}

	p = startServer(t, nil, first...) // the same data, the same address
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, body := s.call("GET", "/v1/memcells/"+kept, "", nil, nil)
		if resp.StatusCode == http.StatusOK && resp.Header.Get("Memcell-Source") == "" {
			if resp.Header.Get("Memcell-Validation") != "consistent" || string(body) != string(before) {
				t.Errorf("GET with the primary back = %s (Memcell-Validation %q), want %s", body, resp.Header.Get("Memcell-Validation"), before)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET 30 s after the primary came back = %d (Memcell-Source %q)\n%s", resp.StatusCode, resp.Header.Get("Memcell-Source"), s.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.want("POST", "/v1/memcells", doc{"user_id": "fallback", "timestamp": "2026-03-09T10:00:00Z"}, http.StatusCreated, nil)
	s.want("GET", "/readyz", nil, http.StatusOK, nil)
	s.stop()
	p.stop()
}
