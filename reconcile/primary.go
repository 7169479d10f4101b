package reconcile

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/mongostore"
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
}

func (b *batch) reset() {
	b.docs, b.arena = b.docs[:0], b.arena[:0]
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
	filter := bson.D{}
	opts := options.Find().SetBatchSize(int32(j.batch))
	if j.ckpt != nil {
		opts.SetSort(bson.D{{Key: "_id", Value: 1}})
		if j.ckpt.LastID != "" {
			last, _ := memcell.ParseID(j.ckpt.LastID) // checked at load
			filter = bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: bson.ObjectID(last)}}}}
		}
	}
	cur, err := j.primary.Collection().Find(ctx, filter, opts)
	if err != nil {
		return fmt.Errorf("primary scan: %w", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	b := &batch{docs: make([]doc, 0, j.batch), arena: make([]byte, 0, min(j.batch*2048, 1<<20))}
	for cur.Next(ctx) {
		if err := j.limit.wait(ctx); err != nil {
			return err
		}
		j.scanned()
		m, err := mongostore.Decode(cur.Current)
		if err == nil {
			err = b.add(j.key(m.ID), m)
		}
		if err != nil {
			id := rawID(cur.Current)
			j.found(ctx, Diff{EventID: id, Key: j.prefix + id, Kind: Unreadable, Error: err.Error()})
			if j.fix {
				j.report.Unrepaired++
			}
		}
		if len(b.docs) == j.batch {
			if err := j.flush(ctx, b, false); err != nil {
				return err
			}
		}
		j.progress(false)
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("primary scan: %w", err)
	}
	return j.flush(ctx, b, true)
}

// rawID is the _id of a stored document as text: the hex of an ObjectId,
// the value itself otherwise.
func rawID(raw bson.Raw) string {
	v, err := raw.LookupErr("_id")
	if err != nil {
		return "?"
	}
	if oid, ok := v.ObjectIDOK(); ok {
		return oid.Hex()
	}
	if s, ok := v.StringValueOK(); ok {
		return s
	}
	return v.String()
}

// flush handles a batch: sync writes it, verify and repair compare it with
// the KV and set aside the documents that differ for a second look. When
// nothing is set aside any more, the checkpoint records the batch's last
// id.
func (j *job) flush(ctx context.Context, b *batch, last bool) error {
	if len(b.docs) > 0 {
		var err error
		if j.write {
			err = j.syncBatch(ctx, b.docs)
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

func (j *job) syncBatch(ctx context.Context, docs []doc) error {
	n, err := j.kv.BatchPut(ctx, entries(docs))
	if err != nil {
		return fmt.Errorf("kv batch put: %w", err)
	}
	j.repaired(n)
	return nil
}
