package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/pebblekv"
)

// runCLI runs the built binary and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(binary(t), args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("%v: %v", args, err)
	return -1, ""
}

// TestEndToEndJobs stores MemCells through the server, damages the KV by
// hand, and checks that kv verify, repair (dry run and real) and sync behave
// and exit as documented.
func TestEndToEndJobs(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, nil, "--data-dir", dir, "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0")
	var ids []string
	for range 5 {
		var created doc
		s.want("POST", "/v1/memcells", doc{"user_id": "alice", "timestamp": "2026-01-12T10:30:00Z"}, 201, &created)
		ids = append(ids, created["event_id"].(string))
	}
	s.stop()

	store := []string{"--data-dir", dir, "--embedded-addr", "127.0.0.1:0", "--progress", "json"}
	report := filepath.Join(t.TempDir(), "report.json")
	verify := func(wantCode int) map[string]any {
		t.Helper()
		code, out := runCLI(t, append([]string{"kv", "verify", "--report", report}, store...)...)
		if code != wantCode {
			t.Fatalf("kv verify exit %d, want %d:\n%s", code, wantCode, out)
		}
		var rep map[string]any
		b, err := os.ReadFile(report)
		if err != nil || json.Unmarshal(b, &rep) != nil {
			t.Fatalf("report: %v %s", err, b)
		}
		return rep
	}
	if rep := verify(0); rep["scanned"] != 5.0 {
		t.Errorf("verify report = %v, want 5 scanned", rep)
	}

	// Damage the KV while no server holds it: one copy overwritten at the
	// same revision, one extra key. (A deleted copy would leave a tombstone,
	// which a repair must respect: see the repair test in reconcile.)
	kvs, err := pebblekv.Open(context.Background(), filepath.Join(dir, "kv"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := kvs.Put(ctx, kv.Entry{Key: "memcell:" + ids[0], Value: []byte(`{"tampered":true}`), Rev: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := kvs.Put(ctx, kv.Entry{Key: "memcell:65a1b2c3d4e5f60718293a4b", Value: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	kvs.Close()

	rep := verify(1)
	if d, _ := rep["differences"].(map[string]any); d["differs"] != 1.0 || d["extra"] != 1.0 {
		t.Errorf("verify differences = %v, want one differing copy and one extra", rep["differences"])
	}
	if code, out := runCLI(t, append([]string{"kv", "repair", "--dry-run"}, store...)...); code != 0 {
		t.Fatalf("repair --dry-run exit %d:\n%s", code, out)
	}
	verify(1) // the dry run wrote nothing
	if code, out := runCLI(t, append([]string{"kv", "repair"}, store...)...); code != 0 {
		t.Fatalf("repair exit %d:\n%s", code, out)
	}
	verify(0)
	if code, out := runCLI(t, append([]string{"kv", "sync"}, store...)...); code != 0 {
		t.Fatalf("sync exit %d:\n%s", code, out)
	}
	verify(0)

	// Could not run: exit 2.
	if code, out := runCLI(t, "kv", "verify", "--data-dir", dir, "--embedded-addr", "127.0.0.1:0", "--kv", "nosuch://x"); code != 2 {
		t.Errorf("verify with a bad KV URL exit %d, want 2:\n%s", code, out)
	}
}
