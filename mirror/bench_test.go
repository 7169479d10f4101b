package mirror_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
)

// timed runs op b.N times and reports the median latency as p50-ns, the
// measure targets P1 and P2 are stated in (docs/benchmarks.md).
func timed(b *testing.B, op func(i int) error) {
	b.Helper()
	var durs []time.Duration
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if err := op(i); err != nil {
			b.Fatal(err)
		}
		durs = append(durs, time.Since(start))
	}
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds()), "p50-ns")
}

func benchEnv(b *testing.B, backend memcelltest.KVBackend, docs int) (*env, []*memcell.MemCell) {
	e := newBenchEnv(b, backend)
	r := rand.New(rand.NewPCG(1, 1))
	out := make([]*memcell.MemCell, docs)
	for i := range out {
		m, _, err := e.repo.Append(context.Background(), memcelltest.NewMemCell(r, 2048))
		if err != nil {
			b.Fatal(err)
		}
		out[i] = m
	}
	return e, out
}

// BenchmarkP1Write compares an update through the primary alone with the same
// update mirrored, on the embedded primary (target P1, docs/benchmarks.md).
// Compare impl=primary with impl=mirrored per backend in benchstat; the
// absolute added cost is BenchmarkMirrorStep.
func BenchmarkP1Write(b *testing.B) {
	for _, backend := range []memcelltest.KVBackend{memory(), memcelltest.KVBackends()[1], memcelltest.KVBackends()[3]} {
		e, docs := benchEnv(b, backend, 100)
		ctx := context.Background()
		fields := map[string]any{"summary": "benchmark update"}
		b.Run("backend="+backend.Name+"/impl=primary", func(b *testing.B) {
			timed(b, func(i int) error {
				_, err := e.primary.Update(ctx, docs[i%len(docs)].ID, fields)
				return err
			})
		})
		b.Run("backend="+backend.Name+"/impl=mirrored", func(b *testing.B) {
			timed(b, func(i int) error {
				_, _, err := e.repo.Update(ctx, docs[i%len(docs)].ID, fields)
				return err
			})
		})
	}
}

// BenchmarkP2Read compares a plain single read with a validated one
// (target P2).
func BenchmarkP2Read(b *testing.B) {
	for _, backend := range []memcelltest.KVBackend{memory(), memcelltest.KVBackends()[3]} {
		e, docs := benchEnv(b, backend, 100)
		ctx := context.Background()
		for _, validate := range []bool{false, true} {
			name := "plain"
			if validate {
				name = "validated"
			}
			b.Run("backend="+backend.Name+"/impl="+name, func(b *testing.B) {
				timed(b, func(i int) error {
					_, v, err := e.repo.Get(ctx, docs[i%len(docs)].ID, mirror.Validate(validate))
					if err == nil && validate && v.Outcome != mirror.Consistent {
						b.Fatalf("outcome %s", v.Outcome)
					}
					return err
				})
			})
		}
	}
}

// BenchmarkP3BatchRead100 compares a plain batch read of 100 documents
// with a validated one (target P3: added at most 20%).
func BenchmarkP3BatchRead100(b *testing.B) {
	for _, backend := range []memcelltest.KVBackend{memory(), memcelltest.KVBackends()[3]} {
		e, docs := benchEnv(b, backend, 100)
		ids := make([]memcell.ID, len(docs))
		for i, d := range docs {
			ids[i] = d.ID
		}
		ctx := context.Background()
		for _, validate := range []bool{false, true} {
			name := "plain"
			if validate {
				name = "validated"
			}
			b.Run("backend="+backend.Name+"/impl="+name, func(b *testing.B) {
				timed(b, func(int) error {
					m, v, err := e.repo.GetMany(ctx, ids, nil, mirror.Validate(validate))
					if err == nil && (len(m) != 100 || (validate && v.Outcome != mirror.Consistent)) {
						b.Fatalf("%d docs, outcome %s", len(m), v.Outcome)
					}
					return err
				})
			})
		}
	}
}
