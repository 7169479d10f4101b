package mongostore

import (
	"context"
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
