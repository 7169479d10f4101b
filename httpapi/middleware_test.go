package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
)

func TestAuth(t *testing.T) {
	e := newEnv(t, &httpapi.Options{Token: "s3cret"})
	cases := []struct {
		name, target, auth string
		status             int
		challenge          string
	}{
		{"no token", "/v1/kv/stats", "", 401, `Bearer realm="memcell"`},
		{"wrong token", "/v1/kv/stats", "Bearer nope", 401, `Bearer realm="memcell", error="invalid_token"`},
		{"token prefix", "/v1/kv/stats", "Bearer s3cre", 401, `Bearer realm="memcell", error="invalid_token"`},
		{"basic", "/v1/kv/stats", "Basic czNjcmV0", 401, `Bearer realm="memcell"`},
		{"right token", "/v1/kv/stats", "Bearer s3cret", 200, ""},
		{"scheme in lower case", "/v1/kv/stats", "bearer s3cret", 200, ""},
		{"metrics need it", "/metrics", "", 401, `Bearer realm="memcell"`},
		{"readyz does not", "/readyz", "", 200, ""},
		{"a MemCell needs it", "/v1/memcells/65a1b2c3d4e5f60718293a4b", "", 401, `Bearer realm="memcell"`},
		{"healthz does not", "/healthz", "", 200, ""},
		{"openapi.yaml needs it", "/openapi.yaml", "", 401, `Bearer realm="memcell"`},
		{"openapi.yaml with it", "/openapi.yaml", "Bearer s3cret", 200, ""},
		{"flags need it", "/v1/admin/flags", "", 401, `Bearer realm="memcell"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			r := e.want(tc.status, "GET", tc.target, nil, "Authorization", tc.auth)
			if got := r.header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.challenge)
			}
			if tc.status == 401 {
				if code := r.errorCode(t); code != "unauthorized" {
					t.Errorf("code = %q", code)
				}
			}
		})
	}
	e.t = t
	// Writes are refused before anything happens.
	before := e.state()
	e.want(401, "POST", "/v1/memcells", `{"timestamp":"2026-01-12T10:30:00Z"}`, "Authorization", "")
	e.unchanged(before, "an unauthenticated append")
	// Unknown routes too: no token, no map of the API.
	req := httptest.NewRequest("GET", "/v1/nothing", nil)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Errorf("an unknown route without a token = %d, want 401", rec.Code)
	}
	if strings.Contains(e.logs.String(), "s3cret") {
		t.Error("the token appears in the log")
	}
}

func TestRequestID(t *testing.T) {
	var seen []string
	var logs memcelltest.Buffer
	reqLog := slog.New(httpapi.RequestIDHandler(slog.NewJSONHandler(&logs, nil)))
	e := newEnv(t, &httpapi.Options{Ready: func(ctx context.Context) error {
		seen = append(seen, httpapi.RequestID(ctx))
		reqLog.InfoContext(ctx, "checking readiness")
		return nil
	}})
	r := e.want(200, "GET", "/readyz", nil, "X-Request-Id", "req-42.a:b")
	if got := r.header.Get("X-Request-Id"); got != "req-42.a:b" {
		t.Errorf("X-Request-Id = %q, want the incoming one", got)
	}
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, bad := range []string{"", "has space", strings.Repeat("x", 129), "quote\"", "new\nline"} {
		r = e.want(200, "GET", "/readyz", nil, "X-Request-Id", bad)
		if got := r.header.Get("X-Request-Id"); !hexID.MatchString(got) {
			t.Errorf("for incoming %q, X-Request-Id = %q, want a new one", bad, got)
		}
	}
	if len(seen) != 6 || seen[0] != "req-42.a:b" || !hexID.MatchString(seen[1]) {
		t.Errorf("RequestID in the context = %q", seen)
	}
	if !strings.Contains(logs.String(), `"request_id":"req-42.a:b"`) {
		t.Errorf("RequestIDHandler did not add the id: %s", logs.String())
	}
	if httpapi.RequestID(context.Background()) != "" {
		t.Error("RequestID of a bare context is not empty")
	}
}

// TestRequestLog checks the one line per request, and that neither the
// token nor bodies are logged.
func TestRequestLog(t *testing.T) {
	e := newEnv(t, &httpapi.Options{Token: "tok-never-logged"})
	r := e.want(201, "POST", "/v1/memcells", `{"timestamp":"2026-01-12T10:30:00Z","summary":"private-body-text"}`, "X-Request-Id", "log-1")
	id := r.memcell(t)["event_id"].(string)
	e.want(200, "GET", "/v1/memcells/"+id+"?validate=false", nil, "X-Request-Id", "log-2")
	lines := e.logs.Lines(`"msg":"http request"`)
	if len(lines) != 2 {
		t.Fatalf("%d request lines, want 2:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &line); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"method": "GET", "route": "GET /v1/memcells/{event_id}", "status": float64(200),
		"request_id": "log-2", "path": "/v1/memcells/" + id,
	} {
		if line[k] != want {
			t.Errorf("log %s = %v, want %v", k, line[k], want)
		}
	}
	if _, ok := line["duration"]; !ok {
		t.Error("no duration in the request line")
	}
	if b, _ := line["bytes"].(float64); b < 100 {
		t.Errorf("bytes = %v", line["bytes"])
	}
	all := e.logs.String()
	for _, secret := range []string{"tok-never-logged", "private-body-text", "validate=false"} {
		if strings.Contains(all, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	ids := e.seed(cell("alice", epoch))
	e.want(200, "GET", "/v1/memcells/"+ids[0], nil)
	e.want(200, "GET", "/v1/memcells/"+ids[0], nil)
	e.want(404, "GET", "/v1/memcells/65a1b2c3d4e5f60718293a4b", nil)
	e.want(400, "GET", "/v1/memcells/xyz", nil)
	e.want(404, "GET", "/v1/nothing/"+ids[0], nil)
	e.want(405, "PUT", "/v1/kv/stats", nil)
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	// The page serves the API's metrics and the mirror's, of one registry.
	memcelltest.AssertScraped(t, srv.URL+"/metrics", `
# HELP memcell_http_requests_total HTTP requests answered, by route pattern and status code.
# TYPE memcell_http_requests_total counter
memcell_http_requests_total{code="200",route="GET /v1/memcells/{event_id}"} 2
memcell_http_requests_total{code="400",route="GET /v1/memcells/{event_id}"} 1
memcell_http_requests_total{code="404",route="GET /v1/memcells/{event_id}"} 1
memcell_http_requests_total{code="404",route="unmatched"} 1
memcell_http_requests_total{code="405",route="unmatched"} 1
# HELP memcell_validations_total Validation outcomes of reads (consistent, inconsistent, missing, error, skipped, pending).
# TYPE memcell_validations_total counter
memcell_validations_total{backend="memory",outcome="consistent"} 2
memcell_validations_total{backend="memory",outcome="error"} 0
memcell_validations_total{backend="memory",outcome="inconsistent"} 0
memcell_validations_total{backend="memory",outcome="missing"} 0
memcell_validations_total{backend="memory",outcome="pending"} 0
memcell_validations_total{backend="memory",outcome="skipped"} 0
`)
	// The scrape is timed too.
	memcelltest.AssertMetrics(t, memcelltest.ObservationCounts(e.reg), `
# HELP memcell_http_request_duration_seconds_count Time to answer HTTP requests, by route pattern.
# TYPE memcell_http_request_duration_seconds_count counter
memcell_http_request_duration_seconds_count{route="GET /metrics"} 1
memcell_http_request_duration_seconds_count{route="GET /v1/memcells/{event_id}"} 4
memcell_http_request_duration_seconds_count{route="unmatched"} 2
`)
	page := string(e.want(200, "GET", "/metrics", nil).body)
	if strings.Contains(page, `route="/v1/`) || strings.Contains(page, ids[0]) {
		t.Error("a raw path or an id appears as a label")
	}
}

func TestNew(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := httpapi.New(nil, nil); err == nil {
		t.Error("New(nil repo) succeeded")
	}
	if _, err := httpapi.New(e.repo, &httpapi.Options{MaxBodyBytes: -1}); err == nil {
		t.Error("New with a negative MaxBodyBytes succeeded")
	}
	if _, err := httpapi.New(e.repo, &httpapi.Options{Registerer: e.reg}); err == nil {
		t.Error("registering the HTTP metrics twice succeeded")
	}
	// nil options: defaults, /metrics is 404, no metrics registered.
	h, err := httpapi.New(e.repo, nil)
	if err != nil {
		t.Fatal(err)
	}
	bare := *e
	bare.h = h
	r := bare.want(404, "GET", "/metrics", nil)
	if code := r.errorCode(t); code != "not_found" {
		t.Errorf("code = %q", code)
	}
	bare.want(200, "GET", "/readyz", nil)
}

func TestHealthAndReadiness(t *testing.T) {
	fail := errors.New("primary: connection refused")
	var ready error
	e := newEnv(t, &httpapi.Options{Version: "v1.2.3", Ready: func(context.Context) error { return ready }})
	r := e.want(200, "GET", "/healthz", nil)
	if string(r.body) != "{\"status\":\"ok\"}\n" {
		t.Errorf("healthz = %s", r.body)
	}
	r = e.want(200, "GET", "/readyz", nil)
	if string(r.body) != "{\"status\":\"ready\",\"version\":\"v1.2.3\"}\n" {
		t.Errorf("readyz = %s", r.body)
	}
	ready = fail
	r = e.want(503, "GET", "/readyz", nil)
	if code := r.errorCode(t); code != "unavailable" || !strings.Contains(string(r.body), "connection refused") ||
		!strings.Contains(string(r.body), "not ready: a store does not answer") {
		t.Errorf("not ready answered %s", r.body)
	}
	ready = errors.Join(&mirror.StoreError{Store: mirror.StoreKV, Err: fail})
	r = e.want(503, "GET", "/readyz", nil)
	if !strings.Contains(string(r.body), "not ready: the KV store does not answer") {
		t.Errorf("KV not ready answered %s", r.body)
	}
	ready = errors.Join(&mirror.StoreError{Store: mirror.StorePrimary, Err: fail}, &mirror.StoreError{Store: mirror.StoreKV, Err: fail})
	r = e.want(503, "GET", "/readyz", nil)
	if !strings.Contains(string(r.body), "not ready: neither the primary nor the KV store answers") {
		t.Errorf("both not ready answered %s", r.body)
	}
	e.want(200, "GET", "/healthz", nil)
}

// TestPanicRecovered checks that a panic becomes a logged 500.
func TestPanicRecovered(t *testing.T) {
	e := newEnv(t, &httpapi.Options{Ready: func(context.Context) error { panic("boom") }})
	r := e.want(500, "GET", "/readyz", nil)
	if code := r.errorCode(t); code != "internal" || !strings.Contains(string(r.body), `"internal error"`) || strings.Contains(string(r.body), "boom") {
		t.Errorf("panic answered %s", r.body)
	}
	if lines := e.logs.Lines("panic serving request", "boom", "stack"); len(lines) != 1 {
		t.Errorf("panic log lines: %q", lines)
	}
	if lines := e.logs.Lines(`"msg":"http request"`, `"status":500`, `"level":"ERROR"`); len(lines) != 1 {
		t.Errorf("request lines for the panic: %q", lines)
	}
	// The handler still serves.
	e.want(200, "GET", "/healthz", nil)
}

func TestKVStatsAndFlags(t *testing.T) {
	e := newEnv(t, nil)
	e.seed(cell("alice", epoch), cell("bob", epoch))
	var stats httpapi.KVStats
	e.want(200, "GET", "/v1/kv/stats", nil).decode(t, &stats)
	st, _ := e.kv.Store.Stats(context.Background())
	if stats.Backend != "memory" || stats.EntryCount != 2 || stats.TotalSizeBytes != st.TotalSizeBytes || stats.TotalSizeBytes == 0 {
		t.Errorf("stats = %+v, KV says %+v", stats, st)
	}

	r := e.want(200, "GET", "/v1/admin/flags", nil)
	if string(r.body) != "{\"mirroring\":true,\"validation\":\"on\",\"sample_percent\":0,\"mirror_mode\":\"sync\"}\n" {
		t.Errorf("flags = %s", r.body)
	}
	r = e.want(200, "PUT", "/v1/admin/flags", `{"mirroring":true,"validation":"sample","sample_percent":25}`)
	if string(r.body) != "{\"mirroring\":true,\"validation\":\"sample\",\"sample_percent\":25,\"mirror_mode\":\"sync\"}\n" {
		t.Errorf("new flags = %s", r.body)
	}
	e.want(200, "PUT", "/v1/admin/flags", `{"mirroring":false,"validation":"on"}`, "Content-Type", "application/json; charset=utf-8")
	r = e.want(201, "POST", "/v1/memcells", `{"timestamp":"2026-01-12T10:30:00Z"}`)
	if m := r.header.Get("Memcell-Mirror"); m != "skipped" {
		t.Errorf("with mirroring off, Memcell-Mirror = %q", m)
	}
	r = e.want(200, "GET", "/v1/memcells/"+r.memcell(t)["event_id"].(string), nil)
	if v := r.header.Get("Memcell-Validation"); v != "missing" {
		t.Errorf("a MemCell written with mirroring off validates %q", v)
	}
}

// TestRequestIDLoggedOnce checks that every line logged for a request (the
// request line, the handler's own WARN and ERROR lines, the mirror's lines
// logged with the request's context, a caller's lines) carries its
// request_id exactly once, whether or not Options.Logger is wrapped in a
// RequestIDHandler. It counts the key in the raw lines: decoding a line
// into a map would hide a duplicate.
func TestRequestIDLoggedOnce(t *testing.T) {
	// want fails unless exactly one line has msg and the request id, and no
	// line of the log has request_id twice.
	want := func(t *testing.T, logs *memcelltest.Buffer, id string, msgs ...string) {
		t.Helper()
		for _, l := range logs.Lines(`"request_id":`) {
			if n := strings.Count(l, `"request_id":`); n != 1 {
				t.Errorf("a log line has request_id %d times: %s", n, l)
			}
		}
		for _, msg := range msgs {
			if lines := logs.Lines(`"msg":"`+msg+`"`, `"request_id":"`+id+`"`); len(lines) != 1 {
				t.Errorf("%d lines %q with request_id %q, want 1:\n%s", len(lines), msg, id, logs)
			}
		}
	}
	notReady := errors.New("the primary is away")

	t.Run("wrapped", func(t *testing.T) {
		var e *env
		e = newEnv(t, &httpapi.Options{Ready: func(ctx context.Context) error {
			// A caller that logs the id itself does not get it twice.
			log := slog.New(httpapi.RequestIDHandler(slog.NewJSONHandler(e.logs, nil)))
			log.InfoContext(ctx, "caller explicit", "request_id", httpapi.RequestID(ctx))
			log.With("request_id", httpapi.RequestID(ctx)).InfoContext(ctx, "caller with")
			log.WithGroup("g").InfoContext(ctx, "caller group", "request_id", httpapi.RequestID(ctx))
			return notReady
		}})
		e.want(404, "GET", "/v1/nothing", nil, "X-Request-Id", "w-404")
		want(t, e.logs, "w-404", "http request")
		e.want(503, "GET", "/readyz", nil, "X-Request-Id", "w-ready")
		want(t, e.logs, "w-ready", "caller explicit", "caller with", "httpapi: not ready", "http request")
		if lines := e.logs.Lines(`"msg":"caller group"`, `"g":{"request_id":"w-ready"}`); len(lines) != 1 {
			t.Errorf("the caller's grouped line: %q", lines)
		}

		// The mirror's WARN for a missing KV copy, logged with the request's
		// context.
		if err := e.repo.SetFlags(mirror.Flags{Mirroring: false, Validation: mirror.ValidationOn}); err != nil {
			t.Fatal(err)
		}
		id := e.seed(cell("alice", epoch))[0]
		if err := e.repo.SetFlags(mirror.Flags{Mirroring: true, Validation: mirror.ValidationOn}); err != nil {
			t.Fatal(err)
		}
		e.want(200, "GET", "/v1/memcells/"+id, nil, "X-Request-Id", "w-get")
		want(t, e.logs, "w-get", "mirror: kv copy missing", "http request")
	})

	t.Run("not wrapped", func(t *testing.T) {
		var logs memcelltest.Buffer
		e := newEnv(t, &httpapi.Options{
			Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
			Ready:  func(context.Context) error { return notReady },
		})
		e.want(404, "GET", "/v1/nothing", nil, "X-Request-Id", "u-404")
		want(t, &logs, "u-404", "http request")
		e.want(503, "GET", "/readyz", nil, "X-Request-Id", "u-ready")
		want(t, &logs, "u-ready", "httpapi: not ready", "http request")
	})

	if h := httpapi.RequestIDHandler(slog.DiscardHandler); httpapi.RequestIDHandler(h) != h {
		t.Error("RequestIDHandler wraps its own handler again")
	}
}
