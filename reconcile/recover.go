package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
)

// recoverBatch is how many KV copies the recover job looks up in the
// primary with one query, for the reason existsBatch gives; their values
// are held until then (about 20 MB for copies of 2 KB).
const recoverBatch = existsBatch

// copyOf is one KV copy waiting for its lookup in the primary.
type copyOf struct {
	id    memcell.ID
	key   string
	rev   int64
	value []byte
}

// recoverPass scans the KV prefix and puts back in the primary every copy
// of a document the primary lacks (or, with overwriteOlder, holds at a
// lower revision) and does not remember hard-deleting at the copy's
// revision or later. Tombstones are invisible to the scan: a document
// deleted here is never brought back. With a checkpoint the scan is in
// key order (checked in run) and resumes after the last key of the last
// batch done.
func (j *job) recoverPass(ctx context.Context) error {
	var resumeAfter string
	if j.ckpt != nil && j.ckpt.LastID != "" {
		id, _ := memcell.ParseID(j.ckpt.LastID) // checked at load
		resumeAfter = j.keys.Key(id)
	}
	var (
		pending []copyOf
		arena   []byte
		mu      sync.Mutex // the backends call fn one key at a time; the contract does not say so
	)
	flush := func() error {
		if err := j.recoverCopies(ctx, pending); err != nil {
			return err
		}
		if len(pending) > 0 {
			if err := j.saveCheckpoint(pending[len(pending)-1].id.String()); err != nil {
				return err
			}
		}
		pending, arena = pending[:0], arena[:0]
		return nil
	}
	err := j.kv.Scan(ctx, j.keys.Prefix, func(it kv.Item) error {
		mu.Lock()
		defer mu.Unlock()
		if resumeAfter != "" && it.Key <= resumeAfter {
			return nil
		}
		if err := j.limit.wait(ctx); err != nil {
			return err
		}
		j.report.KVScanned++
		j.metrics.scanned.Inc()
		defer j.progress(false)
		id, ok := j.keys.ID(it.Key)
		if !ok {
			j.unreadable(ctx, &memcell.UnreadableError{ID: it.Key[len(j.keys.Prefix):], Err: errors.New("the key is not an event id")})
			return nil
		}
		if it.Rev > 1<<63-1 {
			j.unreadable(ctx, &memcell.UnreadableError{ID: id.String(), Err: fmt.Errorf("KV revision %d is out of range", it.Rev)})
			return nil
		}
		start := len(arena)
		arena = append(arena, it.Value...)
		pending = append(pending, copyOf{id: id, key: it.Key, rev: int64(it.Rev), value: arena[start:len(arena):len(arena)]})
		if len(pending) == j.recoverBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("kv scan: %w", err)
	}
	return flush()
}

// recoverCopies asks the primary which of the copies it lacks (or holds
// older), leaves out those it remembers hard-deleting, and recovers the
// rest (or, in a dry run, reports them).
func (j *job) recoverCopies(ctx context.Context, copies []copyOf) error {
	if len(copies) == 0 {
		return nil
	}
	// A scan may visit a key twice (Redis, while the keyspace is resized).
	copies = slices.Clone(copies)
	slices.SortFunc(copies, func(a, b copyOf) int { return slices.Compare(a.id[:], b.id[:]) })
	copies = slices.CompactFunc(copies, func(a, b copyOf) bool { return a.id == b.id })
	ids := make([]memcell.ID, len(copies))
	for i, c := range copies {
		ids[i] = c.id
	}
	// present holds the primary's revision of each document it has.
	present := make(map[memcell.ID]int64, len(ids))
	if j.overwriteOlder {
		docs, err := j.primary.LookupMany(ctx, ids)
		if err != nil {
			return fmt.Errorf("primary lookup: %w", err)
		}
		for id, m := range docs {
			present[id] = m.Revision
		}
	} else {
		exist, err := j.primary.Existing(ctx, ids)
		if err != nil {
			return fmt.Errorf("primary lookup: %w", err)
		}
		for id, ok := range exist {
			if ok {
				present[id] = -1
			}
		}
	}
	var cands []copyOf
	for _, c := range copies {
		if rev, ok := present[c.id]; ok && (!j.overwriteOlder || rev >= c.rev) {
			j.report.SkippedPresent++
			continue
		}
		cands = append(cands, c)
	}
	if len(cands) == 0 {
		return nil
	}
	candIDs := make([]memcell.ID, len(cands))
	for i, c := range cands {
		candIDs[i] = c.id
	}
	graves, err := j.primary.GraveRevisions(ctx, candIDs)
	if err != nil {
		return fmt.Errorf("primary graves: %w", err)
	}
	for _, c := range cands {
		if rev, ok := graves[c.id]; ok && rev >= c.rev {
			j.report.SkippedGrave++
			continue
		}
		m, err := memcell.Decode(c.value)
		if err != nil {
			j.unreadable(ctx, &memcell.UnreadableError{ID: c.id.String(), Err: err})
			continue
		}
		if m.ID != c.id {
			j.unreadable(ctx, &memcell.UnreadableError{ID: c.id.String(), Err: fmt.Errorf("the copy holds the document %s", m.ID)})
			continue
		}
		_, behind := present[c.id]
		kind := Lost
		if behind {
			kind = Behind
		}
		j.found(ctx, Diff{EventID: c.id.String(), Key: c.key, Kind: kind})
		if j.dryRun {
			continue
		}
		// A document found behind is only replaced: if it is gone now, a
		// live delete removed it since the lookup.
		ok, err := j.primary.Recover(ctx, m, behind)
		if err != nil {
			return fmt.Errorf("primary recover %s: %w", c.id, err)
		}
		if ok {
			j.repaired(1)
		} else {
			j.report.SkippedPresent++
		}
	}
	return nil
}
