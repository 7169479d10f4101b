package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/pebblekv"
)

// TestExitCodes runs the binary through every command and the ways each
// can fail, and checks the documented exit status: 0 ok, 1 differences
// found, 2 a usage error or a command that could not run.
func TestExitCodes(t *testing.T) {
	tmp := t.TempDir()
	unknownKey := filepath.Join(tmp, "unknown.yaml")
	if err := os.WriteFile(unknownKey, []byte("colour: blue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(tmp, "missing.yaml")
	const (
		unreachableMongo = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500"
		unreachableKV    = "redis://127.0.0.1:1/0?dial_timeout=200ms"
	)
	noServer := freeAddr(t) // jobs open the stores rather than find a server
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	// A mirror with one key the (empty) primary lacks: one difference.
	data := filepath.Join(tmp, "data")
	s, err := pebblekv.Open(context.Background(), filepath.Join(data, "kv"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), kv.Entry{Key: "memcell:65a1b2c3d4e5f60718293a4b", Value: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	store := []string{"--data-dir", data, "--embedded-addr", "127.0.0.1:0", "--addr", noServer, "--progress", "none"}

	type run struct {
		name string
		env  []string
		args []string
		want int
	}
	var runs []run
	commands := [][]string{{}, {"serve"}, {"kv"}, {"kv", "stats"}, {"kv", "sync"}, {"kv", "verify"}, {"kv", "repair"}, {"kv", "recover"}, {"version"}, {"help"}, {"completion"}}
	for _, c := range commands {
		name := strings.Join(append([]string{"memcell"}, c...), " ")
		with := func(extra ...string) []string { return append(c[:len(c):len(c)], extra...) }
		runs = append(runs,
			run{name + " --help", nil, with("--help"), 0},
			run{name + " --bogus", nil, with("--bogus"), 2},
			run{name + " stray-argument", nil, with("stray-argument"), 2},
		)
	}
	runs = append(runs,
		// Good runs where cheap.
		run{"memcell", nil, nil, 0},
		run{"version", nil, []string{"version"}, 0},
		run{"help kv verify", nil, []string{"help", "kv", "verify"}, 0},
		run{"kv", nil, []string{"kv"}, 0},
		run{"completion bash", nil, []string{"completion", "bash"}, 0},
		// A flag without its value, invalid values, bad settings.
		run{"serve --addr (no value)", nil, []string{"serve", "--addr"}, 2},
		run{"kv stats --server (no value)", nil, []string{"kv", "stats", "--server"}, 2},
		run{"kv verify --rate (no value)", nil, []string{"kv", "verify", "--rate"}, 2},
		run{"serve --max-body-bytes 0", nil, []string{"serve", "--max-body-bytes", "0"}, 2},
		run{"serve --log-level loud", nil, []string{"serve", "--log-level", "loud"}, 2},
		run{"serve --mirroring=maybe", nil, []string{"serve", "--mirroring=maybe"}, 2},
		run{"kv sync --rate x", nil, []string{"kv", "sync", "--rate", "x"}, 2},
		run{"kv verify --rate -1", nil, []string{"kv", "verify", "--rate=-1"}, 2},
		run{"kv repair --progress fancy", nil, []string{"kv", "repair", "--progress", "fancy"}, 2},
		run{"kv repair --dry-run=maybe", nil, []string{"kv", "repair", "--dry-run=maybe"}, 2},
		run{"kv recover --overwrite-older=maybe", nil, []string{"kv", "recover", "--overwrite-older=maybe"}, 2},
		run{"kv repair --overwrite-older", nil, []string{"kv", "repair", "--overwrite-older"}, 2},
		run{"kv repair --max-delete lots", nil, []string{"kv", "repair", "--max-delete", "lots"}, 2},
		run{"kv verify --max-delete 5%", nil, []string{"kv", "verify", "--max-delete", "5%"}, 2},
		run{"serve, bad environment value", []string{"MEMCELL_LOG_LEVEL=loud"}, []string{"serve"}, 2},
		run{"kv verify, bad environment value", []string{"MEMCELL_MAX_BODY_BYTES=x"}, []string{"kv", "verify"}, 2},
		run{"serve, missing config file", nil, []string{"serve", "--config", missing}, 2},
		run{"kv sync, missing config file", nil, []string{"kv", "sync", "--config", missing}, 2},
		run{"kv repair, unknown config key", nil, []string{"kv", "repair", "--config", unknownKey}, 2},
		run{"serve on 0.0.0.0 without a token", nil, []string{"serve", "--addr", "0.0.0.0:0"}, 2},
		run{"kv verify --server without a port", nil, []string{"kv", "verify", "--server", "no-port"}, 2},
		// Stores and servers that cannot be reached or opened.
		run{"serve, unreachable primary", nil, []string{"serve", "--addr", "127.0.0.1:0", "--mongo-uri", unreachableMongo}, 2},
		run{"kv sync, unreachable primary", nil, []string{"kv", "sync", "--addr", noServer, "--mongo-uri", unreachableMongo}, 2},
		run{"kv verify, unreachable primary", nil, []string{"kv", "verify", "--addr", noServer, "--mongo-uri", unreachableMongo}, 2},
		run{"kv repair, unreachable primary", nil, []string{"kv", "repair", "--addr", noServer, "--mongo-uri", unreachableMongo}, 2},
		run{"kv recover, unreachable primary", nil, []string{"kv", "recover", "--addr", noServer, "--mongo-uri", unreachableMongo}, 2},
		run{"kv verify, unreachable server", nil, []string{"kv", "verify", "--server", noServer}, 2},
		run{"kv stats, unreachable KV", nil, []string{"kv", "stats", "--kv", unreachableKV}, 2},
		run{"kv stats, unknown KV scheme", nil, []string{"kv", "stats", "--kv", "nosuch://x"}, 2},
		run{"kv stats, unreachable server", nil, []string{"kv", "stats", "--server", noServer}, 2},
		run{"serve, address in use", nil, []string{"serve", "--data-dir", filepath.Join(tmp, "busy"), "--embedded-addr", "127.0.0.1:0", "--addr", busy.Addr().String()}, 2},
		// Differences found: 1, until a repair removes them.
		run{"kv verify with a difference", nil, append([]string{"kv", "verify"}, store...), 1},
		run{"kv repair --dry-run with a difference", nil, append([]string{"kv", "repair", "--dry-run"}, store...), 1},
		// The one key is all of the KV: over the default --max-delete of
		// 5%, the repair refuses to delete it (2) until told to.
		run{"kv repair over --max-delete", nil, append([]string{"kv", "repair"}, store...), 2},
		run{"kv repair over --max-delete 50%", nil, append([]string{"kv", "repair", "--max-delete", "50%"}, store...), 2},
		run{"kv verify after the refused repair", nil, append([]string{"kv", "verify"}, store...), 1},
		run{"kv repair --max-delete all", nil, append([]string{"kv", "repair", "--max-delete", "all"}, store...), 0},
		run{"kv verify after the repair", nil, append([]string{"kv", "verify"}, store...), 0},
		run{"kv repair --dry-run after the repair", nil, append([]string{"kv", "repair", "--dry-run"}, store...), 0},
		run{"kv sync", nil, append([]string{"kv", "sync"}, store...), 0},
		run{"kv recover --dry-run with nothing lost", nil, append([]string{"kv", "recover", "--dry-run"}, store...), 0},
		run{"kv recover --checkpoint", nil, append([]string{"kv", "recover", "--overwrite-older", "--checkpoint", filepath.Join(tmp, "recover.ckpt")}, store...), 0},
	)
	for _, r := range runs {
		if code, out := runCLIEnv(t, r.env, r.args...); code != r.want {
			t.Errorf("%s: exit %d, want %d:\n%s", r.name, code, r.want, out)
		}
	}
}

// TestHelpExitStatus checks that memcell --help documents the exit status
// and the redaction.
func TestHelpExitStatus(t *testing.T) {
	out, err := run(t, "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Exit status: 0 when", "1 when it found differences", "2 when it could not run", "replaced by xxxxx"} {
		if !strings.Contains(out, want) {
			t.Errorf("memcell --help lacks %q:\n%s", want, out)
		}
	}
}
