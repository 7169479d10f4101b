package leveldbkv

import (
	"errors"
	"io"
	"sync"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/memcell/memcell/kv/internal/diskkv"
	"github.com/memcell/memcell/kv/internal/record"
)

// maxPooledBatch is the largest batch (in bytes of keys and records) that
// is kept for reuse, so that one huge batch does not stay in memory.
const maxPooledBatch = 64 << 10

var (
	noSync = &opt.WriteOptions{}
	doSync = &opt.WriteOptions{Sync: true}
)

// engine is the diskkv.Engine on a LevelDB database. It reuses its
// batches, so that a Put costs no more allocations than LevelDB's own.
type engine struct {
	db      *leveldb.DB
	batches sync.Pool // of *batch
}

func newEngine(db *leveldb.DB) *engine {
	e := &engine{db: db}
	e.batches.New = func() any { return &batch{e: e} }
	return e
}

// Get implements diskkv.Engine; it is the one place that maps LevelDB's
// not-found error. LevelDB returns a fresh copy, which the caller keeps.
func (e *engine) Get(key string) ([]byte, io.Closer, bool, error) {
	v, err := e.db.Get([]byte(key), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	return v, nil, true, nil
}

func (e *engine) NewBatch() diskkv.Batch { return e.batches.Get().(*batch) }

func (e *engine) NewIter(lower, upper []byte) (diskkv.Iter, error) {
	// DontFillCache keeps scans from evicting the hot blocks of point reads.
	it := e.db.NewIterator(&util.Range{Start: lower, Limit: upper}, &opt.ReadOptions{DontFillCache: true})
	return iter{it}, nil
}

func (e *engine) Close() error { return e.db.Close() }

type batch struct {
	e   *engine
	b   leveldb.Batch
	buf []byte // for encoding a record, which the batch then copies
}

func (b *batch) Set(key string, rec record.Record) {
	b.buf = rec.Append(b.buf[:0])
	b.b.Put([]byte(key), b.buf)
}

func (b *batch) Delete(key string) { b.b.Delete([]byte(key)) }

// Commit writes b and puts it back in the pool. LevelDB is done with a
// batch when Write returns, even one merged into another writer's; a
// failed one is still left to the garbage collector.
func (b *batch) Commit(sync bool) error {
	wo := noSync
	if sync {
		wo = doSync
	}
	if err := b.e.db.Write(&b.b, wo); err != nil {
		return err
	}
	if len(b.b.Dump()) <= maxPooledBatch && cap(b.buf) <= maxPooledBatch {
		b.b.Reset()
		b.e.batches.Put(b)
	}
	return nil
}

// iter is the diskkv.Iter on a LevelDB iterator, whose values come without
// an error of their own.
type iter struct{ iterator.Iterator }

func (it iter) ValueAndErr() ([]byte, error) { return it.Value(), nil }

func (it iter) Close() error {
	it.Release()
	return nil
}
