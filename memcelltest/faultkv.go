package memcelltest

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/memcell/memcell/kv"
)

// ErrInjected is the error FaultKV returns for the operations it is told to
// fail.
var ErrInjected = errors.New("memcelltest: injected KV fault")

// FaultKV wraps a real kv.Store and fails chosen kinds of operation on
// demand, for the error-policy tests. It is not a substitute for a backend:
// every call that is not failed goes to the wrapped store.
type FaultKV struct {
	kv.Store
	FailWrites     atomic.Bool // Put, BatchPut, Swap, Delete, BatchDelete
	FailReads      atomic.Bool // Get
	FailBatchReads atomic.Bool // BatchGet
	// Calls counts the calls that reached the wrapped store, by kind.
	Gets, BatchGets, Writes atomic.Int64
}

// NewFaultKV wraps s.
func NewFaultKV(s kv.Store) *FaultKV { return &FaultKV{Store: s} }

func (f *FaultKV) Get(ctx context.Context, key string) ([]byte, error) {
	if f.FailReads.Load() {
		return nil, ErrInjected
	}
	f.Gets.Add(1)
	return f.Store.Get(ctx, key)
}

func (f *FaultKV) BatchGet(ctx context.Context, keys []string) (map[string][]byte, error) {
	if f.FailBatchReads.Load() {
		return nil, ErrInjected
	}
	f.BatchGets.Add(1)
	return f.Store.BatchGet(ctx, keys)
}

func (f *FaultKV) Put(ctx context.Context, e kv.Entry) (bool, error) {
	if f.FailWrites.Load() {
		return false, ErrInjected
	}
	f.Writes.Add(1)
	return f.Store.Put(ctx, e)
}

func (f *FaultKV) BatchPut(ctx context.Context, entries []kv.Entry) (int, error) {
	if f.FailWrites.Load() {
		return 0, ErrInjected
	}
	f.Writes.Add(1)
	return f.Store.BatchPut(ctx, entries)
}

func (f *FaultKV) Swap(ctx context.Context, e kv.Entry, old []byte) (bool, error) {
	if f.FailWrites.Load() {
		return false, ErrInjected
	}
	f.Writes.Add(1)
	return f.Store.Swap(ctx, e, old)
}

func (f *FaultKV) Delete(ctx context.Context, key string, rev uint64) (bool, error) {
	if f.FailWrites.Load() {
		return false, ErrInjected
	}
	f.Writes.Add(1)
	return f.Store.Delete(ctx, key, rev)
}

func (f *FaultKV) BatchDelete(ctx context.Context, dels []kv.Deletion) (int, error) {
	if f.FailWrites.Load() {
		return 0, ErrInjected
	}
	f.Writes.Add(1)
	return f.Store.BatchDelete(ctx, dels)
}

// Sync makes the wrapped store's writes durable (kv.Sync); it fails with
// the writes.
func (f *FaultKV) Sync(ctx context.Context) error {
	if f.FailWrites.Load() {
		return ErrInjected
	}
	return kv.Sync(ctx, f.Store)
}
