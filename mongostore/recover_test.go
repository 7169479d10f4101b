package mongostore_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/memcelltest"
)

// TestRecover checks that Recover puts a document back exactly as it was
// (same BSON, no new revision, no intent), refuses to replace a document
// at its revision or above, replaces an older one only with replace, never
// inserts with replace, and never brings back a hard-deleted one.
func TestRecover(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	coll := memcelltest.Collection(t, s.Namespace())
	in := memcelltest.NewMemCell(rand.New(rand.NewPCG(9, 9)), 1024)
	in.Extra = map[string]any{"nested": map[string]any{"n": 1.5, "list": []any{"a", 2.0}}, "unicode": "héllo ✓"}
	m := mustAppend(t, s, in)
	if _, err := s.Update(ctx, m.ID, map[string]any{"summary": "second"}); err != nil {
		t.Fatal(err)
	}
	del, err := s.SoftDelete(ctx, m.ID, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ClearIntents(ctx, []memcell.Intent{{ID: del.ID, Mark: del.Intent}}); err != nil {
		t.Fatal(err)
	}
	raw := func() bson.Raw {
		t.Helper()
		r, err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: bson.ObjectID(m.ID)}}).Raw()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	before := raw()
	copyOf, err := s.Lookup(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}

	// Present at the same revision: nothing to do, with or without replace.
	for _, replace := range []bool{false, true} {
		if ok, err := s.Recover(ctx, copyOf, replace); ok || err != nil {
			t.Errorf("Recover(present, replace %v) = %v, %v; want false, nil", replace, ok, err)
		}
	}

	// Absent: inserted byte for byte as it was.
	if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: bson.ObjectID(m.ID)}}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Recover(ctx, copyOf, false); !ok || err != nil {
		t.Fatalf("Recover(absent) = %v, %v; want true, nil", ok, err)
	}
	if after := raw(); !bsonEqual(before, after) {
		t.Errorf("recovered document differs:\nbefore %s\nafter  %s", before, after)
	}

	// Older in the primary: only replace replaces it.
	older := *copyOf
	older.Revision = 7
	older.Summary = ptr("newer copy")
	if ok, err := s.Recover(ctx, &older, false); ok || err != nil {
		t.Errorf("Recover(older present, insert) = %v, %v; want false, nil", ok, err)
	}
	if ok, err := s.Recover(ctx, &older, true); !ok || err != nil {
		t.Errorf("Recover(older present, replace) = %v, %v; want true, nil", ok, err)
	}
	if got, err := s.Lookup(ctx, m.ID); err != nil || got.Revision != 7 || *got.Summary != "newer copy" || !got.Intent.IsZero() {
		t.Errorf("after overwrite: %v, %v", got, err)
	}
	// A copy behind the primary never replaces it.
	if ok, err := s.Recover(ctx, copyOf, true); ok || err != nil {
		t.Errorf("Recover(copy older than the primary, replace) = %v, %v; want false, nil", ok, err)
	}

	// Hard-deleted at revision 7: a copy at 7 or below stays gone; one
	// above (a later append of the id) comes back.
	if ok, _, err := hardDelete(ctx, s, m.ID); !ok || err != nil {
		t.Fatalf("HardDelete = %v, %v", ok, err)
	}
	for _, rev := range []int64{3, 7} {
		c := older
		c.Revision = rev
		if ok, err := s.Recover(ctx, &c, true); ok || err != nil {
			t.Errorf("Recover(grave 7, copy at %d) = %v, %v; want false, nil", rev, ok, err)
		}
	}
	if _, err := s.Lookup(ctx, m.ID); err == nil {
		t.Error("a hard-deleted document was recovered")
	}
	later := older
	later.Revision = 8
	// Replace never inserts: a document gone since it was found older
	// was deleted meanwhile.
	if ok, err := s.Recover(ctx, &later, true); ok || err != nil {
		t.Errorf("Recover(absent, replace) = %v, %v; want false, nil", ok, err)
	}
	if _, err := s.Lookup(ctx, m.ID); err == nil {
		t.Error("Recover with replace inserted a document")
	}
	if ok, err := s.Recover(ctx, &later, false); !ok || err != nil {
		t.Errorf("Recover(copy above the grave) = %v, %v; want true, nil", ok, err)
	}
}

// bsonEqual compares two documents element by element, types included.
func bsonEqual(a, b bson.Raw) bool {
	ea, err1 := a.Elements()
	eb, err2 := b.Elements()
	if err1 != nil || err2 != nil || len(ea) != len(eb) {
		return false
	}
	for i := range ea {
		if ea[i].Key() != eb[i].Key() || !ea[i].Value().Equal(eb[i].Value()) {
			return false
		}
	}
	return true
}
