package mongostore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/memcell/memcell"
)

// This file holds what the reconcile jobs need beyond the repository
// operations: decoding documents read by their own cursor, and batched
// lookups that include soft-deleted documents.

// scanChunk bounds the ids of one $in filter of LookupMany and Existing.
// It is larger than idChunk on purpose: FerretDB evaluates $in by reading
// the whole collection, so the callers' batches should cost one query each.
// 100,000 ObjectIds make a filter of about 2 MB, far below the 16 MB limit.
const scanChunk = 100_000

// Decode reads one stored document, as a cursor over Collection returns it,
// into a MemCell. The error names the document's id.
func Decode(raw bson.Raw) (*memcell.MemCell, error) {
	return fromRaw(raw)
}

// LookupMany returns the documents with the ids, live or soft-deleted,
// keyed by id; absent ids are missing from the map. It costs one $in query
// per 100,000 ids.
func (s *Store) LookupMany(ctx context.Context, ids []memcell.ID) (map[memcell.ID]*memcell.MemCell, error) {
	out := make(map[memcell.ID]*memcell.MemCell, len(ids))
	for chunk := range slices.Chunk(ids, scanChunk) {
		docs, err := s.findAll(ctx, inIDs(chunk), nil)
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
		cur, err := s.coll.Find(ctx, inIDs(chunk), options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			return nil, fmt.Errorf("mongostore: existing: %w", mapErr(err))
		}
		for cur.Next(ctx) {
			if oid, ok := cur.Current.Lookup("_id").ObjectIDOK(); ok {
				out[memcell.ID(oid)] = true
			}
		}
		err = cur.Err()
		_ = cur.Close(context.WithoutCancel(ctx))
		if err != nil {
			return nil, fmt.Errorf("mongostore: existing: %w", mapErr(err))
		}
	}
	return out, nil
}

func inIDs(ids []memcell.ID) bson.D {
	oids := make([]bson.ObjectID, len(ids))
	for i, id := range ids {
		oids[i] = bson.ObjectID(id)
	}
	return bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: oids}}}}
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
		filter := append(inIDs(chunk), bson.E{Key: "at", Value: bson.D{{Key: "$lt", Value: before}}})
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
