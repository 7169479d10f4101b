package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memcell/memcell/memcelltest"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/pebblekv"
	"github.com/memcell/memcell/reconcile"
)

// runCLI runs the built binary and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return runCLIEnv(t, nil, args...)
}

// TestEndToEndJobs stores MemCells through the server, damages the KV by
// hand, and checks that kv verify, repair (dry run and real) and sync behave
// and exit as documented.
func TestEndToEndJobs(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, nil, "--data-dir", dir, "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0")
	var ids []string
	for range 5 {
		var created doc
		s.want("POST", "/v1/memcells", doc{"user_id": "alice", "timestamp": "2026-01-12T10:30:00Z"}, 201, &created)
		ids = append(ids, created["event_id"].(string))
	}
	s.stop()

	// --addr names where no server listens: the jobs open the stores.
	store := []string{"--data-dir", dir, "--embedded-addr", "127.0.0.1:0", "--progress", "json", "--addr", freeAddr(t)}
	report := filepath.Join(t.TempDir(), "report.json")
	verify := func(wantCode int) map[string]any {
		t.Helper()
		code, out := runCLI(t, append([]string{"kv", "verify", "--report", report}, store...)...)
		if code != wantCode {
			t.Fatalf("kv verify exit %d, want %d:\n%s", code, wantCode, out)
		}
		var rep map[string]any
		b, err := os.ReadFile(report)
		if err != nil || json.Unmarshal(b, &rep) != nil {
			t.Fatalf("report: %v %s", err, b)
		}
		return rep
	}
	if rep := verify(0); rep["scanned"] != 5.0 {
		t.Errorf("verify report = %v, want 5 scanned", rep)
	}

	// Damage the KV while no server holds it: one copy overwritten at the
	// same revision, one extra key. (A deleted copy would leave a tombstone,
	// which a repair must respect: see the repair test in reconcile.)
	kvs, err := pebblekv.Open(context.Background(), filepath.Join(dir, "kv"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := kvs.Put(ctx, kv.Entry{Key: "memcell:" + ids[0], Value: []byte(`{"tampered":true}`), Rev: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := kvs.Put(ctx, kv.Entry{Key: "memcell:65a1b2c3d4e5f60718293a4b", Value: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	kvs.Close()

	rep := verify(1)
	if d, _ := rep["differences"].(map[string]any); d["differs"] != 1.0 || d["extra"] != 1.0 {
		t.Errorf("verify differences = %v, want one differing copy and one extra", rep["differences"])
	}
	if code, out := runCLI(t, append([]string{"kv", "repair", "--dry-run"}, store...)...); code != 1 {
		t.Fatalf("repair --dry-run of a mirror with differences: exit %d, want 1:\n%s", code, out)
	} else if want := "would repair 2: 1 extra (ids: 65a1b2c3d4e5f60718293a4b), 1 differs (ids: " + ids[0] + "); nothing written"; !strings.Contains(out, want) {
		t.Errorf("repair --dry-run does not say %q:\n%s", want, out)
	}
	verify(1) // the dry run wrote nothing
	// One extra among 6 KV keys is over the default --max-delete of 5%:
	// the repair fixes the differing copy, deletes nothing, and exits 2.
	if code, out := runCLI(t, append([]string{"kv", "repair"}, store...)...); code != 2 ||
		!strings.Contains(out, "refused: 1 extra KV copy would be deleted (16.7% of the 6 scanned), over --max-delete 5%") {
		t.Fatalf("repair exit %d, want 2 and refused:\n%s", code, out)
	}
	if rep := verify(1); rep["kv_scanned"] != 6.0 {
		t.Errorf("verify after the refused repair: %v, want the 6 KV keys still there", rep)
	} else if d, _ := rep["differences"].(map[string]any); d["extra"] != 1.0 || d["differs"] != nil {
		t.Errorf("verify after the refused repair: differences %v, want the extra only", d)
	}
	if code, out := runCLI(t, append([]string{"kv", "repair", "--max-delete", "1"}, store...)...); code != 0 {
		t.Fatalf("repair --max-delete 1 exit %d:\n%s", code, out)
	}
	verify(0)
	code, out := runCLI(t, append([]string{"kv", "sync"}, store...)...)
	if code != 0 {
		t.Fatalf("sync exit %d:\n%s", code, out)
	}
	// The job's last log line gives its duration in seconds.
	var finished map[string]any
	for line := range strings.Lines(out) {
		if strings.Contains(line, `"reconcile: job finished"`) {
			_ = json.Unmarshal([]byte(line), &finished)
		}
	}
	if s, ok := finished["elapsed_seconds"].(float64); !ok || s <= 0 || finished["elapsed"] != nil {
		t.Errorf("sync's last log line = %v, want elapsed_seconds (a number)", finished)
	}
	if !strings.Contains(out, "sync: 5 documents and 0 KV keys scanned in ") || !strings.Contains(out, ", no differences; 5 repaired, 0 unrepaired") {
		t.Errorf("sync output does not have the summary line:\n%s", out)
	}
	verify(0)

	// Could not run: exit 2.
	if code, out := runCLI(t, "kv", "verify", "--data-dir", dir, "--embedded-addr", "127.0.0.1:0", "--addr", freeAddr(t), "--kv", "nosuch://x"); code != 2 {
		t.Errorf("verify with a bad KV URL exit %d, want 2:\n%s", code, out)
	}
}

// freeAddr returns a loopback address nothing listens on (a port the
// system just gave out and took back).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// runCLIEnv runs the built binary with env added to the environment and
// returns its exit code and output.
func runCLIEnv(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("%v: %v", args, err)
	return -1, ""
}

// TestEndToEndJobsInServer runs kv verify, repair and sync while memcell
// serve holds the embedded default (Pebble, which allows one process):
// they run in the server, beside writes through the API.
func TestEndToEndJobsInServer(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	const token = "s3cret"
	s := startServer(t, []string{"MEMCELL_API_TOKEN=" + token}, "--data-dir", dir, "--addr", addr, "--embedded-addr", "127.0.0.1:0")
	post := func() error {
		req, err := http.NewRequest("POST", s.url+"/v1/memcells", strings.NewReader(`{"user_id":"alice","timestamp":"2026-01-12T10:30:00Z"}`))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("POST /v1/memcells: %s", resp.Status)
		}
		return nil
	}
	for range 300 {
		if err := post(); err != nil {
			t.Fatal(err)
		}
	}

	// Writes go on while the verify runs.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	var writeErr atomic.Value
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := post(); err != nil {
				writeErr.Store(err)
				return
			}
			writes.Add(1)
			time.Sleep(20 * time.Millisecond)
		}
	})
	env := []string{"MEMCELL_API_TOKEN=" + token}
	store := []string{"--data-dir", dir, "--embedded-addr", "127.0.0.1:0", "--progress", "json"}
	report := filepath.Join(t.TempDir(), "report.json")
	code, out := runCLIEnv(t, env, append([]string{"kv", "verify", "--addr", addr, "--rate", "100", "--report", report}, store...)...)
	close(stop)
	wg.Wait()
	if err, _ := writeErr.Load().(error); err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("kv verify beside the server exit %d:\n%s\n%s", code, out, s.stderr)
	}
	for _, want := range []string{"runs in the memcell server at http://" + addr, `"phase":"primary"`, `"phase":"kv"`, "verify: ", ", no differences"} {
		if !strings.Contains(out, want) {
			t.Errorf("kv verify output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("kv verify beside %d writes:\n%s", writes.Load(), out)
	if strings.Contains(out, "resource temporarily unavailable") || writes.Load() == 0 {
		t.Errorf("%d writes during the verify; output:\n%s", writes.Load(), out)
	}
	var rep map[string]any
	if b, err := os.ReadFile(report); err != nil || json.Unmarshal(b, &rep) != nil || rep["job"] != "verify" || rep["scanned"].(float64) < 300 {
		t.Errorf("report %v (%v)", rep, err)
	}

	// The address from the environment, and the other kinds.
	env = append(env, "MEMCELL_ADDR="+addr)
	for _, args := range [][]string{{"kv", "repair", "--dry-run"}, {"kv", "repair"}, {"kv", "sync"}} {
		if code, out := runCLIEnv(t, env, append(args, store...)...); code != 0 || !strings.Contains(out, "runs in the memcell server") {
			t.Errorf("%v exit %d:\n%s", args, code, out)
		}
	}
	// Without the token the server refuses, and the command says why.
	if code, out := runCLI(t, append([]string{"kv", "verify", "--server", "http://" + addr}, store...)...); code != 2 || !strings.Contains(out, "MEMCELL_API_TOKEN") {
		t.Errorf("kv verify without the token exit %d:\n%s", code, out)
	}
	if code, out := runCLIEnv(t, env, append([]string{"kv", "verify", "--checkpoint", filepath.Join(t.TempDir(), "cp")}, store...)...); code != 2 || !strings.Contains(out, "--checkpoint is not supported") {
		t.Errorf("kv verify --checkpoint beside the server exit %d:\n%s", code, out)
	}

	// Ctrl-C cancels the job in the server.
	cmd := exec.Command(binary(t), append([]string{"kv", "verify", "--rate", "20"}, store...)...)
	cmd.Env = append(os.Environ(), env...)
	var cliOut memcelltest.Buffer
	cmd.Stdout, cmd.Stderr = &cliOut, &cliOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); !strings.Contains(cliOut.String(), "runs in the memcell server"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("kv verify did not start a job:\n%s", cliOut.String())
		}
	}
	_ = cmd.Process.Signal(os.Interrupt)
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Errorf("kv verify after Ctrl-C: %v, want exit 2:\n%s", err, cliOut.String())
	}
	var list struct {
		Jobs []struct{ Kind, State string }
	}
	resp, body := s.call("GET", "/v1/admin/jobs", token, nil, &list)
	if resp.StatusCode != http.StatusOK || len(list.Jobs) != 5 || list.Jobs[0].Kind != "verify" || list.Jobs[0].State != "cancelled" {
		t.Errorf("jobs after Ctrl-C: %s", body)
	}
	_, page := s.call("GET", "/metrics", token, nil, nil)
	for _, want := range []string{`memcell_job_documents_scanned_total{job="verify"}`, `memcell_job_repaired_total{job="sync"}`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// A shutdown cancels a running job and waits for it.
	if resp, body := s.call("POST", "/v1/admin/jobs", token, map[string]any{"kind": "repair", "rate": 5}, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/admin/jobs: %d %s", resp.StatusCode, body)
	}
	s.stop()
	if logs := s.stderr.String(); !strings.Contains(logs, `"msg":"job ended"`) || !strings.Contains(logs, `"state":"cancelled"`) {
		t.Errorf("no log line of the cancelled repair at shutdown:\n%s", logs)
	}

	// With nothing serving, kv verify opens the stores itself.
	code, out = runCLIEnv(t, env, append([]string{"kv", "verify"}, store...)...)
	if code != 0 || strings.Contains(out, "runs in the memcell server") || !strings.Contains(out, "verify: ") {
		t.Errorf("kv verify with no server exit %d:\n%s", code, out)
	}
	// An explicit --server must answer.
	if code, out := runCLI(t, append([]string{"kv", "verify", "--server", addr}, store...)...); code != 2 || !strings.Contains(out, "no memcell server answers") {
		t.Errorf("kv verify --server with nothing there exit %d:\n%s", code, out)
	}
}

func TestServerBase(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8080":        "http://127.0.0.1:8080",
		":8080":                 "http://127.0.0.1:8080",
		"0.0.0.0:9000":          "http://127.0.0.1:9000",
		"[::]:9000":             "http://[::1]:9000",
		"db.example:80":         "http://db.example:80",
		"https://memcell.host/": "https://memcell.host",
		"http://10.0.0.5:8080":  "http://10.0.0.5:8080",
	} {
		if got, err := serverBase(in, false); err != nil || got != want {
			t.Errorf("serverBase(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	// With TLS configured an address gets https://; a URL keeps its scheme.
	for in, want := range map[string]string{
		"127.0.0.1:8443":       "https://127.0.0.1:8443",
		":8443":                "https://127.0.0.1:8443",
		"http://10.0.0.5:8080": "http://10.0.0.5:8080",
	} {
		if got, err := serverBase(in, true); err != nil || got != want {
			t.Errorf("serverBase(%q, TLS) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := serverBase("no-port", false); !errors.Is(err, errUsage) {
		t.Errorf("serverBase(no-port) = %v, want a usage error", err)
	}
}

// TestFinishJobSummary checks the summary line and exit error of a repair
// that lowered revisions, and the advice given for unrepaired documents.
func TestFinishJobSummary(t *testing.T) {
	start := time.Now()
	rep := &reconcile.Report{Job: "repair", Started: start, Finished: start.Add(time.Second),
		Differences: map[reconcile.Kind]int64{reconcile.Differs: 2}, Repaired: 2, RevisionsLowered: 1}
	var out strings.Builder
	if err := finishJob(rep, &jobOptions{}, &out); err != nil {
		t.Errorf("finishJob of a complete repair = %v, want nil", err)
	}
	if want := "2 repaired (1 with the revision lowered: the primary's went down), 0 unrepaired"; !strings.Contains(out.String(), want) {
		t.Errorf("summary %q does not say %q", out.String(), want)
	}

	rep.Repaired, rep.RevisionsLowered, rep.Unrepaired = 1, 0, 1
	out.Reset()
	err := finishJob(rep, &jobOptions{}, &out)
	if !errors.Is(err, errDifferences) || !strings.Contains(err.Error(), "tombstone") || strings.Contains(err.Error(), "newer revision") {
		t.Errorf("finishJob with an unrepaired document = %v; want errDifferences naming tombstones, not newer revisions", err)
	}
	if strings.Contains(out.String(), "lowered") {
		t.Errorf("summary %q mentions lowered revisions, none were", out.String())
	}
}

// TestJobSummary checks the summary lines: differences by kind in a fixed
// order (no Go map syntax), "no differences" when none, and for a dry run
// what a repair would change, with the first ids of each kind.
func TestJobSummary(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rep := func(job string, dry bool, d map[reconcile.Kind]int64, samples ...reconcile.Diff) *reconcile.Report {
		return &reconcile.Report{Job: job, DryRun: dry, Started: start, Finished: start.Add(1500 * time.Millisecond),
			Scanned: 10, KVScanned: 12, Differences: d, Samples: samples}
	}
	missing := func(ids ...string) []reconcile.Diff {
		var ds []reconcile.Diff
		for _, id := range ids {
			ds = append(ds, reconcile.Diff{EventID: id, Kind: reconcile.Missing})
		}
		return ds
	}
	for _, tc := range []struct {
		rep  *reconcile.Report
		want string
	}{
		{rep("verify", false, map[reconcile.Kind]int64{}),
			"verify: 10 documents and 12 KV keys scanned in 1.5s, no differences"},
		{rep("verify", false, map[reconcile.Kind]int64{reconcile.Unreadable: 1, reconcile.Differs: 2, reconcile.Extra: 0, reconcile.Missing: 5}),
			"verify: 10 documents and 12 KV keys scanned in 1.5s, 8 differences: 5 missing, 2 differs, 1 unreadable"},
		{rep("repair", false, map[reconcile.Kind]int64{reconcile.Stale: 1, reconcile.Extra: 2}),
			"repair: 10 documents and 12 KV keys scanned in 1.5s, 3 differences: 2 extra, 1 stale; 0 repaired, 0 unrepaired"},
		{rep("repair", true, map[reconcile.Kind]int64{reconcile.Missing: 7, reconcile.Extra: 1},
			append(missing("a", "b", "c", "d", "e", "f"), reconcile.Diff{EventID: "x", Kind: reconcile.Extra})...),
			"repair --dry-run: 10 documents and 12 KV keys scanned in 1.5s, 8 differences: 7 missing, 1 extra; " +
				"would repair 8: 7 missing (ids: a, b, c, d, e and 2 more), 1 extra (ids: x); nothing written"},
		{rep("repair", true, map[reconcile.Kind]int64{reconcile.Unreadable: 1}, reconcile.Diff{EventID: "u", Kind: reconcile.Unreadable}),
			"repair --dry-run: 10 documents and 12 KV keys scanned in 1.5s, 1 difference: 1 unreadable; nothing to repair; " +
				"1 unreadable cannot be repaired (ids: u); nothing written"},
		{rep("repair", true, nil),
			"repair --dry-run: 10 documents and 12 KV keys scanned in 1.5s, no differences; nothing to repair; nothing written"},
		{rep("recover", false, map[reconcile.Kind]int64{reconcile.Lost: 3, reconcile.Behind: 1}),
			"recover: 12 KV copies scanned in 1.5s, 4 to recover: 3 lost, 1 behind; 0 recovered, 0 present, 0 hard-deleted (never recovered)"},
		{rep("recover", true, map[reconcile.Kind]int64{reconcile.Lost: 2, reconcile.Unreadable: 1},
			reconcile.Diff{EventID: "l1", Kind: reconcile.Lost}, reconcile.Diff{EventID: "u", Kind: reconcile.Unreadable}, reconcile.Diff{EventID: "l2", Kind: reconcile.Lost}),
			"recover --dry-run: 12 KV copies scanned in 1.5s, 2 would recover: 2 lost (ids: l1, l2); " +
				"1 unreadable cannot be recovered (ids: u); 0 present, 0 hard-deleted (never recovered); nothing written"},
		{rep("recover", true, nil),
			"recover --dry-run: 12 KV copies scanned in 1.5s, nothing to recover; 0 present, 0 hard-deleted (never recovered); nothing written"},
		{func() *reconcile.Report {
			r := rep("repair", true, map[reconcile.Kind]int64{reconcile.Extra: 1}, reconcile.Diff{EventID: "x", Kind: reconcile.Extra})
			r.Refused = "a repair would refuse: why"
			return r
		}(), "repair --dry-run: 10 documents and 12 KV keys scanned in 1.5s, 1 difference: 1 extra; " +
			"would repair 1: 1 extra (ids: x); nothing written; a repair would refuse: why"},
	} {
		if got := summary(tc.rep); got != tc.want {
			t.Errorf("summary:\n got %s\nwant %s", got, tc.want)
		}
	}
	// A dry run that would change something still exits 1; a recover
	// that ran exits 0.
	var out strings.Builder
	if err := finishJob(rep("repair", true, map[reconcile.Kind]int64{reconcile.Missing: 1}), &jobOptions{}, &out); !errors.Is(err, errDifferences) {
		t.Errorf("finishJob of a dry run with differences = %v, want errDifferences", err)
	}
	if err := finishJob(rep("recover", true, map[reconcile.Kind]int64{reconcile.Lost: 1}), &jobOptions{}, &out); !errors.Is(err, errDifferences) {
		t.Errorf("finishJob of a recover dry run with documents to recover = %v, want errDifferences", err)
	}
	if err := finishJob(rep("recover", false, map[reconcile.Kind]int64{reconcile.Lost: 1}), &jobOptions{}, &out); err != nil {
		t.Errorf("finishJob of a recover = %v, want nil", err)
	}
}
