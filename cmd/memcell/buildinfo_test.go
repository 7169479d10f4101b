package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVersion checks "memcell version" and "memcell --version" in a test
// binary, which go test stamps with no VCS settings: they say unknown.
func TestVersion(t *testing.T) {
	out, err := run(t, "version")
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	for _, want := range []string{"memcell ", "\n  revision: unknown\n", "\n  time:     unknown\n", "\n  go:       go1.", "\n  rocksdb:  no "} {
		if !strings.Contains(out, want) {
			t.Errorf("version = %q, lacks %q", out, want)
		}
	}
	flag, err := run(t, "--version")
	if err != nil || flag != out {
		t.Errorf("--version = %q, %v; want what version prints, %q", flag, err, out)
	}
}

// TestMakeBuildIdentity builds memcell with make build and checks that it
// names the checkout's revision, in "memcell version", "memcell
// --version" and the memcell_build_info gauge of a running server.
func TestMakeBuildIdentity(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "memcell")
	if out, err := exec.Command("make", "-C", "../..", "-s", "build", "BIN="+bin).CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	rev := strings.TrimSpace(string(head))
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("memcell version: %v\n%s", err, out)
	}
	line := regexp.MustCompile(`(?m)^  revision: ([0-9a-f]{40})(\+dirty)?$`).FindStringSubmatch(string(out))
	if line == nil || line[1] != rev {
		t.Errorf("memcell version =\n%s\nwant the revision %s", out, rev)
	}
	if !regexp.MustCompile(`(?m)^  time:     \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).Match(out) {
		t.Errorf("memcell version =\n%s\nwant the commit time", out)
	}
	flag, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || string(flag) != string(out) {
		t.Errorf("memcell --version = %q, %v; want %q", flag, err, out)
	}

	s := startServerOf(t, bin, nil, "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0")
	_, metrics := s.call("GET", "/metrics", "", nil, nil)
	gauge := regexp.MustCompile(`(?m)^memcell_build_info\{go_version="go1\.[^"]+",revision="` + rev + `(\+dirty)?",rocksdb="false",version="[^"]+"\} 1$`)
	if !gauge.Match(metrics) {
		t.Errorf("/metrics has no memcell_build_info of revision %s:\n%s", rev, grepLines(string(metrics), "memcell_build_info"))
	}
	s.stop()
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
