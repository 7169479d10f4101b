package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/reconcile"
)

// The crash tests kill memcell serve with SIGKILL at random instants while
// several clients write through the API, start it again, and require that
// within crashConvergence of the restart the KV equals the primary document
// by document, as a verify job sees them, with no repair or sync run.
//
// MEMCELL_CRASH_SEED replays a run (the seed is logged at the start and
// named in every failure): the same operations, pauses and kill delays,
// though not the same interleaving of the writers. MEMCELL_CRASH_KILLS sets
// the number of kills per test.

// crashConvergence is how long after a restart (from when the server
// answers) the KV may differ from the primary.
const crashConvergence = 10 * time.Second

// crashWriters is how many clients write at once.
const crashWriters = 4

// The documents belong to crashUsers users and fall on crashDays days, so
// that a bulk operation scoped to one user and one day touches a handful.
const (
	crashUsers = 8
	crashDays  = 28
)

// TestCrashRedis kills memcell serve mid-load with its KV in a Redis of
// the test's own. In about half the kills Redis holds its write commands
// (CLIENT PAUSE ... WRITE) for a few hundred milliseconds before the kill,
// so that the kill lands on writes done in the primary and not yet in the
// KV. (The pause needs a private server: other packages share the one on
// 6379.)
func TestCrashRedis(t *testing.T) {
	r := startRedis(t, 0, t.TempDir())
	rc := redis.NewClient(&redis.Options{Addr: r.addr()})
	t.Cleanup(func() { rc.Close() })
	args := []string{"--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0",
		"--kv", "redis://" + r.addr() + "/0", "--log-format", "json"}
	runCrashTest(t, args, &crashPauser{
		pause: func(ctx context.Context) error {
			// The mirror's KV calls wait up to 2 s (mirror.DefaultKVTimeout):
			// 3 s of pause outlasts every lead before the kill.
			return rc.Do(ctx, "CLIENT", "PAUSE", "3000", "WRITE").Err()
		},
		unpause: func(ctx context.Context) error { return rc.Do(ctx, "CLIENT", "UNPAUSE").Err() },
	})
}

// TestCrashEmbedded kills memcell serve mid-load with the embedded default:
// the primary (FerretDB on SQLite) and the Pebble KV in its data directory,
// in its own process.
func TestCrashEmbedded(t *testing.T) {
	args := []string{"--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0", "--log-format", "json"}
	runCrashTest(t, args, nil)
}

// crashPauser holds and releases the KV's writes.
type crashPauser struct {
	pause, unpause func(context.Context) error
}

// runCrashTest runs the kill cycles against memcell serve started with
// args. With p, about half the cycles hold the KV's writes shortly before
// the kill.
func runCrashTest(t *testing.T, args []string, p *crashPauser) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MEMCELL_CRASH_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("MEMCELL_CRASH_SEED=%q: %v", s, err)
		}
		seed = uint64(n)
	}
	kills := 20
	if s := os.Getenv("MEMCELL_CRASH_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("MEMCELL_CRASH_KILLS=%q: want a positive number", s)
		}
		kills = n
	}
	t.Logf("seed %d (replay with MEMCELL_CRASH_SEED=%d), %d kills", int64(seed), int64(seed), kills)
	// Failures reported by the helpers shared with the other tests do not
	// name the seed.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the failing run had seed %d", int64(seed))
		}
	})
	rng := rand.New(rand.NewPCG(seed, 0x6372617368))
	fail := func(format string, a ...any) {
		t.Helper()
		t.Fatalf("seed %d: %s", int64(seed), fmt.Sprintf(format, a...))
	}

	// The cycles alternate the mirror modes: the server killed in an odd
	// cycle runs async (the default), in an even one sync.
	modeArgs := func(cycle int) []string {
		return append(slices.Clip(args), "--mirror-mode", []string{"sync", "async"}[cycle%2])
	}
	began := time.Now()
	load := newCrashLoad()
	s := startServer(t, nil, modeArgs(1)...)
	var maxConv time.Duration
	var killed int
	for cycle := 1; cycle <= kills; cycle++ {
		if d, ok := t.Deadline(); ok && time.Until(d) < 30*time.Second {
			fail("cycle %d of %d: too close to the test deadline to go on", cycle, kills)
		}
		wait := time.Duration(100+rng.IntN(1101)) * time.Millisecond
		pause := p != nil && rng.IntN(2) == 0
		var lead time.Duration
		if pause {
			lead = min(wait, time.Duration(150+rng.IntN(251))*time.Millisecond)
		}

		stats := load.run(s.url, crashWriters, rng.Uint64())
		time.Sleep(wait - lead)
		if pause {
			if err := p.pause(context.Background()); err != nil {
				stats.stop()
				fail("cycle %d: pausing the KV's writes: %v", cycle, err)
			}
			time.Sleep(lead)
		}
		s.kill()
		killed++
		if pause {
			if err := p.unpause(context.Background()); err != nil {
				stats.stop()
				fail("cycle %d: unpausing the KV's writes: %v", cycle, err)
			}
		}
		answered, cut := stats.stop()
		if bad := load.badRequests(); bad != "" {
			fail("cycle %d: the load sent requests the API refused as invalid: %s", cycle, bad)
		}

		restart := time.Now()
		s = startServer(t, nil, modeArgs(cycle+1)...)
		up := time.Now()
		conv, rep, err := convergeKV(s.url, up)
		how := modeArgs(cycle)[len(args)+1] + " mode, no pause"
		if pause {
			how = fmt.Sprintf("%s mode, KV writes paused %v before", modeArgs(cycle)[len(args)+1], lead)
		}
		if err != nil {
			fail("cycle %d (killed %v into the load, %s, %d requests answered, cut off: %s): %v\n%s",
				cycle, wait, how, answered, cut, err, tail(s.stderr.String(), 20))
		}
		if rep.DifferenceCount() != 0 {
			fail("cycle %d (killed %v into the load, %s, %d requests answered, cut off: %s): %v after the restart the verify still reports %s\nwhat the load did to them (bulk operations aside):%s",
				cycle, wait, how, answered, cut, crashConvergence, describeDifferences(rep), load.explain(rep))
		}
		maxConv = max(maxConv, conv)
		t.Logf("cycle %d: killed %v into the load (%s), %d requests answered, cut off: %s; restarted in %v; KV equal to the primary %v after (%d documents)",
			cycle, wait, how, answered, cut, up.Sub(restart).Round(time.Millisecond), conv.Round(time.Millisecond), rep.Scanned)
	}

	// A clean stop leaves the stores equal too.
	s.stop()
	s = startServer(t, nil, args...)
	rep, err := verifyOnce(newCrashClient(), s.url)
	if err != nil {
		fail("verify after a clean stop and start: %v", err)
	}
	if rep.DifferenceCount() != 0 {
		fail("verify after a clean stop and start reports %s", describeDifferences(rep))
	}
	s.stop()
	t.Logf("%d kills, %d requests answered (%s), %d documents at the end; slowest convergence %v; took %v",
		killed, load.ops.Load(), load.statusSummary(), rep.Scanned, maxConv.Round(time.Millisecond), time.Since(began).Round(time.Second))
}

// kill stops the server with SIGKILL and waits for it to exit.
func (s *server) kill() {
	s.t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		s.t.Fatalf("memcell serve did not exit within a minute of SIGKILL")
	}
}

// convergeKV runs verify jobs against the server at base, which answered
// at up, until one reports no difference, and returns how long after up
// that verify ended and its report. It starts no verify later than
// crashConvergence after up; the last report is returned when none found
// the stores equal.
func convergeKV(base string, up time.Time) (time.Duration, *reconcile.Report, error) {
	c := newCrashClient()
	defer c.CloseIdleConnections()
	for {
		rep, err := verifyOnce(c, base)
		if err != nil {
			return 0, nil, err
		}
		if rep.DifferenceCount() == 0 || time.Since(up) >= crashConvergence {
			return time.Since(up), rep, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// verifyOnce runs one verify job in the server at base and returns its
// report.
func verifyOnce(c *http.Client, base string) (*reconcile.Report, error) {
	status, body, err := crashRequest(context.Background(), c, "POST", base+"/v1/admin/jobs", map[string]any{"kind": httpapi.JobVerify})
	if err != nil {
		return nil, err
	}
	var j httpapi.Job
	if status != http.StatusAccepted || json.Unmarshal(body, &j) != nil {
		return nil, fmt.Errorf("POST /v1/admin/jobs: %d %s", status, body)
	}
	deadline := time.Now().Add(time.Minute)
	for !j.Done() {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("verify job %s still %s after a minute", j.ID, j.State)
		}
		time.Sleep(20 * time.Millisecond)
		status, body, err := crashRequest(context.Background(), c, "GET", base+"/v1/admin/jobs/"+j.ID, nil)
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK || json.Unmarshal(body, &j) != nil {
			return nil, fmt.Errorf("GET /v1/admin/jobs/%s: %d %s", j.ID, status, body)
		}
	}
	if j.State != httpapi.JobSucceeded || j.Report == nil {
		return nil, fmt.Errorf("verify job %s %s: %s", j.ID, j.State, j.Error)
	}
	return j.Report, nil
}

// describeDifferences lists a report's nonzero difference counts, every
// kind, and its first samples.
func describeDifferences(rep *reconcile.Report) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(rep.Differences)) {
		if n := rep.Differences[k]; n != 0 {
			parts = append(parts, fmt.Sprintf("%s: %d", k, n))
		}
	}
	out := strings.Join(parts, ", ")
	for i, d := range rep.Samples {
		if i == 5 {
			out += fmt.Sprintf("; %d more samples", len(rep.Samples)-i)
			break
		}
		out += fmt.Sprintf("; %s %s", d.Kind, d.EventID)
		for _, f := range d.Fields {
			b, _ := json.Marshal(f)
			out += " " + string(b)
		}
	}
	return out
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// newCrashClient returns a client of its own, so that the connections to a
// killed server are not reused, with a timeout so that no request outlives
// the test.
func newCrashClient() *http.Client {
	return &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
}

// crashRequest sends one request with a JSON body (if non-nil) and returns
// the status and the body of the answer.
func crashRequest(ctx context.Context, c *http.Client, method, u string, body any) (int, []byte, error) {
	status, data, _, err := crashRequestHeader(ctx, c, method, u, body)
	return status, data, err
}

// crashRequestHeader is crashRequest, and also returns the answer's
// headers.
func crashRequestHeader(ctx context.Context, c *http.Client, method, u string, body any) (int, []byte, http.Header, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, data, resp.Header, nil
}

// crashLoad is the mixed write load of every cycle. It remembers the ids
// it created and those it hard-deleted, across kills, so that later
// operations find documents and a hard-deleted id gets created again.
type crashLoad struct {
	ops atomic.Int64 // requests answered

	mu       sync.Mutex
	ids      []string
	gone     []string
	statuses map[string]int64 // "op status" -> count
	// history lists, per id, the single-document operations sent and
	// their answers (bulk operations name no id), in the order they were
	// answered, to explain a difference.
	history map[string][]string
	invalid []string // answers 400 or 422: the load is wrong
}

func newCrashLoad() *crashLoad {
	return &crashLoad{statuses: map[string]int64{}, history: map[string][]string{}}
}

// explain returns the history of each id of a report's samples.
func (l *crashLoad) explain(rep *reconcile.Report) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, d := range rep.Samples {
		h := l.history[d.EventID]
		if len(h) == 0 {
			h = []string{"(not named by the load: an append whose answer was lost)"}
		}
		fmt.Fprintf(&b, "\n  %s %s: %s", d.Kind, d.EventID, strings.Join(h, ", "))
	}
	return b.String()
}

// crashRun is one cycle's writers.
type crashRun struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ops    atomic.Int64
	client *http.Client

	mu  sync.Mutex
	cut []string // the operations that got no answer
}

// run starts n writers against base. They stop at their first transport
// error (the server was killed) or when stop is called.
func (l *crashLoad) run(base string, n int, seed uint64) *crashRun {
	ctx, cancel := context.WithCancel(context.Background())
	cr := &crashRun{cancel: cancel, client: newCrashClient()}
	for i := range n {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		cr.wg.Go(func() {
			for ctx.Err() == nil {
				if !l.step(ctx, cr, base, rng) {
					return
				}
			}
		})
	}
	return cr
}

// stop stops the writers, waits for them and returns how many requests
// were answered and the operations that got no answer.
func (cr *crashRun) stop() (int64, string) {
	cr.cancel()
	cr.wg.Wait()
	cr.client.CloseIdleConnections()
	cr.mu.Lock()
	defer cr.mu.Unlock()
	slices.Sort(cr.cut)
	return cr.ops.Load(), strings.Join(cr.cut, ", ")
}

// step does one random operation and reports whether the server answered.
func (l *crashLoad) step(ctx context.Context, cr *crashRun, base string, rng *rand.Rand) bool {
	var (
		op, method, path string
		body             any
		target           string // the id the operation names, if one
	)
	users := func() string { return fmt.Sprintf("crash-%d", rng.IntN(crashUsers)) }
	switch x := rng.IntN(100); {
	case x < 35:
		op, method, path = "append", "POST", "/v1/memcells"
		d := map[string]any{
			"user_id":      users(),
			"timestamp":    fmt.Sprintf("2026-03-%02dT%02d:%02d:%02dZ", 1+rng.IntN(crashDays), rng.IntN(24), rng.IntN(60), rng.IntN(60)),
			"summary":      fmt.Sprintf("crash test %x", rng.Uint32()),
			"keywords":     []string{fmt.Sprintf("k%d", rng.IntN(10)), "crash"},
			"participants": []string{"erin", fmt.Sprintf("p%d", rng.IntN(5))},
			"type":         "Conversation",
		}
		// Some appends choose their id: a hard-deleted one (made again
		// over its KV tombstone) or a new one.
		switch y := rng.IntN(100); {
		case y < 25:
			if id, ok := l.takeGone(rng); ok {
				d["event_id"] = id
				op, target = "re-create", id
			}
		case y < 35:
			target = fmt.Sprintf("%08x%016x", rng.Uint32(), rng.Uint64())
			d["event_id"] = target
			op = "create with id"
		}
		body = d
	case x < 90:
		id, ok := l.pick(rng)
		if !ok {
			return true
		}
		target = id
		switch {
		case x < 60:
			op, method, path = "update", "PATCH", "/v1/memcells/"+id
			fields := map[string]any{"summary": fmt.Sprintf("updated %x", rng.Uint32())}
			if rng.IntN(3) == 0 {
				fields["keywords"] = []string{fmt.Sprintf("u%d", rng.IntN(10))}
			}
			body = fields
		case x < 70:
			op, method, path = "soft delete", "DELETE", "/v1/memcells/"+id+"?deleted_by=crash"
		case x < 78:
			op, method, path = "restore", "POST", "/v1/memcells/"+id+"/restore"
		default:
			op, method, path = "hard delete", "DELETE", "/v1/memcells/"+id+"?hard=true"
		}
	default:
		day := 1 + rng.IntN(crashDays)
		q := url.Values{
			"user_id": {users()},
			"start":   {fmt.Sprintf("2026-03-%02dT00:00:00Z", day)},
			"end":     {fmt.Sprintf("2026-03-%02dT23:59:59Z", day)},
		}
		switch rng.IntN(10) {
		case 0, 1, 2, 3:
			op, method = "bulk soft delete", "DELETE"
			q.Set("deleted_by", "crash")
			path = "/v1/memcells?" + q.Encode()
		case 4, 5, 6:
			op, method, path = "bulk restore", "POST", "/v1/memcells/restore?"+q.Encode()
		default:
			op, method = "bulk hard delete", "DELETE"
			q.Set("hard", "true")
			path = "/v1/memcells?" + q.Encode()
		}
	}

	status, data, header, err := crashRequestHeader(ctx, cr.client, method, base+path, body)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		cr.mu.Lock()
		cr.cut = append(cr.cut, op)
		cr.mu.Unlock()
		if target != "" {
			l.history[target] = append(l.history[target], op+": no answer")
		}
		return false
	}
	cr.ops.Add(1)
	l.ops.Add(1)
	l.statuses[fmt.Sprintf("%s %d", op, status)]++
	if status == http.StatusBadRequest || status == http.StatusUnprocessableEntity {
		l.invalid = append(l.invalid, fmt.Sprintf("%s %s: %d %s", method, path, status, data))
	}
	if op == "hard delete" && status == http.StatusNoContent {
		l.gone = append(l.gone, target)
	}
	if status == http.StatusCreated {
		var created struct {
			EventID string `json:"event_id"`
		}
		if json.Unmarshal(data, &created) == nil && created.EventID != "" {
			l.ids = append(l.ids, created.EventID)
			target = created.EventID
		}
	}
	if target != "" {
		h := fmt.Sprintf("%s: %d", op, status)
		if m := header.Get("Memcell-Mirror"); m != "" {
			h += " (mirror " + m + ")"
		}
		l.history[target] = append(l.history[target], h)
	}
	return true
}

// pick returns a random id the load created.
func (l *crashLoad) pick(rng *rand.Rand) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ids) == 0 {
		return "", false
	}
	return l.ids[rng.IntN(len(l.ids))], true
}

// takeGone removes and returns a random hard-deleted id.
func (l *crashLoad) takeGone(rng *rand.Rand) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.gone) == 0 {
		return "", false
	}
	i := rng.IntN(len(l.gone))
	id := l.gone[i]
	l.gone = slices.Delete(l.gone, i, i+1)
	return id, true
}

// badRequests describes the requests the API refused as invalid.
func (l *crashLoad) badRequests() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.invalid) == 0 {
		return ""
	}
	return fmt.Sprintf("%d, the first: %s", len(l.invalid), l.invalid[0])
}

// statusSummary lists the answers by operation and status.
func (l *crashLoad) statusSummary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l.statuses)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, l.statuses[k]))
	}
	return strings.Join(parts, ", ")
}
