package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/memkv"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
)

// P8: the full HTTP stack (httpapi over mirror over an in-memory primary
// and memkv, served over loopback) against a bare net/http handler that
// answers the same 2 KB body, both driven by 32 concurrent clients with the
// same keep-alive transport. Target: the stack's cost per request ≤ 2× the
// bare handler's, and its p99 ≤ 3× its p50.
//
// ns/op is wall time per request across the 32 clients (the inverse of
// throughput); cpu-ns/op the CPU time the process (clients and server)
// spent per request, which other work on the machine disturbs less; p50-ns
// and p99-ns are the latencies of single requests as the clients saw them.

// p8Clients is the number of concurrent clients.
const p8Clients = 32

func BenchmarkP8HTTP(b *testing.B) {
	for _, op := range []string{"get", "post"} {
		for _, impl := range []string{"bare", "stack"} {
			b.Run("op="+op+"/impl="+impl, func(b *testing.B) {
				fx := newP8Fixture(b, nil, nil)
				var h http.Handler
				if impl == "stack" {
					h = fx.stack
				} else {
					h = fx.bare
				}
				srv := httptest.NewServer(h)
				defer srv.Close()
				benchP8(b, srv.URL, op, impl == "stack", fx)
			})
		}
	}
}

// p8Fixture is one stored 2 KB MemCell, a create body of the same size,
// and the two handlers that serve them.
type p8Fixture struct {
	repo        *mirror.Repository
	stack, bare http.Handler
	id          string
	getBody     []byte // the API representation of the stored MemCell
	createBody  []byte // a POST body of ~2 KB
	createdBody []byte // what a create answers (for the bare handler)
}

// newP8Fixture builds the fixture over store (nil: a memkv store) with
// the mirror's flags (nil: the defaults).
func newP8Fixture(b *testing.B, store kv.Store, flags *mirror.Flags) *p8Fixture {
	b.Helper()
	if store == nil {
		var err error
		if store, err = memkv.New(nil); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { store.Close() })
	}
	reg := prometheus.NewRegistry()
	// Logging as memcell serve does: one JSON line per request, here to
	// io.Discard, so that encoding the lines is part of the cost.
	logger := slog.New(httpapi.RequestIDHandler(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})))
	repo, err := mirror.New(newMemPrimary(), store, &mirror.Options{Logger: logger, Registerer: reg, Flags: flags})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(repo.Close)
	fx0 := &p8Fixture{repo: repo}
	stack, err := httpapi.New(repo, &httpapi.Options{Logger: logger, Registerer: reg, Gatherer: reg})
	if err != nil {
		b.Fatal(err)
	}
	fx := fx0
	fx.stack = stack

	r := rand.New(rand.NewPCG(8, 8))
	fx.createBody = createBody(b, memcelltest.NewMemCell(r, 2048))
	m, _, err := repo.Append(context.Background(), memcelltest.NewMemCell(r, 2048))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := repo.Drain(ctx); err != nil { // the GETs validate it
		b.Fatal(err)
	}
	fx.id = m.ID.String()
	if fx.getBody, err = memcell.EncodeAPI(m); err != nil {
		b.Fatal(err)
	}
	// The bare handler's create answer: the stack's answer to one create.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/v1/memcells", bytes.NewReader(fx.createBody))
	req.Header.Set("Content-Type", "application/json")
	stack.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		b.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	fx.createdBody = rec.Body.Bytes()
	if len(fx.getBody) < 2048 || len(fx.createBody) < 1900 {
		b.Fatalf("bodies of %d and %d bytes, want about 2 KB", len(fx.getBody), len(fx.createBody))
	}

	fx.bare = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, status := fx.getBody, http.StatusOK
		if r.Method == http.MethodPost {
			if _, err := io.ReadAll(r.Body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body, status = fx.createdBody, http.StatusCreated
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
	return fx
}

// createBody is m as a POST body: its API representation without the
// fields the store manages.
func createBody(b *testing.B, m *memcell.MemCell) []byte {
	b.Helper()
	enc, err := memcell.EncodeAPI(m)
	if err != nil {
		b.Fatal(err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(enc, &obj); err != nil {
		b.Fatal(err)
	}
	for _, f := range memcell.ManagedFields {
		delete(obj, f)
	}
	out, err := json.Marshal(obj)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// benchP8 runs b.N requests of op against base from p8Clients goroutines
// and reports the p50 and p99 of their latencies.
// A validated GET of the stack must say so in Memcell-Validation.
func benchP8(b *testing.B, base, op string, stack bool, fx *p8Fixture) {
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: p8Clients, MaxIdleConnsPerHost: p8Clients, DisableCompression: true,
	}}
	defer client.CloseIdleConnections()
	method, url, body, want := http.MethodGet, base+"/v1/memcells/"+fx.id, []byte(nil), http.StatusOK
	if op == "post" {
		method, url, body, want = http.MethodPost, base+"/v1/memcells", fx.createBody, http.StatusCreated
	}
	send := func() (time.Duration, error) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequest(method, url, rd)
		if err != nil {
			return 0, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		switch {
		case err != nil:
			return 0, err
		case resp.StatusCode != want:
			return 0, fmt.Errorf("%s %s: %d", method, url, resp.StatusCode)
		case n < 2048:
			return 0, fmt.Errorf("%s %s: a body of %d bytes", method, url, n)
		case op == "get" && stack && resp.Header.Get("Memcell-Validation") != "consistent":
			return 0, fmt.Errorf("GET: Memcell-Validation %q", resp.Header.Get("Memcell-Validation"))
		}
		return d, nil
	}
	// Open the connections before the clock starts.
	var warm sync.WaitGroup
	for range p8Clients {
		warm.Go(func() {
			if _, err := send(); err != nil {
				b.Error(err)
			}
		})
	}
	warm.Wait()

	var (
		mu  sync.Mutex
		all []time.Duration
	)
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((p8Clients + procs - 1) / procs) // p8Clients goroutines
	cpu0 := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		lat := make([]time.Duration, 0, 1024)
		for pb.Next() {
			d, err := send()
			if err != nil {
				b.Error(err)
				return
			}
			lat = append(lat, d)
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	q := func(p float64) float64 { return float64(all[min(len(all)-1, int(p*float64(len(all))))]) }
	b.ReportMetric(q(0.50), "p50-ns")
	b.ReportMetric(q(0.99), "p99-ns")
}

// cpuTime is the CPU time (user and system) the process has used: clients
// and server together, so that cpu-ns/op is what a request costs whatever
// else the machine runs.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
