// Package kv defines the key-value contract that memcell mirrors MongoDB
// documents into, the errors every backend returns, and opening a backend by
// URL through a Registry that the caller builds.
//
// Every backend (kv/memkv, kv/pebblekv, kv/leveldbkv, kv/rocksdbkv with the
// build tag rocksdb, kv/rediskv) implements Store and passes the conformance
// suite in kv/kvtest.
//
// # Guarded writes
//
// Every put carries a revision (see Entry). A put never replaces a value that
// was stored with a higher revision; a put with an equal or higher revision
// replaces it. Revision 0 is the lowest, so puts of documents that carry no
// revision behave as plain overwrites of each other.
//
// Deletes are guarded too: a delete carries the revision of the state it
// removes, and a key whose live value has a higher revision keeps it (a
// newer state, such as a re-created document, survives a late delete).
// Otherwise the live value, if any, is removed and the key keeps a
// tombstone for the store's grace period (each backend's
// Options.TombstoneGrace, the URL option tombstone_grace=). The tombstone
// remembers a revision: the delete's, or that of a tombstone still living
// on the key when it is higher. While the tombstone lives, it refuses puts
// of that revision or lower, so a late write that raced with the delete
// cannot bring the key back, and admits a put of a higher revision, which
// replaces it (the document was written again after the delete). A delete
// with MaxRev blocks every put until the grace period is over; it is for
// deletes that cannot know the revision they remove.
//
// Tombstones are invisible to Get, BatchGet, Scan and Stats; once the grace
// period is over the key behaves as if it had never existed.
//
// # Compare-and-swap
//
// Swap is the one write that ignores the revision guards: it replaces a
// live value, and its revision, with any entry, a lower revision included,
// but only while the live value is byte for byte the value the caller read.
// It is how a repair replaces a copy whose revision is ahead of the
// primary's document (the primary was restored from a backup, or replaced
// by another program): no guarded put can. Because it compares the exact
// bytes, a live write that lands in between (and so changes the value)
// wins, and a key without a live value (absent, or holding a tombstone) is
// never written, so a deleted document stays deleted.
package kv

import (
	"context"
	"errors"
	"math"
	"time"
)

// Sentinel errors. Backends wrap them with context; test with errors.Is.
var (
	// ErrNotFound is returned by Get when the key has no live value.
	ErrNotFound = errors.New("kv: not found")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("kv: store closed")
	// ErrUnknownScheme is returned by Registry.Open for a URL whose scheme
	// has no registered backend.
	ErrUnknownScheme = errors.New("kv: unknown URL scheme")
	// ErrInvalidOptions reports a malformed URL or option value.
	ErrInvalidOptions = errors.New("kv: invalid options")
)

// DefaultTombstoneGrace is how long a delete blocks later puts of the same key
// (of its revision or older) when a backend is opened without an explicit
// grace period. It is long
// enough to cover a slow request, a retry or a repair pass that read the
// document just before it was deleted.
const DefaultTombstoneGrace = 5 * time.Minute

// MaxRev is the highest revision. A delete with MaxRev leaves a tombstone
// that refuses every put of the key until the grace period is over.
const MaxRev uint64 = math.MaxUint64

// Entry is one guarded write.
type Entry struct {
	Key   string
	Value []byte
	// Rev is the revision of Value. The put is ignored when the stored value
	// has a higher revision or the key holds a live tombstone of revision
	// Rev or higher.
	Rev uint64
}

// Deletion is one guarded delete.
type Deletion struct {
	Key string
	// Rev is the revision of the state the delete removes: a live value of a
	// higher revision is kept, and the tombstone refuses puts of revision
	// Rev or lower. MaxRev refuses every put for the grace period.
	Rev uint64
}

// Item is one live key seen by Scan.
type Item struct {
	Key string
	// Value is valid only until the scan callback returns.
	Value []byte
	Rev   uint64
}

// Stats describes the live values of a store. Tombstones are not counted.
type Stats struct {
	// EntryCount is the number of live keys.
	EntryCount int64 `json:"entry_count"`
	// TotalSizeBytes is the sum of the lengths in bytes of the live values.
	TotalSizeBytes int64 `json:"total_size_bytes"`
}

// Store is the key-value contract.
//
// All methods are safe for concurrent use. Every method that takes a context
// returns ctx.Err() (possibly wrapped) without doing the work when the
// context is already done, and gives up as soon as it can when the context
// ends during the call. After Close every method returns ErrClosed.
//
// Values passed in are copied or written out before the call returns, so the
// caller may reuse its buffers; values returned belong to the caller.
type Store interface {
	// Get returns the live value of key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)

	// BatchGet returns the live values of keys. Keys without a live value are
	// absent from the map; duplicates are allowed. Remote backends fetch the
	// whole batch in one round trip per server.
	BatchGet(ctx context.Context, keys []string) (map[string][]byte, error)

	// Put writes one guarded entry. It reports whether the value was stored:
	// false when the live value has a higher revision, or a live tombstone
	// has a revision equal to or higher than e.Rev. A put admitted over a
	// tombstone replaces it.
	Put(ctx context.Context, e Entry) (bool, error)

	// BatchPut writes guarded entries, each judged on its own as Put would.
	// It returns how many were stored. When an error is returned some
	// entries may have been stored and others not; retrying is safe.
	BatchPut(ctx context.Context, entries []Entry) (int, error)

	// Swap stores e (its value and its revision) only if e.Key's live value
	// is byte for byte old, and reports whether it did. It ignores the
	// revision guards: e.Rev may be lower than the stored revision, and
	// later puts are judged against e.Rev. A key with no live value
	// (absent, or holding a tombstone) refuses it; a nil and an empty old
	// are the same value. The comparison and the write are one atomic step
	// with respect to every other write of the key.
	Swap(ctx context.Context, e Entry, old []byte) (bool, error)

	// Delete is a guarded delete of key at revision rev. When key holds a
	// live value of a revision higher than rev, nothing changes and Delete
	// returns false. Otherwise the live value, if any, is removed (Delete
	// returns true when there was one) and key keeps, for the grace period
	// counted from now, a tombstone of revision max(rev, the revision of a
	// tombstone still living on key). Deleting an absent key is not an error
	// and still leaves a tombstone, since a delete may overtake the put it
	// follows.
	Delete(ctx context.Context, key string, rev uint64) (bool, error)

	// BatchDelete applies dels in order, each judged as Delete would judge
	// it, and returns how many live values it removed. Duplicate keys are
	// allowed and judged one after the other, as successive Deletes would
	// be, so a key removes at most one live value and counts at most once.
	// When an error is returned some deletions may have been applied and
	// others not; retrying is safe.
	BatchDelete(ctx context.Context, dels []Deletion) (int, error)

	// Scan calls fn for every live key that starts with prefix ("" for all
	// keys). Order is by key when Capabilities reports OrderedScan, and
	// unspecified otherwise; keys written during the scan may or may not be
	// seen. An error returned by fn stops the scan and is returned.
	Scan(ctx context.Context, prefix string, fn func(Item) error) error

	// Stats counts the live keys and the bytes of their values.
	Stats(ctx context.Context) (Stats, error)

	// Capabilities describes the backend.
	Capabilities() Capabilities

	// Close releases the store. It is safe to call more than once; calls
	// after the first return nil.
	Close() error
}

// Capabilities describes what a backend is and what it can do beyond the
// contract.
type Capabilities struct {
	// Backend is the short backend name used in metrics and logs
	// ("memory", "pebble", "leveldb", "redis", "redis-cluster").
	Backend string
	// OrderedScan is true when Scan visits keys in byte order.
	OrderedScan bool
	// Persistent is true when values survive a restart of the process.
	Persistent bool
	// Shared is true when several processes may open the same store at once
	// (and guarded writes stay correct between them).
	Shared bool
}

// A Syncer is a Store whose writes may be acknowledged before they are
// durable: a disk backend that does not sync every write, and syncs its log
// in groups instead. Sync returns once every write acknowledged before the
// call is durable (it may sync at once, or wait for the group sync). Stores
// that are not Syncers are as durable as they will be when a write returns.
type Syncer interface {
	Sync(ctx context.Context) error
}

// Sync makes the writes s acknowledged so far durable, when s is a Syncer;
// for other stores it does nothing.
func Sync(ctx context.Context, s Store) error {
	if y, ok := s.(Syncer); ok {
		return y.Sync(ctx)
	}
	return nil
}
