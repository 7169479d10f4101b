package mongostore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/memcell/memcell"
)

// Get returns the live document with the id, or memcell.ErrNotFound when it
// is absent or soft-deleted. The filter is exactly {_id: id}: MongoDB reads
// the _id index, and it is the one filter FerretDB pushes down to SQLite
// (docs/architecture.md#the-embedded-primary).
func (s *Store) Get(ctx context.Context, id memcell.ID) (*memcell.MemCell, error) {
	m, err := s.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.Deleted() {
		return nil, memcell.ErrNotFound
	}
	return m, nil
}

// Lookup returns the document with the id whether or not it is
// soft-deleted, or memcell.ErrNotFound.
func (s *Store) Lookup(ctx context.Context, id memcell.ID) (*memcell.MemCell, error) {
	return s.lookupProjected(ctx, id, nil)
}

// lookupProjected is Lookup with the projection proj (nil: none).
func (s *Store) lookupProjected(ctx context.Context, id memcell.ID, proj bson.D) (*memcell.MemCell, error) {
	opts := options.FindOne()
	if proj != nil {
		opts.SetProjection(proj)
	}
	raw, err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: bson.ObjectID(id)}}, opts).Raw()
	if err != nil {
		if errors.Is(mapErr(err), memcell.ErrNotFound) {
			return nil, memcell.ErrNotFound
		}
		return nil, fmt.Errorf("mongostore: get: %w", mapErr(err))
	}
	return fromRaw(raw)
}

// GetMany returns the live documents among ids, keyed by id; ids that are
// absent or soft-deleted are missing from the map, an empty list gives an
// empty map. With fields set, only those top-level fields are read (the id
// always is): the documents are partial and must not be mirrored or
// compared. With an Index (the embedded primary) it reads each document by
// _id instead of one $in that FerretDB would answer by reading the whole
// collection.
func (s *Store) GetMany(ctx context.Context, ids []memcell.ID, fields []string) (map[memcell.ID]*memcell.MemCell, error) {
	out := make(map[memcell.ID]*memcell.MemCell, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var proj bson.D
	if len(fields) > 0 {
		proj = bson.D{{Key: "deleted_at", Value: 1}, {Key: "deleted_id", Value: 1}}
		for _, f := range fields {
			if f != "deleted_at" && f != "deleted_id" && f != memcell.IDField {
				proj = append(proj, bson.E{Key: f, Value: 1})
			}
		}
	}
	if s.index != nil {
		// The server (FerretDB) would read the whole collection for the
		// $in: read each by _id.
		docs, err := s.lookupAll(ctx, ids, proj)
		if err != nil {
			return nil, err
		}
		for _, m := range docs {
			if m != nil && !m.Deleted() {
				out[m.ID] = m
			}
		}
		return out, nil
	}
	opts := options.Find()
	if proj != nil {
		opts.SetProjection(proj)
	}
	for chunk := range slices.Chunk(ids, idChunk) {
		docs, err := s.findAll(ctx, bson.D{inIDs(chunk)}, opts)
		if err != nil {
			return nil, err
		}
		for _, m := range docs {
			if !m.Deleted() {
				out[m.ID] = m
			}
		}
	}
	return out, nil
}

// queryFilter is the filter of q, which the caller has checked.
func queryFilter(q *memcell.Query) bson.D {
	f := bson.D{liveFilter}
	if q.UserID != nil {
		if q.IncludeParticipant {
			f = append(f, bson.E{Key: "$or", Value: bson.A{
				bson.D{{Key: "user_id", Value: *q.UserID}},
				bson.D{{Key: "participants", Value: *q.UserID}},
			}})
		} else {
			f = append(f, bson.E{Key: "user_id", Value: *q.UserID})
		}
	}
	if q.GroupID != nil {
		f = append(f, bson.E{Key: "group_id", Value: *q.GroupID})
	}
	if q.Type != nil {
		f = append(f, bson.E{Key: "type", Value: string(*q.Type)})
	}
	if len(q.Participants) > 0 {
		f = append(f, bson.E{Key: "participants", Value: bson.D{{Key: anyOrAll(q.ParticipantsAll), Value: q.Participants}}})
	}
	if len(q.Keywords) > 0 {
		f = append(f, bson.E{Key: "keywords", Value: bson.D{{Key: anyOrAll(q.KeywordsAll), Value: q.Keywords}}})
	}
	if r := timeRange(q.Start, q.End); r != nil {
		f = append(f, bson.E{Key: "timestamp", Value: r})
	}
	return f
}

// timeRange is the timestamp condition of start <= timestamp < end, nil
// when both are open.
func timeRange(start, end *time.Time) bson.D {
	if start == nil && end == nil {
		return nil
	}
	r := bson.D{}
	if start != nil {
		r = append(r, bson.E{Key: "$gte", Value: bson.NewDateTimeFromTime(*start)})
	}
	if end != nil {
		r = append(r, bson.E{Key: "$lt", Value: bson.NewDateTimeFromTime(*end)})
	}
	return r
}

func anyOrAll(all bool) string {
	if all {
		return "$all"
	}
	return "$in"
}

// Find returns the live documents the query selects, sorted by timestamp
// (then by id, so pages are stable).
func (s *Store) Find(ctx context.Context, q memcell.Query) ([]*memcell.MemCell, error) {
	if err := q.Check(); err != nil {
		return nil, err
	}
	if s.index != nil {
		if out, ok, err := s.findIndexed(ctx, q); ok || err != nil {
			return out, err
		}
	}
	filter := queryFilter(&q)
	dir := -1
	if q.Ascending {
		dir = 1
	}
	limit := q.Limit
	if limit == 0 {
		limit = memcell.MaxLimit
	}
	opts := options.Find().
		SetSort(bson.D{{Key: "timestamp", Value: dir}, {Key: "_id", Value: dir}}).
		SetLimit(limit).SetSkip(q.Skip)
	return s.findAll(ctx, filter, opts)
}

// Count counts the live documents the query selects; sort, limit and skip
// are ignored.
func (s *Store) Count(ctx context.Context, q memcell.Query) (int64, error) {
	q.Limit, q.Skip = 0, 0 // ignored here
	if err := q.Check(); err != nil {
		return 0, err
	}
	if s.index != nil {
		n, ok, err := s.index.Count(ctx, q)
		switch {
		case ok:
			return n, nil
		case err != nil && ctx.Err() != nil:
			return 0, ctx.Err()
		case err != nil:
			s.log.WarnContext(ctx, "mongostore: the query index failed; asking the server", "error", err)
		}
	}
	n, err := s.coll.CountDocuments(ctx, queryFilter(&q))
	if err != nil {
		return 0, fmt.Errorf("mongostore: count: %w", mapErr(err))
	}
	return n, nil
}

// Latest returns the user's newest live documents, limit of them (10 when
// limit is 0).
func (s *Store) Latest(ctx context.Context, userID string, limit int64) ([]*memcell.MemCell, error) {
	if limit == 0 {
		limit = 10
	}
	return s.Find(ctx, memcell.Query{UserID: &userID, Limit: limit})
}
