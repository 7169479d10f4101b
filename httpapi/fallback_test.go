package httpapi_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
)

// newFallbackEnv is newEnv over a primary that can be taken down (the
// returned FaultPrimary), with mirror.Options.ReadFallback on.
func newFallbackEnv(t *testing.T) (*env, *memcelltest.FaultPrimary) {
	t.Helper()
	store, _ := memcelltest.Store(t)
	var err error
	e := &env{
		t: t, primary: store, reg: prometheus.NewRegistry(), logs: &memcelltest.Buffer{},
		kv: memcelltest.NewFaultKV(memcelltest.KVBackends()[0].Open(t, 0)),
	}
	fp := memcelltest.NewFaultPrimary(store)
	logger := slog.New(slog.NewJSONHandler(e.logs, nil))
	e.repo, err = mirror.New(fp, e.kv, &mirror.Options{Logger: logger, Registerer: e.reg, ReadFallback: true, FallbackHold: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.repo.Close)
	if e.h, err = httpapi.New(e.repo, &httpapi.Options{Logger: logger, Registerer: e.reg, Gatherer: e.reg}); err != nil {
		t.Fatal(err)
	}
	return e, fp
}

// TestReadFallbackAPI takes the primary down under a handler whose
// repository reads from the KV then: the single and batch gets answer from
// the copies with Memcell-Source: kv (404 for a soft-deleted copy, 503 for
// an id without one), every other MemCell route and /readyz answer 503, and
// once the primary is back the answers come from it again.
func TestReadFallbackAPI(t *testing.T) {
	e, fp := newFallbackEnv(t)
	ids := e.seed(cell("alice", epoch, "kyoto"), cell("alice", epoch.Add(time.Hour), "gone"))
	live, deleted := ids[0], ids[1]
	e.want(http.StatusNoContent, "DELETE", "/v1/memcells/"+deleted, nil)
	if err := e.repo.SetFlags(mirror.Flags{Mirroring: false, Validation: mirror.ValidationOn}); err != nil {
		t.Fatal(err)
	}
	uncopied := e.seed(cell("alice", epoch.Add(2*time.Hour), "uncopied"))[0]
	if err := e.repo.SetFlags(mirror.Flags{Mirroring: true, Validation: mirror.ValidationOn}); err != nil {
		t.Fatal(err)
	}
	up := e.want(http.StatusOK, "GET", "/v1/memcells/"+live, nil)
	if src := up.header.Get("Memcell-Source"); src != "" || up.header.Get("Memcell-Validation") != "consistent" {
		t.Fatalf("with the primary up: Memcell-Source %q, Memcell-Validation %q", src, up.header.Get("Memcell-Validation"))
	}

	fp.Down.Store(true)
	r := e.want(http.StatusOK, "GET", "/v1/memcells/"+live, nil)
	if src := r.header.Get("Memcell-Source"); src != "kv" {
		t.Errorf("Memcell-Source = %q, want kv", src)
	}
	if v := r.header.Get("Memcell-Validation"); v != "" {
		t.Errorf("a read from the KV says Memcell-Validation %q", v)
	}
	if !bytes.Equal(r.body, up.body) {
		t.Errorf("the KV's answer differs from the primary's:\n%s\n%s", r.body, up.body)
	}
	r = e.want(http.StatusNotFound, "GET", "/v1/memcells/"+deleted, nil)
	if src := r.header.Get("Memcell-Source"); src != "kv" {
		t.Errorf("404 of a soft-deleted copy: Memcell-Source = %q, want kv", src)
	}
	r = e.want(http.StatusServiceUnavailable, "GET", "/v1/memcells/"+uncopied, nil)
	if r.errorCode(t) != "unavailable" || !strings.Contains(string(r.body), "no copy") {
		t.Errorf("GET without a copy = %s, want unavailable naming the missing copy", r.body)
	}

	r = e.want(http.StatusOK, "POST", "/v1/memcells/batch-get", map[string]any{"event_ids": []string{live, deleted}})
	var batch struct {
		MemCells map[string]map[string]any `json:"memcells"`
		Missing  []string                  `json:"missing"`
	}
	r.decode(t, &batch)
	if src := r.header.Get("Memcell-Source"); src != "kv" || len(batch.MemCells) != 1 || batch.MemCells[live] == nil ||
		len(batch.Missing) != 1 || batch.Missing[0] != deleted {
		t.Errorf("batch-get from the KV = %s (Memcell-Source %q); want the live one, the deleted one missing", r.body, src)
	}
	r = e.want(http.StatusOK, "POST", "/v1/memcells/batch-get", map[string]any{"event_ids": []string{live}, "fields": []string{"summary"}})
	if want := `{"memcells":{"` + live + `":{"event_id":"` + live + `","summary":"about kyoto"}},"missing":[]}` + "\n"; string(r.body) != want {
		t.Errorf("batch-get of fields from the KV = %s, want %s", r.body, want)
	}
	r = e.want(http.StatusServiceUnavailable, "POST", "/v1/memcells/batch-get", map[string]any{"event_ids": []string{live, uncopied}})
	if r.errorCode(t) != "unavailable" {
		t.Errorf("batch-get with an id without a copy = %s", r.body)
	}

	before := e.state()
	for _, tc := range []struct{ method, target, body string }{
		{"POST", "/v1/memcells", `{"timestamp":"2026-01-12T10:30:00Z"}`},
		{"PATCH", "/v1/memcells/" + live, `{"summary":"x"}`},
		{"DELETE", "/v1/memcells/" + live, ""},
		{"POST", "/v1/memcells/" + deleted + "/restore", ""},
		{"GET", "/v1/memcells?user_id=alice", ""},
		{"GET", "/v1/memcells/count?user_id=alice", ""},
		{"DELETE", "/v1/memcells?user_id=alice", ""},
		{"GET", "/readyz", ""},
	} {
		var b any
		if tc.body != "" {
			b = tc.body
		}
		r := e.want(http.StatusServiceUnavailable, tc.method, tc.target, b)
		if r.errorCode(t) != "unavailable" || r.header.Get("Memcell-Source") != "" {
			t.Errorf("%s %s = %s (Memcell-Source %q), want 503 unavailable without the header", tc.method, tc.target, r.body, r.header.Get("Memcell-Source"))
		}
		if tc.target == "/readyz" && !strings.Contains(string(r.body), "the primary store does not answer") {
			t.Errorf("/readyz = %s, want it to name the primary", r.body)
		}
	}
	e.unchanged(before, "the writes with the primary down")

	fp.Down.Store(false)
	time.Sleep(5 * time.Millisecond) // past the hold
	for _, id := range []string{live, uncopied} {
		r := e.want(http.StatusOK, "GET", "/v1/memcells/"+id, nil)
		if src := r.header.Get("Memcell-Source"); src != "" {
			t.Errorf("with the primary back: Memcell-Source %q", src)
		}
	}
	r = e.want(http.StatusOK, "POST", "/v1/memcells/batch-get", map[string]any{"event_ids": []string{live, uncopied}})
	if src := r.header.Get("Memcell-Source"); src != "" {
		t.Errorf("batch-get with the primary back: Memcell-Source %q", src)
	}
	e.want(http.StatusOK, "GET", "/readyz", nil)
}
