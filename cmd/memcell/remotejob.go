package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/internal/redact"
	"github.com/memcell/memcell/reconcile"
)

// probeTimeout bounds the request that asks whether a memcell server
// answers.
const probeTimeout = 3 * time.Second

// pollEvery is how often a job running in the server is asked for its
// state.
const pollEvery = time.Second

// serverBase turns a --server or --addr value into a base URL: a URL is
// kept, an address gets http://, and a listen address on every interface
// (":8080", "0.0.0.0:8080") is reached on the loopback.
func serverBase(addr string) (string, error) {
	if strings.Contains(addr, "://") {
		return strings.TrimSuffix(addr, "/"), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		// SplitHostPort's error quotes addr, which may hold credentials.
		return "", fmt.Errorf("%w: server address %q: want host:port or a URL", errUsage, shownAddr(addr))
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// shownAddr is a --server or --addr value as an error may show it: a URL
// redacted, an address as given unless an "@" in it may follow
// credentials.
func shownAddr(addr string) string {
	switch {
	case strings.Contains(addr, "://"):
		return redact.URL(addr)
	case strings.Contains(addr, "@"):
		return redact.URL("http://" + addr)
	}
	return addr
}

// errNoServer says that nothing answered at an address.
var errNoServer = errors.New("no memcell server answers")

// findServer returns the base URL of the memcell server a job should run
// in, or "" when the command should open the stores itself. An explicit
// --server must answer; otherwise the address of the configuration is
// tried, and a refused connection or an answer that is not memcell's means
// no server.
func findServer(ctx context.Context, server string, cfg *config) (string, error) {
	explicit := server != ""
	if !explicit {
		server = cfg.Addr
	}
	base, err := serverBase(server)
	if err != nil {
		if explicit {
			return "", err
		}
		return "", nil
	}
	err = probe(ctx, base, cfg.APIToken)
	switch {
	case err == nil:
		return base, nil
	case errors.Is(err, errNoServer) && !explicit:
		return "", nil
	case errors.Is(err, errNoServer):
		return "", fmt.Errorf("%w: %w", errCouldNotRun, err)
	}
	return "", err
}

// probe asks GET /readyz at base: nil when a memcell server answers ready,
// errNoServer when nothing answers or what answers is not memcell, another
// error when memcell answers but cannot run a job (no token, not ready).
func probe(ctx context.Context, base, token string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	status, body, hdr, err := call(ctx, http.MethodGet, base, "/readyz", token, nil)
	if err != nil {
		return fmt.Errorf("%w at %s: %v", errNoServer, redact.URL(base), err)
	}
	// memcell answers every request with an X-Request-Id and JSON: the
	// readiness body, or its error body.
	var ready struct{ Status string }
	var e errorAnswer
	switch {
	case hdr.Get("X-Request-Id") == "":
	case status == http.StatusOK && json.Unmarshal(body, &ready) == nil && ready.Status == "ready":
		return nil
	case json.Unmarshal(body, &e) == nil && e.Error.Code != "":
		if status == http.StatusUnauthorized {
			return fmt.Errorf("%w: the memcell server at %s needs its API token: set MEMCELL_API_TOKEN", errUsage, redact.URL(base))
		}
		return fmt.Errorf("%w: the memcell server at %s answered %d: %s", errCouldNotRun, redact.URL(base), status, e.Error.Message)
	}
	return fmt.Errorf("%w at %s: the answer to GET /readyz is not memcell's (%d)", errNoServer, redact.URL(base), status)
}

// errorAnswer is the API's error body.
type errorAnswer struct {
	Error struct{ Code, Message string } `json:"error"`
}

// call makes one request to the API and returns the answer. Its errors
// show no credential of base.
func call(ctx context.Context, method, base, path, token string, in any) (_ int, _ []byte, _ http.Header, err error) {
	defer func() { err = redact.Error(err, base) }()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return 0, nil, nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, b, resp.Header, err
}

// callJob makes one request whose answer is a job.
func callJob(ctx context.Context, method, base, path, token string, in any, want ...int) (*httpapi.Job, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	status, body, _, err := call(ctx, method, base, path, token, in)
	if err != nil {
		return nil, err
	}
	for _, w := range want {
		if status == w {
			var j httpapi.Job
			if err := json.Unmarshal(body, &j); err != nil {
				return nil, fmt.Errorf("%s %s: the answer is not a job: %v", method, path, err)
			}
			return &j, nil
		}
	}
	se := &statusError{what: method + " " + path, status: status}
	var e errorAnswer
	if json.Unmarshal(body, &e) == nil {
		se.message = e.Error.Message
	}
	return nil, se
}

// statusError is an API answer with an unexpected status.
type statusError struct {
	what    string
	status  int
	message string
}

func (e *statusError) Error() string {
	if e.message == "" {
		return fmt.Sprintf("%s: the server answered %d", e.what, e.status)
	}
	return fmt.Sprintf("%s: the server answered %d: %s", e.what, e.status, e.message)
}

// runRemoteJob runs a job of kind in the memcell server at base and reports
// it as runJob does. Ctrl-C (ctx ending) cancels the job in the server.
func runRemoteJob(ctx context.Context, base, token, kind string, o *jobOptions, stdout, stderr io.Writer) error {
	in := map[string]any{"kind": kind, "rate": o.rate}
	if o.dryRun {
		in["dry_run"] = true
	}
	j, err := callJob(ctx, http.MethodPost, base, "/v1/admin/jobs", token, in, http.StatusAccepted)
	if err != nil {
		return fmt.Errorf("%w: %w", errCouldNotRun, err)
	}
	fmt.Fprintf(stderr, "memcell: %s runs in the memcell server at %s as job %s\n", kind, redact.URL(base), j.ID)
	path := "/v1/admin/jobs/" + j.ID
	progress, finish := progressReporter(o.progress, stderr)
	show := func(j *httpapi.Job) {
		if p := j.Progress; p != nil && progress != nil {
			progress(reconcile.Progress{
				Job: j.Kind, Phase: p.Phase, Scanned: p.Scanned, KVScanned: p.KVScanned,
				Differences: p.Differences, Repaired: p.Repaired, Total: p.Total,
				Elapsed: time.Duration(p.ElapsedSeconds * float64(time.Second)),
			})
		}
	}

	failures := 0
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for !j.Done() {
		select {
		case <-ctx.Done():
			finish()
			return cancelRemoteJob(base, token, path, ctx.Err(), stderr)
		case <-tick.C:
		}
		got, err := callJob(ctx, http.MethodGet, base, path, token, nil, http.StatusOK)
		switch {
		case ctx.Err() != nil:
			continue // cancelled above
		case err != nil:
			// The server may be busy for a moment; a job it no longer
			// knows (it restarted) is gone for good.
			var se *statusError
			if failures++; failures >= 10 || (errors.As(err, &se) && se.status == http.StatusNotFound) {
				finish()
				return fmt.Errorf("%w: job %s in the server at %s: %w", errCouldNotRun, j.ID, redact.URL(base), err)
			}
			continue
		}
		failures = 0
		j = got
		show(j)
	}
	finish()
	switch {
	case j.State == httpapi.JobSucceeded && j.Report != nil:
		return finishJob(j.Report, o, stdout)
	case j.State == httpapi.JobCancelled:
		return fmt.Errorf("%w: job %s was cancelled in the server: %s", errCouldNotRun, j.ID, j.Error)
	}
	return fmt.Errorf("%w: job %s failed in the server: %s", errCouldNotRun, j.ID, j.Error)
}

// cancelRemoteJob cancels a job after Ctrl-C and waits a little for it to
// stop, so that the command does not end before the job does.
func cancelRemoteJob(base, token, path string, cause error, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := callJob(ctx, http.MethodDelete, base, path, token, nil, http.StatusAccepted, http.StatusOK)
	if err != nil {
		return fmt.Errorf("%w: %w; cancelling the job in the server failed: %w", errCouldNotRun, cause, err)
	}
	fmt.Fprintf(stderr, "memcell: job %s cancelled in the server\n", j.ID)
	for !j.Done() && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
		if got, err := callJob(ctx, http.MethodGet, base, path, token, nil, http.StatusOK); err == nil {
			j = got
		}
	}
	return fmt.Errorf("%w: %w", errCouldNotRun, cause)
}
