package diskkv

import (
	"context"
	"errors"
	"fmt"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/internal/record"
)

// Put implements kv.Store. A key whose stored record is corrupt refuses the
// put with an error wrapping record.ErrCorrupt; Delete clears it.
func (s *Store) Put(ctx context.Context, e kv.Entry) (bool, error) {
	return s.putIf(ctx, e, false, func(cur record.Record) bool { return cur.Admits(e.Rev, record.Now) })
}

// putIf writes e as a live record if ok accepts the key's current record,
// read (with its value when withValue) under the key's stripe, which it
// holds until the write is done.
func (s *Store) putIf(ctx context.Context, e kv.Entry, withValue bool, ok func(record.Record) bool) (bool, error) {
	if err := s.acquire(ctx); err != nil {
		return false, err
	}
	defer s.mu.RUnlock()
	mu := s.locks.For(e.Key)
	mu.Lock()
	defer mu.Unlock()

	cur, err := s.load(e.Key, withValue)
	if err != nil {
		return false, err
	}
	if !ok(cur) {
		return false, nil
	}
	b := s.eng.NewBatch()
	b.Set(e.Key, record.Record{Kind: record.Live, Rev: e.Rev, Value: e.Value})
	if err := s.commit(b); err != nil {
		return false, err
	}
	return true, nil
}

// BatchPut implements kv.Store. The stored entries are written in one
// engine batch. Entries whose stored record is corrupt are not stored and
// reported in the error; the others are.
func (s *Store) BatchPut(ctx context.Context, entries []kv.Entry) (int, error) {
	if err := s.acquire(ctx); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	if len(entries) == 0 {
		return 0, nil
	}
	set := s.locks.Set()
	for _, e := range entries {
		set.Add(e.Key)
	}
	set.Lock()
	defer set.Unlock()

	// written holds the revision this batch gives each key, so that a key
	// repeated in entries is judged as a sequence of Puts would judge it.
	written := make(map[string]uint64, len(entries))
	admitted := make([]int, 0, len(entries))
	var corrupt []error
	for i, e := range entries {
		if i%checkEvery == checkEvery-1 {
			if err := ctx.Err(); err != nil {
				return 0, fmt.Errorf("%s: %w", s.name, err)
			}
		}
		var cur record.Record
		if rev, ok := written[e.Key]; ok {
			cur = record.Record{Kind: record.Live, Rev: rev}
		} else {
			var err error
			cur, err = s.load(e.Key, false)
			if errors.Is(err, record.ErrCorrupt) {
				corrupt = append(corrupt, err)
				continue
			}
			if err != nil {
				return 0, err
			}
		}
		if cur.Admits(e.Rev, record.Now) {
			written[e.Key] = e.Rev
			admitted = append(admitted, i)
		}
	}
	if len(admitted) == 0 {
		return 0, errors.Join(corrupt...)
	}
	b := s.eng.NewBatch()
	for _, i := range admitted {
		e := &entries[i]
		b.Set(e.Key, record.Record{Kind: record.Live, Rev: e.Rev, Value: e.Value})
	}
	if err := s.commit(b); err != nil {
		return 0, err
	}
	return len(admitted), errors.Join(corrupt...)
}

// Swap implements kv.Store. It holds the key's stripe, as a guarded put
// does, while it compares the stored value with old and writes e. A key
// whose stored record is corrupt refuses it with an error wrapping
// record.ErrCorrupt.
func (s *Store) Swap(ctx context.Context, e kv.Entry, old []byte) (bool, error) {
	return s.putIf(ctx, e, true, func(cur record.Record) bool { return cur.Holds(old) })
}

// Delete implements kv.Store.
func (s *Store) Delete(ctx context.Context, key string, rev uint64) (bool, error) {
	n, err := s.BatchDelete(ctx, []kv.Deletion{{Key: key, Rev: rev}})
	return n == 1, err
}

// BatchDelete implements kv.Store. The tombstones are written in one engine
// batch. A key whose stored record is corrupt counts as having no live
// value and gets its tombstone like an absent key.
func (s *Store) BatchDelete(ctx context.Context, dels []kv.Deletion) (int, error) {
	if err := s.acquire(ctx); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	if len(dels) == 0 {
		return 0, nil
	}
	set := s.locks.Set()
	for _, d := range dels {
		set.Add(d.Key)
	}
	set.Lock()
	defer set.Unlock()

	// recs holds the record this batch leaves on each key it changes, so
	// that a key repeated in dels is judged as a sequence of Deletes would
	// judge it; order lists those keys once each.
	recs := make(map[string]record.Record, len(dels))
	order := make([]string, 0, len(dels))
	now := record.Now()
	expiry := record.ExpiryAfter(s.grace)
	removed := 0
	for i, d := range dels {
		if i%checkEvery == checkEvery-1 {
			if err := ctx.Err(); err != nil {
				return 0, fmt.Errorf("%s: %w", s.name, err)
			}
		}
		cur, seen := recs[d.Key]
		if !seen {
			var err error
			cur, err = s.load(d.Key, false)
			if errors.Is(err, record.ErrCorrupt) {
				cur = record.Record{}
			} else if err != nil {
				return 0, err
			}
		}
		tomb, gone, ok := cur.Deleted(d.Rev, expiry, now)
		if !ok {
			continue
		}
		if gone {
			removed++
		}
		if !seen {
			order = append(order, d.Key)
		}
		recs[d.Key] = tomb
	}
	if len(order) == 0 {
		return 0, nil
	}
	b := s.eng.NewBatch()
	for _, k := range order {
		b.Set(k, recs[k])
	}
	if err := s.commit(b); err != nil {
		return 0, err
	}
	return removed, nil
}

// commit commits b with the store's sync option, and marks the log for the
// next group sync when the commit did not sync it.
func (s *Store) commit(b Batch) error {
	if err := b.Commit(s.sync); err != nil {
		return fmt.Errorf("%s: write: %w", s.name, err)
	}
	if !s.sync {
		s.unsynced.Store(true)
	}
	return nil
}
