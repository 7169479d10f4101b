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
	cfg, asJSON, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
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

// parseFlags reads the command line into a Config. The token comes from
// --token, else $MEMCELL_API_TOKEN (preferred: a flag shows in ps).
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (Config, bool, error) {
	fs := pflag.NewFlagSet("memcell-load", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: memcell-load [flags]\n\nDrives a running memcell server with mixed traffic and reports throughput,\np50/p99 latency per kind of request and the failed requests by status.\n\nFlags:\n%s", fs.FlagUsages())
	}
	var (
		cfg    Config
		mix    string
		asJSON bool
	)
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "base URL of the memcell server")
	fs.StringVar(&cfg.Token, "token", "", "API token (default $"+envToken+", which keeps it out of ps)")
	fs.IntVar(&cfg.Clients, "clients", 8, "concurrent clients, each sending its next request when the last is answered")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long to send requests")
	fs.Float64Var(&cfg.Rate, "rate", 0, "cap on the requests per second of all clients together (0: as fast as answered)")
	fs.StringVar(&mix, "mix", DefaultMix.String(), "weights of the operations, kind=weight,... (the kinds named replace the defaults)")
	fs.IntVar(&cfg.Users, "users", 20, "user ids the documents are spread over, and lists and counts ask for")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the clients' random streams (0: a new one, printed)")
	fs.IntVar(&cfg.MaxLive, "max-live", 1000, "cap on the live documents the run holds")
	fs.BoolVar(&cfg.Prefill, "prefill", false, "create the --max-live documents before the timed run")
	fs.DurationVar(&cfg.RequestTimeout, "timeout", 30*time.Second, "bound on each request")
	fs.BoolVar(&asJSON, "json", false, "write the report as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return cfg, false, err
		}
		return cfg, false, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return cfg, false, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	var err error
	if cfg.Mix, err = ParseMix(mix); err != nil {
		return cfg, false, fmt.Errorf("%w: %v", errUsage, err)
	}
	if cfg.Token == "" {
		cfg.Token = getenv(envToken)
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	if err := cfg.fill(); err != nil {
		return cfg, false, fmt.Errorf("%w: %v", errUsage, err)
	}
	return cfg, asJSON, nil
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
