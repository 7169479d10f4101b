package mirror_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
)

var (
	randomSeed  = flag.Uint64("random.seed", 0, "seed of TestRandomOperations (0: a new one)")
	randomCount = flag.Int("random.ops", 150, "operations per backend in TestRandomOperations")
)

// TestRandomOperations drives a seeded random sequence of every operation
// kind, bulk deletes and restores included, from several goroutines, then
// compares every document of MongoDB with the KV: there must be no
// difference. It runs in both mirror modes; in async mode the comparison
// follows the queue's drain. A failure prints the seed; rerun with
// -random.seed.
func TestRandomOperations(t *testing.T) {
	seed := *randomSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	for _, mode := range []string{mirror.ModeSync, mirror.ModeAsync} {
		t.Run(mode, func(t *testing.T) { randomOperations(t, seed, mode) })
	}
}

func randomOperations(t *testing.T, seed uint64, mode string) {
	forEachBackend(t, func(t *testing.T, b memcelltest.KVBackend) {
		e := newEnv(t, b, &mirror.Options{Flags: &mirror.Flags{Mirroring: true, Validation: mirror.ValidationOn, Mode: mode}})
		t.Logf("seed %d (rerun with -random.seed=%d)", seed, seed)
		errs := make(chan error, 4)
		done := make(chan struct{})
		const workers = 4
		for w := range workers {
			go func() {
				defer func() { done <- struct{}{} }()
				r := rand.New(rand.NewPCG(seed, uint64(w)))
				if err := randomOps(e, r, *randomCount/workers); err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
				}
			}()
		}
		for range workers {
			<-done
		}
		close(errs)
		for err := range errs {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if d := e.differences(t); len(d) > 0 {
			t.Fatalf("seed %d: %d differences after the random sequence:\n%v", seed, len(d), d)
		}
	})
}

func randomOps(e *env, r *rand.Rand, n int) error {
	ctx := context.Background()
	var ids []memcell.ID
	pick := func() memcell.ID {
		if len(ids) == 0 || r.IntN(10) == 0 {
			return memcell.NewID() // absent ids too
		}
		return ids[r.IntN(len(ids))]
	}
	user := func() *string { u := memcelltest.Users[r.IntN(len(memcelltest.Users))]; return &u }
	window := func() (*time.Time, *time.Time) {
		s := memcelltest.Epoch.Add(time.Duration(r.IntN(30*24)) * time.Hour)
		e := s.Add(time.Duration(1+r.IntN(5*24)) * time.Hour)
		return &s, &e
	}
	for range n {
		var err error
		switch op := r.IntN(100); {
		case op < 30:
			var m *memcell.MemCell
			m, _, err = e.repo.Append(ctx, memcelltest.NewMemCell(r, 0))
			if err == nil {
				ids = append(ids, m.ID)
			}
		case op < 50:
			_, _, err = e.repo.Update(ctx, pick(), map[string]any{"summary": fmt.Sprintf("s%d", r.IntN(1000)), "keywords": []any{"k"}})
		case op < 60:
			_, _, err = e.repo.SoftDelete(ctx, pick(), "random")
		case op < 70:
			_, _, err = e.repo.Restore(ctx, pick())
		case op < 76:
			_, _, err = e.repo.HardDelete(ctx, pick())
		case op < 82:
			_, _, err = e.repo.SoftDeleteMany(ctx, memcell.Scope{UserID: user()}, "bulk")
		case op < 88:
			s, en := window()
			var u *string
			if r.IntN(2) == 0 {
				u = user()
			}
			_, _, err = e.repo.RestoreMany(ctx, memcell.Scope{UserID: u, Start: s, End: en})
		case op < 92:
			s, en := window()
			_, _, err = e.repo.HardDeleteMany(ctx, memcell.Scope{Start: s, End: en})
		case op < 96:
			s, en := window()
			_, _, err = e.repo.SoftDeleteMany(ctx, memcell.Scope{UserID: user(), Start: s, End: en}, "")
		default:
			_, _, err = e.repo.Get(ctx, pick())
		}
		if err != nil && !errors.Is(err, memcell.ErrNotFound) {
			return err
		}
	}
	return nil
}

// TestTransactions checks that KV writes made inside a transaction wait for
// the commit and vanish with an abort. It needs a primary with transactions
// (a MongoDB replica set through MEMCELL_TEST_MONGO_URI); on the embedded
// primary it checks the clear refusal instead, and skips the rest.
func TestTransactions(t *testing.T) {
	e := newEnv(t, memory(), nil)
	ctx := context.Background()
	if !memcelltest.SupportsTransactions(t) {
		called := false
		_, err := e.repo.WithTransaction(ctx, func(context.Context) error { called = true; return nil })
		if !errors.Is(err, memcell.ErrTransactionsUnsupported) || called {
			t.Fatalf("WithTransaction on a primary without transactions = %v (fn called: %v), want ErrTransactionsUnsupported", err, called)
		}
		t.Skip("the primary has no transactions (embedded FerretDB or standalone mongod); set MEMCELL_TEST_MONGO_URI to a MongoDB replica set to run the commit and abort cases")
	}
	existing := appendN(t, e, 1, 20)[0]

	var inside *memcell.MemCell
	mir, err := e.repo.WithTransaction(ctx, func(ctx context.Context) error {
		m, mir, err := e.repo.Append(ctx, memcelltest.NewMemCell(rand.New(rand.NewPCG(21, 21)), 0))
		if err != nil {
			return err
		}
		if mir.Status != mirror.MirrorDeferred {
			return fmt.Errorf("mirror inside a transaction = %s, want deferred", mir.Status)
		}
		if _, err := e.kv.Store.Get(ctx, e.repo.Key(m.ID)); err == nil {
			return errors.New("the KV got the write before the commit")
		}
		if _, _, err := e.repo.Update(ctx, existing.ID, map[string]any{"summary": "in tx"}); err != nil {
			return err
		}
		inside = m
		return nil
	})
	if err != nil || mir.Status != mirror.MirrorOK || mir.Written != 2 {
		t.Fatalf("committed transaction = %+v, %v", mir, err)
	}
	e.assertMirrored(t, "after commit")
	if _, err := e.kv.Store.Get(ctx, e.repo.Key(inside.ID)); err != nil {
		t.Fatalf("committed append is not in the KV: %v", err)
	}

	boom := errors.New("abort")
	var aborted memcell.ID
	_, err = e.repo.WithTransaction(ctx, func(ctx context.Context) error {
		m, _, err := e.repo.Append(ctx, memcelltest.NewMemCell(rand.New(rand.NewPCG(22, 22)), 0))
		if err != nil {
			return err
		}
		aborted = m.ID
		if _, _, err := e.repo.HardDelete(ctx, existing.ID); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("aborted transaction = %v, want the function's error", err)
	}
	e.assertMirrored(t, "after abort")
	if _, err := e.kv.Store.Get(ctx, e.repo.Key(aborted)); err == nil {
		t.Error("an aborted append reached the KV")
	}
}

func TestFlags(t *testing.T) {
	e := newEnv(t, memory(), nil)
	ctx := context.Background()
	docs := appendN(t, e, 2, 30)
	m, gone := docs[0], docs[1]

	if err := e.repo.SetFlags(mirror.Flags{Mirroring: false, Validation: mirror.ValidationOn}); err != nil {
		t.Fatal(err)
	}
	writes := e.kv.Writes.Load()
	if _, mir, err := e.repo.Update(ctx, m.ID, map[string]any{"summary": "unmirrored"}); err != nil || mir.Status != mirror.MirrorSkipped {
		t.Errorf("Update with mirroring off = %+v, %v", mir, err)
	}
	if _, mir, err := e.repo.HardDelete(ctx, gone.ID); err != nil || mir.Status != mirror.MirrorSkipped {
		t.Errorf("HardDelete with mirroring off = %+v, %v", mir, err)
	}
	if e.kv.Writes.Load() != writes {
		t.Error("the KV was written with mirroring off")
	}
	// The writes left a trace: a repair finds them without a full scan.
	pending, err := e.repo.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, id := range pending {
		got = append(got, id.String())
	}
	want := []string{m.ID.String(), gone.ID.String()}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pending after writes with mirroring off (-want +got):\n%s", diff)
	}
	memcelltest.AssertMetrics(t, e.reg, `
		# HELP memcell_kv_writes_skipped_total KV writes not made because mirroring was switched off; each key is recorded for repair.
		# TYPE memcell_kv_writes_skipped_total counter
		memcell_kv_writes_skipped_total{backend="memory",op="batch_delete"} 0
		memcell_kv_writes_skipped_total{backend="memory",op="batch_put"} 0
		memcell_kv_writes_skipped_total{backend="memory",op="delete"} 1
		memcell_kv_writes_skipped_total{backend="memory",op="put"} 1
	`)
	if _, v, _ := e.repo.Get(ctx, m.ID); v.Outcome != mirror.Inconsistent {
		t.Errorf("validation after an unmirrored update = %s, want inconsistent", v.Outcome)
	}

	if err := e.repo.SetFlags(mirror.Flags{Mirroring: true, Validation: mirror.ValidationOff}); err != nil {
		t.Fatal(err)
	}
	if _, v, _ := e.repo.Get(ctx, m.ID, mirror.Validate(true)); v.Outcome != mirror.Skipped {
		t.Errorf("validation off: outcome %s, want skipped even when asked", v.Outcome)
	}
	if err := e.repo.SetFlags(mirror.Flags{Mirroring: true, Validation: mirror.ValidationSample, SamplePercent: 0}); err != nil {
		t.Fatal(err)
	}
	if _, v, _ := e.repo.Get(ctx, m.ID); v.Outcome != mirror.Skipped {
		t.Errorf("sample 0%%: default read outcome %s, want skipped", v.Outcome)
	}
	if _, v, _ := e.repo.Get(ctx, m.ID, mirror.Validate(true)); v.Outcome == mirror.Skipped {
		t.Error("sample 0%: a read asked to validate was skipped")
	}
	if err := e.repo.SetFlags(mirror.Flags{Mirroring: true, Validation: mirror.ValidationOn}); err != nil {
		t.Fatal(err)
	}
	if _, v, _ := e.repo.Get(ctx, m.ID, mirror.Validate(false)); v.Outcome != mirror.Skipped {
		t.Errorf("Validate(false): outcome %s", v.Outcome)
	}
	for _, bad := range []mirror.Flags{{Validation: "maybe"}, {Validation: mirror.ValidationSample, SamplePercent: 101}} {
		if err := e.repo.SetFlags(bad); err == nil {
			t.Errorf("SetFlags(%+v) accepted", bad)
		}
	}
}

// TestBatchValidationOneRoundTrip checks target P3's first half: a
// validated read of 100 documents reads the KV once.
func TestBatchValidationOneRoundTrip(t *testing.T) {
	e := newEnv(t, memory(), nil)
	ctx := context.Background()
	docs := appendN(t, e, 100, 40)
	ids := make([]memcell.ID, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	gets, batches := e.kv.Gets.Load(), e.kv.BatchGets.Load()
	got, bv, err := e.repo.GetMany(ctx, ids, nil, mirror.Validate(true))
	if err != nil || len(got) != 100 || bv.Outcome != mirror.Consistent || len(bv.PerID) != 100 {
		t.Fatalf("GetMany = %d docs, %s (%d outcomes), %v", len(got), bv.Outcome, len(bv.PerID), err)
	}
	if g, b := e.kv.Gets.Load()-gets, e.kv.BatchGets.Load()-batches; g != 0 || b != 1 {
		t.Errorf("validated batch of 100 made %d gets and %d batch gets, want 0 and 1", g, b)
	}
	if _, bv, _ := e.repo.GetMany(ctx, ids[:3], nil); bv.Outcome != mirror.Skipped {
		t.Errorf("batch read validated by default: %s", bv.Outcome)
	}
	if _, bv, _ := e.repo.Find(ctx, memcell.Query{Limit: 50}, mirror.Validate(true)); bv.Outcome != mirror.Consistent || len(bv.PerID) != 50 {
		t.Errorf("validated list read = %s with %d outcomes", bv.Outcome, len(bv.PerID))
	}
}
