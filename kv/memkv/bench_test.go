package memkv_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/kvtest"
	"github.com/memcell/memcell/kv/memkv"
)

// rwMap is the baseline of target P4 (docs/benchmarks.md): a plain map behind
// one sync.RWMutex, with the same copy semantics as memkv (values copied in
// and out).
type rwMap struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func (r *rwMap) get(key string) ([]byte, bool) {
	r.mu.RLock()
	v, ok := r.m[key]
	r.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return bytes.Clone(v), true
}

func (r *rwMap) put(key string, v []byte) {
	v = bytes.Clone(v)
	r.mu.Lock()
	r.m[key] = v
	r.mu.Unlock()
}

func filledMap() *rwMap {
	r := &rwMap{m: make(map[string][]byte)}
	for i := range kvtest.BenchKeys {
		r.put(kvtest.BenchKey(i), kvtest.BenchValue(i))
	}
	return r
}

func filledStore(b *testing.B) *memkv.Store {
	s, err := memkv.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	kvtest.Fill(b, s)
	return s
}

// BenchmarkP4Get compares Get with the baseline; compare impl=memkv with
// impl=rwmap in benchstat.
func BenchmarkP4Get(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=memkv", func(b *testing.B) {
		s := filledStore(b)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Get(ctx, kvtest.BenchKey(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=rwmap", func(b *testing.B) {
		r := filledMap()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, ok := r.get(kvtest.BenchKey(i)); !ok {
				b.Fatal("missing")
			}
		}
	})
}

// BenchmarkP4Put compares a guarded Put (revision check, tombstone check,
// stats upkeep) with the baseline's plain store.
func BenchmarkP4Put(b *testing.B) {
	ctx := context.Background()
	v := kvtest.BenchValue(1)
	b.Run("impl=memkv", func(b *testing.B) {
		s := filledStore(b)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Put(ctx, kv.Entry{Key: kvtest.BenchKey(i), Value: v, Rev: uint64(i + 2)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=rwmap", func(b *testing.B) {
		r := filledMap()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			r.put(kvtest.BenchKey(i), v)
		}
	})
}

// BenchmarkP4GetParallel runs Get on every GOMAXPROCS; run it with
// -cpu 1,2 to see how each implementation scales.
func BenchmarkP4GetParallel(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=memkv", func(b *testing.B) {
		s := filledStore(b)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := s.Get(ctx, kvtest.BenchKey(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("impl=rwmap", func(b *testing.B) {
		r := filledMap()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, ok := r.get(kvtest.BenchKey(i)); !ok {
					b.Error("missing")
					return
				}
			}
		})
	})
}

// bytesPerEntry measures the heap that n entries of valueSize bytes under
// 32-byte keys hold, per entry.
func bytesPerEntry(tb testing.TB, n, valueSize int) float64 {
	tb.Helper()
	value := bytes.Repeat([]byte{'v'}, valueSize)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, err := memkv.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	for i := range n {
		key := fmt.Sprintf("memcell:%024x", i) // 32 bytes, held by the store
		if _, err := s.Put(ctx, kv.Entry{Key: key, Value: value, Rev: 1}); err != nil {
			tb.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// p7Limit is target P7's bound for one entry (docs/benchmarks.md).
func p7Limit(keySize, valueSize int) float64 {
	return 1.15*float64(keySize+valueSize) + 64
}

// TestBytesPerEntry holds memkv to P7. Heap accounting is deterministic
// enough for a bound with this much room; it is not a timing.
func TestBytesPerEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates about 100 MB")
	}
	for _, size := range []int{256, 2048} {
		got := bytesPerEntry(t, 40000, size)
		limit := p7Limit(32, size)
		t.Logf("value %d B: %.0f bytes per entry (P7 limit %.0f)", size, got, limit)
		if got > limit {
			t.Errorf("value %d B: %.0f bytes per entry, over the P7 limit of %.0f", size, got, limit)
		}
	}
}

// BenchmarkP7BytesPerEntry reports the heap per entry next to the P7 limit.
func BenchmarkP7BytesPerEntry(b *testing.B) {
	for _, size := range []int{256, 2048} {
		b.Run(fmt.Sprintf("value=%d", size), func(b *testing.B) {
			var got float64
			for b.Loop() {
				got = bytesPerEntry(b, 20000, size)
			}
			b.ReportMetric(got, "bytes/entry")
			b.ReportMetric(p7Limit(32, size), "p7-limit-bytes/entry")
		})
	}
}
