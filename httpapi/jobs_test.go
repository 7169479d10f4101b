package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/reconcile"
)

// newJobsEnv is an env whose handler runs jobs on its primary and KV, with
// the job metrics on the env's registry. The runner is closed at cleanup.
func newJobsEnv(t *testing.T, opts *httpapi.Options) (*env, *httpapi.JobRunner) {
	t.Helper()
	var runner *httpapi.JobRunner
	e := newEnvWith(t, opts, func(e *env) *httpapi.JobRunner {
		run := func(ctx context.Context, kind string, o *reconcile.Options) (*reconcile.Report, error) {
			return reconcile.Run(ctx, kind, e.primary, e.kv, o)
		}
		runner = httpapi.NewJobRunner(run, &httpapi.JobRunnerOptions{Registerer: e.reg})
		return runner
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := runner.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return e, runner
}

// startJob posts a job and returns it.
func (e *env) startJob(body string) httpapi.Job {
	e.t.Helper()
	r := e.want(http.StatusAccepted, "POST", "/v1/admin/jobs", body)
	var j httpapi.Job
	r.decode(e.t, &j)
	if loc := r.header.Get("Location"); loc != "/v1/admin/jobs/"+j.ID || j.ID == "" {
		e.t.Fatalf("job %+v, Location %q", j, loc)
	}
	return j
}

// waitJob polls the job until it has ended and returns it.
func (e *env) waitJob(id string) httpapi.Job {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var j httpapi.Job
		e.want(http.StatusOK, "GET", "/v1/admin/jobs/"+id, nil).decode(e.t, &j)
		if j.Done() {
			return j
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job %s did not end within a minute: %+v", id, j)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestJobs runs each kind of job through the API on a mirror with one
// tampered copy, and reads their reports, the list and the metrics.
func TestJobs(t *testing.T) {
	e, _ := newJobsEnv(t, nil)
	ids := e.seed(cell("alice", epoch), cell("bob", epoch), cell("carol", epoch))
	e.tamper(ids[1])

	j := e.startJob(`{"kind":"verify"}`)
	if j.Kind != "verify" || j.DryRun || (j.State != httpapi.JobQueued && j.State != httpapi.JobRunning) {
		t.Errorf("started %+v", j)
	}
	verify := e.waitJob(j.ID)
	if verify.State != httpapi.JobSucceeded || verify.Report == nil || verify.Error != "" || verify.Started == nil || verify.Finished == nil {
		t.Fatalf("verify ended %+v", verify)
	}
	if rep := verify.Report; rep.Scanned != 3 || rep.KVScanned != 3 || rep.Differences[reconcile.Differs] != 1 || rep.DifferenceCount() != 1 {
		t.Errorf("verify report %+v", rep)
	}
	if p := verify.Progress; p == nil || p.Phase != "kv" || p.Scanned != 3 || p.KVScanned != 3 || p.Differences != 1 || p.ETASeconds != nil {
		t.Errorf("verify progress %+v", p)
	}

	dry := e.waitJob(e.startJob(`{"kind":"repair","dry_run":true,"rate":0}`).ID)
	if dry.State != httpapi.JobSucceeded || !dry.DryRun || !dry.Report.DryRun || dry.Report.Repaired != 0 {
		t.Errorf("dry run ended %+v, report %+v", dry, dry.Report)
	}
	repair := e.waitJob(e.startJob(`{"kind":"repair"}`).ID)
	if repair.State != httpapi.JobSucceeded || repair.Report.Repaired != 1 {
		t.Errorf("repair ended %+v, report %+v", repair, repair.Report)
	}
	sync := e.waitJob(e.startJob(`{"kind":"sync","rate":1000}`).ID)
	if sync.State != httpapi.JobSucceeded || sync.Rate != 1000 || sync.Report.Scanned != 3 {
		t.Errorf("sync ended %+v, report %+v", sync, sync.Report)
	}
	if again := e.waitJob(e.startJob(`{"kind":"verify"}`).ID); again.Report.DifferenceCount() != 0 {
		t.Errorf("verify after repair: %+v", again.Report)
	}

	var list struct{ Jobs []httpapi.Job }
	e.want(http.StatusOK, "GET", "/v1/admin/jobs", nil).decode(t, &list)
	var kinds []string
	for _, j := range list.Jobs {
		kinds = append(kinds, j.Kind)
	}
	if got := strings.Join(kinds, " "); got != "verify sync repair repair verify" || list.Jobs[4].ID != j.ID {
		t.Errorf("jobs listed %s, want newest first", got)
	}

	// The jobs counted on the registry /metrics serves, one after the other.
	page := string(e.want(http.StatusOK, "GET", "/metrics", nil).body)
	for _, want := range []string{
		`memcell_job_documents_scanned_total{job="verify"} 6`,
		`memcell_job_documents_scanned_total{job="sync"} 3`,
		`memcell_job_documents_scanned_total{job="repair"} 6`,
		`memcell_job_differences_total{job="verify",kind="differs"} 1`,
		`memcell_job_repaired_total{job="repair"} 1`,
		`memcell_job_repaired_total{job="sync"} 3`,
	} {
		if !strings.Contains(page, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestJobsMaxDelete runs repairs of a mirror with one extra copy among
// four keys (25%): over the default max_delete of 5% the job fails,
// deletes nothing and says why in its report; with max_delete "all" it
// deletes the copy.
func TestJobsMaxDelete(t *testing.T) {
	e, _ := newJobsEnv(t, nil)
	e.seed(cell("alice", epoch), cell("bob", epoch), cell("carol", epoch))
	extra := e.repo.Key(memcell.NewID())
	if _, err := e.kv.Store.Put(context.Background(), kv.Entry{Key: extra, Value: []byte(`{}`), Rev: 1}); err != nil {
		t.Fatal(err)
	}
	held := func() bool {
		t.Helper()
		_, err := e.kv.Store.Get(context.Background(), extra)
		if err != nil && !errors.Is(err, kv.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}

	dry := e.waitJob(e.startJob(`{"kind":"repair","dry_run":true}`).ID)
	if dry.State != httpapi.JobSucceeded || !strings.HasPrefix(dry.Report.Refused, "a repair would refuse: 1 extra KV copy would be deleted (25% of the 4 scanned), over --max-delete 5%;") {
		t.Errorf("dry run ended %+v, report %+v", dry, dry.Report)
	}
	j := e.startJob(`{"kind":"repair"}`)
	if j.MaxDelete != "5%" {
		t.Errorf("repair started with max_delete %q, want the default 5%%", j.MaxDelete)
	}
	refused := e.waitJob(j.ID)
	const why = "refused: 1 extra KV copy would be deleted (25% of the 4 scanned), over --max-delete 5%;"
	if refused.State != httpapi.JobFailed || !strings.Contains(refused.Error, why) || refused.Report == nil ||
		!strings.HasPrefix(refused.Report.Refused, why) || refused.Report.Differences[reconcile.Extra] != 1 || refused.Report.Repaired != 0 {
		t.Errorf("repair ended %+v, report %+v; want failed: %s", refused, refused.Report, why)
	}
	if !held() {
		t.Fatal("the refused repair deleted the extra copy")
	}

	j = e.startJob(`{"kind":"repair","max_delete":"all"}`)
	if j.MaxDelete != "all" {
		t.Errorf("repair started with max_delete %q, want all", j.MaxDelete)
	}
	if repair := e.waitJob(j.ID); repair.State != httpapi.JobSucceeded || repair.Report.Repaired != 1 || repair.Report.Refused != "" {
		t.Errorf("repair with max_delete all ended %+v, report %+v", repair, repair.Report)
	}
	if held() {
		t.Error("the repair with max_delete all left the extra copy")
	}
}

// TestJobsConcurrentKinds runs a job of every kind at once on one
// registry: each registers the job metrics, and none may fail for it.
func TestJobsConcurrentKinds(t *testing.T) {
	e, _ := newJobsEnv(t, nil)
	e.seed(cell("alice", epoch), cell("bob", epoch))
	var started []httpapi.Job
	for _, kind := range []string{"sync", "verify", "repair"} {
		started = append(started, e.startJob(fmt.Sprintf(`{"kind":%q}`, kind)))
	}
	for _, j := range started {
		if got := e.waitJob(j.ID); got.State != httpapi.JobSucceeded {
			t.Errorf("%s ended %+v", j.Kind, got)
		}
	}
	page := string(e.want(http.StatusOK, "GET", "/metrics", nil).body)
	for _, kind := range []string{"sync", "verify", "repair"} {
		if want := fmt.Sprintf(`memcell_job_documents_scanned_total{job=%q} 2`, kind); !strings.Contains(page, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestJobsSharedRegistry starts a job of every kind at once on fresh
// registries, many times: whichever registers the job metrics first, the
// others must find its collectors and run.
func TestJobsSharedRegistry(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 10 {
		reg := prometheus.NewRegistry()
		run := func(ctx context.Context, kind string, o *reconcile.Options) (*reconcile.Report, error) {
			return reconcile.Run(ctx, kind, e.primary, e.kv, o)
		}
		r := httpapi.NewJobRunner(run, &httpapi.JobRunnerOptions{Registerer: reg})
		var ids []string
		for _, kind := range []string{"sync", "verify", "repair"} {
			j, err := r.Start(kind, httpapi.JobParams{})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, j.ID)
		}
		for _, id := range ids {
			j, _ := r.Get(id)
			for deadline := time.Now().Add(time.Minute); !j.Done() && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				j, _ = r.Get(id)
			}
			if j.State != httpapi.JobSucceeded {
				t.Fatalf("round %d: %s ended %+v", i, j.Kind, j)
			}
		}
		if n, err := testutil.GatherAndCount(reg, "memcell_job_documents_scanned_total"); err != nil || n != 3 {
			t.Fatalf("round %d: %d scanned series, %v; want one per kind", i, n, err)
		}
		_ = r.Close(context.Background())
	}
}

// TestJobsConflictAndCancel starts a slow verify: a second verify is 409,
// another kind runs beside it, DELETE cancels it, and a cancelled job is
// answered as it is.
func TestJobsConflictAndCancel(t *testing.T) {
	e, _ := newJobsEnv(t, nil)
	// Eight documents at one a second: the cancel lands mid-scan.
	e.seed(cell("alice", epoch), cell("bob", epoch), cell("carol", epoch), cell("dave", epoch),
		cell("erin", epoch), cell("frank", epoch), cell("grace", epoch), cell("heidi", epoch))
	slow := e.startJob(`{"kind":"verify","rate":1}`)
	if code := e.want(http.StatusConflict, "POST", "/v1/admin/jobs", `{"kind":"verify"}`).errorCode(t); code != "conflict" {
		t.Errorf("second verify: code %q", code)
	}
	if sync := e.waitJob(e.startJob(`{"kind":"sync"}`).ID); sync.State != httpapi.JobSucceeded {
		t.Errorf("sync beside a verify ended %+v", sync)
	}

	// Its first progress report comes after about a second.
	var running httpapi.Job
	for deadline := time.Now().Add(10 * time.Second); running.Progress == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		e.want(http.StatusOK, "GET", "/v1/admin/jobs/"+slow.ID, nil).decode(t, &running)
	}
	if running.State != httpapi.JobRunning || running.Finished != nil || running.Started == nil {
		t.Errorf("slow verify is %+v, want running", running)
	}
	if p := running.Progress; p == nil || p.Phase != "primary" || p.Total != 8 || p.Rate <= 0 || p.ETASeconds == nil || *p.ETASeconds <= 0 {
		t.Errorf("slow verify's progress %+v, want the primary phase with a rate and an ETA", p)
	}
	var cancelling httpapi.Job
	e.want(http.StatusAccepted, "DELETE", "/v1/admin/jobs/"+slow.ID, nil).decode(t, &cancelling)
	if cancelling.ID != slow.ID || cancelling.Done() {
		t.Errorf("DELETE answered %+v", cancelling)
	}
	ended := e.waitJob(slow.ID)
	if ended.State != httpapi.JobCancelled || ended.Error == "" || ended.Report == nil || ended.Report.Scanned >= 8 {
		t.Errorf("cancelled verify ended %+v, report %+v", ended, ended.Report)
	}
	var again httpapi.Job
	e.want(http.StatusOK, "DELETE", "/v1/admin/jobs/"+slow.ID, nil).decode(t, &again)
	if again.State != httpapi.JobCancelled || *again.Finished != *ended.Finished {
		t.Errorf("second DELETE answered %+v", again)
	}
	// The kind is free again.
	if v := e.waitJob(e.startJob(`{"kind":"verify"}`).ID); v.State != httpapi.JobSucceeded {
		t.Errorf("verify after the cancel ended %+v", v)
	}
}

// TestJobsShutdown checks that closing the runner cancels a running job and
// refuses new ones.
func TestJobsShutdown(t *testing.T) {
	e, runner := newJobsEnv(t, nil)
	e.seed(cell("alice", epoch), cell("bob", epoch), cell("carol", epoch))
	slow := e.startJob(`{"kind":"repair","rate":1}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := runner.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var j httpapi.Job
	e.want(http.StatusOK, "GET", "/v1/admin/jobs/"+slow.ID, nil).decode(t, &j)
	if j.State != httpapi.JobCancelled {
		t.Errorf("after Close the job is %+v", j)
	}
	if code := e.want(http.StatusServiceUnavailable, "POST", "/v1/admin/jobs", `{"kind":"sync"}`).errorCode(t); code != "unavailable" {
		t.Errorf("POST after Close: code %q", code)
	}
}

// TestJobsRecover runs recover through the API after a document is
// removed from the primary behind the mirror's back: the dry run reports
// it, the recover puts it back.
func TestJobsRecover(t *testing.T) {
	e, _ := newJobsEnv(t, nil)
	ids := e.seed(cell("alice", epoch), cell("bob", epoch))
	gone, err := memcell.ParseID(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	coll := memcelltest.Collection(t, e.primary.Namespace())
	if _, err := coll.DeleteOne(context.Background(), bson.D{{Key: "_id", Value: bson.ObjectID(gone)}}); err != nil {
		t.Fatal(err)
	}
	dry := e.waitJob(e.startJob(`{"kind":"recover","dry_run":true}`).ID)
	if dry.State != httpapi.JobSucceeded || !dry.Report.DryRun || dry.Report.Differences[reconcile.Lost] != 1 || dry.Report.Repaired != 0 {
		t.Errorf("recover dry run ended %+v, report %+v", dry, dry.Report)
	}
	rec := e.waitJob(e.startJob(`{"kind":"recover","overwrite_older":true}`).ID)
	if rec.State != httpapi.JobSucceeded || !rec.OverwriteOlder || rec.Report.Repaired != 1 || rec.Report.SkippedPresent != 1 || rec.Report.KVScanned != 2 {
		t.Errorf("recover ended %+v, report %+v", rec, rec.Report)
	}
	if p := rec.Progress; p == nil || p.Phase != "kv" || p.KVScanned != 2 || p.Repaired != 1 {
		t.Errorf("recover progress %+v", p)
	}
	if again := e.waitJob(e.startJob(`{"kind":"verify"}`).ID); again.Report.DifferenceCount() != 0 {
		t.Errorf("verify after recover: %+v", again.Report)
	}
}

// TestJobsBadInput checks the refused bodies and parameters, and unknown
// jobs.
func TestJobsBadInput(t *testing.T) {
	e, _ := newJobsEnv(t, nil)
	for _, tc := range []struct{ target, body, code string }{
		{"/v1/admin/jobs", `{}`, "invalid_argument"},
		{"/v1/admin/jobs", `{"kind":"backup"}`, "invalid_argument"},
		{"/v1/admin/jobs", `{"kind":"verify","dry_run":true}`, "invalid_argument"},
		{"/v1/admin/jobs", `{"kind":"sync","dry_run":true}`, "invalid_argument"},
		{"/v1/admin/jobs", `{"kind":"repair","overwrite_older":true}`, "invalid_argument"},
		{"/v1/admin/jobs", `{"kind":"verify","rate":-1}`, "invalid_argument"},
		{"/v1/admin/jobs", `{"kind":"verify","rate":"fast"}`, "invalid_argument"},
		{"/v1/admin/jobs", `{"kind":"verify","checkpoint":"x"}`, "invalid_argument"},
		{"/v1/admin/jobs", `{"kind":"verify","max_delete":"5%"}`, "invalid_argument"},
		{"/v1/admin/jobs", `{"kind":"repair","max_delete":"lots"}`, "invalid_argument"},
		{"/v1/admin/jobs", `{"kind":"repair","max_delete":"101%"}`, "invalid_argument"},
		{"/v1/admin/jobs", `{"kind":"repair","max_delete":5}`, "invalid_argument"},
		{"/v1/admin/jobs", `{"kind":"verify"`, "malformed_json"},
		{"/v1/admin/jobs", `[]`, "invalid_argument"},
		{"/v1/admin/jobs?kind=verify", `{"kind":"verify"}`, "invalid_argument"},
	} {
		if code := e.want(http.StatusBadRequest, "POST", tc.target, tc.body).errorCode(t); code != tc.code {
			t.Errorf("POST %s %s: code %q, want %q", tc.target, tc.body, code, tc.code)
		}
	}
	e.want(http.StatusUnsupportedMediaType, "POST", "/v1/admin/jobs", `{"kind":"verify"}`, "Content-Type", "text/plain")
	e.want(http.StatusNotFound, "GET", "/v1/admin/jobs/0123456789abcdef", nil)
	e.want(http.StatusNotFound, "DELETE", "/v1/admin/jobs/0123456789abcdef", nil)
	e.want(http.StatusBadRequest, "GET", "/v1/admin/jobs?state=running", nil)
	var list struct{ Jobs []httpapi.Job }
	e.want(http.StatusOK, "GET", "/v1/admin/jobs", nil).decode(t, &list)
	if len(list.Jobs) != 0 {
		t.Errorf("bad requests started jobs: %+v", list.Jobs)
	}
}

// TestJobsAuth checks that every job route needs the token.
func TestJobsAuth(t *testing.T) {
	e, _ := newJobsEnv(t, &httpapi.Options{Token: "secret"})
	for _, rt := range []struct{ method, target, body string }{
		{"POST", "/v1/admin/jobs", `{"kind":"verify"}`},
		{"GET", "/v1/admin/jobs", ""},
		{"GET", "/v1/admin/jobs/0123456789abcdef", ""},
		{"DELETE", "/v1/admin/jobs/0123456789abcdef", ""},
	} {
		var body any
		if rt.body != "" {
			body = rt.body
		}
		e.want(http.StatusUnauthorized, rt.method, rt.target, body, "Authorization", "Bearer wrong")
		e.want(http.StatusUnauthorized, rt.method, rt.target, body, "Authorization", "")
	}
	e.waitJob(e.startJob(`{"kind":"verify"}`).ID)
}

// TestJobsNotServed checks the job routes of a handler without a runner.
func TestJobsNotServed(t *testing.T) {
	e := newEnv(t, nil)
	e.want(http.StatusNotFound, "POST", "/v1/admin/jobs", `{"kind":"verify"}`)
	e.want(http.StatusNotFound, "GET", "/v1/admin/jobs", nil)
	e.want(http.StatusNotFound, "GET", "/v1/admin/jobs/0123456789abcdef", nil)
	e.want(http.StatusNotFound, "DELETE", "/v1/admin/jobs/0123456789abcdef", nil)
}

// TestJobsHistory checks that the runner keeps the last finished jobs only,
// newest first.
func TestJobsHistory(t *testing.T) {
	done := func(_ context.Context, kind string, _ *reconcile.Options) (*reconcile.Report, error) {
		return &reconcile.Report{Job: kind}, nil
	}
	r := httpapi.NewJobRunner(done, &httpapi.JobRunnerOptions{History: 2})
	defer r.Close(context.Background())
	var ids []string
	for range 4 {
		j, err := r.Start(httpapi.JobSync, httpapi.JobParams{})
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); !j.Done() && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			j, _ = r.Get(j.ID)
		}
		ids = append(ids, j.ID)
	}
	list := r.List()
	if len(list) != 2 || list[0].ID != ids[3] || list[1].ID != ids[2] {
		t.Errorf("kept %+v, want the last two of %v, newest first", list, ids)
	}
	if _, ok := r.Get(ids[0]); ok {
		t.Error("the oldest job is still kept")
	}
	if _, err := r.Start("backup", httpapi.JobParams{}); err == nil {
		t.Error("Start accepted an unknown kind")
	}
}
