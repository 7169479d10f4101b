// Package mongostore is the MongoDB primary of memcell, on the official
// driver go.mongodb.org/mongo-driver/v2. It implements every operation of
// EverMemOS's MemCellRawRepository over the same collection layout, so a
// collection written by EverMemOS reads correctly here and the other way
// round: dates are BSON dates, ids ObjectIds, unset fields null, and the
// index names are EverMemOS's.
//
// Every write made here increments the document's revision field
// (memcell.RevisionField) in the same atomic operation and returns the
// document as it stands after the write, so that callers can mirror exactly
// that state and order their mirror writes by revision.
//
// Soft-deleted documents (deleted_at set) are hidden from every read but
// those that say otherwise. Time ranges are half-open: start <= timestamp < end.
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/memcell/memcell"
)

// DefaultCollection is EverMemOS's collection name.
const DefaultCollection = "memcells"

// Options configure a Store. Nil means defaults.
type Options struct {
	// Collection is the collection name; "" means DefaultCollection.
	Collection string
	// Logger receives INFO lines about start-up; nil discards them.
	Logger *slog.Logger
	// Now returns the current time for audit fields; nil means time.Now.
	Now func() time.Time
	// SkipIndexes skips creating the indexes at open.
	SkipIndexes bool
	// SerializeWrites makes this process's writes to one document take
	// turns (see writeLocks). It is switched on by itself when the server
	// is FerretDB, whose updates are not atomic.
	SerializeWrites bool
	// Index, when set, answers Find and Count where it can, the server
	// where it cannot (see Index). Only the embedded primary sets one.
	Index Index
	// Monitor, when set, is the command monitor of the client Connect
	// makes (the embedded primary's holds commands back while it
	// checkpoints); Open ignores it.
	Monitor *event.CommandMonitor
}

// Store is the MongoDB primary. It is safe for concurrent use.
type Store struct {
	client *mongo.Client
	coll   *mongo.Collection
	owns   bool
	now    func() time.Time
	log    *slog.Logger
	tx     txSupport
	locks  writeLocks
	// ferret is set when the server is FerretDB, whose findAndModify takes
	// no projection and whose bulk commands must stay small (ferretBulk).
	ferret bool
	bulkMu sync.Mutex
	index  Index
}

// Connect connects to uri and opens database's collection; the store owns
// the client and Close disconnects it.
func Connect(ctx context.Context, uri, database string, opts *Options) (*Store, error) {
	co := options.Client().ApplyURI(uri)
	if opts != nil && opts.Monitor != nil {
		co.SetMonitor(opts.Monitor)
	}
	client, err := mongo.Connect(co)
	if err != nil {
		return nil, fmt.Errorf("mongostore: connect: %w", mapErr(err))
	}
	s, err := Open(ctx, client, database, opts)
	if err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	s.owns = true
	return s, nil
}

// Open opens database's collection on a connected client, checks that the
// server answers and creates the indexes (idempotently). The caller keeps
// the client.
func Open(ctx context.Context, client *mongo.Client, database string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if database == "" {
		return nil, errors.New("mongostore: a database name is required")
	}
	if o.Collection == "" {
		o.Collection = DefaultCollection
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{client: client, coll: client.Database(database).Collection(o.Collection), now: o.Now, log: o.Logger, index: o.Index}
	if err := client.Ping(ctx, nil); err != nil {
		return nil, fmt.Errorf("mongostore: ping: %w", mapErr(err))
	}
	ferret, err := s.isFerretDB(ctx)
	if err != nil {
		return nil, fmt.Errorf("mongostore: buildInfo: %w", err)
	}
	s.ferret = ferret
	s.locks.enabled = o.SerializeWrites || ferret
	s.locks.seed = maphash.MakeSeed()
	if s.locks.enabled {
		s.log.InfoContext(ctx, "mongostore: the server's updates are not atomic (FerretDB); this process serialises its writes per document")
	}
	if !o.SkipIndexes {
		if err := s.ensureCollections(ctx); err != nil {
			return nil, err
		}
		if err := s.ensureIndexes(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Close disconnects the client if the store owns it.
func (s *Store) Close(ctx context.Context) error {
	if !s.owns {
		return nil
	}
	return mapErr(s.client.Disconnect(ctx))
}

// Client returns the driver client, for sessions and transactions.
func (s *Store) Client() *mongo.Client { return s.client }

// Namespace is the database and collection the store reads and writes,
// as "database.collection".
func (s *Store) Namespace() string {
	return s.coll.Database().Name() + "." + s.coll.Name()
}

// Ping checks that the primary answers.
func (s *Store) Ping(ctx context.Context) error {
	return mapErr(s.client.Ping(ctx, nil))
}

// nowMillis is the current time as MongoDB will store it.
func (s *Store) nowMillis() time.Time {
	return memcell.NormalizeTime(s.now())
}

// mapErr translates driver errors into the domain's sentinels, once.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return memcell.ErrNotFound
	case mongo.IsDuplicateKeyError(err):
		return fmt.Errorf("%w: %w", memcell.ErrConflict, err)
	case errors.Is(err, context.Canceled):
		return err
	case mongo.IsNetworkError(err), mongo.IsTimeout(err):
		if ce := (mongo.CommandError{}); errors.As(err, &ce) && ce.IsMaxTimeMSExpiredError() && !errors.Is(err, context.DeadlineExceeded) {
			// The server ran out of the maxTimeMS that the context's
			// deadline set, a moment before the context itself.
			return fmt.Errorf("%w: %w: %w", memcell.ErrUnavailable, context.DeadlineExceeded, err)
		}
		return fmt.Errorf("%w: %w", memcell.ErrUnavailable, err)
	}
	var ce mongo.CommandError
	if errors.As(err, &ce) && ce.Code == 1 && strings.Contains(strings.ToLower(ce.Message), "duplicate") {
		// FerretDB reports duplicate keys raised by updates as code 1.
		return fmt.Errorf("%w: %w", memcell.ErrConflict, err)
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		for _, code := range refusedDocumentCodes {
			if se.HasErrorCode(code) {
				return &memcell.FieldError{Rule: "the primary refused the document: " + se.Error()}
			}
		}
	}
	return err
}

// refusedDocumentCodes are the server errors that mean the document's
// content cannot be stored: BadValue (FerretDB's answer to nested arrays and
// to keys with '$' or '.') and the BSON size and nesting limits. They are
// bad input, not a server fault.
var refusedDocumentCodes = []int{2, 10334, 17419, 15}

// index is one of EverMemOS's indexes: its name, its keys ("-" for
// descending) and whether it is sparse.
type index struct {
	name   string
	keys   []string
	sparse bool
}

// Indexes lists the indexes the store creates, under EverMemOS's names.
var indexes = []index{
	{"idx_deleted_at", []string{"deleted_at"}, true},
	{"idx_user_deleted_timestamp", []string{"user_id", "deleted_at", "-timestamp"}, false},
	{"idx_group_deleted_timestamp", []string{"group_id", "deleted_at", "-timestamp"}, false},
	{"idx_participants", []string{"participants"}, true},
	{"idx_user_type_deleted_timestamp", []string{"user_id", "type", "deleted_at", "-timestamp"}, false},
	{"idx_group_type_deleted_timestamp", []string{"group_id", "type", "deleted_at", "-timestamp"}, false},
	{"idx_created_at", []string{"-created_at"}, false},
	{"idx_updated_at", []string{"-updated_at"}, false},
	{"user_id_1", []string{"user_id"}, false},
	{"timestamp_1", []string{"timestamp"}, false},
	{"group_id_1", []string{"group_id"}, false},
	// memcell's own: the replayer's search for mirror intents.
	{"idx_kv_intent", []string{memcell.IntentField}, true},
}

// ensureIndexes creates the missing indexes. Besides saving work, creating
// only the missing ones matters on FerretDB, which drops the connection when
// createIndexes names an index that exists.
//
// With a query index (Options.Index, the embedded primary) it creates none
// and drops those an earlier start made: FerretDB answers no query from
// them (it evaluates every filter but {_id} in Go) yet updates each of
// them on every insert and update, which cost about a third of the
// embedded primary's write rate. The query index answers the queries they
// are for.
func (s *Store) ensureIndexes(ctx context.Context) error {
	specs, err := s.coll.Indexes().ListSpecifications(ctx)
	if err != nil {
		return fmt.Errorf("mongostore: list indexes: %w", mapErr(err))
	}
	have := make(map[string]bool, len(specs))
	for _, sp := range specs {
		have[sp.Name] = true
	}
	if s.index != nil {
		return s.dropIndexes(ctx, have)
	}
	var missing []mongo.IndexModel
	for _, ix := range indexes {
		if have[ix.name] {
			continue
		}
		keys := bson.D{}
		for _, k := range ix.keys {
			dir := 1
			if k[0] == '-' {
				dir, k = -1, k[1:]
			}
			keys = append(keys, bson.E{Key: k, Value: dir})
		}
		o := options.Index().SetName(ix.name)
		if ix.sparse {
			o.SetSparse(true)
		}
		missing = append(missing, mongo.IndexModel{Keys: keys, Options: o})
	}
	if len(missing) > 0 {
		if _, err := s.coll.Indexes().CreateMany(ctx, missing); err != nil {
			return fmt.Errorf("mongostore: create indexes: %w", mapErr(err))
		}
	}
	s.log.InfoContext(ctx, "mongostore: indexes ready", "collection", s.coll.Name(), "created", len(missing))
	return nil
}

// dropIndexes drops the indexes of the list that have names.
func (s *Store) dropIndexes(ctx context.Context, have map[string]bool) error {
	dropped := 0
	for _, ix := range indexes {
		if !have[ix.name] {
			continue
		}
		if err := s.coll.Indexes().DropOne(ctx, ix.name); err != nil {
			return fmt.Errorf("mongostore: drop index %s: %w", ix.name, mapErr(err))
		}
		dropped++
	}
	s.log.InfoContext(ctx, "mongostore: the query index answers the queries; the primary's own indexes are not kept", "collection", s.coll.Name(), "dropped", dropped)
	return nil
}

// ensureCollections creates the collection and the pending record's and
// the graves' collections when they are missing, so that they exist from
// the start (the embedded primary indexes the collections it finds).
func (s *Store) ensureCollections(ctx context.Context) error {
	db := s.coll.Database()
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("mongostore: list collections: %w", mapErr(err))
	}
	for _, c := range []*mongo.Collection{s.coll, s.pending(), s.graves()} {
		if slices.Contains(names, c.Name()) {
			continue
		}
		if err := db.CreateCollection(ctx, c.Name()); err != nil {
			var ce mongo.CommandError
			if errors.As(err, &ce) && ce.Code == 48 { // NamespaceExists: made meanwhile
				continue
			}
			return fmt.Errorf("mongostore: create %s: %w", c.Name(), mapErr(err))
		}
	}
	return nil
}

// SupportsTransactions reports whether the server can run multi-document
// transactions: a replica set member or a mongos. FerretDB and a standalone
// mongod cannot.
func (s *Store) SupportsTransactions(ctx context.Context) (bool, error) {
	var hello struct {
		SetName string `bson:"setName"`
		Msg     string `bson:"msg"`
	}
	if err := s.client.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return false, fmt.Errorf("mongostore: hello: %w", mapErr(err))
	}
	return hello.SetName != "" || hello.Msg == "isdbgrid", nil
}

// Store is the project's primary.
var _ memcell.Primary = (*Store)(nil)
