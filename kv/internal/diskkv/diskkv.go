// Package diskkv is the kv.Store that the embedded backends (kv/pebblekv,
// kv/leveldbkv and kv/rocksdbkv) share, written against Engine: the few
// operations it needs from an ordered key-value library. A backend package
// opens its library, wraps it in an Engine and hands it to Backend.Open;
// everything else — guarded writes under striped locks, the record format
// (kv/internal/record), chunked scans with lazy removal of expired
// tombstones, Stats, the close guard, context checks and error wrapping —
// lives here.
//
// A guarded write reads the current record and writes the new one while
// holding the key's stripe of a striped mutex, so two writers of one key in
// this process cannot interleave; batches lock all their stripes in a fixed
// order and commit in one engine batch. The guard is only as strong as that
// mutex, which is why a database must not be opened by two processes.
//
// A delete is guarded like a put (record.Record.Deleted): unless the key
// holds a newer live value, it writes a tombstone that remembers the
// revision it refuses puts up to and expires after the grace period.
// Expired tombstones mean the same as no record. They are removed lazily: Scan and
// Stats delete the expired tombstones they walk over (re-checking each under
// its stripe lock first).
//
// Every operation holds a read lock on the store while it uses the engine,
// and Close takes the write lock, so Close waits for in-flight calls and no
// call ever touches a closed engine. Scan runs its callback without that
// lock, so a callback may call the store, including Close.
//
// Every error starts with the backend package's name ("pebblekv: ..."), as
// if the backend had made it.
package diskkv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/internal/record"
)

// Engine is an open ordered key-value database. The Store calls it only
// while it holds its read lock, and Close only once, after every other call
// has returned; an Engine need not guard against use after Close.
type Engine interface {
	// Get returns the value stored under key; found is false when there is
	// none (then the error is nil). When closer is non-nil, value is valid
	// only until closer.Close is called; when closer is nil, value belongs
	// to the caller.
	Get(key string) (value []byte, closer io.Closer, found bool, err error)

	// NewBatch returns an empty write batch.
	NewBatch() Batch

	// NewIter returns an iterator over the keys in [lower, upper) in byte
	// order; a nil bound is no bound.
	NewIter(lower, upper []byte) (Iter, error)

	// Close closes the database.
	Close() error
}

// KeyBytes returns key's bytes without copying them, for an Engine's
// calls into a library that only reads the key (and copies what it keeps):
// the caller must not write to them.
func KeyBytes(key string) []byte {
	return unsafe.Slice(unsafe.StringData(key), len(key))
}

// LogSyncer is an Engine that can make every write committed so far
// durable at once (its write-ahead log synced to stable storage). Stores
// on such an engine sync the log in the background when writes do not
// sync themselves: a group sync (Options.SyncInterval).
type LogSyncer interface {
	SyncLog() error
}

// Batch collects writes to apply atomically. The batch copies the keys and
// values it is given before the call returns.
type Batch interface {
	// Set adds a write of rec, a Live or Tombstone record, under key. The
	// batch encodes rec itself (see record.Record.Append), so that a library
	// that can reserve space in the batch encodes it in place.
	Set(key string, rec record.Record)

	// Delete adds the removal of key.
	Delete(key string)

	// Commit applies the batch, waiting until it is on stable storage when
	// sync is set, and releases it. The batch must not be used afterwards,
	// whether Commit succeeded or not.
	Commit(sync bool) error
}

// Iter is a forward iterator; *pebble.Iterator is one.
type Iter interface {
	// First moves to the first key and reports whether there is one.
	First() bool
	// Next moves to the next key and reports whether there is one.
	Next() bool
	// Key returns the current key, valid until the iterator moves.
	Key() []byte
	// ValueAndErr returns the current value, valid until the iterator
	// moves.
	ValueAndErr() ([]byte, error)
	// Error returns the error, if any, that ended the iteration.
	Error() error
	// Close releases the iterator.
	Close() error
}

// Backend names a disk backend, for Open and ParseURL.
type Backend struct {
	// Name is the backend package's name ("pebblekv"); it starts every
	// error.
	Name string
	// Scheme is the backend's URL scheme ("pebble").
	Scheme string
	// Capabilities is what its stores report.
	Capabilities kv.Capabilities
	// GroupSync is set when the backend's engine is a LogSyncer, so that
	// Options.SyncInterval and the URL option sync_interval apply.
	GroupSync bool
}

// Options are the options every disk backend has.
type Options struct {
	// TombstoneGrace is how long a delete blocks later puts of the same
	// key; 0 or less means kv.DefaultTombstoneGrace.
	TombstoneGrace time.Duration
	// Sync makes every write but the removal of expired tombstones commit
	// with sync set.
	Sync bool
	// CacheSize is only checked: negative is an error. The backend passes
	// it on to its library itself.
	CacheSize int64
	// SyncInterval is, without Sync and on an engine that is a LogSyncer,
	// how often the log of the writes made since the last sync is synced
	// in the background, and so how long at most an acknowledged write can
	// be lost by a killed process or a machine crash. 0 means
	// DefaultSyncInterval; negative turns the group sync off. Close syncs
	// once more.
	SyncInterval time.Duration
}

// DefaultSyncInterval is the default Options.SyncInterval.
const DefaultSyncInterval = 100 * time.Millisecond

// Store is a kv.Store on an Engine. Its methods are safe for concurrent
// use.
type Store struct {
	name      string
	caps      kv.Capabilities
	grace     time.Duration
	sync      bool
	locks     *record.Locks
	errClosed error

	mu  sync.RWMutex // read-held while an operation uses eng, write-held by Close
	eng Engine       // nil once closed

	// The group sync: unsynced is set by every commit that did not sync;
	// the syncer goroutine (when there is one) syncs the log when it is
	// set. stopSync stops it and closes syncDone when it has returned.
	unsynced atomic.Bool
	stopSync func()
	syncDone chan struct{}
	// syncMu makes a log sync and the check of unsynced before it one
	// step, so that Sync, finding nothing unsynced, knows that the sync
	// which cleared the flag has finished.
	syncMu sync.Mutex
}

var _ kv.Store = (*Store)(nil)

// Open checks dir and o before any I/O (invalid ones give an error wrapping
// kv.ErrInvalidOptions) and ctx, creates dir when it does not exist, then
// opens the store on the engine that open returns for dir.
func (b Backend) Open(ctx context.Context, dir string, o Options, open func(dir string) (Engine, error)) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: %s: empty directory", kv.ErrInvalidOptions, b.Name)
	}
	if o.CacheSize < 0 {
		return nil, fmt.Errorf("%w: %s: negative cache size %d", kv.ErrInvalidOptions, b.Name, o.CacheSize)
	}
	if o.TombstoneGrace <= 0 {
		o.TombstoneGrace = kv.DefaultTombstoneGrace
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: open: %w", b.Name, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("%s: open: %w", b.Name, err)
	}
	eng, err := open(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: open %s: %w", b.Name, dir, err)
	}
	s := &Store{
		name:      b.Name,
		caps:      b.Capabilities,
		grace:     o.TombstoneGrace,
		sync:      o.Sync,
		locks:     record.NewLocks(),
		errClosed: fmt.Errorf("%s: %w", b.Name, kv.ErrClosed),
		eng:       eng,
	}
	if syncer, ok := eng.(LogSyncer); ok && !o.Sync && o.SyncInterval >= 0 {
		interval := o.SyncInterval
		if interval == 0 {
			interval = DefaultSyncInterval
		}
		stop := make(chan struct{})
		s.stopSync = sync.OnceFunc(func() { close(stop) })
		s.syncDone = make(chan struct{})
		go s.groupSync(syncer, interval, stop)
	}
	return s, nil
}

// groupSync syncs the log every interval when writes were made since the
// last sync, until stop is closed. A failed sync is tried again at the next
// tick; the writes stay in the engine either way.
func (s *Store) groupSync(syncer LogSyncer, interval time.Duration, stop <-chan struct{}) {
	defer close(s.syncDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		_ = s.syncLog(syncer)
	}
}

// syncLog syncs the log if anything was written since the last sync. When
// it returns nil, every write committed before the call is durable.
func (s *Store) syncLog(syncer LogSyncer) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if !s.unsynced.Swap(false) {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.eng == nil {
		return s.errClosed
	}
	if err := syncer.SyncLog(); err != nil {
		s.unsynced.Store(true)
		return fmt.Errorf("%s: sync: %w", s.name, err)
	}
	return nil
}

// Sync implements kv.Syncer: it returns once every write acknowledged
// before the call is durable. Without per-write syncs on an engine that is
// a LogSyncer that means syncing the log now, unless the group sync has
// done it since the last write; otherwise writes are as durable as they
// will be when they return and Sync does nothing.
func (s *Store) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	eng := s.engine()
	if eng == nil {
		return s.errClosed
	}
	syncer, ok := eng.(LogSyncer)
	if !ok || s.sync {
		return nil
	}
	return s.syncLog(syncer)
}

// engine returns the engine, nil once the store is closed.
func (s *Store) engine() Engine {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.eng
}

// acquire returns the error a call must fail with before doing any work,
// or read-locks the store; then the caller must call s.mu.RUnlock.
func (s *Store) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	s.mu.RLock()
	if s.eng == nil {
		s.mu.RUnlock()
		return s.errClosed
	}
	return nil
}

// load returns the record stored under key, or the zero record (Kind
// record.Absent) when there is none. The record's Value belongs to the
// caller when copyValue is set (it is copied when the engine lends it) and
// is nil otherwise. The caller holds the read lock.
func (s *Store) load(key string, copyValue bool) (record.Record, error) {
	b, closer, found, err := s.eng.Get(key)
	if err != nil {
		return record.Record{}, fmt.Errorf("%s: read %q: %w", s.name, key, err)
	}
	if !found {
		return record.Record{}, nil
	}
	if closer != nil {
		defer closer.Close()
	}
	rec, err := record.Decode(b)
	if err != nil {
		return record.Record{}, fmt.Errorf("%s: key %q: %w", s.name, key, err)
	}
	switch {
	case !copyValue || rec.Kind != record.Live:
		rec.Value = nil
	case closer != nil:
		rec.Value = append(make([]byte, 0, len(rec.Value)), rec.Value...)
	}
	return rec, nil
}

// Capabilities implements kv.Store.
func (s *Store) Capabilities() kv.Capabilities {
	return s.caps
}

// Close waits for in-flight calls, then closes the engine. Later calls of
// any method return kv.ErrClosed; later calls of Close return nil.
func (s *Store) Close() error {
	if s.stopSync != nil {
		s.stopSync()
		<-s.syncDone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng == nil {
		return nil
	}
	eng := s.eng
	s.eng = nil
	var err error
	if syncer, ok := eng.(LogSyncer); ok && s.unsynced.Load() {
		err = syncer.SyncLog()
	}
	if cerr := eng.Close(); cerr != nil || err != nil {
		return fmt.Errorf("%s: close: %w", s.name, errors.Join(err, cerr))
	}
	return nil
}
