package reconcile_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/reconcile"
)

// TestRate checks the rate limit as a lower bound on a job's time (upper
// bounds on time are never asserted).
func TestRate(t *testing.T) {
	e := newEnv(t, memcelltest.KVBackends()[0], 0)
	e.populate(t, 100)
	opts := e.opts()
	opts.Rate = 200
	start := time.Now()
	if _, err := reconcile.Sync(context.Background(), e.primary, e.kv, opts); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("Sync of 100 documents at 200/s took %v, want at least 0.4s", d)
	}
	// Verify reads 100 documents and then 100 KV keys.
	start = time.Now()
	e.verify(t, opts)
	if d := time.Since(start); d < 800*time.Millisecond {
		t.Errorf("Verify of 100 documents and keys at 200/s took %v, want at least 0.8s", d)
	}
}

func TestOptionsRefused(t *testing.T) {
	e := newEnv(t, memcelltest.KVBackends()[0], 0)
	for name, o := range map[string]reconcile.Options{
		"negative batch":    {BatchSize: -1},
		"huge batch":        {BatchSize: 1 << 30},
		"negative rate":     {Rate: -1},
		"NaN rate":          {Rate: math.NaN()},
		"infinite rate":     {Rate: math.Inf(1)},
		"no checkpoint dir": {Checkpoint: filepath.Join(t.TempDir(), "absent", "cp")},
		"checkpoint is dir": {Checkpoint: t.TempDir()},
		"dry-run verify":    {DryRun: true},
		"overwrite verify":  {OverwriteOlder: true},
	} {
		if r, err := reconcile.Verify(context.Background(), e.primary, e.kv, &o); err == nil {
			t.Errorf("%s: Verify = %+v, want an error", name, r)
		}
	}
	if _, err := reconcile.Verify(context.Background(), nil, e.kv, nil); err == nil {
		t.Error("Verify without a primary: no error")
	}
	if _, err := reconcile.Sync(context.Background(), e.primary, e.kv, &reconcile.Options{DryRun: true}); err == nil {
		t.Error("Sync with DryRun: no error")
	}
	if _, err := reconcile.Repair(context.Background(), e.primary, e.kv, &reconcile.Options{OverwriteOlder: true}); err == nil {
		t.Error("Repair with OverwriteOlder: no error")
	}
	if _, err := reconcile.Run(context.Background(), "backup", e.primary, e.kv, nil); err == nil {
		t.Error("Run of an unknown job: no error")
	}
}

// TestCancelled checks that a cancelled context stops a job with
// ctx.Err() and a report of what was done.
func TestCancelled(t *testing.T) {
	e := newEnv(t, memcelltest.KVBackends()[0], 0)
	e.populate(t, 20)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, run := range map[string]func() (*reconcile.Report, error){
		"verify": func() (*reconcile.Report, error) { return reconcile.Verify(ctx, e.primary, e.kv, nil) },
		"sync":   func() (*reconcile.Report, error) { return reconcile.Sync(ctx, e.primary, e.kv, nil) },
		"repair": func() (*reconcile.Report, error) { return reconcile.Repair(ctx, e.primary, e.kv, nil) },
	} {
		r, err := run()
		if !errors.Is(err, context.Canceled) || r == nil {
			t.Errorf("%s with a cancelled context = %+v, %v; want a report and context.Canceled", name, r, err)
		}
	}

	// Cancelled while sleeping for the rate limit: it stops at once.
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := reconcile.Verify(ctx, e.primary, e.kv, &reconcile.Options{Rate: 1})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Verify at 1 document/s with a 200ms deadline: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Verify took %v to notice its deadline", d)
	}
}

// TestProgress checks the progress calls of each pass and the key prefix option.
func TestProgress(t *testing.T) {
	e := newEnv(t, memcelltest.KVBackends()[0], 0)
	e.populate(t, 30)
	var calls []reconcile.Progress
	opts := e.opts()
	opts.Progress = func(p reconcile.Progress) { calls = append(calls, p) }
	r := e.verify(t, opts)
	if len(calls) == 0 {
		t.Fatal("no progress call")
	}
	// Each pass is reported, the primary pass with its final count even
	// when it took less than the second between two reports.
	primary := slices.IndexFunc(calls, func(p reconcile.Progress) bool { return p.Phase == "primary" && p.Scanned == 30 })
	if primary < 0 || calls[primary].KVScanned != 0 || calls[primary].Total != 30 {
		t.Errorf("progress calls %+v, want one of the primary pass with its 30 documents before the KV pass", calls)
	}
	last := calls[len(calls)-1]
	if last.Job != "verify" || last.Phase != "kv" || last.Scanned != 30 || last.KVScanned != 30 || last.Total != 30 || last.Elapsed <= 0 {
		t.Errorf("last progress = %+v, report %+v", last, r)
	}

	calls = nil
	if _, err := reconcile.Sync(context.Background(), e.primary, e.kv, opts); err != nil {
		t.Fatal(err)
	}
	if last := calls[len(calls)-1]; last.Job != "sync" || last.Phase != "primary" || last.Scanned != 30 || last.Repaired != 30 {
		t.Errorf("last progress of a sync = %+v", last)
	}

	// Under another prefix every document is missing.
	opts = e.opts()
	opts.KeyPrefix = ptr("elsewhere:")
	if r := e.verify(t, opts); r.Differences[reconcile.Missing] != 30 {
		t.Errorf("verify under another prefix: %v, want 30 missing", r.Differences)
	}
}
