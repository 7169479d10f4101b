package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
)

// doc is one primary document of a batch: its id, key, revision and
// canonical encoding.
type doc struct {
	id    memcell.ID
	key   string
	rev   int64
	value []byte
}

// batch is a run of documents handled together. Its values live in one
// arena reused from batch to batch.
type batch struct {
	docs  []doc
	arena []byte
	// since is no later than the primary read of any document in the
	// batch: the cursor fetched them at or after the first document of the
	// batch before was handed out (the scan's start for the first batch).
	since time.Time
	// first is when the batch's first document was handed out.
	first time.Time
}

func (b *batch) reset() {
	b.docs, b.arena = b.docs[:0], b.arena[:0]
	if !b.first.IsZero() {
		b.since, b.first = b.first, time.Time{}
	}
}

// add encodes m into the arena and appends it.
func (b *batch) add(key string, m *memcell.MemCell) error {
	start := len(b.arena)
	arena, err := memcell.AppendEncode(b.arena, m)
	if err != nil {
		b.arena = b.arena[:start]
		return err
	}
	b.arena = arena
	b.docs = append(b.docs, doc{id: m.ID, key: key, rev: m.Revision, value: arena[start:len(arena):len(arena)]})
	return nil
}

// primaryPass reads the whole collection through one cursor, in _id order
// when the job keeps a checkpoint (after the checkpoint's last id when it
// resumes) and in the server's natural order otherwise: sorting costs
// FerretDB a read of the whole collection into memory before the first
// document, which only resuming needs.
func (j *job) primaryPass(ctx context.Context) error {
	var after memcell.ID
	if j.ckpt != nil && j.ckpt.LastID != "" {
		after, _ = memcell.ParseID(j.ckpt.LastID) // checked at load
	}
	b := &batch{docs: make([]doc, 0, j.batch), arena: make([]byte, 0, min(j.batch*2048, 1<<20)), since: time.Now()}
	for m, err := range j.primary.Scan(ctx, j.ckpt != nil, after, j.batch) {
		if b.first.IsZero() {
			b.first = time.Now()
		}
		if bad, ok := errors.AsType[*memcell.UnreadableError](err); ok {
			j.scanned()
			j.unreadable(ctx, bad)
		} else if err != nil {
			return fmt.Errorf("primary scan: %w", err)
		} else {
			j.scanned()
			if err := b.add(j.keys.Key(m.ID), m); err != nil {
				j.unreadable(ctx, &memcell.UnreadableError{ID: m.ID.String(), Err: err})
			}
		}
		if len(b.docs) == j.batch {
			if err := j.flush(ctx, b, false); err != nil {
				return err
			}
		}
		j.progress(false)
		if err := j.limit.wait(ctx); err != nil {
			return err
		}
	}
	return j.flush(ctx, b, true)
}

// unreadable reports a primary document that is not a valid MemCell: a
// difference a repair cannot fix.
func (j *job) unreadable(ctx context.Context, bad *memcell.UnreadableError) {
	j.found(ctx, Diff{EventID: bad.ID, Key: j.keys.Prefix + bad.ID, Kind: Unreadable, Error: bad.Err.Error()})
	if j.fix {
		j.report.Unrepaired++
	}
}

// flush handles a batch: sync writes it, verify and repair compare it with
// the KV and set aside the documents that differ for a second look. When
// nothing is set aside any more, the checkpoint records the batch's last
// id.
func (j *job) flush(ctx context.Context, b *batch, last bool) error {
	if len(b.docs) > 0 {
		var err error
		if j.write {
			err = j.syncBatch(ctx, b)
		} else {
			err = j.compareBatch(ctx, b.docs)
		}
		if err != nil {
			return err
		}
	}
	if n := len(j.suspects); n > 0 {
		if last || n >= maxSuspects || (j.ckpt != nil && time.Since(j.suspectsSince) >= j.ckptLag) {
			if err := j.recheckSuspects(ctx); err != nil {
				return err
			}
		}
	}
	// Without a checkpoint the order is the server's, and the last id is
	// not needed. With documents set aside, the batch is not done yet.
	if j.ckpt != nil && len(b.docs) > 0 && len(j.suspects) == 0 {
		if err := j.saveCheckpoint(b.docs[len(b.docs)-1].id.String()); err != nil {
			return err
		}
	}
	b.reset()
	return nil
}

// entries returns the guarded KV writes of docs.
func entries(docs []doc) []kv.Entry {
	es := make([]kv.Entry, len(docs))
	for i, d := range docs {
		es[i] = kv.Entry{Key: d.key, Value: d.value, Rev: uint64(d.rev)}
	}
	return es
}

// maxHold bounds how long sync writes a document it read from the primary
// without reading it again. A document hard-deleted meanwhile left a KV
// tombstone that refuses the late write only for the KV's grace period
// (minutes by default); a sync held up longer (by its rate limit, or a slow
// store) must not bring the document back, nor write a state that has
// changed since.
const maxHold = time.Second

// syncBatch writes the documents of b, guarded by their revisions. When they
// were read more than maxHold ago, they are read again first (one Stream of
// their ids): documents gone since are not written, changed ones are
// written as they are now.
func (j *job) syncBatch(ctx context.Context, b *batch) error {
	docs := b.docs
	if time.Since(b.since) > maxHold {
		var err error
		if docs, err = j.reread(ctx, docs); err != nil {
			return err
		}
	}
	n, err := j.kv.BatchPut(ctx, entries(docs))
	if err != nil {
		return fmt.Errorf("kv batch put: %w", err)
	}
	j.repaired(n)
	return nil
}

// reread returns the current states of docs from the primary, without the
// documents it no longer has.
func (j *job) reread(ctx context.Context, docs []doc) ([]doc, error) {
	ids := make([]memcell.ID, len(docs))
	for i, d := range docs {
		ids[i] = d.id
	}
	fresh := &batch{docs: make([]doc, 0, len(docs))}
	for m, err := range j.primary.Stream(ctx, ids, j.batch) {
		if bad, ok := errors.AsType[*memcell.UnreadableError](err); ok {
			// Readable a moment ago, changed since by another program.
			j.unreadable(ctx, bad)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("primary re-read: %w", err)
		}
		if err := fresh.add(j.keys.Key(m.ID), m); err != nil {
			j.unreadable(ctx, &memcell.UnreadableError{ID: m.ID.String(), Err: err})
		}
	}
	return fresh.docs, nil
}
