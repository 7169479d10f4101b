package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	if _, err := run(t, "kv", "stats", "--server", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "cannot reach the memcell server") {
		t.Errorf("kv stats with no server = %v, want a clear error", err)
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

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "memcell.yaml")
	if err := os.WriteFile(file, []byte("addr: 127.0.0.1:9001\nmongo_database: fromfile\nlog_level: warn\nvalidation: sample:25\nmirroring: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MEMCELL_MONGO_DATABASE": "fromenv", "MEMCELL_LOG_LEVEL": "debug"}
	cmd := newServeCmd()
	if err := cmd.ParseFlags([]string{"--config", file, "--log-level", "error"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(cmd.Flags(), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9001" || cfg.MongoDatabase != "fromenv" || cfg.LogLevel != "error" || cfg.DataDir != "memcell-data" || cfg.Mirroring {
		t.Errorf("precedence wrong: %+v", cfg)
	}
	f, err := cfg.flags()
	if err != nil || f.Validation != "sample" || f.SamplePercent != 25 {
		t.Errorf("flags = %+v, %v", f, err)
	}

	for _, bad := range []string{"colour: blue\n", "addr: [1, 2]\n", "validation: sometimes\n", "log_level: loud\n", "max_body_bytes: -1\n", ": :\n"} {
		if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := newServeCmd()
		_ = cmd.ParseFlags([]string{"--config", file})
		if _, err := loadConfig(cmd.Flags(), func(string) string { return "" }); !errors.Is(err, errUsage) {
			t.Errorf("config %q: %v, want a usage error", bad, err)
		}
	}
}

func TestRedactedConfig(t *testing.T) {
	cfg := &config{MongoURI: "mongodb://u:hunter2@db/", KVURL: "redis://:hunter3@r:6379/0", APIToken: "tok"}
	out := fmt.Sprint(cfg.redacted())
	for _, secret := range []string{"hunter2", "hunter3", "tok "} {
		if strings.Contains(out+" ", secret) {
			t.Errorf("redacted config %s shows %q", out, secret)
		}
	}
}

func TestCheckBind(t *testing.T) {
	for _, tc := range []struct {
		cfg config
		ok  bool
	}{
		{config{Addr: "127.0.0.1:8080"}, true},
		{config{Addr: "localhost:8080"}, true},
		{config{Addr: "[::1]:8080"}, true},
		{config{Addr: "0.0.0.0:8080"}, false},
		{config{Addr: ":8080"}, false},
		{config{Addr: "0.0.0.0:8080", APIToken: "t"}, true},
		{config{Addr: "0.0.0.0:8080", Insecure: true}, true},
		{config{Addr: "nonsense"}, false},
	} {
		if err := checkBind(&tc.cfg); (err == nil) != tc.ok {
			t.Errorf("checkBind(%q, token %v, insecure %v) = %v", tc.cfg.Addr, tc.cfg.APIToken != "", tc.cfg.Insecure, err)
		}
	}
}
