package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/memcell/memcell/memcelltest"
)

// FuzzCreate sends arbitrary bodies to POST /v1/memcells: every answer must
// be 201 or a 4xx with the JSON error body (never a 5xx or a panic), must
// match the OpenAPI document, and a refused body must write nothing. The
// seed corpus is in testdata/fuzz/FuzzCreate.
func FuzzCreate(f *testing.F) {
	f.Add([]byte(`{"timestamp":"2026-01-12T10:30:00.123Z"}`))
	f.Add([]byte(`{"timestamp":"2026-01-12T18:30:00.123456+08:00","user_id":"u","extend":{"e":[1.5,1e300,-0]},"x":{"y":null}}`))
	e := newEnv(f, nil)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		docsBefore, err := memcelltest.Collection(t, e.primary.Namespace()).CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		writesBefore := e.kv.Writes.Load()

		req := httptest.NewRequest("POST", "/v1/memcells", bytes.NewReader(data))
		req.Host = testHost
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		r := &response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}

		switch {
		case r.status == http.StatusCreated:
		case r.status >= 400 && r.status < 500:
			r.errorCode(t)
			docsAfter, err := memcelltest.Collection(t, e.primary.Namespace()).CountDocuments(ctx, bson.D{})
			if err != nil {
				t.Fatal(err)
			}
			if docsAfter != docsBefore || e.kv.Writes.Load() != writesBefore {
				t.Errorf("refused body %q wrote something", data)
			}
		default:
			t.Fatalf("body %q answered %d %s", data, r.status, r.body)
		}
		checkAgainstSpec(t, req, r)
	})
}
