package mongostore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

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

// buryMany remembers the revisions of the hard-deleted ids (as bury does,
// revs[id]; an unreadable -1 as 0), one bulk command per 1,000 ids.
func (s *Store) buryMany(ctx context.Context, ids []memcell.ID, revs map[memcell.ID]int64) error {
	now := bson.NewDateTimeFromTime(s.nowMillis())
	for chunk := range slices.Chunk(ids, s.bulkChunk()) {
		models := make([]mongo.WriteModel, len(chunk))
		for i, id := range chunk {
			models[i] = mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: bson.ObjectID(id)}}).SetUpsert(true).
				SetUpdate(bson.D{
					{Key: "$max", Value: bson.D{{Key: memcell.RevisionField, Value: max(revs[id], 0)}}},
					{Key: "$set", Value: bson.D{{Key: "deleted_at", Value: now}}},
				})
		}
		if err := s.bulkWrite(ctx, s.graves(), models); err != nil {
			return fmt.Errorf("mongostore: record the hard deletes: %w", mapErr(err))
		}
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

// GraveRevisions returns, for the ids that were hard-deleted here, the
// revision each document had when it was removed (see GravesSuffix). A
// grave older than the id's pending note is left out: the note may stand
// for a later delete that a crash kept from updating the grave, and the
// grave would understate the revision that delete removed.
func (s *Store) GraveRevisions(ctx context.Context, ids []memcell.ID) (map[memcell.ID]int64, error) {
	out := make(map[memcell.ID]int64)
	for chunk := range slices.Chunk(ids, idChunk) {
		noted := make(map[memcell.ID]time.Time)
		if err := eachDoc(ctx, s.pending(), bson.D{notesOf(chunk)}, func(_ memcell.ID, raw bson.Raw) {
			id := noteID(raw)
			if at, ok := raw.Lookup("at").DateTimeOK(); ok && time.UnixMilli(at).After(noted[id]) {
				noted[id] = time.UnixMilli(at)
			}
		}); err != nil {
			return nil, fmt.Errorf("mongostore: read pending notes: %w", err)
		}
		if err := eachDoc(ctx, s.graves(), bson.D{inIDs(chunk)}, func(id memcell.ID, raw bson.Raw) {
			buried, _ := raw.Lookup("deleted_at").DateTimeOK()
			if at, ok := noted[id]; ok && time.UnixMilli(buried).Before(at) {
				return
			}
			out[id] = max(revisionOf(raw), 0)
		}); err != nil {
			return nil, fmt.Errorf("mongostore: read graves: %w", err)
		}
	}
	return out, nil
}

// eachDoc calls fn with the ObjectId and the document of each document
// filter selects in coll.
func eachDoc(ctx context.Context, coll *mongo.Collection, filter bson.D, fn func(memcell.ID, bson.Raw)) error {
	cur, err := coll.Find(ctx, filter)
	if err != nil {
		return mapErr(err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		if oid, ok := cur.Current.Lookup("_id").ObjectIDOK(); ok {
			fn(memcell.ID(oid), cur.Current)
		}
	}
	return mapErr(cur.Err())
}

func (s *Store) pending() *mongo.Collection {
	return s.coll.Database().Collection(s.coll.Name() + PendingSuffix)
}

// RecordPending durably notes that the mirror copies of ids need repair,
// with the reason, and returns the mark of the notes, one round trip per
// 1,000 ids (50 on FerretDB). Every call makes notes of its own, which
// share its mark: clearing one call's notes by their mark never removes a
// note another call made of the same id.
func (s *Store) RecordPending(ctx context.Context, ids []memcell.ID, reason string) (memcell.ID, error) {
	mark := memcell.NewID()
	if err := s.recordPending(ctx, ids, reason, mark); err != nil {
		return memcell.ID{}, err
	}
	return mark, nil
}

// recordPending inserts a note {_id, id, mark, reason, at} for each of ids.
func (s *Store) recordPending(ctx context.Context, ids []memcell.ID, reason string, mark memcell.ID) error {
	now := bson.NewDateTimeFromTime(s.nowMillis())
	for chunk := range slices.Chunk(ids, s.bulkChunk()) {
		models := make([]mongo.WriteModel, len(chunk))
		for i, id := range chunk {
			models[i] = mongo.NewInsertOneModel().SetDocument(bson.D{
				{Key: "_id", Value: bson.NewObjectID()}, {Key: "id", Value: bson.ObjectID(id)},
				{Key: "mark", Value: bson.ObjectID(mark)}, {Key: "reason", Value: reason}, {Key: "at", Value: now},
			})
		}
		if err := s.bulkWrite(ctx, s.pending(), models); err != nil {
			return fmt.Errorf("mongostore: record pending: %w", mapErr(err))
		}
	}
	return nil
}

// notesOf selects the pending notes of ids: those with the id in their id
// field, and those of earlier versions, which kept it in _id.
func notesOf(ids []memcell.ID) bson.E {
	in := inIDs(ids).Value
	return bson.E{Key: "$or", Value: bson.A{bson.D{{Key: "id", Value: in}}, bson.D{{Key: "_id", Value: in}}}}
}

// noteID is the document id a pending note stands for.
func noteID(raw bson.Raw) memcell.ID {
	if oid, ok := raw.Lookup("id").ObjectIDOK(); ok {
		return memcell.ID(oid)
	}
	oid, _ := raw.Lookup("_id").ObjectIDOK()
	return memcell.ID(oid)
}

// ferretBulk bounds the writes of one bulk command on FerretDB. FerretDB
// v1.24 keeps, for each update of an update command, the SQLite connection
// of its query until the whole command ends, and takes one more for the
// write; its pool holds 100 connections per database, so a command of 100
// updates waits for itself forever. 50 leaves the other half to everything
// else, and bulkWrite runs such commands one at a time.
const ferretBulk = 50

// bulkChunk is how many writes go in one bulk command.
func (s *Store) bulkChunk() int {
	if s.ferret {
		return ferretBulk
	}
	return idChunk
}

// ClearBatch is how many intents one bulk command of ClearIntents clears
// (the mirror fills its commands).
func (s *Store) ClearBatch() int { return s.bulkChunk() }

// bulkWrite sends models as one unordered bulk command (one at a time on
// FerretDB, see ferretBulk).
func (s *Store) bulkWrite(ctx context.Context, coll *mongo.Collection, models []mongo.WriteModel) error {
	if s.ferret {
		s.bulkMu.Lock()
		defer s.bulkMu.Unlock()
	}
	_, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	return err
}

// ClearIntents removes the mirror intents whose KV writes are done. The
// marks the documents carry go with one bulk of $pullAll updates, each
// filtered on exactly {_id} (the one filter FerretDB pushes down), so a
// document's later mark stays; the pending notes of the intents marked
// Pending go with one delete by mark, so a later note of the id stays. That
// is one round trip for a batch of up to 1,000 writes (50 on FerretDB, see
// ferretBulk), and one more when it holds hard deletes.
// Where this process serialises its writes (FerretDB, whose updates are a
// read and a write), the documents are locked meanwhile.
func (s *Store) ClearIntents(ctx context.Context, intents []memcell.Intent) error {
	var (
		docs  []memcell.Intent
		marks []bson.ObjectID
	)
	for _, in := range intents {
		switch {
		case in.Mark.IsZero():
		case in.Pending:
			if !slices.Contains(marks, bson.ObjectID(in.Mark)) {
				marks = append(marks, bson.ObjectID(in.Mark))
			}
		default:
			docs = append(docs, in)
		}
	}
	for chunk := range slices.Chunk(docs, s.bulkChunk()) {
		models := make([]mongo.WriteModel, len(chunk))
		ids := make([]memcell.ID, len(chunk))
		for i, in := range chunk {
			ids[i] = in.ID
			models[i] = mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: bson.ObjectID(in.ID)}}).
				SetUpdate(bson.D{{Key: "$pullAll", Value: bson.D{{Key: memcell.IntentField, Value: intentValue(in.Mark)}}}})
		}
		unlock := s.locks.many(ids)
		err := s.bulkWrite(ctx, s.coll, models)
		unlock()
		if err != nil {
			return fmt.Errorf("mongostore: clear intents: %w", mapErr(err))
		}
	}
	for chunk := range slices.Chunk(marks, idChunk) {
		if _, err := s.pending().DeleteMany(ctx, bson.D{{Key: "mark", Value: bson.D{{Key: "$in", Value: chunk}}}}); err != nil {
			return fmt.Errorf("mongostore: clear pending notes: %w", mapErr(err))
		}
	}
	return nil
}

// Intents returns the ids of the documents that carry a mirror intent
// stamped before t, rounded up to the next whole second (the marks are
// ObjectIds, whose time is in seconds, so those of t's second are in): writes whose
// KV write was not seen done, by a process that died or, for recent
// ones, one still at work. MongoDB answers from the idx_kv_intent index;
// FerretDB would read the whole collection, so the query index answers
// there (see Index).
func (s *Store) Intents(ctx context.Context, before time.Time) ([]memcell.ID, error) {
	bound := bson.NewObjectIDFromTimestamp(before.Truncate(time.Second).Add(time.Second))
	if s.index != nil {
		ids, ok, err := s.index.Intents(ctx, memcell.ID(bound))
		switch {
		case ok:
			return ids, nil
		case err != nil && ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			s.log.WarnContext(ctx, "mongostore: the query index failed; asking the server", "error", err)
		}
	}
	return findIDsIn(ctx, s.coll, bson.D{{Key: memcell.IntentField, Value: bson.D{{Key: "$lt", Value: bound}}}})
}

// Pending returns the ids noted by RecordPending and not yet cleared, each
// once.
func (s *Store) Pending(ctx context.Context) ([]memcell.ID, error) {
	return s.pendingIDs(ctx, bson.D{})
}

// PendingBefore returns, each once, the ids of the pending notes made
// before t (in milliseconds).
func (s *Store) PendingBefore(ctx context.Context, t time.Time) ([]memcell.ID, error) {
	return s.pendingIDs(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: bson.NewDateTimeFromTime(t.Truncate(time.Millisecond))}}}})
}

// pendingIDs returns, each once, the ids of the pending notes filter
// selects.
func (s *Store) pendingIDs(ctx context.Context, filter bson.D) ([]memcell.ID, error) {
	var ids []memcell.ID
	seen := map[memcell.ID]bool{}
	err := eachDoc(ctx, s.pending(), filter, func(_ memcell.ID, raw bson.Raw) {
		if id := noteID(raw); !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("mongostore: pending: %w", err)
	}
	return ids, nil
}

// PendingStats returns how many notes the pending record holds (an id
// noted by several writes counts once for each) and when the oldest was
// made (the zero time when there is none).
func (s *Store) PendingStats(ctx context.Context) (int64, time.Time, error) {
	n, err := s.pending().CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("mongostore: pending stats: %w", mapErr(err))
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	var oldest struct {
		At time.Time `bson:"at"`
	}
	err = s.pending().FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "at", Value: 1}})).Decode(&oldest)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, time.Time{}, nil // cleared meanwhile
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("mongostore: pending stats: %w", mapErr(err))
	}
	return n, oldest.At, nil
}

// ClearPending removes ids from the pending record once they are repaired.
func (s *Store) ClearPending(ctx context.Context, ids []memcell.ID) error {
	for chunk := range slices.Chunk(ids, idChunk) {
		if _, err := s.pending().DeleteMany(ctx, bson.D{notesOf(chunk)}); err != nil {
			return fmt.Errorf("mongostore: clear pending: %w", mapErr(err))
		}
	}
	return nil
}
