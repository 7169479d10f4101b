package reconcile_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/reconcile"
)

// benchSizes are the collection sizes of the P6 benchmarks: the time of
// 2N documents against N shows whether a job stays linear.
var benchSizes = []int{1000, 2000}

// BenchmarkVerify measures a whole Verify (primary pass and KV pass) of a
// consistent mirror in the in-memory KV, on the test primary. Compare it
// with BenchmarkRawScan of the same size for design P6's throughput ratio
// (verify at least 0.5x the raw scan), and docs=2000 with docs=1000 for
// linearity (at most 2.2x).
func BenchmarkVerify(b *testing.B) {
	benchVerify(b, false)
}

// BenchmarkVerifyExtra is BenchmarkVerify with one extra key in the KV, so
// that the KV pass cannot take its shortcut and looks every key up in the
// primary (one $in query per 10,000 keys, which FerretDB answers by
// reading the whole collection).
func BenchmarkVerifyExtra(b *testing.B) {
	benchVerify(b, true)
}

func benchVerify(b *testing.B, extra bool) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			e := newEnv(b, memcelltest.KVBackends()[0], 0)
			e.append(b, n)
			ctx := context.Background()
			want := int64(0)
			if extra {
				want = 1
				if _, err := e.kv.Put(ctx, kv.Entry{Key: e.repo.Key(memcell.NewID()), Value: []byte("{}")}); err != nil {
					b.Fatal(err)
				}
			}
			start := time.Now()
			for b.Loop() {
				r, err := reconcile.Verify(ctx, e.primary, e.kv, nil)
				if err != nil {
					b.Fatal(err)
				}
				if r.Scanned != int64(n) || r.DifferenceCount() != want {
					b.Fatalf("verify: %d scanned, %d differences", r.Scanned, r.DifferenceCount())
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/time.Since(start).Seconds(), "docs/s")
		})
	}
}

// BenchmarkRawScan reads the same collection through one driver cursor,
// copying each document out as bson.Raw: the floor a verify is measured
// against.
func BenchmarkRawScan(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			e := newEnv(b, memcelltest.KVBackends()[0], 0)
			e.append(b, n)
			ctx := context.Background()
			coll := e.primary.Collection()
			start := time.Now()
			for b.Loop() {
				cur, err := coll.Find(ctx, bson.D{})
				if err != nil {
					b.Fatal(err)
				}
				count := 0
				for cur.Next(ctx) {
					var raw bson.Raw
					if err := cur.Decode(&raw); err != nil {
						b.Fatal(err)
					}
					count++
				}
				if err := cur.Err(); err != nil {
					b.Fatal(err)
				}
				cur.Close(ctx)
				if count != n {
					b.Fatalf("scanned %d documents, want %d", count, n)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/time.Since(start).Seconds(), "docs/s")
		})
	}
}
