package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/internal/netaddr"
	"github.com/memcell/memcell/internal/redact"
	"github.com/memcell/memcell/mirror"
	"github.com/memcell/memcell/reconcile"
)

func newServeCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the MemCell API (with an embedded primary and Pebble unless told otherwise)",
		Long: `Run the memcell REST API.

With no configuration it starts the embedded default: an in-process
MongoDB-compatible primary (FerretDB on SQLite) and a Pebble KV store, both
under ./memcell-data, and serves the API on 127.0.0.1:8080. The embedded
primary also listens on a loopback port (printed at start) for any MongoDB
client. It suits evaluation and small single-process deployments; for
production give --mongo-uri (MongoDB 5.0+, a replica set for transactions)
and --kv (e.g. a Redis Cluster).

Without an API token it answers only requests whose Host header names a
loopback host or one of --allowed-hosts (a web page cannot reach it by
rebinding its own name to 127.0.0.1); /healthz and /readyz are open to
every caller. With --tls-cert and --tls-key it serves HTTPS (TLS 1.2+).

Each setting comes from a flag, else its environment variable, else the
--config YAML file, else its default.

A KV store that cannot be reached at start does not stop the server: it
serves every route from the primary, reports the KV not ready on /readyz,
records each write it could not mirror, keeps trying to open the store
(with backoff) and catches up once it is there.

A primary that cannot be reached fails every route with 503, unless
--read-fallback is on: then single and batch gets answer from the KV
copies (possibly stale; Memcell-Source: kv), and 503 for an id the KV has
no copy of.

SIGINT or SIGTERM stop the server gracefully: it stops accepting, in-flight
requests finish within --shutdown-timeout (those still running then are
cancelled), jobs stop, and both stores are closed.`,
		Example: `  memcell serve
  MEMCELL_API_TOKEN=s3cret memcell serve --addr 0.0.0.0:8443 \
    --tls-cert /etc/memcell/tls.crt --tls-key /etc/memcell/tls.key \
    --mongo-uri 'mongodb://db1,db2,db3/?replicaSet=rs0' \
    --kv 'redis+cluster://10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Flags(), os.Getenv)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addConfigFlags(c.Flags())
	return c
}

// checkBind refuses to serve a non-loopback address without a token, unless
// the operator said --insecure. The warnings are for serving that is
// allowed but weak: a token sent in clear, a host check that will refuse
// every name but the loopback ones.
func checkBind(cfg *config) (warnings []string, err error) {
	loopback, err := netaddr.Loopback(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("%w: --addr: %v", errUsage, err)
	}
	if loopback {
		return nil, nil
	}
	if cfg.APIToken == "" && !cfg.Insecure {
		return nil, fmt.Errorf("%w: refusing to serve %s without an API token: set MEMCELL_API_TOKEN, or pass --insecure to serve it unauthenticated", errUsage, cfg.Addr)
	}
	if cfg.TLSCert == "" && (cfg.APIToken != "" || cfg.MetricsToken != "") {
		warnings = append(warnings, fmt.Sprintf("%s is not a loopback address and the API is served over plain HTTP: the tokens travel in clear; "+
			"give --tls-cert and --tls-key, or serve it behind a TLS-terminating proxy", cfg.Addr))
	}
	if cfg.APIToken == "" && len(cfg.AllowedHosts) == 0 {
		warnings = append(warnings, "without an API token only requests whose Host names a loopback host (localhost, 127.0.0.1, [::1]) are served "+
			"(others get 403 host_not_allowed); list the names clients use in --allowed-hosts")
	}
	return warnings, nil
}

// serverTLS returns the TLS configuration of --tls-cert and --tls-key, or
// nil when neither is given.
func serverTLS(cfg *config) (*tls.Config, error) {
	switch {
	case cfg.TLSCert == "" && cfg.TLSKey == "":
		return nil, nil
	case cfg.TLSCert == "" || cfg.TLSKey == "":
		return nil, fmt.Errorf("%w: --tls-cert and --tls-key go together: give both, or neither", errUsage)
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("%w: --tls-cert %s, --tls-key %s: %v", errUsage, cfg.TLSCert, cfg.TLSKey, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// serve runs the service until ctx ends.
func serve(ctx context.Context, cfg *config, stdout, stderr io.Writer) (err error) {
	warnings, err := checkBind(cfg)
	if err != nil {
		return err
	}
	tlsConfig, err := serverTLS(cfg)
	if err != nil {
		return err
	}
	// Lines logged with a request's context (the mirror's WARN and
	// [DATA_INCONSISTENCY] lines among them) carry its request_id.
	log := slog.New(httpapi.RequestIDHandler(newLogger(stderr, cfg.LogFormat, cfg.LogLevel).Handler()))
	flags := cfg.Mirror
	log.Info("memcell starting", "version", versionString(), "config", cfg.redacted())
	for _, w := range warnings {
		log.Warn(w)
	}

	// The KV store need not be there at start: serve runs from the
	// primary alone and records what it cannot mirror until the store
	// opens, and the replayer then catches up.
	st, err := openStores(ctx, cfg, stderr, log, &kvLater{
		onRetry: func(err error, next time.Duration) {
			log.Warn("kv store not reachable; serving from the primary alone, writes are recorded for the replay", "error", err, "retry_in", next.Round(time.Millisecond))
		},
		onOpen: func(attempts int) { log.Info("kv store open; the replayer catches up", "attempts", attempts) },
	})
	if err != nil {
		return err
	}
	defer func() {
		st.close(log)
		if err == nil {
			log.Info("memcell stopped: both stores closed")
		}
	}()
	primary, store := st.primary, st.kv

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo().collector())
	// Close, deferred below, drains the queue of KV writes within the
	// shutdown grace; what is left stays to the intents and the replayer.
	repo, err := mirror.New(primary, store, &mirror.Options{Logger: log, Registerer: reg, Flags: &flags, ReadFallback: cfg.ReadFallback,
		QueueBytes: cfg.QueueBytes, DrainTimeout: cfg.ShutdownTimeout})
	if err != nil {
		return err
	}
	// Deferred before the stores' close runs (defers run last first): it
	// syncs the KV and clears the write intents of the last writes.
	defer repo.Close()
	// Jobs started through /v1/admin/jobs run on the stores this process
	// holds open: Pebble, LevelDB and RocksDB allow no second process.
	jobs := httpapi.NewJobRunner(func(ctx context.Context, kind string, opts *reconcile.Options) (*reconcile.Report, error) {
		return reconcile.Run(ctx, kind, primary, store, opts)
	}, &httpapi.JobRunnerOptions{Logger: log, Registerer: reg})
	// The replayer redoes the KV writes whose traces the primary holds (a
	// crash, a KV outage, mirroring switched off), at start and every few
	// seconds; it rests while mirroring is off.
	replayer, err := reconcile.NewReplayer(primary, store, &reconcile.ReplayerOptions{
		Options:  reconcile.Options{Logger: log, Registerer: reg},
		Interval: cfg.ReplayInterval,
		// It rests too while the KV store has not opened yet: every
		// pass would fail.
		Paused: func() bool { return !repo.Flags().Mirroring || !st.kvLater.Ready() },
	})
	if err != nil {
		return err
	}
	rctx, stopReplay := context.WithCancel(context.WithoutCancel(ctx))
	replayDone := make(chan struct{})
	go func() {
		defer close(replayDone)
		_ = replayer.Run(rctx) // ends with rctx
	}()
	defer func() {
		stopReplay()
		<-replayDone // before the stores close
	}()
	handler, err := httpapi.New(repo, &httpapi.Options{
		Logger: log, Registerer: reg, Gatherer: reg,
		Token: cfg.APIToken, MetricsToken: cfg.MetricsToken, AllowedHosts: cfg.AllowedHosts,
		MaxBodyBytes: cfg.MaxBodyBytes, RequestTimeout: cfg.RequestTimeout, Version: versionString(),
		Jobs: jobs, Replayer: replayer, Pprof: cfg.Pprof,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// The answer must have time to leave after the request's own limit.
	writeTimeout := max(2*time.Minute, cfg.RequestTimeout+30*time.Second)
	httpSrv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    httpapi.MaxHeaderBytes, // the request line and headers; 431 beyond, from net/http
		ReadTimeout:       time.Minute,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConfig,
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	apiURL := scheme + "://" + ln.Addr().String()
	kvState := store.Capabilities().Backend
	if !st.kvLater.Ready() {
		kvState += ", not reachable yet: serving from the primary alone, retrying in the background"
	}
	fmt.Fprintf(stdout, "memcell %s\n  data:    %s\n  primary: %s\n  kv:      %s (%s)\n  api:     %s\n",
		versionString(), dataDirLine(cfg, st.dataDir), st.primaryDesc, redact.URL(st.kvURL), kvState, apiURL)
	log.Info("memcell serving", "api", apiURL, "kv_backend", store.Capabilities().Backend, "kv_open", st.kvLater.Ready(), "data_dir", st.dataDir)

	if err := serveUntil(ctx, httpSrv, ln, cfg.ShutdownTimeout, log); err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
		defer cancel()
		_ = jobs.Close(cctx)
		return err
	}
	// No handler runs now. Running jobs are cancelled; they stop at their
	// next batch. Then (deferred) the replayer stops, the last intents are
	// cleared, and the stores close.
	jctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := jobs.Close(jctx); err != nil {
		log.Warn("shutdown did not wait for every job to stop", "error", err)
	}
	return nil
}

// drainTimeout bounds the wait for cancelled requests, and for cancelled
// jobs, to end once the shutdown grace is over.
const drainTimeout = 10 * time.Second

// serveUntil serves ln until ctx ends (or serving fails), then shuts down
// in order: it stops accepting, lets the requests in flight finish within
// grace, then cancels the contexts of those still running, closes their
// connections and waits up to drainTimeout for their handlers to return.
// It returns when no handler runs any more (or, logged as an error, when
// drainTimeout is over), so that the caller can close what the handlers
// use: a request cancelled mid-write leaves its write intent in the
// primary, and the mirror records the KV write it could not make.
func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration, log *slog.Logger) error {
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	var running atomic.Int64
	h := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		running.Add(1)
		defer running.Add(-1)
		h.ServeHTTP(w, r)
	})
	srv.BaseContext = func(net.Listener) context.Context { return reqCtx }
	served := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			// The certificate is in TLSConfig; ServeTLS adds HTTP/2.
			served <- srv.ServeTLS(ln, "", "")
			return
		}
		served <- srv.Serve(ln)
	}()
	var serveErr error
	select {
	case err := <-served:
		serveErr = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		log.Info("memcell stopping: finishing in-flight requests", "timeout", grace)
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err == nil {
		return serveErr
	}
	log.Warn("shutdown: the grace period is over; cancelling the requests still running", "running", running.Load(), "timeout", grace)
	cancelRequests()
	_ = srv.Close()
	deadline := time.Now().Add(drainTimeout)
	for running.Load() > 0 {
		if time.Now().After(deadline) {
			log.Error("shutdown: requests still running after being cancelled; closing the stores under them", "running", running.Load())
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return serveErr
}

func dataDirLine(cfg *config, dataDir string) string {
	var used []string
	if cfg.MongoURI == "" {
		used = append(used, "embedded primary")
	}
	if cfg.KVURL == "" {
		used = append(used, "Pebble KV")
	}
	if len(used) == 0 {
		return dataDir + " (unused: external stores)"
	}
	return dataDir + " (" + strings.Join(used, ", ") + ")"
}
