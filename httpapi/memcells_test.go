package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/mirror"
)

func TestCreate(t *testing.T) {
	e := newEnv(t, nil)
	in := map[string]any{
		"user_id":   "alice",
		"timestamp": "2026-01-12T18:30:00.123456789+08:00",
		"summary":   "Planned a trip",
		"original_data": []any{map[string]any{
			"data_type": "Conversation",
			"messages":  []any{map[string]any{"content": "Kyoto in April?", "reaction": "👍"}},
		}},
		"keywords":  []string{"kyoto"},
		"extend":    map[string]any{"embedding": []any{0.125, 1e300, 12345678901234567}},
		"tenant_id": "t-1",
	}
	r := e.want(http.StatusCreated, "POST", "/v1/memcells", in)
	got := r.memcell(t)
	id, _ := got["event_id"].(string)
	if _, err := memcell.ParseID(id); err != nil {
		t.Fatalf("event_id = %v: %v", got["event_id"], err)
	}
	if loc := r.header.Get("Location"); loc != "/v1/memcells/"+id {
		t.Errorf("Location = %q", loc)
	}
	if m := r.header.Get("Memcell-Mirror"); m != "ok" {
		t.Errorf("Memcell-Mirror = %q, want ok", m)
	}
	if got["timestamp"] != "2026-01-12T10:30:00.123Z" {
		t.Errorf("timestamp = %v, want it normalised to 2026-01-12T10:30:00.123Z", got["timestamp"])
	}
	if got["tenant_id"] != "t-1" || got["revision"] != float64(1) || got["created_at"] == nil {
		t.Errorf("stored MemCell = %v", got)
	}
	// The answer is the canonical encoding of what the primary holds.
	stored, err := e.primary.Get(context.Background(), mustID(t, id))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := memcell.EncodeAPI(stored)
	if string(r.body) != string(want) {
		t.Errorf("answer differs from the stored document:\n%s", cmp.Diff(string(want), string(r.body)))
	}

	// A given event_id is used; a second time it conflicts.
	given := "65a1b2c3d4e5f60718293a4b"
	r = e.want(http.StatusCreated, "POST", "/v1/memcells", map[string]any{"event_id": given, "timestamp": "2026-01-12T10:30:00Z"})
	if r.memcell(t)["event_id"] != given {
		t.Errorf("event_id = %v, want %s", r.memcell(t)["event_id"], given)
	}
	before := e.state()
	r = e.want(http.StatusConflict, "POST", "/v1/memcells", map[string]any{"event_id": strings.ToUpper(given), "timestamp": "2026-01-13T10:30:00Z"})
	if c := r.errorCode(t); c != "conflict" {
		t.Errorf("code = %q, want conflict", c)
	}
	e.unchanged(before, "a conflicting append")
}

func mustID(t testing.TB, s string) memcell.ID {
	t.Helper()
	id, err := memcell.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestGet(t *testing.T) {
	e := newEnv(t, nil)
	ids := e.seed(cell("alice", epoch, "kyoto"))
	r := e.want(http.StatusOK, "GET", "/v1/memcells/"+ids[0], nil)
	if got := r.memcell(t); got["event_id"] != ids[0] || got["user_id"] != "alice" {
		t.Errorf("got %v", got)
	}
	if v := r.header.Get("Memcell-Validation"); v != "consistent" {
		t.Errorf("Memcell-Validation = %q, want consistent", v)
	}
	// Upper-case ids are the same id.
	e.want(http.StatusOK, "GET", "/v1/memcells/"+strings.ToUpper(ids[0]), nil)

	r = e.want(http.StatusOK, "GET", "/v1/memcells/"+ids[0]+"?validate=false", nil)
	if v, ok := r.header["Memcell-Validation"]; ok {
		t.Errorf("an unvalidated read says Memcell-Validation %q", v)
	}
	r = e.want(http.StatusNotFound, "GET", "/v1/memcells/65a1b2c3d4e5f60718293a4b", nil)
	if c := r.errorCode(t); c != "not_found" {
		t.Errorf("code = %q", c)
	}
}

func TestUpdate(t *testing.T) {
	e := newEnv(t, nil)
	ids := e.seed(cell("alice", epoch, "kyoto"))
	r := e.want(http.StatusOK, "PATCH", "/v1/memcells/"+ids[0], `{"summary":"edited","subject":null,"timestamp":"2026-02-01T09:00:00.5+01:00","extend":{"n":12345678901234567890}}`)
	got := r.memcell(t)
	if got["summary"] != "edited" || got["subject"] != nil || got["timestamp"] != "2026-02-01T08:00:00.500Z" || got["revision"] != float64(2) {
		t.Errorf("updated MemCell = %v", got)
	}
	if m := r.header.Get("Memcell-Mirror"); m != "ok" {
		t.Errorf("Memcell-Mirror = %q", m)
	}
	// The KV copy follows.
	r = e.want(http.StatusOK, "GET", "/v1/memcells/"+ids[0], nil)
	if v := r.header.Get("Memcell-Validation"); v != "consistent" {
		t.Errorf("after the update the copy is %q", v)
	}
	e.want(http.StatusNotFound, "PATCH", "/v1/memcells/65a1b2c3d4e5f60718293a4b", `{"summary":"x"}`)
}

func TestDeleteAndRestore(t *testing.T) {
	e := newEnv(t, nil)
	ids := e.seed(cell("alice", epoch), cell("bob", epoch))

	r := e.want(http.StatusNoContent, "DELETE", "/v1/memcells/"+ids[0]+"?deleted_by=gdpr-bot", nil)
	if len(r.body) != 0 || r.header.Get("Memcell-Mirror") != "ok" {
		t.Errorf("soft delete answered %q with Memcell-Mirror %q", r.body, r.header.Get("Memcell-Mirror"))
	}
	e.want(http.StatusNotFound, "GET", "/v1/memcells/"+ids[0], nil)
	e.want(http.StatusNotFound, "DELETE", "/v1/memcells/"+ids[0], nil) // already deleted
	m, err := e.primary.Lookup(context.Background(), mustID(t, ids[0]))
	if err != nil || m.DeletedBy == nil || *m.DeletedBy != "gdpr-bot" {
		t.Errorf("deleted document = %+v, %v", m, err)
	}

	r = e.want(http.StatusOK, "POST", "/v1/memcells/"+ids[0]+"/restore", nil)
	if got := r.memcell(t); got["event_id"] != ids[0] || got["deleted_at"] != nil || r.header.Get("Memcell-Mirror") != "ok" {
		t.Errorf("restore answered %v (mirror %q)", got, r.header.Get("Memcell-Mirror"))
	}
	e.want(http.StatusNotFound, "POST", "/v1/memcells/"+ids[0]+"/restore", nil) // not deleted any more
	r = e.want(http.StatusOK, "GET", "/v1/memcells/"+ids[0], nil)
	if v := r.header.Get("Memcell-Validation"); v != "consistent" {
		t.Errorf("after restore the copy is %q", v)
	}

	// Hard delete: the document and its KV copy go.
	e.want(http.StatusNoContent, "DELETE", "/v1/memcells/"+ids[1]+"?hard=true", nil)
	if _, err := e.primary.Lookup(context.Background(), mustID(t, ids[1])); !errors.Is(err, memcell.ErrNotFound) {
		t.Errorf("after a hard delete the primary still has it: %v", err)
	}
	if _, err := e.kv.Store.Get(context.Background(), e.repo.Key(mustID(t, ids[1]))); err == nil {
		t.Error("after a hard delete the KV still has it")
	}
	e.want(http.StatusNotFound, "DELETE", "/v1/memcells/"+ids[1]+"?hard=true", nil)
	e.want(http.StatusNotFound, "POST", "/v1/memcells/65a1b2c3d4e5f60718293a4b/restore", nil)
}

// TestHardDeleteOfSoftDeleted checks that a privacy delete reaches a
// soft-deleted MemCell too.
func TestHardDeleteOfSoftDeleted(t *testing.T) {
	e := newEnv(t, nil)
	ids := e.seed(cell("alice", epoch))
	e.want(http.StatusNoContent, "DELETE", "/v1/memcells/"+ids[0], nil)
	e.want(http.StatusNoContent, "DELETE", "/v1/memcells/"+ids[0]+"?hard=true", nil)
	if st := e.state(); st.docs != 0 || st.kvEntries != 0 {
		t.Errorf("after the hard delete: %+v", st)
	}
}

func TestFlagsAffectReads(t *testing.T) {
	e := newEnv(t, nil)
	ids := e.seed(cell("alice", epoch))
	e.want(http.StatusOK, "PUT", "/v1/admin/flags", map[string]any{"mirroring": true, "validation": "off"})
	r := e.want(http.StatusOK, "GET", "/v1/memcells/"+ids[0]+"?validate=true", nil)
	if v, ok := r.header["Memcell-Validation"]; ok {
		t.Errorf("with validation off a read says %q", v)
	}
	if f := e.repo.Flags(); f.Validation != mirror.ValidationOff {
		t.Errorf("flags = %+v", f)
	}
}
