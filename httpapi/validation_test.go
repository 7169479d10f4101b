package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
)

// tamper rewrites the KV copy of id with a different summary under the
// same revision, as a corrupted copy would look.
func (e *env) tamper(id string) {
	e.t.Helper()
	ctx := context.Background()
	key := e.repo.Key(mustID(e.t, id))
	val, err := e.kv.Store.Get(ctx, key)
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := memcell.Decode(val)
	if err != nil {
		e.t.Fatal(err)
	}
	m.Summary = ptr("tampered")
	bad, err := memcell.Encode(m)
	if err != nil {
		e.t.Fatal(err)
	}
	if ok, err := e.kv.Store.Put(ctx, kv.Entry{Key: key, Value: bad, Rev: uint64(m.Revision)}); err != nil || !ok {
		e.t.Fatalf("tampering: %v %v", ok, err)
	}
}

func TestValidationHeader(t *testing.T) {
	e := newEnv(t, nil)
	ids := e.seed(cell("alice", epoch, "kyoto"), cell("alice", epoch, "budget"), cell("alice", epoch, "music"))
	get := func(id string) *response {
		t.Helper()
		r := e.want(http.StatusOK, "GET", "/v1/memcells/"+id, nil)
		if got := r.memcell(t); got["event_id"] != id || got["summary"] == "tampered" {
			t.Errorf("the answer is not the primary's data: %v", got)
		}
		return r
	}

	if v := get(ids[0]).header.Get("Memcell-Validation"); v != "consistent" {
		t.Errorf("consistent copy: %q", v)
	}

	e.tamper(ids[1])
	if v := get(ids[1]).header.Get("Memcell-Validation"); v != "inconsistent" {
		t.Errorf("tampered copy: %q", v)
	}
	if lines := e.logs.Lines("[DATA_INCONSISTENCY] event_id=" + ids[1]); len(lines) != 1 {
		t.Errorf("inconsistency log lines: %q", lines)
	}

	if _, err := e.kv.Store.Delete(context.Background(), e.repo.Key(mustID(t, ids[2])), kv.MaxRev); err != nil {
		t.Fatal(err)
	}
	if v := get(ids[2]).header.Get("Memcell-Validation"); v != "missing" {
		t.Errorf("missing copy: %q", v)
	}

	e.kv.FailReads.Store(true)
	if v := get(ids[0]).header.Get("Memcell-Validation"); v != "error" {
		t.Errorf("failing KV read: %q", v)
	}
	e.kv.FailReads.Store(false)

	// Batch and list reads report the worst outcome.
	r := e.want(http.StatusOK, "POST", "/v1/memcells/batch-get", map[string]any{"event_ids": ids, "validate": true})
	if v := r.header.Get("Memcell-Validation"); v != "inconsistent" {
		t.Errorf("batch with a tampered copy: %q", v)
	}
	r = e.want(http.StatusOK, "GET", "/v1/memcells?validate=true&user_id=alice", nil)
	if v := r.header.Get("Memcell-Validation"); v != "inconsistent" {
		t.Errorf("list with a tampered copy: %q", v)
	}
	r = e.want(http.StatusOK, "POST", "/v1/memcells/batch-get", map[string]any{"event_ids": []string{ids[0], ids[2]}, "validate": true})
	if v := r.header.Get("Memcell-Validation"); v != "missing" {
		t.Errorf("batch with a missing copy: %q", v)
	}
	e.kv.FailBatchReads.Store(true)
	r = e.want(http.StatusOK, "POST", "/v1/memcells/batch-get", map[string]any{"event_ids": []string{ids[0]}, "validate": true})
	if v := r.header.Get("Memcell-Validation"); v != "error" {
		t.Errorf("batch with a failing KV: %q", v)
	}
	var got struct {
		MemCells map[string]any `json:"memcells"`
	}
	r.decode(t, &got)
	if got.MemCells[ids[0]] == nil {
		t.Error("a failing KV read lost the primary's data")
	}
}

func TestMirrorHeader(t *testing.T) {
	e := newEnv(t, nil)
	ids := e.seed(cell("alice", epoch), cell("alice", epoch))

	e.kv.FailWrites.Store(true)
	r := e.want(http.StatusCreated, "POST", "/v1/memcells", `{"timestamp":"2026-01-12T10:30:00Z","user_id":"alice"}`)
	if m := r.header.Get("Memcell-Mirror"); m != "failed" {
		t.Errorf("append with a failing KV: Memcell-Mirror = %q, want failed", m)
	}
	created := r.memcell(t)["event_id"].(string)
	r = e.want(http.StatusOK, "PATCH", "/v1/memcells/"+ids[0], `{"summary":"x"}`)
	if m := r.header.Get("Memcell-Mirror"); m != "failed" {
		t.Errorf("update: %q", m)
	}
	r = e.want(http.StatusNoContent, "DELETE", "/v1/memcells/"+ids[1], nil)
	if m := r.header.Get("Memcell-Mirror"); m != "failed" {
		t.Errorf("delete: %q", m)
	}
	r = e.want(http.StatusOK, "DELETE", "/v1/memcells?user_id=alice", nil)
	if m := r.header.Get("Memcell-Mirror"); m != "failed" {
		t.Errorf("bulk delete: %q", m)
	}
	e.kv.FailWrites.Store(false)
	pending, err := e.repo.Pending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{created, ids[0], ids[1]} {
		if !slices.Contains(pending, mustID(t, id)) {
			t.Errorf("%s is not recorded for repair (pending %v)", id, pending)
		}
	}

	// A newer copy already in the KV: the write is stale, the KV keeps it.
	ids = e.seed(cell("bob", epoch))
	key := e.repo.Key(mustID(t, ids[0]))
	newer := []byte(`{"newer":true}`)
	if _, err := e.kv.Store.Put(context.Background(), kv.Entry{Key: key, Value: newer, Rev: 100}); err != nil {
		t.Fatal(err)
	}
	r = e.want(http.StatusOK, "PATCH", "/v1/memcells/"+ids[0], `{"summary":"y"}`)
	if m := r.header.Get("Memcell-Mirror"); m != "stale" {
		t.Errorf("update under a newer copy: %q", m)
	}
	if got, _ := e.kv.Store.Get(context.Background(), key); !bytes.Equal(got, newer) {
		t.Errorf("the newer copy was replaced by %s", got)
	}
}

// TestAsyncMode switches the mirror to async at runtime through the admin
// flags: writes answer queued, a validated read of a document whose KV
// write is still queued answers pending (single and batch reads), and once
// the KV answers again the copies arrive.
func TestAsyncMode(t *testing.T) {
	e := newEnv(t, nil)
	r := e.want(http.StatusOK, "PUT", "/v1/admin/flags", `{"mirroring":true,"validation":"on","mirror_mode":"async"}`)
	var flags map[string]any
	r.decode(t, &flags)
	if flags["mirror_mode"] != "async" {
		t.Fatalf("flags after the switch = %v", flags)
	}
	release := e.kv.Stall()
	defer release()
	r = e.want(http.StatusCreated, "POST", "/v1/memcells", `{"timestamp":"2026-01-12T10:30:00Z","user_id":"alice"}`)
	if m := r.header.Get("Memcell-Mirror"); m != "queued" {
		t.Errorf("append in async mode: Memcell-Mirror = %q, want queued", m)
	}
	id := r.memcell(t)["event_id"].(string)
	r = e.want(http.StatusOK, "GET", "/v1/memcells/"+id, nil)
	if v := r.header.Get("Memcell-Validation"); v != "pending" {
		t.Errorf("validated get of a queued write: Memcell-Validation = %q, want pending", v)
	}
	r = e.want(http.StatusOK, "POST", "/v1/memcells/batch-get", `{"event_ids":["`+id+`"],"validate":true}`)
	if v := r.header.Get("Memcell-Validation"); v != "pending" {
		t.Errorf("validated batch get of a queued write: Memcell-Validation = %q, want pending", v)
	}
	// A PUT without mirror_mode keeps the mode.
	e.want(http.StatusOK, "PUT", "/v1/admin/flags", `{"mirroring":true,"validation":"on"}`)
	if m := e.repo.Flags().Mode; m != "async" {
		t.Errorf("a PUT without mirror_mode changed the mode to %q", m)
	}
	e.want(http.StatusBadRequest, "PUT", "/v1/admin/flags", `{"mirroring":true,"validation":"on","mirror_mode":"later"}`)
	release()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.repo.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	r = e.want(http.StatusOK, "GET", "/v1/memcells/"+id, nil)
	if v := r.header.Get("Memcell-Validation"); v != "consistent" {
		t.Errorf("validated get after the drain: Memcell-Validation = %q, want consistent", v)
	}
}
