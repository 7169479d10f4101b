package mirror_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
	"github.com/memcell/memcell/mongostore"
)

func appendN(t *testing.T, e *env, n int, seed uint64) []*memcell.MemCell {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed))
	out := make([]*memcell.MemCell, n)
	for i := range out {
		m, mir, err := e.repo.Append(context.Background(), memcelltest.NewMemCell(r, 0))
		if err != nil {
			t.Fatal(err)
		}
		if mir.Status != mirror.MirrorOK {
			t.Fatalf("Append mirror = %+v, want ok", mir)
		}
		out[i] = m
	}
	return out
}

// TestOperationsMirrored runs every write operation and, after each, checks
// that the KV equals MongoDB document by document.
func TestOperationsMirrored(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b memcelltest.KVBackend) {
		e := newEnv(t, b, nil)
		ctx := context.Background()
		docs := appendN(t, e, 30, 1)
		e.assertMirrored(t, "after append")

		upd, mir, err := e.repo.Update(ctx, docs[0].ID, map[string]any{"summary": "changed", "extend": map[string]any{"k": 1.5}})
		if err != nil || mir.Status != mirror.MirrorOK || upd.Revision != 2 {
			t.Fatalf("Update = rev %v, %+v, %v", upd.Revision, mir, err)
		}
		e.assertMirrored(t, "after update")

		ok, mir, err := e.repo.SoftDelete(ctx, docs[1].ID, "tester")
		if !ok || err != nil || mir.Status != mirror.MirrorOK {
			t.Fatalf("SoftDelete = %v, %+v, %v", ok, mir, err)
		}
		e.assertMirrored(t, "after soft delete")
		ok, mir, err = e.repo.Restore(ctx, docs[1].ID)
		if !ok || err != nil || mir.Status != mirror.MirrorOK {
			t.Fatalf("Restore = %v, %+v, %v", ok, mir, err)
		}
		e.assertMirrored(t, "after restore")
		ok, _, err = e.repo.HardDelete(ctx, docs[2].ID)
		if !ok || err != nil {
			t.Fatalf("HardDelete = %v, %v", ok, err)
		}
		e.assertMirrored(t, "after hard delete")

		alice := "alice"
		start, end := memcelltest.Epoch.Add(3*24*time.Hour), memcelltest.Epoch.Add(20*24*time.Hour)
		steps := []struct {
			name string
			do   func() (int64, mirror.Mirror, error)
		}{
			{"soft delete by user", func() (int64, mirror.Mirror, error) {
				return e.repo.SoftDeleteMany(ctx, memcell.Scope{UserID: &alice}, "bulk")
			}},
			{"restore by user", func() (int64, mirror.Mirror, error) { return e.repo.RestoreMany(ctx, memcell.Scope{UserID: &alice}) }},
			{"soft delete by range", func() (int64, mirror.Mirror, error) {
				return e.repo.SoftDeleteMany(ctx, memcell.Scope{Start: &start, End: &end}, "")
			}},
			{"restore by range", func() (int64, mirror.Mirror, error) {
				return e.repo.RestoreMany(ctx, memcell.Scope{Start: &start, End: &end})
			}},
			{"hard delete by user and range", func() (int64, mirror.Mirror, error) {
				return e.repo.HardDeleteMany(ctx, memcell.Scope{UserID: &alice, Start: &start, End: &end})
			}},
			{"hard delete by range", func() (int64, mirror.Mirror, error) {
				return e.repo.HardDeleteMany(ctx, memcell.Scope{Start: &start, End: &end})
			}},
		}
		for _, st := range steps {
			n, mir, err := st.do()
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if n == 0 {
				t.Fatalf("%s touched nothing; the fixture does not exercise it", st.name)
			}
			if mir.Status != mirror.MirrorOK || mir.Written != int(n) {
				t.Errorf("%s: n=%d mirror %+v", st.name, n, mir)
			}
			e.assertMirrored(t, "after "+st.name)
		}
	})
}

// TestHardDeleteTombstones checks what a hard delete leaves in the KV: a
// tombstone of the document's revision when the primary had the document,
// and nothing when it did not.
func TestHardDeleteTombstones(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b memcelltest.KVBackend) {
		e := newEnv(t, b, nil)
		ctx := context.Background()

		// An id the primary never had: the KV is not touched, so a later
		// put of revision 1 of that key is stored.
		absent := memcell.NewID()
		writes := e.kv.Writes.Load()
		ok, mir, err := e.repo.HardDelete(ctx, absent)
		if ok || err != nil || mir.Status != mirror.MirrorSkipped {
			t.Fatalf("HardDelete(absent) = %v, %+v, %v; want false, skipped, nil", ok, mir, err)
		}
		if n := e.kv.Writes.Load() - writes; n != 0 {
			t.Errorf("HardDelete(absent) made %d KV writes, want none", n)
		}
		if ok, err := e.kv.Store.Put(ctx, kv.Entry{Key: e.repo.Key(absent), Value: []byte("{}"), Rev: 1}); err != nil || !ok {
			t.Errorf("Put(rev 1) after a hard delete of an absent id = %v, %v; want stored", ok, err)
		}

		// A document at revision 3: the tombstone refuses revisions up to 3
		// and admits 4.
		m := appendN(t, e, 1, 30)[0]
		for range 2 {
			if _, _, err := e.repo.Update(ctx, m.ID, map[string]any{"summary": "again"}); err != nil {
				t.Fatal(err)
			}
		}
		ok, mir, err = e.repo.HardDelete(ctx, m.ID)
		if !ok || err != nil || mir.Status != mirror.MirrorOK || mir.Written != 1 {
			t.Fatalf("HardDelete = %v, %+v, %v; want true, ok, nil", ok, mir, err)
		}
		key := e.repo.Key(m.ID)
		if _, err := e.kv.Store.Get(ctx, key); !errors.Is(err, kv.ErrNotFound) {
			t.Fatalf("Get after HardDelete = %v, want kv.ErrNotFound", err)
		}
		for _, rev := range []uint64{1, 3} {
			if ok, err := e.kv.Store.Put(ctx, kv.Entry{Key: key, Value: []byte("{}"), Rev: rev}); err != nil || ok {
				t.Errorf("Put(rev %d) over the tombstone of revision 3 = %v, %v; want refused", rev, ok, err)
			}
		}
		if ok, err := e.kv.Store.Put(ctx, kv.Entry{Key: key, Value: []byte("{}"), Rev: 4}); err != nil || !ok {
			t.Errorf("Put(rev 4) over the tombstone of revision 3 = %v, %v; want stored", ok, err)
		}

		// A second hard delete of the gone id leaves that copy alone.
		ok, mir, err = e.repo.HardDelete(ctx, m.ID)
		if ok || err != nil || mir.Status != mirror.MirrorSkipped {
			t.Fatalf("second HardDelete = %v, %+v, %v; want false, skipped, nil", ok, mir, err)
		}
		if _, err := e.kv.Store.Get(ctx, key); err != nil {
			t.Errorf("Get after a second hard delete = %v; want the copy untouched", err)
		}

		// A bulk hard delete deletes each copy at the revision it removed:
		// its tombstones refuse that revision and admit the next.
		bob := "bob"
		docs := appendN(t, e, 10, 31)
		n, mir, err := e.repo.HardDeleteMany(ctx, memcell.Scope{UserID: &bob})
		if err != nil || n == 0 || mir.Status != mirror.MirrorOK {
			t.Fatalf("HardDeleteMany = %d, %+v, %v", n, mir, err)
		}
		refused := 0
		for _, d := range docs {
			if d.UserID == nil || *d.UserID != bob {
				continue
			}
			if ok, err := e.kv.Store.Put(ctx, kv.Entry{Key: e.repo.Key(d.ID), Value: []byte("{}"), Rev: uint64(d.Revision)}); err != nil || ok {
				t.Errorf("Put(rev %d) after a bulk hard delete of that revision = %v, %v; want refused", d.Revision, ok, err)
			}
			if ok, err := e.kv.Store.Put(ctx, kv.Entry{Key: e.repo.Key(d.ID), Value: []byte("{}"), Rev: uint64(d.Revision) + 1}); err != nil || !ok {
				t.Errorf("Put(rev %d) after a bulk hard delete of rev %d = %v, %v; want stored", d.Revision+1, d.Revision, ok, err)
			}
			refused++
		}
		if refused != int(n) {
			t.Errorf("checked %d copies, the bulk delete removed %d", refused, n)
		}
	})
}

// TestEverMemOSDefectsFixed has one case per known defect of EverMemOS's
// first MemCell repository, each proving it gone.
func TestEverMemOSDefectsFixed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b memcelltest.KVBackend) {
		ctx := context.Background()
		bob := "bob"
		start, end := memcelltest.Epoch, memcelltest.Epoch.Add(40*24*time.Hour)

		t.Run("soft deletes by user and by time range reach the KV", func(t *testing.T) {
			e := newEnv(t, b, nil)
			appendN(t, e, 20, 2)
			if n, _, err := e.repo.SoftDeleteMany(ctx, memcell.Scope{UserID: &bob}, "x"); err != nil || n == 0 {
				t.Fatalf("by user: %d, %v", n, err)
			}
			if n, _, err := e.repo.SoftDeleteMany(ctx, memcell.Scope{Start: &start, End: &end}, "y"); err != nil || n == 0 {
				t.Fatalf("by range: %d, %v", n, err)
			}
			e.assertMirrored(t, "after bulk soft deletes")
		})
		t.Run("hard delete by time range removes the KV copies", func(t *testing.T) {
			e := newEnv(t, b, nil)
			appendN(t, e, 10, 3)
			n, _, err := e.repo.HardDeleteMany(ctx, memcell.Scope{Start: &start, End: &end})
			if err != nil || n != 10 {
				t.Fatalf("HardDeleteMany = %d, %v", n, err)
			}
			if st, _ := e.repo.KVStats(ctx); st.EntryCount != 0 {
				t.Errorf("KV still holds %d entries", st.EntryCount)
			}
		})
		t.Run("restore by time range returns the real count", func(t *testing.T) {
			e := newEnv(t, b, nil)
			appendN(t, e, 10, 4)
			if _, _, err := e.repo.SoftDeleteMany(ctx, memcell.Scope{Start: &start, End: &end}, ""); err != nil {
				t.Fatal(err)
			}
			n, _, err := e.repo.RestoreMany(ctx, memcell.Scope{Start: &start, End: &end})
			if err != nil || n != 10 {
				t.Fatalf("RestoreMany = %d, %v; want 10", n, err)
			}
			e.assertMirrored(t, "after restore by range")
		})
		t.Run("soft delete keeps the KV copy and restore finds it", func(t *testing.T) {
			e := newEnv(t, b, nil)
			m := appendN(t, e, 1, 5)[0]
			if _, _, err := e.repo.SoftDelete(ctx, m.ID, ""); err != nil {
				t.Fatal(err)
			}
			v, err := e.kv.Store.Get(ctx, e.repo.Key(m.ID))
			if err != nil || !strings.Contains(string(v), `"deleted_at":"`) {
				t.Fatalf("KV copy after soft delete = %.80s…, %v; want the copy with deleted_at set", v, err)
			}
			if _, _, err := e.repo.Restore(ctx, m.ID); err != nil {
				t.Fatal(err)
			}
			got, val, err := e.repo.Get(ctx, m.ID)
			if err != nil || got == nil || val.Outcome != mirror.Consistent {
				t.Fatalf("Get after restore = %v, %+v", err, val)
			}
		})
		t.Run("concurrent updates leave the newest state in the KV", func(t *testing.T) {
			e := newEnv(t, b, nil)
			m := appendN(t, e, 1, 6)[0]
			e.concurrentUpdates(t, m.ID, 8, 10)
			e.assertMirrored(t, "after concurrent updates")
			if got, _ := e.primary.Lookup(ctx, m.ID); got.Revision != 81 {
				t.Errorf("revision = %d, want 81", got.Revision)
			}
		})
		t.Run("stats count bytes, not characters", func(t *testing.T) {
			e := newEnv(t, b, nil)
			r := rand.New(rand.NewPCG(7, 7))
			m := memcelltest.NewMemCell(r, 0)
			m.Summary = ptr("日本語 🧠")
			stored, _, err := e.repo.Append(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := memcell.Encode(stored)
			st, err := e.repo.KVStats(ctx)
			if err != nil || st.EntryCount != 1 || st.TotalSizeBytes != int64(len(want)) {
				t.Errorf("KVStats = %+v, %v; want 1 entry of %d bytes", st, err, len(want))
			}
		})
	})
}

func TestErrorPolicy(t *testing.T) {
	ctx := context.Background()

	t.Run("kv write fails", func(t *testing.T) {
		e := newEnv(t, memory(), nil)
		e.kv.FailWrites.Store(true)
		m, mir, err := e.repo.Append(ctx, memcelltest.NewMemCell(rand.New(rand.NewPCG(8, 8)), 0))
		if err != nil {
			t.Fatalf("Append failed although only the KV did: %v", err)
		}
		if mir.Status != mirror.MirrorFailed || !errors.Is(mir.Err, memcelltest.ErrInjected) {
			t.Errorf("Mirror = %+v, want failed with the KV error", mir)
		}
		if _, err := e.primary.Get(ctx, m.ID); err != nil {
			t.Errorf("MongoDB lost the document: %v", err)
		}
		_, mir, err = e.repo.Update(ctx, m.ID, map[string]any{"summary": "x"})
		if err != nil || mir.Status != mirror.MirrorFailed {
			t.Errorf("Update = %+v, %v", mir, err)
		}
		if _, mir, err = e.repo.HardDelete(ctx, m.ID); err != nil || mir.Status != mirror.MirrorFailed {
			t.Errorf("HardDelete = %+v, %v", mir, err)
		}
		// The three failed writes: Append's and Update's puts, HardDelete's
		// delete.
		memcelltest.AssertMetrics(t, e.reg, `
# HELP memcell_kv_write_failures_total KV writes that failed after the primary write succeeded; each key is recorded for repair.
# TYPE memcell_kv_write_failures_total counter
memcell_kv_write_failures_total{backend="memory",op="batch_delete"} 0
memcell_kv_write_failures_total{backend="memory",op="batch_put"} 0
memcell_kv_write_failures_total{backend="memory",op="delete"} 1
memcell_kv_write_failures_total{backend="memory",op="put"} 2
`)
		if n := len(e.logs.Lines(`"level":"WARN"`, "kv write failed")); n != 3 {
			t.Errorf("%d WARN lines for 3 failed writes:\n%s", n, e.logs)
		}
		pending, err := e.repo.Pending(ctx)
		if err != nil || len(pending) != 1 || pending[0] != m.ID {
			t.Errorf("Pending = %v, %v; want [%v]", pending, err, m.ID)
		}
	})

	t.Run("kv read fails during validation", func(t *testing.T) {
		e := newEnv(t, memory(), nil)
		docs := appendN(t, e, 3, 9)
		e.kv.FailReads.Store(true)
		e.kv.FailBatchReads.Store(true)
		got, v, err := e.repo.Get(ctx, docs[0].ID)
		if err != nil || got.ID != docs[0].ID || v.Outcome != mirror.Errored {
			t.Fatalf("Get = %v, %+v, %v; want MongoDB data and outcome error", got, v, err)
		}
		m, bv, err := e.repo.GetMany(ctx, []memcell.ID{docs[0].ID, docs[1].ID}, nil, mirror.Validate(true))
		if err != nil || len(m) != 2 || bv.Outcome != mirror.Errored {
			t.Fatalf("GetMany = %d, %+v, %v", len(m), bv, err)
		}
		// The two failed reads: Get's, and GetMany's batch read.
		memcelltest.AssertMetrics(t, e.reg, `
# HELP memcell_kv_read_failures_total KV reads for validation that failed; the primary's data was returned.
# TYPE memcell_kv_read_failures_total counter
memcell_kv_read_failures_total{backend="memory",op="batch_get"} 1
memcell_kv_read_failures_total{backend="memory",op="get"} 1
`)
		if n := len(e.logs.Lines(`"level":"WARN"`, "read failed during validation")); n != 2 {
			t.Errorf("%d WARN lines for 2 failed reads", n)
		}
	})

	t.Run("kv copy missing", func(t *testing.T) {
		e := newEnv(t, memory(), nil)
		m := appendN(t, e, 1, 10)[0]
		if _, err := e.kv.Store.Delete(ctx, e.repo.Key(m.ID), kv.MaxRev); err != nil {
			t.Fatal(err)
		}
		got, v, err := e.repo.Get(ctx, m.ID)
		if err != nil || got == nil || v.Outcome != mirror.Missing {
			t.Fatalf("Get = %+v, %v; want outcome missing", v, err)
		}
		if len(e.logs.Lines(`"level":"WARN"`, "kv copy missing", m.ID.String())) != 1 {
			t.Errorf("no WARN line for the missing copy:\n%s", e.logs)
		}
		memcelltest.AssertMetrics(t, e.reg, `
# HELP memcell_validations_total Validation outcomes of reads (consistent, inconsistent, missing, error, skipped, pending).
# TYPE memcell_validations_total counter
memcell_validations_total{backend="memory",outcome="consistent"} 0
memcell_validations_total{backend="memory",outcome="error"} 0
memcell_validations_total{backend="memory",outcome="inconsistent"} 0
memcell_validations_total{backend="memory",outcome="missing"} 1
memcell_validations_total{backend="memory",outcome="pending"} 0
memcell_validations_total{backend="memory",outcome="skipped"} 0
`)
	})

	t.Run("copies differ", func(t *testing.T) {
		e := newEnv(t, memory(), nil)
		m := appendN(t, e, 1, 11)[0]
		other := *m
		other.Summary = ptr("tampered")
		val, _ := memcell.Encode(&other)
		if _, err := e.kv.Store.Put(ctx, kv.Entry{Key: e.repo.Key(m.ID), Value: val, Rev: uint64(m.Revision)}); err != nil {
			t.Fatal(err)
		}
		got, v, err := e.repo.Get(ctx, m.ID)
		if err != nil || *got.Summary != *m.Summary {
			t.Fatalf("Get returned %v, %v; want MongoDB's data", got.Summary, err)
		}
		if v.Outcome != mirror.Inconsistent || len(v.Diffs) != 1 || v.Diffs[0].Path != "summary" {
			t.Fatalf("validation = %+v, want one difference in summary", v)
		}
		lines := e.logs.Lines(`"level":"ERROR"`, "[DATA_INCONSISTENCY] event_id="+m.ID.String())
		if len(lines) != 1 || !strings.Contains(lines[0], `summary: primary`) || !strings.Contains(lines[0], "tampered") {
			t.Errorf("inconsistency log lines:\n%s", strings.Join(lines, "\n"))
		}
		memcelltest.AssertMetrics(t, e.reg, `
# HELP memcell_data_inconsistencies_total Validated reads whose KV copy differed from the primary.
# TYPE memcell_data_inconsistencies_total counter
memcell_data_inconsistencies_total{backend="memory",op="batch_get"} 0
memcell_data_inconsistencies_total{backend="memory",op="get"} 1
`)
		_, bv, err := e.repo.GetMany(ctx, []memcell.ID{m.ID}, nil, mirror.Validate(true))
		if err != nil || bv.Outcome != mirror.Inconsistent || bv.PerID[m.ID].Outcome != mirror.Inconsistent {
			t.Errorf("batch validation = %+v, %v", bv, err)
		}
	})

	t.Run("primary fails: nothing reaches the KV", func(t *testing.T) {
		e := newEnv(t, memory(), nil)
		m := appendN(t, e, 1, 12)[0]
		writes := e.kv.Writes.Load()
		if _, _, err := e.repo.Update(ctx, memcell.NewID(), map[string]any{"summary": "x"}); !errors.Is(err, memcell.ErrNotFound) {
			t.Errorf("Update(absent) = %v", err)
		}
		if _, _, err := e.repo.Update(ctx, m.ID, map[string]any{"timestamp": "never"}); !errors.Is(err, memcell.ErrInvalid) {
			t.Errorf("Update(bad input) = %v", err)
		}
		if _, _, err := e.repo.Append(ctx, &memcell.MemCell{}); !errors.Is(err, memcell.ErrInvalid) {
			t.Errorf("Append(bad input) = %v", err)
		}
		// A primary that has gone away.
		gone, err := mongostore.Connect(ctx, memcelltest.URI(t), strings.Split(e.primary.Namespace(), ".")[0], &mongostore.Options{SkipIndexes: true})
		if err != nil {
			t.Fatal(err)
		}
		repo, err := mirror.New(gone, e.kv, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := gone.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := repo.Append(ctx, memcelltest.NewMemCell(rand.New(rand.NewPCG(1, 1)), 0)); err == nil {
			t.Error("Append through a closed primary succeeded")
		}
		if _, _, err := repo.Update(ctx, m.ID, map[string]any{"summary": "y"}); err == nil {
			t.Error("Update through a closed primary succeeded")
		}
		if _, _, err := repo.HardDelete(ctx, m.ID); err == nil {
			t.Error("HardDelete through a closed primary succeeded")
		}
		if got := e.kv.Writes.Load(); got != writes {
			t.Errorf("%d KV writes happened for failed primary operations", got-writes)
		}
	})
}

// TestMetricLint exercises the mirror's metrics and lints every one it
// registers.
func TestMetricLint(t *testing.T) {
	e := newEnv(t, memory(), nil)
	ctx := context.Background()
	docs := appendN(t, e, 3, 13)
	ids := []memcell.ID{docs[0].ID, docs[1].ID}
	if _, _, err := e.repo.Get(ctx, docs[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.repo.GetMany(ctx, ids, nil, mirror.Validate(true)); err != nil {
		t.Fatal(err)
	}
	bob := "bob"
	if _, _, err := e.repo.SoftDeleteMany(ctx, memcell.Scope{UserID: &bob}, "lint"); err != nil {
		t.Fatal(err)
	}
	e.kv.FailWrites.Store(true)
	if _, _, err := e.repo.HardDelete(ctx, docs[2].ID); err != nil {
		t.Fatal(err)
	}
	memcelltest.AssertLint(t, e.reg,
		"memcell_data_inconsistencies_total",
		"memcell_kv_operations_total",
		"memcell_kv_read_failures_total",
		"memcell_kv_read_latency_seconds",
		"memcell_kv_write_failures_total",
		"memcell_kv_write_latency_seconds",
		"memcell_validations_total",
	)
}

// TestRecreateAfterHardDelete re-creates a hard-deleted document under its
// id: the primary starts it above the deleted revision, so the delete's
// tombstone admits its copy at once.
func TestRecreateAfterHardDelete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b memcelltest.KVBackend) {
		e := newEnv(t, b, nil)
		ctx := context.Background()
		m := memcelltest.NewMemCell(rand.New(rand.NewPCG(50, 50)), 0)
		m.ID = memcell.NewID() // chosen by the client
		first, mir, err := e.repo.Append(ctx, m)
		if err != nil || mir.Status != mirror.MirrorOK {
			t.Fatalf("Append = %+v, %v", mir, err)
		}
		if _, _, err := e.repo.Update(ctx, m.ID, map[string]any{"summary": "before the delete"}); err != nil {
			t.Fatal(err)
		}
		if ok, mir, err := e.repo.HardDelete(ctx, m.ID); !ok || err != nil || mir.Status != mirror.MirrorOK {
			t.Fatalf("HardDelete = %v, %+v, %v", ok, mir, err)
		}
		again, mir, err := e.repo.Append(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if mir.Status != mirror.MirrorOK || again.Revision <= first.Revision+1 {
			t.Errorf("re-created: mirror %+v, revision %d; want ok and above the deleted revision %d", mir, again.Revision, first.Revision+1)
		}
		if _, v, err := e.repo.Get(ctx, m.ID); err != nil || v.Outcome != mirror.Consistent {
			t.Errorf("Get of the re-created document: %s, %v; want consistent", v.Outcome, err)
		}
		e.assertMirrored(t, "after the re-creation")
	})
}

// failingBulk is a primary whose bulk operations do their work and then
// report an error, as an operation that failed part-way does.
type failingBulk struct {
	mirror.Primary
}

var errPartWay = errors.New("connection lost part-way")

func (p failingBulk) SoftDeleteMany(ctx context.Context, sc memcell.Scope, by string) (memcell.BulkResult, error) {
	res, err := p.Primary.SoftDeleteMany(ctx, sc, by)
	if err != nil {
		return res, err
	}
	return res, errPartWay
}

func (p failingBulk) HardDeleteMany(ctx context.Context, sc memcell.Scope) (memcell.BulkResult, error) {
	res, err := p.Primary.HardDeleteMany(ctx, sc)
	if err != nil {
		return res, err
	}
	return res, errPartWay
}

func (p failingBulk) RestoreMany(ctx context.Context, sc memcell.Scope) (memcell.BulkResult, error) {
	res, err := p.Primary.RestoreMany(ctx, sc)
	if err != nil {
		return res, err
	}
	// The changes were made, but only the first document was read back.
	res.Docs = res.Docs[:1]
	return res, errPartWay
}

// TestBulkFailedPartWay checks that a bulk operation that fails after
// changing documents still mirrors those it can name, and says how many it
// could not.
func TestBulkFailedPartWay(t *testing.T) {
	e := newEnv(t, memory(), nil)
	ctx := context.Background()
	user := "bulk-user"
	r := rand.New(rand.NewPCG(40, 40))
	for range 3 {
		m := memcelltest.NewMemCell(r, 0)
		m.UserID = &user
		if _, _, err := e.repo.Append(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := mirror.New(failingBulk{e.primary}, e.kv, &mirror.Options{Logger: slog.New(slog.NewJSONHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := repo.SoftDeleteMany(ctx, memcell.Scope{UserID: &user}, "tester"); !errors.Is(err, errPartWay) {
		t.Fatalf("SoftDeleteMany = %v, want the primary's error", err)
	}
	e.assertMirrored(t, "after a soft delete that failed part-way")

	if _, _, err := repo.RestoreMany(ctx, memcell.Scope{UserID: &user}); !errors.Is(err, errPartWay) {
		t.Fatalf("RestoreMany = %v, want the primary's error", err)
	}
	if got := e.logs.Lines("could not be mirrored", `"unknown":`); len(got) != 1 {
		t.Errorf("ERROR lines about unnamed documents: %q, want one", got)
	}

	// A hard delete that fails part-way must not leave the copies of the
	// documents it removed.
	if _, _, err := repo.HardDeleteMany(ctx, memcell.Scope{UserID: &user}); !errors.Is(err, errPartWay) {
		t.Fatalf("HardDeleteMany = %v, want the primary's error", err)
	}
	e.assertMirrored(t, "after a hard delete that failed part-way")
}
