package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
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
// kept, an address gets http://, or https:// when the configuration serves
// TLS, and a listen address on every interface (":8080", "0.0.0.0:8080")
// is reached on the loopback.
func serverBase(addr string, useTLS bool) (string, error) {
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
	scheme := "http://"
	if useTLS {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, port), nil
}

// remote is a memcell server the command talks to.
type remote struct {
	base   string // URL without a trailing slash
	token  string // the API token, sent as the bearer token when set
	client *http.Client
}

// httpClient returns the client for a memcell server: it trusts the
// system's roots (on Linux $SSL_CERT_FILE and $SSL_CERT_DIR name them)
// and, when caFile is given, the PEM certificates in it (a CA, or the
// server's own self-signed certificate).
func httpClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return &http.Client{}, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: --ca-cert: %v", errUsage, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: --ca-cert %s: no PEM certificate in it", errUsage, caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
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

// findServer returns the memcell server a job should run in, or nil when
// the command should open the stores itself. An explicit --server must
// answer; otherwise the address of the configuration is tried, and a
// refused connection or an answer that is not memcell's means no server.
// The server's certificate is checked against the system's roots and
// caFile, else the configuration's --tls-cert.
func findServer(ctx context.Context, server, caFile string, cfg *config) (*remote, error) {
	explicit := server != ""
	if !explicit {
		server = cfg.Addr
	}
	base, err := serverBase(server, cfg.TLSCert != "")
	if err != nil {
		if explicit {
			return nil, err
		}
		return nil, nil
	}
	client, err := httpClient(cmp.Or(caFile, cfg.TLSCert))
	if err != nil {
		return nil, err
	}
	srv := &remote{base: base, token: cfg.APIToken, client: client}
	err = srv.probe(ctx)
	switch {
	case err == nil:
		return srv, nil
	case errors.Is(err, errNoServer) && !explicit:
		return nil, nil
	case errors.Is(err, errNoServer):
		return nil, fmt.Errorf("%w: %w", errCouldNotRun, err)
	}
	return nil, err
}

// probe asks GET /readyz: nil when a memcell server answers ready,
// errNoServer when nothing answers or what answers is not memcell, another
// error when memcell answers but cannot run a job (not ready), or its
// certificate is not trusted.
func (srv *remote) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	status, body, hdr, err := srv.call(ctx, http.MethodGet, "/readyz", nil)
	if _, bad := errors.AsType[*tls.CertificateVerificationError](err); bad {
		return fmt.Errorf("%w: the server at %s: %v (trust its certificate with --ca-cert FILE)", errCouldNotRun, redact.URL(srv.base), err)
	}
	if err != nil {
		return fmt.Errorf("%w at %s: %v", errNoServer, redact.URL(srv.base), err)
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
			return srv.needsToken()
		}
		return fmt.Errorf("%w: the memcell server at %s answered %d: %s", errCouldNotRun, redact.URL(srv.base), status, e.Error.Message)
	}
	return fmt.Errorf("%w at %s: the answer to GET /readyz is not memcell's (%d)", errNoServer, redact.URL(srv.base), status)
}

// needsToken is the error for a 401: the server wants its API token.
func (srv *remote) needsToken() error {
	return fmt.Errorf("%w: the memcell server at %s needs its API token: set MEMCELL_API_TOKEN", errUsage, redact.URL(srv.base))
}

// errorAnswer is the API's error body.
type errorAnswer struct {
	Error struct{ Code, Message string } `json:"error"`
}

// call makes one request to the API and returns the answer. Its errors
// show no credential of the server's URL.
func (srv *remote) call(ctx context.Context, method, path string, in any) (_ int, _ []byte, _ http.Header, err error) {
	defer func() { err = redact.Error(err, srv.base) }()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, srv.base+path, body)
	if err != nil {
		return 0, nil, nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if srv.token != "" {
		req.Header.Set("Authorization", "Bearer "+srv.token)
	}
	resp, err := srv.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, b, resp.Header, err
}

// callJob makes one request whose answer is a job.
func (srv *remote) callJob(ctx context.Context, method, path string, in any, want ...int) (*httpapi.Job, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	status, body, _, err := srv.call(ctx, method, path, in)
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

// runRemoteJob runs a job of kind in the memcell server srv and reports it
// as runJob does. Ctrl-C (ctx ending) cancels the job in the server.
func runRemoteJob(ctx context.Context, srv *remote, kind string, o *jobOptions, stdout, stderr io.Writer) error {
	in := map[string]any{"kind": kind, "rate": o.rate}
	if o.dryRun {
		in["dry_run"] = true
	}
	if o.overwrite {
		in["overwrite_older"] = true
	}
	if o.maxDelete != "" && o.maxDelete != reconcile.DefaultMaxDelete {
		in["max_delete"] = o.maxDelete
	}
	j, err := srv.callJob(ctx, http.MethodPost, "/v1/admin/jobs", in, http.StatusAccepted)
	if se, ok := errors.AsType[*statusError](err); ok && se.status == http.StatusUnauthorized {
		return srv.needsToken()
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errCouldNotRun, err)
	}
	fmt.Fprintf(stderr, "memcell: %s runs in the memcell server at %s as job %s\n", kind, redact.URL(srv.base), j.ID)
	path := "/v1/admin/jobs/" + j.ID
	progress, finish := progressReporter(o.progress, stderr, nil)
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
			finish(ctx.Err())
			return cancelRemoteJob(srv, path, ctx.Err(), stderr)
		case <-tick.C:
		}
		got, err := srv.callJob(ctx, http.MethodGet, path, nil, http.StatusOK)
		switch {
		case ctx.Err() != nil:
			continue // cancelled above
		case err != nil:
			// The server may be busy for a moment; a job it no longer
			// knows (it restarted) is gone for good.
			var se *statusError
			if failures++; failures >= 10 || (errors.As(err, &se) && se.status == http.StatusNotFound) {
				finish(err)
				return fmt.Errorf("%w: job %s in the server at %s: %w", errCouldNotRun, j.ID, redact.URL(srv.base), err)
			}
			continue
		}
		failures = 0
		j = got
		show(j)
	}
	if j.State == httpapi.JobSucceeded {
		finish(nil)
	} else {
		finish(errors.New(j.Error))
	}
	switch {
	case j.State == httpapi.JobSucceeded && j.Report != nil:
		return finishJob(j.Report, o, stdout)
	case j.State == httpapi.JobFailed && j.Report != nil && j.Report.Refused != "":
		return refusedJob(j.Report, o, stdout, fmt.Errorf("job %s in the server: %s", j.ID, j.Error))
	case j.State == httpapi.JobCancelled:
		return fmt.Errorf("%w: job %s was cancelled in the server: %s", errCouldNotRun, j.ID, j.Error)
	}
	return fmt.Errorf("%w: job %s failed in the server: %s", errCouldNotRun, j.ID, j.Error)
}

// cancelRemoteJob cancels a job after Ctrl-C and waits a little for it to
// stop, so that the command does not end before the job does.
func cancelRemoteJob(srv *remote, path string, cause error, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := srv.callJob(ctx, http.MethodDelete, path, nil, http.StatusAccepted, http.StatusOK)
	if err != nil {
		return fmt.Errorf("%w: %w; cancelling the job in the server failed: %w", errCouldNotRun, cause, err)
	}
	fmt.Fprintf(stderr, "memcell: job %s cancelled in the server\n", j.ID)
	for !j.Done() && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
		if got, err := srv.callJob(ctx, http.MethodGet, path, nil, http.StatusOK); err == nil {
			j = got
		}
	}
	return fmt.Errorf("%w: %w", errCouldNotRun, cause)
}
