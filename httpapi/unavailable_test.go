package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/embedded"
	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/kv/memkv"
	"github.com/memcell/memcell/mirror"
	"github.com/memcell/memcell/mongostore"
)

// TestPrimaryDown stops a primary under a running handler: reads and writes
// answer 503 with the JSON error body, and nothing reaches the KV.
func TestPrimaryDown(t *testing.T) {
	ctx := context.Background()
	srv, err := embedded.Start(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	primary, err := mongostore.Connect(ctx, srv.URI()+"?serverSelectionTimeoutMS=500&connectTimeoutMS=500", "down", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close(ctx)
	store, err := memkv.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := mirror.New(primary, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := httpapi.New(repo, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ method, target, body string }{
		{"GET", "/v1/memcells/" + memcell.NewID().String(), ""},
		{"POST", "/v1/memcells", `{"timestamp":"2026-01-12T10:30:00Z"}`},
		{"GET", "/v1/memcells?user_id=alice", ""},
	} {
		req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
		req.Host = testHost
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"code":"unavailable"`) {
			t.Errorf("%s %s with the primary down = %d %s, want 503 unavailable", tc.method, tc.target, rec.Code, rec.Body)
		}
	}
	if st, _ := store.Stats(ctx); st.EntryCount != 0 {
		t.Errorf("the KV got %d entries while the primary was down", st.EntryCount)
	}
}
