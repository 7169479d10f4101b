//go:build rocksdb

package rocksdbkv

import (
	"bytes"
	"io"
	"sync"

	"github.com/linxGnu/grocksdb"

	"github.com/memcell/memcell/kv/internal/diskkv"
	"github.com/memcell/memcell/kv/internal/record"
)

// maxPooledBatch is the largest batch buffer (in bytes of keys and
// records) that is kept for reuse, so that one huge batch does not stay in
// memory.
const maxPooledBatch = 64 << 10

// engine is the diskkv.Engine on a RocksDB database. The options it
// creates at open live in C memory; Close destroys them with the database.
// Its batches hold Go memory only, so that a pooled one that the collector
// drops leaks nothing.
type engine struct {
	db      *grocksdb.DB
	read    *grocksdb.ReadOptions // point reads
	scan    *grocksdb.ReadOptions // iterators: they do not fill the block cache
	noSync  *grocksdb.WriteOptions
	doSync  *grocksdb.WriteOptions
	batches sync.Pool // of *batch
}

var (
	_ diskkv.Engine    = (*engine)(nil)
	_ diskkv.LogSyncer = (*engine)(nil)
)

func newEngine(db *grocksdb.DB) *engine {
	e := &engine{
		db:     db,
		read:   grocksdb.NewDefaultReadOptions(),
		scan:   grocksdb.NewDefaultReadOptions(),
		noSync: grocksdb.NewDefaultWriteOptions(),
		doSync: grocksdb.NewDefaultWriteOptions(),
	}
	// Scans keep the hot blocks of point reads in the cache.
	e.scan.SetFillCache(false)
	e.doSync.SetSync(true)
	e.batches.New = func() any { return &batch{e: e} }
	return e
}

// Get implements diskkv.Engine. The value stays pinned in RocksDB's memory
// (the block cache or the memtable) until closer.Close, which releases it.
func (e *engine) Get(key string) ([]byte, io.Closer, bool, error) {
	h, err := e.db.GetPinned(e.read, diskkv.KeyBytes(key))
	if err != nil {
		return nil, nil, false, err
	}
	if !h.Exists() { // RocksDB allocated nothing for a missing key
		return nil, nil, false, nil
	}
	return h.Data(), pinned{h}, true, nil
}

// pinned releases a value that Get pinned.
type pinned struct{ h *grocksdb.PinnableSliceHandle }

func (p pinned) Close() error {
	p.h.Destroy()
	return nil
}

func (e *engine) NewBatch() diskkv.Batch { return e.batches.Get().(*batch) }

// NewIter returns an iterator over [lower, upper). The bounds are kept on
// the Go side (a seek to lower, a comparison with upper) rather than in the
// read options, where RocksDB would hold pointers into Go memory.
func (e *engine) NewIter(lower, upper []byte) (diskkv.Iter, error) {
	return &iter{it: e.db.NewIterator(e.scan), lower: lower, upper: upper}, nil
}

// Close closes the database, then destroys the options.
func (e *engine) Close() error {
	e.db.Close()
	e.read.Destroy()
	e.scan.Destroy()
	e.noSync.Destroy()
	e.doSync.Destroy()
	return nil
}

// SyncLog implements diskkv.LogSyncer: RocksDB writes each write to its
// log file as it commits, so flushing the log with sync set syncs it, and
// with it every write before.
func (e *engine) SyncLog() error { return e.db.FlushWAL(true) }

// batch collects the writes in Go memory, keys and encoded records back to
// back in buf, and hands them to RocksDB at Commit: a single write as a
// plain Put or Delete, more in a RocksDB write batch that lives only
// during the commit.
type batch struct {
	e   *engine
	buf []byte
	ops []op
}

// op is one write of a batch: its key is buf[start:keyEnd], its record
// buf[keyEnd:end]; a delete has no record.
type op struct {
	start, keyEnd, end int
	del                bool
}

func (b *batch) Set(key string, rec record.Record) {
	start := len(b.buf)
	b.buf = append(b.buf, key...)
	keyEnd := len(b.buf)
	b.buf = rec.Append(b.buf)
	b.ops = append(b.ops, op{start: start, keyEnd: keyEnd, end: len(b.buf)})
}

func (b *batch) Delete(key string) {
	start := len(b.buf)
	b.buf = append(b.buf, key...)
	b.ops = append(b.ops, op{start: start, keyEnd: len(b.buf), end: len(b.buf), del: true})
}

// Commit writes b and puts it back in the pool. RocksDB has copied what it
// keeps when the call returns, failed or not.
func (b *batch) Commit(sync bool) error {
	wo := b.e.noSync
	if sync {
		wo = b.e.doSync
	}
	var err error
	switch len(b.ops) {
	case 0:
	case 1:
		o := b.ops[0]
		if o.del {
			err = b.e.db.Delete(wo, b.buf[o.start:o.keyEnd])
		} else {
			err = b.e.db.Put(wo, b.buf[o.start:o.keyEnd], b.buf[o.keyEnd:o.end])
		}
	default:
		wb := grocksdb.NewWriteBatch()
		for _, o := range b.ops {
			if o.del {
				wb.Delete(b.buf[o.start:o.keyEnd])
			} else {
				wb.Put(b.buf[o.start:o.keyEnd], b.buf[o.keyEnd:o.end])
			}
		}
		err = b.e.db.Write(wo, wb)
		wb.Destroy()
	}
	if cap(b.buf) <= maxPooledBatch && cap(b.ops) <= maxPooledBatch/16 {
		b.buf, b.ops = b.buf[:0], b.ops[:0]
		b.e.batches.Put(b)
	}
	return err
}

// iter is the diskkv.Iter on a RocksDB iterator, bounded on the Go side.
// Its key and value point into RocksDB's memory until it moves.
type iter struct {
	it           *grocksdb.Iterator
	lower, upper []byte
	key          []byte // the current key; nil when not valid
}

func (i *iter) First() bool {
	if i.lower != nil {
		i.it.Seek(i.lower)
	} else {
		i.it.SeekToFirst()
	}
	return i.settle()
}

func (i *iter) Next() bool {
	i.it.Next()
	return i.settle()
}

// settle reads the key the iterator is on and reports whether it is in
// range.
func (i *iter) settle() bool {
	i.key = nil
	if !i.it.Valid() {
		return false
	}
	k := i.it.Key().Data()
	if i.upper != nil && bytes.Compare(k, i.upper) >= 0 {
		return false
	}
	i.key = k
	return true
}

func (i *iter) Key() []byte { return i.key }

func (i *iter) ValueAndErr() ([]byte, error) { return i.it.Value().Data(), nil }

func (i *iter) Error() error { return i.it.Err() }

// Close destroys the RocksDB iterator.
func (i *iter) Close() error {
	i.it.Close()
	return nil
}
