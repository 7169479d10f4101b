package mongostore_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/memcelltest"
)

// TestWriteIntents checks the durable write intent: every write stamps a
// new mark on the document in the same operation that returns it, the mark
// never shows among the fields or in the encoding, Intents finds marked
// documents, and ClearIntents removes only the mark it is given, so a
// later write's mark survives the clearing of an earlier one.
func TestWriteIntents(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 7))
	soon := time.Now().Add(2 * time.Second)
	marked := func() []memcell.ID {
		t.Helper()
		ids, err := s.Intents(ctx, soon)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}

	a := mustAppend(t, s, memcelltest.NewMemCell(rng, 512))
	if a.Intent.IsZero() {
		t.Fatal("Append returned no intent")
	}
	if got, err := s.Lookup(ctx, a.ID); err != nil || got.Intent != a.Intent || got.Extra[memcell.IntentField] != nil {
		t.Fatalf("Lookup = intent %v extra %v, %v; want intent %v and no extra field", got.Intent, got.Extra, err, a.Intent)
	}
	if strings.Contains(enc(t, a), memcell.IntentField) {
		t.Errorf("the encoding holds the intent: %s", enc(t, a))
	}
	u, err := s.Update(ctx, a.ID, map[string]any{"summary": "second"})
	if err != nil {
		t.Fatal(err)
	}
	if u.Intent.IsZero() || u.Intent == a.Intent {
		t.Fatalf("Update intent = %v, want a new mark (append's was %v)", u.Intent, a.Intent)
	}
	if ids := marked(); !slices.Contains(ids, a.ID) {
		t.Fatalf("Intents = %v, want %v among them", ids, a.ID)
	}
	// The append's KV write finishing late clears nothing of the update's.
	if err := s.ClearIntents(ctx, []memcell.Intent{{ID: a.ID, Mark: a.Intent}}); err != nil {
		t.Fatal(err)
	}
	if ids := marked(); !slices.Contains(ids, a.ID) {
		t.Fatal("clearing an earlier write's mark removed the later write's")
	}
	if err := s.ClearIntents(ctx, []memcell.Intent{{ID: a.ID, Mark: u.Intent}}); err != nil {
		t.Fatal(err)
	}
	if ids := marked(); slices.Contains(ids, a.ID) {
		t.Fatal("the document still carries an intent after its mark was cleared")
	}
	if got, err := s.Lookup(ctx, a.ID); err != nil || !got.Intent.IsZero() || enc(t, got) != enc(t, u) {
		t.Fatalf("Lookup after clearing = intent %v, %v; want none and the same document", got.Intent, err)
	}
	// Intents stamped after the bound are not listed.
	if ids, err := s.Intents(ctx, time.Now().Add(-time.Hour)); err != nil || len(ids) != 0 {
		t.Errorf("Intents(an hour ago) = %v, %v; want none", ids, err)
	}

	// Soft delete, restore and the bulk forms stamp marks too.
	sd, err := s.SoftDelete(ctx, a.ID, "x")
	if err != nil || sd.Intent.IsZero() {
		t.Fatalf("SoftDelete intent = %v, %v", sd.Intent, err)
	}
	r, err := s.Restore(ctx, a.ID)
	if err != nil || r.Intent.IsZero() || r.Intent == sd.Intent {
		t.Fatalf("Restore intent = %v, %v; want a new mark", r.Intent, err)
	}
	user := *a.UserID
	res, err := s.SoftDeleteMany(ctx, memcell.Scope{UserID: &user}, "")
	if err != nil || len(res.Docs) != 1 || res.Docs[0].Intent.IsZero() || res.Docs[0].Intent == r.Intent {
		t.Fatalf("SoftDeleteMany = %+v, %v; want one document with a new mark", res, err)
	}
	res, err = s.RestoreMany(ctx, memcell.Scope{UserID: &user})
	if err != nil || len(res.Docs) != 1 || res.Docs[0].Intent.IsZero() {
		t.Fatalf("RestoreMany = %+v, %v; want one document with a mark", res, err)
	}
}

// TestHardDeleteIntent checks that a hard delete notes its intent in the
// pending record before it removes anything, and that clearing the note by
// its mark keeps a later note of the same id.
func TestHardDeleteIntent(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(8, 8))
	a := mustAppend(t, s, memcelltest.NewMemCell(rng, 512))
	rm, err := s.HardDelete(ctx, a.ID)
	if err != nil || !rm.Deleted || rm.Intent.IsZero() {
		t.Fatalf("HardDelete = %+v, %v; want deleted with a mark", rm, err)
	}
	if ids, err := s.Pending(ctx); err != nil || !slices.Equal(ids, []memcell.ID{a.ID}) {
		t.Fatalf("Pending after HardDelete = %v, %v; want the id", ids, err)
	}
	// A later failure noted for the same id replaces the note's mark.
	later, err := s.RecordPending(ctx, []memcell.ID{a.ID}, "later")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ClearIntents(ctx, []memcell.Intent{{ID: a.ID, Mark: rm.Intent, Pending: true}}); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.Pending(ctx); len(ids) != 1 {
		t.Fatal("clearing the delete's note removed a later note of the id")
	}
	if err := s.ClearIntents(ctx, []memcell.Intent{{ID: a.ID, Mark: later, Pending: true}}); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.Pending(ctx); len(ids) != 0 {
		t.Fatalf("Pending after clearing = %v, want none", ids)
	}

	// A delete that finds nothing takes its note back.
	if rm, err := s.HardDelete(ctx, memcell.NewID()); err != nil || rm.Deleted || !rm.Intent.IsZero() {
		t.Fatalf("HardDelete of an absent id = %+v, %v; want nothing deleted, no intent", rm, err)
	}
	if ids, _ := s.Pending(ctx); len(ids) != 0 {
		t.Fatalf("Pending after a delete that found nothing = %v, want none", ids)
	}

	// Bulk: every id is noted, with one mark.
	var ids []memcell.ID
	user := "bulk-user"
	for range 3 {
		m := memcelltest.NewMemCell(rng, 256)
		m.UserID = &user
		ids = append(ids, mustAppend(t, s, m).ID)
	}
	res, err := s.HardDeleteMany(ctx, memcell.Scope{UserID: &user})
	if err != nil || res.Count != 3 || len(res.Removed) != 3 || res.Intent.IsZero() {
		t.Fatalf("HardDeleteMany = %+v, %v", res, err)
	}
	if got, _ := s.Pending(ctx); len(got) != 3 {
		t.Fatalf("Pending after HardDeleteMany = %v, want the 3 ids", got)
	}
	if err := s.ClearIntents(ctx, []memcell.Intent{{ID: ids[0], Mark: res.Intent, Pending: true}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Pending(ctx); len(got) != 0 {
		t.Fatalf("Pending after clearing the bulk mark = %v, want none", got)
	}
}

// TestIntentFieldIsManaged checks that callers cannot set or forge the
// intent field.
func TestIntentFieldIsManaged(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	a := mustAppend(t, s, memcelltest.NewMemCell(rand.New(rand.NewPCG(9, 9)), 256))
	if _, err := s.Update(ctx, a.ID, map[string]any{memcell.IntentField: []any{}}); err == nil {
		t.Error("Update of the intent field succeeded")
	}
	// A document another program wrote with a stray scalar in the field
	// reads with no intent.
	coll := memcelltest.Collection(t, s.Namespace())
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: bson.ObjectID(a.ID)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: memcell.IntentField, Value: "x"}}}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Lookup(ctx, a.ID); err != nil || !got.Intent.IsZero() || got.Extra[memcell.IntentField] != nil {
		t.Errorf("Lookup of a stray intent = %v, extra %v, %v", got.Intent, got.Extra, err)
	}
}
