package diskkv

import (
	"context"
	"fmt"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/internal/record"
)

// checkEvery is how many keys a batch handles between two checks of its
// context.
const checkEvery = 256

// A walk reads at most chunkKeys keys (live or not) and, for Scan, about
// chunkBytes bytes of values under the read lock before it hands them on.
const (
	chunkKeys  = 256
	chunkBytes = 1 << 20
)

// Get implements kv.Store. A corrupt stored record is an error wrapping
// record.ErrCorrupt.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	rec, err := s.load(key, true)
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if rec.Kind != record.Live {
		return nil, fmt.Errorf("%s: get %q: %w", s.name, key, kv.ErrNotFound)
	}
	return rec.Value, nil
}

// BatchGet implements kv.Store with one point read per distinct key. A
// corrupt stored record fails the whole call, since leaving the key out
// would claim it has no value.
func (s *Store) BatchGet(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	out := make(map[string][]byte, len(keys))
	for i, k := range keys {
		if i%checkEvery == checkEvery-1 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
		}
		if _, dup := out[k]; dup {
			continue
		}
		rec, err := s.load(k, true)
		if err != nil {
			return nil, err
		}
		if rec.Kind == record.Live {
			out[k] = rec.Value
		}
	}
	return out, nil
}

// Scan implements kv.Store: keys come in byte order. The scan reads a
// chunk of keys, releases the engine, then calls fn for each, so fn may
// call the store; keys written meanwhile may or may not be seen. After each
// chunk it deletes the expired tombstones it passed. A corrupt stored
// record stops the scan with an error wrapping record.ErrCorrupt.
func (s *Store) Scan(ctx context.Context, prefix string, fn func(kv.Item) error) error {
	var lower []byte // nil, not empty: an empty bound trips Pebble's race-build invariant checks
	if prefix != "" {
		lower = []byte(prefix)
	}
	upper := prefixEnd(lower)
	var (
		items []kv.Item
		ends  []int // ends[i] is where items[i].Value ends in arena
		arena []byte
	)
	visit := func(key []byte, rec record.Record) bool {
		items = append(items, kv.Item{Key: string(key), Rev: rec.Rev})
		arena = append(arena, rec.Value...)
		ends = append(ends, len(arena))
		return len(arena) >= chunkBytes
	}
	for {
		items, ends, arena = items[:0], ends[:0], arena[:0]
		next, expired, err := s.walk(ctx, lower, upper, visit)
		if err != nil {
			return err
		}
		start := 0
		for i, end := range ends {
			items[i].Value = arena[start:end:end]
			start = end
		}
		for _, it := range items {
			if err := fn(it); err != nil {
				s.removeExpired(ctx, expired)
				return err
			}
		}
		s.removeExpired(ctx, expired)
		if next == nil {
			return nil
		}
		lower = next
	}
}

// Stats implements kv.Store by reading every record: it takes time in
// proportion to the size of the store. Like Scan it reads in chunks, so
// writes made during the call may or may not be counted, and it deletes
// the expired tombstones it passes.
func (s *Store) Stats(ctx context.Context) (kv.Stats, error) {
	var st kv.Stats
	count := func(_ []byte, rec record.Record) bool {
		st.EntryCount++
		st.TotalSizeBytes += int64(len(rec.Value))
		return false
	}
	var lower []byte
	for {
		next, expired, err := s.walk(ctx, lower, nil, count)
		if err != nil {
			return kv.Stats{}, err
		}
		s.removeExpired(ctx, expired)
		if next == nil {
			return st, nil
		}
		lower = next
	}
}

// walk reads, under the read lock, the records of the keys in [lower,
// upper) in order (a nil bound is no bound) and calls visit for each live
// one, until it has passed chunkKeys keys or visit reports the chunk full.
// It returns the key to resume from, nil when the range is done, and the
// keys of the expired tombstones it passed. key and rec.Value are valid only
// during the call of visit.
func (s *Store) walk(ctx context.Context, lower, upper []byte, visit func(key []byte, rec record.Record) (full bool)) (next []byte, expired []string, err error) {
	if err := s.acquire(ctx); err != nil {
		return nil, nil, err
	}
	defer s.mu.RUnlock()
	it, err := s.eng.NewIter(lower, upper)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: scan: %w", s.name, err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("%s: scan: %w", s.name, cerr)
		}
	}()
	now := record.Now()
	n, full := 0, false
	for valid := it.First(); valid; valid = it.Next() {
		if n == chunkKeys || full {
			return append([]byte(nil), it.Key()...), expired, nil
		}
		n++
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: scan: %w", s.name, err)
		}
		rec, err := record.Decode(v)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: key %q: %w", s.name, it.Key(), err)
		}
		switch {
		case rec.Kind == record.Live:
			full = visit(it.Key(), rec)
		case rec.Expired(now):
			expired = append(expired, string(it.Key()))
		}
	}
	if err := it.Error(); err != nil {
		return nil, nil, fmt.Errorf("%s: scan: %w", s.name, err)
	}
	return nil, expired, nil
}

// removeExpired deletes the records of keys that are, when checked under
// their stripe locks, still expired tombstones: the lazy half of tombstone
// expiry. It is best effort and gives up silently when ctx is done, the
// store is closed or the write fails, because an expired tombstone left in
// place means the same as no record and the next pass retries. The removal
// is never synced.
func (s *Store) removeExpired(ctx context.Context, keys []string) {
	if len(keys) == 0 || s.acquire(ctx) != nil {
		return
	}
	defer s.mu.RUnlock()
	set := s.locks.Set()
	for _, k := range keys {
		set.Add(k)
	}
	set.Lock()
	defer set.Unlock()

	now := record.Now()
	var b Batch
	for _, k := range keys {
		if rec, err := s.load(k, false); err == nil && rec.Expired(now) {
			if b == nil {
				b = s.eng.NewBatch()
			}
			b.Delete(k)
		}
	}
	if b != nil {
		_ = b.Commit(false)
	}
}

// prefixEnd returns the smallest key above every key that starts with
// prefix, or nil when there is none (for an empty or all-0xff prefix).
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
