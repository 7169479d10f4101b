package reconcile_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/reconcile"
)

// TestCheckpointResume interrupts a repair, in its primary pass and in its
// KV pass, and runs it again with the same checkpoint: the second run
// resumes, reads fewer documents, and the combined report and the final
// state are those of one uninterrupted repair.
func TestCheckpointResume(t *testing.T) {
	for _, phase := range []string{"primary", "kv"} {
		t.Run(phase, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, memcelltest.KVBackends()[0], 0)
			e.populate(t, 200)
			// Damage at the start, the middle and the end of the _id order.
			byID := slices.Clone(e.docs)
			slices.SortFunc(byID, func(a, b *memcell.MemCell) int { return bytes.Compare(a.ID[:], b.ID[:]) })
			for _, i := range []int{10, 190} {
				for ; ; i++ { // the first live document from there
					_, err := e.primary.Update(ctx, byID[i].ID, map[string]any{"summary": "behind"})
					if err == nil {
						break
					}
					if !errors.Is(err, memcell.ErrNotFound) {
						t.Fatal(err)
					}
				}
			}
			if _, err := e.primary.HardDelete(ctx, byID[100].ID); err != nil {
				t.Fatal(err)
			}
			wantCounts := map[reconcile.Kind]int64{reconcile.Stale: 2, reconcile.Extra: 1}
			path := filepath.Join(t.TempDir(), "repair.checkpoint")

			// First run: 100 documents a second, cancelled from the first
			// progress report of the phase after 60 documents or keys of
			// it. (Progress comes every second.)
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var at atomic.Int64
			opts := e.opts()
			opts.Checkpoint, opts.BatchSize, opts.Rate = path, 20, 100
			reconcile.SetCheckpointLag(opts, 100*time.Millisecond)
			opts.Progress = func(p reconcile.Progress) {
				n := p.Scanned
				if phase == "kv" {
					n = p.KVScanned
				}
				if p.Phase == phase && n >= 60 && at.Load() == 0 {
					at.Store(p.Scanned + p.KVScanned)
					cancel()
				}
			}
			r1, err := reconcile.Repair(cctx, e.primary, e.kv, opts)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted Repair: %v, want context.Canceled", err)
			}
			if r1 == nil || r1.Resumed {
				t.Fatalf("interrupted Repair report = %+v", r1)
			}
			t.Logf("cancelled in phase %s after %d documents and keys", phase, at.Load())
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("no checkpoint after an interrupted run: %v", err)
			}

			// Second run: resumes.
			reg := prometheus.NewRegistry()
			opts = e.opts()
			opts.Registerer, opts.Checkpoint, opts.BatchSize = reg, path, 20
			var last reconcile.Progress
			opts.Progress = func(p reconcile.Progress) { last = p }
			r2, err := reconcile.Repair(ctx, e.primary, e.kv, opts)
			if err != nil {
				t.Fatalf("resumed Repair: %v", err)
			}
			counter, err := reconcile.ScannedCounter(reg, "repair")
			if err != nil {
				t.Fatal(err)
			}
			scanned := testutil.ToFloat64(counter)
			t.Logf("second run read %v primary documents; report %+v", scanned, r2)
			if !r2.Resumed {
				t.Error("the second run did not resume")
			}
			if scanned > 199-20 {
				t.Errorf("the second run read %v primary documents, want at most 179 (the first run finished at least one batch of 20)", scanned)
			}
			if phase == "kv" && scanned != 0 {
				t.Errorf("resumed in the KV pass, the second run read %v primary documents, want 0", scanned)
			}
			if r2.Scanned != 199 || r2.KVScanned < 199 {
				t.Errorf("combined report: %d scanned, %d KV keys scanned; want 199, >= 199", r2.Scanned, r2.KVScanned)
			}
			if diff := cmp.Diff(counts(r2), wantCounts); diff != "" {
				t.Errorf("combined counts (-got +want):\n%s", diff)
			}
			if r2.Repaired != 3 || len(r2.Samples) != 3 {
				t.Errorf("combined report: %d repaired, %d samples; want 3, 3", r2.Repaired, len(r2.Samples))
			}
			if last.Scanned != r2.Scanned || last.Repaired != r2.Repaired || last.Differences != 3 {
				t.Errorf("last progress %+v does not match the report", last)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("checkpoint left after success: %v", err)
			}
			e.assertConsistent(t, "after the resumed repair")
		})
	}
}

// TestCheckpointRefused checks that a checkpoint is resumed only by the
// same kind of job on the same stores, and that an unreadable one is an
// error, not a silent fresh start.
func TestCheckpointRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, memcelltest.KVBackends()[0], 0)
	e.populate(t, 30)
	path := filepath.Join(t.TempDir(), "cp")

	cctx, cancel := context.WithCancel(ctx)
	opts := e.opts()
	opts.Checkpoint, opts.BatchSize, opts.Rate = path, 5, 10
	// Cancel once a checkpoint has been written: a cancel before the first
	// batch leaves nothing to refuse.
	opts.Progress = func(reconcile.Progress) {
		if _, err := os.Stat(path); err == nil {
			cancel()
		}
	}
	if _, err := reconcile.Verify(cctx, e.primary, e.kv, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify: %v, want context.Canceled", err)
	}
	opts = e.opts()
	opts.Checkpoint = path
	for name, run := range map[string]func() error{
		"repair":  func() error { _, err := reconcile.Repair(ctx, e.primary, e.kv, opts); return err },
		"dry run": func() error { _, err := reconcile.Repair(ctx, e.primary, e.kv, dryRun(opts)); return err },
		"sync":    func() error { _, err := reconcile.Sync(ctx, e.primary, e.kv, opts); return err },
		"other prefix": func() error {
			o := *opts
			o.KeyPrefix = ptr("x:")
			_, err := reconcile.Verify(ctx, e.primary, e.kv, &o)
			return err
		},
	} {
		if err := run(); err == nil || !strings.Contains(err.Error(), "checkpoint") {
			t.Errorf("%s with a verify checkpoint: %v, want a checkpoint error", name, err)
		}
	}
	r, err := reconcile.Verify(ctx, e.primary, e.kv, opts)
	if err != nil || !r.Resumed || r.Scanned != 30 {
		t.Fatalf("Verify resuming its own checkpoint: %+v, %v", r, err)
	}

	if err := os.WriteFile(path, []byte("{trunc"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := reconcile.Verify(ctx, e.primary, e.kv, opts); err == nil || !strings.Contains(err.Error(), "unreadable") {
		t.Errorf("Verify with a corrupt checkpoint: %v, want an unreadable-checkpoint error", err)
	}
}
