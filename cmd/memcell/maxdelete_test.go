package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestEndToEndMaxDelete empties the primary behind the server's back (a
// deleteMany through the driver, as another program would: no pending
// record, no grave, the KV keeps every copy): kv repair, run in the
// server, refuses to delete the copies and exits 2, and so does its dry
// run say; the KV still holds them all; --max-delete 100% then deletes
// them.
func TestEndToEndMaxDelete(t *testing.T) {
	dir := t.TempDir()
	addr, embedded := freeAddr(t), freeAddr(t)
	s := startServer(t, nil, "--data-dir", dir, "--addr", addr, "--embedded-addr", embedded)
	const n = 20
	for range n {
		s.want("POST", "/v1/memcells", doc{"user_id": "alice", "timestamp": "2026-01-12T10:30:00Z"}, 201, nil)
	}

	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + embedded + "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	res, err := client.Database("memcell").Collection("memcells").DeleteMany(ctx, bson.M{})
	if err != nil || res.DeletedCount != n {
		t.Fatalf("DeleteMany = %+v, %v; want %d deleted", res, err, n)
	}

	store := []string{"--addr", addr, "--progress", "none"}
	report := filepath.Join(t.TempDir(), "report.json")
	verify := func(wantCode int, wantKeys, wantExtra float64) {
		t.Helper()
		code, out := runCLI(t, append([]string{"kv", "verify", "--report", report}, store...)...)
		if code != wantCode || !strings.Contains(out, "runs in the memcell server") {
			t.Fatalf("kv verify exit %d, want %d:\n%s", code, wantCode, out)
		}
		var rep map[string]any
		b, err := os.ReadFile(report)
		if err != nil || json.Unmarshal(b, &rep) != nil {
			t.Fatalf("report: %v %s", err, b)
		}
		if d, _ := rep["differences"].(map[string]any); rep["kv_scanned"] != wantKeys || (d["extra"] != wantExtra && wantExtra > 0) {
			t.Errorf("verify report = %v, want %v KV keys, %v extra", rep, wantKeys, wantExtra)
		}
	}
	verify(1, n, n)

	const why = "refused: 20 extra KV copies would be deleted (100% of the 20 scanned), over --max-delete 5%; " +
		"an empty or nearly empty primary is far more often an accident than the truth: check the primary " +
		"(memcell kv recover puts its lost documents back from these copies), or pass --max-delete 100% (max_delete in the jobs API) if the deletes are meant"
	code, out := runCLI(t, append([]string{"kv", "repair", "--dry-run"}, store...)...)
	if code != 1 || !strings.Contains(out, "would repair 20: 20 extra") || !strings.Contains(out, "nothing written; a repair would refuse: "+strings.TrimPrefix(why, "refused: ")) {
		t.Errorf("kv repair --dry-run exit %d, want 1 and that a repair would refuse:\n%s", code, out)
	}
	code, out = runCLI(t, append([]string{"kv", "repair", "--report", report}, store...)...)
	if code != 2 || !strings.Contains(out, why) || !strings.Contains(out, "repair: 0 documents and 20 KV keys scanned in ") {
		t.Errorf("kv repair exit %d, want 2 and %q with the summary:\n%s", code, why, out)
	}
	var rep map[string]any
	if b, err := os.ReadFile(report); err != nil || json.Unmarshal(b, &rep) != nil || rep["refused"] != why {
		t.Errorf("the refused repair's report: %v %v, want refused: %q", err, rep, why)
	}
	verify(1, n, n) // every copy is still there

	if code, out := runCLI(t, append([]string{"kv", "repair", "--max-delete", "lots"}, store...)...); code != 2 || !strings.Contains(out, "--max-delete") {
		t.Errorf("kv repair --max-delete lots exit %d, want 2 (usage):\n%s", code, out)
	}
	if code, out := runCLI(t, append([]string{"kv", "repair", "--max-delete", "100%"}, store...)...); code != 0 || !strings.Contains(out, "20 repaired") {
		t.Errorf("kv repair --max-delete 100%% exit %d, want 0 with 20 repaired:\n%s", code, out)
	}
	verify(0, 0, 0)
}
