package mongostore

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// find runs a find command on coll and returns its cursor, for callers that
// read it to the end under the same ctx. opts may set the projection, the
// sort, the limit, the skip and the batch size.
//
// It sends the command itself (Database.RunCommandCursor) rather than
// through Collection.Find: the driver leaves maxTimeMS out of
// Collection.Find whatever the context's deadline, because a caller may
// keep that cursor beyond the context (DRIVERS-2722), while a command sent
// this way carries what is left of the deadline as maxTimeMS, like every
// other operation (driver: x/mongo/driver/operation.go,
// calculateMaxTimeMS). So a request's deadline bounds its queries on the
// server too, not only the wait for them. The driver does not retry a
// command sent this way, where it retries a Collection.Find once after a
// network error or a primary step-down; so a ctx without a deadline (the
// jobs, the replayer), which has no maxTimeMS to send, goes through
// Collection.Find and keeps that retry.
func find(ctx context.Context, coll *mongo.Collection, filter bson.D, opts *options.FindOptionsBuilder) (*mongo.Cursor, error) {
	if filter == nil {
		filter = bson.D{}
	}
	if _, ok := ctx.Deadline(); !ok {
		if opts == nil {
			opts = options.Find()
		}
		return coll.Find(ctx, filter, opts)
	}
	var o options.FindOptions
	if opts != nil {
		for _, set := range opts.List() {
			if err := set(&o); err != nil {
				return nil, err
			}
		}
	}
	if o.AllowDiskUse != nil || o.AllowPartialResults != nil || o.Collation != nil || o.Comment != nil ||
		o.Hint != nil || o.Max != nil || o.Min != nil || o.Let != nil || o.MaxAwaitTime != nil ||
		o.CursorType != nil || o.NoCursorTimeout != nil || o.ReturnKey != nil || o.ShowRecordID != nil || o.OplogReplay != nil {
		// Only what the store sets is translated; anything else is a bug.
		return nil, fmt.Errorf("mongostore: find: an option find does not translate")
	}
	cmd := bson.D{{Key: "find", Value: coll.Name()}, {Key: "filter", Value: filter}}
	if o.Projection != nil {
		cmd = append(cmd, bson.E{Key: "projection", Value: o.Projection})
	}
	if o.Sort != nil {
		cmd = append(cmd, bson.E{Key: "sort", Value: o.Sort})
	}
	if o.Skip != nil && *o.Skip > 0 {
		cmd = append(cmd, bson.E{Key: "skip", Value: *o.Skip})
	}
	if o.Limit != nil && *o.Limit > 0 {
		cmd = append(cmd, bson.E{Key: "limit", Value: *o.Limit})
	}
	if o.BatchSize != nil {
		cmd = append(cmd, bson.E{Key: "batchSize", Value: *o.BatchSize})
	}
	return coll.Database().RunCommandCursor(ctx, cmd)
}

// closeTimeout bounds the closing of a cursor left open by an error.
const closeTimeout = 5 * time.Second

// closeCursor closes cur even when ctx has ended (the deadline passed
// while reading it), so that the server does not keep the cursor until its
// own timeout.
func closeCursor(ctx context.Context, cur *mongo.Cursor) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	_ = cur.Close(cctx)
}
