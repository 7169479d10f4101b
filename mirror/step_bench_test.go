package mirror

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/memcelltest"
)

// BenchmarkMirrorStep measures what a mirrored write adds after the primary
// has answered (target P1, docs/benchmarks.md): encoding the 2 KB document,
// the guarded KV write and the metrics, on each backend.
func BenchmarkMirrorStep(b *testing.B) {
	for _, backend := range memcelltest.KVBackends() {
		b.Run("backend="+backend.Name, func(b *testing.B) {
			r, err := New(nil, backend.Open(b, 0), &Options{Registerer: prometheus.NewRegistry()})
			if err != nil {
				b.Fatal(err)
			}
			m := memcelltest.NewMemCell(rand.New(rand.NewPCG(1, 1)), 2048)
			m.ID = memcell.NewID()
			docs := []*memcell.MemCell{m}
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				m.Revision = int64(i + 1)
				if mir := r.mirrorDocs(ctx, "update", docs); mir.Status != MirrorOK {
					b.Fatalf("mirror step = %+v", mir)
				}
			}
		})
	}
}

// BenchmarkValidateStep measures what a validated single read adds after
// the primary has answered (target P2): reading the KV copy, encoding the
// primary's document, comparing and counting the outcome.
func BenchmarkValidateStep(b *testing.B) {
	for _, backend := range memcelltest.KVBackends() {
		b.Run("backend="+backend.Name, func(b *testing.B) {
			r, err := New(nil, backend.Open(b, 0), &Options{Registerer: prometheus.NewRegistry()})
			if err != nil {
				b.Fatal(err)
			}
			m := memcelltest.NewMemCell(rand.New(rand.NewPCG(1, 1)), 2048)
			m.ID, m.Revision = memcell.NewID(), 1
			ctx := context.Background()
			if mir := r.mirrorDocs(ctx, "append", []*memcell.MemCell{m}); mir.Status != MirrorOK {
				b.Fatalf("mirror = %+v", mir)
			}
			b.ReportAllocs()
			for b.Loop() {
				if v := r.validateOne(ctx, m); v.Outcome != Consistent {
					b.Fatalf("outcome %s", v.Outcome)
				}
			}
		})
	}
}
