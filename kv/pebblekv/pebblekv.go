// Package pebblekv is the kv.Store on a local Pebble database
// (github.com/cockroachdb/pebble/v2): ordered, persistent, and owned by one
// process at a time.
//
// Every value is stored as a record (see kv/internal/record): a header with
// the kind (live value or tombstone) and the revision, then the caller's
// bytes. A guarded write reads the current record and writes the new one
// while holding the key's stripe of a striped mutex, so two writers of one
// key in this process cannot interleave; batches lock all their stripes in
// a fixed order and commit in one Pebble batch. The guard is only as strong
// as that mutex, which is why a database must not be opened by two
// processes (Pebble's directory lock refuses a second opener).
//
// A delete writes a tombstone that expires after the grace period. Expired
// tombstones mean the same as no record. They are removed lazily: Scan and
// Stats delete the expired tombstones they walk over (re-checking each under
// its stripe lock first); a tombstone that nobody scans past stays on disk,
// a few bytes, until its key is written again.
//
// # Durability
//
// With Options.Sync false (the default) a write returns once it is in
// Pebble's memtable and in its write-ahead-log buffer, without fsync.
// Pebble writes that buffer to the file when a 32 KiB log block fills or a
// synced write comes along, so not only a machine crash but also a process
// crash (kill -9) can lose the last writes, up to about 32 KiB of them.
// memcell treats the KV as a copy of MongoDB, and `memcell kv repair`
// brings such losses back; a caller that must not lose an acknowledged
// write across kill -9 sets Sync. With Sync true every write waits for its
// fsync.
//
// # Closing
//
// Every operation holds a read lock on the store while it uses the Pebble
// handle, and Close takes the write lock, so Close waits for in-flight calls
// and no call ever touches a closed database (which would panic in Pebble).
// Scan runs its callback without that lock, so a callback may call the store,
// including Close.
package pebblekv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/internal/record"
)

// Options configure a Store. A nil *Options means all defaults.
type Options struct {
	// TombstoneGrace is how long a delete blocks later puts of the same key;
	// 0 or less means kv.DefaultTombstoneGrace.
	TombstoneGrace time.Duration
	// Sync makes every write wait until its log record is on stable
	// storage. See the package documentation for what false risks.
	Sync bool
	// CacheSize is the size in bytes of Pebble's block cache; 0 means
	// Pebble's default (8 MiB). Negative is an error.
	CacheSize int64
	// Logger receives Pebble's own messages (WAL recovery on open,
	// background errors); nil drops them.
	Logger *slog.Logger
}

// Store is a kv.Store on a Pebble database. Its methods are safe for
// concurrent use.
type Store struct {
	grace time.Duration
	wo    *pebble.WriteOptions
	locks *record.Locks

	mu sync.RWMutex // read-held while an operation uses db, write-held by Close
	db *pebble.DB   // nil once closed
}

var _ kv.Store = (*Store)(nil)

var errClosed = fmt.Errorf("pebblekv: %w", kv.ErrClosed)

// Open opens the Pebble database in dir, creating dir and the database when
// they do not exist. Options are checked before any I/O; invalid ones give
// an error wrapping kv.ErrInvalidOptions. A database that another process
// has open fails to open.
func Open(ctx context.Context, dir string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if dir == "" {
		return nil, fmt.Errorf("%w: pebblekv: empty directory", kv.ErrInvalidOptions)
	}
	if o.CacheSize < 0 {
		return nil, fmt.Errorf("%w: pebblekv: negative cache size %d", kv.ErrInvalidOptions, o.CacheSize)
	}
	if o.TombstoneGrace <= 0 {
		o.TombstoneGrace = kv.DefaultTombstoneGrace
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pebblekv: open: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("pebblekv: open: %w", err)
	}
	popts := pebbleOptions(o)
	if popts.Cache != nil {
		defer popts.Cache.Unref() // the DB holds its own reference
	}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("pebblekv: open %s: %w", dir, err)
	}
	wo := pebble.NoSync
	if o.Sync {
		wo = pebble.Sync
	}
	return &Store{grace: o.TombstoneGrace, wo: wo, locks: record.NewLocks(), db: db}, nil
}

// pebbleOptions returns the Pebble options a Store opens with; the raw
// benchmarks open their database with the same ones.
func pebbleOptions(o Options) *pebble.Options {
	po := &pebble.Options{Logger: pebbleLogger{o.Logger}}
	if o.CacheSize > 0 {
		po.Cache = pebble.NewCache(o.CacheSize)
	}
	return po
}

// OpenURL opens the store a pebble URL names: pebble:///absolute/path or
// pebble:relative/path, with the options sync (bool), tombstone_grace (a
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
		CacheSize:      int64(q.Int("cache_size", 0, 0)),
	}
	if err := q.Done(); err != nil {
		return nil, fmt.Errorf("pebblekv: %w", err)
	}
	s, err := Open(ctx, dir, o)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func urlPath(u *url.URL) (string, error) {
	if u.Host != "" || u.User != nil {
		return "", fmt.Errorf("%w: pebblekv: a pebble URL names a directory, not a host (pebble:///abs/path or pebble:rel/path)", kv.ErrInvalidOptions)
	}
	dir := u.Path
	if u.Opaque != "" {
		var err error
		if dir, err = url.PathUnescape(u.Opaque); err != nil {
			return "", fmt.Errorf("%w: pebblekv: bad path escape", kv.ErrInvalidOptions)
		}
	}
	if dir == "" {
		return "", fmt.Errorf("%w: pebblekv: the URL has no directory path", kv.ErrInvalidOptions)
	}
	return dir, nil
}

// acquire returns the error a call must fail with before doing any work,
// or read-locks the store; then the caller must call s.mu.RUnlock.
func (s *Store) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pebblekv: %w", err)
	}
	s.mu.RLock()
	if s.db == nil {
		s.mu.RUnlock()
		return errClosed
	}
	return nil
}

// load returns the record stored under key, or the zero record (Kind
// record.Absent) when there is none. It is the one place that maps Pebble's
// not-found error. The record's Value is a copy when copyValue is set and
// nil otherwise. The caller holds the read lock.
func (s *Store) load(key string, copyValue bool) (record.Record, error) {
	b, closer, err := s.db.Get([]byte(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return record.Record{}, nil
	}
	if err != nil {
		return record.Record{}, fmt.Errorf("pebblekv: read %q: %w", key, err)
	}
	defer closer.Close()
	rec, err := record.Decode(b)
	if err != nil {
		return record.Record{}, fmt.Errorf("pebblekv: key %q: %w", key, err)
	}
	if copyValue && rec.Kind == record.Live {
		rec.Value = append(make([]byte, 0, len(rec.Value)), rec.Value...)
	} else {
		rec.Value = nil
	}
	return rec, nil
}

// Capabilities implements kv.Store.
func (s *Store) Capabilities() kv.Capabilities {
	return kv.Capabilities{Backend: "pebble", OrderedScan: true, Persistent: true}
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
		return fmt.Errorf("pebblekv: close: %w", err)
	}
	return nil
}

// pebbleLogger passes Pebble's messages to a slog.Logger, or drops them
// when there is none. Fatalf panics: Pebble calls it when it cannot go on,
// and does not expect it to return.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l != nil {
		p.l.Info(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	if p.l != nil {
		p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.l != nil {
		p.l.Error(msg, "component", "pebble")
	}
	panic("pebblekv: pebble: " + msg)
}
