// Package redistest finds the Redis servers the tests run against and
// cleans up after them: standalone Redis at $MEMCELL_TEST_REDIS_ADDR
// (default 127.0.0.1:6379) and a Redis Cluster seeded by
// $MEMCELL_TEST_REDIS_CLUSTER (default 127.0.0.1:7100-7102, started by
// scripts/redis-cluster.sh). A test that needs a server that cannot be
// reached fails; it is skipped only under -short.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Default addresses, used when the environment does not name others.
const (
	DefaultStandaloneAddr = "127.0.0.1:6379"
	DefaultClusterAddrs   = "127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102"
)

// Target is one Redis deployment the tests run against.
type Target struct {
	Name    string // "standalone" or "cluster"
	Cluster bool
	Addrs   []string
}

// Standalone is the standalone Redis of the tests.
func Standalone() Target {
	addr := os.Getenv("MEMCELL_TEST_REDIS_ADDR")
	if addr == "" {
		addr = DefaultStandaloneAddr
	}
	return Target{Name: "standalone", Addrs: []string{addr}}
}

// Cluster is the Redis Cluster of the tests.
func Cluster() Target {
	addrs := os.Getenv("MEMCELL_TEST_REDIS_CLUSTER")
	if addrs == "" {
		addrs = DefaultClusterAddrs
	}
	return Target{Name: "cluster", Cluster: true, Addrs: strings.Split(addrs, ",")}
}

// Client returns a new client for tg; the caller closes it.
func (tg Target) Client() redis.UniversalClient {
	if tg.Cluster {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: tg.Addrs, ContextTimeoutEnabled: true})
	}
	return redis.NewClient(&redis.Options{Addr: tg.Addrs[0], ContextTimeoutEnabled: true})
}

// URL is the KV URL of tg with the given options (e.g. "prefix=x:").
func (tg Target) URL(query string) string {
	if tg.Cluster {
		u := "redis+cluster://" + tg.Addrs[0] + "?"
		for _, a := range tg.Addrs[1:] {
			u += "addr=" + a + "&"
		}
		return u + query
	}
	return "redis://" + tg.Addrs[0] + "/0?" + query
}

var reachable sync.Map // target name -> *error of the first ping

// Require fails the test, or skips it under -short, when tg cannot be
// reached.
func (tg Target) Require(t testing.TB) {
	t.Helper()
	v, ok := reachable.Load(tg.Name)
	if !ok {
		c := tg.Client()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.Ping(ctx).Err()
		if err == nil && tg.Cluster {
			var info string
			info, err = c.ClusterInfo(ctx).Result()
			if err == nil && !strings.Contains(info, "cluster_state:ok") {
				err = errors.New("cluster_state is not ok")
			}
		}
		cancel()
		c.Close()
		v, _ = reachable.LoadOrStore(tg.Name, &err)
	}
	err := *v.(*error)
	if err == nil {
		return
	}
	how := "start one with `redis-server --daemonize yes` or set MEMCELL_TEST_REDIS_ADDR (make test does this)"
	if tg.Cluster {
		how = "start one with `scripts/redis-cluster.sh start` or set MEMCELL_TEST_REDIS_CLUSTER to comma-separated seed addresses (make test does this)"
	}
	if testing.Short() {
		t.Skipf("-short: no Redis %s at %s: %v", tg.Name, strings.Join(tg.Addrs, ","), err)
	}
	t.Fatalf("cannot reach Redis %s at %s: %v\n%s", tg.Name, strings.Join(tg.Addrs, ","), err, how)
}

// UniquePrefix returns a key namespace no other test or run uses.
func UniquePrefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "memcell-test:" + hex.EncodeToString(b) + ":"
}

// DeleteNamespace deletes every key under prefix, tombstones included.
func (tg Target) DeleteNamespace(t testing.TB, prefix string) {
	t.Helper()
	c := tg.Client()
	defer c.Close()
	ctx := context.Background()
	del := func(ctx context.Context, node redis.Cmdable) error {
		iter := node.Scan(ctx, 0, EscapeGlob(prefix)+"*", 1000).Iterator()
		pipe := node.Pipeline()
		for iter.Next(ctx) {
			pipe.Unlink(ctx, iter.Val()) // one key per command: keys may be in different slots
		}
		if err := iter.Err(); err != nil {
			return err
		}
		if pipe.Len() == 0 {
			return nil
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return del(ctx, node) })
	} else {
		err = del(ctx, c)
	}
	if err != nil {
		t.Errorf("deleting test keys under %q: %v", prefix, err)
	}
}

// EscapeGlob escapes the glob metacharacters of a Redis MATCH pattern.
func EscapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Server is a private redis-server the test started, for tests that pause
// or stop it (the shared servers must not be).
type Server struct {
	Addr string
	cmd  *exec.Cmd
}

// StartServer starts a redis-server without persistence on a free loopback
// port and stops it when the test ends. It fails the test when
// redis-server is not on PATH or does not answer.
func StartServer(t testing.TB) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v (the tests need redis-server on PATH)", err)
	}
	t.Cleanup(s.Stop)
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s does not answer", s.Addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s
}

// Stop kills the server and waits for it to exit; it may be called more
// than once.
func (s *Server) Stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}
