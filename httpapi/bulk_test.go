package httpapi_test

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type listBody struct {
	MemCells []map[string]any `json:"memcells"`
	Count    int              `json:"count"`
}

func (l listBody) ids() []string {
	var out []string
	for _, m := range l.MemCells {
		out = append(out, m["event_id"].(string))
	}
	return out
}

// listEnv seeds five MemCells an hour apart: alice ×3, bob, carol (who has
// alice as a participant).
func listEnv(t *testing.T) (*env, []string) {
	e := newEnv(t, nil)
	carol := cell("carol", epoch.Add(4*time.Hour), "music")
	carol.Participants = []string{"carol", "alice"}
	ids := e.seed(
		cell("alice", epoch, "kyoto", "budget"),
		cell("alice", epoch.Add(time.Hour), "kyoto"),
		cell("bob", epoch.Add(2*time.Hour), "budget"),
		cell("alice", epoch.Add(3*time.Hour), "music"),
		carol,
	)
	return e, ids
}

func TestList(t *testing.T) {
	e, ids := listEnv(t)
	start := url.QueryEscape(epoch.Add(time.Hour).In(time.FixedZone("CET", 3600)).Format(time.RFC3339Nano))
	cases := []struct {
		query string
		want  []string
	}{
		{"", []string{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"?sort=asc&limit=2", []string{ids[0], ids[1]}},
		{"?sort=asc&limit=2&skip=2", []string{ids[2], ids[3]}},
		{"?user_id=alice", []string{ids[3], ids[1], ids[0]}},
		{"?user_id=alice&include_participant=true", []string{ids[4], ids[3], ids[1], ids[0]}},
		{"?keywords=kyoto", []string{ids[1], ids[0]}},
		{"?keywords=kyoto,budget", []string{ids[2], ids[1], ids[0]}},
		{"?keywords=kyoto&keywords=budget&match_all=true", []string{ids[0]}},
		{"?participants=carol,bob", []string{ids[4], ids[2]}},
		{"?participants=carol&participants=alice&match_all=true", []string{ids[4]}},
		{"?start=" + start + "&end=2026-01-12T13:00:00Z", []string{ids[2], ids[1]}},
		{"?start=2026-01-12T13:00:00Z", []string{ids[4], ids[3]}},
		// Times are truncated to milliseconds: this end is 11:00, exclusive.
		{"?end=2026-01-12T11:00:00.000999Z&sort=asc", []string{ids[0]}},
		// An unescaped '+' in the zone arrives as a space.
		{"?start=2026-01-12T12:00:00+01:00&end=2026-01-12T13:00:00+01:00", []string{ids[1]}},
		{"?group_id=nobody", nil},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			r := e.want(http.StatusOK, "GET", "/v1/memcells"+tc.query, nil)
			var got listBody
			r.decode(t, &got)
			if d := cmp.Diff(tc.want, got.ids()); d != "" {
				t.Errorf("ids (-want +got):\n%s", d)
			}
			if got.Count != len(tc.want) {
				t.Errorf("count = %d, want %d", got.Count, len(tc.want))
			}
			if got.MemCells == nil {
				t.Error("memcells is null, want []")
			}
			if v, ok := r.header["Memcell-Validation"]; ok {
				t.Errorf("an unvalidated list says Memcell-Validation %q", v)
			}
		})
	}
	r := e.want(http.StatusOK, "GET", "/v1/memcells?validate=true&user_id=bob", nil)
	if v := r.header.Get("Memcell-Validation"); v != "consistent" {
		t.Errorf("validated list: Memcell-Validation = %q", v)
	}
}

func TestListDefaultLimit(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 105 {
		e.seed(cell("alice", epoch.Add(time.Duration(i)*time.Minute)))
	}
	var got listBody
	e.want(http.StatusOK, "GET", "/v1/memcells", nil).decode(t, &got)
	if got.Count != 100 || len(got.MemCells) != 100 {
		t.Errorf("default page holds %d (count %d), want 100", len(got.MemCells), got.Count)
	}
	e.want(http.StatusOK, "GET", "/v1/memcells?limit=1000", nil).decode(t, &got)
	if got.Count != 105 {
		t.Errorf("limit=1000 gives %d, want 105", got.Count)
	}
}

func TestCount(t *testing.T) {
	e, _ := listEnv(t)
	cases := map[string]int64{
		"":               5,
		"?user_id=alice": 3,
		"?user_id=alice&include_participant=true":                            4,
		"?user_id=alice&start=2026-01-12T11:00:00Z&end=2026-01-12T13:00:00Z": 1,
		"?keywords=budget,music":                                             4,
		"?group_id=g":                                                        0,
	}
	for q, want := range cases {
		var got struct {
			Count int64 `json:"count"`
		}
		e.want(http.StatusOK, "GET", "/v1/memcells/count"+q, nil).decode(t, &got)
		if got.Count != want {
			t.Errorf("count%s = %d, want %d", q, got.Count, want)
		}
	}
}

func TestBulkDeleteAndRestore(t *testing.T) {
	e, ids := listEnv(t)
	var n struct {
		Deleted  int64 `json:"deleted"`
		Restored int64 `json:"restored"`
	}
	r := e.want(http.StatusOK, "DELETE", "/v1/memcells?user_id=alice&deleted_by=ops", nil)
	r.decode(t, &n)
	if n.Deleted != 3 || r.header.Get("Memcell-Mirror") != "ok" {
		t.Errorf("bulk soft delete = %d (mirror %q), want 3", n.Deleted, r.header.Get("Memcell-Mirror"))
	}
	var count struct {
		Count int64 `json:"count"`
	}
	e.want(http.StatusOK, "GET", "/v1/memcells/count", nil).decode(t, &count)
	if count.Count != 2 {
		t.Errorf("after the bulk delete %d live, want 2", count.Count)
	}
	// Nothing more to delete: 0, mirror skipped.
	r = e.want(http.StatusOK, "DELETE", "/v1/memcells?user_id=alice", nil)
	r.decode(t, &n)
	if n.Deleted != 0 || r.header.Get("Memcell-Mirror") != "skipped" {
		t.Errorf("second bulk delete = %d (mirror %q)", n.Deleted, r.header.Get("Memcell-Mirror"))
	}

	// Restore part of them by user and range.
	r = e.want(http.StatusOK, "POST", "/v1/memcells/restore?user_id=alice&start=2026-01-12T10:30:00Z&end=2026-01-12T14:00:00Z", nil)
	r.decode(t, &n)
	if n.Restored != 2 {
		t.Errorf("bulk restore = %d, want 2", n.Restored)
	}
	e.want(http.StatusNotFound, "GET", "/v1/memcells/"+ids[0], nil)
	r = e.want(http.StatusOK, "GET", "/v1/memcells/"+ids[1], nil)
	if v := r.header.Get("Memcell-Validation"); v != "consistent" {
		t.Errorf("restored copy is %q", v)
	}

	// Hard delete by range: bob's and alice's 11:00 one, the KV copies too.
	before := e.state()
	r = e.want(http.StatusOK, "DELETE", "/v1/memcells?start=2026-01-12T11:00:00Z&end=2026-01-12T12:30:00Z&hard=true", nil)
	r.decode(t, &n)
	if n.Deleted != 2 {
		t.Errorf("bulk hard delete = %d, want 2", n.Deleted)
	}
	if after := e.state(); after.docs != before.docs-2 || after.kvEntries != before.kvEntries-2 {
		t.Errorf("bulk hard delete: before %+v, after %+v", before, after)
	}
}

func TestBatchGet(t *testing.T) {
	e, ids := listEnv(t)
	e.want(http.StatusNoContent, "DELETE", "/v1/memcells/"+ids[2], nil)
	absent := "65a1b2c3d4e5f60718293a4b"
	var got struct {
		MemCells map[string]map[string]any `json:"memcells"`
		Missing  []string                  `json:"missing"`
	}
	r := e.want(http.StatusOK, "POST", "/v1/memcells/batch-get", map[string]any{
		"event_ids": []string{ids[1], absent, ids[0], ids[2], ids[1]},
	})
	r.decode(t, &got)
	if len(got.MemCells) != 2 || got.MemCells[ids[0]]["user_id"] != "alice" || got.MemCells[ids[1]] == nil {
		t.Errorf("memcells = %v", got.MemCells)
	}
	if d := cmp.Diff([]string{absent, ids[2]}, got.Missing); d != "" {
		t.Errorf("missing (-want +got):\n%s", d)
	}
	if v, ok := r.header["Memcell-Validation"]; ok {
		t.Errorf("an unvalidated batch says %q", v)
	}

	r = e.want(http.StatusOK, "POST", "/v1/memcells/batch-get", map[string]any{"event_ids": ids, "validate": true})
	if v := r.header.Get("Memcell-Validation"); v != "consistent" {
		t.Errorf("validated batch: Memcell-Validation = %q", v)
	}
	if n := e.kv.BatchGets.Load(); n != 1 {
		t.Errorf("a validated batch made %d KV batch reads, want 1", n)
	}

	// Partial documents.
	r = e.want(http.StatusOK, "POST", "/v1/memcells/batch-get", map[string]any{"event_ids": ids[:2], "fields": []string{"keywords", "event_id", "nope"}, "validate": true})
	got.MemCells = nil
	r.decode(t, &got)
	for _, id := range ids[:2] {
		keys := slices.Sorted(maps.Keys(got.MemCells[id]))
		if d := cmp.Diff([]string{"event_id", "keywords", "nope"}, keys); d != "" {
			t.Errorf("partial %s fields (-want +got):\n%s", id, d)
		}
	}
	if v, ok := r.header["Memcell-Validation"]; ok {
		t.Errorf("a partial batch says Memcell-Validation %q", v)
	}

	// Empty list: empty answer.
	r = e.want(http.StatusOK, "POST", "/v1/memcells/batch-get", `{"event_ids":[]}`)
	if string(r.body) != "{\"memcells\":{},\"missing\":[]}\n" {
		t.Errorf("empty batch = %s", r.body)
	}
}
