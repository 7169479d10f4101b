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
// synced write comes along; on its own, a process crash (kill -9) could
// lose the last writes. So the store syncs the log in the background every
// Options.SyncInterval (100 ms by default) when anything was written since
// the last sync, and once more on Close: a group sync, one fsync for all
// the writes of the interval. An acknowledged write survives kill -9 and a
// machine crash once the next group sync has run. With Sync true every
// write waits for its own fsync instead.
//
// # Closing
//
// Every operation holds a read lock on the store while it uses the Pebble
// handle, and Close takes the write lock, so Close waits for in-flight calls
// and no call ever touches a closed database (which would panic in Pebble).
// Scan runs its callback without that lock, so a callback may call the store,
// including Close.
//
// All of this is shared with kv/leveldbkv and kv/rocksdbkv in
// kv/internal/diskkv; this package adds the options, opening and the
// adapter to Pebble.
package pebblekv

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/internal/diskkv"
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
	// SyncInterval is how often, without Sync, the log of the writes made
	// since the last sync is synced in the background; 0 means
	// diskkv.DefaultSyncInterval (100 ms), negative turns the group sync
	// off. See the package documentation.
	SyncInterval time.Duration
	// Logger receives Pebble's own messages (WAL recovery on open,
	// background errors); nil drops them.
	Logger *slog.Logger
}

// Store is a kv.Store on a Pebble database. Its methods, those of
// kv.Store, are safe for concurrent use. BatchPut and BatchDelete write in
// one Pebble batch. A stored value that is not a valid record fails Get,
// BatchGet, Scan and Stats and refuses a Put of its key (BatchPut stores
// the other entries and reports it); Delete clears it.
type Store struct{ *store }

// store is the implementation; embedding it under this alias keeps the
// field unexported while its methods are promoted.
type store = diskkv.Store

// backend is this backend as diskkv knows it.
var backend = diskkv.Backend{
	Name:         "pebblekv",
	Scheme:       "pebble",
	Capabilities: kv.Capabilities{Backend: "pebble", OrderedScan: true, Persistent: true},
	GroupSync:    true,
}

// Open opens the Pebble database in dir, creating dir and the database when
// they do not exist. Options are checked before any I/O; invalid ones give
// an error wrapping kv.ErrInvalidOptions. A database that another process
// has open fails to open.
func Open(ctx context.Context, dir string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	s, err := backend.Open(ctx, dir, diskkv.Options{TombstoneGrace: o.TombstoneGrace, Sync: o.Sync, CacheSize: o.CacheSize, SyncInterval: o.SyncInterval}, o.openEngine)
	if err != nil {
		return nil, err
	}
	return &Store{s}, nil
}

// openEngine opens the Pebble database in dir with o.
func (o Options) openEngine(dir string) (diskkv.Engine, error) {
	popts := pebbleOptions(o)
	if popts.Cache != nil {
		defer popts.Cache.Unref() // the DB holds its own reference
	}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, err
	}
	return engine{db}, nil
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
// duration such as 30s; 0 means the default), cache_size (bytes) and
// sync_interval (the group sync's interval; 0 means the default).
// Unknown options, a host, user information and an empty path are errors
// wrapping kv.ErrInvalidOptions.
func OpenURL(ctx context.Context, u *url.URL) (kv.Store, error) {
	uo, err := backend.ParseURL(u)
	if err != nil {
		return nil, err
	}
	s, err := Open(ctx, uo.Dir, &Options{Sync: uo.Sync, TombstoneGrace: uo.TombstoneGrace, CacheSize: int64(uo.CacheSize), SyncInterval: uo.SyncInterval})
	if err != nil {
		return nil, err
	}
	return s, nil
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
