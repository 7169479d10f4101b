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

// maxHeld is how many extras a repair holds (their ids, 12 bytes each, or
// the keys that are not ids) until its KV pass has scanned every key and
// the extras can be weighed against Options.MaxDelete. When it finds more,
// and they are within the bound, it scans the KV prefix a second time to
// delete them.
const maxHeld = 100_000

// extraSet holds the extras a repair found until its KV pass ends.
type extraSet struct {
	ids     []memcell.ID
	garbage []string // keys under the prefix that are not event ids
	// overflow is set once an extra was not held: there were more than
	// maxHeld.
	overflow bool
}

// room reports whether the set holds fewer than limit extras.
func (s *extraSet) room(limit int) bool {
	if len(s.ids)+len(s.garbage) < limit {
		return true
	}
	s.overflow = true
	return false
}

// kvPass scans the KV prefix for keys the primary does not account for:
// keys that are not event ids, and copies of documents the primary does
// not have (live or soft-deleted). A repair deletes none of them before
// the scan ends: only then does it know how many keys the prefix holds,
// and it deletes the extras only if they are within Options.MaxDelete of
// them, each looked up in the primary and the KV once more just before.
func (j *job) kvPass(ctx context.Context) error {
	if err := j.scanKV(ctx, false); err != nil {
		return err
	}
	held := j.held
	j.held = extraSet{}
	if j.name != jobRepair.name || j.extras == 0 {
		return nil
	}
	if !j.maxDelete.Allows(j.extras, j.report.KVScanned) {
		refused := &DeleteRefusedError{Extras: j.extras, KVScanned: j.report.KVScanned, MaxDelete: j.maxDelete}
		attrs := []any{"job", j.name, "dry_run", j.dryRun, "extras", j.extras, "kv_scanned", j.report.KVScanned, "max_delete", j.maxDelete.String()}
		if j.dryRun {
			j.report.Refused = "a repair would refuse: " + refused.reason()
			j.log.WarnContext(ctx, "reconcile: "+j.report.Refused, attrs...)
			return nil
		}
		j.report.Refused = refused.Error()
		j.log.ErrorContext(ctx, "reconcile: the repair deletes no extra: they are more than --max-delete allows", attrs...)
		return refused
	}
	if !j.fix {
		return nil
	}
	j.deletable = j.maxDelete.Limit(j.report.KVScanned)
	if held.overflow {
		return j.scanKV(ctx, true)
	}
	for chunk := range slices.Chunk(held.ids, existsBatch) {
		if err := j.deleteExtras(ctx, chunk); err != nil {
			return err
		}
	}
	return j.deleteKeys(ctx, held.garbage)
}

// scanKV scans the KV prefix. The first scan counts the keys and reports
// the extras (holding them, for a repair); a sweep, the second scan of a
// repair that found more than maxHeld extras within its bound, deletes
// them.
func (j *job) scanKV(ctx context.Context, sweep bool) error {
	var (
		ids     = make([]memcell.ID, 0, existsBatch)
		garbage []string
		keys    = newKeySet(j.copies.seed)
		mu      sync.Mutex // the backends call fn one key at a time; the contract does not say so
	)
	checkIDs := j.checkExtras
	dropGarbage := j.dropGarbage
	if sweep {
		checkIDs = j.deleteExtras
		dropGarbage = j.deleteKeys
	}
	err := j.kv.Scan(ctx, j.keys.Prefix, func(it kv.Item) error {
		mu.Lock()
		defer mu.Unlock()
		if err := j.limit.wait(ctx); err != nil {
			return err
		}
		if !sweep {
			j.report.KVScanned++
		}
		if id, ok := j.keys.ID(it.Key); ok {
			keys.add(id)
			ids = append(ids, id)
			if len(ids) == cap(ids) {
				if err := checkIDs(ctx, ids); err != nil {
					return err
				}
				ids = ids[:0]
			}
		} else {
			garbage = append(garbage, it.Key)
			if len(garbage) == j.batch {
				if err := dropGarbage(ctx, garbage); err != nil {
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
	if !sweep && j.copiesOK && keys.equal(&j.copies) {
		// The keys are exactly the copies the primary pass saw: none is
		// an extra (see keySet).
		j.log.DebugContext(ctx, "reconcile: the KV keys match the primary's documents; no lookups needed", "job", j.name, "keys", keys.count)
	} else if err := checkIDs(ctx, ids); err != nil {
		return err
	}
	return dropGarbage(ctx, garbage)
}

// extraCopies looks ids up in the primary and returns the KV keys, and
// the ids, of the copies of documents it does not have. Each candidate is
// asked of the primary a second time and of the KV again, so that a
// document appended meanwhile, or hard-deleted by live traffic whose own
// KV delete is on its way, is left alone.
func (j *job) extraCopies(ctx context.Context, ids []memcell.ID) ([]string, []memcell.ID, error) {
	if len(ids) == 0 {
		return nil, nil, nil
	}
	exist, err := j.primary.Existing(ctx, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("primary lookup: %w", err)
	}
	var cands []memcell.ID
	for _, id := range ids {
		if !exist[id] {
			cands = append(cands, id)
		}
	}
	if len(cands) == 0 {
		return nil, nil, nil
	}
	// A scan may visit a key twice (Redis, while the keyspace is resized).
	slices.SortFunc(cands, func(a, b memcell.ID) int { return slices.Compare(a[:], b[:]) })
	cands = slices.Compact(cands)
	if exist, err = j.primary.Existing(ctx, cands); err != nil {
		return nil, nil, fmt.Errorf("primary lookup: %w", err)
	}
	keys := make([]string, 0, len(cands))
	for _, id := range cands {
		if !exist[id] {
			keys = append(keys, j.keys.Key(id))
		}
	}
	got, err := j.kv.BatchGet(ctx, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("kv batch get: %w", err)
	}
	var extras []string
	var extraIDs []memcell.ID
	for _, k := range keys {
		if _, ok := got[k]; ok {
			id, _ := j.keys.ID(k)
			extras = append(extras, k)
			extraIDs = append(extraIDs, id)
		}
	}
	return extras, extraIDs, nil
}

// checkExtras reports the copies among ids of documents the primary does
// not have, and holds them for a repair (see kvPass).
func (j *job) checkExtras(ctx context.Context, ids []memcell.ID) error {
	keys, extraIDs, err := j.extraCopies(ctx, ids)
	if err != nil {
		return err
	}
	for i, k := range keys {
		j.extra(ctx, Diff{EventID: extraIDs[i].String(), Key: k, Kind: Extra})
		if j.fix && j.held.room(j.maxHeld) {
			j.held.ids = append(j.held.ids, extraIDs[i])
		}
	}
	return nil
}

// deleteExtras deletes, for a repair whose extras are within its bound,
// the copies among ids of documents the primary does not have (asked
// again now), and clears their pending records.
func (j *job) deleteExtras(ctx context.Context, ids []memcell.ID) error {
	keys, extraIDs, err := j.extraCopies(ctx, ids)
	if err != nil || len(keys) == 0 {
		return err
	}
	keys = j.bound(ctx, keys)
	if err := j.removeKeys(ctx, keys); err != nil {
		return err
	}
	return j.primary.ClearPendingBefore(ctx, extraIDs[:len(keys)], j.started)
}

// dropGarbage reports keys under the prefix that are not event ids, and
// holds them for a repair (see kvPass).
func (j *job) dropGarbage(ctx context.Context, keys []string) error {
	for _, k := range keys {
		j.extra(ctx, Diff{EventID: k[len(j.keys.Prefix):], Key: k, Kind: Extra})
		if j.fix && j.held.room(j.maxHeld) {
			j.held.garbage = append(j.held.garbage, k)
		}
	}
	return nil
}

// extra records an extra the KV pass found.
func (j *job) extra(ctx context.Context, d Diff) {
	j.extras++
	j.found(ctx, d)
}

// bound returns the first of keys that the repair may still delete, and
// counts them off. What is left beyond the bound (extras that appeared
// after the KV pass counted them) is logged and left.
func (j *job) bound(ctx context.Context, keys []string) []string {
	if n := int64(len(keys)); n > j.deletable {
		j.log.WarnContext(ctx, "reconcile: more extras than the first scan of the KV counted; those beyond --max-delete are left",
			"job", j.name, "left", n-j.deletable, "max_delete", j.maxDelete.String())
		keys = keys[:j.deletable]
	}
	j.deletable -= int64(len(keys))
	return keys
}

// deleteKeys deletes keys the primary has no document for. Each delete is
// of kv.MaxRev: there is no revision to delete at, and the tombstone must
// refuse every put for the grace period, so that a slow job's (or a late
// request's) write of the document's last state never brings it back.
// The keys count against the run's bound (see bound).
func (j *job) deleteKeys(ctx context.Context, keys []string) error {
	return j.removeKeys(ctx, j.bound(ctx, keys))
}

// removeKeys deletes keys, as deleteKeys does but without the bound.
func (j *job) removeKeys(ctx context.Context, keys []string) error {
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
