package reconcile_test

import (
	"context"
	"errors"
	"iter"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
	"github.com/memcell/memcell/reconcile"
)

// TestSync backfills an empty KV on every backend: afterwards verify finds
// nothing, and a copy newer than the primary's document was left alone.
func TestSync(t *testing.T) {
	for _, backend := range memcelltest.KVBackends() {
		t.Run(backend.Name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, backend, 0)
			if err := e.repo.SetFlags(mirror.Flags{Mirroring: false, Validation: mirror.ValidationOn}); err != nil {
				t.Fatal(err)
			}
			e.populate(t, 100) // primary only
			r := e.verify(t, nil)
			if diff := cmp.Diff(counts(r), map[reconcile.Kind]int64{reconcile.Missing: 100}); diff != "" {
				t.Fatalf("verify of an empty KV (-got +want):\n%s", diff)
			}

			// A copy with a newer revision than the primary's: sync must
			// not replace it.
			newer, err := e.primary.Lookup(ctx, e.docs[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			newer.Summary, newer.Revision = ptr("newer"), newer.Revision+5
			v, err := memcell.Encode(newer)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.kv.Put(ctx, kv.Entry{Key: e.repo.Key(newer.ID), Value: v, Rev: uint64(newer.Revision)}); err != nil {
				t.Fatal(err)
			}

			s, err := reconcile.Sync(ctx, e.primary, e.kv, e.opts())
			if err != nil {
				t.Fatalf("Sync: %v", err)
			}
			if s.Job != "sync" || s.Scanned != 100 || s.Repaired != 99 || s.DifferenceCount() != 0 || s.KVScanned != 0 {
				t.Errorf("Sync report = %+v, want 100 scanned, 99 written, no differences, no KV scan", s)
			}
			if got, _ := e.kv.Get(ctx, e.repo.Key(newer.ID)); string(got) != string(v) {
				t.Errorf("sync replaced a newer copy:\n%s", got)
			}
			r = e.verify(t, nil)
			if diff := cmp.Diff(found(r), []string{"differs " + newer.ID.String()}); diff != "" {
				t.Errorf("verify after sync (-got +want):\n%s", diff)
			}

			// Repair replaces it (the primary went back in time) with a
			// compare-and-swap, and says so.
			fixed, err := reconcile.Repair(ctx, e.primary, e.kv, e.opts())
			if err != nil {
				t.Fatalf("Repair: %v", err)
			}
			if fixed.Repaired != 1 || fixed.RevisionsLowered != 1 || fixed.Unrepaired != 0 {
				t.Errorf("Repair of a newer copy: repaired %d, lowered %d, unrepaired %d; want 1, 1, 0", fixed.Repaired, fixed.RevisionsLowered, fixed.Unrepaired)
			}
			if got := e.logs.Lines("revision went down", newer.ID.String()); len(got) != 1 {
				t.Errorf("log lines about the replaced copy: %q, want one", got)
			}
			e.assertConsistent(t, "after the repair")

		})
	}
}

// TestSyncEmpty syncs and verifies an empty primary against an empty KV.
func TestSyncEmpty(t *testing.T) {
	e := newEnv(t, memcelltest.KVBackends()[0], 0)
	s, err := reconcile.Sync(context.Background(), e.primary, e.kv, nil)
	if err != nil || s.Scanned != 0 || s.Repaired != 0 {
		t.Fatalf("Sync of nothing = %+v, %v", s, err)
	}
	e.assertConsistent(t, "empty")
}

// hookedPrimary calls onFirst once, after its scan has handed out the first
// document.
type hookedPrimary struct {
	reconcile.Primary
	onFirst func()
}

func (p *hookedPrimary) Scan(ctx context.Context, ordered bool, after memcell.ID, batch int) iter.Seq2[*memcell.MemCell, error] {
	return func(yield func(*memcell.MemCell, error) bool) {
		first := true
		for m, err := range p.Primary.Scan(ctx, ordered, after, batch) {
			if !yield(m, err) {
				return
			}
			if first {
				first = false
				p.onFirst()
			}
		}
	}
}

// TestSlowSyncKeepsDeletes checks that a sync slowed down by its rate limit
// does not bring back a document hard-deleted after the sync read it, even
// once the delete's tombstone has expired, and writes an update made
// meanwhile as it now is: the documents it held for longer than a second
// are read again before they are written.
func TestSlowSyncKeepsDeletes(t *testing.T) {
	for _, backend := range memcelltest.KVBackends() {
		t.Run(backend.Name, func(t *testing.T) {
			ctx := context.Background()
			const grace = 300 * time.Millisecond
			e := newEnv(t, backend, grace)
			e.append(t, 20)
			gone, changed := e.docs[3], e.docs[11]
			var expired time.Time
			primary := &hookedPrimary{Primary: e.primary, onFirst: func() {
				// The cursor has read the whole batch by now.
				if _, _, err := e.repo.HardDelete(ctx, gone.ID); err != nil {
					t.Error(err)
				}
				if _, _, err := e.repo.Update(ctx, changed.ID, map[string]any{"summary": "changed during the sync"}); err != nil {
					t.Error(err)
				}
				expired = time.Now().Add(grace)
			}}
			// 20 documents at 10 a second: the batch of 20, read at once,
			// is written about two seconds later, well after the tombstone
			// expired.
			opts := e.opts()
			opts.BatchSize, opts.Rate = 20, 10
			s, err := reconcile.Sync(ctx, primary, e.kv, opts)
			if err != nil {
				t.Fatalf("Sync: %v", err)
			}
			if time.Now().Before(expired) {
				t.Fatalf("the sync ended before the tombstone expired: the test proves nothing")
			}
			if s.Scanned != 20 || s.Repaired != 19 {
				// Every document but the deleted one, rewritten at the
				// revision its copy holds.
				t.Errorf("Sync report: %d scanned, %d written; want 20, 19", s.Scanned, s.Repaired)
			}
			if _, err := e.kv.Get(ctx, e.repo.Key(gone.ID)); !errors.Is(err, kv.ErrNotFound) {
				t.Errorf("the sync brought back a hard-deleted document (Get: %v)", err)
			}
			e.assertConsistent(t, "after the slow sync")
		})
	}
}
