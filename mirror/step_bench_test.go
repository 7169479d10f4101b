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
// has answered (design P1): encoding the 2 KB document, the guarded KV write
// and the metrics, on each backend.
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
