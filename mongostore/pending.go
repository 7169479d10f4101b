package mongostore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/memcell/memcell"
)

// PendingSuffix is appended to the collection name to name the collection
// that records the documents whose mirror write failed, for repair.
const PendingSuffix = "_kv_pending"

// GravesSuffix is appended to the collection name to name the collection
// that remembers, for each hard-deleted id, the revision its document had:
// a document re-created under that id starts above it (see Append), so the
// revisions of an id never go backwards and the KV's tombstone of the
// delete, which refuses that revision and older ones, admits the new
// document at once. A grave holds the id, the revision and the time of the
// delete, nothing of the document.
const GravesSuffix = "_graves"

func (s *Store) graves() *mongo.Collection {
	return s.coll.Database().Collection(s.coll.Name() + GravesSuffix)
}

// bury remembers that the document id was hard-deleted at revision rev.
// Deleting an id twice keeps the higher revision.
func (s *Store) bury(ctx context.Context, id memcell.ID, rev int64) error {
	_, err := s.graves().UpdateOne(ctx, bson.D{{Key: "_id", Value: bson.ObjectID(id)}},
		bson.D{
			{Key: "$max", Value: bson.D{{Key: memcell.RevisionField, Value: rev}}},
			{Key: "$set", Value: bson.D{{Key: "deleted_at", Value: bson.NewDateTimeFromTime(s.nowMillis())}}},
		},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("mongostore: record the hard delete: %w", mapErr(err))
	}
	return nil
}

// graveRevision returns the revision a hard-deleted document with the id
// had, or 0 when no such delete is remembered.
func (s *Store) graveRevision(ctx context.Context, id memcell.ID) (int64, error) {
	raw, err := s.graves().FindOne(ctx, bson.D{{Key: "_id", Value: bson.ObjectID(id)}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mongostore: read the hard delete of %s: %w", id, mapErr(err))
	}
	return max(revisionOf(raw), 0), nil
}

func (s *Store) pending() *mongo.Collection {
	return s.coll.Database().Collection(s.coll.Name() + PendingSuffix)
}

// RecordPending durably notes that the mirror copies of ids need repair,
// with the reason. Recording an id twice keeps one entry, with the latest
// reason.
func (s *Store) RecordPending(ctx context.Context, ids []memcell.ID, reason string) error {
	now := bson.NewDateTimeFromTime(s.nowMillis())
	for chunk := range slices.Chunk(ids, idChunk) {
		for _, id := range chunk {
			_, err := s.pending().UpdateOne(ctx, bson.D{{Key: "_id", Value: bson.ObjectID(id)}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "reason", Value: reason}, {Key: "at", Value: now}}}},
				options.UpdateOne().SetUpsert(true))
			if err != nil {
				return fmt.Errorf("mongostore: record pending: %w", mapErr(err))
			}
		}
	}
	return nil
}

// Pending returns the ids recorded by RecordPending and not yet cleared.
func (s *Store) Pending(ctx context.Context) ([]memcell.ID, error) {
	return findIDsIn(ctx, s.pending(), bson.D{})
}

// ClearPending removes ids from the pending record once they are repaired.
func (s *Store) ClearPending(ctx context.Context, ids []memcell.ID) error {
	for chunk := range slices.Chunk(ids, idChunk) {
		if _, err := s.pending().DeleteMany(ctx, bson.D{inIDs(chunk)}); err != nil {
			return fmt.Errorf("mongostore: clear pending: %w", mapErr(err))
		}
	}
	return nil
}
