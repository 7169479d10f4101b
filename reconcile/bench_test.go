package reconcile_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/reconcile"
)

// BenchmarkP6Verify measures target P6 (docs/benchmarks.md) on the test
// primary with the in-memory KV, for collections of 1000 and 2000 documents
// of about 2 KB. Each size is one collection on which, back to back:
//
//   - impl=rawscan reads every document through one driver cursor, copying
//     each out as bson.Raw: the floor a verify is measured against;
//   - impl=verify runs a whole Verify (primary pass and KV pass) of the
//     consistent mirror;
//   - impl=verify-extra runs it with one extra key in the KV, which makes
//     the KV pass look every key up in the primary (one $in query per
//     10,000 keys; FerretDB answers it by reading the whole collection).
//
// P6 asks verify >= 0.5x the raw scan's throughput (compare the columns
// with benchstat -col /impl) and docs=2000 <= 2.2x docs=1000 (-row /docs).
func BenchmarkP6Verify(b *testing.B) {
	for _, n := range []int{1000, 2000} {
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			e := newEnv(b, memcelltest.KVBackends()[0], 0)
			e.append(b, n)
			ctx := context.Background()
			coll := memcelltest.Collection(b, e.primary.Namespace())
			b.Run("impl=rawscan", func(b *testing.B) {
				perDoc(b, n, func() error { return rawScan(ctx, coll, n) })
			})
			b.Run("impl=verify", func(b *testing.B) {
				perDoc(b, n, func() error { return verifyClean(ctx, e, n, 0) })
			})
			b.Run("impl=verify-extra", func(b *testing.B) {
				key := e.repo.Key(memcell.NewID())
				if _, err := e.kv.Put(ctx, kv.Entry{Key: key, Value: []byte("{}")}); err != nil {
					b.Fatal(err)
				}
				defer e.kv.Delete(ctx, key, kv.MaxRev)
				perDoc(b, n, func() error { return verifyClean(ctx, e, n, 1) })
			})
		})
	}
}

// perDoc runs op b.N times and reports documents per second.
func perDoc(b *testing.B, n int, op func() error) {
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		if err := op(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/time.Since(start).Seconds(), "docs/s")
}

func rawScan(ctx context.Context, coll *mongo.Collection, n int) error {
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		return err
	}
	defer cur.Close(ctx)
	count := 0
	for cur.Next(ctx) {
		var raw bson.Raw
		if err := cur.Decode(&raw); err != nil {
			return err
		}
		count++
	}
	if err := cur.Err(); err != nil {
		return err
	}
	if count != n {
		return fmt.Errorf("scanned %d documents, want %d", count, n)
	}
	return nil
}

func verifyClean(ctx context.Context, e *env, n int, extras int64) error {
	r, err := reconcile.Verify(ctx, e.primary, e.kv, nil)
	if err != nil {
		return err
	}
	if r.Scanned != int64(n) || r.DifferenceCount() != extras {
		return fmt.Errorf("verify: %d scanned, %d differences", r.Scanned, r.DifferenceCount())
	}
	return nil
}

// BenchmarkP10Replay measures target P10 on the test primary with the
// in-memory KV: draining a pending record that lists every document of a
// collection of 2000 (impl=replay), against a sync of the same collection
// (impl=sync). P10 asks replay >= 0.5x sync's documents per second: compare
// the columns with benchstat -col /impl. The pending record is written
// again before each replay, outside the timing.
func BenchmarkP10Replay(b *testing.B) {
	const n = 2000
	e := newEnv(b, memcelltest.KVBackends()[0], 0)
	e.append(b, n)
	ctx := context.Background()
	ids := make([]memcell.ID, len(e.docs))
	for i, d := range e.docs {
		ids[i] = d.ID
	}
	b.Run("impl=sync", func(b *testing.B) {
		perDoc(b, n, func() error {
			r, err := reconcile.Sync(ctx, e.primary, e.kv, nil)
			if err == nil && r.Repaired != n {
				err = fmt.Errorf("sync wrote %d copies, want %d", r.Repaired, n)
			}
			return err
		})
	})
	b.Run("impl=replay", func(b *testing.B) {
		b.ReportAllocs()
		var elapsed time.Duration
		for b.Loop() {
			b.StopTimer()
			if _, err := e.primary.RecordPending(ctx, ids, "benchmark"); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			r, err := reconcile.Replay(ctx, e.primary, e.kv, nil)
			elapsed += time.Since(start)
			if err != nil || r.Written != n {
				b.Fatalf("Replay = %+v, %v; want %d written", r, err, n)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/elapsed.Seconds(), "docs/s")
	})
}

// BenchmarkRecover measures how long `memcell kv recover` takes to put back
// n documents the primary lost (impl=recover: every document deleted from
// the collection with the driver before each run, outside the timing),
// against a sync of the same n documents the other way (impl=sync), on
// the test primary with a Pebble KV. docs/benchmarks.md quotes the
// documents per second for the README's disaster recovery section.
func BenchmarkRecover(b *testing.B) {
	for _, n := range []int{1000, 2000} {
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			e := newEnv(b, memcelltest.KVBackends()[1], 0)
			e.append(b, n)
			ctx := context.Background()
			coll := memcelltest.Collection(b, e.primary.Namespace())
			b.Run("impl=sync", func(b *testing.B) {
				perDoc(b, n, func() error {
					_, err := reconcile.Sync(ctx, e.primary, e.kv, nil)
					return err
				})
			})
			b.Run("impl=recover", func(b *testing.B) {
				b.ReportAllocs()
				var elapsed time.Duration
				for b.Loop() {
					b.StopTimer()
					if _, err := coll.DeleteMany(ctx, bson.D{}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					start := time.Now()
					r, err := reconcile.Recover(ctx, e.primary, e.kv, nil)
					elapsed += time.Since(start)
					if err != nil || r.Repaired != int64(n) {
						b.Fatalf("Recover = %+v, %v; want %d recovered", r, err, n)
					}
				}
				b.ReportMetric(float64(n)*float64(b.N)/elapsed.Seconds(), "docs/s")
			})
		})
	}
}
