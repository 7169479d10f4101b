//go:build rocksdb

package rocksdbkv

import (
	"testing"

	"github.com/linxGnu/grocksdb"

	"github.com/memcell/memcell/kv/internal/disktest"
)

// BenchmarkStore compares the store with raw RocksDB through grocksdb (see
// disktest.BenchmarkStore); impl=rawset is a plain Put. Compare with
//
//	go test -tags rocksdb -run XXX -bench Store -count 6 ./kv/rocksdbkv | benchstat -col /impl -
func BenchmarkStore(b *testing.B) {
	disktest.BenchmarkStore(b, testBackend.BenchOpener(), func(dir string) (disktest.RawDB, error) {
		db, err := openDB(dir, Options{})
		if err != nil {
			return nil, err
		}
		return newRawDB(db), nil
	})
}

// rawDB is raw RocksDB for the benchmarks, using grocksdb as a careful
// caller would: pinned gets, options made once.
type rawDB struct {
	db *grocksdb.DB
	ro *grocksdb.ReadOptions
	wo *grocksdb.WriteOptions
}

func newRawDB(db *grocksdb.DB) rawDB {
	return rawDB{db: db, ro: grocksdb.NewDefaultReadOptions(), wo: grocksdb.NewDefaultWriteOptions()}
}

func (r rawDB) Get(key []byte) ([]byte, error) {
	h, err := r.db.GetPinned(r.ro, key)
	if err != nil {
		return nil, err
	}
	defer h.Destroy()
	return append([]byte(nil), h.Data()...), nil
}

func (r rawDB) Read(key []byte) error {
	h, err := r.db.GetPinned(r.ro, key)
	if err != nil {
		return err
	}
	h.Destroy()
	return nil
}

func (r rawDB) Set(key, value []byte) error { return r.db.Put(r.wo, key, value) }

func (r rawDB) SetAll(keys, values [][]byte) error {
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	for i, k := range keys {
		wb.Put(k, values[i])
	}
	return r.db.Write(r.wo, wb)
}

func (r rawDB) Close() error {
	r.db.Close()
	r.ro.Destroy()
	r.wo.Destroy()
	return nil
}
