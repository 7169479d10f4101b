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
//
// All of this is shared with kv/pebblekv and kv/rocksdbkv in
// kv/internal/diskkv; this package adds the options, opening and the
// adapter to LevelDB.
package leveldbkv

import (
	"context"
	"net/url"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/internal/diskkv"
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

// Store is a kv.Store on a LevelDB database. Its methods, those of
// kv.Store, are safe for concurrent use. BatchPut and BatchDelete write in
// one LevelDB batch. A stored value that is not a valid record fails Get,
// BatchGet, Scan and Stats and refuses a Put of its key (BatchPut stores
// the other entries and reports it); Delete clears it.
type Store struct{ *store }

// store is the implementation; embedding it under this alias keeps the
// field unexported while its methods are promoted.
type store = diskkv.Store

// backend is this backend as diskkv knows it.
var backend = diskkv.Backend{
	Name:         "leveldbkv",
	Scheme:       "leveldb",
	Capabilities: kv.Capabilities{Backend: "leveldb", OrderedScan: true, Persistent: true},
}

// Open opens the LevelDB database in dir, creating dir and the database
// when they do not exist. Options are checked before any I/O; invalid ones
// give an error wrapping kv.ErrInvalidOptions. A database that another
// process has open fails to open.
func Open(ctx context.Context, dir string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	s, err := backend.Open(ctx, dir, diskkv.Options{TombstoneGrace: o.TombstoneGrace, Sync: o.Sync, CacheSize: int64(o.CacheSize)}, o.openEngine)
	if err != nil {
		return nil, err
	}
	return &Store{s}, nil
}

// openEngine opens the LevelDB database in dir with o.
func (o Options) openEngine(dir string) (diskkv.Engine, error) {
	db, err := leveldb.OpenFile(dir, leveldbOptions(o))
	if err != nil {
		return nil, err
	}
	return newEngine(db), nil
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
	uo, err := backend.ParseURL(u)
	if err != nil {
		return nil, err
	}
	s, err := Open(ctx, uo.Dir, &Options{Sync: uo.Sync, TombstoneGrace: uo.TombstoneGrace, CacheSize: uo.CacheSize})
	if err != nil {
		return nil, err
	}
	return s, nil
}
