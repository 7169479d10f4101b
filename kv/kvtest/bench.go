package kvtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/memcell/memcell/kv"
)

// ValueSize is the size of the values the benchmarks write: about one
// MemCell in its canonical encoding.
const ValueSize = 2048

// BenchKeys is how many distinct keys the benchmarks cycle through.
const BenchKeys = 1024

// BenchValue returns a ValueSize value of JSON-like text, different per seed.
func BenchValue(seed int) []byte {
	r := rand.New(rand.NewPCG(uint64(seed), 7))
	v := make([]byte, ValueSize)
	const alphabet = `abcdefghijklmnopqrstuvwxyz0123456789 ,:"{}[]`
	for i := range v {
		v[i] = alphabet[r.IntN(len(alphabet))]
	}
	return v
}

var benchKeys = func() []string {
	keys := make([]string, BenchKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("memcell:%024x", i)
	}
	return keys
}()

// BenchKey returns the i-th benchmark key (modulo BenchKeys), shaped like a
// mirrored MemCell key. Keys are made once, so benchmarks time the store.
func BenchKey(i int) string {
	return benchKeys[i%BenchKeys]
}

// FillBatch is how many entries each batch of Fill writes.
const FillBatch = 128

// Fill writes BenchKeys entries of BenchValue at revision 1, in batches of
// FillBatch.
func Fill(b testing.TB, s kv.Store) {
	b.Helper()
	entries := make([]kv.Entry, 0, FillBatch)
	for i := range BenchKeys {
		entries = append(entries, kv.Entry{Key: BenchKey(i), Value: BenchValue(i), Rev: 1})
		if len(entries) == cap(entries) || i == BenchKeys-1 {
			if _, err := s.BatchPut(context.Background(), entries); err != nil {
				b.Fatal(err)
			}
			entries = entries[:0]
		}
	}
}

// RunBenchmarks measures Get, Put, BatchGet of 100 keys and parallel Get on
// ValueSize values. Backends compare these with their raw library in their
// own benchmark files, under the same sub-benchmark names.
func RunBenchmarks(b *testing.B, open Opener) {
	ctx := context.Background()
	b.Run("Get", func(b *testing.B) {
		s := open(b, longGrace)
		Fill(b, s)
		b.SetBytes(ValueSize)
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Get(ctx, BenchKey(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Put", func(b *testing.B) {
		s := open(b, longGrace)
		Fill(b, s)
		v := BenchValue(1)
		b.SetBytes(ValueSize)
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			// Rising revisions: every put is stored, as in live mirroring.
			if _, err := s.Put(ctx, kv.Entry{Key: BenchKey(i), Value: v, Rev: uint64(i + 2)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("BatchGet100", func(b *testing.B) {
		s := open(b, longGrace)
		Fill(b, s)
		keys := make([]string, 100)
		b.SetBytes(100 * ValueSize)
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			for j := range keys {
				keys[j] = BenchKey(i*100 + j)
			}
			m, err := s.BatchGet(ctx, keys)
			if err != nil || len(m) != len(keys) {
				b.Fatalf("BatchGet = %d values, %v", len(m), err)
			}
		}
	})
	b.Run("GetParallel", func(b *testing.B) {
		s := open(b, longGrace)
		Fill(b, s)
		b.SetBytes(ValueSize)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(BenchKeys)
			for pb.Next() {
				if _, err := s.Get(ctx, BenchKey(i)); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}
