package mirror_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
)

// fallbackEnv is a repository over a primary that can be taken down.
type fallbackEnv struct {
	repo    *mirror.Repository
	primary *memcelltest.FaultPrimary
	kv      *memcelltest.FaultKV
	reg     *prometheus.Registry
}

func newFallbackEnv(t *testing.T, o mirror.Options) *fallbackEnv {
	t.Helper()
	store, _ := memcelltest.Store(t)
	var err error
	e := &fallbackEnv{primary: memcelltest.NewFaultPrimary(store), kv: memcelltest.NewFaultKV(memory().Open(t, 0)), reg: prometheus.NewRegistry()}
	o.Logger = slog.New(slog.NewJSONHandler(&memcelltest.Buffer{}, nil))
	o.Registerer = e.reg
	if e.repo, err = mirror.New(e.primary, e.kv, &o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.repo.Close)
	return e
}

// append stores a fixture through the repository.
func (e *fallbackEnv) append(t *testing.T, r *rand.Rand) *memcell.MemCell {
	t.Helper()
	m, _, err := e.repo.Append(context.Background(), memcelltest.NewMemCell(r, 1000))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustEncode(t *testing.T, m *memcell.MemCell) []byte {
	t.Helper()
	b, err := memcell.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReadFallback takes the primary down under a repository with
// ReadFallback: Get and GetMany answer from the KV copies, hide
// soft-deleted ones, fail with ErrNoCopy (and ErrUnavailable) for an id
// without a copy, and go back to the primary when it returns.
func TestReadFallback(t *testing.T) {
	ctx := context.Background()
	e := newFallbackEnv(t, mirror.Options{ReadFallback: true, FallbackHold: time.Millisecond})
	r := rand.New(rand.NewPCG(1, 2))
	live := e.append(t, r)
	deleted := e.append(t, r)
	if ok, _, err := e.repo.SoftDelete(ctx, deleted.ID, "test"); err != nil || !ok {
		t.Fatalf("SoftDelete = %v, %v", ok, err)
	}
	// A document the KV has no copy of: mirroring off when it was written.
	if err := e.repo.SetFlags(mirror.Flags{Mirroring: false, Validation: mirror.ValidationOn}); err != nil {
		t.Fatal(err)
	}
	uncopied := e.append(t, r)
	if err := e.repo.SetFlags(mirror.Flags{Mirroring: true, Validation: mirror.ValidationOn}); err != nil {
		t.Fatal(err)
	}
	want, v, err := e.repo.Get(ctx, live.ID)
	if err != nil || v.FromKV || v.Outcome != mirror.Consistent {
		t.Fatalf("Get with the primary up = %v, %+v, want the primary's consistent document", err, v)
	}

	e.primary.Down.Store(true)
	got, v, err := e.repo.Get(ctx, live.ID)
	if err != nil || !v.FromKV || v.Outcome != mirror.Skipped {
		t.Fatalf("Get with the primary down = %v, %+v; want the KV copy, not validated", err, v)
	}
	if !bytes.Equal(mustEncode(t, got), mustEncode(t, want)) {
		t.Errorf("the KV answer differs from the primary's:\n%s\n%s", mustEncode(t, got), mustEncode(t, want))
	}
	if _, v, err := e.repo.Get(ctx, deleted.ID); !errors.Is(err, memcell.ErrNotFound) || !v.FromKV {
		t.Errorf("Get of a soft-deleted copy = %v, %+v; want not found from the KV", err, v)
	}
	if _, v, err := e.repo.Get(ctx, uncopied.ID); !errors.Is(err, mirror.ErrNoCopy) || !errors.Is(err, memcell.ErrUnavailable) || !v.FromKV {
		t.Errorf("Get without a copy = %v, %+v; want ErrNoCopy and ErrUnavailable", err, v)
	}
	docs, bv, err := e.repo.GetMany(ctx, []memcell.ID{live.ID, deleted.ID}, []string{"summary"})
	if err != nil || !bv.FromKV || bv.Outcome != mirror.Skipped || len(docs) != 1 || docs[live.ID] == nil {
		t.Fatalf("GetMany with the primary down = %v, %+v, %d docs; want the live one from the KV", err, bv, len(docs))
	}
	if !bytes.Equal(mustEncode(t, docs[live.ID]), mustEncode(t, want)) {
		t.Errorf("GetMany's KV answer differs from the primary's document")
	}
	if _, bv, err := e.repo.GetMany(ctx, []memcell.ID{live.ID, uncopied.ID}, nil); !errors.Is(err, mirror.ErrNoCopy) || !errors.Is(err, memcell.ErrUnavailable) || !bv.FromKV {
		t.Errorf("GetMany with an id without a copy = %v, %+v; want ErrNoCopy and ErrUnavailable", err, bv)
	}
	e.kv.FailReads.Store(true)
	e.kv.FailBatchReads.Store(true)
	if _, _, err := e.repo.Get(ctx, live.ID); !errors.Is(err, memcell.ErrUnavailable) || errors.Is(err, mirror.ErrNoCopy) {
		t.Errorf("Get with both stores failing = %v; want ErrUnavailable, not ErrNoCopy", err)
	}
	if _, _, err := e.repo.GetMany(ctx, []memcell.ID{live.ID}, nil); !errors.Is(err, memcell.ErrUnavailable) || errors.Is(err, mirror.ErrNoCopy) {
		t.Errorf("GetMany with both stores failing = %v; want ErrUnavailable, not ErrNoCopy", err)
	}
	e.kv.FailReads.Store(false)
	e.kv.FailBatchReads.Store(false)
	// Writes and the other reads fail as before.
	if _, _, err := e.repo.Append(ctx, memcelltest.NewMemCell(r, 500)); !errors.Is(err, memcell.ErrUnavailable) {
		t.Errorf("Append with the primary down = %v, want ErrUnavailable", err)
	}
	if _, _, err := e.repo.Find(ctx, memcell.Query{Limit: 1}); !errors.Is(err, memcell.ErrUnavailable) {
		t.Errorf("Find with the primary down = %v, want ErrUnavailable", err)
	}

	e.primary.Down.Store(false)
	time.Sleep(5 * time.Millisecond) // past the hold
	if _, v, err := e.repo.Get(ctx, uncopied.ID); err != nil || v.FromKV {
		t.Errorf("Get after the primary returned = %v, %+v; want the primary's answer", err, v)
	}
	if docs, bv, err := e.repo.GetMany(ctx, []memcell.ID{live.ID, uncopied.ID}, nil); err != nil || bv.FromKV || len(docs) != 2 {
		t.Errorf("GetMany after the primary returned = %v, %+v, %d docs; want both from the primary", err, bv, len(docs))
	}
	memcelltest.AssertMetrics(t, e.reg, `
# HELP memcell_fallback_reads_total Reads answered from the KV copies because the primary was unavailable (--read-fallback), by result (served, not_found, no_copy, error).
# TYPE memcell_fallback_reads_total counter
memcell_fallback_reads_total{backend="memory",op="batch_get",result="error"} 1
memcell_fallback_reads_total{backend="memory",op="batch_get",result="no_copy"} 1
memcell_fallback_reads_total{backend="memory",op="batch_get",result="not_found"} 0
memcell_fallback_reads_total{backend="memory",op="batch_get",result="served"} 1
memcell_fallback_reads_total{backend="memory",op="get",result="error"} 1
memcell_fallback_reads_total{backend="memory",op="get",result="no_copy"} 1
memcell_fallback_reads_total{backend="memory",op="get",result="not_found"} 1
memcell_fallback_reads_total{backend="memory",op="get",result="served"} 1
`)
}

// TestReadFallbackOff: without ReadFallback a down primary fails the reads
// and the KV is not read.
func TestReadFallbackOff(t *testing.T) {
	ctx := context.Background()
	e := newFallbackEnv(t, mirror.Options{})
	m := e.append(t, rand.New(rand.NewPCG(3, 4)))
	e.primary.Down.Store(true)
	gets := e.kv.Gets.Load() + e.kv.BatchGets.Load()
	if _, v, err := e.repo.Get(ctx, m.ID); !errors.Is(err, memcell.ErrUnavailable) || v.FromKV {
		t.Errorf("Get = %v, %+v; want ErrUnavailable", err, v)
	}
	if _, v, err := e.repo.GetMany(ctx, []memcell.ID{m.ID}, nil); !errors.Is(err, memcell.ErrUnavailable) || v.FromKV {
		t.Errorf("GetMany = %v, %+v; want ErrUnavailable", err, v)
	}
	if n := e.kv.Gets.Load() + e.kv.BatchGets.Load() - gets; n != 0 {
		t.Errorf("the KV was read %d times", n)
	}
}

// TestReadFallbackBounded: a primary that does not answer holds a read for
// FallbackTimeout only, and for FallbackHold afterwards reads do not ask it
// at all; then it is asked again.
func TestReadFallbackBounded(t *testing.T) {
	ctx := context.Background()
	const timeout, hold = 100 * time.Millisecond, 400 * time.Millisecond
	e := newFallbackEnv(t, mirror.Options{ReadFallback: true, FallbackTimeout: timeout, FallbackHold: hold})
	m := e.append(t, rand.New(rand.NewPCG(5, 6)))
	e.primary.Hang.Store(true)
	start := time.Now()
	if _, v, err := e.repo.Get(ctx, m.ID); err != nil || !v.FromKV {
		t.Fatalf("Get with a hanging primary = %v, %+v; want the KV copy", err, v)
	}
	if d := time.Since(start); d < timeout || d > timeout+time.Second {
		t.Errorf("the first read took %s, want about %s", d, timeout)
	}
	reads := e.primary.Reads.Load()
	start = time.Now()
	for range 5 {
		if _, v, err := e.repo.Get(ctx, m.ID); err != nil || !v.FromKV {
			t.Fatalf("Get during the hold = %v, %+v; want the KV copy", err, v)
		}
		if _, v, err := e.repo.GetMany(ctx, []memcell.ID{m.ID}, nil); err != nil || !v.FromKV {
			t.Fatalf("GetMany during the hold = %v, %+v; want the KV copy", err, v)
		}
	}
	if d := time.Since(start); d > timeout {
		t.Errorf("10 reads during the hold took %s; they should not wait for the primary", d)
	}
	if n := e.primary.Reads.Load() - reads; n != 0 {
		t.Errorf("the primary was asked %d times during the hold, want 0", n)
	}
	e.primary.Hang.Store(false)
	time.Sleep(hold)
	if _, v, err := e.repo.Get(ctx, m.ID); err != nil || v.FromKV {
		t.Errorf("Get after the hold with the primary back = %v, %+v; want the primary's answer", err, v)
	}
	if n := e.primary.Reads.Load() - reads; n != 1 {
		t.Errorf("the primary was asked %d times after the hold, want 1", n)
	}
}
