// Package memkv is the in-memory kv.Store: a map split into shards, each
// behind its own read-write lock, so that readers on different cores rarely
// meet.
//
// Values are immutable once stored: Put stores a copy and Get returns a copy,
// so neither side can change the other's bytes. Tombstones (an expiry and
// the revision they refuse puts up to) live in a map of their own per shard
// and are swept lazily as deletes accumulate, so reads of live keys never
// look at them.
//
// The store lives and dies with its process and cannot be shared between
// processes; it suits tests, development and small single-process
// deployments.
package memkv

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"math/bits"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memcell/memcell/kv"
)

// DefaultShards is the number of shards when Options leave it unset.
const DefaultShards = 32

// Options configure a Store. The zero value and nil mean defaults.
type Options struct {
	// Shards is the number of lock shards, rounded up to a power of two;
	// 0 means DefaultShards.
	Shards int
	// TombstoneGrace is how long a delete blocks puts of the same key;
	// 0 or less means kv.DefaultTombstoneGrace.
	TombstoneGrace time.Duration
}

// Store is an in-memory kv.Store. Its methods are safe for concurrent use.
type Store struct {
	seed   maphash.Seed
	mask   uint64
	shards []shard
	grace  time.Duration
	closed atomic.Bool
}

type entry struct {
	val []byte // never modified after it is stored
	rev uint64
}

// tomb is a tombstone: it refuses puts of revision rev or lower until exp.
type tomb struct {
	exp int64 // Unix nanoseconds
	rev uint64
}

type shard struct {
	mu    sync.RWMutex
	live  map[string]entry
	tombs map[string]tomb
	// nextSweep is the tombstone count at which the next sweep runs.
	nextSweep int
	count     int64
	bytes     int64
	_         [40]byte // keep neighbouring shards' locks off one cache line
}

const minSweep = 64

var _ kv.Store = (*Store)(nil)

// New returns an empty store. It fails only on invalid options.
func New(opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Shards < 0 || o.Shards > 1<<16 {
		return nil, fmt.Errorf("%w: memkv: shards must be between 1 and 65536, got %d", kv.ErrInvalidOptions, o.Shards)
	}
	if o.Shards == 0 {
		o.Shards = DefaultShards
	}
	if o.TombstoneGrace <= 0 {
		o.TombstoneGrace = kv.DefaultTombstoneGrace
	}
	n := 1 << bits.Len(uint(o.Shards-1))
	s := &Store{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]shard, n), grace: o.TombstoneGrace}
	for i := range s.shards {
		s.shards[i].live = make(map[string]entry)
		s.shards[i].tombs = make(map[string]tomb)
		s.shards[i].nextSweep = minSweep
	}
	return s, nil
}

// OpenURL opens a store from a URL such as
// memory://?shards=64&tombstone_grace=30s. Unknown options are an error.
func OpenURL(_ context.Context, u *url.URL) (kv.Store, error) {
	if u.Host != "" || (u.Path != "" && u.Path != "/") || u.Opaque != "" {
		return nil, fmt.Errorf("%w: memkv: a memory URL has no host or path (use memory://)", kv.ErrInvalidOptions)
	}
	q := kv.NewQuery(u)
	o := &Options{
		Shards:         q.Int("shards", DefaultShards, 1),
		TombstoneGrace: q.Duration("tombstone_grace", kv.DefaultTombstoneGrace),
	}
	if err := q.Done(); err != nil {
		return nil, fmt.Errorf("memkv: %w", err)
	}
	return New(o)
}

func (s *Store) shard(key string) *shard {
	return &s.shards[maphash.String(s.seed, key)&s.mask]
}

// check returns the error a call must fail with before doing any work.
func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memkv: %w", err)
	}
	if s.closed.Load() {
		return kv.ErrClosed
	}
	return nil
}

// Get implements kv.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	sh := s.shard(key)
	sh.mu.RLock()
	e, ok := sh.live[key]
	sh.mu.RUnlock()
	if !ok {
		if s.closed.Load() {
			return nil, kv.ErrClosed
		}
		return nil, kv.ErrNotFound
	}
	return bytes.Clone(e.val), nil
}

// BatchGet implements kv.Store.
func (s *Store) BatchGet(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	for _, key := range keys {
		sh := s.shard(key)
		sh.mu.RLock()
		e, ok := sh.live[key]
		sh.mu.RUnlock()
		if ok {
			out[key] = bytes.Clone(e.val)
		}
	}
	if s.closed.Load() {
		return nil, kv.ErrClosed
	}
	return out, nil
}

// Put implements kv.Store.
func (s *Store) Put(ctx context.Context, e kv.Entry) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	val := bytes.Clone(e.Value)
	if val == nil {
		val = []byte{}
	}
	now := time.Now().UnixNano()
	sh := s.shard(e.Key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.closed.Load() {
		return false, kv.ErrClosed
	}
	return sh.put(e.Key, val, e.Rev, now), nil
}

// put stores val under key unless a newer revision or a live tombstone of
// revision rev or higher refuses it. The caller holds sh.mu.
func (sh *shard) put(key string, val []byte, rev uint64, now int64) bool {
	if len(sh.tombs) > 0 {
		if t, ok := sh.tombs[key]; ok {
			if now < t.exp && t.rev >= rev {
				return false
			}
			delete(sh.tombs, key)
		}
	}
	old, ok := sh.live[key]
	if ok {
		if old.rev > rev {
			return false
		}
		sh.bytes -= int64(len(old.val))
	} else {
		sh.count++
	}
	sh.live[key] = entry{val: val, rev: rev}
	sh.bytes += int64(len(val))
	return true
}

// Swap implements kv.Store.
func (s *Store) Swap(ctx context.Context, e kv.Entry, old []byte) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	val := bytes.Clone(e.Value)
	if val == nil {
		val = []byte{}
	}
	sh := s.shard(e.Key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.closed.Load() {
		return false, kv.ErrClosed
	}
	// A key with a live value has no tombstone: a put admitted over one
	// removes it.
	cur, ok := sh.live[e.Key]
	if !ok || !bytes.Equal(cur.val, old) {
		return false, nil
	}
	sh.live[e.Key] = entry{val: val, rev: e.Rev}
	sh.bytes += int64(len(val)) - int64(len(cur.val))
	return true, nil
}

// BatchPut implements kv.Store.
func (s *Store) BatchPut(ctx context.Context, entries []kv.Entry) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	now := time.Now().UnixNano()
	stored := 0
	for _, e := range entries {
		val := bytes.Clone(e.Value)
		if val == nil {
			val = []byte{}
		}
		sh := s.shard(e.Key)
		sh.mu.Lock()
		if s.closed.Load() {
			sh.mu.Unlock()
			return stored, kv.ErrClosed
		}
		if sh.put(e.Key, val, e.Rev, now) {
			stored++
		}
		sh.mu.Unlock()
	}
	return stored, nil
}

// Delete implements kv.Store.
func (s *Store) Delete(ctx context.Context, key string, rev uint64) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	now := time.Now().UnixNano()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.closed.Load() {
		return false, kv.ErrClosed
	}
	return sh.del(key, rev, now, now+int64(s.grace)), nil
}

// BatchDelete implements kv.Store.
func (s *Store) BatchDelete(ctx context.Context, dels []kv.Deletion) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	now := time.Now().UnixNano()
	exp := now + int64(s.grace)
	removed := 0
	for _, d := range dels {
		sh := s.shard(d.Key)
		sh.mu.Lock()
		if s.closed.Load() {
			sh.mu.Unlock()
			return removed, kv.ErrClosed
		}
		if sh.del(d.Key, d.Rev, now, exp) {
			removed++
		}
		sh.mu.Unlock()
	}
	return removed, nil
}

// del is the guarded delete of key at revision rev, leaving a tombstone
// that expires at exp. It reports whether it removed a live value; a live
// value of a higher revision refuses it and nothing changes. The caller
// holds sh.mu.
func (sh *shard) del(key string, rev uint64, now, exp int64) bool {
	removed := false
	if old, ok := sh.live[key]; ok {
		if old.rev > rev {
			return false
		}
		delete(sh.live, key)
		sh.count--
		sh.bytes -= int64(len(old.val))
		removed = true
	} else if t, ok := sh.tombs[key]; ok && now < t.exp && t.rev > rev {
		rev = t.rev
	}
	sh.tombs[key] = tomb{exp: exp, rev: rev}
	if len(sh.tombs) >= sh.nextSweep {
		sh.sweep(now)
	}
	return removed
}

// sweep drops expired tombstones. The caller holds sh.mu. The next sweep is
// set at twice the survivors, so sweeping costs O(1) per delete amortised.
func (sh *shard) sweep(now int64) {
	for k, t := range sh.tombs {
		if now >= t.exp {
			delete(sh.tombs, k)
		}
	}
	sh.nextSweep = max(minSweep, 2*len(sh.tombs))
}

// Scan implements kv.Store. It visits shards one at a time and calls fn
// without holding any lock, so fn may use the store.
func (s *Store) Scan(ctx context.Context, prefix string, fn func(kv.Item) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	var batch []kv.Item
	for i := range s.shards {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memkv: %w", err)
		}
		sh := &s.shards[i]
		batch = batch[:0]
		sh.mu.RLock()
		if s.closed.Load() {
			sh.mu.RUnlock()
			return kv.ErrClosed
		}
		for k, e := range sh.live {
			if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
				// e.val is immutable, so it is safe to read after unlocking.
				batch = append(batch, kv.Item{Key: k, Value: e.val, Rev: e.rev})
			}
		}
		sh.mu.RUnlock()
		for _, it := range batch {
			if err := fn(it); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stats implements kv.Store in O(shards).
func (s *Store) Stats(ctx context.Context) (kv.Stats, error) {
	if err := s.check(ctx); err != nil {
		return kv.Stats{}, err
	}
	var st kv.Stats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		st.EntryCount += sh.count
		st.TotalSizeBytes += sh.bytes
		sh.mu.RUnlock()
	}
	if s.closed.Load() {
		return kv.Stats{}, kv.ErrClosed
	}
	return st, nil
}

// Capabilities implements kv.Store.
func (s *Store) Capabilities() kv.Capabilities {
	return kv.Capabilities{Backend: "memory"}
}

// Close drops every value. Later calls return kv.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.live, sh.tombs = nil, nil
		sh.count, sh.bytes = 0, 0
		sh.mu.Unlock()
	}
	return nil
}
