package reconcile_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
	"github.com/memcell/memcell/reconcile"
)

// lowerInPrimary makes another program's change to the document id in the
// primary: it sets summary and sets the revision back to rev, as a restore
// from a backup would, without the mirror knowing.
func (e *env) lowerInPrimary(t testing.TB, id memcell.ID, summary string, rev int64) {
	t.Helper()
	coll := memcelltest.Collection(t, e.primary.Namespace())
	res, err := coll.UpdateOne(context.Background(), bson.D{{Key: "_id", Value: bson.ObjectID(id)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "summary", Value: summary}, {Key: memcell.RevisionField, Value: rev}}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.MatchedCount != 1 {
		t.Fatalf("lowering the revision of %s matched %d documents", id, res.MatchedCount)
	}
}

// updates updates the document id through the mirror n times.
func (e *env) updates(t testing.TB, id memcell.ID, n int) *memcell.MemCell {
	t.Helper()
	var m *memcell.MemCell
	for i := range n {
		var err error
		if m, _, err = e.repo.Update(context.Background(), id, map[string]any{"summary": "update " + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// TestRepairLowersRevision replaces a document in the primary behind the
// mirror's back with a lower revision, on every backend: verify reports the
// copy as differing, a dry run says what it would do and writes nothing,
// repair replaces the copy (which no guarded write could) and leaves the
// stores consistent, and the mirror's writes are admitted again afterwards.
// A copy deleted in the KV (a tombstone) stays deleted.
func TestRepairLowersRevision(t *testing.T) {
	for _, backend := range memcelltest.KVBackends() {
		t.Run(backend.Name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, backend, 0)
			e.append(t, 12)
			restored, deleted := e.docs[2], e.docs[9]
			if m := e.updates(t, restored.ID, 3); m.Revision != 4 {
				t.Fatalf("revision after three updates = %d, want 4", m.Revision)
			}
			e.lowerInPrimary(t, restored.ID, "restored from a backup", 2)

			r := e.verify(t, nil)
			if diff := cmp.Diff(found(r), []string{"differs " + restored.ID.String()}); diff != "" {
				t.Fatalf("verify after the restore (-got +want):\n%s", diff)
			}

			before := e.snapshot(t)
			plan, err := reconcile.Repair(ctx, e.primary, e.kv, dryRun(e.opts()))
			if err != nil {
				t.Fatalf("Repair (dry run): %v", err)
			}
			if plan.RevisionsLowered != 1 || plan.Repaired != 0 || plan.Unrepaired != 0 || !plan.DryRun {
				t.Errorf("dry run: %d lowered, %d repaired, %d unrepaired, dry_run %v; want 1, 0, 0, true",
					plan.RevisionsLowered, plan.Repaired, plan.Unrepaired, plan.DryRun)
			}
			if diff := cmp.Diff(before, e.snapshot(t)); diff != "" {
				t.Fatalf("the dry run changed the KV (-before +after):\n%s", diff)
			}
			if got := e.logs.Lines("would replace", restored.ID.String()); len(got) != 1 {
				t.Errorf("dry-run log lines about the lowered revision: %q, want one", got)
			}

			fixed, err := reconcile.Repair(ctx, e.primary, e.kv, e.opts())
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			if fixed.Repaired != 1 || fixed.RevisionsLowered != 1 || fixed.Unrepaired != 0 {
				t.Errorf("Repair: %d repaired, %d lowered, %d unrepaired; want 1, 1, 0", fixed.Repaired, fixed.RevisionsLowered, fixed.Unrepaired)
			}
			lines := e.logs.Lines("revision went down", "was replaced", restored.ID.String())
			if len(lines) != 1 || !strings.Contains(lines[0], `"level":"WARN"`) {
				t.Errorf("log lines about the replaced copy: %q, want one WARN line", lines)
			}
			e.assertConsistent(t, "after the repair")

			// The copy is at revision 2 now: the mirror's next write (3)
			// is stored, not refused.
			if _, mr, err := e.repo.Update(ctx, restored.ID, map[string]any{"summary": "after the repair"}); err != nil || mr.Status != mirror.MirrorOK {
				t.Errorf("update after the repair: %v, mirror %+v; want ok", err, mr)
			}
			e.assertConsistent(t, "after an update")

			// A tombstone of a higher revision than the primary's document
			// is never replaced.
			if _, err := e.kv.Delete(ctx, e.repo.Key(deleted.ID), 7); err != nil {
				t.Fatal(err)
			}
			fixed, err = reconcile.Repair(ctx, e.primary, e.kv, e.opts())
			if err != nil {
				t.Fatalf("Repair over a tombstone: %v", err)
			}
			if fixed.Repaired != 0 || fixed.RevisionsLowered != 0 || fixed.Unrepaired != 1 {
				t.Errorf("Repair over a tombstone: %d repaired, %d lowered, %d unrepaired; want 0, 0, 1", fixed.Repaired, fixed.RevisionsLowered, fixed.Unrepaired)
			}
			if _, err := e.kv.Get(ctx, e.repo.Key(deleted.ID)); !errors.Is(err, kv.ErrNotFound) {
				t.Errorf("the repair brought back a deleted copy (Get: %v)", err)
			}
		})
	}
}

// racingKV runs beforeSwap once, right before the first Swap reaches the
// store, and records what the swaps answered.
type racingKV struct {
	kv.Store
	beforeSwap func()
	mu         sync.Mutex
	answers    []bool
}

func (r *racingKV) Swap(ctx context.Context, e kv.Entry, old []byte) (bool, error) {
	r.mu.Lock()
	f := r.beforeSwap
	r.beforeSwap = nil
	r.mu.Unlock()
	if f != nil {
		f()
	}
	ok, err := r.Store.Swap(ctx, e, old)
	r.mu.Lock()
	r.answers = append(r.answers, ok)
	r.mu.Unlock()
	return ok, err
}

// TestRepairSwapRace checks the two live writes that may land between a
// repair's last read and its swap of a copy whose revision is ahead of the
// primary's. A write that changes the copy (here another replica's put of
// a newer revision) wins: the swap is refused and the newer copy stays. A
// write that the copy refused (an update of the primary, whose mirrored put
// of a revision still below the copy's meets the old copy) is written by
// the repair after its swap, so the stores end consistent.
func TestRepairSwapRace(t *testing.T) {
	for _, backend := range memcelltest.KVBackends() {
		t.Run(backend.Name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, backend, 0)
			e.append(t, 5)
			doc := e.docs[1]
			key := e.repo.Key(doc.ID)
			e.updates(t, doc.ID, 4) // copy at revision 5
			e.lowerInPrimary(t, doc.ID, "restored", 1)

			// Another replica's copy of revision 6 lands before the swap.
			m, err := e.primary.Lookup(ctx, doc.ID)
			if err != nil {
				t.Fatal(err)
			}
			m.Summary, m.Revision = ptr("written by a live put just before the swap"), 6
			newer, err := memcell.Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			racing := &racingKV{Store: e.kv, beforeSwap: func() {
				if ok, err := e.kv.Put(ctx, kv.Entry{Key: key, Value: newer, Rev: 6}); err != nil || !ok {
					t.Errorf("live put before the swap = %v, %v; want stored", ok, err)
				}
			}}
			fixed, err := reconcile.Repair(ctx, e.primary, racing, e.opts())
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			if diff := cmp.Diff([]bool{false}, racing.answers); diff != "" {
				t.Errorf("Swap answers (-want +got):\n%s", diff)
			}
			if got, err := e.kv.Get(ctx, key); err != nil || string(got) != string(newer) {
				t.Errorf("copy after the refused swap = %q, %v; want the live write's", got, err)
			}
			if fixed.RevisionsLowered != 0 || fixed.Unrepaired != 1 {
				t.Errorf("Repair that lost the race: %d lowered, %d unrepaired; want 0, 1", fixed.RevisionsLowered, fixed.Unrepaired)
			}

			// The next repair, undisturbed, lowers it.
			fixed, err = reconcile.Repair(ctx, e.primary, e.kv, e.opts())
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			if fixed.RevisionsLowered != 1 || fixed.Unrepaired != 0 {
				t.Errorf("second Repair: %d lowered, %d unrepaired; want 1, 0", fixed.RevisionsLowered, fixed.Unrepaired)
			}
			e.assertConsistent(t, "after the second repair")

			// An update through the mirror just before the swap: its put
			// (revision 2 after a restore to 1) meets the copy of revision
			// 5 and is refused; the repair swaps, then writes revision 2.
			e.updates(t, doc.ID, 3)                    // copy at revision 5 again
			e.lowerInPrimary(t, doc.ID, "restored", 1) // primary at 1
			var live *memcell.MemCell
			racing = &racingKV{Store: e.kv, beforeSwap: func() {
				m, mr, err := e.repo.Update(ctx, doc.ID, map[string]any{"summary": "live update during the repair"})
				if err != nil || mr.Status != mirror.MirrorStale {
					t.Errorf("live update before the swap: %v, mirror %+v; want stale", err, mr)
				}
				live = m
			}}
			fixed, err = reconcile.Repair(ctx, e.primary, racing, e.opts())
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			if diff := cmp.Diff([]bool{true}, racing.answers); diff != "" {
				t.Errorf("Swap answers (-want +got):\n%s", diff)
			}
			if fixed.RevisionsLowered != 1 || fixed.Unrepaired != 0 {
				t.Errorf("Repair beside a live update: %d lowered, %d unrepaired; want 1, 0", fixed.RevisionsLowered, fixed.Unrepaired)
			}
			want, err := memcell.Encode(live)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := e.kv.Get(ctx, key); err != nil || string(got) != string(want) {
				t.Errorf("copy after the repair = %s, %v; want the live update's\n%s", got, err, want)
			}
			e.assertConsistent(t, "after the repair beside a live update")
		})
	}
}
