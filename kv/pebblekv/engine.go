package pebblekv

import (
	"errors"
	"io"

	"github.com/cockroachdb/pebble/v2"

	"github.com/memcell/memcell/kv/internal/diskkv"
	"github.com/memcell/memcell/kv/internal/record"
)

// engine is the diskkv.Engine on a Pebble database. It and batch are one
// pointer each, so making interface values of them does not allocate.
type engine struct{ db *pebble.DB }

// Get implements diskkv.Engine; it is the one place that maps Pebble's
// not-found error. Pebble lends the value until closer.Close, and only
// reads the key, which is not copied.
func (e engine) Get(key string) ([]byte, io.Closer, bool, error) {
	v, closer, err := e.db.Get(diskkv.KeyBytes(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	return v, closer, true, nil
}

func (e engine) NewBatch() diskkv.Batch { return batch{e.db.NewBatch()} }

func (e engine) NewIter(lower, upper []byte) (diskkv.Iter, error) {
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	return it, nil
}

func (e engine) Close() error { return e.db.Close() }

// SyncLog implements diskkv.LogSyncer: an empty log record written with
// Sync makes Pebble sync its write-ahead log, and with it every record
// before it.
func (e engine) SyncLog() error { return e.db.LogData(nil, pebble.Sync) }

type batch struct{ b *pebble.Batch }

// Set encodes rec in place in the batch, without copying the value twice.
func (b batch) Set(key string, rec record.Record) {
	op := b.b.SetDeferred(len(key), rec.Size())
	copy(op.Key, key)
	rec.Append(op.Value[:0])
	_ = op.Finish() // fails only for indexed batches
}

func (b batch) Delete(key string) {
	_ = b.b.Delete([]byte(key), nil) // fails only for indexed batches
}

// Commit applies and releases b. On failure b is left to the garbage
// collector, as Pebble's own DB.Set does, since the commit pipeline may
// still refer to it.
func (b batch) Commit(sync bool) error {
	wo := pebble.NoSync
	if sync {
		wo = pebble.Sync
	}
	if err := b.b.Commit(wo); err != nil {
		return err
	}
	return b.b.Close()
}
