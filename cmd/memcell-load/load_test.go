package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
)

func TestMain(m *testing.M) { os.Exit(memcelltest.Main(m)) }

// apiServer serves the API over a fresh database of the test primary and
// an in-memory KV; wrap, if not nil, wraps the handler.
func apiServer(t *testing.T, token string, wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	primary, _ := memcelltest.Store(t)
	reg := prometheus.NewRegistry()
	repo, err := mirror.New(primary, memcelltest.KVBackends()[0].Open(t, 0), &mirror.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(repo.Close)
	h, err := httpapi.New(repo, &httpapi.Options{Registerer: reg, Gatherer: reg, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestParseMix(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "get=3,create=1", want: "create=1,get=3"},
		{in: " soft_delete = 2 , hard_delete=0,batch_get=1", want: "soft_delete=2,batch_get=1"},
		{in: DefaultMix.String(), want: DefaultMix.String()},
		{in: "get=1,restore=1", err: `unknown kind "restore"`},
		{in: "fetch=1", err: `unknown kind "fetch"`},
		{in: "get", err: "is not kind=weight"},
		{in: "get=-1", err: "whole number"},
		{in: "get=x", err: "whole number"},
		{in: "get=0", err: "no kind has a weight"},
		{in: "", err: "no kind has a weight"},
	} {
		m, err := ParseMix(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseMix(%q) = %v, %v; want an error with %q", tc.in, m, err, tc.err)
			}
		case err != nil:
			t.Errorf("ParseMix(%q): %v", tc.in, err)
		case m.String() != tc.want:
			t.Errorf("ParseMix(%q) = %s, want %s", tc.in, m, tc.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	o, err := parseFlags([]string{"--clients", "3", "--duration", "5s", "--json", "--seed", "9"},
		env(map[string]string{envToken: "from-env"}), &bytes.Buffer{})
	cfg, asJSON := o.cfg, o.asJSON
	if err != nil || !asJSON || o.scale || cfg.Clients != 3 || cfg.Duration != 5*time.Second || cfg.Seed != 9 ||
		cfg.Token != "from-env" || cfg.URL != "http://127.0.0.1:8080" || cfg.Mix.String() != DefaultMix.String() {
		t.Errorf("parseFlags = %+v, %v, %v", cfg, asJSON, err)
	}
	o, err = parseFlags([]string{"--token", "from-flag", "--url", "http://127.0.0.1:1/"}, env(map[string]string{envToken: "from-env"}), &bytes.Buffer{})
	cfg = o.cfg
	if err != nil || cfg.Token != "from-flag" || cfg.URL != "http://127.0.0.1:1" || cfg.Seed == 0 {
		t.Errorf("parseFlags with --token = %+v, %v", cfg, err)
	}
	o, err = parseFlags([]string{"--scale", "100", "--clients", "4", "--users", "50", "--seed", "7"}, env(nil), &bytes.Buffer{})
	if sc := o.scaleCfg; err != nil || !o.scale || sc.Docs != 100 || sc.Writers != 4 || sc.Users != 50 || sc.Seed != 7 ||
		sc.Samples != 100 || sc.SampleTime != time.Minute || sc.RequestTimeout != 5*time.Minute || sc.URL != "http://127.0.0.1:8080" {
		t.Errorf("parseFlags with --scale = %+v, %v", o, err)
	}
	for _, args := range [][]string{
		{"--scale", "0"}, {"--scale", "10", "--samples", "0"}, {"--scale", "10", "--mix", "get=1"},
		{"--scale", "10", "--serve", "bin/memcell", "--url", "http://127.0.0.1:1"},
		{"--clients", "0"}, {"--duration", "0s"}, {"--mix", "nope=1"}, {"--url", "ftp://x"},
		{"--users", "0"}, {"--max-live", "0"}, {"--rate", "-1"}, {"stray"}, {"--no-such-flag"},
		{"--samples", "5"}, {"--serve", "bin/memcell"},
	} {
		if _, err := parseFlags(args, env(nil), &bytes.Buffer{}); !errors.Is(err, errUsage) {
			t.Errorf("parseFlags(%q) = %v, want a usage error", args, err)
		}
	}
}

// TestRunAllKinds runs every kind of request against the API and checks
// that a correct server gives a clean report within the cap.
func TestRunAllKinds(t *testing.T) {
	srv := apiServer(t, "", nil)
	rep, err := Run(context.Background(), Config{
		URL: srv.URL, Clients: 3, Duration: 3 * time.Second, Users: 4, Seed: 1, MaxLive: 12, Prefill: true,
		Mix: Mix{KindCreate: 3, KindGet: 3, KindPatch: 2, KindList: 1, KindCount: 1, KindSoftDelete: 2, KindHardDelete: 1, KindBatchGet: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Overall.Errors != 0 {
		t.Fatalf("errors against a correct server: %v %v", rep.Errors, rep.Samples)
	}
	if rep.Prefilled != 12 || rep.Live > 12 || rep.Live == 0 {
		t.Errorf("prefilled %d, live %d; want 12 and at most 12", rep.Prefilled, rep.Live)
	}
	for _, k := range Kinds {
		s := rep.Kinds[k]
		if s.Requests == 0 || s.P50ms <= 0 || s.P99ms < s.P50ms || s.MaxMs < s.P99ms {
			t.Errorf("kind %s: %+v", k, s)
		}
	}
	if rep.Kinds[KindSoftDelete].Requests != rep.Kinds[KindRestore].Requests {
		t.Errorf("%d soft deletes but %d restores", rep.Kinds[KindSoftDelete].Requests, rep.Kinds[KindRestore].Requests)
	}
	var sum int64
	for _, s := range rep.Kinds {
		sum += s.Requests
	}
	if sum != rep.Overall.Requests || rep.Throughput <= 0 {
		t.Errorf("overall %d requests (%f/s), kinds sum to %d", rep.Overall.Requests, rep.Throughput, sum)
	}
}

// TestRunRate checks that --rate caps the requests of all clients.
func TestRunRate(t *testing.T) {
	srv := apiServer(t, "", nil)
	rep, err := Run(context.Background(), Config{
		URL: srv.URL, Clients: 4, Duration: 2 * time.Second, Rate: 10, Users: 2, Seed: 3, MaxLive: 4, Prefill: true,
		Mix: Mix{KindGet: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	// 10 a second for 2 seconds, the first at once; a slow machine sends
	// fewer, never more.
	if n := rep.Overall.Requests; n > 22 || n < 5 || rep.Overall.Errors > 0 {
		t.Errorf("%d requests (%d failed) in 2s at 10/s", n, rep.Overall.Errors)
	}
}

// TestRunFindsFaults serves answers that are wrong in several ways and
// checks that each is counted under its key.
func TestRunFindsFaults(t *testing.T) {
	var n atomic.Int64
	srv := apiServer(t, "", func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == "/v1/memcells/count":
				http.Error(w, "boom", http.StatusInternalServerError)
			case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/memcells/") && n.Add(1)%2 == 0:
				// Every second get answers a changed document.
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.Header().Del("Content-Length")
				w.WriteHeader(rec.Code)
				w.Write(bytes.Replace(rec.Body.Bytes(), []byte(`"summary":"`), []byte(`"summary":"changed `), 1))
			case r.URL.Path == "/v1/memcells/batch-get":
				// The validation header goes missing.
				h.ServeHTTP(headerDropper{w}, r)
			default:
				h.ServeHTTP(w, r)
			}
		})
	})
	rep, err := Run(context.Background(), Config{
		URL: srv.URL, Clients: 2, Duration: 2 * time.Second, Users: 2, Seed: 2, MaxLive: 6, Prefill: true,
		Mix: Mix{KindGet: 4, KindCount: 1, KindBatchGet: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"500", "mismatch", "validation:"} {
		if rep.Errors[key] == 0 || rep.Samples[key] == "" {
			t.Errorf("no %q errors counted: %v %v", key, rep.Errors, rep.Samples)
		}
	}
	if rep.ServerErrors() != rep.Errors["500"] || rep.Kinds[KindCount].Errors != rep.Kinds[KindCount].Requests {
		t.Errorf("server errors %d, count kind %+v", rep.ServerErrors(), rep.Kinds[KindCount])
	}
	if rep.Kinds[KindGet].Errors == 0 || rep.Kinds[KindGet].Errors == rep.Kinds[KindGet].Requests {
		t.Errorf("get: %+v; want about half failed", rep.Kinds[KindGet])
	}
}

// headerDropper drops the Memcell-Validation header of an answer.
type headerDropper struct{ http.ResponseWriter }

func (h headerDropper) WriteHeader(code int) {
	h.Header().Del("Memcell-Validation")
	h.ResponseWriter.WriteHeader(code)
}

func (h headerDropper) Write(b []byte) (int, error) {
	h.Header().Del("Memcell-Validation")
	return h.ResponseWriter.Write(b)
}

// TestCommand runs the command as a user would: the token from the
// environment, a JSON report, the exit statuses.
func TestCommand(t *testing.T) {
	srv := apiServer(t, "tok-load", nil)
	env := func(k string) string {
		if k == envToken {
			return "tok-load"
		}
		return ""
	}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"--url", srv.URL, "--clients", "2", "--duration", "1s", "--max-live", "4", "--json"}, env, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Overall.Requests == 0 || rep.Clients != 2 {
		t.Fatalf("report %s: %v", out.String(), err)
	}
	if strings.Contains(out.String()+errOut.String(), "tok-load") {
		t.Error("the token appears in the output")
	}
	// Without the token: the probe says so, exit 2.
	err = run(context.Background(), []string{"--url", srv.URL, "--duration", "1s"}, func(string) string { return "" }, &out, &errOut)
	if !errors.Is(err, ErrCouldNotRun) || !strings.Contains(err.Error(), envToken) {
		t.Errorf("run without the token = %v", err)
	}
	// A wrong token gets past no request: every one fails, exit 1.
	out.Reset()
	rep2, err := Run(context.Background(), Config{URL: srv.URL, Token: "wrong", Clients: 1, Duration: 500 * time.Millisecond, Users: 1, MaxLive: 1})
	if err != nil || rep2.Errors["401"] == 0 || rep2.Overall.Errors != rep2.Overall.Requests {
		t.Errorf("wrong token: %+v, %v", rep2, err)
	}
	writeTable(&out, rep2)
	if !strings.Contains(out.String(), "401: ") {
		t.Errorf("the table does not list the 401s:\n%s", out.String())
	}
	// Nothing listens: exit 2.
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	if err := run(context.Background(), []string{"--url", closed.URL}, env, &out, &errOut); !errors.Is(err, ErrCouldNotRun) {
		t.Errorf("run against nothing = %v", err)
	}
}
