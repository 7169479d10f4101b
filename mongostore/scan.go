package mongostore

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/memcell/memcell"
)

// This file holds the reads of the reconcile jobs: streams over the whole
// collection or a list of ids, soft-deleted documents included, and
// batched lookups. FerretDB answers any filter but exactly {_id: value} by
// reading the whole collection, so these reads stream one cursor rather
// than page with _id > last queries (quadratic there), and take their ids
// in large lists.

// scanChunk bounds the ids of one $in filter of LookupMany, Existing and
// Stream. It is larger than idChunk on purpose: FerretDB evaluates $in by
// reading the whole collection, so the callers' batches should cost one
// query each. 100,000 ObjectIds make a filter of about 2 MB, far below the
// 16 MB limit.
const scanChunk = 100_000

// Scan streams every document of the collection, live and soft-deleted,
// through one cursor fetching batch documents per round trip (0 means the
// server's default). With ordered, or with a non-zero after, it reads in
// _id order, after that id when it is not zero: a scan that stopped can
// resume where it stopped. Ordering costs FerretDB a read of the whole
// collection into its memory before the first document; MongoDB reads the
// _id index. Without it the order is the server's natural order.
//
// The sequence yields each readable document with a nil error, and each
// stored document that is not a valid MemCell as a nil document with a
// *memcell.UnreadableError, and goes on. An error that ends the scan (the
// server's, translated like every error of the store, or ctx.Err()) is
// yielded last. Stopping the loop closes the cursor.
func (s *Store) Scan(ctx context.Context, ordered bool, after memcell.ID, batch int) iter.Seq2[*memcell.MemCell, error] {
	filter := bson.D{}
	opts := options.Find()
	if batch > 0 {
		opts.SetBatchSize(int32(batch))
	}
	if ordered || !after.IsZero() {
		opts.SetSort(bson.D{{Key: "_id", Value: 1}})
	}
	if !after.IsZero() {
		filter = bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: bson.ObjectID(after)}}}}
	}
	return s.stream(ctx, "scan", func() (*mongo.Cursor, error) { return s.coll.Find(ctx, filter, opts) })
}

// Stream streams the documents with the ids, live or soft-deleted, as Scan
// does, with one $in query per 100,000 ids; ids without a document are not
// yielded. The order is the server's.
func (s *Store) Stream(ctx context.Context, ids []memcell.ID, batch int) iter.Seq2[*memcell.MemCell, error] {
	opts := options.Find()
	if batch > 0 {
		opts.SetBatchSize(int32(batch))
	}
	return func(yield func(*memcell.MemCell, error) bool) {
		for chunk := range slices.Chunk(ids, scanChunk) {
			more := true
			for m, err := range s.stream(ctx, "stream", func() (*mongo.Cursor, error) {
				return s.coll.Find(ctx, bson.D{inIDs(chunk)}, opts)
			}) {
				if !yield(m, err) {
					return
				}
				more = more && (err == nil || isUnreadable(err))
			}
			if !more {
				return
			}
		}
	}
}

// stream yields the documents of the cursor open opens, as Scan describes.
func (s *Store) stream(ctx context.Context, op string, open func() (*mongo.Cursor, error)) iter.Seq2[*memcell.MemCell, error] {
	return func(yield func(*memcell.MemCell, error) bool) {
		cur, err := open()
		if err != nil {
			yield(nil, fmt.Errorf("mongostore: %s: %w", op, mapErr(err)))
			return
		}
		defer cur.Close(context.WithoutCancel(ctx))
		for cur.Next(ctx) {
			if !yield(fromRaw(cur.Current)) {
				return
			}
		}
		if err := cur.Err(); err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			} else {
				err = fmt.Errorf("mongostore: %s: %w", op, mapErr(err))
			}
			yield(nil, err)
		}
	}
}

// LookupMany returns the documents with the ids, live or soft-deleted,
// keyed by id; absent ids are missing from the map. It costs one $in query
// per 100,000 ids.
func (s *Store) LookupMany(ctx context.Context, ids []memcell.ID) (map[memcell.ID]*memcell.MemCell, error) {
	out := make(map[memcell.ID]*memcell.MemCell, len(ids))
	for chunk := range slices.Chunk(ids, scanChunk) {
		docs, err := s.findAll(ctx, bson.D{inIDs(chunk)}, nil)
		if err != nil {
			return nil, err
		}
		for _, m := range docs {
			out[m.ID] = m
		}
	}
	return out, nil
}

// Existing reports which of the ids have a document, live or soft-deleted.
// It reads only the ids, with one $in query per 100,000 ids: an index
// lookup on MongoDB, a read of the whole collection on FerretDB (which
// costs it about as much as reading every _id through a cursor would).
func (s *Store) Existing(ctx context.Context, ids []memcell.ID) (map[memcell.ID]bool, error) {
	out := make(map[memcell.ID]bool, len(ids))
	for chunk := range slices.Chunk(ids, scanChunk) {
		found, err := findIDsIn(ctx, s.coll, bson.D{inIDs(chunk)})
		if err != nil {
			return nil, err
		}
		for _, id := range found {
			out[id] = true
		}
	}
	return out, nil
}

// ClearPendingBefore removes the pending records of ids that were recorded
// before t (see RecordPending), and keeps later ones: a repair that read a
// document at t has fixed the failures recorded before it, but not a
// failure of a write made after its read. Records are stamped with the
// clock of the process that wrote them, in milliseconds.
func (s *Store) ClearPendingBefore(ctx context.Context, ids []memcell.ID, t time.Time) error {
	// Records carry millisecond times; truncating t keeps a record made in
	// the same millisecond as t.
	before := bson.NewDateTimeFromTime(t.Truncate(time.Millisecond))
	for chunk := range slices.Chunk(ids, idChunk) {
		filter := bson.D{notesOf(chunk), {Key: "at", Value: bson.D{{Key: "$lt", Value: before}}}}
		if _, err := s.pending().DeleteMany(ctx, filter); err != nil {
			return fmt.Errorf("mongostore: clear pending: %w", mapErr(err))
		}
	}
	return nil
}

// EstimatedCount returns about how many documents the collection holds,
// from the server's metadata: EstimatedDocumentCount on MongoDB. FerretDB
// answers that by reading every document, so where this store serialises
// its writes (FerretDB) it asks collStats instead, which FerretDB answers
// from SQLite's page statistics, and falls back to the count if that fails.
func (s *Store) EstimatedCount(ctx context.Context) (int64, error) {
	if s.locks.enabled {
		var st struct {
			Count int64 `bson:"count"`
		}
		err := s.coll.Database().RunCommand(ctx, bson.D{{Key: "collStats", Value: s.coll.Name()}}).Decode(&st)
		if err == nil {
			return st.Count, nil
		}
	}
	n, err := s.coll.EstimatedDocumentCount(ctx)
	if err != nil {
		return 0, fmt.Errorf("mongostore: estimated count: %w", mapErr(err))
	}
	return n, nil
}
