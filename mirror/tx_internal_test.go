package mirror

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/memcelltest"
)

// TestHeldDeletesKeepRevisions checks that a committed transaction's held
// deletes reach the KV with the revisions they were made with: the
// tombstone of a hard delete refuses that revision and admits a newer one,
// and a bulk delete's refuses every put. The primary is not needed (nor
// transactions, which the test primary may not have): the deletes are held
// and applied as WithTransaction would.
func TestHeldDeletesKeepRevisions(t *testing.T) {
	store := memcelltest.KVBackends()[0].Open(t, 0)
	r, err := New(nil, store, &Options{Registerer: prometheus.NewRegistry(), Flags: &Flags{Mirroring: true, Validation: ValidationOn, Mode: ModeSync}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	one, many, other := memcell.NewID(), memcell.NewID(), memcell.NewID()
	for _, id := range []memcell.ID{one, many, other} {
		if ok, err := store.Put(ctx, kv.Entry{Key: r.Key(id), Value: []byte("v"), Rev: 3}); err != nil || !ok {
			t.Fatalf("Put = %v, %v", ok, err)
		}
	}
	buf := &txBuffer{}
	tctx := context.WithValue(ctx, txKey{}, buf)
	if mir := r.mirrorDeletes(tctx, "hard_delete", []memcell.ID{one}, []uint64{4}, memcell.ID{}); mir.Status != MirrorDeferred {
		t.Fatalf("held delete = %+v, want deferred", mir)
	}
	if mir := r.mirrorDeletes(tctx, "hard_delete_many", []memcell.ID{many}, nil, memcell.ID{}); mir.Status != MirrorDeferred {
		t.Fatalf("held bulk delete = %+v, want deferred", mir)
	}
	// A delete of a revision older than the copy's: the copy survives.
	if mir := r.mirrorDeletes(tctx, "hard_delete", []memcell.ID{other}, []uint64{2}, memcell.ID{}); mir.Status != MirrorDeferred {
		t.Fatalf("held delete = %+v, want deferred", mir)
	}
	if mir := r.applyHeld(ctx, buf.ops); mir.Status != MirrorOK || mir.Written != 3 {
		t.Fatalf("applyHeld = %+v, want ok, 3 written", mir)
	}
	for _, tc := range []struct {
		id   memcell.ID
		rev  uint64
		want bool
	}{
		{one, 4, false},
		{one, 5, true},
		{many, 1 << 62, false},
		{many, kv.MaxRev, false},
	} {
		if ok, err := store.Put(ctx, kv.Entry{Key: r.Key(tc.id), Value: []byte("late"), Rev: tc.rev}); err != nil || ok != tc.want {
			t.Errorf("Put(rev %d) after the held delete = %v, %v; want %v", tc.rev, ok, err, tc.want)
		}
	}
	if v, err := store.Get(ctx, r.Key(other)); err != nil || string(v) != "v" {
		t.Errorf("Get of the copy a held older delete met = %q, %v; want v", v, err)
	}
}
