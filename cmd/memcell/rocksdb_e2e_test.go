//go:build rocksdb

package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv/rocksdbkv"
)

// TestEndToEndRocksDB runs a memcell built with the tag rocksdb on a
// RocksDB store: its version and memcell_build_info say RocksDB is linked
// in; writes and validated reads, kv verify against the
// server, a restart on the same directories, and the store's contents
// read with rocksdbkv once the server is stopped.
func TestEndToEndRocksDB(t *testing.T) {
	bin := binaryWithTags(t, "rocksdb")
	dir := t.TempDir()
	kvDir := filepath.Join(t.TempDir(), "kv")
	args := []string{"--data-dir", dir, "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0",
		"--kv", "rocksdb:" + kvDir}
	s := startServerOf(t, bin, nil, args...)
	live := exercise(t, s) // writes, and reads validated as consistent
	if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil || !bytes.Contains(out, []byte("\n  rocksdb:  yes\n")) {
		t.Errorf("memcell version of the rocksdb build = %s, %v; want rocksdb: yes", out, err)
	}
	if _, page := s.call("GET", "/metrics", "", nil, nil); !bytes.Contains(page, []byte(`rocksdb="true"`)) {
		t.Errorf("/metrics of the rocksdb build: %s", grepLines(string(page), "memcell_build_info"))
	}

	out, err := exec.Command(bin, "kv", "stats", "--server", s.url).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(`"backend": "rocksdb"`)) {
		t.Errorf("kv stats against the server = %s, %v; want backend rocksdb", out, err)
	}
	s.stop()

	s = startServerOf(t, bin, nil, args...)
	readBack(t, s, live) // validated reads and the KV's entry count
	out, err = exec.Command(bin, "kv", "verify", "--server", s.url, "--progress", "none").CombinedOutput()
	if err != nil {
		t.Errorf("kv verify against the server: %v\n%s", err, out)
	}
	s.stop()

	st, err := rocksdbkv.Open(context.Background(), kvDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for id := range live {
		if _, err := st.Get(context.Background(), memcell.DefaultKeyPrefix+id); err != nil {
			t.Errorf("the RocksDB store in %s lacks %s: %v", kvDir, id, err)
		}
	}
}
