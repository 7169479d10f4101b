package mirror_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
	"github.com/memcell/memcell/reconcile"
)

// asyncFlags are the default flags in async mode.
func asyncFlags() *mirror.Flags {
	return &mirror.Flags{Mirroring: true, Validation: mirror.ValidationOn, Mode: mirror.ModeAsync}
}

// drain waits for the queue to be empty.
func (e *env) drain(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.repo.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v (queue %+v)", err, e.repo.QueueStats())
	}
}

// waitNoted waits until every id is noted as pending (by the queue's
// recorder, within a few of its 200 ms rounds).
func (e *env) waitNoted(t *testing.T, ids []memcell.ID) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		noted, err := e.primary.Pending(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		missing := 0
		for _, id := range ids {
			if !slices.Contains(noted, id) {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d ids not noted as pending", missing, len(ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAsyncWrites runs every kind of write in async mode on every backend:
// each answers queued, and once the queue drains the KV equals the primary
// and the write intents are cleared.
func TestAsyncWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b memcelltest.KVBackend) {
		e := newEnv(t, b, &mirror.Options{Flags: asyncFlags()})
		ctx := context.Background()
		r := rand.New(rand.NewPCG(1, 2))
		var ids []memcell.ID
		for range 20 {
			m, mir, err := e.repo.Append(ctx, memcelltest.NewMemCell(r, 0))
			if err != nil {
				t.Fatal(err)
			}
			if mir.Status != mirror.MirrorQueued {
				t.Fatalf("Append mirror = %+v, want queued", mir)
			}
			ids = append(ids, m.ID)
		}
		check := func(what string, mir mirror.Mirror, err error) {
			t.Helper()
			if err != nil || mir.Status != mirror.MirrorQueued {
				t.Fatalf("%s = %+v, %v; want queued", what, mir, err)
			}
		}
		_, mir, err := e.repo.Update(ctx, ids[0], map[string]any{"summary": "changed"})
		check("Update", mir, err)
		_, mir, err = e.repo.SoftDelete(ctx, ids[1], "async")
		check("SoftDelete", mir, err)
		_, mir, err = e.repo.Restore(ctx, ids[1])
		check("Restore", mir, err)
		_, mir, err = e.repo.HardDelete(ctx, ids[2])
		check("HardDelete", mir, err)
		user := memcelltest.Users[0]
		_, mir, err = e.repo.SoftDeleteMany(ctx, memcell.Scope{UserID: &user}, "bulk")
		if err != nil || (mir.Status != mirror.MirrorQueued && mir.Status != mirror.MirrorSkipped) {
			t.Fatalf("SoftDeleteMany = %+v, %v", mir, err)
		}
		_, _, err = e.repo.HardDeleteMany(ctx, memcell.Scope{UserID: &user})
		if err != nil {
			t.Fatal(err)
		}
		e.assertMirrored(t, "after the queue drained")
		// Close clears the intents of every write done.
		e.repo.Close()
		intents, err := e.primary.Intents(ctx, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		notes, err := e.primary.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(intents) != 0 || len(notes) != 0 {
			t.Fatalf("after Close: intents left on %v, pending notes %v", intents, notes)
		}
	})
}

// TestAsyncStalledKV stalls every KV write: writes still answer at once
// (queued), a validated read of a queued document reports pending (and
// batch reads per id), never missing or inconsistent; once the KV answers
// again the queue drains and everything is mirrored.
func TestAsyncStalledKV(t *testing.T) {
	e := newEnv(t, memory(), &mirror.Options{Flags: asyncFlags()})
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	old, _, err := e.repo.Append(ctx, memcelltest.NewMemCell(r, 0))
	if err != nil {
		t.Fatal(err)
	}
	e.drain(t)
	release := e.kv.Stall()
	defer release()
	fresh, mir, err := e.repo.Append(ctx, memcelltest.NewMemCell(r, 0))
	if err != nil || mir.Status != mirror.MirrorQueued {
		t.Fatalf("Append with the KV stalled = %+v, %v; want queued", mir, err)
	}
	if _, mir, err := e.repo.Update(ctx, old.ID, map[string]any{"summary": "behind"}); err != nil || mir.Status != mirror.MirrorQueued {
		t.Fatalf("Update with the KV stalled = %+v, %v; want queued", mir, err)
	}
	for _, id := range []memcell.ID{fresh.ID, old.ID} {
		if _, v, err := e.repo.Get(ctx, id); err != nil || v.Outcome != mirror.Pending {
			t.Errorf("Get(%s) with its write queued = %+v, %v; want pending", id, v, err)
		}
	}
	_, bv, err := e.repo.GetMany(ctx, []memcell.ID{fresh.ID, old.ID}, nil, mirror.Validate(true))
	if err != nil {
		t.Fatal(err)
	}
	if bv.Outcome != mirror.Pending || bv.PerID[fresh.ID].Outcome != mirror.Pending || bv.PerID[old.ID].Outcome != mirror.Pending {
		t.Errorf("GetMany with the writes queued = %+v, want pending for each", bv)
	}
	if s := e.repo.QueueStats(); s.Depth != 2 || s.Oldest.IsZero() {
		t.Errorf("QueueStats = %+v, want 2 writes", s)
	}
	release()
	e.assertMirrored(t, "after the KV came back")
	if _, v, err := e.repo.Get(ctx, old.ID); err != nil || v.Outcome != mirror.Consistent {
		t.Errorf("Get after the drain = %+v, %v; want consistent", v, err)
	}
	memcelltest.AssertMetrics(t, e.reg, `
# HELP memcell_validations_total Validation outcomes of reads (consistent, inconsistent, missing, error, skipped, pending).
# TYPE memcell_validations_total counter
memcell_validations_total{backend="memory",outcome="consistent"} 1
memcell_validations_total{backend="memory",outcome="error"} 0
memcell_validations_total{backend="memory",outcome="inconsistent"} 0
memcell_validations_total{backend="memory",outcome="missing"} 0
memcell_validations_total{backend="memory",outcome="pending"} 4
memcell_validations_total{backend="memory",outcome="skipped"} 0
`)
}

// TestAsyncQueueFull fills a small queue while the KV is stalled: the
// writes beyond its bound are not waited for either; they report failed,
// are counted as drops, noted as pending, and the replayer brings the KV
// level once it answers again.
func TestAsyncQueueFull(t *testing.T) {
	e := newEnv(t, memory(), &mirror.Options{Flags: asyncFlags(), QueueBytes: 16 << 10, KVTimeout: 200 * time.Millisecond})
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	release := e.kv.Stall()
	defer release()
	var queued, dropped int
	var droppedIDs []memcell.ID
	for range 40 {
		m, mir, err := e.repo.Append(ctx, memcelltest.NewMemCell(r, 2048))
		if err != nil {
			t.Fatal(err)
		}
		switch mir.Status {
		case mirror.MirrorQueued:
			queued++
		case mirror.MirrorFailed:
			dropped++
			droppedIDs = append(droppedIDs, m.ID)
		default:
			t.Fatalf("Append = %+v, want queued or failed", mir)
		}
	}
	if queued == 0 || dropped == 0 {
		t.Fatalf("%d queued, %d dropped: want both", queued, dropped)
	}
	if s := e.repo.QueueStats(); s.Bytes > s.Capacity {
		t.Errorf("QueueStats = %+v: over its bound", s)
	}
	if got := metricValue(t, e, "memcell_mirror_queue_drops_total"); got != float64(dropped) {
		t.Errorf("memcell_mirror_queue_drops_total = %v, want %d", got, dropped)
	}
	// The dropped ids are noted as pending by the queue's recorder.
	e.waitNoted(t, droppedIDs)
	release()
	e.drain(t)
	if _, err := reconcile.Replay(ctx, e.primary, e.kv, nil); err != nil {
		t.Fatal(err)
	}
	e.assertMirrored(t, "after the replay")
}

// metricValue returns the sum of the series of a counter or gauge.
func metricValue(t *testing.T, e *env, name string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestAsyncKVDown fails every KV write: writes still answer at once, the
// first queued; once a batch has failed the queue holds one write at a
// time as a probe and refuses the others (failed, kv_failing). Every id is
// noted as pending, the KV is not sent more than probes, and a replay
// after the KV is back leaves no difference.
func TestAsyncKVDown(t *testing.T) {
	e := newEnv(t, memory(), &mirror.Options{Flags: asyncFlags()})
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 8))
	e.kv.FailWrites.Store(true)
	var ids []memcell.ID
	status := map[mirror.MirrorStatus]int{}
	for range 30 {
		m, mir, err := e.repo.Append(ctx, memcelltest.NewMemCell(r, 0))
		if err != nil || (mir.Status != mirror.MirrorQueued && mir.Status != mirror.MirrorFailed) {
			t.Fatalf("Append with the KV down = %+v, %v; want queued or failed", mir, err)
		}
		status[mir.Status]++
		ids = append(ids, m.ID)
	}
	if status[mirror.MirrorFailed] == 0 {
		t.Errorf("with the KV down every write was queued (%v): the queue did not stop taking them", status)
	}
	if calls := e.kv.WriteAttempts.Load(); calls >= int64(len(ids)) {
		t.Errorf("%d KV write calls for %d writes while it failed: want probes only", calls, len(ids))
	}
	e.drain(t)
	e.waitNoted(t, ids)
	if n := len(e.logs.Lines("queued kv writes failed")); n == 0 {
		t.Error("no WARN line for the failed batches")
	}
	e.kv.FailWrites.Store(false)
	res, err := reconcile.Replay(ctx, e.primary, e.kv, nil)
	if err != nil || res.Written != len(ids) {
		t.Fatalf("Replay = %+v, %v; want %d written", res, err, len(ids))
	}
	e.assertMirrored(t, "after the replay")
}

// TestAsyncOrdering updates one document from many goroutines, on every
// backend: whatever order the batches reach the KV in, the copy ends equal
// to the primary's final state.
func TestAsyncOrdering(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b memcelltest.KVBackend) {
		e := newEnv(t, b, &mirror.Options{Flags: asyncFlags()})
		ctx := context.Background()
		m, _, err := e.repo.Append(ctx, memcelltest.NewMemCell(rand.New(rand.NewPCG(9, 10)), 0))
		if err != nil {
			t.Fatal(err)
		}
		e.concurrentUpdates(t, m.ID, 8, 25)
		e.assertMirrored(t, "after 200 concurrent updates")
		got, err := e.kv.Store.Get(ctx, e.repo.Key(m.ID))
		if err != nil {
			t.Fatal(err)
		}
		final, err := e.primary.Get(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if v := memcell.Judge(mustEncode(t, final), final.Revision, got); !v.Equal || final.Revision != 201 {
			t.Errorf("copy %s, revision %d; want the final state at revision 201", got, final.Revision)
		}
	})
}

// TestAsyncGroupCommit checks that writes made while a batch is under way
// go together in the next one: with the KV stalled while 50 writes queue,
// they reach it in at most a few batch calls, not 50 puts.
func TestAsyncGroupCommit(t *testing.T) {
	e := newEnv(t, memory(), &mirror.Options{Flags: asyncFlags(), Workers: 1, StallAfter: time.Minute})
	ctx := context.Background()
	r := rand.New(rand.NewPCG(11, 12))
	release := e.kv.Stall()
	for range 50 {
		if _, _, err := e.repo.Append(ctx, memcelltest.NewMemCell(r, 0)); err != nil {
			t.Fatal(err)
		}
	}
	release()
	e.drain(t)
	if w := e.kv.Writes.Load(); w > 3 {
		t.Errorf("%d KV write calls for 50 queued writes, want at most 3", w)
	}
	if n := e.kv.BatchPutKeys.Load(); n < 48 {
		t.Errorf("%d keys went in batch puts, want at least 48", n)
	}
	e.assertMirrored(t, "after the drain")
}

// TestAsyncClose checks the shutdown: Close applies what is queued; with
// the KV stalled past the drain timeout it returns anyway, and what was
// left is noted as pending for the replayer.
func TestAsyncClose(t *testing.T) {
	t.Run("drains", func(t *testing.T) {
		e := newEnv(t, memory(), &mirror.Options{Flags: asyncFlags()})
		ctx := context.Background()
		r := rand.New(rand.NewPCG(13, 14))
		release := e.kv.Stall()
		for range 20 {
			if _, _, err := e.repo.Append(ctx, memcelltest.NewMemCell(r, 0)); err != nil {
				t.Fatal(err)
			}
		}
		time.AfterFunc(100*time.Millisecond, release)
		e.repo.Close()
		if s := e.repo.QueueStats(); s.Depth != 0 {
			t.Errorf("after Close the queue holds %+v", s)
		}
		e.assertMirrored(t, "after Close")
	})
	t.Run("times out", func(t *testing.T) {
		e := newEnv(t, memory(), &mirror.Options{Flags: asyncFlags(), DrainTimeout: 100 * time.Millisecond, KVTimeout: 200 * time.Millisecond})
		ctx := context.Background()
		r := rand.New(rand.NewPCG(15, 16))
		release := e.kv.Stall()
		defer release()
		var ids []memcell.ID
		for range 5 {
			m, _, err := e.repo.Append(ctx, memcelltest.NewMemCell(r, 0))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID)
		}
		start := time.Now()
		e.repo.Close()
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Close took %v with the KV stalled", d)
		}
		noted, err := e.primary.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(noted) != len(ids) {
			t.Errorf("noted %v as pending, want the %d queued ids", noted, len(ids))
		}
		// A write after Close is not queued: it is left to its intent.
		if _, mir, err := e.repo.Append(ctx, memcelltest.NewMemCell(r, 0)); err != nil || mir.Status != mirror.MirrorFailed || mir.Err == nil {
			t.Errorf("Append after Close = %+v, %v; want failed", mir, err)
		}
		release()
		if _, err := reconcile.Replay(ctx, e.primary, e.kv, nil); err != nil {
			t.Fatal(err)
		}
		e.assertMirrored(t, "after the replay")
	})
}

// TestModeSwitch changes the mode at runtime: sync writes report ok, async
// ones queued, and an empty mode in SetFlags keeps the current one.
func TestModeSwitch(t *testing.T) {
	e := newEnv(t, memory(), &mirror.Options{Flags: asyncFlags()})
	ctx := context.Background()
	r := rand.New(rand.NewPCG(17, 18))
	for _, tc := range []struct {
		mode string
		want mirror.MirrorStatus
	}{{mirror.ModeSync, mirror.MirrorOK}, {"", mirror.MirrorOK}, {mirror.ModeAsync, mirror.MirrorQueued}} {
		if err := e.repo.SetFlags(mirror.Flags{Mirroring: true, Validation: mirror.ValidationOn, Mode: tc.mode}); err != nil {
			t.Fatal(err)
		}
		if _, mir, err := e.repo.Append(ctx, memcelltest.NewMemCell(r, 0)); err != nil || mir.Status != tc.want {
			t.Errorf("mode %q: Append = %+v, %v; want %s", tc.mode, mir, err, tc.want)
		}
	}
	if err := e.repo.SetFlags(mirror.Flags{Mirroring: true, Validation: mirror.ValidationOn, Mode: "later"}); err == nil {
		t.Error("SetFlags accepted mode \"later\"")
	}
	e.assertMirrored(t, "after the switches")
}

// TestAsyncStallDetected stalls the KV: once a batch has been under way for
// longer than StallAfter, the queue stops holding writes for it; they
// answer failed and go to the pending record, and a replay after the KV
// answers again leaves no difference.
func TestAsyncStallDetected(t *testing.T) {
	e := newEnv(t, memory(), &mirror.Options{Flags: asyncFlags(), StallAfter: 100 * time.Millisecond})
	ctx := context.Background()
	r := rand.New(rand.NewPCG(19, 20))
	release := e.kv.Stall()
	defer release()
	if _, mir, err := e.repo.Append(ctx, memcelltest.NewMemCell(r, 0)); err != nil || mir.Status != mirror.MirrorQueued {
		t.Fatalf("first Append with the KV stalled = %+v, %v; want queued", mir, err)
	}
	time.Sleep(200 * time.Millisecond)
	m, mir, err := e.repo.Append(ctx, memcelltest.NewMemCell(r, 0))
	if err != nil || mir.Status != mirror.MirrorFailed {
		t.Fatalf("Append after the stall was seen = %+v, %v; want failed", mir, err)
	}
	e.waitNoted(t, []memcell.ID{m.ID})
	release()
	e.drain(t)
	if _, err := reconcile.Replay(ctx, e.primary, e.kv, nil); err != nil {
		t.Fatal(err)
	}
	e.assertMirrored(t, "after the replay")
}
