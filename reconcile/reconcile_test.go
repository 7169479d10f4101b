package reconcile_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
	"github.com/memcell/memcell/reconcile"
)

// grace is the tombstone grace period of the stores that the damage tests
// delete copies from: short, so that a repair can write the copy back soon
// after.
const grace = 50 * time.Millisecond

// damage breaks the mirror of a populated env in every way verify must
// catch and returns what verify should report, as found() lines.
func damage(t *testing.T, e *env) []string {
	t.Helper()
	ctx := context.Background()
	key := e.repo.Key
	put := func(k string, v []byte, rev int64) {
		t.Helper()
		if _, err := e.kv.Put(ctx, kv.Entry{Key: k, Value: v, Rev: uint64(rev)}); err != nil {
			t.Fatal(err)
		}
	}
	encode := func(m *memcell.MemCell) []byte {
		t.Helper()
		v, err := memcell.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	lookup := func(id memcell.ID) *memcell.MemCell {
		t.Helper()
		m, err := e.primary.Lookup(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	d := e.docs
	var want []string
	add := func(kind reconcile.Kind, id string) { want = append(want, string(kind)+" "+id) }

	// A copy deleted (its tombstone expires before the repair).
	if _, err := e.kv.Delete(ctx, key(d[0].ID), kv.MaxRev); err != nil {
		t.Fatal(err)
	}
	add(reconcile.Missing, d[0].ID.String())

	// A copy tampered with at the same revision.
	m := lookup(d[1].ID)
	m.Summary = ptr("tampered")
	put(key(m.ID), encode(m), m.Revision)
	add(reconcile.Differs, m.ID.String())

	// A copy replaced by an older revision of the document: d[3] was
	// updated by populate, d[3] as appended is its revision 1.
	if _, err := e.kv.Delete(ctx, key(d[3].ID), kv.MaxRev); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * grace)
	put(key(d[3].ID), encode(d[3]), d[3].Revision)
	add(reconcile.Stale, d[3].ID.String())

	// Primary changes behind the mirror's back: an update, a soft delete,
	// a hard delete (its copy becomes an extra).
	if _, err := e.primary.Update(ctx, d[4].ID, map[string]any{"summary": "behind the mirror's back"}); err != nil {
		t.Fatal(err)
	}
	add(reconcile.Stale, d[4].ID.String())
	if _, err := e.primary.SoftDelete(ctx, d[8].ID, "someone else"); err != nil {
		t.Fatal(err)
	}
	add(reconcile.Stale, d[8].ID.String())
	if rm, err := e.primary.HardDelete(ctx, d[6].ID); err != nil || !rm.Deleted {
		t.Fatalf("HardDelete = %+v, %v", rm, err)
	}
	add(reconcile.Extra, d[6].ID.String())

	// A copy of a document that never existed.
	ghost := *d[2]
	ghost.ID = memcell.NewID()
	put(key(ghost.ID), encode(&ghost), 1)
	add(reconcile.Extra, ghost.ID.String())

	// Keys under the prefix that are not event ids, one of them an id in
	// upper case (the mirror writes lower case).
	put(mirror.DefaultKeyPrefix+"not-an-id", []byte("garbage"), 0)
	add(reconcile.Extra, "not-an-id")
	upper := strings.ToUpper(d[9].ID.String())
	put(mirror.DefaultKeyPrefix+upper, encode(d[9]), 1)
	add(reconcile.Extra, upper)

	// A copy that is not JSON.
	put(key(d[10].ID), []byte("{not json"), lookup(d[10].ID).Revision)
	add(reconcile.Differs, d[10].ID.String())

	// Keys outside the prefix are none of verify's business.
	put("other:"+d[11].ID.String(), []byte("x"), 0)

	slices.Sort(want)
	return want
}

// TestVerifyRepair is the main scenario, on every backend: a mirror in sync
// verifies clean; damaged in every way, verify finds exactly the damage; a
// dry-run repair reports the same plan and writes nothing; a repair fixes
// everything, clears the pending record, and verify is clean again.
func TestVerifyRepair(t *testing.T) {
	for _, backend := range memcelltest.KVBackends() {
		t.Run(backend.Name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, backend, grace)
			e.populate(t, 200)

			r := e.assertConsistent(t, "after populate")
			if r.Scanned != 200 || r.KVScanned != 200 {
				t.Errorf("clean verify scanned %d documents and %d keys, want 200 and 200", r.Scanned, r.KVScanned)
			}
			if got := e.logs.Lines("no lookups needed"); len(got) != 1 {
				t.Errorf("a clean verify asked the primary about the KV keys (log lines %q)", got)
			}

			want := damage(t, e)
			// Pending records: two damaged documents, a consistent one, and
			// one the primary does not have and the KV holds no copy of (a
			// hard delete whose KV delete failed, the copy gone since):
			// neither pass visits it, and the repair must clear it too.
			pending := []memcell.ID{e.docs[0].ID, e.docs[4].ID, e.docs[20].ID, memcell.NewID()}
			if _, err := e.primary.RecordPending(ctx, pending, "test"); err != nil {
				t.Fatal(err)
			}
			// With the note the damage's hard delete made.
			pending = pendingIDs(t, e)
			wantCounts := map[reconcile.Kind]int64{reconcile.Missing: 1, reconcile.Differs: 2, reconcile.Stale: 3, reconcile.Extra: 4}

			r = e.verify(t, nil)
			if diff := cmp.Diff(found(r), want); diff != "" {
				t.Fatalf("Verify found (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(counts(r), wantCounts); diff != "" {
				t.Errorf("Verify counts (-got +want):\n%s", diff)
			}
			if r.Scanned != 199 || r.Repaired != 0 || r.Resumed || r.Job != "verify" {
				t.Errorf("Verify report = %+v, want 199 scanned, nothing repaired", r)
			}
			checkFields(t, r, e.docs[1].ID, "summary")
			checkFields(t, r, e.docs[4].ID, "revision", "summary", "updated_at")
			if got := e.logs.Lines(memcell.InconsistencyMarker + " event_id=" + e.docs[1].ID.String()); len(got) != 1 {
				t.Errorf("inconsistency lines for the tampered copy: %q, want one", got)
			}
			// The counts of both verify jobs so far: the clean one and this.
			memcelltest.AssertMetrics(t, e.reg, `
# HELP memcell_job_differences_total Differences between the primary and the KV mirror found by verify and repair jobs, by kind.
# TYPE memcell_job_differences_total counter
memcell_job_differences_total{job="verify",kind="differs"} 2
memcell_job_differences_total{job="verify",kind="extra"} 4
memcell_job_differences_total{job="verify",kind="missing"} 1
memcell_job_differences_total{job="verify",kind="stale"} 3
memcell_job_differences_total{job="verify",kind="unreadable"} 0
`)
			if _, err := json.Marshal(r); err != nil {
				t.Errorf("the report does not marshal: %v", err)
			}

			before := e.snapshot(t)
			time.Sleep(2 * grace) // let the tombstone of d[0] expire
			plan, err := reconcile.Repair(ctx, e.primary, e.kv, dryRun(e.opts()))
			if err != nil {
				t.Fatalf("Repair(dry run): %v", err)
			}
			if diff := cmp.Diff(e.snapshot(t), before); diff != "" {
				t.Errorf("a dry-run repair changed the KV (-after +before):\n%s", diff)
			}
			if diff := cmp.Diff(found(plan), want); diff != "" {
				t.Errorf("dry-run plan (-got +want):\n%s", diff)
			}
			if !plan.DryRun || plan.Repaired != 0 {
				t.Errorf("dry-run report: DryRun %v, Repaired %d; want true, 0", plan.DryRun, plan.Repaired)
			}
			if got := pendingIDs(t, e); len(got) != len(pending) {
				t.Errorf("a dry run changed the pending record: %v", got)
			}

			fixed, err := reconcile.Repair(ctx, e.primary, e.kv, e.opts())
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			if diff := cmp.Diff(found(fixed), want); diff != "" {
				t.Errorf("repair found (-got +want):\n%s", diff)
			}
			if fixed.Repaired != int64(len(want)) || fixed.Unrepaired != 0 {
				t.Errorf("Repair repaired %d, left %d unrepaired; want %d, 0", fixed.Repaired, fixed.Unrepaired, len(want))
			}
			// len(want) copies repaired, by the repair and not its dry run.
			memcelltest.AssertMetrics(t, e.reg, `
# HELP memcell_job_repaired_total KV copies written or deleted by sync and repair jobs.
# TYPE memcell_job_repaired_total counter
memcell_job_repaired_total{job="repair"} 10
memcell_job_repaired_total{job="verify"} 0
`)
			e.assertConsistent(t, "after repair")
			if got := pendingIDs(t, e); len(got) != 0 {
				t.Errorf("pending record after repair: %v, want empty", got)
			}
			if v, err := e.kv.Get(ctx, "other:"+e.docs[11].ID.String()); err != nil || string(v) != "x" {
				t.Errorf("repair touched a key outside the prefix: %q, %v", v, err)
			}
		})
	}
}

func checkFields(t *testing.T, r *reconcile.Report, id memcell.ID, paths ...string) {
	t.Helper()
	for _, d := range r.Samples {
		if d.EventID != id.String() {
			continue
		}
		var got []string
		for _, f := range d.Fields {
			got = append(got, f.Path)
		}
		if diff := cmp.Diff(got, paths); diff != "" {
			t.Errorf("fields of %s (%s) (-got +want):\n%s", id, d.Kind, diff)
		}
		return
	}
	t.Errorf("no sample for %s", id)
}

func pendingIDs(t *testing.T, e *env) []memcell.ID {
	t.Helper()
	ids, err := e.primary.Pending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestSwappedKey replaces one copy by a copy of a document that does not
// exist: the KV holds as many keys as the primary has documents, but not
// the same ones, and verify must find both sides.
func TestSwappedKey(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, memcelltest.KVBackends()[0], 0)
	e.append(t, 20)
	gone := e.docs[7]
	if _, err := e.kv.Delete(ctx, e.repo.Key(gone.ID), kv.MaxRev); err != nil {
		t.Fatal(err)
	}
	ghost := *gone
	ghost.ID = memcell.NewID()
	v, err := memcell.Encode(&ghost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.kv.Put(ctx, kv.Entry{Key: e.repo.Key(ghost.ID), Value: v, Rev: 1}); err != nil {
		t.Fatal(err)
	}
	r := e.verify(t, nil)
	want := []string{"extra " + ghost.ID.String(), "missing " + gone.ID.String()}
	slices.Sort(want)
	if diff := cmp.Diff(found(r), want); diff != "" {
		t.Errorf("Verify (-got +want):\n%s", diff)
	}
}

// TestUnreadable checks documents the primary holds but that are not valid
// MemCells: verify reports them, repair counts them as unrepaired, and
// neither stops.
func TestUnreadable(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, memcelltest.KVBackends()[0], 0)
	e.append(t, 10)
	badID := bson.NewObjectID()
	coll := memcelltest.Collection(t, e.primary.Namespace())
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: badID}, {Key: "timestamp", Value: time.Now()}, {Key: "summary", Value: 42}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "legacy-1"}, {Key: "timestamp", Value: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"unreadable " + badID.Hex(), "unreadable legacy-1"}
	r := e.verify(t, nil)
	if diff := cmp.Diff(found(r), want); diff != "" {
		t.Errorf("Verify (-got +want):\n%s", diff)
	}
	for _, d := range r.Samples {
		if d.Error == "" {
			t.Errorf("%s: no error", d.EventID)
		}
	}
	fixed, err := reconcile.Repair(ctx, e.primary, e.kv, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	if fixed.Unrepaired != 2 || fixed.Repaired != 0 || fixed.Scanned != 12 {
		t.Errorf("Repair = %+v, want 12 scanned, 2 unrepaired", fixed)
	}
}

// TestMetricLint runs a job of each kind and lints every metric the jobs
// register.
func TestMetricLint(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, memcelltest.KVBackends()[0], 0)
	e.append(t, 5)
	e.assertConsistent(t, "after append")
	if _, err := reconcile.Sync(ctx, e.primary, e.kv, e.opts()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if _, err := reconcile.Repair(ctx, e.primary, e.kv, e.opts()); err != nil {
		t.Fatalf("Repair: %v", err)
	}
	memcelltest.AssertLint(t, e.reg,
		"memcell_job_differences_total",
		"memcell_job_documents_scanned_total",
		"memcell_job_repaired_total",
	)
}
