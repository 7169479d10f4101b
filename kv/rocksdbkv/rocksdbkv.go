//go:build rocksdb

// Package rocksdbkv is the kv.Store on a local RocksDB database, through
// the cgo binding github.com/linxGnu/grocksdb and the system's librocksdb:
// ordered, persistent, and owned by one process at a time. Every file is
// behind the build tag rocksdb, so that the default build stays pure Go:
// build with -tags rocksdb (make build-rocksdb), which needs cgo and
// RocksDB's headers and library (Debian's librocksdb-dev; grocksdb v1.7.15
// works with its RocksDB 7.8).
//
// Every value is stored as a record (see kv/internal/record): a header with
// the kind (live value or tombstone) and the revision, then the caller's
// bytes. A guarded write reads the current record and writes the new one
// while holding the key's stripe of a striped mutex, so two writers of one
// key in this process cannot interleave; batches lock all their stripes in
// a fixed order and commit in one RocksDB write batch. The guard is only as
// strong as that mutex, which is why a database must not be opened by two
// processes (RocksDB's LOCK file refuses a second opener).
//
// A delete writes a tombstone that expires after the grace period. Expired
// tombstones mean the same as no record. They are removed lazily: Scan and
// Stats delete the expired tombstones they walk over (re-checking each under
// its stripe lock first); a tombstone that nobody scans past stays on disk,
// a few bytes, until its key is written again.
//
// The database is a plain RocksDB database in the default column family,
// so RocksDB's own tools (ldb, sst_dump) can inspect a copy of it or the
// directory of a stopped store.
//
// # Durability
//
// With Options.Sync false (the default) a write returns once RocksDB has
// written it to its write-ahead log file, without fsync: a process crash
// (kill -9) loses nothing; an operating-system or machine crash could lose
// the last writes. So the store syncs the log in the background every
// Options.SyncInterval (100 ms by default) when anything was written since
// the last sync, and once more on Close: a group sync, one fsync for all the
// writes of the interval. An acknowledged write survives a machine crash
// once the next group sync has run. With Sync true every write waits for
// its own fsync (WriteOptions.sync).
//
// # Closing and memory
//
// Every operation holds a read lock on the store while it uses the RocksDB
// handle, and Close takes the write lock, so Close waits for in-flight calls
// and no call ever touches a closed database (which would crash the
// process). Scan runs its callback without that lock, so a callback may call
// the store, including Close.
//
// RocksDB's objects live in C memory that Go's collector does not free: the
// engine destroys every pinned value, iterator and write batch it creates
// once it is done with it, and its read and write options on Close. Values
// handed to callers are copies in Go memory.
//
// All of this but the adapter to RocksDB is shared with kv/pebblekv and
// kv/leveldbkv in kv/internal/diskkv; this package adds the options,
// opening and that adapter.
package rocksdbkv

import (
	"context"
	"net/url"
	"time"

	"github.com/linxGnu/grocksdb"

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
	// CacheSize is the size in bytes of RocksDB's block cache; 0 means
	// RocksDB's default (8 MiB). Negative is an error.
	CacheSize int64
	// SyncInterval is how often, without Sync, the log of the writes made
	// since the last sync is synced in the background; 0 means
	// diskkv.DefaultSyncInterval (100 ms), negative turns the group sync
	// off. See the package documentation.
	SyncInterval time.Duration
}

// Store is a kv.Store on a RocksDB database. Its methods, those of
// kv.Store, are safe for concurrent use. BatchPut and BatchDelete write in
// one RocksDB write batch. A stored value that is not a valid record fails
// Get, BatchGet, Scan and Stats and refuses a Put of its key (BatchPut
// stores the other entries and reports it); Delete clears it.
type Store struct{ *store }

// store is the implementation; embedding it under this alias keeps the
// field unexported while its methods are promoted.
type store = diskkv.Store

// backend is this backend as diskkv knows it.
var backend = diskkv.Backend{
	Name:         "rocksdbkv",
	Scheme:       "rocksdb",
	Capabilities: kv.Capabilities{Backend: "rocksdb", OrderedScan: true, Persistent: true},
	GroupSync:    true,
}

// Open opens the RocksDB database in dir, creating dir and the database
// when they do not exist. Options are checked before any I/O; invalid ones
// give an error wrapping kv.ErrInvalidOptions. A database that another
// process (or another Store in this one) has open fails to open.
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

// openEngine opens the RocksDB database in dir with o.
func (o Options) openEngine(dir string) (diskkv.Engine, error) {
	db, err := openDB(dir, o)
	if err != nil {
		return nil, err
	}
	return newEngine(db), nil
}

// openDB opens the RocksDB database in dir with the options a Store opens
// with; the raw benchmarks open theirs with it too. RocksDB copies the
// options when it opens, so they are destroyed here, opened or not.
func openDB(dir string, o Options) (*grocksdb.DB, error) {
	opts := grocksdb.NewDefaultOptions()
	defer opts.Destroy()
	opts.SetCreateIfMissing(true)
	if o.CacheSize > 0 {
		// The table options and the database each hold their own
		// reference to the cache.
		cache := grocksdb.NewLRUCache(uint64(o.CacheSize))
		defer cache.Destroy()
		bbto := grocksdb.NewDefaultBlockBasedTableOptions()
		defer bbto.Destroy()
		bbto.SetBlockCache(cache)
		opts.SetBlockBasedTableFactory(bbto)
	}
	return grocksdb.OpenDb(opts, dir)
}

// OpenURL opens the store a rocksdb URL names: rocksdb:///absolute/path or
// rocksdb:relative/path, with the options sync (bool), tombstone_grace (a
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
