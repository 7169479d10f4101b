package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/memcell/memcell/mirror"
)

// TestAsyncKVTrouble runs memcell serve in its default mode (async) with
// its KV in a Redis of the test's own, under four concurrent writers, and
// puts the KV through trouble: first Redis holds every write
// (CLIENT PAUSE WRITE), then it is stopped, then started again. Every API
// write must succeed and answer queued, or failed once the KV has failed
// (the queue then sends the writes to the pending record at once); none
// may wait for the KV (in sync mode each write during the pause waits the
// KV timeout, mirror.DefaultKVTimeout); and once Redis is back every write
// lands in the KV with no repair run: a verify finds the stores equal.
func TestAsyncKVTrouble(t *testing.T) {
	rdir := t.TempDir()
	r := startRedis(t, 0, rdir)
	s := startServer(t, nil, "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0",
		"--kv", "redis://"+r.addr()+"/0", "--replay-interval", "100ms", "--log-format", "json")

	var phase atomic.Value
	phase.Store("up")
	type sample struct {
		phase, mirror string
		took          time.Duration
	}
	var (
		mu      sync.Mutex
		samples []sample
		errs    []string
		ids     []string
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: time.Minute}
	defer client.CloseIdleConnections()
	write := func(method, path string, body any) (string, string, time.Duration, error) {
		b, _ := json.Marshal(body)
		req, err := http.NewRequest(method, s.url+path, bytes.NewReader(b))
		if err != nil {
			return "", "", 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return "", "", 0, err
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if resp.StatusCode/100 != 2 {
			return "", "", took, fmt.Errorf("%s %s = %d %s", method, path, resp.StatusCode, data)
		}
		m := resp.Header.Get("Memcell-Mirror")
		if m != string(mirror.MirrorQueued) && m != string(mirror.MirrorFailed) {
			return "", "", took, fmt.Errorf("%s %s: Memcell-Mirror %q, want queued or failed", method, path, m)
		}
		var out struct {
			EventID string `json:"event_id"`
		}
		_ = json.Unmarshal(data, &out)
		return out.EventID, m, took, nil
	}
	for w := range 4 {
		wg.Go(func() {
			var mine []string
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := phase.Load().(string)
				var (
					id, mir string
					took    time.Duration
					err     error
				)
				if len(mine) > 0 && i%3 == 2 {
					_, mir, took, err = write("PATCH", "/v1/memcells/"+mine[i%len(mine)], map[string]any{"summary": fmt.Sprintf("w%d-%d", w, i)})
				} else {
					id, mir, took, err = write("POST", "/v1/memcells", map[string]any{
						"user_id": fmt.Sprintf("trouble-%d", w), "timestamp": "2026-03-01T10:00:00Z", "summary": fmt.Sprintf("w%d-%d", w, i)})
					if id != "" {
						mine = append(mine, id)
					}
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, p+": "+err.Error())
				} else {
					samples = append(samples, sample{p, mir, took})
					if id != "" {
						ids = append(ids, id)
					}
				}
				mu.Unlock()
			}
		})
	}

	time.Sleep(1500 * time.Millisecond)
	ctl := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer ctl.Close()
	phase.Store("paused")
	if err := ctl.Do(context.Background(), "CLIENT", "PAUSE", "3000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3500 * time.Millisecond) // the pause ends by itself after 3 s
	phase.Store("stopped")
	r.stop()
	time.Sleep(3 * time.Second)
	phase.Store("restarted")
	startRedis(t, r.port, rdir)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	loadEnd := time.Now()

	if len(errs) > 0 {
		t.Fatalf("%d API writes failed, e.g. %s", len(errs), errs[0])
	}
	byPhase := map[string][]time.Duration{}
	mirrors := map[string]map[string]int{}
	for _, s := range samples {
		byPhase[s.phase] = append(byPhase[s.phase], s.took)
		if mirrors[s.phase] == nil {
			mirrors[s.phase] = map[string]int{}
		}
		mirrors[s.phase][s.mirror]++
	}
	if n := mirrors["up"]["failed"]; n > 0 {
		t.Errorf("%d writes answered failed while Redis was up", n)
	}
	for _, p := range []string{"up", "paused", "stopped", "restarted"} {
		lat := byPhase[p]
		if len(lat) == 0 {
			t.Fatalf("no write answered while Redis was %s", p)
		}
		slices.Sort(lat)
		q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
		t.Logf("Redis %s: %d writes (Memcell-Mirror %v), p50 %v, p99 %v, max %v", p, len(lat), mirrors[p],
			q(0.5).Round(time.Microsecond), q(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
		if slowest := lat[len(lat)-1]; p != "up" && slowest >= mirror.DefaultKVTimeout {
			t.Errorf("while Redis was %s a write took %v: it waited for the KV", p, slowest)
		}
	}

	// Every write lands in the KV, with no repair: the queue drains into
	// the restarted Redis, and the replayer redoes what the pause and the
	// stop made fail.
	c := newCrashClient()
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rep, err := verifyOnce(c, s.url)
		if err != nil {
			t.Fatal(err)
		}
		if rep.DifferenceCount() == 0 {
			if rep.Scanned < int64(len(ids)) {
				t.Fatalf("verify scanned %d documents, %d were created", rep.Scanned, len(ids))
			}
			t.Logf("%d documents, the KV equal to the primary %v after the load stopped", rep.Scanned, time.Since(loadEnd).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after Redis came back, verify still reports %s\n%s", describeDifferences(rep), tail(s.stderr.String(), 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
