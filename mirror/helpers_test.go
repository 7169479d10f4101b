package mirror_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
	"github.com/memcell/memcell/mongostore"
)

func TestMain(m *testing.M) { os.Exit(memcelltest.Main(m)) }

// env is one repository under test with everything around it.
type env struct {
	repo    *mirror.Repository
	primary *mongostore.Store
	kv      *memcelltest.FaultKV
	reg     *prometheus.Registry
	logs    *memcelltest.Buffer
}

func newEnv(t *testing.T, backend memcelltest.KVBackend, opts *mirror.Options) *env {
	t.Helper()
	return openEnv(t, backend, opts)
}

// newBenchEnv is newEnv for benchmarks, logging only warnings and above.
func newBenchEnv(b *testing.B, backend memcelltest.KVBackend) *env {
	b.Helper()
	return openEnv(b, backend, nil)
}

func openEnv(t testing.TB, backend memcelltest.KVBackend, opts *mirror.Options) *env {
	t.Helper()
	primary, _ := memcelltest.Store(t)
	var err error
	e := &env{primary: primary, kv: memcelltest.NewFaultKV(backend.Open(t, 0)), reg: prometheus.NewRegistry(), logs: &memcelltest.Buffer{}}
	var o mirror.Options
	if opts != nil {
		o = *opts
	}
	level := slog.LevelDebug
	if _, bench := t.(*testing.B); bench {
		level = slog.LevelWarn
	}
	o.Logger = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: level}))
	o.Registerer = e.reg
	// The tests assert each write's KV outcome, which the synchronous mode
	// reports; the async mode's tests ask for it.
	f := mirror.Flags{Mirroring: true, Validation: mirror.ValidationOn}
	if o.Flags != nil {
		f = *o.Flags
	}
	if f.Mode == "" {
		f.Mode = mirror.ModeSync
	}
	o.Flags = &f
	e.repo, err = mirror.New(primary, e.kv, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.repo.Close) // before the KV closes
	return e
}

// forEachBackend runs fn once per KV backend configuration.
func forEachBackend(t *testing.T, fn func(t *testing.T, b memcelltest.KVBackend)) {
	for _, b := range memcelltest.KVBackends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, b) })
	}
}

func memory() memcelltest.KVBackend { return memcelltest.KVBackends()[0] }

// differences compares every document of the primary with the KV and
// returns a line per difference: a copy missing or different, or a copy
// of a document the primary does not have.
func (e *env) differences(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := e.repo.Drain(dctx); err != nil {
		t.Fatalf("the queued KV writes did not drain: %v", err)
	}
	var diffs []string
	seen := map[string]bool{}
	for m, err := range e.primary.Scan(ctx, false, memcell.ID{}, 0) {
		if err != nil {
			t.Fatal(err)
		}
		want, err := memcell.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		key := e.repo.Key(m.ID)
		seen[key] = true
		got, err := e.kv.Store.Get(ctx, key)
		switch {
		case errors.Is(err, kv.ErrNotFound):
			diffs = append(diffs, "missing "+key)
		case err != nil:
			t.Fatal(err)
		case !bytes.Equal(got, want):
			_, d, _ := memcell.Compare(want, got)
			diffs = append(diffs, "differs "+key+": "+memcell.DescribeDiffs(d))
		}
	}
	err := e.kv.Store.Scan(ctx, mirror.DefaultKeyPrefix, func(it kv.Item) error {
		if !seen[it.Key] {
			diffs = append(diffs, "extra "+it.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return diffs
}

func (e *env) assertMirrored(t *testing.T, when string) {
	t.Helper()
	if d := e.differences(t); len(d) > 0 {
		t.Fatalf("%s: KV differs from MongoDB in %d places:\n%s", when, len(d), strings.Join(d, "\n"))
	}
}

func ptr[T any](v T) *T { return &v }

// concurrentUpdates updates id's summary from writers goroutines, each times
// times, and fails the test on an error.
func (e *env) concurrentUpdates(t *testing.T, id memcell.ID, writers, times int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range times {
				if _, _, err := e.repo.Update(context.Background(), id, map[string]any{"summary": fmt.Sprintf("w%d-%d", w, i)}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
