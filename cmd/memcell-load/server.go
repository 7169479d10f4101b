package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// server is a memcell serve process on the embedded default (--serve).
type server struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{} // closed when the process has exited; err is set then
	err    error
}

// serverStartTimeout bounds the wait for a started server's API.
const serverStartTimeout = 2 * time.Minute

// startServer runs "bin serve" on the embedded default with its data in
// dir, the API and the embedded primary on free loopback ports, and waits
// until it prints the address of its API. Its log (warnings and errors)
// goes to logs, which must be safe for concurrent writes unless it is an
// *os.File. The MEMCELL_ variables of this environment are not passed
// on, so that the server runs on the defaults whatever the shell holds.
func startServer(ctx context.Context, bin, dir string, logs io.Writer) (*server, error) {
	cmd := exec.Command(bin, "serve", "--data-dir", dir, "--addr", "127.0.0.1:0",
		"--embedded-addr", "127.0.0.1:0", "--log-level", "warn")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MEMCELL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: starting %s: %v", ErrCouldNotRun, bin, err)
	}
	s := &server{cmd: cmd, exited: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "api:"); ok {
				select {
				case urls <- strings.TrimSpace(rest):
				default:
				}
			}
		}
	}()
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	timer := time.NewTimer(serverStartTimeout)
	defer timer.Stop()
	select {
	case s.url = <-urls:
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("%w: %s serve exited at start: %v", ErrCouldNotRun, bin, s.err)
	case <-ctx.Done():
		s.kill()
		return nil, ctx.Err()
	case <-timer.C:
		s.kill()
		return nil, fmt.Errorf("%w: %s serve printed no API address within %s", ErrCouldNotRun, bin, serverStartTimeout)
	}
}

// stop asks the server to stop (SIGTERM) and waits for it, killing it
// after a minute.
func (s *server) stop() error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-s.exited:
		if s.err != nil {
			return fmt.Errorf("memcell serve exited with %v after SIGTERM", s.err)
		}
		return nil
	case <-time.After(time.Minute):
		s.kill()
		return errors.New("memcell serve did not stop within a minute of SIGTERM; killed")
	}
}

// kill ends the process at once and waits for it.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}
