package mirror_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
)

// TestIntentsCleared checks the life of write intents on every backend:
// after writes whose KV side is done, the clearer removes their intents and
// hard deletes' notes from the primary; after writes whose KV side failed,
// both stay for the replayer.
func TestIntentsCleared(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b memcelltest.KVBackend) {
		e := newEnv(t, b, &mirror.Options{ClearInterval: 10 * time.Millisecond})
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(3, 3))
		user := "intent-user"
		var ids []memcell.ID
		for range 4 {
			m := memcelltest.NewMemCell(rng, 512)
			m.UserID = &user
			got, mir, err := e.repo.Append(ctx, m)
			if err != nil || mir.Status != mirror.MirrorOK {
				t.Fatalf("Append = %v, %v", mir, err)
			}
			ids = append(ids, got.ID)
		}
		steps := []func() error{
			func() error { _, _, err := e.repo.Update(ctx, ids[0], map[string]any{"summary": "x"}); return err },
			func() error { _, _, err := e.repo.SoftDelete(ctx, ids[1], "t"); return err },
			func() error { _, _, err := e.repo.Restore(ctx, ids[1]); return err },
			func() error { _, _, err := e.repo.HardDelete(ctx, ids[2]); return err },
			func() error { _, _, err := e.repo.HardDelete(ctx, memcell.NewID()); return err }, // found nothing
			func() error { _, _, err := e.repo.SoftDeleteMany(ctx, memcell.Scope{UserID: &user}, ""); return err },
		}
		for i, step := range steps {
			if err := step(); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		e.waitTraces(t, 0, 0)

		e.kv.FailWrites.Store(true)
		if _, _, err := e.repo.Restore(ctx, ids[3]); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.repo.HardDelete(ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // ten clearer ticks
		e.waitTraces(t, 1, 2)
	})
}

// waitTraces waits up to 10 s for the primary to hold exactly intents
// documents with write intents and pending pending records.
func (e *env) waitTraces(t *testing.T, intents, pending int) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		marked, err := e.primary.Intents(ctx, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		noted, err := e.primary.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(marked) == intents && len(noted) == pending {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the primary holds %d write intents and %d pending records, want %d and %d", len(marked), len(noted), intents, pending)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
