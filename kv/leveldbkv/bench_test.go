package leveldbkv

import (
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"

	"github.com/memcell/memcell/kv/internal/disktest"
)

// BenchmarkStore compares the store with raw LevelDB (see
// disktest.BenchmarkStore); impl=rawset is a plain Put. Compare with
//
//	go test -run XXX -bench Store -count 6 ./kv/leveldbkv | benchstat -col /impl -
func BenchmarkStore(b *testing.B) {
	disktest.BenchmarkStore(b, testBackend.BenchOpener(), func(dir string) (disktest.RawDB, error) {
		db, err := leveldb.OpenFile(dir, leveldbOptions(Options{}))
		return rawDB{db}, err
	})
}

// rawDB is raw LevelDB for the benchmarks.
type rawDB struct{ db *leveldb.DB }

var rawWO = &opt.WriteOptions{Sync: false}

// Get returns LevelDB's value as it is: it already is a copy the caller owns.
func (r rawDB) Get(key []byte) ([]byte, error) { return r.db.Get(key, nil) }

func (r rawDB) Read(key []byte) error {
	_, err := r.db.Get(key, nil)
	return err
}

func (r rawDB) Set(key, value []byte) error { return r.db.Put(key, value, rawWO) }

func (r rawDB) SetAll(keys, values [][]byte) error {
	batch := new(leveldb.Batch)
	for i, k := range keys {
		batch.Put(k, values[i])
	}
	return r.db.Write(batch, rawWO)
}

func (r rawDB) Close() error { return r.db.Close() }
