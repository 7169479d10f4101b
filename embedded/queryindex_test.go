package embedded_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/embedded"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mongostore"
)

// indexFixture is an embedded primary with one database, a store that
// asks the server only (wire) and one that asks the query index first
// (indexed), on the same collection.
type indexFixture struct {
	dir     string
	client  *mongo.Client
	wire    *mongostore.Store
	indexed *mongostore.Store
	index   *embedded.QueryIndex
}

func newIndexFixture(t *testing.T) *indexFixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := &indexFixture{dir: t.TempDir()}
	s, err := embedded.Start(ctx, f.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if f.client, err = mongo.Connect(options.Client().ApplyURI(s.URI())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.client.Disconnect(context.Background()) })
	if f.wire, err = mongostore.Open(ctx, f.client, "d", nil); err != nil {
		t.Fatal(err)
	}
	f.index = s.QueryIndex("d", mongostore.DefaultCollection)
	t.Cleanup(func() { f.index.Close() })
	if f.indexed, err = mongostore.Open(ctx, f.client, "d", &mongostore.Options{Index: f.index}); err != nil {
		t.Fatal(err)
	}
	if err := s.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		if err := f.index.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// weirdStrings are values whose JSON encodings differ between encoders
// (HTML escapes, line separators, control characters, quotes, non-BMP).
var weirdStrings = []string{"a<b>&c", "q\"uo\\te", "é\u2028\u0001\t/", "\U0001F9E0", "", " alice"}

// randomQuery draws a query over the fixtures' users, groups, participants
// and keywords, with any combination of conditions.
func randomQuery(r *rand.Rand) memcell.Query {
	pick := func(pool []string) string {
		if r.IntN(8) == 0 {
			return weirdStrings[r.IntN(len(weirdStrings))]
		}
		return pool[r.IntN(len(pool))]
	}
	var q memcell.Query
	if r.IntN(2) == 0 {
		u := pick(memcelltest.Users)
		q.UserID = &u
		q.IncludeParticipant = r.IntN(3) == 0
	}
	if r.IntN(4) == 0 {
		g := pick(memcelltest.Groups)
		q.GroupID = &g
	}
	if r.IntN(6) == 0 {
		ty := memcell.Conversation
		if r.IntN(2) == 0 {
			ty = memcell.DataType(pick([]string{"AgentConversation", "Conversation", "Email"}))
		}
		q.Type = &ty
	}
	if r.IntN(4) == 0 {
		for range 1 + r.IntN(3) {
			q.Participants = append(q.Participants, pick(memcelltest.Users))
		}
		q.ParticipantsAll = r.IntN(2) == 0
	}
	if r.IntN(4) == 0 {
		for range 1 + r.IntN(3) {
			q.Keywords = append(q.Keywords, pick(memcelltest.Keywords))
		}
		q.KeywordsAll = r.IntN(2) == 0
	}
	if r.IntN(3) == 0 {
		s := memcelltest.Epoch.Add(time.Duration(r.Int64N(int64(40*24*time.Hour))) - 5*24*time.Hour)
		q.Start = &s
	}
	if r.IntN(3) == 0 {
		e := memcelltest.Epoch.Add(time.Duration(r.Int64N(int64(40*24*time.Hour))) - 5*24*time.Hour)
		if q.Start != nil && !e.After(*q.Start) {
			e = q.Start.Add(time.Duration(1 + r.Int64N(int64(10*24*time.Hour))))
		}
		q.End = &e
	}
	q.Ascending = r.IntN(3) == 0
	q.Limit = []int64{0, 1, 5, 20, 1000}[r.IntN(5)]
	if r.IntN(4) == 0 {
		q.Skip = r.Int64N(30)
	}
	return q
}

// populate writes n random documents through the store and soft-deletes,
// restores, updates and hard-deletes some of them, so that live and
// deleted documents, equal timestamps and odd strings all occur.
func populate(t *testing.T, s *mongostore.Store, r *rand.Rand, n int) {
	t.Helper()
	ctx := context.Background()
	var ids []memcell.ID
	var last time.Time
	for i := range n {
		m := memcelltest.NewMemCell(r, 700)
		switch r.IntN(10) {
		case 0:
			w := weirdStrings[r.IntN(len(weirdStrings))]
			m.UserID, m.GroupID = &w, nil
			m.Participants = append(m.Participants, w)
		case 1:
			if !last.IsZero() {
				m.Timestamp = last // ties broken by id
			}
		case 2:
			m.Participants, m.Keywords = nil, []string{}
		case 3:
			ty := memcell.AgentConversation
			m.Type = &ty
		}
		last = m.Timestamp
		got, err := s.Append(ctx, m)
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		ids = append(ids, got.ID)
	}
	for _, id := range ids {
		var err error
		switch r.IntN(12) {
		case 0, 1, 2:
			_, err = s.SoftDelete(ctx, id, "test")
		case 3:
			if _, err = s.SoftDelete(ctx, id, ""); err == nil {
				_, err = s.Restore(ctx, id)
			}
		case 4:
			_, err = s.Update(ctx, id, map[string]any{"timestamp": memcelltest.Epoch.Add(time.Duration(r.Int64N(int64(time.Hour)))).Format(time.RFC3339Nano), "participants": []any{"bob"}})
		case 5:
			_, err = s.HardDelete(ctx, id)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func idsOf(ms []*memcell.MemCell) []memcell.ID {
	out := make([]memcell.ID, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// TestQueryIndexMatchesServer runs random queries both ways, through the
// server alone and through the query index, on documents written, deleted,
// restored and updated through the store, and requires the same answers:
// the same documents in the same order, the same counts. It also checks
// that the index answered (it did not decline) and that it declines, and
// the store still answers as the server does, once a document of a shape
// it cannot answer for is stored.
func TestQueryIndexMatchesServer(t *testing.T) {
	f := newIndexFixture(t)
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	populate(t, f.wire, r, 200)

	compare := func(t *testing.T, wantIndexed bool, queries int) {
		t.Helper()
		for i := range queries {
			q := randomQuery(r)
			want, err := f.wire.Find(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.indexed.Find(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(idsOf(got), idsOf(want)) {
				t.Fatalf("query %d %+v: the index path found %d documents %v, the server %d %v", i, q, len(got), idsOf(got), len(want), idsOf(want))
			}
			for j := range got {
				a, errA := memcell.Encode(got[j])
				b, errB := memcell.Encode(want[j])
				if errA != nil || errB != nil || string(a) != string(b) {
					t.Fatalf("query %d: document %s differs between the paths (%v, %v)", i, got[j].ID, errA, errB)
				}
			}
			ids, _, ok, err := f.index.Find(ctx, q)
			if err != nil || ok != wantIndexed {
				t.Fatalf("index Find: ok %v, %v; want ok %v", ok, err, wantIndexed)
			}
			if ok && !slices.Equal(ids, idsOf(want)) {
				t.Fatalf("query %d: the index's ids differ from the server's", i)
			}
			wantN, err := f.wire.Count(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			gotN, err := f.indexed.Count(ctx, q)
			if err != nil || gotN != wantN {
				t.Fatalf("query %d %+v: count %d, %v through the index path, %d from the server", i, q, gotN, err, wantN)
			}
			if n, ok, err := f.index.Count(ctx, q); err != nil || ok != wantIndexed || ok && n != wantN {
				t.Fatalf("index Count = %d, %v, %v; want %d, %v", n, ok, err, wantN, wantIndexed)
			}
		}
	}
	t.Run("memcell documents", func(t *testing.T) { compare(t, true, 80) })
	t.Run("intents", func(t *testing.T) {
		// Clear the intents of some documents, as the mirror does once
		// their KV writes are done.
		all, err := f.wire.Find(ctx, memcell.Query{})
		if err != nil {
			t.Fatal(err)
		}
		var done []memcell.Intent
		for _, m := range all {
			if r.IntN(2) == 0 {
				done = append(done, memcell.Intent{ID: m.ID, Mark: m.Intent})
			}
		}
		if err := f.wire.ClearIntents(ctx, done); err != nil {
			t.Fatal(err)
		}
		coll := f.client.Database("d").Collection(mongostore.DefaultCollection)
		for range 20 {
			before := all[r.IntN(len(all))].ID
			cur, err := coll.Find(ctx, bson.D{{Key: memcell.IntentField, Value: bson.D{{Key: "$lt", Value: bson.ObjectID(before)}}}})
			if err != nil {
				t.Fatal(err)
			}
			var want []memcell.ID
			for cur.Next(ctx) {
				want = append(want, memcell.ID(cur.Current.Lookup("_id").ObjectID()))
			}
			if err := cur.Err(); err != nil {
				t.Fatal(err)
			}
			got, ok, err := f.index.Intents(ctx, before)
			if err != nil || !ok {
				t.Fatalf("index Intents: ok %v, %v", ok, err)
			}
			sortIDs(got)
			sortIDs(want)
			if !slices.Equal(got, want) || len(want) == 0 {
				t.Fatalf("intents before %s: the index has %d ids, the server %d (want some)", before, len(got), len(want))
			}
		}
	})
	t.Run("scopes", func(t *testing.T) {
		coll := f.client.Database("d").Collection(mongostore.DefaultCollection)
		for i := range 40 {
			q := randomQuery(r)
			sc := memcell.Scope{UserID: q.UserID, Start: q.Start, End: q.End}
			if sc.Check() != nil {
				continue
			}
			filter := bson.D{}
			if sc.UserID != nil {
				filter = append(filter, bson.E{Key: "user_id", Value: *sc.UserID})
			}
			rng := bson.D{}
			if sc.Start != nil {
				rng = append(rng, bson.E{Key: "$gte", Value: bson.NewDateTimeFromTime(*sc.Start)})
			}
			if sc.End != nil {
				rng = append(rng, bson.E{Key: "$lt", Value: bson.NewDateTimeFromTime(*sc.End)})
			}
			if len(rng) > 0 {
				filter = append(filter, bson.E{Key: "timestamp", Value: rng})
			}
			for _, deleted := range []*bool{nil, ptr(false), ptr(true)} {
				flt := slices.Clone(filter)
				switch {
				case deleted == nil:
				case *deleted:
					flt = append(flt, bson.E{Key: "deleted_at", Value: bson.D{{Key: "$ne", Value: nil}}})
				default:
					flt = append(flt, bson.E{Key: "deleted_at", Value: nil})
				}
				cur, err := coll.Find(ctx, flt, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
				if err != nil {
					t.Fatal(err)
				}
				var want []memcell.ID
				for cur.Next(ctx) {
					want = append(want, memcell.ID(cur.Current.Lookup("_id").ObjectID()))
				}
				if err := cur.Err(); err != nil {
					t.Fatal(err)
				}
				got, ok, err := f.index.Scope(ctx, sc, deleted)
				if err != nil || !ok {
					t.Fatalf("index Scope: ok %v, %v", ok, err)
				}
				sortIDs(got)
				sortIDs(want)
				if !slices.Equal(got, want) {
					t.Fatalf("scope %d %+v, deleted %v: the index has %d ids, the server %d", i, sc, deleted, len(got), len(want))
				}
			}
		}
	})

	// Documents written behind the store's back, shaped as MongoDB allows
	// but memcell does not write, each make the index decline.
	odd := []bson.D{
		{{Key: "user_id", Value: bson.A{"alice"}}},
		{{Key: "user_id", Value: bson.NewObjectID()}},
		{{Key: "group_id", Value: int32(3)}},
		{{Key: "timestamp", Value: "2026-01-02"}},
		{{Key: "timestamp", Value: nil}},
		{{Key: "deleted_at", Value: bson.A{nil}}},
		{{Key: "participants", Value: "alice"}},
		{{Key: "keywords", Value: bson.A{"kyoto", int32(1)}}},
		{{Key: "_id", Value: "a string id"}},
	}
	coll := f.client.Database("d").Collection(mongostore.DefaultCollection)
	for i, doc := range odd {
		t.Run(fmt.Sprintf("odd %d", i), func(t *testing.T) {
			d := bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "user_id", Value: "alice"}, {Key: "timestamp", Value: bson.NewDateTimeFromTime(memcelltest.Epoch)}, {Key: "deleted_at", Value: nil}}
			for _, e := range doc {
				if k := slices.IndexFunc(d, func(x bson.E) bool { return x.Key == e.Key }); k >= 0 {
					d[k] = e
				} else {
					d = append(d, e)
				}
			}
			if _, err := coll.InsertOne(ctx, d); err != nil {
				t.Fatal(err)
			}
			q := memcell.Query{}
			if _, _, ok, err := f.index.Find(ctx, q); ok || err != nil {
				t.Fatalf("index Find with %v stored: ok %v, %v; want it to decline", doc, ok, err)
			}
			if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: d[0].Value}}); err != nil {
				t.Fatal(err)
			}
			if _, _, ok, err := f.index.Find(ctx, q); !ok || err != nil {
				t.Fatalf("index Find once the odd document is gone: ok %v, %v", ok, err)
			}
		})
	}
	// Soft-deleted, so that no query selects it (the store could not
	// read it as a MemCell).
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "user_id", Value: bson.A{"alice", "bob"}}, {Key: "timestamp", Value: bson.NewDateTimeFromTime(memcelltest.Epoch)}, {Key: "deleted_at", Value: bson.NewDateTimeFromTime(memcelltest.Epoch)}}); err != nil {
		t.Fatal(err)
	}
	t.Run("with an odd document", func(t *testing.T) { compare(t, false, 10) })
}

// TestQueryIndexSeesWrites checks that a query through the index right
// after a write through the server sees it: a document appended, soft
// deleted, restored and hard deleted, counted after each step.
func TestQueryIndexSeesWrites(t *testing.T) {
	f := newIndexFixture(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	user := "reader-after-writer"
	q := memcell.Query{UserID: &user}
	for i := range 50 {
		m := memcelltest.NewMemCell(r, 700)
		m.UserID = &user
		got, err := f.indexed.Append(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		check := func(step string, want int64) {
			t.Helper()
			n, ok, err := f.index.Count(ctx, q)
			if err != nil || !ok || n != want {
				t.Fatalf("after %s %d: index count %d, %v, %v; want %d", step, i, n, ok, err, want)
			}
		}
		check("append", int64(i+1))
		if _, err := f.indexed.SoftDelete(ctx, got.ID, ""); err != nil {
			t.Fatal(err)
		}
		check("soft delete", int64(i))
		if _, err := f.indexed.Restore(ctx, got.ID); err != nil {
			t.Fatal(err)
		}
		check("restore", int64(i+1))
		if i%2 == 0 {
			continue
		}
		if _, err := f.indexed.HardDelete(ctx, got.ID); err != nil {
			t.Fatal(err)
		}
		check("hard delete", int64(i))
		m.ID = got.ID
		if _, err := f.indexed.Append(ctx, m); err != nil {
			t.Fatal(err)
		}
		check("re-create", int64(i+1))
	}
}

// TestQueryIndexLayout fails if the pinned FerretDB version or its SQLite
// layout changes under the query index: the version, the metadata table,
// the document column and the recorded field types ($s) the index reads,
// and the plans SQLite makes with the index's indexes.
func TestQueryIndexLayout(t *testing.T) {
	if v := ferretVersion(t); v != "v1.24.2" {
		t.Fatalf("FerretDB %s: the query index is written for v1.24.2's SQLite layout; check it against this one", v)
	}
	f := newIndexFixture(t)
	ctx := context.Background()
	u := "alice"
	g := "g-work"
	got, err := f.wire.Append(ctx, &memcell.MemCell{UserID: &u, GroupID: &g, Timestamp: memcelltest.Epoch, Participants: []string{"bob"}, Keywords: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(f.dir, "d.sqlite")+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var table string
	if err := db.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, mongostore.DefaultCollection).Scan(&table); err != nil {
		t.Fatalf("FerretDB's metadata table: %v", err)
	}
	var id, user, idType, userType, tsType, delType, partItems, kwItems string
	var ts int64
	var deleted sql.NullInt64
	err = db.QueryRowContext(ctx, fmt.Sprintf(`SELECT _ferretdb_sjson->>'$._id', _ferretdb_sjson->>'$.user_id', _ferretdb_sjson->>'$.timestamp', _ferretdb_sjson->>'$.deleted_at',
		_ferretdb_sjson->>'$."$s".p._id.t', _ferretdb_sjson->>'$."$s".p.user_id.t', _ferretdb_sjson->>'$."$s".p.timestamp.t', _ferretdb_sjson->>'$."$s".p.deleted_at.t',
		_ferretdb_sjson->>'$."$s".p.participants.i', _ferretdb_sjson->>'$."$s".p.keywords.i' FROM %q`, table)).
		Scan(&id, &user, &ts, &deleted, &idType, &userType, &tsType, &delType, &partItems, &kwItems)
	if err != nil {
		t.Fatalf("reading the document column: %v", err)
	}
	want := []string{got.ID.String(), "alice", "objectId", "string", "date", "null", `[{"t":"string"}]`, `[]`}
	if have := []string{id, user, idType, userType, tsType, delType, partItems, kwItems}; !slices.Equal(have, want) || ts != memcelltest.Epoch.UnixMilli() || deleted.Valid {
		t.Fatalf("stored document as the index reads it: %q, timestamp %d, deleted_at %v; want %q, %d, NULL", have, ts, deleted, want, memcelltest.Epoch.UnixMilli())
	}

	// The index declines while a document of another shape exists: that
	// check must be a search of the partial index, not a scan.
	user, group := "alice", "g-work"
	start, end := memcelltest.Epoch, memcelltest.Epoch.Add(time.Hour)
	for _, c := range []struct {
		name  string
		sql   func(string, *memcell.Query) (string, []any)
		q     memcell.Query
		index string
	}{
		{"list by user", embedded.FindSQL, memcell.Query{UserID: &user, Limit: 20}, "_memcell_user"},
		{"list by user, oldest first", embedded.FindSQL, memcell.Query{UserID: &user, Limit: 20, Ascending: true}, "_memcell_user"},
		{"list by group", embedded.FindSQL, memcell.Query{GroupID: &group, Limit: 20}, "_memcell_group"},
		{"list by time range", embedded.FindSQL, memcell.Query{Start: &start, End: &end}, "_memcell_timestamp"},
		{"count by user", embedded.CountSQL, memcell.Query{UserID: &user}, "_memcell_user"},
		{"count by group in a time range", embedded.CountSQL, memcell.Query{GroupID: &group, Start: &start, End: &end}, "_memcell_group"},
		{"scope of a user", scopeOf(memcell.Scope{UserID: &user}, ptr(false)), memcell.Query{}, "_memcell_user"},
		{"scope of a user and time range", scopeOf(memcell.Scope{UserID: &user, Start: &start}, nil), memcell.Query{}, "_memcell_user"},
		{"scope of a time range", scopeOf(memcell.Scope{Start: &start, End: &end}, ptr(true)), memcell.Query{}, "_memcell_timestamp"},
		{"intents", func(table string, _ *memcell.Query) (string, []any) {
			return embedded.IntentsSQL(table), []any{memcell.NewID().String()}
		}, memcell.Query{}, "_memcell_intents"},
	} {
		query, args := c.sql(table, &c.q)
		plan := explain(t, db, query, args...)
		if !strings.Contains(plan, "USING INDEX "+table+c.index) && !strings.Contains(plan, "USING COVERING INDEX "+table+c.index) || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("%s is planned as %q; want a search of %s%s, without a sort", c.name, plan, table, c.index)
		}
	}
	if plan := explain(t, db, embedded.OddSQL(table)); !strings.Contains(plan, table+"_memcell_odd") {
		t.Errorf("the check for odd documents is planned as %q; want a search of the partial index", plan)
	}
}

func ptr[T any](v T) *T { return &v }

func sortIDs(ids []memcell.ID) {
	slices.SortFunc(ids, func(a, b memcell.ID) int { return strings.Compare(a.String(), b.String()) })
}

// scopeOf is the query of a Scope, in the form of FindSQL's.
func scopeOf(sc memcell.Scope, deleted *bool) func(string, *memcell.Query) (string, []any) {
	return func(table string, _ *memcell.Query) (string, []any) { return embedded.ScopeSQL(table, &sc, deleted) }
}

func explain(t *testing.T, db *sql.DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}

// TestQueryIndexRecreates checks that the index puts back an index of its
// own that has gone (dropped by hand, or a collection made anew) before
// answering, drops those of earlier definitions and keeps the _id index.
func TestQueryIndexRecreates(t *testing.T) {
	f := newIndexFixture(t)
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(f.dir, "d.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var table string
	if err := db.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, mongostore.DefaultCollection).Scan(&table); err != nil {
		t.Fatal(err)
	}
	name := embedded.IndexName(table, "_memcell_user")
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`DROP INDEX %q`, name)); err != nil {
		t.Fatal(err)
	}
	// An index of an earlier definition, which Ensure must drop.
	stale := table + "_memcell_user_00000000"
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE INDEX %q ON %q (_ferretdb_sjson->>'$.user_id')`, stale, table)); err != nil {
		t.Fatal(err)
	}
	u := "alice"
	if n, ok, err := f.index.Count(ctx, memcell.Query{UserID: &u}); err != nil || !ok || n != 0 {
		t.Fatalf("Count = %d, %v, %v; want 0, answered", n, ok, err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = ?`, name).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the dropped index is there %d times, %v; want it made again", n, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = ?`, stale).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the stale index is there %d times, %v; want it dropped", n, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = ?`, table+"_memcell_id").Scan(&n); err != nil || n != 1 {
		t.Fatalf("the _id index is there %d times, %v; want it kept", n, err)
	}
}
