package reconcile_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
	"github.com/memcell/memcell/mongostore"
	"github.com/memcell/memcell/reconcile"
)

func TestMain(m *testing.M) { os.Exit(memcelltest.Main(m)) }

// env is a primary and a KV kept in sync by a mirror.Repository, with the
// documents written through it.
type env struct {
	primary *mongostore.Store
	db      string // the primary's database
	kv      kv.Store
	repo    *mirror.Repository
	docs    []*memcell.MemCell // as appended
	logs    *memcelltest.Buffer
	reg     *prometheus.Registry
}

// newEnv opens a fresh primary database and a fresh store of backend with
// the tombstone grace period grace (0: the default).
func newEnv(t testing.TB, backend memcelltest.KVBackend, grace time.Duration) *env {
	t.Helper()
	primary, db := memcelltest.Store(t)
	var err error
	e := &env{primary: primary, db: db, kv: backend.Open(t, grace), logs: &memcelltest.Buffer{}, reg: prometheus.NewRegistry()}
	// Sync mode: the tests compare the stores right after the writes.
	e.repo, err = mirror.New(primary, e.kv, &mirror.Options{Flags: &mirror.Flags{Mirroring: true, Validation: mirror.ValidationOn, Mode: mirror.ModeSync}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.repo.Close) // before the KV closes
	return e
}

// populate appends n documents of about 2 KB through the mirror, then
// updates every 20th and soft-deletes every 25th, so the collection holds
// several revisions and deletion marks. (Few: FerretDB reads the whole
// collection for each update, which the race detector makes slow.)
func (e *env) populate(t testing.TB, n int) {
	t.Helper()
	ctx := context.Background()
	first := len(e.docs)
	e.append(t, n)
	for i, m := range e.docs[first:] {
		var err error
		switch {
		case i%25 == 5:
			_, _, err = e.repo.SoftDelete(ctx, m.ID, "tester")
		case i%20 == 3:
			_, _, err = e.repo.Update(ctx, m.ID, map[string]any{"summary": fmt.Sprintf("updated %d", i)})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// append appends n documents of about 2 KB through the mirror, from a few
// goroutines. (Updates cost FerretDB a read of the whole collection each;
// appends do not, so benchmarks make their collections with append.)
func (e *env) append(t testing.TB, n int) {
	t.Helper()
	ctx := context.Background()
	const workers = 4
	docs := make([]*memcell.MemCell, n)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), uint64(len(e.docs))))
			for i := w; i < n; i += workers {
				m, _, err := e.repo.Append(ctx, memcelltest.NewMemCell(r, 2048))
				if err != nil {
					errs <- err
					return
				}
				docs[i] = m
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e.docs = append(e.docs, docs...)
}

// opts returns job options logging to e.logs and counting on e.reg, with
// batches of 7 documents so that jobs cross many batch boundaries and set
// differing documents aside for longer than maxSuspectAge batches.
func (e *env) opts() *reconcile.Options {
	return &reconcile.Options{
		Logger:     slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: e.reg,
		BatchSize:  7,
	}
}

// dryRun returns a copy of o with DryRun set.
func dryRun(o *reconcile.Options) *reconcile.Options {
	c := *o
	c.DryRun = true
	return &c
}

// snapshot returns every live key and value of the KV.
func (e *env) snapshot(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := e.kv.Scan(context.Background(), "", func(it kv.Item) error {
		out[it.Key] = string(it.Value)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// verify runs Verify and fails the test on an error.
func (e *env) verify(t testing.TB, opts *reconcile.Options) *reconcile.Report {
	t.Helper()
	if opts == nil {
		opts = e.opts()
	}
	r, err := reconcile.Verify(context.Background(), e.primary, e.kv, opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return r
}

// assertConsistent fails the test when Verify finds any difference.
func (e *env) assertConsistent(t testing.TB, when string) *reconcile.Report {
	t.Helper()
	r := e.verify(t, nil)
	if n := r.DifferenceCount(); n > 0 {
		t.Fatalf("%s: Verify found %d differences: %v\nsamples: %+v", when, n, r.Differences, r.Samples)
	}
	return r
}

// found lists a report's samples as "kind id" lines, sorted.
func found(r *reconcile.Report) []string {
	var out []string
	for _, d := range r.Samples {
		out = append(out, string(d.Kind)+" "+d.EventID)
	}
	slices.Sort(out)
	return out
}

// counts returns a report's non-zero difference counts.
func counts(r *reconcile.Report) map[reconcile.Kind]int64 {
	out := maps.Clone(r.Differences)
	maps.DeleteFunc(out, func(_ reconcile.Kind, n int64) bool { return n == 0 })
	return out
}

func ptr[T any](v T) *T { return &v }
