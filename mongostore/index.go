package mongostore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/memcell/memcell"
)

// An Index answers Find and Count from an index kept beside the server,
// for a server that cannot: the embedded primary's (embedded.QueryIndex),
// whose FerretDB evaluates every filter but {_id} after reading the whole
// collection. A Store with an Index asks it first and falls back to the
// server when it declines (ok false) or fails; the documents still come
// from the server, read by _id, and every write still goes to the server.
// A Store on MongoDB has none.
type Index interface {
	// Find returns the ids of the live documents q selects, in Find's
	// order with q's limit (0 meaning memcell.MaxLimit) and skip
	// applied, and the timestamps they have.
	Find(ctx context.Context, q memcell.Query) (ids []memcell.ID, timestamps []time.Time, ok bool, err error)
	// Count counts the live documents q selects.
	Count(ctx context.Context, q memcell.Query) (n int64, ok bool, err error)
	// Scope returns the ids of the documents in sc: all of them, or with
	// deleted set the soft-deleted ones (*deleted) or the live ones.
	Scope(ctx context.Context, sc memcell.Scope, deleted *bool) (ids []memcell.ID, ok bool, err error)
	// Intents returns the ids of the documents that carry a mirror
	// intent marked before the mark before.
	Intents(ctx context.Context, before memcell.ID) (ids []memcell.ID, ok bool, err error)
}

// indexAttempts bounds the index answers findIndexed reads back before
// asking the server: each may be spoilt by a write landing between the
// index's answer and the reads by id.
const indexAttempts = 3

// indexFetchers bounds the concurrent reads by id of one findIndexed.
const indexFetchers = 8

// findIndexed answers Find through the index: the ids from the index, then
// each document by _id (the lookup the embedded primary indexes), checked
// against q and the timestamp the index had for it. A document changed in
// between spoils the answer and the index is asked again; ok is false when
// the index declines or keeps being spoilt, and the caller asks the server.
func (s *Store) findIndexed(ctx context.Context, q memcell.Query) (out []*memcell.MemCell, ok bool, err error) {
	for range indexAttempts {
		ids, ts, ok, err := s.index.Find(ctx, q)
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			s.log.WarnContext(ctx, "mongostore: the query index failed; asking the server", "error", err)
			return nil, false, nil
		}
		if !ok {
			return nil, false, nil
		}
		docs, err := s.lookupAll(ctx, ids, nil)
		if err != nil {
			return nil, false, err
		}
		if slices.IndexFunc(docs, func(m *memcell.MemCell) bool { return m == nil }) < 0 &&
			allMatch(docs, ts, &q) {
			return docs, true, nil
		}
	}
	return nil, false, nil
}

// allMatch reports whether every document still matches q with the
// timestamp the index saw.
func allMatch(docs []*memcell.MemCell, ts []time.Time, q *memcell.Query) bool {
	for i, m := range docs {
		if !m.Timestamp.Equal(ts[i]) || !matches(m, q) {
			return false
		}
	}
	return true
}

// lookupAll reads the documents ids by _id, a few at a time, whole or
// with the projection proj; a document that is gone is nil.
func (s *Store) lookupAll(ctx context.Context, ids []memcell.ID, proj bson.D) ([]*memcell.MemCell, error) {
	out := make([]*memcell.MemCell, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, indexFetchers)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			m, err := s.lookupProjected(ctx, id, proj)
			if err == nil {
				out[i] = m
			} else if !errors.Is(err, memcell.ErrNotFound) {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// matches reports whether the stored document m is one queryFilter(q)
// selects.
func matches(m *memcell.MemCell, q *memcell.Query) bool {
	eq := func(p *string, v string) bool { return p != nil && *p == v }
	switch {
	case m.DeletedAt != nil:
		return false
	case q.UserID != nil && !eq(m.UserID, *q.UserID) && !(q.IncludeParticipant && slices.Contains(m.Participants, *q.UserID)):
		return false
	case q.GroupID != nil && !eq(m.GroupID, *q.GroupID):
		return false
	case q.Type != nil && (m.Type == nil || *m.Type != *q.Type):
		return false
	case !anyOrAllOf(m.Participants, q.Participants, q.ParticipantsAll), !anyOrAllOf(m.Keywords, q.Keywords, q.KeywordsAll):
		return false
	case q.Start != nil && m.Timestamp.Before(memcell.NormalizeTime(*q.Start)):
		return false
	case q.End != nil && !m.Timestamp.Before(memcell.NormalizeTime(*q.End)):
		return false
	}
	return true
}

// anyOrAllOf reports whether have holds any of want (all of them with all
// set); an empty want holds.
func anyOrAllOf(have, want []string, all bool) bool {
	if len(want) == 0 {
		return true
	}
	for _, w := range want {
		if slices.Contains(have, w) != all {
			return !all
		}
	}
	return all
}

// scopeIndexed asks the index for the ids in sc (see Index.Scope), for a
// bulk write to change them one by one by _id. ok is false when there is
// no index, when the index declines or fails, or when this process does not
// serialise its writes: only under the bulk lock of writeLocks can no
// other write of the process change the scope between the answer and the
// writes.
func (s *Store) scopeIndexed(ctx context.Context, sc memcell.Scope, deleted *bool) ([]memcell.ID, bool, error) {
	if s.index == nil || !s.locks.enabled {
		return nil, false, nil
	}
	ids, ok, err := s.index.Scope(ctx, sc, deleted)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		s.log.WarnContext(ctx, "mongostore: the query index failed; asking the server", "error", err)
		return nil, false, nil
	}
	return ids, ok, nil
}

// updateEach applies set to each of ids that is live (or, with live
// false, soft-deleted) as updateOne does, and returns how many it changed
// and their new states. The caller holds the bulk lock.
func (s *Store) updateEach(ctx context.Context, op string, ids []memcell.ID, live bool, set bson.D) (memcell.BulkResult, error) {
	var out memcell.BulkResult
	for _, id := range ids {
		m, err := s.updateOne(ctx, op, id, live, set)
		if errors.Is(err, memcell.ErrNotFound) {
			continue
		}
		if err != nil {
			return out, err
		}
		out.Count++
		out.Docs = append(out.Docs, m)
	}
	return out, nil
}

// revisionsOf reads the revision of each of ids by _id, as findRevisions
// does; ids that are gone are left out.
func (s *Store) revisionsOf(ctx context.Context, ids []memcell.ID) (map[memcell.ID]int64, error) {
	out := make(map[memcell.ID]int64, len(ids))
	for _, id := range ids {
		raw, err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: bson.ObjectID(id)}},
			options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: memcell.RevisionField, Value: 1}})).Raw()
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("mongostore: find revisions: %w", mapErr(err))
		}
		out[id] = revisionOf(raw)
	}
	return out, nil
}

// deleteEach removes each of ids by _id and returns those it removed.
func (s *Store) deleteEach(ctx context.Context, ids []memcell.ID) ([]memcell.ID, error) {
	var removed []memcell.ID
	for _, id := range ids {
		res, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: bson.ObjectID(id)}})
		if err != nil {
			return removed, fmt.Errorf("mongostore: hard delete many: %w", mapErr(err))
		}
		if res.DeletedCount == 1 {
			removed = append(removed, id)
		}
	}
	return removed, nil
}

func ptr[T any](v T) *T { return &v }
