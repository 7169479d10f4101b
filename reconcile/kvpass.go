package reconcile

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
)

// existsBatch is how many KV keys the KV pass looks up in the primary with
// one query. The query is an indexed $in on MongoDB, but FerretDB answers
// it by reading the whole collection, so the pass costs it one collection
// read per existsBatch keys: large batches keep that linear up to the
// sizes FerretDB is meant for. The ids take 12 bytes each.
const existsBatch = 10_000

// kvPass scans the KV prefix for keys the primary does not account for:
// keys that are not event ids, and copies of documents the primary does
// not have (live or soft-deleted).
func (j *job) kvPass(ctx context.Context) error {
	var (
		ids     = make([]memcell.ID, 0, existsBatch)
		garbage []string
		keys    = newKeySet(j.copies.seed)
		mu      sync.Mutex // the backends call fn one key at a time; the contract does not say so
	)
	err := j.kv.Scan(ctx, j.keys.Prefix, func(it kv.Item) error {
		mu.Lock()
		defer mu.Unlock()
		if err := j.limit.wait(ctx); err != nil {
			return err
		}
		j.report.KVScanned++
		if id, ok := j.keys.ID(it.Key); ok {
			keys.add(id)
			ids = append(ids, id)
			if len(ids) == cap(ids) {
				if err := j.checkExtras(ctx, ids); err != nil {
					return err
				}
				ids = ids[:0]
			}
		} else {
			garbage = append(garbage, it.Key)
			if len(garbage) == j.batch {
				if err := j.dropGarbage(ctx, garbage); err != nil {
					return err
				}
				garbage = garbage[:0]
			}
		}
		j.progress(false)
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("kv scan: %w", err)
	}
	if j.copiesOK && keys.equal(&j.copies) {
		// The keys are exactly the copies the primary pass saw: none is
		// an extra (see keySet).
		j.log.DebugContext(ctx, "reconcile: the KV keys match the primary's documents; no lookups needed", "job", j.name, "keys", keys.count)
	} else if err := j.checkExtras(ctx, ids); err != nil {
		return err
	}
	return j.dropGarbage(ctx, garbage)
}

// checkExtras looks ids up in the primary and reports (and, for a repair,
// deletes) the copies of documents it does not have. Each candidate is
// asked of the primary a second time and of the KV again just before it
// is reported and deleted, so that a document appended meanwhile, or
// hard-deleted by live traffic whose own KV delete is on its way, is left
// alone.
func (j *job) checkExtras(ctx context.Context, ids []memcell.ID) error {
	if len(ids) == 0 {
		return nil
	}
	exist, err := j.primary.Existing(ctx, ids)
	if err != nil {
		return fmt.Errorf("primary lookup: %w", err)
	}
	var cands []memcell.ID
	for _, id := range ids {
		if !exist[id] {
			cands = append(cands, id)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	// A scan may visit a key twice (Redis, while the keyspace is resized).
	slices.SortFunc(cands, func(a, b memcell.ID) int { return slices.Compare(a[:], b[:]) })
	cands = slices.Compact(cands)
	if exist, err = j.primary.Existing(ctx, cands); err != nil {
		return fmt.Errorf("primary lookup: %w", err)
	}
	keys := make([]string, 0, len(cands))
	for _, id := range cands {
		if !exist[id] {
			keys = append(keys, j.keys.Key(id))
		}
	}
	got, err := j.kv.BatchGet(ctx, keys)
	if err != nil {
		return fmt.Errorf("kv batch get: %w", err)
	}
	var extras []string
	var extraIDs []memcell.ID
	for _, k := range keys {
		if _, ok := got[k]; ok {
			id, _ := j.keys.ID(k)
			extras = append(extras, k)
			extraIDs = append(extraIDs, id)
			j.found(ctx, Diff{EventID: id.String(), Key: k, Kind: Extra})
		}
	}
	if !j.fix || len(extras) == 0 {
		return nil
	}
	if err := j.deleteKeys(ctx, extras); err != nil {
		return err
	}
	return j.primary.ClearPendingBefore(ctx, extraIDs, j.started)
}

// dropGarbage reports (and, for a repair, deletes) keys under the prefix
// that are not event ids.
func (j *job) dropGarbage(ctx context.Context, keys []string) error {
	for _, k := range keys {
		j.found(ctx, Diff{EventID: k[len(j.keys.Prefix):], Key: k, Kind: Extra})
	}
	if !j.fix || len(keys) == 0 {
		return nil
	}
	return j.deleteKeys(ctx, keys)
}

// deleteKeys deletes keys the primary has no document for. Each delete is
// of kv.MaxRev: there is no revision to delete at, and the tombstone must
// refuse every put for the grace period, so that a slow job's (or a late
// request's) write of the document's last state never brings it back.
func (j *job) deleteKeys(ctx context.Context, keys []string) error {
	for chunk := range slices.Chunk(keys, j.batch) {
		dels := make([]kv.Deletion, len(chunk))
		for i, k := range chunk {
			dels[i] = kv.Deletion{Key: k, Rev: kv.MaxRev}
		}
		n, err := j.kv.BatchDelete(ctx, dels)
		if err != nil {
			return fmt.Errorf("kv batch delete: %w", err)
		}
		j.repaired(n)
	}
	return nil
}

// clearGone drops, for a repair, the pending records of ids that neither
// pass visits: documents the primary no longer has and the KV holds no
// copy of, such as a hard delete whose KV delete failed and whose copy is
// gone since. Records written after the job started stay.
func (j *job) clearGone(ctx context.Context) error {
	if !j.fix {
		return nil
	}
	ids, err := j.primary.Pending(ctx)
	if err != nil {
		return fmt.Errorf("primary pending: %w", err)
	}
	for chunk := range slices.Chunk(ids, existsBatch) {
		exist, err := j.primary.Existing(ctx, chunk)
		if err != nil {
			return fmt.Errorf("primary lookup: %w", err)
		}
		var gone []memcell.ID
		for _, id := range chunk {
			if !exist[id] {
				gone = append(gone, id)
			}
		}
		if len(gone) == 0 {
			continue
		}
		got, err := j.kv.BatchGet(ctx, j.keysOf(gone))
		if err != nil {
			return fmt.Errorf("kv batch get: %w", err)
		}
		done := slices.DeleteFunc(gone, func(id memcell.ID) bool {
			_, held := got[j.keys.Key(id)]
			return held
		})
		if err := j.primary.ClearPendingBefore(ctx, done, j.started); err != nil {
			return err
		}
	}
	return nil
}
