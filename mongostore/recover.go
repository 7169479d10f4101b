package mongostore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/memcell/memcell"
)

// Recover puts m back into the collection exactly as it is: its own _id,
// revision, created_at, updated_at, deletion marks and extra fields, in
// the BSON types Append writes (toBSON). It stamps no new revision and no
// write intent: the document is the state its KV copy already holds, and
// it carries the empty intent of a document whose KV write is done, as
// ClearIntents leaves it. It reports whether it wrote.
//
// Without replace, m is inserted where the collection lacks it; if a
// document with its id appears meanwhile (a duplicate key), nothing is
// written. With replace, a stored document whose revision is lower than
// m's (absent or null counts as lower) is replaced by m, and nothing is
// inserted: a document gone since the caller found it older was deleted
// meanwhile, and stays deleted. A document at m's revision or above is
// left alone either way, so a newer write always wins.
//
// A document hard-deleted here at m's revision or later (GraveRevisions)
// is never brought back: Recover reports false.
func (s *Store) Recover(ctx context.Context, m *memcell.MemCell, replace bool) (bool, error) {
	if m == nil || m.ID.IsZero() {
		return false, errors.New("mongostore: recover: the document has no id")
	}
	if m.Revision < 0 {
		return false, &memcell.FieldError{Field: memcell.RevisionField, Rule: "must not be negative"}
	}
	defer s.locks.one(m.ID)()
	grave, err := s.graveRevision(ctx, m.ID)
	if err != nil {
		return false, fmt.Errorf("mongostore: recover: %w", err)
	}
	if grave > 0 && grave >= m.Revision {
		return false, nil
	}
	stored := *m
	stored.Intent = memcell.ID{}
	doc := settled(toBSON(&stored))
	if !replace {
		return s.insertRecovered(ctx, m.ID, doc)
	}
	filter := bson.D{{Key: "_id", Value: bson.ObjectID(m.ID)}}
	if s.locks.enabled {
		// FerretDB evaluates any filter but {_id} after reading the whole
		// collection; under the lock, read the revision first instead.
		revs, err := s.findRevisions(ctx, filter)
		if err != nil {
			return false, fmt.Errorf("mongostore: recover: %w", err)
		}
		rev, ok := revs[m.ID]
		if !ok || rev < 0 || rev >= m.Revision {
			return false, nil
		}
		filter = atRevision(m.ID, rev)
		if rev == 0 {
			filter = filter[:1]
		}
	} else {
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: memcell.RevisionField, Value: bson.D{{Key: "$lt", Value: m.Revision}}}},
			bson.D{{Key: memcell.RevisionField, Value: nil}},
		}})
	}
	res, err := s.coll.ReplaceOne(ctx, filter, doc)
	if err != nil {
		return false, fmt.Errorf("mongostore: recover %s: %w", m.ID, mapErr(err))
	}
	return res.MatchedCount > 0, nil
}

// insertRecovered inserts doc, the recovered document id, and reports
// whether it did: false when a document with its id is there.
func (s *Store) insertRecovered(ctx context.Context, id memcell.ID, doc bson.D) (bool, error) {
	_, err := s.coll.InsertOne(ctx, doc)
	if err == nil {
		return true, nil
	}
	if err = mapErr(err); errors.Is(err, memcell.ErrConflict) {
		return false, nil
	}
	return false, fmt.Errorf("mongostore: recover %s: %w", id, err)
}

// settled gives doc, as toBSON made it of a MemCell without an intent, the
// empty intent array that ClearIntents leaves, right after the revision
// where toBSON puts an intent.
func settled(doc bson.D) bson.D {
	for i, e := range doc {
		if e.Key == memcell.RevisionField {
			return slices.Insert(doc, i+1, bson.E{Key: memcell.IntentField, Value: bson.A{}})
		}
	}
	return append(doc, bson.E{Key: memcell.IntentField, Value: bson.A{}})
}
