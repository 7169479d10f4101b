package disktest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/memcell/memcell/kv"
)

// childDirEnv makes the test binary act as the writer process that
// testKillKeepsAcknowledgedWrites and testKillAfterGroupSync kill.
const childDirEnv = "DISKTEST_KILL_CHILD_DIR"

const killWrites = 200

// testKillKeepsAcknowledgedWrites checks the backend's durability claim:
// with the options b.KillSafe, a write that returned survives kill -9 of its
// process. The test binary runs itself, limited to this test, as the
// writer.
func testKillKeepsAcknowledgedWrites(t *testing.T, b Backend) {
	killAfterWrites(t, b, b.KillSafe, 0)
}

// testKillAfterGroupSync checks the group sync: with b.GroupSync (no sync
// per write), writes survive kill -9 once three sync intervals have passed
// since they returned.
func testKillAfterGroupSync(t *testing.T, b Backend) {
	if b.GroupSync.Sync || b.GroupSync.SyncInterval <= 0 {
		t.Fatalf("GroupSync must have Sync false and a SyncInterval, got %+v", *b.GroupSync)
	}
	killAfterWrites(t, b, b.GroupSync, 3*b.GroupSync.SyncInterval)
}

// killAfterWrites runs the test binary as a writer process that opens the
// store in a new directory with opts, writes killWrites values, waits wait
// and says so; then kills it with SIGKILL and checks that every write is
// there.
func killAfterWrites(t *testing.T, b Backend, opts *Options, wait time.Duration) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		writeThenHang(b, dir, opts, wait)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run="+runPattern(t.Name()))
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "written\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("writer process said %q, %v", line, err)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred Close runs
		t.Fatal(err)
	}
	cmd.Wait()

	s := b.OpenDir(t, dir, time.Hour)
	for i := range killWrites {
		key := fmt.Sprintf("k%03d", i)
		if v, err := s.Get(context.Background(), key); err != nil || string(v) != key {
			t.Fatalf("after kill -9, Get(%q) = %q, %v; want the acknowledged write", key, v, err)
		}
	}
}

// runPattern returns the -test.run pattern that selects exactly the test
// named name (a subtest name as t.Name gives it).
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// writeThenHang writes killWrites values one Put at a time, waits wait,
// reports it on stdout and waits to be killed.
func writeThenHang(b Backend, dir string, opts *Options, wait time.Duration) {
	s, err := b.Open(context.Background(), dir, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for i := range killWrites {
		key := fmt.Sprintf("k%03d", i)
		if _, err := s.Put(context.Background(), kv.Entry{Key: key, Value: []byte(key), Rev: 1}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	time.Sleep(wait)
	fmt.Println("written")
	time.Sleep(time.Hour) // until killed
}
