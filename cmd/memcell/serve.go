package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/internal/netaddr"
	"github.com/memcell/memcell/kv"
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

Each setting comes from a flag, else its environment variable, else the
--config YAML file, else its default. SIGINT or SIGTERM stop the server
gracefully: in-flight requests finish and both stores are closed.`,
		Example: `  memcell serve
  MEMCELL_API_TOKEN=s3cret memcell serve --addr 0.0.0.0:8080 \
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
// the operator said --insecure.
func checkBind(cfg *config) error {
	loopback, err := netaddr.Loopback(cfg.Addr)
	if err != nil {
		return fmt.Errorf("%w: --addr: %v", errUsage, err)
	}
	if !loopback && cfg.APIToken == "" && !cfg.Insecure {
		return fmt.Errorf("%w: refusing to serve %s without an API token: set MEMCELL_API_TOKEN, or pass --insecure to serve it unauthenticated", errUsage, cfg.Addr)
	}
	return nil
}

// serve runs the service until ctx ends.
func serve(ctx context.Context, cfg *config, stdout, stderr io.Writer) (err error) {
	if err := checkBind(cfg); err != nil {
		return err
	}
	// Lines logged with a request's context (the mirror's WARN and
	// [DATA_INCONSISTENCY] lines among them) carry its request_id.
	log := slog.New(httpapi.RequestIDHandler(newLogger(stderr, cfg.LogFormat, cfg.LogLevel).Handler()))
	flags := cfg.Mirror
	log.Info("memcell starting", "version", versionString(), "config", cfg.redacted())

	st, err := openStores(ctx, cfg, stderr, log)
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
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	repo, err := mirror.New(primary, store, &mirror.Options{Logger: log, Registerer: reg, Flags: &flags})
	if err != nil {
		return err
	}
	// Deferred before the stores' close runs (defers run last first): it
	// syncs the KV and clears the write intents of the last writes.
	defer repo.Close()
	// Jobs started through /v1/admin/jobs run on the stores this process
	// holds open: Pebble and LevelDB allow no second process.
	jobs := httpapi.NewJobRunner(func(ctx context.Context, kind string, opts *reconcile.Options) (*reconcile.Report, error) {
		return reconcile.Run(ctx, kind, primary, store, opts)
	}, &httpapi.JobRunnerOptions{Logger: log, Registerer: reg})
	// The replayer redoes the KV writes whose traces the primary holds (a
	// crash, a KV outage, mirroring switched off), at start and every few
	// seconds; it rests while mirroring is off.
	replayer, err := reconcile.NewReplayer(primary, store, &reconcile.ReplayerOptions{
		Options:  reconcile.Options{Logger: log, Registerer: reg},
		Interval: cfg.ReplayInterval,
		Paused:   func() bool { return !repo.Flags().Mirroring },
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
		Token: cfg.APIToken, MaxBodyBytes: cfg.MaxBodyBytes, RequestTimeout: cfg.RequestTimeout, Version: versionString(),
		Jobs: jobs, Replayer: replayer,
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
	}
	apiURL := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "memcell %s\n  data:    %s\n  primary: %s\n  kv:      %s (%s)\n  api:     %s\n",
		versionString(), dataDirLine(cfg, st.dataDir), st.primaryDesc, kv.Redact(st.kvURL), store.Capabilities().Backend, apiURL)
	log.Info("memcell serving", "api", apiURL, "kv_backend", store.Capabilities().Backend, "data_dir", st.dataDir)

	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()
	select {
	case err := <-served:
		cctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		_ = jobs.Close(cctx)
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("memcell stopping: finishing in-flight requests", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(sctx); err != nil {
		log.Warn("shutdown did not finish every request", "error", err)
	}
	// Running jobs are cancelled; they stop at their next batch, before
	// the stores close.
	if err := jobs.Close(sctx); err != nil {
		log.Warn("shutdown did not wait for every job to stop", "error", err)
	}
	return nil
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
