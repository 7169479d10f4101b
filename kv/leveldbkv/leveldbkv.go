// Package leveldbkv is the kv.Store on a local LevelDB database
// (github.com/syndtr/goleveldb): ordered, persistent, and owned by one
// process at a time.
//
// Every value is stored as a record (see kv/internal/record): a header with
// the kind (live value or tombstone) and the revision, then the caller's
// bytes. A guarded write reads the current record and writes the new one
// while holding the key's stripe of a striped mutex, so two writers of one
// key in this process cannot interleave; batches lock all their stripes in
// a fixed order and commit in one LevelDB batch. The guard is only as
// strong as that mutex, which is why a database must not be opened by two
// processes (LevelDB's directory lock refuses a second opener).
//
// A delete writes a tombstone that expires after the grace period. Expired
// tombstones mean the same as no record. They are removed lazily: Scan and
// Stats delete the expired tombstones they walk over (re-checking each under
// its stripe lock first); a tombstone that nobody scans past stays on disk,
// a few bytes, until its key is written again.
//
// # Durability
//
// With Options.Sync false (the default) a write returns once LevelDB has
// written it to its journal file, without fsync: a process crash (kill -9)
// loses nothing, an operating-system or machine crash can lose the last
// writes. memcell treats the KV as a copy of MongoDB, and `memcell kv
// repair` brings such losses back. With Sync true every write waits for its
// fsync.
//
// # Closing
//
// Every operation holds a read lock on the store while it uses the LevelDB
// handle, and Close takes the write lock, so Close waits for in-flight calls
// and never runs beside one. Scan runs its callback without that lock, so a
// callback may call the store, including Close.
package leveldbkv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/internal/record"
)

// Options configure a Store. A nil *Options means all defaults.
type Options struct {
	// TombstoneGrace is how long a delete blocks later puts of the same key;
	// 0 or less means kv.DefaultTombstoneGrace.
	TombstoneGrace time.Duration
	// Sync makes every write wait until its journal record is on stable
	// storage. See the package documentation for what false risks.
	Sync bool
	// CacheSize is the size in bytes of LevelDB's block cache; 0 means
	// LevelDB's default (8 MiB). Negative is an error.
	CacheSize int
}

// Store is a kv.Store on a LevelDB database. Its methods are safe for
// concurrent use.
type Store struct {
	grace time.Duration
	wo    *opt.WriteOptions
	locks *record.Locks
	bufs  sync.Pool // of *[]byte, for encoding records

	mu sync.RWMutex // read-held while an operation uses db, write-held by Close
	db *leveldb.DB  // nil once closed
}

var _ kv.Store = (*Store)(nil)

var errClosed = fmt.Errorf("leveldbkv: %w", kv.ErrClosed)

// Open opens the LevelDB database in dir, creating dir and the database
// when they do not exist. Options are checked before any I/O; invalid ones
// give an error wrapping kv.ErrInvalidOptions. A database that another
// process has open fails to open.
func Open(ctx context.Context, dir string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if dir == "" {
		return nil, fmt.Errorf("%w: leveldbkv: empty directory", kv.ErrInvalidOptions)
	}
	if o.CacheSize < 0 {
		return nil, fmt.Errorf("%w: leveldbkv: negative cache size %d", kv.ErrInvalidOptions, o.CacheSize)
	}
	if o.TombstoneGrace <= 0 {
		o.TombstoneGrace = kv.DefaultTombstoneGrace
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("leveldbkv: open: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("leveldbkv: open: %w", err)
	}
	db, err := leveldb.OpenFile(dir, leveldbOptions(o))
	if err != nil {
		return nil, fmt.Errorf("leveldbkv: open %s: %w", dir, err)
	}
	return &Store{
		grace: o.TombstoneGrace,
		wo:    &opt.WriteOptions{Sync: o.Sync},
		locks: record.NewLocks(),
		db:    db,
	}, nil
}

// leveldbOptions returns the LevelDB options a Store opens with; the raw
// benchmarks open their database with the same ones.
func leveldbOptions(o Options) *opt.Options {
	return &opt.Options{BlockCacheCapacity: o.CacheSize}
}

// OpenURL opens the store a leveldb URL names: leveldb:///absolute/path or
// leveldb:relative/path, with the options sync (bool), tombstone_grace (a
// duration such as 30s; 0 means the default) and cache_size (bytes).
// Unknown options, a host, user information and an empty path are errors
// wrapping kv.ErrInvalidOptions.
func OpenURL(ctx context.Context, u *url.URL) (kv.Store, error) {
	dir, err := urlPath(u)
	if err != nil {
		return nil, err
	}
	q := kv.NewQuery(u)
	o := &Options{
		Sync:           q.Bool("sync", false),
		TombstoneGrace: q.Duration("tombstone_grace", 0),
		CacheSize:      q.Int("cache_size", 0, 0),
	}
	if err := q.Done(); err != nil {
		return nil, fmt.Errorf("leveldbkv: %w", err)
	}
	s, err := Open(ctx, dir, o)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func urlPath(u *url.URL) (string, error) {
	if u.Host != "" || u.User != nil {
		return "", fmt.Errorf("%w: leveldbkv: a leveldb URL names a directory, not a host (leveldb:///abs/path or leveldb:rel/path)", kv.ErrInvalidOptions)
	}
	dir := u.Path
	if u.Opaque != "" {
		var err error
		if dir, err = url.PathUnescape(u.Opaque); err != nil {
			return "", fmt.Errorf("%w: leveldbkv: bad path escape", kv.ErrInvalidOptions)
		}
	}
	if dir == "" {
		return "", fmt.Errorf("%w: leveldbkv: the URL has no directory path", kv.ErrInvalidOptions)
	}
	return dir, nil
}

// acquire returns the error a call must fail with before doing any work,
// or read-locks the store; then the caller must call s.mu.RUnlock.
func (s *Store) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("leveldbkv: %w", err)
	}
	s.mu.RLock()
	if s.db == nil {
		s.mu.RUnlock()
		return errClosed
	}
	return nil
}

// load returns the record stored under key, or the zero record (Kind
// record.Absent) when there is none. It is the one place that maps
// LevelDB's not-found error. The record's Value belongs to the caller (LevelDB
// returns a fresh copy). The caller holds the read lock.
func (s *Store) load(key string) (record.Record, error) {
	b, err := s.db.Get([]byte(key), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return record.Record{}, nil
	}
	if err != nil {
		return record.Record{}, fmt.Errorf("leveldbkv: read %q: %w", key, err)
	}
	rec, err := record.Decode(b)
	if err != nil {
		return record.Record{}, fmt.Errorf("leveldbkv: key %q: %w", key, err)
	}
	return rec, nil
}

// Capabilities implements kv.Store.
func (s *Store) Capabilities() kv.Capabilities {
	return kv.Capabilities{Backend: "leveldb", OrderedScan: true, Persistent: true}
}

// Close waits for in-flight calls, then closes the database. Later calls of
// any method return kv.ErrClosed; later calls of Close return nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	db := s.db
	s.db = nil
	if err := db.Close(); err != nil {
		return fmt.Errorf("leveldbkv: close: %w", err)
	}
	return nil
}
