package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
	"github.com/memcell/memcell/reconcile"
)

// unmirrored makes writes with mirroring switched off, which leave the KV
// behind and list their ids in the pending record: an update and a hard
// delete of mirrored documents, and an append. It returns how many ids it
// listed.
func (e *env) unmirrored(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	e.append(t, 2)
	if err := e.repo.SetFlags(mirror.Flags{Mirroring: false, Validation: mirror.ValidationOn}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.repo.Update(ctx, e.docs[0].ID, map[string]any{"summary": "while mirroring was off"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.repo.HardDelete(ctx, e.docs[1].ID); err != nil {
		t.Fatal(err)
	}
	e.append(t, 1)
	if err := e.repo.SetFlags(mirror.Flags{Mirroring: true, Validation: mirror.ValidationOn}); err != nil {
		t.Fatal(err)
	}
	return 3
}

// TestReplay drains the pending record on every backend: afterwards the KV
// equals the primary and the record is empty.
func TestReplay(t *testing.T) {
	for _, backend := range memcelltest.KVBackends() {
		t.Run(backend.Name, func(t *testing.T) {
			e := newEnv(t, backend, 0)
			n := e.unmirrored(t)
			if r := e.verify(t, nil); r.DifferenceCount() != 3 {
				t.Fatalf("before the replay verify found %v, want 3 differences", r.Differences)
			}
			res, err := reconcile.Replay(context.Background(), e.primary, e.kv, e.opts())
			if err != nil {
				t.Fatalf("Replay: %v", err)
			}
			if want := (reconcile.ReplayResult{Pending: n, Written: 2, Deleted: 1}); res != want {
				t.Errorf("Replay = %+v, want %+v", res, want)
			}
			e.assertConsistent(t, "after the replay")
			if got := pendingIDs(t, e); len(got) != 0 {
				t.Errorf("pending record after the replay: %v, want empty", got)
			}
		})
	}
}

// TestReplayer runs the background replayer: writes the KV missed are
// mirrored within a few intervals, the metrics count them, and Run ends
// with its context.
func TestReplayer(t *testing.T) {
	e := newEnv(t, memcelltest.KVBackends()[0], 0)
	r, err := reconcile.NewReplayer(e.primary, e.kv, &reconcile.ReplayerOptions{Interval: 20 * time.Millisecond, NoteAge: 20 * time.Millisecond, Options: reconcile.Options{Registerer: e.reg}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	e.unmirrored(t)
	deadline := time.Now().Add(20 * time.Second)
	for len(pendingIDs(t, e)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	e.assertConsistent(t, "after the replayer ran")
	// A copy may be written again, unchanged, by a later pass: a write's
	// pending records are replayed once they are NoteAge old, and a pass
	// clears only those.
	s := r.State()
	if s.Written < 2 || s.Deleted != 1 || s.Passes == 0 || s.Failures != 0 {
		t.Errorf("replayer state = %+v, want at least 2 written, 1 deleted, no failure", s)
	}
	memcelltest.AssertMetrics(t, e.reg, fmt.Sprintf(`
# HELP memcell_replayed_total KV copies the replayer wrote (result=written) or deleted (result=deleted) from the pending record.
# TYPE memcell_replayed_total counter
memcell_replayed_total{result="deleted"} 1
memcell_replayed_total{result="written"} %d
`, s.Written))
}

// TestReplayAfterCrash stands for a process killed between its primary
// writes and their KV writes: the writes are made on the primary alone, so
// nothing but their write intents (and a hard delete's note) says that the
// KV missed them. The replayer's first pass must bring the KV level with
// the primary and leave no trace behind, on every backend.
func TestReplayAfterCrash(t *testing.T) {
	for _, backend := range memcelltest.KVBackends() {
		t.Run(backend.Name, func(t *testing.T) {
			e := newEnv(t, backend, 0)
			e.populate(t, 12)
			ctx := context.Background()
			p := e.primary
			fresh := *e.docs[0]
			fresh.ID = memcell.ID{}
			steps := []func() error{
				func() error { _, err := p.Append(ctx, &fresh); return err },
				func() error { _, err := p.Update(ctx, e.docs[1].ID, map[string]any{"summary": "lost"}); return err },
				func() error { _, err := p.SoftDelete(ctx, e.docs[2].ID, "crash"); return err },
				func() error { _, err := p.HardDelete(ctx, e.docs[3].ID); return err },
				func() error {
					_, err := p.HardDeleteMany(ctx, memcell.Scope{UserID: e.docs[4].UserID})
					return err
				},
				func() error {
					_, err := p.SoftDeleteMany(ctx, memcell.Scope{UserID: e.docs[5].UserID}, "")
					return err
				},
			}
			for i, step := range steps {
				if err := step(); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			if r := e.verify(t, nil); r.DifferenceCount() == 0 {
				t.Fatal("the primary-only writes left no difference to replay")
			}
			r, err := reconcile.NewReplayer(p, e.kv, &reconcile.ReplayerOptions{Options: *e.opts()})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Pass(ctx); err != nil {
				t.Fatalf("Pass: %v", err)
			}
			if st := r.State(); st.Last.Intents == 0 {
				t.Errorf("the first pass found no write intents: %+v", st.Last)
			}
			e.assertConsistent(t, "after the replayer's first pass")
			if got := pendingIDs(t, e); len(got) != 0 {
				t.Errorf("pending record after the pass: %v, want empty", got)
			}
			if ids, err := p.Intents(ctx, time.Now().Add(time.Hour)); err != nil || len(ids) != 0 {
				t.Errorf("write intents after the pass: %v, %v; want none", ids, err)
			}
		})
	}
}
