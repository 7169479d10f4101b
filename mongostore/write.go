package mongostore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/memcell/memcell"
)

// idChunk bounds the ids of one $in filter.
const idChunk = 1000

// Append validates m, stores it as a new document and returns the stored
// MemCell: a new id unless m has one, created_at = updated_at = now,
// revision 1, a new mirror intent. An id the caller chose may have been hard-deleted before:
// then the revision starts one above the deleted document's (see
// GravesSuffix), which costs one read by _id. m is not modified.
func (s *Store) Append(ctx context.Context, m *memcell.MemCell) (*memcell.MemCell, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	stored := *m
	stored.Revision = 1
	if stored.ID.IsZero() {
		stored.ID = memcell.NewID()
	} else {
		rev, err := s.graveRevision(ctx, stored.ID)
		if err != nil {
			return nil, fmt.Errorf("mongostore: append: %w", err)
		}
		stored.Revision = rev + 1
	}
	now := s.nowMillis()
	stored.Timestamp = memcell.NormalizeTime(stored.Timestamp)
	stored.CreatedAt, stored.UpdatedAt = &now, &now
	stored.Intent = memcell.NewID()
	if _, err := s.coll.InsertOne(ctx, toBSON(&stored)); err != nil {
		return nil, fmt.Errorf("mongostore: append: %w", mapErr(err))
	}
	return &stored, nil
}

// Update sets the given top-level fields of a live document (values as in
// the canonical JSON: null unsets a field), refreshes updated_at, bumps the
// revision and returns the updated document. It returns memcell.ErrNotFound
// when no live document has the id, and a *memcell.FieldError for fields it
// does not accept or values that break the rules.
func (s *Store) Update(ctx context.Context, id memcell.ID, fields map[string]any) (*memcell.MemCell, error) {
	set, err := updateSet(fields)
	if err != nil {
		return nil, err
	}
	set = append(set, bson.E{Key: "updated_at", Value: bson.NewDateTimeFromTime(s.nowMillis())})
	defer s.locks.one(id)()
	return s.updateOne(ctx, "update", id, true, set)
}

// updateSet checks the fields of an update and converts them to their
// stored form, through the same rules as a whole document.
func updateSet(fields map[string]any) (bson.D, error) {
	if len(fields) == 0 {
		return nil, &memcell.FieldError{Rule: "an update needs at least one field"}
	}
	patch := make(map[string]any, len(fields)+1)
	for k, v := range fields {
		if memcell.Managed(k) {
			return nil, &memcell.FieldError{Field: k, Rule: "is managed by the store and cannot be updated"}
		}
		if err := memcell.CheckFieldName(k); err != nil {
			return nil, err
		}
		patch[k] = v
	}
	ts, hasTS := patch["timestamp"]
	if hasTS && ts == nil {
		return nil, &memcell.FieldError{Field: "timestamp", Rule: "is required"}
	}
	if !hasTS {
		patch["timestamp"] = time.Unix(0, 0) // stands in for the stored one while checking
	}
	m, err := memcell.FromMap(patch)
	if err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	var set bson.D
	for _, e := range toBSON(m) {
		if _, ok := fields[e.Key]; ok {
			set = append(set, e)
		}
	}
	return set, nil
}

// liveFilter matches documents that are not soft-deleted (deleted_at null
// or absent, as EverMemOS writes them).
var liveFilter = bson.E{Key: "deleted_at", Value: nil}

var deletedFilter = bson.E{Key: "deleted_at", Value: bson.D{{Key: "$ne", Value: nil}}}

// updateOne sets the fields of set on the document id if it is live (or,
// with live false, soft-deleted), bumps its revision, stamps a new mirror
// intent, and returns the new state, all in one atomic operation.
//
// Where this process serialises its writes (FerretDB), the condition is
// checked by reading the document first and the update filters on exactly
// {_id}: the one filter FerretDB pushes down to SQLite; any other it
// evaluates in Go after reading the whole collection, which made an update
// cost about as much as a full scan.
func (s *Store) updateOne(ctx context.Context, op string, id memcell.ID, live bool, set bson.D) (*memcell.MemCell, error) {
	filter := bson.D{{Key: "_id", Value: bson.ObjectID(id)}}
	if s.locks.enabled {
		m, err := s.Lookup(ctx, id)
		if err != nil {
			return nil, err
		}
		if m.Deleted() == live {
			return nil, memcell.ErrNotFound
		}
	} else if live {
		filter = append(filter, liveFilter)
	} else {
		filter = append(filter, deletedFilter)
	}
	update := writeUpdate(set, memcell.NewID())
	res := s.coll.FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().SetReturnDocument(options.After))
	raw, err := res.Raw()
	if err != nil {
		return nil, fmt.Errorf("mongostore: %s: %w", op, mapErr(err))
	}
	return fromRaw(raw)
}

// writeUpdate is the update document of every write: set, the mirror
// intent mark, and the revision bump.
func writeUpdate(set bson.D, mark memcell.ID) bson.D {
	set = append(slices.Clip(set), bson.E{Key: memcell.IntentField, Value: intentValue(mark)})
	return bson.D{{Key: "$set", Value: set}, {Key: "$inc", Value: bson.D{{Key: memcell.RevisionField, Value: 1}}}}
}

// newDeletedID returns a non-zero deletion mark. Each soft delete gets its
// own, so one bulk delete can find the documents it marked.
func newDeletedID() int64 {
	return rand.Int64N(1<<62) + 1
}

func (s *Store) deleteMarks(by string, mark int64) (bson.D, time.Time) {
	now := s.nowMillis()
	var deletedBy any
	if by != "" {
		deletedBy = by
	}
	return bson.D{
		{Key: "deleted_at", Value: bson.NewDateTimeFromTime(now)},
		{Key: "deleted_by", Value: deletedBy},
		{Key: "deleted_id", Value: mark},
	}, now
}

// restoreSet clears the deletion marks.
var restoreSet = bson.D{
	{Key: "deleted_at", Value: nil},
	{Key: "deleted_by", Value: nil},
	{Key: "deleted_id", Value: int64(0)},
}

// SoftDelete marks a live document deleted (deleted_at = now, deleted_by,
// deleted_id != 0) and returns its new state. A document that is absent or
// already deleted gives memcell.ErrNotFound and is not changed.
func (s *Store) SoftDelete(ctx context.Context, id memcell.ID, by string) (*memcell.MemCell, error) {
	marks, _ := s.deleteMarks(by, newDeletedID())
	defer s.locks.one(id)()
	return s.updateOne(ctx, "soft delete", id, true, marks)
}

// Restore clears the deletion marks of a soft-deleted document and returns
// its new state; memcell.ErrNotFound when no soft-deleted document has the id.
func (s *Store) Restore(ctx context.Context, id memcell.ID) (*memcell.MemCell, error) {
	defer s.locks.one(id)()
	return s.updateOne(ctx, "restore", id, false, restoreSet)
}

// HardDelete removes a document, live or soft-deleted, after noting the
// delete in the pending record: the mirror intent of a delete, which the
// document cannot carry since it goes (one more round trip). It reports
// whether one was removed and the revision it had, read in the same atomic
// operation (findAndModify with remove, on the exact {_id} filter,
// returning only the revision field; the whole document on FerretDB, which
// takes no projection there), so no write can slip in between. The
// revision is 0 when the document had none and -1 when its revision field
// was not a non-negative integer.
func (s *Store) HardDelete(ctx context.Context, id memcell.ID) (memcell.Removal, error) {
	mark, err := s.RecordPending(ctx, []memcell.ID{id}, "hard delete")
	if err != nil {
		return memcell.Removal{}, fmt.Errorf("mongostore: hard delete: %w", err)
	}
	out := memcell.Removal{Intent: mark}
	defer s.locks.one(id)()
	opts := options.FindOneAndDelete()
	if !s.ferret {
		opts.SetProjection(bson.D{{Key: memcell.RevisionField, Value: 1}})
	}
	raw, err := s.coll.FindOneAndDelete(ctx, bson.D{{Key: "_id", Value: bson.ObjectID(id)}}, opts).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		// Nothing to mirror: take the note back at once, or a replay
		// would read it as a delete whose grave a crash kept from being
		// written, and refuse a re-creation of the id for a while.
		if _, err := s.pending().DeleteOne(ctx, bson.D{{Key: "mark", Value: bson.ObjectID(mark)}}); err != nil {
			return out, fmt.Errorf("mongostore: hard delete: take back the note: %w", mapErr(err))
		}
		out.Intent = memcell.ID{}
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("mongostore: hard delete: %w", mapErr(err))
	}
	out.Deleted, out.Revision = true, revisionOf(raw)
	if err := s.bury(ctx, id, max(out.Revision, 0)); err != nil {
		// The document is gone; only a re-creation of the id within the
		// KV's tombstone grace would suffer (its copy refused as stale
		// until the grace ends).
		return out, err
	}
	return out, nil
}

// revisionOf reads the revision field of a stored document as
// memcell.Decode would: absent or null is 0, an integer (or a double with
// an integer value) is itself. Anything else, negative numbers included,
// gives -1.
func revisionOf(raw bson.Raw) int64 {
	v, err := raw.LookupErr(memcell.RevisionField)
	if err != nil {
		return 0
	}
	var rev int64
	switch v.Type {
	case bson.TypeNull, bson.TypeUndefined:
		return 0
	case bson.TypeInt32:
		rev = int64(v.Int32())
	case bson.TypeInt64:
		rev = v.Int64()
	case bson.TypeDouble:
		f := v.Double()
		if f != math.Trunc(f) || f < 0 || f >= 1<<63 {
			return -1
		}
		rev = int64(f)
	default:
		return -1
	}
	if rev < 0 {
		return -1
	}
	return rev
}

// scopeFilter is the filter of a scope, or the *memcell.FieldError of one
// that breaks the rules.
func scopeFilter(sc memcell.Scope) (bson.D, error) {
	if err := sc.Check(); err != nil {
		return nil, err
	}
	f := bson.D{}
	if sc.UserID != nil {
		f = append(f, bson.E{Key: "user_id", Value: *sc.UserID})
	}
	if r := timeRange(sc.Start, sc.End); r != nil {
		f = append(f, bson.E{Key: "timestamp", Value: r})
	}
	return f, nil
}

// SoftDeleteMany soft-deletes every live document in scope and returns the
// count and their new states. Documents already deleted keep their marks.
//
// It marks all documents of one call with the same new deleted_id and
// deleted_at, then reads back exactly those with one query on
// (user_id, deleted_at, timestamp, deleted_id), which the
// idx_user_deleted_timestamp index serves on MongoDB. With an Index (the
// embedded primary, whose FerretDB would read the whole collection twice)
// it takes the ids from the index and soft-deletes each by _id.
func (s *Store) SoftDeleteMany(ctx context.Context, sc memcell.Scope, by string) (memcell.BulkResult, error) {
	filter, err := scopeFilter(sc)
	if err != nil {
		return memcell.BulkResult{}, err
	}
	mark := newDeletedID()
	marks, now := s.deleteMarks(by, mark)
	defer s.locks.all()()
	if ids, ok, err := s.scopeIndexed(ctx, sc, ptr(false)); err != nil {
		return memcell.BulkResult{}, err
	} else if ok {
		return s.updateEach(ctx, "soft delete many", ids, true, marks)
	}
	res, err := s.coll.UpdateMany(ctx, append(slices.Clone(filter), liveFilter), writeUpdate(marks, memcell.NewID()))
	if err != nil {
		return memcell.BulkResult{}, fmt.Errorf("mongostore: soft delete many: %w", mapErr(err))
	}
	out := memcell.BulkResult{Count: res.ModifiedCount}
	if res.ModifiedCount == 0 {
		return out, nil
	}
	readBack := append(slices.Clone(filter),
		bson.E{Key: "deleted_at", Value: bson.NewDateTimeFromTime(now)},
		bson.E{Key: "deleted_id", Value: mark})
	out.Docs, err = s.findAll(ctx, readBack, nil)
	if err != nil {
		return out, err
	}
	return out, nil
}

// RestoreMany restores every soft-deleted document in scope and returns the
// count and their new states. It finds the ids first, then restores those
// ids and reads them back by id. With an Index it takes the ids from the
// index and restores each by _id.
func (s *Store) RestoreMany(ctx context.Context, sc memcell.Scope) (memcell.BulkResult, error) {
	filter, err := scopeFilter(sc)
	if err != nil {
		return memcell.BulkResult{}, err
	}
	defer s.locks.all()()
	if ids, ok, err := s.scopeIndexed(ctx, sc, ptr(true)); err != nil {
		return memcell.BulkResult{}, err
	} else if ok {
		return s.updateEach(ctx, "restore many", ids, false, restoreSet)
	}
	ids, err := s.findIDs(ctx, append(filter, deletedFilter))
	if err != nil {
		return memcell.BulkResult{}, err
	}
	var out memcell.BulkResult
	mark := memcell.NewID()
	for chunk := range slices.Chunk(ids, idChunk) {
		in := bson.D{inIDs(chunk)}
		res, err := s.coll.UpdateMany(ctx, bson.D{inIDs(chunk), deletedFilter}, writeUpdate(restoreSet, mark))
		if err != nil {
			return out, fmt.Errorf("mongostore: restore many: %w", mapErr(err))
		}
		out.Count += res.ModifiedCount
		docs, err := s.findAll(ctx, in, nil)
		if err != nil {
			return out, err
		}
		out.Docs = append(out.Docs, docs...)
	}
	return out, nil
}

// HardDeleteMany removes every document in scope, live or soft-deleted, and
// returns how many it removed, their ids and their revisions. It reads the
// ids and revisions first, notes the ids in the pending record (the mirror
// intent of the delete, one round trip per 1,000 ids), and deletes each id
// only at the revision it read (a document written since survives, and is
// not reported), so the revisions it returns are exactly those removed, as
// a single HardDelete's are. It remembers them in the graves (one more
// round trip per 1,000), so that a re-created id starts above them. With
// an Index it takes the ids from the index, reads their revisions and
// deletes them one by one by _id: under the bulk lock, which serialises
// this process's writes there, none changes in between.
func (s *Store) HardDeleteMany(ctx context.Context, sc memcell.Scope) (memcell.BulkResult, error) {
	filter, err := scopeFilter(sc)
	if err != nil {
		return memcell.BulkResult{}, err
	}
	defer s.locks.all()()
	ids, indexed, err := s.scopeIndexed(ctx, sc, nil)
	if err != nil {
		return memcell.BulkResult{}, err
	}
	var revs map[memcell.ID]int64
	if indexed {
		revs, err = s.revisionsOf(ctx, ids)
	} else {
		revs, err = s.findRevisions(ctx, filter)
	}
	if err != nil {
		return memcell.BulkResult{}, err
	}
	var out memcell.BulkResult
	if len(revs) == 0 {
		return out, nil
	}
	ids = slices.Collect(maps.Keys(revs))
	out.Intent = memcell.NewID()
	for chunk := range slices.Chunk(ids, idChunk) {
		if err := s.recordPending(ctx, chunk, "hard delete many", out.Intent); err != nil {
			return out, err
		}
		if indexed {
			// One by exact {_id}, the filter FerretDB looks up by
			// index; under the bulk lock nothing of this process
			// changes them between the read of their revisions and
			// here.
			removed, err := s.deleteEach(ctx, chunk)
			out.Count += int64(len(removed))
			for _, id := range removed {
				out.Removed = append(out.Removed, id)
				out.RemovedRevisions = append(out.RemovedRevisions, revs[id])
			}
			if err != nil {
				return out, err
			}
			if err := s.buryMany(ctx, removed, revs); err != nil {
				return out, err
			}
			continue
		}
		at := make(bson.A, 0, len(chunk))
		for _, id := range chunk {
			at = append(at, atRevision(id, revs[id]))
		}
		res, err := s.coll.DeleteMany(ctx, append(bson.D{{Key: "$or", Value: at}}, filter...))
		if err != nil {
			return out, fmt.Errorf("mongostore: hard delete many: %w", mapErr(err))
		}
		out.Count += res.DeletedCount
		removed := chunk
		if res.DeletedCount < int64(len(chunk)) {
			// Some changed or left the scope meanwhile: keep only the ids
			// now absent.
			still, err := s.findIDs(ctx, bson.D{inIDs(chunk)})
			if err != nil {
				return out, err
			}
			removed = slices.DeleteFunc(slices.Clone(chunk), func(id memcell.ID) bool { return slices.Contains(still, id) })
		}
		for _, id := range removed {
			out.Removed = append(out.Removed, id)
			out.RemovedRevisions = append(out.RemovedRevisions, revs[id])
		}
		if err := s.buryMany(ctx, removed, revs); err != nil {
			return out, err
		}
	}
	return out, nil
}

// atRevision selects the document id at revision rev exactly (rev as
// revisionOf reads it: 0 also matches an absent or null field; -1, an
// unreadable one, matches the id whatever it holds).
func atRevision(id memcell.ID, rev int64) bson.D {
	f := bson.D{{Key: "_id", Value: bson.ObjectID(id)}}
	switch {
	case rev == 0:
		f = append(f, bson.E{Key: memcell.RevisionField, Value: bson.D{{Key: "$in", Value: bson.A{nil, int64(0)}}}})
	case rev > 0:
		f = append(f, bson.E{Key: memcell.RevisionField, Value: rev})
	}
	return f
}

// findRevisions returns the revision (as revisionOf reads it) of every
// document filter selects, by id.
func (s *Store) findRevisions(ctx context.Context, filter bson.D) (map[memcell.ID]int64, error) {
	cur, err := find(ctx, s.coll, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: memcell.RevisionField, Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongostore: find revisions: %w", mapErr(err))
	}
	defer closeCursor(ctx, cur)
	out := make(map[memcell.ID]int64)
	for cur.Next(ctx) {
		if oid, ok := cur.Current.Lookup("_id").ObjectIDOK(); ok {
			out[memcell.ID(oid)] = revisionOf(cur.Current)
		}
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("mongostore: find revisions: %w", mapErr(err))
	}
	return out, nil
}

func (s *Store) findIDs(ctx context.Context, filter bson.D) ([]memcell.ID, error) {
	return findIDsIn(ctx, s.coll, filter)
}

// inIDs is the one filter condition on a list of ids: _id $in.
func inIDs(ids []memcell.ID) bson.E {
	oids := make([]bson.ObjectID, len(ids))
	for i, id := range ids {
		oids[i] = bson.ObjectID(id)
	}
	return bson.E{Key: "_id", Value: bson.D{{Key: "$in", Value: oids}}}
}

// findIDsIn returns the ObjectId ids of the documents filter selects in
// coll; other ids are not the store's.
func findIDsIn(ctx context.Context, coll *mongo.Collection, filter bson.D) ([]memcell.ID, error) {
	cur, err := find(ctx, coll, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongostore: find ids: %w", mapErr(err))
	}
	defer closeCursor(ctx, cur)
	var ids []memcell.ID
	for cur.Next(ctx) {
		if id, ok := cur.Current.Lookup("_id").ObjectIDOK(); ok {
			ids = append(ids, memcell.ID(id))
		}
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("mongostore: find ids: %w", mapErr(err))
	}
	return ids, nil
}

// findAll returns every document filter selects, read through find (so
// under ctx's deadline on the server too).
func (s *Store) findAll(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder) ([]*memcell.MemCell, error) {
	cur, err := find(ctx, s.coll, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("mongostore: find: %w", mapErr(err))
	}
	defer closeCursor(ctx, cur)
	var out []*memcell.MemCell
	for cur.Next(ctx) {
		m, err := fromRaw(cur.Current)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("mongostore: find: %w", mapErr(err))
	}
	return out, nil
}
