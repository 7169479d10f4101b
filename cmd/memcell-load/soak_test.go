package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/memcell/memcell/kv/rediskv/redistest"
	"github.com/memcell/memcell/memcelltest"
)

// The soak test runs the real memcell serve binary under this package's
// load for a bounded time and fails on a server error, on goroutines or
// heap that grow between the end of the first minute and the end, and on
// a mirror that verify finds different from the primary.
//
// The served binary is built without the race detector, whatever flags
// this test was built with: the race detector multiplies the server's CPU
// time and memory, which would make its heap meaningless here and its
// latency drift; the load and the checks in this process run under -race
// in make test. The crash and end-to-end tests of cmd/memcell build the
// binary the same way.

// Soak settings.
const (
	// envSoakDuration changes the soak's length (a Go duration between
	// soakMinDuration and soakMaxDuration).
	envSoakDuration     = "MEMCELL_SOAK_DURATION"
	soakDefaultDuration = 2 * time.Minute
	soakMinDuration     = 20 * time.Second
	soakMaxDuration     = 30 * time.Minute
	// envSoakSeed replays a run's random streams.
	envSoakSeed = "MEMCELL_SOAK_SEED"

	soakClients = 8
	// soakRate caps the requests per second: the soak looks for growth over
	// time, not for the most the server can take, and runs beside the other
	// packages' tests on the same cores. Uncapped it takes both cores.
	soakRate = 30
	// soakMaxLive caps the live documents, so that the cost of lists and
	// counts (which grows with the collection on some primaries), and so
	// the load, stays steady over the run.
	soakMaxLive = 160
	// The growth allowed between the first minute and the end.
	soakGoroutineSlack = 20
	soakHeapFactor     = 1.5
	soakHeapSlack      = 8 << 20
	// soakSampleEvery is how often /metrics is read; soakWindow is the
	// longest stretch of samples whose minimum stands for a point in time.
	soakSampleEvery = 2 * time.Second
	soakWindow      = 15 * time.Second
)

func TestSoak(t *testing.T) {
	tg := redistest.Standalone()
	tg.Require(t)
	d := soakDuration(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(envSoakSeed); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("$%s: %v", envSoakSeed, err)
		}
	}
	t.Logf("soak of %s, seed %d (%s=%d replays it)", d, seed, envSoakSeed, seed)

	prefix := redistest.UniquePrefix()
	t.Cleanup(func() { tg.DeleteNamespace(t, prefix) })
	s := startServe(t, "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0",
		"--kv", tg.URL("prefix="+prefix), "--log-format", "json", "--log-level", "warn")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	smp := &sampler{url: s.url + "/metrics"}
	var wg sync.WaitGroup
	wg.Go(func() { smp.run(ctx) })
	rep, err := Run(context.Background(), Config{
		URL: s.url, Clients: soakClients, Duration: d, Rate: soakRate, Users: 20, Seed: seed,
		MaxLive: soakMaxLive, Prefill: true,
	})
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	writeTable(&table, rep)
	t.Logf("load:\n%s", table.String())

	if n := rep.ServerErrors(); n > 0 {
		t.Errorf("%d answers with a 5xx status", n)
	}
	if rep.Overall.Errors > 0 {
		t.Errorf("failed requests: %v\nfirst of each: %v", rep.Errors, rep.Samples)
	}
	if rep.Overall.Requests < int64(d.Seconds()) {
		t.Errorf("only %d requests in %s", rep.Overall.Requests, d)
	}

	// Goroutines and heap: the minimum of the samples of a window, at the
	// end of the first minute (or half the run, if shorter) and at the end.
	// Under load the server collects garbage many times a second, so the
	// smallest heap of a window is close to its live heap; a single sample
	// may catch it just before a collection, twice as large.
	// A window is at most half of the stretch before it, so that the first
	// one starts after the server has warmed up (its connection pools grown
	// to the load).
	start, first := rep.Started, min(time.Minute, d/2)
	window := min(soakWindow, first/2)
	base, err := smp.minimum(start.Add(first-window), start.Add(first))
	if err != nil {
		t.Fatal(err)
	}
	last, err := smp.minimum(start.Add(d-window), start.Add(d))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("at %s: %.0f goroutines, heap in use %.1f MiB; at the end: %.0f goroutines, %.1f MiB",
		first, base.goroutines, base.heap/(1<<20), last.goroutines, last.heap/(1<<20))
	if last.goroutines > base.goroutines+soakGoroutineSlack {
		t.Errorf("goroutines grew from %.0f to %.0f (allowed: +%d)", base.goroutines, last.goroutines, soakGoroutineSlack)
	}
	if limit := base.heap*soakHeapFactor + soakHeapSlack; last.heap > limit {
		t.Errorf("heap in use grew from %.1f MiB to %.1f MiB (allowed: %.1f MiB)", base.heap/(1<<20), last.heap/(1<<20), limit/(1<<20))
	}

	// The mirror equals the primary: verify runs in the server.
	out, err := exec.Command(serveBinary(t), "kv", "verify", "--server", s.url).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		t.Errorf("kv verify found differences:\n%s", out)
	case err != nil:
		t.Errorf("kv verify: %v\n%s", err, out)
	}

	s.stop()
	if lines := s.stderr.Lines(`"level":"ERROR"`); len(lines) > 0 {
		t.Errorf("%d ERROR lines in the server's log, the first: %s", len(lines), lines[0])
	}
}

// soakDuration reads $MEMCELL_SOAK_DURATION: a Go duration between
// soakMinDuration and soakMaxDuration, 2 minutes when unset.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	s := os.Getenv(envSoakDuration)
	if s == "" {
		return soakDefaultDuration
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < soakMinDuration || d > soakMaxDuration {
		t.Fatalf("$%s = %q: want a Go duration from %s to %s", envSoakDuration, s, soakMinDuration, soakMaxDuration)
	}
	return d
}

// sample is one reading of the server's /metrics.
type sample struct {
	at         time.Time
	goroutines float64 // go_goroutines
	heap       float64 // go_memstats_heap_inuse_bytes
	err        error
}

// sampler reads /metrics every soakSampleEvery until its context ends.
type sampler struct {
	url     string
	mu      sync.Mutex
	samples []sample
}

func (s *sampler) run(ctx context.Context) {
	tick := time.NewTicker(soakSampleEvery)
	defer tick.Stop()
	for {
		smp := read(ctx, s.url)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.samples = append(s.samples, smp)
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// minimum returns the smallest goroutine count and heap among the samples
// taken between from and to; it fails when there are none or one failed.
func (s *sampler) minimum(from, to time.Time) (sample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := sample{goroutines: math.Inf(1), heap: math.Inf(1)}
	n := 0
	for _, smp := range s.samples {
		if smp.at.Before(from) || smp.at.After(to) {
			continue
		}
		if smp.err != nil {
			return out, fmt.Errorf("reading /metrics at %s: %w", smp.at.Format(time.TimeOnly), smp.err)
		}
		out.goroutines = min(out.goroutines, smp.goroutines)
		out.heap = min(out.heap, smp.heap)
		n++
	}
	if n == 0 {
		return out, fmt.Errorf("no /metrics sample between %s and %s", from.Format(time.TimeOnly), to.Format(time.TimeOnly))
	}
	return out, nil
}

// read takes one sample.
func read(ctx context.Context, url string) sample {
	smp := sample{at: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		smp.err = err
		return smp
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		smp.err = err
		return smp
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		smp.err = fmt.Errorf("status %d", resp.StatusCode)
		return smp
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		smp.err = err
		return smp
	}
	gauge := func(name string) (float64, error) {
		f, ok := fams[name]
		if !ok || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetGauge() == nil {
			return 0, fmt.Errorf("/metrics has no gauge %s", name)
		}
		return f.GetMetric()[0].GetGauge().GetValue(), nil
	}
	if smp.goroutines, err = gauge("go_goroutines"); err == nil {
		smp.heap, err = gauge("go_memstats_heap_inuse_bytes")
	}
	smp.err = err
	return smp
}

// serveBinary builds the memcell program once, without the race detector.
var serveBinary = func() func(t *testing.T) string {
	var (
		once sync.Once
		path string
		err  error
	)
	return func(t *testing.T) string {
		t.Helper()
		once.Do(func() {
			var dir string
			if dir, err = os.MkdirTemp("", "memcell-soak-bin-"); err != nil {
				return
			}
			path = filepath.Join(dir, "memcell")
			out, e := exec.Command("go", "build", "-o", path, "../memcell").CombinedOutput()
			if e != nil {
				err = fmt.Errorf("go build: %v\n%s", e, out)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return path
	}
}()

// serve is a running memcell serve process.
type serve struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	stderr *memcelltest.Buffer
	exited chan struct{} // closed when the process has exited; err is set then
	err    error
}

// startServe runs memcell serve with args and waits until it prints the
// address of its API.
func startServe(t *testing.T, args ...string) *serve {
	t.Helper()
	cmd := exec.Command(serveBinary(t), append([]string{"serve"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &serve{t: t, cmd: cmd, stderr: &memcelltest.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "api:"); ok {
				urls <- strings.TrimSpace(rest)
			}
		}
	}()
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = cmd.Process.Kill()
			<-s.exited
		}
	})
	select {
	case s.url = <-urls:
	case <-s.exited:
		t.Fatalf("memcell serve exited at start: %v\n%s", s.err, s.stderr)
	case <-time.After(2 * time.Minute):
		t.Fatalf("memcell serve printed no api line\n%s", s.stderr)
	}
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *serve) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.exited:
		if s.err != nil {
			s.t.Errorf("memcell serve exited with %v after SIGTERM\n%s", s.err, s.stderr)
		}
	case <-time.After(time.Minute):
		s.t.Fatalf("memcell serve did not stop within a minute of SIGTERM\n%s", s.stderr)
	}
}

func TestSamplerMinimum(t *testing.T) {
	t0 := time.Now()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	smp := &sampler{samples: []sample{
		{at: at(0), goroutines: 10, heap: 100},
		{at: at(2), goroutines: 30, heap: 50},
		{at: at(4), goroutines: 20, heap: 80},
		{at: at(6), err: errors.New("refused")},
	}}
	got, err := smp.minimum(at(1), at(5))
	if err != nil || got.goroutines != 20 || got.heap != 50 {
		t.Errorf("minimum(1s, 5s) = %+v, %v; want 20 goroutines, heap 50", got, err)
	}
	if _, err := smp.minimum(at(5), at(7)); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("a failed sample in the window: %v", err)
	}
	if _, err := smp.minimum(at(10), at(20)); err == nil {
		t.Error("an empty window gave no error")
	}
}
