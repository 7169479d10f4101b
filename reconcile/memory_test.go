//go:build !race

package reconcile_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/reconcile"
)

// heapProbe wraps a store and samples the live heap (after a collection)
// whenever the job reads a batch or scans keys.
type heapProbe struct {
	kv.Store
	peak uint64
}

func (p *heapProbe) sample() {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.peak = max(p.peak, ms.HeapAlloc)
}

func (p *heapProbe) BatchGet(ctx context.Context, keys []string) (map[string][]byte, error) {
	p.sample()
	return p.Store.BatchGet(ctx, keys)
}

func (p *heapProbe) Scan(ctx context.Context, prefix string, fn func(kv.Item) error) error {
	n := 0
	return p.Store.Scan(ctx, prefix, func(it kv.Item) error {
		if n++; n%500 == 0 {
			p.sample()
		}
		return fn(it)
	})
}

// TestMemoryPerDocument checks the P6 target's "memory does not grow per
// document" (docs/benchmarks.md): the live heap a verify adds while it runs is about the same
// for 2000 documents as for 200, far less than the 1800 extra documents
// would take if the job kept anything of each. Both runs use batches of
// 100 so that both fill their batches. (The embedded primary runs in this
// process too; an unsorted scan streams, so its share stays bounded.)
// Samples are taken after forced collections, at every KV batch read and
// every 500 keys scanned.
//
// The race detector makes this test take a minute (the embedded primary
// runs in the process too) and changes what is allocated, so the file is
// built without it; make test runs it in a race-free pass of its own.
func TestMemoryPerDocument(t *testing.T) {
	if testing.Short() {
		t.Skip("populates 2200 documents")
	}
	// added[extra][n] is the most live heap a verify of n documents added,
	// with an extra key (which makes the KV pass look every key up in the
	// primary) or without.
	added := map[bool]map[int]int64{false: {}, true: {}}
	for _, n := range []int{200, 2000} {
		e := newEnv(t, memcelltest.KVBackends()[0], 0)
		e.append(t, n)
		e.docs = nil // not needed, and not to be collected mid-run
		// Clear the writes' intents now, not while the verify is measured.
		e.repo.Close()
		for _, extra := range []bool{false, true} {
			if extra {
				key := e.repo.Key(memcell.NewID())
				if _, err := e.kv.Put(context.Background(), kv.Entry{Key: key, Value: []byte("{}")}); err != nil {
					t.Fatal(err)
				}
			}
			probe := &heapProbe{Store: e.kv}
			opts := &reconcile.Options{BatchSize: 100}
			runtime.GC() // twice: the first only moves sync.Pool contents aside
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base := ms.HeapAlloc
			r, err := reconcile.Verify(context.Background(), e.primary, probe, opts)
			if err != nil || r.DifferenceCount() != int64(len(r.Samples)) || (r.DifferenceCount() == 1) != extra {
				t.Fatalf("Verify of %d: %+v, %v", n, r, err)
			}
			added[extra][n] = int64(probe.peak) - int64(base)
			t.Logf("%d documents, extra key %v: the job added at most %d KB of live heap", n, extra, added[extra][n]/1024)
		}
	}
	// A document's encoding is about 2 KB; its decoded form more.
	const perDoc = 2048
	for extra, a := range added {
		growth := a[2000] - a[200]
		if limit := int64(1800 * perDoc / 10); growth > limit {
			t.Errorf("extra key %v: the live heap of a verify grew by %d bytes from 200 to 2000 documents (%d per document), want under %d",
				extra, growth, growth/1800, limit)
		}
	}
}
