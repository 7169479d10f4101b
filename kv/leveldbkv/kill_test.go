package leveldbkv_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/leveldbkv"
)

// childDirEnv makes the test binary act as the writer process that
// TestKillKeepsAcknowledgedWrites kills.
const childDirEnv = "LEVELDBKV_KILL_CHILD_DIR"

const killWrites = 200

// TestKillKeepsAcknowledgedWrites checks the package's durability claim:
// with Sync false, a write that returned survives kill -9 of its process.
func TestKillKeepsAcknowledgedWrites(t *testing.T) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		writeThenHang(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillKeepsAcknowledgedWrites$")
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

	s := openDir(t, dir, time.Hour)
	for i := range killWrites {
		key := fmt.Sprintf("k%03d", i)
		if v, err := s.Get(context.Background(), key); err != nil || string(v) != key {
			t.Fatalf("after kill -9, Get(%q) = %q, %v; want the acknowledged write", key, v, err)
		}
	}
}

// writeThenHang writes killWrites values one Put at a time, reports it on
// stdout and waits to be killed.
func writeThenHang(dir string) {
	s, err := leveldbkv.Open(context.Background(), dir, nil)
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
	fmt.Println("written")
	time.Sleep(time.Hour) // until killed
}
