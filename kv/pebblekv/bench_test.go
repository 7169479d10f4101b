package pebblekv

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/internal/disktest"
)

// BenchmarkStore compares the store with raw Pebble (see
// disktest.BenchmarkStore); impl=rawset is a plain Set. Compare with
//
//	go test -run XXX -bench Store -count 6 ./kv/pebblekv | benchstat -col /impl -
func BenchmarkStore(b *testing.B) {
	disktest.BenchmarkStore(b, testBackend.BenchOpener(), func(dir string) (disktest.RawDB, error) {
		db, err := pebble.Open(dir, pebbleOptions(Options{}))
		return rawDB{db}, err
	})
}

// rawDB is raw Pebble for the benchmarks.
type rawDB struct{ db *pebble.DB }

func (r rawDB) Get(key []byte) ([]byte, error) {
	v, closer, err := r.db.Get(key)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), v...)
	return out, closer.Close()
}

func (r rawDB) Read(key []byte) error {
	_, closer, err := r.db.Get(key)
	if err != nil {
		return err
	}
	return closer.Close()
}

func (r rawDB) Set(key, value []byte) error { return r.db.Set(key, value, pebble.NoSync) }

func (r rawDB) SetAll(keys, values [][]byte) error {
	batch := r.db.NewBatch()
	for i, k := range keys {
		batch.Set(k, values[i], nil)
	}
	return batch.Commit(pebble.NoSync)
}

func (r rawDB) Close() error { return r.db.Close() }

// BenchmarkGroupSync measures what the group sync costs a stream of puts of
// 2 KB values from 4 goroutines: impl=off opens the store without it
// (SyncInterval -1), impl=on with the default interval, impl=sync with a
// sync per write. Compare with benchstat -col /impl.
func BenchmarkGroupSync(b *testing.B) {
	value := make([]byte, 2048)
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"off", Options{SyncInterval: -1}},
		{"on", Options{}},
		{"sync", Options{Sync: true}},
	} {
		b.Run("impl="+tc.name, func(b *testing.B) {
			s, err := Open(context.Background(), b.TempDir(), &tc.opts)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var n atomic.Int64
			b.SetParallelism(2) // 4 goroutines on 2 cores
			b.SetBytes(int64(len(value)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					e := kv.Entry{Key: "k" + strconv.FormatInt(i%100_000, 10), Value: value, Rev: uint64(i)}
					if _, err := s.Put(context.Background(), e); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
