package mirror

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
)

// MirrorStatus is what became of an operation's KV write.
type MirrorStatus string

// The mirror statuses.
const (
	// MirrorOK: the KV copy now holds the state the primary returned.
	MirrorOK MirrorStatus = "ok"
	// MirrorStale: the KV refused the write because it already holds a
	// newer revision or a tombstone; the KV is still correct.
	MirrorStale MirrorStatus = "stale"
	// MirrorFailed: the KV write failed; Err says why and the ids were
	// recorded for repair.
	MirrorFailed MirrorStatus = "failed"
	// MirrorSkipped: nothing needed writing, or mirroring is switched off
	// (then the ids were recorded for repair).
	MirrorSkipped MirrorStatus = "skipped"
	// MirrorDeferred: the write waits for the enclosing transaction to
	// commit.
	MirrorDeferred MirrorStatus = "deferred"
	// MirrorQueued: the KV write is queued (ModeAsync); the mirror applies
	// it behind the answer, and its intent covers it until then.
	MirrorQueued MirrorStatus = "queued"
)

// Mirror reports the KV side of a write whose primary side succeeded.
type Mirror struct {
	Status MirrorStatus
	// Err is the KV error when Status is MirrorFailed.
	Err error
	// Written counts the KV keys written or deleted.
	Written int
}

// Append stores a new MemCell and mirrors it.
func (r *Repository) Append(ctx context.Context, m *memcell.MemCell) (*memcell.MemCell, Mirror, error) {
	stored, err := r.primary.Append(ctx, m)
	if err != nil {
		return nil, Mirror{}, err
	}
	return stored, r.mirrorDocs(ctx, "append", []*memcell.MemCell{stored}), nil
}

// Update sets the given fields of a live MemCell (see memcell.Primary.Update) and
// mirrors the new state.
func (r *Repository) Update(ctx context.Context, id memcell.ID, fields map[string]any) (*memcell.MemCell, Mirror, error) {
	m, err := r.primary.Update(ctx, id, fields)
	if err != nil {
		return nil, Mirror{}, err
	}
	return m, r.mirrorDocs(ctx, "update", []*memcell.MemCell{m}), nil
}

// SoftDelete marks a live MemCell deleted and mirrors the marked document;
// the KV keeps the copy so that a restore finds it. It reports whether a
// live MemCell was deleted.
func (r *Repository) SoftDelete(ctx context.Context, id memcell.ID, by string) (bool, Mirror, error) {
	m, err := r.primary.SoftDelete(ctx, id, by)
	if errors.Is(err, memcell.ErrNotFound) {
		return false, Mirror{Status: MirrorSkipped}, nil
	}
	if err != nil {
		return false, Mirror{}, err
	}
	return true, r.mirrorDocs(ctx, "soft_delete", []*memcell.MemCell{m}), nil
}

// Restore clears the deletion marks of a soft-deleted MemCell and mirrors
// it. It reports whether one was restored.
func (r *Repository) Restore(ctx context.Context, id memcell.ID) (bool, Mirror, error) {
	m, err := r.primary.Restore(ctx, id)
	if errors.Is(err, memcell.ErrNotFound) {
		return false, Mirror{Status: MirrorSkipped}, nil
	}
	if err != nil {
		return false, Mirror{}, err
	}
	return true, r.mirrorDocs(ctx, "restore", []*memcell.MemCell{m}), nil
}

// HardDelete removes a MemCell and its KV copy, and reports whether the
// primary had it. The copy is deleted at the revision the document had when
// the primary removed it, so its tombstone refuses late writes of that
// revision and older, while a copy of a newer revision (the document made
// again with that id since) survives. When the primary had no such
// document the KV is not touched (MirrorSkipped): there is no revision to
// delete at, and a tombstone would refuse a document later created with
// the id.
func (r *Repository) HardDelete(ctx context.Context, id memcell.ID) (bool, Mirror, error) {
	rm, err := r.primary.HardDelete(ctx, id)
	switch {
	case rm.Deleted && err != nil:
		// The document is gone: its copy must go too. Only a re-creation
		// of the id may start at a revision the tombstone still refuses.
		r.log.WarnContext(ctx, "mirror: hard delete done, but the primary could not remember the revision", "event_id", id.String(), "error", err)
	case err != nil:
		return false, Mirror{}, err
	}
	if !rm.Deleted {
		return false, Mirror{Status: MirrorSkipped}, nil // the primary took its note back
	}
	krev := kv.MaxRev // the revision could not be read: refuse every put
	if rm.Revision >= 0 {
		krev = uint64(rm.Revision)
	}
	return true, r.mirrorDeletes(ctx, "hard_delete", []memcell.ID{id}, []uint64{krev}, rm.Intent), nil
}

// SoftDeleteMany soft-deletes every live MemCell in scope, mirrors each
// document it marked, and returns how many it deleted.
func (r *Repository) SoftDeleteMany(ctx context.Context, sc memcell.Scope, by string) (int64, Mirror, error) {
	res, err := r.primary.SoftDeleteMany(ctx, sc, by)
	if err != nil {
		r.partial(ctx, "soft_delete_many", res, err)
		return 0, Mirror{}, err
	}
	mir := r.mirrorDocs(ctx, "soft_delete_many", res.Docs)
	r.log.InfoContext(ctx, "mirror: bulk soft delete", "deleted", res.Count, "mirrored", mir.Written, "mirror", mir.Status)
	return res.Count, mir, nil
}

// RestoreMany restores every soft-deleted MemCell in scope, mirrors them,
// and returns how many it restored.
func (r *Repository) RestoreMany(ctx context.Context, sc memcell.Scope) (int64, Mirror, error) {
	res, err := r.primary.RestoreMany(ctx, sc)
	if err != nil {
		r.partial(ctx, "restore_many", res, err)
		return 0, Mirror{}, err
	}
	mir := r.mirrorDocs(ctx, "restore_many", res.Docs)
	r.log.InfoContext(ctx, "mirror: bulk restore", "restored", res.Count, "mirrored", mir.Written, "mirror", mir.Status)
	return res.Count, mir, nil
}

// partial mirrors what a bulk operation that failed part-way did before it
// failed: the documents it changed and read back. Changed documents it
// could not read back cannot be named; the ERROR line says how many, and a
// repair finds them.
func (r *Repository) partial(ctx context.Context, op string, res memcell.BulkResult, err error) {
	if res.Count == 0 && len(res.Docs) == 0 {
		return
	}
	mir := r.mirrorDocs(ctx, op, res.Docs)
	r.partialLog(ctx, op, res.Count, int64(len(res.Docs)), mir, err)
}

// partialLog logs the outcome of mirroring a bulk operation that failed
// part-way after changing changed documents, of which it could name named.
func (r *Repository) partialLog(ctx context.Context, op string, changed, named int64, mir Mirror, err error) {
	if unknown := changed - named; unknown > 0 {
		r.log.ErrorContext(ctx, "mirror: a bulk operation failed part-way; some changed documents could not be mirrored: run memcell kv repair",
			"op", op, "changed", changed, "mirrored", mir.Written, "unknown", unknown, "error", err)
		return
	}
	r.log.WarnContext(ctx, "mirror: a bulk operation failed part-way; the documents it changed were mirrored",
		"op", op, "changed", changed, "mirrored", mir.Written, "mirror", mir.Status, "error", err)
}

// HardDeleteMany removes every MemCell in scope and their KV copies, and
// returns how many it removed.
func (r *Repository) HardDeleteMany(ctx context.Context, sc memcell.Scope) (int64, Mirror, error) {
	res, err := r.primary.HardDeleteMany(ctx, sc)
	if err != nil {
		if res.Count > 0 || len(res.Removed) > 0 {
			// Failed part-way: the copies of the documents already gone
			// must go too.
			mir := r.mirrorDeletes(ctx, "hard_delete_many", res.Removed, kvRevisions(res.RemovedRevisions), res.Intent)
			r.partialLog(ctx, "hard_delete_many", res.Count, int64(len(res.Removed)), mir, err)
		}
		return res.Count, Mirror{}, err
	}
	// Each copy is deleted at the revision its document had when the
	// primary removed it, as for a single delete.
	mir := r.mirrorDeletes(ctx, "hard_delete_many", res.Removed, kvRevisions(res.RemovedRevisions), res.Intent)
	r.log.InfoContext(ctx, "mirror: bulk hard delete", "deleted", res.Count, "mirrored", mir.Written, "mirror", mir.Status)
	return res.Count, mir, nil
}

// kvRevisions converts the revisions of removed documents to those of
// their KV deletes: an unreadable one (-1) becomes kv.MaxRev, which refuses
// every put for the grace period. A nil or short revs gives nil (every
// delete at kv.MaxRev).
func kvRevisions(revs []int64) []uint64 {
	if revs == nil {
		return nil
	}
	out := make([]uint64, len(revs))
	for i, rev := range revs {
		out[i] = kv.MaxRev
		if rev >= 0 {
			out[i] = uint64(rev)
		}
	}
	return out
}

// batchSize bounds one KV batch of a bulk operation.
const batchSize = 500

// mirrorDocs writes the canonical encodings of docs, guarded by their
// revisions.
func (r *Repository) mirrorDocs(ctx context.Context, op string, docs []*memcell.MemCell) Mirror {
	if len(docs) == 0 {
		return Mirror{Status: MirrorSkipped}
	}
	if !r.flags.Load().Mirroring {
		ids := make([]memcell.ID, len(docs))
		for i, d := range docs {
			ids[i] = d.ID
		}
		m := r.putM
		if len(docs) > 1 {
			m = r.batchM
		}
		return r.skipped(ctx, op, m, ids)
	}
	if r.queued(ctx) {
		jobs := make([]*job, 0, len(docs))
		var total Mirror
		for _, d := range docs {
			// The encoding goes in a pooled buffer, which the queue gives
			// back once the KV has taken it (job.release).
			buf := encodeBuffers.Get().(*[]byte)
			val, err := memcell.AppendEncode((*buf)[:0], d)
			if err != nil {
				encodeBuffers.Put(buf)
				r.batchM.failures.Inc()
				total = merge(total, r.failed(ctx, op, fmt.Errorf("mirror: encode %s: %w", d.ID, err), r.Key(d.ID)))
				continue
			}
			*buf = val
			j := &job{key: r.Key(d.ID), id: d.ID, val: val, buf: buf, rev: uint64(d.Revision), op: op}
			if !d.Intent.IsZero() {
				j.intents = []memcell.Intent{{ID: d.ID, Mark: d.Intent}}
			}
			jobs = append(jobs, j)
		}
		return merge(total, r.enqueue(jobs))
	}
	if len(docs) == 1 && txFrom(ctx) == nil {
		// The common case: one document, encoded into a pooled buffer that
		// the KV has copied or sent by the time Put returns.
		buf := encodeBuffers.Get().(*[]byte)
		defer encodeBuffers.Put(buf)
		val, err := memcell.AppendEncode((*buf)[:0], docs[0])
		if err != nil {
			r.putM.failures.Inc()
			return r.failed(ctx, op, fmt.Errorf("mirror: encode %s: %w", docs[0].ID, err), r.Key(docs[0].ID))
		}
		*buf = val
		mir := r.put(ctx, op, kv.Entry{Key: r.Key(docs[0].ID), Value: val, Rev: uint64(docs[0].Revision)})
		if mir.Status != MirrorFailed && !docs[0].Intent.IsZero() {
			r.done(memcell.Intent{ID: docs[0].ID, Mark: docs[0].Intent})
		}
		return mir
	}
	entries := make([]kv.Entry, 0, min(len(docs), batchSize))
	encoded := make([]*memcell.MemCell, 0, min(len(docs), batchSize))
	var total Mirror
	for chunk := range slices.Chunk(docs, batchSize) {
		entries, encoded = entries[:0], encoded[:0]
		for _, d := range chunk {
			var e kv.Entry
			if err := r.entry(&e, d); err != nil {
				r.batchM.failures.Inc()
				total = merge(total, r.failed(ctx, op, err, r.Key(d.ID)))
				continue
			}
			entries = append(entries, e)
			encoded = append(encoded, d)
		}
		if tx := txFrom(ctx); tx != nil {
			for i, e := range entries {
				tx.add(e, false, memcell.Intent{ID: encoded[i].ID, Mark: encoded[i].Intent})
			}
			total = merge(total, Mirror{Status: MirrorDeferred})
			continue
		}
		mir := r.batchPut(ctx, op, entries)
		if mir.Status != MirrorFailed {
			r.done(docIntents(encoded)...)
		}
		total = merge(total, mir)
	}
	return total
}

// done hands over the intents of writes whose KV side is done (stored, or
// refused because the KV holds a newer state) to be cleared.
func (r *Repository) done(intents ...memcell.Intent) {
	if len(intents) > 0 {
		r.clear.add(intents...)
	}
}

var encodeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// entry fills e with the KV entry of m.
func (r *Repository) entry(e *kv.Entry, m *memcell.MemCell) error {
	val, err := memcell.Encode(m)
	if err != nil {
		return fmt.Errorf("mirror: encode %s: %w", m.ID, err)
	}
	*e = kv.Entry{Key: r.Key(m.ID), Value: val, Rev: uint64(m.Revision)}
	return nil
}

func (r *Repository) put(ctx context.Context, op string, e kv.Entry) Mirror {
	mir := r.putKV(ctx, op, e)
	if mir.Status == MirrorFailed {
		return r.failed(ctx, op, mir.Err, e.Key)
	}
	return mir
}

// putKV makes one guarded put and counts it; a failure is returned, not
// handled.
func (r *Repository) putKV(ctx context.Context, op string, e kv.Entry) Mirror {
	kctx, cancel := r.kvContext(ctx)
	defer cancel()
	start := time.Now()
	stored, err := r.kv.Put(kctx, e)
	r.putM.since(start)
	if err != nil {
		r.putM.errs.Inc()
		r.putM.failures.Inc()
		return Mirror{Status: MirrorFailed, Err: err}
	}
	if !stored {
		r.putM.stale.Inc()
		r.log.DebugContext(ctx, "mirror: kv put refused, newer copy or tombstone", "op", op, "key", e.Key, "revision", e.Rev)
		return Mirror{Status: MirrorStale}
	}
	r.putM.ok.Inc()
	r.log.DebugContext(ctx, "mirror: kv put", "op", op, "key", e.Key, "revision", e.Rev)
	return Mirror{Status: MirrorOK, Written: 1}
}

func (r *Repository) batchPut(ctx context.Context, op string, entries []kv.Entry) Mirror {
	mir := r.batchPutKV(ctx, op, entries)
	if mir.Status == MirrorFailed {
		keys := make([]string, len(entries))
		for i, e := range entries {
			keys[i] = e.Key
		}
		return r.failed(ctx, op, mir.Err, keys...)
	}
	return mir
}

// batchPutKV makes guarded puts in one BatchPut and counts them; a failure
// is returned, not handled.
func (r *Repository) batchPutKV(ctx context.Context, op string, entries []kv.Entry) Mirror {
	if len(entries) == 0 {
		return Mirror{Status: MirrorSkipped}
	}
	kctx, cancel := r.kvContext(ctx)
	defer cancel()
	start := time.Now()
	n, err := r.kv.BatchPut(kctx, entries)
	r.batchM.since(start)
	if err != nil {
		r.batchM.errs.Inc()
		r.batchM.failures.Add(float64(len(entries)))
		return Mirror{Status: MirrorFailed, Err: err}
	}
	r.batchM.ok.Add(float64(n))
	r.batchM.stale.Add(float64(len(entries) - n))
	r.log.DebugContext(ctx, "mirror: kv batch put", "op", op, "keys", len(entries), "stored", n)
	if n < len(entries) {
		return Mirror{Status: MirrorStale, Written: n}
	}
	return Mirror{Status: MirrorOK, Written: n}
}

// mirrorDeletes removes the KV copies of ids with guarded deletes, leaving
// tombstones, and then clears the pending notes the primary made of them
// with the mark intent. revs[i] is the revision ids[i] had when it was
// deleted; a nil revs deletes every copy with kv.MaxRev, whose tombstone
// refuses every put for the grace period.
func (r *Repository) mirrorDeletes(ctx context.Context, op string, ids []memcell.ID, revs []uint64, intent memcell.ID) Mirror {
	if len(ids) == 0 {
		return Mirror{Status: MirrorSkipped}
	}
	if !r.flags.Load().Mirroring {
		m := r.delM
		if len(ids) > 1 {
			m = r.bdelM
		}
		return r.skipped(ctx, op, m, ids)
	}
	dels := make([]kv.Deletion, len(ids))
	for i, id := range ids {
		dels[i] = kv.Deletion{Key: r.Key(id), Rev: kv.MaxRev}
		if i < len(revs) {
			dels[i].Rev = revs[i]
		}
	}
	if tx := txFrom(ctx); tx != nil {
		for i, d := range dels {
			tx.add(kv.Entry{Key: d.Key, Rev: d.Rev}, true, memcell.Intent{ID: ids[i], Mark: intent, Pending: true})
		}
		return Mirror{Status: MirrorDeferred}
	}
	if r.queued(ctx) {
		var g *jobGroup
		if !intent.IsZero() {
			g = newJobGroup(memcell.Intent{ID: ids[0], Mark: intent, Pending: true}, len(dels))
		}
		jobs := make([]*job, len(dels))
		for i, d := range dels {
			jobs[i] = &job{key: d.Key, id: ids[i], del: true, rev: d.Rev, op: op}
			if g != nil {
				jobs[i].groups = []*jobGroup{g}
			}
		}
		return r.enqueue(jobs)
	}
	var total Mirror
	for chunk := range slices.Chunk(dels, batchSize) {
		total = merge(total, r.deleteKeys(ctx, op, chunk))
	}
	if total.Status != MirrorFailed && !intent.IsZero() {
		// The notes of one delete share the mark and are cleared by it,
		// so only when every chunk is done.
		r.done(memcell.Intent{ID: ids[0], Mark: intent, Pending: true})
	}
	return total
}

// deleteKeys applies guarded deletes. A delete that a newer copy refused
// is not told apart from one that found no copy: both leave the KV right.
func (r *Repository) deleteKeys(ctx context.Context, op string, dels []kv.Deletion) Mirror {
	mir := r.deleteKV(ctx, op, dels)
	if mir.Status == MirrorFailed {
		keys := make([]string, len(dels))
		for i, d := range dels {
			keys[i] = d.Key
		}
		return r.failed(ctx, op, mir.Err, keys...)
	}
	return mir
}

// deleteKV applies guarded deletes in one call and counts them; a failure
// is returned, not handled.
func (r *Repository) deleteKV(ctx context.Context, op string, dels []kv.Deletion) Mirror {
	m := r.delM
	if len(dels) > 1 {
		m = r.bdelM
	}
	kctx, cancel := r.kvContext(ctx)
	defer cancel()
	start := time.Now()
	var err error
	if len(dels) == 1 {
		_, err = r.kv.Delete(kctx, dels[0].Key, dels[0].Rev)
	} else {
		_, err = r.kv.BatchDelete(kctx, dels)
	}
	m.since(start)
	if err != nil {
		m.errs.Inc()
		m.failures.Add(float64(len(dels)))
		return Mirror{Status: MirrorFailed, Err: err}
	}
	m.ok.Add(float64(len(dels)))
	r.log.DebugContext(ctx, "mirror: kv delete", "op", op, "keys", len(dels))
	return Mirror{Status: MirrorOK, Written: len(dels)}
}

// failed applies the error policy to a failed KV write: WARN, record the ids
// for repair (durably, in the primary), report it to the caller.
func (r *Repository) failed(ctx context.Context, op string, err error, keys ...string) Mirror {
	ids := make([]memcell.ID, 0, len(keys))
	for _, k := range keys {
		if id, ok := r.keys.ID(k); ok {
			ids = append(ids, id)
		}
	}
	r.log.WarnContext(ctx, "mirror: kv write failed; recorded for repair", "op", op, "kv_backend", r.backend,
		"key", keys[0], "keys", len(keys), "error", err)
	pctx, cancel := r.kvContext(ctx)
	defer cancel()
	if _, perr := r.primary.RecordPending(pctx, ids, op+": "+err.Error()); perr != nil {
		r.log.WarnContext(ctx, "mirror: could not record the failed keys for repair", "op", op, "keys", len(ids), "error", perr)
	}
	return Mirror{Status: MirrorFailed, Err: err}
}

// skipped applies the policy to writes made while mirroring is switched
// off: the KV is not touched, the keys are counted and their ids recorded
// for repair like failed writes (in the enclosing transaction, if any), so
// that the KV can be brought back without a full scan.
func (r *Repository) skipped(ctx context.Context, op string, m *opMetrics, ids []memcell.ID) Mirror {
	m.skipped.Add(float64(len(ids)))
	pctx, cancel := r.kvContext(ctx)
	defer cancel()
	if _, err := r.primary.RecordPending(pctx, ids, op+": mirroring off"); err != nil {
		r.log.WarnContext(ctx, "mirror: could not record the unmirrored keys for repair", "op", op, "keys", len(ids), "error", err)
	}
	return Mirror{Status: MirrorSkipped}
}

// merge combines the outcomes of the batches of one operation: the worst
// status wins.
func merge(a, b Mirror) Mirror {
	rank := map[MirrorStatus]int{"": 0, MirrorSkipped: 1, MirrorOK: 2, MirrorQueued: 3, MirrorDeferred: 4, MirrorStale: 5, MirrorFailed: 6}
	out := Mirror{Written: a.Written + b.Written, Status: a.Status, Err: a.Err}
	if rank[b.Status] > rank[a.Status] {
		out.Status = b.Status
	}
	if out.Err == nil {
		out.Err = b.Err
	}
	return out
}
