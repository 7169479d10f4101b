// Command memcell-load drives a running memcell server with mixed traffic
// from N concurrent clients for a set time, then reports the throughput,
// the p50 and p99 latency of each kind of request and overall, and the
// failed requests by status.
//
//	MEMCELL_API_TOKEN=... memcell-load --url http://127.0.0.1:8080 --clients 8 --duration 1m
//
// The traffic mixes creates of ~2 KB MemCells, validated gets, patches,
// lists by user (limit 20), counts, soft deletes each followed by a
// restore, hard deletes and validated batch gets (--mix weighs them;
// --rate caps the requests per second of all clients together). Each
// client works only on the documents it created and remembers the last
// state the server answered for each, so every read is checked: the
// Memcell-Validation header must say consistent and the document must be
// byte for byte the last state written. --max-live caps the live
// documents (a create at a client's share of the cap first hard-deletes
// one of its documents), which keeps the collection, and so the cost of
// lists and counts, bounded.
//
// With --scale N it makes a scale run instead: it loads N documents
// through the API with --clients writers, reports the load's throughput
// for each tenth of the documents (does it slow down as the collection
// grows?), then times GET, PATCH and soft DELETE by id, list by user and
// by group (limit 20, newest first) and count by user, one request at a
// time, --samples of each, and reports p50, p90 and p99:
//
//	memcell-load --serve bin/memcell --scale 10000 --clients 4 --users 50
//
// --serve starts that memcell binary on the embedded default in a new
// temporary data directory for the run; --restart restarts it after the
// timing and times again. make bench-scale runs it at 1,000, 10,000 and
// 50,000 documents.
//
// Exit status: 0 when every request was answered as expected, 1 when some
// failed (the report says which), 2 when the run could not start (a bad
// flag, no server answering /readyz).
//
// Why not a load-testing library: vegeta (github.com/tsenart/vegeta) and
// its kind send requests from fixed or generated targets and judge answers
// by status, but this mix chains requests (a get, patch or delete names an
// id an earlier create answered; a restore follows its soft delete) and
// checks every answer against the client's own record of the document, so
// the clients are a small closed loop on net/http here. Latencies go to
// HdrHistogram (github.com/HdrHistogram/hdrhistogram-go), one histogram
// per client and kind, merged at the end.
//
// It is a separate command, not a memcell subcommand, so that the service
// binary carries no load generator.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
)

// envToken names the environment variable the token is read from.
const envToken = "MEMCELL_API_TOKEN"

// errUsage marks a bad invocation (exit status 2).
var errUsage = errors.New("usage")

// errFailures marks a run in which some requests failed (exit status 1).
var errFailures = errors.New("some requests failed")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, pflag.ErrHelp):
	case errors.Is(err, errFailures):
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "memcell-load:", err)
		os.Exit(2)
	}
}

// run parses args, runs the load and writes the report to stdout.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	if opts.scale {
		return runScale(ctx, opts, stdout, stderr)
	}
	cfg, asJSON := opts.cfg, opts.asJSON
	if err := probe(ctx, cfg.URL, cfg.Token); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "memcell-load: %d clients against %s for %s (mix %s, seed %d)\n",
		cfg.Clients, cfg.URL, cfg.Duration, cfg.Mix, cfg.Seed)
	rep, err := Run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		writeTable(stdout, rep)
	}
	if rep.Overall.Errors > 0 {
		return errFailures
	}
	return nil
}

// options are what the command line asks for.
type options struct {
	// cfg is the mixed run's configuration; its URL, Token, Clients, Users
	// and Seed serve the scale run too.
	cfg    Config
	asJSON bool
	// scale is set by --scale: a scale run of scaleCfg instead.
	scale    bool
	scaleCfg ScaleConfig
	// serve is the memcell binary a scale run starts (--serve); restart
	// restarts it and measures again (--restart).
	serve   string
	restart bool
}

// The flags of the mixed run only, and of the scale run only.
var (
	mixedFlags = []string{"duration", "rate", "mix", "max-live", "prefill"}
	scaleFlags = []string{"samples", "sample-time", "serve", "restart"}
)

// parseFlags reads the command line into options. The token comes from
// --token, else $MEMCELL_API_TOKEN (preferred: a flag shows in ps).
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	fs := pflag.NewFlagSet("memcell-load", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: memcell-load [flags]
       memcell-load --scale N [--serve bin/memcell] [flags]

Drives a running memcell server with mixed traffic and reports throughput,
p50/p99 latency per kind of request and the failed requests by status.

With --scale N it loads N documents through the API instead (--clients
writers), reports the load's throughput tenth by tenth, then times GET,
PATCH and soft DELETE by id, list by user and by group (limit 20) and count
by user, one request at a time, --samples of each. With --serve it starts
that memcell binary on the embedded default in a new temporary data
directory for the run, and removes it after.

Flags:
%s`, fs.FlagUsages())
	}
	var (
		o   options
		mix string
	)
	cfg := &o.cfg
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "base URL of the memcell server")
	fs.StringVar(&cfg.Token, "token", "", "API token (default $"+envToken+", which keeps it out of ps)")
	fs.IntVar(&cfg.Clients, "clients", 8, "concurrent clients, each sending its next request when the last is answered (--scale: the writers)")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long to send requests")
	fs.Float64Var(&cfg.Rate, "rate", 0, "cap on the requests per second of all clients together (0: as fast as answered)")
	fs.StringVar(&mix, "mix", DefaultMix.String(), "weights of the operations, kind=weight,... (the kinds named replace the defaults)")
	fs.IntVar(&cfg.Users, "users", 20, "user ids the documents are spread over, and lists and counts ask for")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the clients' random streams (0: a new one, printed)")
	fs.IntVar(&cfg.MaxLive, "max-live", 1000, "cap on the live documents the run holds")
	fs.BoolVar(&cfg.Prefill, "prefill", false, "create the --max-live documents before the timed run")
	fs.DurationVar(&cfg.RequestTimeout, "timeout", 30*time.Second, "bound on each request (--scale: 5m unless given)")
	fs.BoolVar(&o.asJSON, "json", false, "write the report as JSON")
	fs.IntVar(&o.scaleCfg.Docs, "scale", 0, "load this many documents, then time each kind of request alone (a scale run)")
	fs.IntVar(&o.scaleCfg.Samples, "samples", 100, "--scale: requests timed of each kind")
	fs.DurationVar(&o.scaleCfg.SampleTime, "sample-time", time.Minute, "--scale: bound on the time spent timing each kind (a slow kind gets fewer samples)")
	fs.StringVar(&o.serve, "serve", "", "--scale: start this memcell binary on the embedded default in a new temporary data directory (instead of --url)")
	fs.BoolVar(&o.restart, "restart", false, "--scale --serve: restart the server after timing the requests and time them again")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return o, err
		}
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if cfg.Token == "" {
		cfg.Token = getenv(envToken)
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	o.scale = fs.Changed("scale")
	if o.scale {
		for _, name := range mixedFlags {
			if fs.Changed(name) {
				return o, fmt.Errorf("%w: --%s does not apply to a scale run", errUsage, name)
			}
		}
		if o.serve != "" && fs.Changed("url") {
			return o, fmt.Errorf("%w: --serve starts its own server: no --url", errUsage)
		}
		if o.restart && o.serve == "" {
			return o, fmt.Errorf("%w: --restart needs --serve", errUsage)
		}
		sc := &o.scaleCfg
		sc.URL, sc.Token, sc.Writers, sc.Users, sc.Seed, sc.RequestTimeout = cfg.URL, cfg.Token, cfg.Clients, cfg.Users, cfg.Seed, cfg.RequestTimeout
		if !fs.Changed("timeout") {
			sc.RequestTimeout = 5 * time.Minute // a list of a large collection is slow on some primaries
		}
		if _, err := NewScale(*sc); err != nil {
			return o, fmt.Errorf("%w: %v", errUsage, err)
		}
		return o, nil
	}
	for _, name := range scaleFlags {
		if fs.Changed(name) {
			return o, fmt.Errorf("%w: --%s applies to a scale run (--scale) only", errUsage, name)
		}
	}
	var err error
	if cfg.Mix, err = ParseMix(mix); err != nil {
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := cfg.fill(); err != nil {
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	return o, nil
}

// runScale runs a scale run and writes its report to stdout.
func runScale(ctx context.Context, o options, stdout, stderr io.Writer) (err error) {
	cfg := o.scaleCfg
	var (
		srv *server
		dir string
	)
	if o.serve != "" {
		if dir, err = os.MkdirTemp("", "memcell-scale-"); err != nil {
			return fmt.Errorf("%w: %v", ErrCouldNotRun, err)
		}
		defer os.RemoveAll(dir)
		if srv, err = startServer(ctx, o.serve, dir, stderr); err != nil {
			return err
		}
		defer func() {
			if srv == nil {
				return
			}
			if e := srv.stop(); e != nil && err == nil {
				err = e
			}
		}()
		cfg.URL = srv.url
		fmt.Fprintf(stderr, "memcell-load: %s serve on the embedded default, data in %s\n", o.serve, dir)
	}
	if err := probe(ctx, cfg.URL, cfg.Token); err != nil {
		return err
	}
	cfg.Progress = stderr
	s, err := NewScale(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "memcell-load: loading %d documents with %d writers into %s (%d users, seed %d)\n",
		cfg.Docs, cfg.Writers, cfg.URL, cfg.Users, cfg.Seed)
	s.Load(ctx)
	fmt.Fprintf(stderr, "memcell-load: timing %d requests of each kind\n", cfg.Samples)
	s.Measure(ctx, "after the load")
	if o.restart && ctx.Err() == nil {
		e := srv.stop()
		srv = nil
		if e != nil {
			return e
		}
		if srv, err = startServer(ctx, o.serve, dir, stderr); err != nil {
			return err
		}
		s.SetURL(srv.url)
		fmt.Fprintln(stderr, "memcell-load: restarted the server; timing again")
		s.Measure(ctx, "after a restart")
	}
	rep := s.Report()
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		writeScaleTable(stdout, rep)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if rep.Failed() > 0 {
		return errFailures
	}
	return nil
}

// probe checks that a memcell server answers ready at base (GET /readyz,
// open to everyone) and takes the token (GET /v1/admin/flags, which needs
// it when the server has one).
func probe(ctx context.Context, base, token string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, path := range []string{"/readyz", "/v1/admin/flags"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCouldNotRun, err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("%w: no memcell server answers at %s: %v", ErrCouldNotRun, base, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			continue
		case http.StatusUnauthorized:
			return fmt.Errorf("%w: the server at %s needs its API token: set %s", ErrCouldNotRun, base, envToken)
		}
		return fmt.Errorf("%w: the server at %s is not ready: GET %s: %d %s", ErrCouldNotRun, base, path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// writeTable writes the report for a person.
func writeTable(w io.Writer, r *Report) {
	fmt.Fprintf(w, "%d requests in %.1fs: %.1f requests/s, %d clients, seed %d, %d documents live at the end",
		r.Overall.Requests, r.Seconds, r.Throughput, r.Clients, r.Seed, r.Live)
	if r.Prefilled > 0 {
		fmt.Fprintf(w, " (%d created before the run)", r.Prefilled)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\trequests\terrors\tp50 ms\tp99 ms\tmax ms\t")
	row := func(name string, s Stats) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.2f\t%.2f\t\n", name, s.Requests, s.Errors, s.P50ms, s.P99ms, s.MaxMs)
	}
	for _, k := range Kinds {
		if s, ok := r.Kinds[k]; ok {
			row(string(k), s)
		}
	}
	row("all", r.Overall)
	tw.Flush()
	if len(r.Errors) == 0 {
		fmt.Fprintln(w, "no errors")
		return
	}
	fmt.Fprintln(w, "errors by status:")
	for _, key := range slices.Sorted(maps.Keys(r.Errors)) {
		fmt.Fprintf(w, "  %s: %d (first: %s)\n", key, r.Errors[key], r.Samples[key])
	}
}
