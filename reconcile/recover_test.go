package reconcile_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mongostore"
	"github.com/memcell/memcell/reconcile"
)

// primaryState returns the canonical encoding of every document of the
// primary, by id, without the write intents (which recover does not write).
func (e *env) primaryState(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for m, err := range e.primary.Scan(context.Background(), false, memcell.ID{}, 100) {
		if err != nil {
			t.Fatal(err)
		}
		m.Intent = memcell.ID{}
		b, err := memcell.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		out[m.ID.String()] = string(b)
	}
	return out
}

// TestRecover drops the primary's documents and brings them back from the
// KV on every backend: exactly as they were, soft-deleted ones still
// soft-deleted, hard-deleted ones (a KV tombstone, or only a grave in the
// primary) never; a dry run writes nothing; a document the primary holds
// at a lower revision is replaced only with OverwriteOlder.
func TestRecover(t *testing.T) {
	for _, backend := range memcelltest.KVBackends() {
		t.Run(backend.Name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, backend, 0)
			e.populate(t, 40)
			// Hard-deleted through the mirror: a tombstone in the KV.
			if _, _, err := e.repo.HardDelete(ctx, e.docs[0].ID); err != nil {
				t.Fatal(err)
			}
			// Hard-deleted in the primary only: the copy stays, the grave
			// keeps it out.
			buried := e.docs[1].ID
			if _, err := e.primary.HardDelete(ctx, buried); err != nil {
				t.Fatal(err)
			}
			before := e.primaryState(t)
			if len(before) != 38 {
				t.Fatalf("primary holds %d documents, want 38", len(before))
			}
			opts := e.opts()

			r, err := reconcile.Recover(ctx, e.primary, e.kv, opts)
			if err != nil {
				t.Fatalf("Recover: %v", err)
			}
			if r.Job != "recover" || r.KVScanned != 39 || r.Repaired != 0 || r.SkippedPresent != 38 || r.SkippedGrave != 1 || r.DifferenceCount() != 0 {
				t.Errorf("Recover with nothing lost = %+v, want 39 scanned, 38 present, 1 grave, nothing recovered", r)
			}

			coll := memcelltest.Collection(t, e.primary.Namespace())
			if _, err := coll.DeleteMany(ctx, bson.D{}); err != nil {
				t.Fatal(err)
			}
			r, err = reconcile.Recover(ctx, e.primary, e.kv, dryRun(opts))
			if err != nil {
				t.Fatalf("Recover dry run: %v", err)
			}
			if diff := cmp.Diff(counts(r), map[reconcile.Kind]int64{reconcile.Lost: 38}); diff != "" || !r.DryRun || r.Repaired != 0 || r.SkippedGrave != 1 {
				t.Errorf("dry run: %+v (-got +want kinds):\n%s", r, diff)
			}
			if got := e.primaryState(t); len(got) != 0 {
				t.Fatalf("the dry run wrote %d documents", len(got))
			}

			r, err = reconcile.Recover(ctx, e.primary, e.kv, opts)
			if err != nil {
				t.Fatalf("Recover: %v", err)
			}
			if r.Repaired != 38 || r.SkippedGrave != 1 || r.SkippedPresent != 0 || r.Differences[reconcile.Lost] != 38 {
				t.Errorf("Recover after the drop = %+v, want 38 recovered, 1 grave", r)
			}
			if diff := cmp.Diff(e.primaryState(t), before); diff != "" {
				t.Errorf("recovered primary (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(found(e.verify(t, nil)), []string{"extra " + buried.String()}); diff != "" {
				t.Errorf("verify after recover (-got +want):\n%s", diff)
			}

			// The primary at a lower revision: replaced with
			// OverwriteOlder only.
			older := e.docs[2].ID
			if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: bson.ObjectID(older)}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "summary", Value: "old"}, {Key: memcell.RevisionField, Value: int64(0)}}}}); err != nil {
				t.Fatal(err)
			}
			if r, err = reconcile.Recover(ctx, e.primary, e.kv, opts); err != nil || r.Repaired != 0 || r.SkippedPresent != 38 {
				t.Errorf("Recover without OverwriteOlder = %+v, %v; want nothing recovered", r, err)
			}
			over := *opts
			over.OverwriteOlder = true
			if r, err = reconcile.Recover(ctx, e.primary, e.kv, &over); err != nil || r.Repaired != 1 || r.Differences[reconcile.Behind] != 1 {
				t.Errorf("Recover with OverwriteOlder = %+v, %v; want 1 behind recovered", r, err)
			}
			if diff := cmp.Diff(e.primaryState(t), before); diff != "" {
				t.Errorf("primary after OverwriteOlder (-got +want):\n%s", diff)
			}
		})
	}
}

// TestRecoverCheckpoint resumes an interrupted recover after the last
// batch it finished, on a backend that scans in key order, and refuses a
// checkpoint on one that does not.
func TestRecoverCheckpoint(t *testing.T) {
	ctx := context.Background()
	backends := memcelltest.KVBackends()
	i := slices.IndexFunc(backends, func(b memcelltest.KVBackend) bool { return b.Name == "pebble" })
	e := newEnv(t, backends[i], 0)
	e.populate(t, 30)
	before := e.primaryState(t)
	coll := memcelltest.Collection(t, e.primary.Namespace())
	if _, err := coll.DeleteMany(ctx, bson.D{}); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(t.TempDir(), "recover.ckpt")
	opts := e.opts()
	opts.Checkpoint = ckpt
	reconcile.SetRecoverBatch(opts, 7)
	// The 10th recover fails: the first batch of 7 is done, 2 of the
	// second are written.
	if _, err := reconcile.Recover(ctx, &failingRecover{Store: e.primary, left: 9}, e.kv, opts); err == nil {
		t.Fatal("the failing recover did not fail")
	}
	r, err := reconcile.Recover(ctx, e.primary, e.kv, opts)
	if err != nil {
		t.Fatalf("resumed Recover: %v", err)
	}
	if !r.Resumed || r.Repaired != 28 || r.SkippedPresent != 2 || r.KVScanned != 30 {
		t.Errorf("resumed Recover = %+v, want resumed, 30 scanned, 28 recovered (7 before), 2 present (the first batch not read again)", r)
	}
	if diff := cmp.Diff(e.primaryState(t), before); diff != "" {
		t.Errorf("recovered primary (-got +want):\n%s", diff)
	}

	mem := newEnv(t, backends[0], 0)
	mem.kv = unordered{mem.kv}
	o := mem.opts()
	o.Checkpoint = filepath.Join(t.TempDir(), "c")
	if _, err := reconcile.Recover(ctx, mem.primary, mem.kv, o); err == nil || !strings.Contains(err.Error(), "key order") {
		t.Errorf("Recover with a checkpoint on an unordered backend = %v, want an error about key order", err)
	}
}

// failingRecover is a primary whose Recover fails once left calls have
// succeeded.
type failingRecover struct {
	*mongostore.Store
	left int
}

func (f *failingRecover) Recover(ctx context.Context, m *memcell.MemCell, replace bool) (bool, error) {
	if f.left == 0 {
		return false, errors.New("the primary went away")
	}
	f.left--
	return f.Store.Recover(ctx, m, replace)
}

// unordered is a KV store that says it does not scan in key order.
type unordered struct{ kv.Store }

func (u unordered) Capabilities() kv.Capabilities {
	c := u.Store.Capabilities()
	c.OrderedScan = false
	return c
}

// TestRecoverBesideLiveWrites makes live writes land between a recover's
// lookup of the primary and its own writes, where a recover beside live
// traffic meets them: a document re-created at a higher revision, an
// older one updated past its copy's revision, and an older one
// hard-deleted. Each live write stands: the recover writes none of the
// three. Verify then finds the copy of the document the other writer
// re-created in the primary alone stale, and the copy of the hard-deleted
// one extra: the mirror deletes it at the primary's revision, below the
// copy's.
func TestRecoverBesideLiveWrites(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, memcelltest.KVBackends()[0], 0)
	e.append(t, 3)
	recreated, updated, deleted := e.docs[0].ID, e.docs[1].ID, e.docs[2].ID
	coll := memcelltest.Collection(t, e.primary.Namespace())
	byID := func(id memcell.ID) bson.D { return bson.D{{Key: "_id", Value: bson.ObjectID(id)}} }
	lost, err := coll.FindOne(ctx, byID(recreated)).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := coll.DeleteOne(ctx, byID(recreated)); err != nil {
		t.Fatal(err)
	}
	// Two documents one revision behind their copies, as after a replica
	// set rolled back.
	for _, id := range []memcell.ID{updated, deleted} {
		if _, _, err := e.repo.Update(ctx, id, map[string]any{"summary": "second"}); err != nil {
			t.Fatal(err)
		}
		if _, err := coll.UpdateOne(ctx, byID(id), bson.D{{Key: "$set", Value: bson.D{
			{Key: "summary", Value: "rolled back"}, {Key: memcell.RevisionField, Value: int64(1)}}}}); err != nil {
			t.Fatal(err)
		}
	}

	var want map[string]string
	live := func() {
		// Another writer puts the lost document back, newer.
		var d bson.D
		if err := bson.Unmarshal(lost, &d); err != nil {
			t.Error(err)
			return
		}
		for i := range d {
			switch d[i].Key {
			case "summary":
				d[i].Value = "re-created"
			case memcell.RevisionField:
				d[i].Value = int64(5)
			}
		}
		if _, err := coll.InsertOne(ctx, d); err != nil {
			t.Error(err)
		}
		// Two updates take the rolled-back document past its copy.
		for _, s := range []string{"live 1", "live 2"} {
			if _, _, err := e.repo.Update(ctx, updated, map[string]any{"summary": s}); err != nil {
				t.Error(err)
			}
		}
		if ok, _, err := e.repo.HardDelete(ctx, deleted); !ok || err != nil {
			t.Errorf("HardDelete = %v, %v", ok, err)
		}
		want = e.primaryState(t)
	}

	opts := e.opts()
	opts.OverwriteOlder = true
	r, err := reconcile.Recover(ctx, &liveWrites{Store: e.primary, live: live}, e.kv, opts)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if r.Repaired != 0 || r.Differences[reconcile.Lost] != 1 || r.Differences[reconcile.Behind] != 2 {
		t.Errorf("Recover = %+v, want 1 lost and 2 behind found, none recovered", r)
	}
	if diff := cmp.Diff(e.primaryState(t), want); diff != "" {
		t.Errorf("the recover undid live writes (-got +want):\n%s", diff)
	}
	if _, ok := want[deleted.String()]; ok {
		t.Fatal("the live hard delete left its document")
	}
	if s := want[updated.String()]; !strings.Contains(s, "live 2") {
		t.Fatalf("the live update is not in the primary: %s", s)
	}
	if diff := cmp.Diff(found(e.verify(t, nil)), []string{"extra " + deleted.String(), "stale " + recreated.String()}); diff != "" {
		t.Errorf("verify after recover (-got +want):\n%s", diff)
	}
}

// liveWrites is a primary that runs live once, right after a recover first
// looks up which documents it has: writes that land between the recover's
// lookup and its own writes.
type liveWrites struct {
	*mongostore.Store
	live func()
	once sync.Once
}

func (l *liveWrites) LookupMany(ctx context.Context, ids []memcell.ID) (map[memcell.ID]*memcell.MemCell, error) {
	docs, err := l.Store.LookupMany(ctx, ids)
	l.once.Do(l.live)
	return docs, err
}

func (l *liveWrites) Existing(ctx context.Context, ids []memcell.ID) (map[memcell.ID]bool, error) {
	exist, err := l.Store.Existing(ctx, ids)
	l.once.Do(l.live)
	return exist, err
}
