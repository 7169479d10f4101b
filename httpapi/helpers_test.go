package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
	"github.com/memcell/memcell/mongostore"
)

func TestMain(m *testing.M) { os.Exit(memcelltest.Main(m)) }

// env is one API handler under test with everything around it.
type env struct {
	t       testing.TB
	h       http.Handler
	repo    *mirror.Repository
	primary *mongostore.Store
	kv      *memcelltest.FaultKV
	reg     *prometheus.Registry
	logs    *memcelltest.Buffer
	// token is sent with every request made by do.
	token string
}

// newEnv builds a handler over a fresh primary database and an in-memory KV
// wrapped in a FaultKV. opts may set anything but Registerer, which is the
// env's registry; a nil Logger or Gatherer means the env's.
func newEnv(t testing.TB, opts *httpapi.Options) *env {
	t.Helper()
	return newEnvWith(t, opts, nil)
}

// newEnvWith is newEnv with Options.Jobs set to what jobs returns for the
// env, when jobs is not nil.
func newEnvWith(t testing.TB, opts *httpapi.Options, jobs func(e *env) *httpapi.JobRunner) *env {
	t.Helper()
	primary, _ := memcelltest.Store(t)
	var err error
	e := &env{
		t: t, primary: primary, reg: prometheus.NewRegistry(), logs: &memcelltest.Buffer{},
		kv: memcelltest.NewFaultKV(memcelltest.KVBackends()[0].Open(t, 0)),
	}
	// One logger for both, its lines tagged with the request id, as
	// memcell serve does.
	logger := slog.New(httpapi.RequestIDHandler(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	// Sync mode: the tests read each write's KV outcome from its answer.
	e.repo, err = mirror.New(primary, e.kv, &mirror.Options{Logger: logger, Registerer: e.reg, Flags: &mirror.Flags{Mirroring: true, Validation: mirror.ValidationOn, Mode: mirror.ModeSync}})
	if err != nil {
		t.Fatal(err)
	}
	var o httpapi.Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = logger
	}
	if o.Gatherer == nil {
		o.Gatherer = e.reg
	}
	o.Registerer = e.reg
	if jobs != nil {
		o.Jobs = jobs(e)
	}
	e.token = o.Token
	e.h, err = httpapi.New(e.repo, &o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// response is one answer of the handler.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer %d %q is not the JSON expected: %v", r.status, r.body, err)
	}
}

// errorCode returns the code of an error answer, failing the test if the
// body is not the error shape.
func (r *response) errorCode(t testing.TB) string {
	t.Helper()
	var b struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	r.decode(t, &b)
	if b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("error answer %q lacks code or message", r.body)
	}
	return b.Error.Code
}

// memcell decodes a MemCell answer.
func (r *response) memcell(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.decode(t, &m)
	return m
}

// body encodes a request body: nil for none, a string or []byte as is,
// anything else as JSON.
func body(t testing.TB, v any) io.Reader {
	t.Helper()
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return strings.NewReader(v)
	case []byte:
		return bytes.NewReader(v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

// testHost is the Host of the requests do sends unless told otherwise:
// httptest's example.com is no host a server without a token answers to.
const testHost = "localhost:8080"

// do sends a request (a body is sent as application/json unless headers
// say otherwise; headers are name, value pairs, "Host" setting the Host),
// checks the answer against the OpenAPI document and returns it.
func (e *env) do(method, target string, reqBody any, headers ...string) *response {
	e.t.Helper()
	req := httptest.NewRequest(method, target, body(e.t, reqBody))
	req.Host = testHost
	if reqBody != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if http.CanonicalHeaderKey(headers[i]) == "Host" {
			req.Host = headers[i+1]
			continue
		}
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	res := rec.Result()
	got := &response{status: res.StatusCode, header: res.Header, body: rec.Body.Bytes()}
	checkAgainstSpec(e.t, req, got)
	return got
}

// want is do that fails the test unless the status is status.
func (e *env) want(status int, method, target string, reqBody any, headers ...string) *response {
	e.t.Helper()
	r := e.do(method, target, reqBody, headers...)
	if r.status != status {
		e.t.Fatalf("%s %s = %d %s, want %d", method, target, r.status, r.body, status)
	}
	return r
}

// cell returns a valid MemCell of user at ts with the given keywords.
func cell(user string, ts time.Time, keywords ...string) *memcell.MemCell {
	m := &memcell.MemCell{
		Timestamp: ts,
		Summary:   ptr("about " + strings.Join(keywords, ", ")),
		Type:      ptr(memcell.Conversation),
		OriginalData: []memcell.RawData{{
			DataType: memcell.Conversation,
			Messages: []memcell.Message{{Content: "hello from " + user}},
		}},
		Participants: []string{user, "zoe"},
		Keywords:     keywords,
		Extend:       map[string]any{"score": 0.5},
	}
	if user != "" {
		m.UserID = &user
	}
	return m
}

// seed stores MemCells through the repository and returns their ids.
func (e *env) seed(cells ...*memcell.MemCell) []string {
	e.t.Helper()
	ids := make([]string, len(cells))
	for i, c := range cells {
		stored, _, err := e.repo.Append(context.Background(), c)
		if err != nil {
			e.t.Fatal(err)
		}
		ids[i] = stored.ID.String()
	}
	return ids
}

// state is what a write changes: the documents, their revisions and the
// KV.
type state struct {
	docs, revisions     int64
	kvEntries, kvWrites int64
}

func (e *env) state() state {
	e.t.Helper()
	ctx := context.Background()
	cur, err := memcelltest.Collection(e.t, e.primary.Namespace()).Find(ctx, bson.D{})
	if err != nil {
		e.t.Fatal(err)
	}
	defer cur.Close(ctx)
	var s state
	for cur.Next(ctx) {
		s.docs++
		if v, ok := cur.Current.Lookup(memcell.RevisionField).AsInt64OK(); ok {
			s.revisions += v
		}
	}
	if err := cur.Err(); err != nil {
		e.t.Fatal(err)
	}
	st, err := e.kv.Store.Stats(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	s.kvEntries = st.EntryCount
	s.kvWrites = e.kv.Writes.Load()
	return s
}

// unchanged fails the test if anything was written since before.
func (e *env) unchanged(before state, what string) {
	e.t.Helper()
	if after := e.state(); after != before {
		e.t.Errorf("%s wrote something: before %+v, after %+v", what, before, after)
	}
}

var epoch = time.Date(2026, 1, 12, 10, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }
