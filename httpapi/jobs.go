package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/memcell/memcell/reconcile"
)

// The kinds of job, as named in POST /v1/admin/jobs and reconcile.Report.Job.
const (
	JobSync   = "sync"
	JobVerify = "verify"
	JobRepair = "repair"
	// JobRecover puts KV copies the primary lacks back into it
	// (reconcile.Recover).
	JobRecover = "recover"
)

// The states of a job.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// RunJobFunc runs one reconcile job of kind (JobSync, JobVerify, JobRepair
// or JobRecover) with opts, as reconcile.Run does: the caller supplies the
// stores, so this package does not need to know them.
type RunJobFunc func(ctx context.Context, kind string, opts *reconcile.Options) (*reconcile.Report, error)

// DefaultJobHistory is how many finished jobs JobRunner keeps when
// JobRunnerOptions.History is 0.
const DefaultJobHistory = 20

// JobRunnerOptions configure a JobRunner. Nil means defaults.
type JobRunnerOptions struct {
	// Logger receives the jobs' own lines (reconcile.Options.Logger) and
	// one line when a job ends; nil discards them.
	Logger *slog.Logger
	// Registerer receives the job metrics (reconcile.Options.Registerer);
	// every job shares it. Nil registers nothing.
	Registerer prometheus.Registerer
	// History is how many finished jobs are kept for GET; 0 means
	// DefaultJobHistory.
	History int
}

// JobRunner runs reconcile jobs in the background of the server, one of
// each kind at a time, and keeps the last finished ones. It serves
// /v1/admin/jobs (Options.Jobs). Close cancels the running jobs and waits
// for them.
type JobRunner struct {
	run     RunJobFunc
	log     *slog.Logger
	reg     prometheus.Registerer
	history int

	mu       sync.Mutex
	jobs     []*job // oldest first: running ones and the last finished ones
	closed   bool
	wg       sync.WaitGroup
	shutdown context.Context
	stop     context.CancelFunc
}

// NewJobRunner returns a JobRunner that runs jobs with run.
func NewJobRunner(run RunJobFunc, opts *JobRunnerOptions) *JobRunner {
	var o JobRunnerOptions
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.History <= 0 {
		o.History = DefaultJobHistory
	}
	ctx, stop := context.WithCancel(context.Background())
	return &JobRunner{run: run, log: o.Logger, reg: o.Registerer, history: o.History, shutdown: ctx, stop: stop}
}

// JobProgress is a running job's last progress report.
type JobProgress struct {
	// Phase is "primary" while the primary is read, "kv" while the KV is
	// scanned for extras.
	Phase       string `json:"phase"`
	Scanned     int64  `json:"scanned"`
	KVScanned   int64  `json:"kv_scanned"`
	Differences int64  `json:"differences"`
	Repaired    int64  `json:"repaired"`
	// Total is the estimated number of primary documents, 0 if unknown.
	Total int64 `json:"total"`
	// Rate is the documents and KV keys read per second since the start.
	Rate           float64 `json:"rate"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// ETASeconds estimates the time left; absent when Total is unknown.
	ETASeconds *float64 `json:"eta_seconds,omitempty"`
}

// Job is the state of one job: the answer of the /v1/admin/jobs routes.
type Job struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	DryRun bool   `json:"dry_run"`
	// OverwriteOlder is set for a recover that also replaces primary
	// documents at a lower revision than their KV copy.
	OverwriteOlder bool    `json:"overwrite_older"`
	Rate           float64 `json:"rate"`
	// MaxDelete is, for a repair, the bound on the extra KV copies it
	// deletes (reconcile.Options.MaxDelete), as "5%", "1000" or "all".
	MaxDelete string `json:"max_delete,omitempty"`
	// State is queued, running, succeeded, failed or cancelled.
	State    string     `json:"state"`
	Created  time.Time  `json:"created"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
	// Progress is the last progress report, once there is one.
	Progress *JobProgress `json:"progress,omitempty"`
	// Report is the job's report once it has ended (with the counts so
	// far when it failed or was cancelled).
	Report *reconcile.Report `json:"report,omitempty"`
	// Error says why a failed job failed.
	Error string `json:"error,omitempty"`
}

// Done reports whether the job has ended.
func (j *Job) Done() bool {
	return j.State == JobSucceeded || j.State == JobFailed || j.State == JobCancelled
}

// job is a Job and what controls it; r.mu guards it.
type job struct {
	Job
	progress  *reconcile.Progress
	cancel    context.CancelFunc
	cancelled bool
	done      chan struct{}
}

// snapshot returns the Job as it stands; r.mu must be held.
func (j *job) snapshot() Job {
	out := j.Job
	if p := j.progress; p != nil {
		jp := &JobProgress{
			Phase: p.Phase, Scanned: p.Scanned, KVScanned: p.KVScanned,
			Differences: p.Differences, Repaired: p.Repaired, Total: p.Total,
			ElapsedSeconds: p.Elapsed.Seconds(),
		}
		done := p.Scanned + p.KVScanned
		if s := p.Elapsed.Seconds(); s > 0 {
			jp.Rate = float64(done) / s
		}
		if p.Total > 0 && jp.Rate > 0 && !j.Done() {
			work := p.Total // the primary pass
			if j.Kind != JobSync && j.Kind != JobRecover {
				work *= 2 // and the KV pass, about as many keys
			}
			eta := math.Max(0, float64(work-done)/jp.Rate)
			jp.ETASeconds = &eta
		}
		out.Progress = jp
	}
	return out
}

// ErrJobRunning is returned by Start when a job of the kind runs already.
var ErrJobRunning = errors.New("httpapi: a job of this kind is running")

// errJobsClosed is returned by Start after Close.
var errJobsClosed = errors.New("httpapi: the server is shutting down")

// JobParams are the settings of a job besides its kind.
type JobParams struct {
	// DryRun is only for repair and recover: report, write nothing.
	DryRun bool
	// OverwriteOlder is only for recover (reconcile.Options.OverwriteOlder).
	OverwriteOlder bool
	// Rate bounds the documents read per second; 0: no bound.
	Rate float64
	// MaxDelete bounds the extra KV copies a repair deletes, as
	// reconcile.ParseMaxDelete reads it; "" means
	// reconcile.DefaultMaxDelete. Only for repair.
	MaxDelete string
}

// Start starts a job of kind in the background and returns it. A job of
// the same kind that has not ended yet makes it fail with ErrJobRunning.
func (r *JobRunner) Start(kind string, p JobParams) (Job, error) {
	switch kind {
	case JobSync, JobVerify, JobRepair, JobRecover:
	default:
		return Job{}, fmt.Errorf("httpapi: unknown job kind %q", kind)
	}
	var maxDelete string
	if kind == JobRepair {
		m, err := reconcile.ParseMaxDelete(p.MaxDelete)
		if err != nil {
			return Job{}, fmt.Errorf("httpapi: %w", err)
		}
		maxDelete = m.String()
	} else if p.MaxDelete != "" {
		return Job{}, fmt.Errorf("httpapi: MaxDelete is only for repair, not %s", kind)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return Job{}, errJobsClosed
	}
	for _, j := range r.jobs {
		if j.Kind == kind && !j.Done() {
			return Job{}, fmt.Errorf("%w: %s", ErrJobRunning, j.ID)
		}
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	ctx, cancel := context.WithCancel(r.shutdown)
	j := &job{
		Job: Job{ID: hex.EncodeToString(id[:]), Kind: kind, DryRun: p.DryRun, OverwriteOlder: p.OverwriteOlder, Rate: p.Rate, MaxDelete: maxDelete,
			State: JobQueued, Created: time.Now().UTC()},
		cancel: cancel, done: make(chan struct{}),
	}
	r.jobs = append(r.jobs, j)
	r.wg.Add(1)
	go r.execute(ctx, j)
	return j.snapshot(), nil
}

// execute runs j and records how it ended.
func (r *JobRunner) execute(ctx context.Context, j *job) {
	defer r.wg.Done()
	defer close(j.done)
	defer j.cancel()
	r.mu.Lock()
	now := time.Now().UTC()
	j.State, j.Started = JobRunning, &now
	r.mu.Unlock()

	opts := &reconcile.Options{
		Logger: r.log.With("job_id", j.ID), Registerer: r.reg, Rate: j.Rate, DryRun: j.DryRun, OverwriteOlder: j.OverwriteOlder, MaxDelete: j.MaxDelete,
		Progress: func(p reconcile.Progress) {
			r.mu.Lock()
			j.progress = &p
			r.mu.Unlock()
		},
	}
	rep, err := r.run(ctx, j.Kind, opts)

	r.mu.Lock()
	defer r.mu.Unlock()
	end := time.Now().UTC()
	j.Finished, j.Report = &end, rep
	switch {
	case err == nil:
		j.State = JobSucceeded
	case ctx.Err() != nil && (j.cancelled || r.closed):
		j.State = JobCancelled
		j.Error = err.Error()
	default:
		j.State = JobFailed
		j.Error = err.Error()
	}
	r.log.Info("job ended", "job_id", j.ID, "job", j.Kind, "state", j.State, "error", j.Error)
	r.trim()
}

// trim drops the oldest finished jobs beyond the history; r.mu is held.
func (r *JobRunner) trim() {
	finished := 0
	for _, j := range r.jobs {
		if j.Done() {
			finished++
		}
	}
	r.jobs = slices.DeleteFunc(r.jobs, func(j *job) bool {
		if finished > r.history && j.Done() {
			finished--
			return true
		}
		return false
	})
}

// List returns the jobs kept, newest first.
func (r *JobRunner) List() []Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Job, 0, len(r.jobs))
	for i := len(r.jobs) - 1; i >= 0; i-- {
		out = append(out, r.jobs[i].snapshot())
	}
	return out
}

// Get returns the job with id, if it is kept.
func (r *JobRunner) Get(id string) (Job, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if j := r.find(id); j != nil {
		return j.snapshot(), true
	}
	return Job{}, false
}

func (r *JobRunner) find(id string) *job {
	for _, j := range r.jobs {
		if j.ID == id {
			return j
		}
	}
	return nil
}

// Cancel cancels the job with id and returns it as it stands: still
// running, since the job stops at its next batch. Cancelling a job that
// has ended changes nothing.
func (r *JobRunner) Cancel(id string) (Job, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.find(id)
	if j == nil {
		return Job{}, false
	}
	if !j.Done() {
		j.cancelled = true
		j.cancel()
	}
	return j.snapshot(), true
}

// Close refuses new jobs, cancels the running ones and waits until they
// have ended or ctx ends.
func (r *JobRunner) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.stop()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("httpapi: jobs still running: %w", ctx.Err())
	}
}

// jobBody is the body of POST /v1/admin/jobs.
type jobBody struct {
	Kind           *string  `json:"kind"`
	DryRun         bool     `json:"dry_run"`
	OverwriteOlder bool     `json:"overwrite_older"`
	Rate           *float64 `json:"rate"`
	MaxDelete      *string  `json:"max_delete"`
}

var errNoJobs = &apiError{http.StatusNotFound, codeNotFound, "jobs are not run by this server"}

// startJob serves POST /v1/admin/jobs.
func (s *server) startJob(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseQuery(r); err != nil {
		return err
	}
	if s.jobs == nil {
		return errNoJobs
	}
	body, err := s.readBody(w, r, nil)
	if err != nil {
		return err
	}
	var in jobBody
	if err := decodeStrict(body, &in); err != nil {
		return err
	}
	var rate float64
	if in.Rate != nil {
		rate = *in.Rate
	}
	switch {
	case in.Kind == nil:
		return fieldError("kind", "is required")
	case *in.Kind != JobSync && *in.Kind != JobVerify && *in.Kind != JobRepair && *in.Kind != JobRecover:
		return fieldError("kind", "must be sync, verify, repair or recover")
	case in.DryRun && *in.Kind != JobRepair && *in.Kind != JobRecover:
		return fieldError("dry_run", "is only for repair and recover")
	case in.OverwriteOlder && *in.Kind != JobRecover:
		return fieldError("overwrite_older", "is only for recover")
	case rate < 0:
		return fieldError("rate", "must not be negative")
	case in.MaxDelete != nil && *in.Kind != JobRepair:
		return fieldError("max_delete", "is only for repair")
	}
	params := JobParams{DryRun: in.DryRun, OverwriteOlder: in.OverwriteOlder, Rate: rate}
	if in.MaxDelete != nil {
		if _, err := reconcile.ParseMaxDelete(*in.MaxDelete); err != nil {
			return fieldError("max_delete", "must be a percentage of the KV keys such as \"5%\", a number of keys such as \"1000\", or \"all\"")
		}
		params.MaxDelete = *in.MaxDelete
	}
	j, err := s.jobs.Start(*in.Kind, params)
	switch {
	case errors.Is(err, ErrJobRunning):
		return &apiError{http.StatusConflict, codeConflict, "a " + *in.Kind + " job is running already"}
	case errors.Is(err, errJobsClosed):
		return &apiError{http.StatusServiceUnavailable, codeUnavailable, "the server is shutting down"}
	case err != nil:
		return err
	}
	s.log.InfoContext(r.Context(), "httpapi: job started", "job_id", j.ID, "job", j.Kind, "dry_run", j.DryRun, "overwrite_older", j.OverwriteOlder, "rate", j.Rate, "max_delete", j.MaxDelete)
	w.Header().Set("Location", "/v1/admin/jobs/"+j.ID)
	writeValue(w, http.StatusAccepted, j)
	return nil
}

// jobList is the answer of GET /v1/admin/jobs.
type jobList struct {
	Jobs []Job `json:"jobs"`
}

// listJobs serves GET /v1/admin/jobs.
func (s *server) listJobs(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseQuery(r); err != nil {
		return err
	}
	if s.jobs == nil {
		return errNoJobs
	}
	writeValue(w, http.StatusOK, jobList{Jobs: s.jobs.List()})
	return nil
}

var errNoSuchJob = &apiError{http.StatusNotFound, codeNotFound, "no such job"}

// getJob serves GET /v1/admin/jobs/{id}.
func (s *server) getJob(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseQuery(r); err != nil {
		return err
	}
	if s.jobs == nil {
		return errNoJobs
	}
	j, ok := s.jobs.Get(r.PathValue("id"))
	if !ok {
		return errNoSuchJob
	}
	writeValue(w, http.StatusOK, j)
	return nil
}

// cancelJob serves DELETE /v1/admin/jobs/{id}: 202 while the job stops,
// 200 with the job when it had ended already.
func (s *server) cancelJob(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseQuery(r); err != nil {
		return err
	}
	if s.jobs == nil {
		return errNoJobs
	}
	j, ok := s.jobs.Cancel(r.PathValue("id"))
	if !ok {
		return errNoSuchJob
	}
	status := http.StatusOK
	if !j.Done() {
		status = http.StatusAccepted
		s.log.InfoContext(r.Context(), "httpapi: job cancelled", "job_id", j.ID, "job", j.Kind)
	}
	writeValue(w, status, j)
	return nil
}
