package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/reconcile"
)

// TestRepairBesideLiveTraffic runs a repair of a damaged mirror while
// writers update, soft-delete, restore, hard-delete and append through the
// mirror. Once the writers stop, verify must find nothing: the repair's
// guarded writes never replaced a newer copy and its deletes never removed
// a live document's copy (docs/architecture.md#invariants).
func TestRepairBesideLiveTraffic(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	for _, backend := range memcelltest.KVBackends() {
		t.Run(backend.Name, func(t *testing.T) {
			t.Logf("seed %d", seed)
			ctx := context.Background()
			e := newEnv(t, backend, 0)
			e.append(t, 200) // the writers make revisions and deletion marks
			// Damage: every 20th document changed behind the mirror's
			// back, a few hard-deleted from the primary only.
			for i, m := range e.docs {
				var err error
				switch {
				case i%25 == 1:
					_, err = e.primary.HardDelete(ctx, m.ID)
				case i%20 == 0:
					_, err = e.primary.Update(ctx, m.ID, map[string]any{"summary": "behind"})
				}
				if err != nil {
					t.Fatal(err)
				}
			}

			var (
				stop   atomic.Bool
				wg     sync.WaitGroup
				ops    atomic.Int64
				werrMu sync.Mutex
				werr   error
			)
			for w := range 4 {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(seed, uint64(w)))
					for !stop.Load() {
						if err := liveOp(ctx, e, r); err != nil {
							werrMu.Lock()
							werr = fmt.Errorf("writer %d: %w", w, err)
							werrMu.Unlock()
							return
						}
						ops.Add(1)
					}
				})
			}
			opts := e.opts()
			opts.BatchSize = 10
			opts.Rate = 250
			r, err := reconcile.Repair(ctx, e.primary, e.kv, opts)
			stop.Store(true)
			wg.Wait()
			if werr != nil {
				t.Fatal(werr)
			}
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			t.Logf("repair: %d scanned, differences %v, %d repaired, %d unrepaired; %d live operations meanwhile",
				r.Scanned, r.Differences, r.Repaired, r.Unrepaired, ops.Load())
			if ops.Load() < 10 {
				t.Errorf("only %d live operations ran beside the repair", ops.Load())
			}
			e.assertConsistent(t, "after a repair beside live traffic")
		})
	}
}

// liveOp makes one random change through the mirror. Changes of documents
// that are gone or in the wrong state are not errors.
func liveOp(ctx context.Context, e *env, r *rand.Rand) error {
	id := e.docs[r.IntN(len(e.docs))].ID
	var err error
	switch n := r.IntN(20); {
	case n < 10:
		_, _, err = e.repo.Update(ctx, id, map[string]any{"summary": fmt.Sprintf("live %d", r.Int())})
	case n < 14:
		_, _, err = e.repo.SoftDelete(ctx, id, "live")
	case n < 18:
		_, _, err = e.repo.Restore(ctx, id)
	case n < 19:
		_, _, err = e.repo.HardDelete(ctx, id)
	default:
		_, _, err = e.repo.Append(ctx, memcelltest.NewMemCell(r, 1024))
	}
	if errors.Is(err, memcell.ErrNotFound) {
		err = nil
	}
	return err
}
