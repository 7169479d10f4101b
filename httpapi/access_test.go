package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/mirror"
)

// TestHostCheck checks the defence against DNS rebinding: without a token,
// only requests naming a loopback host or an allowed host are served.
func TestHostCheck(t *testing.T) {
	e := newEnv(t, nil)
	ids := e.seed(cell("alice", epoch))
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"localhost", true},
		{"localhost:8080", true},
		{"LocalHost.:8080", true},
		{"127.0.0.1:8080", true},
		{"127.9.9.9", true},
		{"[::1]:8080", true},
		{"[::1]", true},
		{"attacker.example", false},
		{"attacker.example:8080", false},
		{"app.localhost:8080", false},
		{"localhost.attacker.example", false},
		{"127.0.0.1.nip.io:8080", false},
		{"0.0.0.0:8080", false},
		{"192.168.1.5:8080", false},
		{"[fd00::1]:8080", false},
		{"", false},
		{"[::1", false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			e.t = t
			if tc.ok {
				e.want(200, "GET", "/v1/admin/flags", nil, "Host", tc.host)
				e.want(200, "GET", "/v1/memcells/"+ids[0], nil, "Host", tc.host)
				return
			}
			for _, target := range []string{"/v1/admin/flags", "/v1/memcells/" + ids[0], "/metrics", "/openapi.yaml", "/v1/kv/stats"} {
				r := e.want(403, "GET", target, nil, "Host", tc.host)
				if code := r.errorCode(t); code != "host_not_allowed" {
					t.Errorf("GET %s: code %q", target, code)
				}
				if !strings.Contains(string(r.body), "--allowed-hosts") || !strings.Contains(string(r.body), "set an API token") {
					t.Errorf("GET %s: the answer names no fix: %s", target, r.body)
				}
			}
			// The writes a page would make are refused before anything
			// happens: switching mirroring off, deleting everything.
			before := e.state()
			e.want(403, "PUT", "/v1/admin/flags", `{"mirroring":false,"validation":"off"}`, "Host", tc.host)
			e.want(403, "DELETE", "/v1/memcells?user_id=alice&hard=true", nil, "Host", tc.host)
			e.want(403, "DELETE", "/v1/memcells/"+ids[0]+"?hard=true", nil, "Host", tc.host)
			e.want(403, "POST", "/v1/admin/jobs", `{"kind":"repair"}`, "Host", tc.host)
			e.unchanged(before, "a request naming "+tc.host)
			if f := e.repo.Flags(); !f.Mirroring || f.Validation != mirror.ValidationOn {
				t.Errorf("flags changed to %+v", f)
			}
			// So are routes that do not exist, with no map of the API.
			req := httptest.NewRequest("GET", "/v1/nothing", nil)
			req.Host = tc.host
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			if rec.Code != 403 {
				t.Errorf("an unknown route = %d, want 403", rec.Code)
			}
			// The probes answer whatever the Host: a kubelet names the
			// pod's IP.
			e.want(200, "GET", "/healthz", nil, "Host", tc.host)
			e.want(200, "GET", "/readyz", nil, "Host", tc.host)
		})
	}
	e.t = t
	if lines := e.logs.Lines(`"msg":"http request"`, `"status":403`); len(lines) == 0 {
		t.Error("refused requests are not logged")
	}
}

// TestAllowedHosts checks Options.AllowedHosts, with and without a token.
func TestAllowedHosts(t *testing.T) {
	allowed := []string{"Memcell.Internal", "10.0.0.5", "[fd00::1]"}
	t.Run("no token", func(t *testing.T) {
		e := newEnv(t, &httpapi.Options{AllowedHosts: allowed})
		for _, host := range []string{"memcell.internal:8080", "MEMCELL.INTERNAL.", "10.0.0.5:8080", "[fd00::1]:8080", "[fd00:0::1]", "localhost:8080", "[::1]:8080"} {
			e.want(200, "GET", "/v1/admin/flags", nil, "Host", host)
		}
		for _, host := range []string{"attacker.example", "other.internal", "10.0.0.6:8080", "memcell.internal.attacker.example"} {
			r := e.want(403, "PUT", "/v1/admin/flags", `{"mirroring":false,"validation":"off"}`, "Host", host)
			if msg := string(r.body); !strings.Contains(msg, "one of its allowed hosts") || !strings.Contains(msg, "--allowed-hosts") {
				t.Errorf("Host %s: %s", host, msg)
			}
		}
		if !e.repo.Flags().Mirroring {
			t.Error("a refused PUT switched mirroring off")
		}
	})
	t.Run("token", func(t *testing.T) {
		// A token lifts the host check, unless hosts are listed.
		e := newEnv(t, &httpapi.Options{Token: "tok"})
		e.want(200, "GET", "/v1/admin/flags", nil, "Host", "memcell.example:443")
		e.want(401, "GET", "/v1/admin/flags", nil, "Host", "attacker.example", "Authorization", "")

		e = newEnv(t, &httpapi.Options{Token: "tok", AllowedHosts: allowed})
		e.want(200, "GET", "/v1/admin/flags", nil, "Host", "memcell.internal")
		e.want(200, "GET", "/v1/admin/flags", nil, "Host", "localhost:8080")
		r := e.want(403, "GET", "/v1/admin/flags", nil, "Host", "memcell.example:443")
		if msg := string(r.body); strings.Contains(msg, "set an API token") {
			t.Errorf("with a token set the answer suggests setting one: %s", msg)
		}
		// Without the token it is 401 first, whatever the Host.
		e.want(401, "GET", "/v1/admin/flags", nil, "Host", "attacker.example", "Authorization", "")
		e.want(200, "GET", "/healthz", nil, "Host", "10.1.2.3:8080", "Authorization", "")
		e.want(200, "GET", "/readyz", nil, "Host", "10.1.2.3:8080", "Authorization", "")
	})
	t.Run("invalid", func(t *testing.T) {
		e := newEnv(t, nil)
		for _, bad := range []string{"memcell.internal:8080", "*.internal", "http://memcell.internal", ""} {
			if _, err := httpapi.New(e.repo, &httpapi.Options{AllowedHosts: []string{"ok.internal", bad}}); err == nil || !strings.Contains(err.Error(), "AllowedHosts") {
				t.Errorf("AllowedHosts %q: %v, want an error", bad, err)
			}
		}
	})
}

// TestMetricsToken checks that the metrics token opens /metrics and
// nothing else, and that the API token opens /metrics too.
func TestMetricsToken(t *testing.T) {
	var ready error
	e := newEnv(t, &httpapi.Options{Token: "admin-tok", MetricsToken: "metrics-tok", Ready: func(context.Context) error { return ready }})
	const metricsAuth, adminAuth = "Bearer metrics-tok", "Bearer admin-tok"
	for _, tc := range []struct {
		method, target, auth string
		status               int
	}{
		{"GET", "/metrics", metricsAuth, 200},
		{"GET", "/metrics", adminAuth, 200},
		{"GET", "/metrics", "", 401},
		{"GET", "/metrics", "Bearer metrics-to", 401},
		{"GET", "/v1/admin/flags", metricsAuth, 401},
		{"PUT", "/v1/admin/flags", metricsAuth, 401},
		{"GET", "/v1/admin/jobs", metricsAuth, 401},
		{"GET", "/v1/kv/stats", metricsAuth, 401},
		{"GET", "/v1/memcells?user_id=alice", metricsAuth, 401},
		{"GET", "/openapi.yaml", metricsAuth, 401},
		{"GET", "/v1/admin/flags", adminAuth, 200},
		{"GET", "/readyz", metricsAuth, 200},
	} {
		var body any
		if tc.method == "PUT" {
			body = `{"mirroring":false,"validation":"off"}`
		}
		r := e.do(tc.method, tc.target, body, "Authorization", tc.auth)
		if r.status != tc.status {
			t.Errorf("%s %s with %q = %d %s, want %d", tc.method, tc.target, tc.auth, r.status, r.body, tc.status)
		}
	}
	if !e.repo.Flags().Mirroring {
		t.Error("the metrics token switched mirroring off")
	}
	// /readyz's details: the API token shows them, the metrics token and
	// no token do not.
	ready = &mirror.StoreError{Store: mirror.StorePrimary, Err: errors.New("dial tcp 10.9.8.7:27017: connection refused")}
	for auth, shown := range map[string]bool{adminAuth: true, metricsAuth: false, "": false, "Bearer nope": false} {
		r := e.want(503, "GET", "/readyz", nil, "Authorization", auth)
		if got := strings.Contains(string(r.body), "10.9.8.7"); got != shown {
			t.Errorf("readyz with %q shows the details: %v, want %v: %s", auth, got, shown, r.body)
		}
		if !strings.Contains(string(r.body), "not ready: the primary store does not answer") {
			t.Errorf("readyz with %q: %s", auth, r.body)
		}
	}

	// A metrics token without an API token: /metrics needs it (whatever
	// the Host, since it is a token), the rest is under the host check.
	e = newEnv(t, &httpapi.Options{MetricsToken: "metrics-tok"})
	e.want(401, "GET", "/metrics", nil)
	e.want(200, "GET", "/metrics", nil, "Authorization", metricsAuth)
	e.want(200, "GET", "/metrics", nil, "Authorization", metricsAuth, "Host", "10.1.2.3:8080")
	e.want(200, "GET", "/v1/admin/flags", nil)
	e.want(403, "GET", "/v1/admin/flags", nil, "Authorization", metricsAuth, "Host", "10.1.2.3:8080")
}

// TestReadyzDetails checks that without a token /readyz shows the internal
// text of a failure to callers that pass the host check only.
func TestReadyzDetails(t *testing.T) {
	ready := &mirror.StoreError{Store: mirror.StoreKV, Err: errors.New("dial tcp 10.9.8.7:6379: connection refused")}
	e := newEnv(t, &httpapi.Options{Ready: func(context.Context) error { return ready }})
	for host, shown := range map[string]bool{"localhost:8080": true, "[::1]:8080": true, "attacker.example": false, "10.1.2.3:8080": false} {
		r := e.want(503, "GET", "/readyz", nil, "Host", host)
		if got := strings.Contains(string(r.body), "10.9.8.7"); got != shown {
			t.Errorf("readyz from Host %s shows the details: %v, want %v: %s", host, got, shown, r.body)
		}
		if !strings.Contains(string(r.body), "not ready: the KV store does not answer") {
			t.Errorf("readyz from Host %s: %s", host, r.body)
		}
	}
}

// TestProbesOverHTTP checks the probes and the host check on a real
// connection, where Go's client sets the Host from the URL.
func TestProbesOverHTTP(t *testing.T) {
	e := newEnv(t, &httpapi.Options{Token: "tok"})
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/openapi.yaml": 401, "/metrics": 401} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s without a token = %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// TestOriginCheck checks the defence against cross-site requests: a page
// on another site can send a request to the loopback server under its
// real Host; without a token, its Origin must be a loopback or allowed
// host.
func TestOriginCheck(t *testing.T) {
	e := newEnv(t, &httpapi.Options{AllowedHosts: []string{"memcell.internal"}})
	ids := e.seed(cell("alice", epoch))
	e.want(204, "DELETE", "/v1/memcells/"+ids[0], nil)
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"http://localhost:3000", true},
		{"http://127.0.0.1:8080", true},
		{"https://memcell.internal", true},
		{"https://attacker.example", false},
		{"http://localhost.attacker.example", false},
		{"null", false},
		{"file://", false},
	} {
		t.Run(tc.origin, func(t *testing.T) {
			e.t = t
			if tc.ok {
				e.want(200, "GET", "/v1/admin/flags", nil, "Origin", tc.origin)
				return
			}
			before := e.state()
			// A bulk restore needs no body: a browser sends it without
			// asking first.
			r := e.want(403, "POST", "/v1/memcells/restore?user_id=alice", nil, "Origin", tc.origin)
			if code := r.errorCode(t); code != "host_not_allowed" || !strings.Contains(string(r.body), "--allowed-hosts") {
				t.Errorf("answer %s", r.body)
			}
			e.want(403, "POST", "/v1/memcells/"+ids[0]+"/restore", nil, "Origin", tc.origin)
			e.unchanged(before, "a request from "+tc.origin)
			e.want(200, "GET", "/healthz", nil, "Origin", tc.origin)
		})
	}
	// With a token, the token is the proof: a page cannot know it.
	tok := newEnv(t, &httpapi.Options{Token: "s3cret"})
	tok.want(200, "GET", "/v1/admin/flags", nil, "Origin", "https://tool.example", "Authorization", "Bearer s3cret")
}
