package mongostore_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mongostore"
)

func TestMain(m *testing.M) { os.Exit(memcelltest.Main(m)) }

func ptr[T any](v T) *T { return &v }

func open(t *testing.T) *mongostore.Store {
	t.Helper()
	s, _ := memcelltest.Store(t)
	return s
}

func enc(t testing.TB, m *memcell.MemCell) string {
	t.Helper()
	b, err := memcell.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustAppend(t *testing.T, s *mongostore.Store, m *memcell.MemCell) *memcell.MemCell {
	t.Helper()
	got, err := s.Append(context.Background(), m)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return got
}

func TestAppendGet(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	in := memcelltest.NewMemCell(rand.New(rand.NewPCG(1, 1)), 2048)
	stored := mustAppend(t, s, in)
	if stored.ID.IsZero() || stored.Revision != 1 || stored.CreatedAt == nil || !stored.CreatedAt.Equal(*stored.UpdatedAt) {
		t.Fatalf("Append returned id %v revision %d created %v updated %v", stored.ID, stored.Revision, stored.CreatedAt, stored.UpdatedAt)
	}
	if in.ID != (memcell.ID{}) || in.Revision != 0 {
		t.Error("Append modified its argument")
	}
	got, err := s.Get(ctx, stored.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(enc(t, stored), enc(t, got)); diff != "" {
		t.Errorf("Get differs from what Append returned (-append +get):\n%s", diff)
	}
	if _, err := s.Get(ctx, memcell.NewID()); !errors.Is(err, memcell.ErrNotFound) {
		t.Errorf("Get(absent) = %v, want ErrNotFound", err)
	}
	if _, err := s.Append(ctx, &memcell.MemCell{}); !errors.Is(err, memcell.ErrInvalid) {
		t.Errorf("Append without timestamp = %v, want ErrInvalid", err)
	}
	if _, err := s.Append(ctx, stored); !errors.Is(err, memcell.ErrConflict) {
		t.Errorf("Append of an existing id = %v, want ErrConflict", err)
	}
}

// TestEverMemOSCompatibility writes a document the way EverMemOS stores one
// and reads it through the store, then checks that what the store writes
// has the stored types EverMemOS expects.
func TestEverMemOSCompatibility(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	oid := bson.NewObjectID()
	ts := time.Date(2026, 2, 3, 4, 5, 6, 789_000_000, time.UTC)
	theirs := bson.D{
		{Key: "_id", Value: oid},
		{Key: "user_id", Value: "u1"},
		{Key: "timestamp", Value: bson.NewDateTimeFromTime(ts)},
		{Key: "summary", Value: ""},
		{Key: "group_id", Value: nil},
		{Key: "original_data", Value: bson.A{bson.D{{Key: "data_type", Value: "Conversation"}, {Key: "messages", Value: bson.A{bson.D{{Key: "content", Value: "hi"}}}}}}},
		{Key: "participants", Value: bson.A{"u1", "u2"}},
		{Key: "type", Value: "Conversation"},
		{Key: "extend", Value: bson.D{{Key: "embedding", Value: bson.A{0.5, int32(2)}}}},
		{Key: "created_at", Value: bson.NewDateTimeFromTime(ts)},
		{Key: "updated_at", Value: bson.NewDateTimeFromTime(ts)},
		{Key: "deleted_at", Value: nil},
		{Key: "deleted_id", Value: int64(0)},
		{Key: "tenant_id", Value: "t-9"},
	}
	if _, err := memcelltest.Collection(t, s.Namespace()).InsertOne(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, memcell.ID(oid))
	if err != nil {
		t.Fatalf("reading an EverMemOS document: %v", err)
	}
	want := `{"_id":"` + oid.Hex() + `","user_id":"u1","timestamp":"2026-02-03T04:05:06.789Z","summary":"","group_id":null,"original_data":[{"data_type":"Conversation","messages":[{"content":"hi","files":null,"extend":null}],"meta":null}],"participants":["u1","u2"],"type":"Conversation","subject":null,"keywords":null,"linked_entities":null,"episode":null,"foresight_memories":null,"event_log":null,"extend":{"embedding":[0.5,2]},"created_at":"2026-02-03T04:05:06.789Z","updated_at":"2026-02-03T04:05:06.789Z","deleted_at":null,"deleted_by":null,"deleted_id":0,"revision":0,"tenant_id":"t-9"}`
	if diff := cmp.Diff(want, enc(t, got)); diff != "" {
		t.Errorf("EverMemOS document read as (-want +got):\n%s", diff)
	}

	// An update through us keeps their fields and types and adds the revision.
	if _, err := s.Update(ctx, memcell.ID(oid), map[string]any{"summary": "edited"}); err != nil {
		t.Fatal(err)
	}
	var raw bson.Raw
	if raw, err = memcelltest.Collection(t, s.Namespace()).FindOne(ctx, bson.D{{Key: "_id", Value: oid}}).Raw(); err != nil {
		t.Fatal(err)
	}
	checkTypes(t, raw, map[string]bson.Type{
		"_id": bson.TypeObjectID, "timestamp": bson.TypeDateTime, "updated_at": bson.TypeDateTime,
		"created_at": bson.TypeDateTime, "deleted_id": bson.TypeInt64, "revision": bson.TypeInt32,
		"summary": bson.TypeString, "tenant_id": bson.TypeString, "deleted_at": bson.TypeNull,
	})

	// What we append has the stored types EverMemOS reads.
	ours := mustAppend(t, s, memcelltest.NewMemCell(rand.New(rand.NewPCG(2, 2)), 0))
	if raw, err = memcelltest.Collection(t, s.Namespace()).FindOne(ctx, bson.D{{Key: "_id", Value: bson.ObjectID(ours.ID)}}).Raw(); err != nil {
		t.Fatal(err)
	}
	checkTypes(t, raw, map[string]bson.Type{
		"_id": bson.TypeObjectID, "timestamp": bson.TypeDateTime, "created_at": bson.TypeDateTime,
		"updated_at": bson.TypeDateTime, "deleted_at": bson.TypeNull, "deleted_by": bson.TypeNull,
		"deleted_id": bson.TypeInt64, "revision": bson.TypeInt64, "original_data": bson.TypeArray,
		"extend": bson.TypeEmbeddedDocument, "tenant_id": bson.TypeString,
	})
}

func checkTypes(t *testing.T, raw bson.Raw, want map[string]bson.Type) {
	t.Helper()
	for k, typ := range want {
		v, err := raw.LookupErr(k)
		if err != nil {
			t.Errorf("stored document has no %s", k)
			continue
		}
		if v.Type != typ {
			t.Errorf("stored %s has BSON type %v, want %v", k, v.Type, typ)
		}
	}
}

func TestUpdate(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	clock := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	s2, err := mongostore.Open(ctx, s.Client(), strings.Split(s.Namespace(), ".")[0], &mongostore.Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	m := mustAppend(t, s2, memcelltest.NewMemCell(rand.New(rand.NewPCG(3, 3)), 0))
	clock = clock.Add(time.Hour)
	got, err := s2.Update(ctx, m.ID, map[string]any{
		"summary":   "new summary",
		"keywords":  []any{"x", "y"},
		"timestamp": "2026-03-01T12:00:00.123456+02:00",
		"subject":   nil,
		"mood":      "happy", // extra field
	})
	if err != nil {
		t.Fatal(err)
	}
	if *got.Summary != "new summary" || !slices.Equal(got.Keywords, []string{"x", "y"}) || got.Subject != nil || got.Extra["mood"] != "happy" {
		t.Errorf("update not applied: %s", enc(t, got))
	}
	if !got.Timestamp.Equal(time.Date(2026, 3, 1, 10, 0, 0, 123_000_000, time.UTC)) {
		t.Errorf("timestamp = %v, want normalised to UTC milliseconds", got.Timestamp)
	}
	if got.Revision != 2 || !got.UpdatedAt.Equal(clock) || !got.CreatedAt.Equal(*m.CreatedAt) {
		t.Errorf("revision %d updated_at %v created_at %v", got.Revision, got.UpdatedAt, got.CreatedAt)
	}
	if got.Participants == nil || got.Extra["tenant_id"] != "t-1" {
		t.Error("fields not in the update were lost")
	}

	bad := []map[string]any{
		{},
		{"revision": 9},
		{"_id": "x"},
		{"deleted_at": nil},
		{"timestamp": nil},
		{"timestamp": "soon"},
		{"keywords": "a"},
		{"original_data": []any{map[string]any{"data_type": "Conversation", "messages": []any{}}}},
		{"$set": 1},
		{"a.b": 1},
	}
	for _, fields := range bad {
		if _, err := s.Update(ctx, m.ID, fields); !errors.Is(err, memcell.ErrInvalid) {
			t.Errorf("Update(%v) = %v, want ErrInvalid", fields, err)
		}
	}
	if _, err := s.Update(ctx, memcell.NewID(), map[string]any{"summary": "x"}); !errors.Is(err, memcell.ErrNotFound) {
		t.Errorf("Update(absent) = %v, want ErrNotFound", err)
	}
	if _, err := s.SoftDelete(ctx, m.ID, "me"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, m.ID, map[string]any{"summary": "x"}); !errors.Is(err, memcell.ErrNotFound) {
		t.Errorf("Update(soft-deleted) = %v, want ErrNotFound", err)
	}
}

func TestSoftDeleteRestoreHardDelete(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	m := mustAppend(t, s, memcelltest.NewMemCell(rand.New(rand.NewPCG(4, 4)), 0))

	del, err := s.SoftDelete(ctx, m.ID, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if del.DeletedAt == nil || del.DeletedID == 0 || *del.DeletedBy != "admin" || del.Revision != 2 {
		t.Errorf("soft delete marks: %s", enc(t, del))
	}
	if _, err := s.SoftDelete(ctx, m.ID, "again"); !errors.Is(err, memcell.ErrNotFound) {
		t.Errorf("second soft delete = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, m.ID); !errors.Is(err, memcell.ErrNotFound) {
		t.Errorf("Get(soft-deleted) = %v", err)
	}
	if l, err := s.Lookup(ctx, m.ID); err != nil || *l.DeletedBy != "admin" {
		t.Errorf("Lookup(soft-deleted) = %v, %v; the second delete must not change the marks", l, err)
	}
	res, err := s.Restore(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted() || res.DeletedBy != nil || res.Revision != 3 {
		t.Errorf("restore: %s", enc(t, res))
	}
	if _, err := s.Restore(ctx, m.ID); !errors.Is(err, memcell.ErrNotFound) {
		t.Errorf("restore of a live document = %v, want ErrNotFound", err)
	}
	if ok, rev, err := hardDelete(ctx, s, m.ID); !ok || rev != 3 || err != nil {
		t.Errorf("HardDelete = %v, rev %d, %v; want true, rev 3, nil", ok, rev, err)
	}
	if ok, rev, err := hardDelete(ctx, s, m.ID); ok || rev != 0 || err != nil {
		t.Errorf("second HardDelete = %v, rev %d, %v; want false, 0, nil", ok, rev, err)
	}
	if _, err := s.Lookup(ctx, m.ID); !errors.Is(err, memcell.ErrNotFound) {
		t.Errorf("Lookup after HardDelete = %v, want ErrNotFound", err)
	}
}

// TestHardDeleteRevision checks the revision HardDelete reads from the
// document it removes, whatever wrote it.
func TestHardDeleteRevision(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	coll := memcelltest.Collection(t, s.Namespace())
	for _, tc := range []struct {
		name string
		rev  any // nil: no revision field
		want int64
	}{
		{"none", nil, 0},
		{"int32", int32(7), 7},
		{"int64", int64(1 << 40), 1 << 40},
		{"double", 12.0, 12},
		{"fractional", 1.5, -1},
		{"negative", int64(-2), -1},
		{"string", "3", -1},
	} {
		oid := bson.NewObjectID()
		doc := bson.D{{Key: "_id", Value: oid}, {Key: "user_id", Value: "u1"}}
		if tc.rev != nil {
			doc = append(doc, bson.E{Key: memcell.RevisionField, Value: tc.rev})
		}
		if _, err := coll.InsertOne(ctx, doc); err != nil {
			t.Fatal(err)
		}
		ok, rev, err := hardDelete(ctx, s, memcell.ID(oid))
		if !ok || rev != tc.want || err != nil {
			t.Errorf("%s: HardDelete = %v, rev %d, %v; want true, rev %d, nil", tc.name, ok, rev, err, tc.want)
		}
	}
	// A document written through the store: revision 1, then one more
	// per write.
	m := mustAppend(t, s, memcelltest.NewMemCell(rand.New(rand.NewPCG(5, 5)), 0))
	if _, err := s.Update(ctx, m.ID, map[string]any{"summary": "changed"}); err != nil {
		t.Fatal(err)
	}
	if ok, rev, err := hardDelete(ctx, s, m.ID); !ok || rev != 2 || err != nil {
		t.Errorf("HardDelete of an updated document = %v, rev %d, %v; want true, rev 2, nil", ok, rev, err)
	}
	// Re-created under the same id, it starts above the deleted revision,
	// and a second delete and re-creation go on from there.
	again, err := s.Append(ctx, m)
	if err != nil || again.Revision != 3 {
		t.Fatalf("Append of a hard-deleted id = revision %v, %v; want 3", again, err)
	}
	if ok, rev, err := hardDelete(ctx, s, m.ID); !ok || rev != 3 || err != nil {
		t.Errorf("second HardDelete = %v, rev %d, %v; want true, rev 3, nil", ok, rev, err)
	}
	if again, err = s.Append(ctx, m); err != nil || again.Revision != 4 {
		t.Errorf("second re-creation = %+v, %v; want revision 4", again, err)
	}
	// An id never deleted starts at 1, chosen or not.
	fresh := memcelltest.NewMemCell(rand.New(rand.NewPCG(6, 6)), 0)
	fresh.ID = memcell.NewID()
	if got, err := s.Append(ctx, fresh); err != nil || got.Revision != 1 {
		t.Errorf("Append of a new chosen id = %+v, %v; want revision 1", got, err)
	}
}

// seed appends n fixtures and returns them as stored.
func seed(t *testing.T, s *mongostore.Store, n int, seed uint64) []*memcell.MemCell {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed))
	out := make([]*memcell.MemCell, n)
	for i := range out {
		out[i] = mustAppend(t, s, memcelltest.NewMemCell(r, 0))
	}
	return out
}

func ids(ms []*memcell.MemCell) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID.String()
	}
	return out
}

// expect filters docs with keep and orders them by timestamp then id.
func expect(docs []*memcell.MemCell, asc bool, keep func(*memcell.MemCell) bool) []string {
	var out []*memcell.MemCell
	for _, d := range docs {
		if keep(d) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b *memcell.MemCell) int {
		c := a.Timestamp.Compare(b.Timestamp)
		if c == 0 {
			c = slices.Compare(a.ID[:], b.ID[:])
		}
		if !asc {
			c = -c
		}
		return c
	})
	return ids(out)
}

func TestFind(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	docs := seed(t, s, 60, 5)
	if _, err := s.SoftDelete(ctx, docs[0].ID, ""); err != nil {
		t.Fatal(err)
	}
	live := docs[1:]
	start, end := memcelltest.Epoch.Add(5*24*time.Hour), memcelltest.Epoch.Add(20*24*time.Hour)
	inRange := func(m *memcell.MemCell) bool { return !m.Timestamp.Before(start) && m.Timestamp.Before(end) }
	has := func(list []string, v string) bool { return slices.Contains(list, v) }
	alice := "alice"

	cases := []struct {
		name string
		q    memcell.Query
		keep func(*memcell.MemCell) bool
	}{
		{"user", memcell.Query{UserID: &alice}, func(m *memcell.MemCell) bool { return m.UserID != nil && *m.UserID == alice }},
		{"user asc", memcell.Query{UserID: &alice, Ascending: true}, func(m *memcell.MemCell) bool { return m.UserID != nil && *m.UserID == alice }},
		{"user or participant in range", memcell.Query{UserID: &alice, IncludeParticipant: true, Start: &start, End: &end},
			func(m *memcell.MemCell) bool {
				return inRange(m) && ((m.UserID != nil && *m.UserID == alice) || has(m.Participants, alice))
			}},
		{"group", memcell.Query{GroupID: ptr("g-work")}, func(m *memcell.MemCell) bool { return m.GroupID != nil && *m.GroupID == "g-work" }},
		{"range asc", memcell.Query{Start: &start, End: &end, Ascending: true}, inRange},
		{"open start", memcell.Query{End: &end}, func(m *memcell.MemCell) bool { return m.Timestamp.Before(end) }},
		{"participants any", memcell.Query{Participants: []string{"bob", "carol"}}, func(m *memcell.MemCell) bool { return has(m.Participants, "bob") || has(m.Participants, "carol") }},
		{"participants all", memcell.Query{Participants: []string{"bob", "carol"}, ParticipantsAll: true}, func(m *memcell.MemCell) bool { return has(m.Participants, "bob") && has(m.Participants, "carol") }},
		{"keywords any", memcell.Query{Keywords: []string{"kyoto", "🧠"}}, func(m *memcell.MemCell) bool { return has(m.Keywords, "kyoto") || has(m.Keywords, "🧠") }},
		{"keywords all", memcell.Query{Keywords: []string{"kyoto", "music"}, KeywordsAll: true}, func(m *memcell.MemCell) bool { return has(m.Keywords, "kyoto") && has(m.Keywords, "music") }},
		{"type", memcell.Query{Type: ptr(memcell.Conversation)}, func(*memcell.MemCell) bool { return true }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Find(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			want := expect(live, tc.q.Ascending, tc.keep)
			if len(want) == 0 {
				t.Fatal("fixture selects nothing; the case tests nothing")
			}
			if diff := cmp.Diff(want, ids(got)); diff != "" {
				t.Errorf("Find (-want +got):\n%s", diff)
			}
			n, err := s.Count(ctx, tc.q)
			if err != nil || n != int64(len(want)) {
				t.Errorf("Count = %d, %v; want %d", n, err, len(want))
			}
			if len(want) > 3 {
				q := tc.q
				q.Limit, q.Skip = 2, 1
				page, err := s.Find(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want[1:3], ids(page)); diff != "" {
					t.Errorf("limit 2 skip 1 (-want +got):\n%s", diff)
				}
			}
		})
	}

	latest, err := s.Latest(ctx, alice, 3)
	if err != nil {
		t.Fatal(err)
	}
	wantLatest := expect(live, false, func(m *memcell.MemCell) bool { return m.UserID != nil && *m.UserID == alice })[:3]
	if diff := cmp.Diff(wantLatest, ids(latest)); diff != "" {
		t.Errorf("Latest (-want +got):\n%s", diff)
	}
	for _, q := range []memcell.Query{{Limit: memcell.MaxLimit + 1}, {Limit: -1}, {Skip: -1}, {Start: &end, End: &start}} {
		if _, err := s.Find(ctx, q); !errors.Is(err, memcell.ErrInvalid) {
			t.Errorf("Find(%+v) = %v, want ErrInvalid", q, err)
		}
	}
}

func TestGetMany(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	docs := seed(t, s, 5, 6)
	if _, err := s.SoftDelete(ctx, docs[1].ID, ""); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetMany(ctx, []memcell.ID{docs[0].ID, docs[1].ID, docs[2].ID, memcell.NewID(), docs[0].ID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[docs[0].ID] == nil || got[docs[2].ID] == nil {
		t.Fatalf("GetMany = %d docs, want docs 0 and 2", len(got))
	}
	if enc(t, got[docs[2].ID]) != enc(t, docs[2]) {
		t.Error("GetMany document differs from the stored one")
	}
	if m, err := s.GetMany(ctx, nil, nil); err != nil || len(m) != 0 {
		t.Errorf("GetMany(nil) = %v, %v", m, err)
	}
	part, err := s.GetMany(ctx, []memcell.ID{docs[3].ID}, []string{"summary"})
	if err != nil {
		t.Fatal(err)
	}
	p := part[docs[3].ID]
	if p == nil || p.Summary == nil || p.Keywords != nil || p.Participants != nil {
		t.Errorf("projection: %+v", p)
	}
}

func TestBulk(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	docs := seed(t, s, 40, 7)
	bob := "bob"
	count := func(keep func(*memcell.MemCell) bool) int64 {
		var n int64
		for _, d := range docs {
			if keep(d) {
				n++
			}
		}
		return n
	}
	isBob := func(m *memcell.MemCell) bool { return m.UserID != nil && *m.UserID == bob }
	// One of bob's is already deleted: it keeps its marks and is not counted.
	var first *memcell.MemCell
	for _, d := range docs {
		if isBob(d) {
			first = d
			break
		}
	}
	if _, err := s.SoftDelete(ctx, first.ID, "earlier"); err != nil {
		t.Fatal(err)
	}
	res, err := s.SoftDeleteMany(ctx, memcell.Scope{UserID: &bob}, "bulk")
	if err != nil {
		t.Fatal(err)
	}
	if want := count(isBob) - 1; res.Count != want || int64(len(res.Docs)) != want {
		t.Fatalf("SoftDeleteMany = %d (%d docs), want %d", res.Count, len(res.Docs), want)
	}
	for _, d := range res.Docs {
		if !isBob(d) || *d.DeletedBy != "bulk" || d.Revision != 2 {
			t.Errorf("bulk-deleted doc: %s", enc(t, d))
		}
	}
	if l, _ := s.Lookup(ctx, first.ID); *l.DeletedBy != "earlier" {
		t.Error("an already deleted document got new marks")
	}
	if n, _ := s.Count(ctx, memcell.Query{UserID: &bob}); n != 0 {
		t.Errorf("bob still has %d live documents", n)
	}

	rres, err := s.RestoreMany(ctx, memcell.Scope{UserID: &bob})
	if err != nil {
		t.Fatal(err)
	}
	if want := count(isBob); rres.Count != want || int64(len(rres.Docs)) != want {
		t.Fatalf("RestoreMany = %d (%d docs), want %d", rres.Count, len(rres.Docs), want)
	}

	start, end := memcelltest.Epoch.Add(10*24*time.Hour), memcelltest.Epoch.Add(15*24*time.Hour)
	inRange := func(m *memcell.MemCell) bool { return !m.Timestamp.Before(start) && m.Timestamp.Before(end) }
	res, err = s.SoftDeleteMany(ctx, memcell.Scope{Start: &start, End: &end, UserID: &bob}, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := count(func(m *memcell.MemCell) bool { return isBob(m) && inRange(m) }); res.Count != want {
		t.Errorf("SoftDeleteMany(bob, range) = %d, want %d", res.Count, want)
	}
	res, err = s.HardDeleteMany(ctx, memcell.Scope{Start: &start, End: &end})
	n, gone := res.Count, res.Removed
	if err != nil {
		t.Fatal(err)
	}
	if want := count(inRange); n != want || int64(len(gone)) != want {
		t.Errorf("HardDeleteMany(range) = %d (%d ids), want %d", n, len(gone), want)
	}
	for _, id := range gone {
		if _, err := s.Lookup(ctx, id); !errors.Is(err, memcell.ErrNotFound) {
			t.Errorf("%v still exists after HardDeleteMany", id)
		}
	}
	if _, err := s.SoftDeleteMany(ctx, memcell.Scope{}, ""); !errors.Is(err, memcell.ErrInvalid) {
		t.Errorf("bulk with an empty scope = %v, want ErrInvalid", err)
	}
}

// everMemOSIndexes are the indexes the store creates under EverMemOS's
// names.
var everMemOSIndexes = []string{"idx_deleted_at", "idx_user_deleted_timestamp", "idx_group_deleted_timestamp", "idx_participants",
	"idx_user_type_deleted_timestamp", "idx_group_type_deleted_timestamp", "idx_created_at", "idx_updated_at",
	"user_id_1", "timestamp_1", "group_id_1"}

func TestIndexes(t *testing.T) {
	ctx := context.Background()
	client := memcelltest.Client(t)
	db := memcelltest.Database(t)
	s, err := mongostore.Open(ctx, client, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Opening again is idempotent.
	if _, err := mongostore.Open(ctx, client, db, nil); err != nil {
		t.Fatal(err)
	}
	names := indexNames(t, s)
	for _, want := range everMemOSIndexes {
		if !slices.Contains(names, want) {
			t.Errorf("index %s missing (have %v)", want, names)
		}
	}

	// The embedded primary's query index answers the queries those
	// indexes are for, and FerretDB would only maintain them: a store
	// with one drops them, and Find and Count still answer.
	idx := memcelltest.QueryIndex(t, db)
	if idx == nil {
		return // a real MongoDB: no query index
	}
	indexed, err := mongostore.Open(ctx, client, db, &mongostore.Options{Index: idx})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mongostore.Open(ctx, client, db, &mongostore.Options{Index: idx}); err != nil {
		t.Fatal(err)
	}
	names = indexNames(t, indexed)
	for _, name := range everMemOSIndexes {
		if slices.Contains(names, name) {
			t.Errorf("index %s kept beside the query index (have %v)", name, names)
		}
	}
	if !slices.Contains(names, "_id_") {
		t.Errorf("the _id index is gone (have %v)", names)
	}
	m := seed(t, indexed, 1, 7)[0]
	q := memcell.Query{UserID: m.UserID}
	if got, err := indexed.Find(ctx, q); err != nil || len(got) != 1 || got[0].ID != m.ID {
		t.Errorf("Find without the indexes = %v, %v; want %v", got, err, m.ID)
	}
	if n, err := indexed.Count(ctx, q); err != nil || n != 1 {
		t.Errorf("Count without the indexes = %d, %v; want 1", n, err)
	}
}

func indexNames(t *testing.T, s *mongostore.Store) []string {
	t.Helper()
	specs, err := memcelltest.Collection(t, s.Namespace()).Indexes().ListSpecifications(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sp := range specs {
		names = append(names, sp.Name)
	}
	return names
}

// hardDelete is HardDelete with its result spread out.
func hardDelete(ctx context.Context, s *mongostore.Store, id memcell.ID) (bool, int64, error) {
	r, err := s.HardDelete(ctx, id)
	return r.Deleted, r.Revision, err
}
