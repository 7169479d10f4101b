package reconcile_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
	"github.com/memcell/memcell/mongostore"
	"github.com/memcell/memcell/reconcile"
)

func TestParseMaxDelete(t *testing.T) {
	for _, c := range []struct {
		in        string
		want      string // String of the parsed bound; "" for an error
		scanned   int64
		limit     int64
		unbounded bool
	}{
		{in: "", want: "5%", scanned: 100, limit: 5},
		{in: "5%", want: "5%", scanned: 1999, limit: 99},
		{in: " 0.5% ", want: "0.5%", scanned: 1000, limit: 5},
		{in: "29%", want: "29%", scanned: 100, limit: 29},
		{in: "0%", want: "0%", scanned: 100, limit: 0},
		{in: "100%", want: "all", scanned: 100, limit: 1<<63 - 1, unbounded: true},
		{in: "ALL", want: "all", scanned: 0, limit: 1<<63 - 1, unbounded: true},
		{in: "1000", want: "1000", scanned: 10, limit: 1000},
		{in: "0", want: "0", scanned: 10, limit: 0},
		{in: "101%"}, {in: "-1%"}, {in: "-1"}, {in: "5%%"}, {in: "1e3"}, {in: "five"}, {in: "NaN%"}, {in: "%"},
	} {
		m, err := reconcile.ParseMaxDelete(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("ParseMaxDelete(%q) = %v, want an error", c.in, m)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseMaxDelete(%q): %v", c.in, err)
			continue
		}
		if m.String() != c.want || m.Limit(c.scanned) != c.limit || m.Unbounded() != c.unbounded {
			t.Errorf("ParseMaxDelete(%q) = %s, limit %d of %d, unbounded %v; want %s, %d, %v",
				c.in, m, m.Limit(c.scanned), c.scanned, m.Unbounded(), c.want, c.limit, c.unbounded)
		}
		if !m.Allows(m.Limit(c.scanned), c.scanned) || (!c.unbounded && m.Allows(m.Limit(c.scanned)+1, c.scanned)) {
			t.Errorf("ParseMaxDelete(%q): Allows disagrees with Limit %d", c.in, m.Limit(c.scanned))
		}
	}
	e := newEnv(t, memcelltest.KVBackends()[0], 0)
	if r, err := reconcile.Repair(context.Background(), e.primary, e.kv, &reconcile.Options{MaxDelete: "lots"}); err == nil {
		t.Errorf("Repair with MaxDelete \"lots\" = %+v, want an error", r)
	}
}

// TestRepairMaxDelete empties most of the primary behind the mirror's back
// (90 of 100 documents deleted with the driver, no pending record, no
// grave): a repair refuses to delete the 90 copies, deletes none and still
// fixes the copy that differs; its dry run says it would refuse; with a
// bound that allows them it deletes the 90, from the copies it held or, when
// they were more than it holds, by scanning the KV again.
func TestRepairMaxDelete(t *testing.T) {
	for _, backend := range memcelltest.KVBackends() {
		for _, c := range []struct {
			name      string
			maxDelete string
			maxHeld   int // 0: the default
		}{
			{"held", "100%", 0},
			{"rescanned", "90", 7},
		} {
			t.Run(backend.Name+"/"+c.name, func(t *testing.T) {
				ctx := context.Background()
				e := newEnv(t, backend, 0)
				e.append(t, 100)
				gone := make([]any, 0, 90)
				for _, m := range e.docs[10:] {
					gone = append(gone, bson.ObjectID(m.ID))
				}
				coll := memcelltest.Client(t).Database(e.db).Collection(mongostore.DefaultCollection)
				if res, err := coll.DeleteMany(ctx, bson.M{"_id": bson.M{"$in": gone}}); err != nil || res.DeletedCount != 90 {
					t.Fatalf("DeleteMany = %+v, %v; want 90 deleted", res, err)
				}
				// A copy tampered with: the refused repair still fixes it.
				tampered := *e.docs[0]
				tampered.Summary = ptr("tampered")
				v, err := memcell.Encode(&tampered)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.kv.Put(ctx, kv.Entry{Key: mirror.DefaultKeyPrefix + tampered.ID.String(), Value: v, Rev: uint64(tampered.Revision)}); err != nil {
					t.Fatal(err)
				}
				before := e.snapshot(t)
				if len(before) != 100 {
					t.Fatalf("the KV holds %d keys, want 100", len(before))
				}
				const why = "90 extra KV copies would be deleted (90% of the 100 scanned), over --max-delete "

				plan, err := reconcile.Repair(ctx, e.primary, e.kv, dryRun(e.opts()))
				if err != nil {
					t.Fatalf("Repair (dry run): %v", err)
				}
				if want := "a repair would refuse: " + why + "5%;"; !strings.HasPrefix(plan.Refused, want) {
					t.Errorf("dry run: Refused = %q, want it to start with %q", plan.Refused, want)
				}
				if plan.Differences[reconcile.Extra] != 90 || plan.Differences[reconcile.Differs] != 1 || plan.Repaired != 0 {
					t.Errorf("dry run: differences %v, %d repaired; want 90 extra, 1 differs, 0", plan.Differences, plan.Repaired)
				}
				if got := e.logs.Lines("a repair would refuse"); len(got) != 1 {
					t.Errorf("dry run: log lines %q, want one saying a repair would refuse", got)
				}

				for _, maxDelete := range []string{"", "89%", "89"} {
					opts := e.opts()
					opts.MaxDelete = maxDelete
					r, err := reconcile.Repair(ctx, e.primary, e.kv, opts)
					refused, ok := errors.AsType[*reconcile.DeleteRefusedError](err)
					if !ok {
						t.Fatalf("max delete %q: Repair = %v, want a *DeleteRefusedError", maxDelete, err)
					}
					bound := map[string]string{"": "5%"}[maxDelete]
					if bound == "" {
						bound = maxDelete
					}
					if refused.Extras != 90 || refused.KVScanned != 100 || refused.MaxDelete.String() != bound {
						t.Errorf("max delete %q: refused %+v, want 90 extras of 100 over %s", maxDelete, refused, bound)
					}
					want := "refused: " + why + bound + "; an empty or nearly empty primary is far more often an accident than the truth: " +
						"check the primary (memcell kv recover puts its lost documents back from these copies), " +
						"or pass --max-delete 90% (max_delete in the jobs API) if the deletes are meant"
					if !strings.Contains(err.Error(), want) || r.Refused != want {
						t.Errorf("max delete %q: error %q, report %q; want %q", maxDelete, err, r.Refused, want)
					}
					if r.Differences[reconcile.Extra] != 90 || r.KVScanned != 100 {
						t.Errorf("max delete %q: report %+v, want 90 extras of 100 keys", maxDelete, r)
					}
					after := e.snapshot(t)
					if len(after) != 100 {
						t.Fatalf("max delete %q: the refused repair left %d of 100 KV keys", maxDelete, len(after))
					}
					// Only the tampered copy changed, by the first repair.
					delete(before, mirror.DefaultKeyPrefix+tampered.ID.String())
					delete(after, mirror.DefaultKeyPrefix+tampered.ID.String())
					if diff := cmp.Diff(after, before); diff != "" {
						t.Errorf("max delete %q: the refused repair changed the copies (-after +before):\n%s", maxDelete, diff)
					}
					if wantRepaired := map[string]int64{"": 1}[maxDelete]; r.Repaired != wantRepaired {
						t.Errorf("max delete %q: %d repaired, want %d (the tampered copy, once)", maxDelete, r.Repaired, wantRepaired)
					}
				}

				opts := e.opts()
				opts.MaxDelete = c.maxDelete
				reconcile.SetMaxHeld(opts, c.maxHeld)
				r, err := reconcile.Repair(ctx, e.primary, e.kv, opts)
				if err != nil {
					t.Fatalf("Repair with max delete %s: %v", c.maxDelete, err)
				}
				if r.Repaired != 90 || r.Differences[reconcile.Extra] != 90 || r.KVScanned != 100 || r.Refused != "" {
					t.Errorf("Repair with max delete %s: %+v, want 90 extras of 100 keys deleted", c.maxDelete, r)
				}
				if n := len(e.snapshot(t)); n != 10 {
					t.Errorf("after the repair the KV holds %d keys, want 10", n)
				}
				e.assertConsistent(t, "after the repair")
			})
		}
	}
}
