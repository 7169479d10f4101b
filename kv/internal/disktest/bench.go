package disktest

import (
	"math/rand/v2"
	"testing"

	"github.com/memcell/memcell/kv/kvtest"
)

// RawDB is a backend's library opened bare, with the options the backend's
// stores open with, for the impl=raw benchmarks.
type RawDB interface {
	// Get returns the value of key, in a slice the caller owns.
	Get(key []byte) ([]byte, error)
	// Read reads the value of key without keeping it, as the read of a
	// guarded put does.
	Read(key []byte) error
	// Set writes value under key, without sync.
	Set(key, value []byte) error
	// SetAll writes values[i] under keys[i] in one batch, without sync.
	SetAll(keys, values [][]byte) error
	// Close closes the database.
	Close() error
}

// BenchmarkStore compares a store (impl=ours, the shared kvtest benchmarks
// on stores that ours opens) with its raw library doing the same work on the
// same data (impl=raw, on databases that openRaw opens in a temporary
// directory): design target P5 is ours ≤ 1.10× raw. impl=rawset is a plain
// write without the read a guarded put needs, for reference. Compare with
//
//	go test -run XXX -bench Store -count 6 ./kv/pebblekv | benchstat -col /impl -
func BenchmarkStore(b *testing.B, ours kvtest.Opener, openRaw func(dir string) (RawDB, error)) {
	b.Run("impl=ours", func(b *testing.B) { kvtest.RunBenchmarks(b, ours) })
	b.Run("impl=raw", func(b *testing.B) { rawBenchmarks(b, openRaw, true) })
	b.Run("impl=rawset", func(b *testing.B) { rawBenchmarks(b, openRaw, false) })
}

// rawBenchmarks runs kvtest's benchmarks against raw databases. Put reads
// the old value before writing, as a guarded put must, when guarded is
// set; otherwise only Put runs, as a blind write.
func rawBenchmarks(b *testing.B, openRaw func(dir string) (RawDB, error), guarded bool) {
	keys := make([][]byte, kvtest.BenchKeys)
	for i := range keys {
		keys[i] = []byte(kvtest.BenchKey(i))
	}
	open := func(b *testing.B) RawDB {
		db, err := openRaw(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		values := make([][]byte, len(keys))
		for i := range values {
			values[i] = kvtest.BenchValue(i)
		}
		// In batches of the size kvtest.Fill writes the store's in, so
		// that both sides read the same layout of memtables and files.
		for lo := 0; lo < len(keys); lo += kvtest.FillBatch {
			hi := min(lo+kvtest.FillBatch, len(keys))
			if err := db.SetAll(keys[lo:hi], values[lo:hi]); err != nil {
				b.Fatal(err)
			}
		}
		return db
	}

	b.Run("Put", func(b *testing.B) {
		db := open(b)
		v := kvtest.BenchValue(1)
		b.SetBytes(kvtest.ValueSize)
		for i := 0; b.Loop(); i++ {
			key := keys[i%len(keys)]
			if guarded {
				// The revision check itself is a comparison; the cost is the read.
				if err := db.Read(key); err != nil {
					b.Fatal(err)
				}
			}
			if err := db.Set(key, v); err != nil {
				b.Fatal(err)
			}
		}
	})
	if !guarded {
		return
	}
	b.Run("Get", func(b *testing.B) {
		db := open(b)
		b.SetBytes(kvtest.ValueSize)
		for i := 0; b.Loop(); i++ {
			if _, err := db.Get(keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("BatchGet100", func(b *testing.B) {
		db := open(b)
		b.SetBytes(100 * kvtest.ValueSize)
		for i := 0; b.Loop(); i++ {
			m := make(map[string][]byte, 100)
			for j := range 100 {
				k := (i*100 + j) % len(keys)
				v, err := db.Get(keys[k])
				if err != nil {
					b.Fatal(err)
				}
				m[kvtest.BenchKey(k)] = v
			}
			if len(m) != 100 {
				b.Fatalf("got %d values", len(m))
			}
		}
	})
	b.Run("GetParallel", func(b *testing.B) {
		db := open(b)
		b.SetBytes(kvtest.ValueSize)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(len(keys))
			for pb.Next() {
				if _, err := db.Get(keys[i%len(keys)]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}
