package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/memcell/memcell/httpapi"
)

// TestPprof checks the /debug/pprof/ routes: served with Options.Pprof,
// behind the API token and the host check; 404 without it, whatever
// net/http/pprof registered on http.DefaultServeMux.
func TestPprof(t *testing.T) {
	t.Run("on", func(t *testing.T) {
		e := newEnv(t, &httpapi.Options{Token: "secret", Pprof: true})
		index := e.want(http.StatusOK, "GET", "/debug/pprof/", nil)
		if !strings.Contains(string(index.body), "goroutine") {
			t.Errorf("index = %.300s, want the list of profiles", index.body)
		}
		for _, tc := range []struct {
			method, target, want string
		}{
			{"GET", "/debug/pprof/goroutine?debug=1", "goroutine profile:"},
			{"GET", "/debug/pprof/heap", ""},
			{"GET", "/debug/pprof/cmdline", ""},
			{"GET", "/debug/pprof/symbol", "num_symbols:"},
			{"POST", "/debug/pprof/symbol", "num_symbols:"},
			{"GET", "/debug/pprof/profile?seconds=1", ""},
			{"GET", "/debug/pprof/trace?seconds=0.2", ""},
		} {
			r := e.want(http.StatusOK, tc.method, tc.target, nil)
			if len(r.body) == 0 || !strings.Contains(string(r.body), tc.want) {
				t.Errorf("%s %s = %.200q, want a body with %q", tc.method, tc.target, r.body, tc.want)
			}
		}
		e.want(http.StatusNotFound, "GET", "/debug/pprof/nosuch", nil)
		for _, target := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
			r := e.want(http.StatusUnauthorized, "GET", target, nil, "Authorization", "")
			if code := r.errorCode(t); code != "unauthorized" {
				t.Errorf("GET %s without the token: code %q", target, code)
			}
			e.want(http.StatusUnauthorized, "GET", target, nil, "Authorization", "Bearer wrong")
		}
	})
	t.Run("host check", func(t *testing.T) {
		e := newEnv(t, &httpapi.Options{Pprof: true})
		e.want(http.StatusOK, "GET", "/debug/pprof/", nil)
		e.want(http.StatusForbidden, "GET", "/debug/pprof/heap", nil, "Host", "attacker.example:8080")
	})
	t.Run("off", func(t *testing.T) {
		e := newEnv(t, &httpapi.Options{Token: "secret"})
		for _, target := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1"} {
			r := e.want(http.StatusNotFound, "GET", target, nil)
			if code := r.errorCode(t); code != "not_found" {
				t.Errorf("GET %s with profiling off: code %q", target, code)
			}
			e.want(http.StatusUnauthorized, "GET", target, nil, "Authorization", "")
		}
	})
}
