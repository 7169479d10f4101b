package pebblekv

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/memcell/memcell/kv/internal/disktest"
)

// BenchmarkStore compares the store with raw Pebble (see
// disktest.BenchmarkStore); impl=rawset is a plain Set. Compare with
//
//	go test -run XXX -bench Store -count 6 ./kv/pebblekv | benchstat -col /impl -
func BenchmarkStore(b *testing.B) {
	disktest.BenchmarkStore(b, open, func(dir string) (disktest.RawDB, error) {
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
