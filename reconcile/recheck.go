package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
)

// Documents whose copy differs in the primary pass are looked at a second
// time before anything is reported, because a live write may have been
// caught between its primary and its KV step. That second look reads the
// primary by id, which FerretDB answers by reading the whole collection
// whatever the number of ids, so the ids are set aside and looked at
// together: once maxSuspects are waiting, at the end of the pass, and, when
// the job keeps a checkpoint (which only moves on while nothing is set
// aside), once the oldest has waited checkpointLag. The ids take 12 bytes
// each.
const (
	maxSuspects   = 10_000
	checkpointLag = 5 * time.Second
)

// finding is a difference that survived the second look, with the
// primary's document as then read, and the copy as then read (held, of
// revision heldRev, -1 when unknown; nil for a Missing one).
type finding struct {
	doc
	kind    Kind
	fields  []memcell.Difference
	held    []byte
	heldRev int64
}

// ahead reports whether the copy has a higher revision than the primary's
// document: the primary's revision went down.
func (f *finding) ahead() bool {
	return f.kind != Missing && f.heldRev > f.rev
}

// compareBatch compares docs with their KV copies, read with one BatchGet,
// and sets aside the ids of those that differ. For a repair, the pending
// records of the others are done with.
func (j *job) compareBatch(ctx context.Context, docs []doc) error {
	keys := make([]string, len(docs))
	for i, d := range docs {
		keys[i] = d.key
	}
	got, err := j.kv.BatchGet(ctx, keys)
	if err != nil {
		return fmt.Errorf("kv batch get: %w", err)
	}
	var fine []memcell.ID
	for _, d := range docs {
		v, ok := got[d.key]
		if ok {
			j.copies.add(d.id)
		}
		switch {
		case ok && bytes.Equal(v, d.value):
			fine = append(fine, d.id)
		case len(j.suspects) == 0:
			j.suspectsSince = time.Now()
			fallthrough
		default:
			j.suspects = append(j.suspects, d.id)
		}
	}
	return j.clearPending(ctx, fine)
}

// clearPending drops the pending records of ids whose copies are
// consistent, for a repair. Records written after this run started may
// stand for writes that the run did not see, so they stay.
func (j *job) clearPending(ctx context.Context, ids []memcell.ID) error {
	if !j.fix || len(ids) == 0 {
		return nil
	}
	return j.primary.ClearPendingBefore(ctx, ids, j.started)
}

// recheckSuspects gives the documents set aside their second look: it
// streams them from the primary with one query, and for each batch of them
// reads the KV copies again (primary first, KV second, the order of the
// mirror's own writes), reports what still differs and, for a repair,
// fixes it. A document the primary no longer has is left to the KV pass.
func (j *job) recheckSuspects(ctx context.Context) error {
	ids := slices.Clone(j.suspects)
	j.suspects = j.suspects[:0]
	fresh := make(map[memcell.ID]*memcell.MemCell, min(len(ids), j.batch))
	var order []memcell.ID
	for m, err := range j.primary.Stream(ctx, ids, j.batch) {
		if bad, ok := errors.AsType[*memcell.UnreadableError](err); ok {
			// Readable a moment ago, changed since by another program.
			j.unreadable(ctx, bad)
			continue
		}
		if err != nil {
			return fmt.Errorf("primary re-read: %w", err)
		}
		fresh[m.ID] = m
		order = append(order, m.ID)
		if len(order) == j.batch {
			if err := j.judgeBatch(ctx, order, fresh); err != nil {
				return err
			}
			clear(fresh)
			order = order[:0]
		}
	}
	return j.judgeBatch(ctx, order, fresh)
}

// judgeBatch compares the documents fresh, just read from the primary,
// with their KV copies read now, and reports and fixes what differs. A copy
// newer than the primary's document means that a live write reached the
// primary after that read and the KV before this one: the primary is read
// once more for those.
func (j *job) judgeBatch(ctx context.Context, ids []memcell.ID, fresh map[memcell.ID]*memcell.MemCell) error {
	if len(ids) == 0 {
		return nil
	}
	got, err := j.kv.BatchGet(ctx, j.keysOf(ids))
	if err != nil {
		return fmt.Errorf("kv re-read: %w", err)
	}
	out, ahead := j.judgeAll(ctx, ids, fresh, got, true)
	if len(ahead) > 0 {
		again, err := j.primary.LookupMany(ctx, ahead)
		if err != nil {
			return fmt.Errorf("primary re-read: %w", err)
		}
		more, _ := j.judgeAll(ctx, ahead, again, got, false)
		out = append(out, more...)
	}
	for _, f := range out {
		j.found(ctx, Diff{EventID: f.id.String(), Key: f.key, Kind: f.kind, Fields: f.fields})
	}
	if j.dryRun {
		for _, f := range out {
			if f.ahead() {
				j.report.RevisionsLowered++
				j.log.WarnContext(ctx, "reconcile: the primary's revision went down; a repair would replace the KV copy of a higher revision with the primary's document",
					"job", j.name, "dry_run", true, "event_id", f.id.String(), "key", f.key, "revision", f.rev, "copy_revision", f.heldRev)
			}
		}
	}
	if !j.fix {
		return nil
	}
	unrepaired, err := j.fixCopies(ctx, out)
	if err != nil {
		return err
	}
	// The rest now have consistent copies.
	fine := make([]memcell.ID, 0, len(ids))
	for _, id := range ids {
		if !unrepaired[id] {
			fine = append(fine, id)
		}
	}
	return j.clearPending(ctx, fine)
}

// keysOf returns the KV keys of ids.
func (j *job) keysOf(ids []memcell.ID) []string {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = j.keys.Key(id)
	}
	return keys
}

// judgeAll compares the primary's documents of ids with the KV's copies
// got and returns the differences; with setAside, the ids whose copy has a
// newer revision than the primary's document are returned apart instead.
// Ids the primary no longer has are skipped.
func (j *job) judgeAll(ctx context.Context, ids []memcell.ID, fresh map[memcell.ID]*memcell.MemCell, got map[string][]byte, setAside bool) (out []finding, ahead []memcell.ID) {
	for _, id := range ids {
		m, ok := fresh[id]
		if !ok {
			continue
		}
		key := j.keys.Key(id)
		want, err := memcell.Encode(m)
		if err != nil {
			// Decoded but not encodable: cannot happen for documents read
			// from BSON, but if it did the document could not be mirrored.
			j.found(ctx, Diff{EventID: id.String(), Key: key, Kind: Unreadable, Error: err.Error()})
			continue
		}
		held, present := got[key]
		kind, fields, heldRev := judge(want, m.Revision, held, present)
		switch {
		case kind == "":
		case setAside && heldRev > m.Revision:
			ahead = append(ahead, id)
		default:
			out = append(out, finding{doc: doc{id: id, key: key, rev: m.Revision, value: want}, kind: kind, fields: fields, held: held, heldRev: heldRev})
		}
	}
	return out, ahead
}

// judge compares the primary's encoding want, of revision rev, with the
// KV's copy held, and returns the kind of difference ("" for none), the
// differing fields and the copy's revision (-1 if unknown).
func judge(want []byte, rev int64, held []byte, present bool) (Kind, []memcell.Difference, int64) {
	if !present {
		return Missing, nil, -1
	}
	v := memcell.Judge(want, rev, held)
	switch {
	case v.Equal:
		return "", nil, rev
	case v.CopyRevision >= 0 && v.CopyRevision < rev:
		return Stale, v.Diffs, v.CopyRevision
	}
	return Differs, v.Diffs, v.CopyRevision
}

// fixCopies writes the primary's documents over the differing copies,
// guarded by their revisions, and returns the ids it could not fix. A write
// the KV refused is looked at again (primary first): if live traffic has
// meanwhile made the copy consistent there is nothing to fix; a copy still
// ahead of the primary's document is replaced by lowerRevisions; what else
// differs (a tombstone, which keeps a deleted document deleted, or a copy
// whose revision is unknown) a guarded write cannot overcome, and the
// document is unrepaired.
func (j *job) fixCopies(ctx context.Context, fs []finding) (map[memcell.ID]bool, error) {
	if len(fs) == 0 {
		return nil, nil
	}
	es := make([]kv.Entry, len(fs))
	for i, f := range fs {
		es[i] = kv.Entry{Key: f.key, Value: f.value, Rev: uint64(f.rev)}
	}
	n, err := j.kv.BatchPut(ctx, es)
	if err != nil {
		return nil, fmt.Errorf("kv batch put: %w", err)
	}
	if n == len(es) {
		j.repaired(n)
		for _, f := range fs {
			if f.kind == Missing {
				j.copies.add(f.id) // it has a copy now
			}
		}
		return nil, nil
	}
	// Which copies exist now is not worth working out for the fingerprint.
	j.copiesOK = false
	// Which were refused? Those whose copy is not what was written.
	ids := make([]memcell.ID, len(fs))
	for i, f := range fs {
		ids[i] = f.id
	}
	got, err := j.kv.BatchGet(ctx, j.keysOf(ids))
	if err != nil {
		return nil, fmt.Errorf("kv batch get: %w", err)
	}
	var refused []memcell.ID
	for _, f := range fs {
		if v, ok := got[f.key]; ok && bytes.Equal(v, f.value) {
			j.repaired(1)
		} else {
			refused = append(refused, f.id)
		}
	}
	again, err := j.lookAgain(ctx, refused)
	if err != nil {
		return nil, err
	}
	unrepaired := make(map[memcell.ID]bool, len(again))
	var ahead []finding
	for _, f := range again {
		if f.ahead() {
			ahead = append(ahead, f)
			continue
		}
		j.unrepaired(ctx, f, unrepaired)
	}
	lost, err := j.lowerRevisions(ctx, ahead)
	if err != nil {
		return nil, err
	}
	// A swap refused: the copy changed after it was read, by a live write
	// (or another repair). One more look; what still differs stays so.
	again, err = j.lookAgain(ctx, lost)
	if err != nil {
		return nil, err
	}
	for _, f := range again {
		j.unrepaired(ctx, f, unrepaired)
	}
	return unrepaired, nil
}

// lookAgain reads the documents of ids from the primary, then their copies
// from the KV, and returns what differs. Ids the primary no longer has are
// skipped (the KV pass deals with their copies).
func (j *job) lookAgain(ctx context.Context, ids []memcell.ID) ([]finding, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	fresh, err := j.primary.LookupMany(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("primary re-read: %w", err)
	}
	got, err := j.kv.BatchGet(ctx, j.keysOf(ids))
	if err != nil {
		return nil, fmt.Errorf("kv re-read: %w", err)
	}
	out, _ := j.judgeAll(ctx, ids, fresh, got, false)
	return out, nil
}

// unrepaired counts f as a difference the repair could not fix, marks it
// in ids, and logs it.
func (j *job) unrepaired(ctx context.Context, f finding, ids map[memcell.ID]bool) {
	ids[f.id] = true
	j.report.Unrepaired++
	j.log.WarnContext(ctx, "reconcile: the KV refused the primary's copy: it holds a tombstone, or a copy that could not be replaced; the copy stays different",
		"job", j.name, "event_id", f.id.String(), "key", f.key, "kind", f.kind, "revision", f.rev, "copy_revision", f.heldRev)
}

// lowerRevisions replaces copies whose revision is ahead of the primary's
// document, just read again from the primary and then from the KV, with
// the primary's document at its revision: a swap of the exact copy read
// (kv.Store.Swap), so that a live write that changed the copy meanwhile
// wins. It returns the ids whose swap was refused. A state that moved on in
// the primary meanwhile, whose own guarded put the copy may have refused
// just before the swap, is then written, guarded.
func (j *job) lowerRevisions(ctx context.Context, fs []finding) (lost []memcell.ID, err error) {
	var lowered []finding
	for _, f := range fs {
		ok, err := j.kv.Swap(ctx, kv.Entry{Key: f.key, Value: f.value, Rev: uint64(f.rev)}, f.held)
		if err != nil {
			return nil, fmt.Errorf("kv swap: %w", err)
		}
		if !ok {
			lost = append(lost, f.id)
			continue
		}
		j.repaired(1)
		j.report.RevisionsLowered++
		lowered = append(lowered, f)
		j.log.WarnContext(ctx, "reconcile: the primary's revision went down; the KV copy of a higher revision was replaced with the primary's document",
			"job", j.name, "event_id", f.id.String(), "key", f.key, "revision", f.rev, "copy_revision", f.heldRev)
	}
	if len(lowered) == 0 {
		return lost, nil
	}
	ids := make([]memcell.ID, len(lowered))
	for i, f := range lowered {
		ids[i] = f.id
	}
	fresh, err := j.primary.LookupMany(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("primary re-read: %w", err)
	}
	var es []kv.Entry
	for _, f := range lowered {
		m, ok := fresh[f.id]
		if !ok || m.Revision <= f.rev {
			continue // unchanged, or gone (the KV pass deals with the copy)
		}
		v, err := memcell.Encode(m)
		if err != nil {
			continue // reported by the next job, as unreadable
		}
		es = append(es, kv.Entry{Key: f.key, Value: v, Rev: uint64(m.Revision)})
	}
	if len(es) > 0 {
		if _, err := j.kv.BatchPut(ctx, es); err != nil {
			return nil, fmt.Errorf("kv batch put: %w", err)
		}
	}
	return lost, nil
}
