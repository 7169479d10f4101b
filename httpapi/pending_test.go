package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/reconcile"
)

// TestPending reads GET /v1/admin/pending before and after a replay pass
// redoes a KV write that failed.
func TestPending(t *testing.T) {
	e := newEnv(t, nil)
	e.want(http.StatusNotFound, "GET", "/v1/admin/pending", nil) // no replayer

	r, err := reconcile.NewReplayer(e.primary, e.kv, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The same repository, served with the replayer (and metrics of its own).
	if e.h, err = httpapi.New(e.repo, &httpapi.Options{Registerer: prometheus.NewRegistry(), Replayer: r}); err != nil {
		t.Fatal(err)
	}
	status := func() reconcile.PendingStatus {
		t.Helper()
		var st reconcile.PendingStatus
		if err := json.Unmarshal(e.want(http.StatusOK, "GET", "/v1/admin/pending", nil).body, &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := status(); st.Count != 0 || st.OldestAgeSeconds != 0 || st.Replay.Passes != 0 {
		t.Errorf("empty record: %+v", st)
	}

	e.kv.FailWrites.Store(true)
	resp := e.want(http.StatusCreated, "POST", "/v1/memcells", `{"timestamp":"2026-01-12T10:30:00Z","user_id":"alice"}`)
	if m := resp.header.Get("Memcell-Mirror"); m != "failed" {
		t.Fatalf("Memcell-Mirror = %q, want failed", m)
	}
	if st := status(); st.Count != 1 || st.OldestAgeSeconds < 0 {
		t.Errorf("after a failed KV write: %+v, want count 1", st)
	}

	e.kv.FailWrites.Store(false)
	if err := r.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := status()
	if st.Count != 0 || st.Replay.Passes != 1 || st.Replay.Written != 1 || st.Replay.Last.Pending != 1 || st.Replay.LastError != "" {
		t.Errorf("after a replay: %+v, want an empty record, one pass that wrote one copy", st)
	}
	if v := e.want(http.StatusOK, "GET", "/v1/memcells/"+resp.memcell(t)["event_id"].(string), nil).header.Get("Memcell-Validation"); v != "consistent" {
		t.Errorf("the replayed document validates %q, want consistent", v)
	}
	e.want(http.StatusBadRequest, "GET", "/v1/admin/pending?x=1", nil)
}
