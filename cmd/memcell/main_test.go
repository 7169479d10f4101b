package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/pebblekv"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestKVStats(t *testing.T) {
	dir := t.TempDir()
	s, err := pebblekv.Open(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.BatchPut(context.Background(), []kv.Entry{{Key: "memcell:a", Value: []byte("12345")}, {Key: "memcell:b", Value: []byte("é")}}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	out, err := run(t, "kv", "stats", "--kv", "pebble://"+dir)
	if err != nil {
		t.Fatalf("kv stats: %v\n%s", err, out)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output %q is not JSON: %v", out, err)
	}
	if got["backend"] != "pebble" || got["entry_count"] != 2.0 || got["total_size_bytes"] != 7.0 {
		t.Errorf("kv stats = %v, want pebble, 2 entries, 7 bytes", got)
	}
}

func TestKVStatsErrors(t *testing.T) {
	t.Setenv("MEMCELL_KV_URL", "")
	if _, err := run(t, "kv", "stats"); !errors.Is(err, errUsage) || exitCode(err) != 2 {
		t.Errorf("kv stats without --kv = %v, want a usage error (exit 2)", err)
	}
	if _, err := run(t, "kv", "stats", "--bogus"); exitCode(err) != 2 {
		t.Errorf("unknown flag = %v, want exit 2", err)
	}
	_, err := run(t, "kv", "stats", "--kv", "nosuch://x")
	if !errors.Is(err, kv.ErrUnknownScheme) || exitCode(err) != 1 {
		t.Errorf("unknown scheme = %v", err)
	}
	_, err = run(t, "kv", "stats", "--kv", "redis://user:hunter2@127.0.0.1:1/0?dial_timeout=200ms")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("unreachable Redis = %v: want an error without the password", err)
	}
}

func TestVersion(t *testing.T) {
	out, err := run(t, "version")
	if err != nil || !strings.HasPrefix(out, "memcell ") {
		t.Errorf("version = %q, %v", out, err)
	}
}
