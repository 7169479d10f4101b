package memcelltest

import (
	"context"
	"errors"
	"sync"
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
	// BatchPutKeys counts the entries of the BatchPut calls.
	BatchPutKeys atomic.Int64
	// WriteAttempts counts every write call, failed ones included.
	WriteAttempts atomic.Int64

	stall atomic.Pointer[chan struct{}]
}

// Stall makes every write wait, as on a stalled server, until the returned
// release is called or the write's context ends (then it fails with the
// context's error). Release may be called more than once.
func (f *FaultKV) Stall() (release func()) {
	ch := make(chan struct{})
	f.stall.Store(&ch)
	var once sync.Once
	return func() {
		once.Do(func() {
			f.stall.CompareAndSwap(&ch, nil)
			close(ch)
		})
	}
}

// write applies the faults to a write: the stall, then FailWrites.
func (f *FaultKV) write(ctx context.Context) error {
	f.WriteAttempts.Add(1)
	if ch := f.stall.Load(); ch != nil {
		select {
		case <-*ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.FailWrites.Load() {
		return ErrInjected
	}
	f.Writes.Add(1)
	return nil
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
	if err := f.write(ctx); err != nil {
		return false, err
	}
	return f.Store.Put(ctx, e)
}

func (f *FaultKV) BatchPut(ctx context.Context, entries []kv.Entry) (int, error) {
	if err := f.write(ctx); err != nil {
		return 0, err
	}
	f.BatchPutKeys.Add(int64(len(entries)))
	return f.Store.BatchPut(ctx, entries)
}

func (f *FaultKV) Swap(ctx context.Context, e kv.Entry, old []byte) (bool, error) {
	if err := f.write(ctx); err != nil {
		return false, err
	}
	return f.Store.Swap(ctx, e, old)
}

func (f *FaultKV) Delete(ctx context.Context, key string, rev uint64) (bool, error) {
	if err := f.write(ctx); err != nil {
		return false, err
	}
	return f.Store.Delete(ctx, key, rev)
}

func (f *FaultKV) BatchDelete(ctx context.Context, dels []kv.Deletion) (int, error) {
	if err := f.write(ctx); err != nil {
		return 0, err
	}
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
