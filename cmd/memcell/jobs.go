package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/memcell/memcell/internal/redact"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/reconcile"
)

// errDifferences is the one error that exits 1: a job ran and found
// differences (verify, a repair dry run) or left some (repair, sync).
var errDifferences = errors.New("differences found")

// errCouldNotRun marks a job that could not run or finish: the stores,
// the server or the report file failed it (exit status 2).
var errCouldNotRun = errors.New("could not run")

// jobFlags are the settings a job reads: where the stores are and how to log.
// addr is where a server that would run the job listens.
var jobFlags = []string{"mongo-uri", "mongo-database", "kv", "data-dir", "embedded-addr", "embedded-sync-interval", "addr", "log-level", "log-format"}

type jobOptions struct {
	report     string
	rate       float64
	checkpoint string
	dryRun     bool
	overwrite  bool
	maxDelete  string
	progress   string
	server     string
	caCert     string
}

type jobRun func(ctx context.Context, primary reconcile.Primary, store kv.Store, opts *reconcile.Options) (*reconcile.Report, error)

// newJobCmd builds a job command; extra adds the job's own flags.
func newJobCmd(use, short, long string, run jobRun, extra func(fs *pflag.FlagSet, o *jobOptions)) *cobra.Command {
	o := &jobOptions{}
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Long: long + `

When a memcell server answers at --server, or else at the address the same
settings give "memcell serve" (--addr, $MEMCELL_ADDR, the config file, else
127.0.0.1:8080), the job runs inside that server, on the stores it has
open, through POST /v1/admin/jobs ($MEMCELL_API_TOKEN is sent as the bearer
token): this is how a job runs on Pebble, LevelDB or RocksDB, which allow one
process at a time, while the server runs. Ctrl-C cancels the job in the server.
An address is asked over https when the configuration has a TLS certificate
($MEMCELL_TLS_CERT or tls_cert), which the command then trusts; --ca-cert
names other certificates to trust ($SSL_CERT_FILE works too).

When nothing answers there, the command opens the stores itself: the ones
the configuration names (--mongo-uri, --kv, or their environment variables
and config file keys, as for "memcell serve"), else the embedded default
under --data-dir.

On a terminal a progress bar for each pass (the primary pass, then for
verify and repair the KV pass) shows the count, the rate and the time left,
with the log lines printed above the bars; otherwise a JSON progress line
goes to stderr every few seconds and when the job moves from the primary
pass to the KV pass (--progress chooses; --progress alone is auto). --report writes
the final report as JSON; --checkpoint makes an interrupted job resume where
it stopped when run again with the same file (only when the command opens
the stores itself).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Flags(), os.Getenv)
			if err != nil {
				return err
			}
			if o.rate < 0 {
				return fmt.Errorf("%w: --rate must not be negative", errUsage)
			}
			if _, err := reconcile.ParseMaxDelete(o.maxDelete); err != nil {
				return fmt.Errorf("%w: --max-delete %q: want a percentage of the KV keys such as 5%%, a number of keys such as 1000, or all", errUsage, o.maxDelete)
			}
			srv, err := findServer(cmd.Context(), o.server, o.caCert, cfg)
			if err != nil {
				return err
			}
			if srv != nil {
				if o.checkpoint != "" {
					return fmt.Errorf("%w: --checkpoint is not supported when the job runs in the memcell server at %s (the server keeps no checkpoint file); drop --checkpoint, or stop the server to run the job here", errUsage, redact.URL(srv.base))
				}
				return runRemoteJob(cmd.Context(), srv, use, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			return runJob(cmd.Context(), cfg, o, run, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addConfigFlags(c.Flags(), jobFlags...)
	c.Flags().StringVar(&o.report, "report", "", "write the final report as JSON to this file")
	c.Flags().Float64Var(&o.rate, "rate", 0, "documents per second at most (0: as fast as it goes)")
	c.Flags().StringVar(&o.checkpoint, "checkpoint", "", "checkpoint file: an interrupted job resumes from it (not with a server)")
	c.Flags().StringVar(&o.server, "server", "", "run the job in the memcell server at this address or URL (default: the server at --addr, if one answers)")
	c.Flags().StringVar(&o.caCert, "ca-cert", "", "PEM certificates to trust, besides the system's, for an https server (default: the configuration's --tls-cert)")
	o.progress = "auto"
	pf := c.Flags().VarPF(&enumValue{p: &o.progress, allowed: []string{"auto", "bar", "json", "none"}}, "progress", "",
		"progress display: auto (bars on a terminal, JSON lines otherwise), bar, json or none; --progress alone is auto")
	// The value is optional, so that a bare --progress never takes the
	// next flag as its value; noArgs takes "--progress json" as
	// "--progress=json".
	pf.NoOptDefVal = "auto"
	if extra != nil {
		extra(c.Flags(), o)
	}
	return c
}

func newKVSyncCmd() *cobra.Command {
	return newJobCmd("sync", "Backfill the KV mirror from the primary",
		`Write every document of the primary to the KV mirror, in its canonical
encoding and guarded by its revision, so a newer copy written by live traffic
is never replaced. Use it to build the mirror of an existing collection.`,
		reconcile.Sync, nil)
}

func newKVVerifyCmd() *cobra.Command {
	return newJobCmd("verify", "Compare every document of the primary with the KV mirror",
		`Compare every document of the primary (soft-deleted ones too) with its KV
copy, and every KV key with the primary. Nothing is written. Exit status: 0
when the copies agree, 1 when differences were found, 2 when the comparison
could not run.`,
		reconcile.Verify, nil)
}

func newKVRepairCmd() *cobra.Command {
	return newJobCmd("repair", "Make the KV mirror equal to the primary",
		`Verify, then rewrite missing and differing copies from the primary and
delete KV copies of documents the primary does not have. Writes are guarded
by revision, so repair is safe beside live traffic. --dry-run prints the plan
and writes nothing.

The KV copies of documents the primary does not have ("extra") are deleted
only once every KV key has been scanned, and only when they are at most
--max-delete of them: a share of the KV keys scanned (5%, the default; 0.5%),
a number of keys (1000), or all (the same as 100%). A primary that lost its
documents by accident (a dropped collection, a bad deleteMany) makes every
copy an extra, and the copies are then the only ones left: over the bound
the repair deletes no extra, still fixes the other copies, and exits 2 saying
how many it would have deleted; --dry-run says so too. To put the lost
documents back from their copies, run memcell kv recover.

Exit status: 0 when the mirror is (or, with --dry-run, already was) equal to
the primary, 1 when differences were found by the dry run or were left
unrepaired, 2 when the repair could not run or refused to delete the extras.`,
		reconcile.Repair,
		func(fs *pflag.FlagSet, o *jobOptions) {
			fs.BoolVar(&o.dryRun, "dry-run", false, "report what would change, write nothing")
			fs.StringVar(&o.maxDelete, "max-delete", reconcile.DefaultMaxDelete,
				"delete extra KV copies only when they are at most this many: a share of the KV keys scanned (5%), a number of keys (1000), or all")
		})
}

func newKVRecoverCmd() *cobra.Command {
	return newJobCmd("recover", "Restore lost primary documents from their KV copies",
		`Scan the KV mirror and put back into the primary every document it lacks,
exactly as its copy holds it: its own id, revision, created_at, updated_at,
deletion marks and extra fields, with no new revision. Soft-deleted
documents come back soft-deleted. A document deleted for good is never
brought back: its KV copy is gone (a tombstone), or the primary remembers
hard-deleting it at the copy's revision or later. --overwrite-older also
replaces primary documents whose revision is lower than their copy's; a
document written at the copy's revision or above always stays. Nothing is
written to the KV. --dry-run lists what it would recover and writes
nothing. Exit status: 0 when the recover ran (or, with --dry-run, found
nothing to recover), 1 when the dry run found documents to recover, 2 when
it could not run. --checkpoint needs a KV backend that scans in key order
(Pebble, LevelDB, RocksDB, memory).`,
		reconcile.Recover,
		func(fs *pflag.FlagSet, o *jobOptions) {
			fs.BoolVar(&o.dryRun, "dry-run", false, "report what would be recovered, write nothing")
			fs.BoolVar(&o.overwrite, "overwrite-older", false, "also replace primary documents whose revision is lower than their KV copy's")
		})
}

func runJob(ctx context.Context, cfg *config, o *jobOptions, run jobRun, stdout, stderr io.Writer) error {
	// The log goes through logs, which the progress bars redirect while
	// they are drawn.
	logs := &switchWriter{w: stderr}
	log := newLogger(logs, logFormat(stderr, cfg.LogFormat), cfg.LogLevel)
	st, err := openStores(ctx, cfg, stderr, log, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", errCouldNotRun, err)
	}
	defer st.close(log)

	progress, finish := progressReporter(o.progress, stderr, logs)
	rep, err := run(ctx, st.primary, st.kv, &reconcile.Options{Logger: log, Rate: o.rate, Checkpoint: o.checkpoint, Progress: progress,
		DryRun: o.dryRun, OverwriteOlder: o.overwrite, MaxDelete: o.maxDelete})
	finish(err)
	if _, refused := errors.AsType[*reconcile.DeleteRefusedError](err); refused && rep != nil {
		return refusedJob(rep, o, stdout, err)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errCouldNotRun, err)
	}
	return finishJob(rep, o, stdout)
}

// refusedJob reports a repair that refused to delete the extras it found
// (err): the report file and the summary line as for a job that ran, and
// exit status 2.
func refusedJob(rep *reconcile.Report, o *jobOptions, stdout io.Writer, err error) error {
	if werr := writeReport(rep, o); werr != nil {
		return werr
	}
	fmt.Fprintln(stdout, summary(rep))
	return fmt.Errorf("%w: %w", errCouldNotRun, err)
}

// writeReport writes rep to the --report file, if there is one.
func writeReport(rep *reconcile.Report, o *jobOptions) error {
	if o.report == "" {
		return nil
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err == nil {
		err = os.WriteFile(o.report, append(b, '\n'), 0o644)
	}
	if err != nil {
		return fmt.Errorf("%w: report: %w", errCouldNotRun, err)
	}
	return nil
}

// finishJob writes the report file and the summary line of a job that ran,
// and returns the error that sets the exit status.
func finishJob(rep *reconcile.Report, o *jobOptions, stdout io.Writer) error {
	if err := writeReport(rep, o); err != nil {
		return err
	}
	diffs := rep.DifferenceCount()
	fmt.Fprintln(stdout, summary(rep))
	switch {
	case (rep.Job == "verify" || rep.DryRun) && diffs > 0:
		return errDifferences
	case rep.Unrepaired > 0:
		return fmt.Errorf("%w: %d could not be repaired: unreadable primary documents (fix them in MongoDB), "+
			"KV tombstones of documents deleted within the tombstone grace period (run repair again once it is over), "+
			"or copies that kept changing during the repair (run it again); the log names each one", errDifferences, rep.Unrepaired)
	}
	return nil
}

// kindOrder is the order in which a summary names the kinds of difference.
var kindOrder = []reconcile.Kind{reconcile.Missing, reconcile.Extra, reconcile.Differs, reconcile.Stale, reconcile.Lost, reconcile.Behind, reconcile.Unreadable}

// dryRunIDs is how many ids of each kind the summary of a dry run lists.
const dryRunIDs = 5

// summary is the line a job prints when it ends, e.g. "verify: 5
// documents and 6 KV keys scanned in 1.2s, 2 differences: 1 extra, 1
// differs", or for a dry run what the repair would change, with the first
// ids of each kind (from the report's samples).
func summary(rep *reconcile.Report) string {
	if rep.Job == "recover" {
		return recoverSummary(rep)
	}
	var b strings.Builder
	name := rep.Job
	if rep.DryRun {
		name += " --dry-run"
	}
	fmt.Fprintf(&b, "%s: %d documents and %d KV keys scanned in %s, ", name, rep.Scanned, rep.KVScanned,
		rep.Finished.Sub(rep.Started).Round(time.Millisecond))
	diffs := rep.DifferenceCount()
	if diffs == 0 {
		b.WriteString("no differences")
	} else {
		fmt.Fprintf(&b, "%d %s: %s", diffs, plural(diffs, "difference"), kindCounts(rep, nil, false))
	}
	lowered := func(verb string) string {
		if rep.RevisionsLowered == 0 {
			return ""
		}
		return fmt.Sprintf(" (%d %s: the primary's went down)", rep.RevisionsLowered, verb)
	}
	switch {
	case rep.DryRun:
		fixable := diffs - rep.Differences[reconcile.Unreadable]
		if fixable == 0 {
			b.WriteString("; nothing to repair")
		} else {
			fmt.Fprintf(&b, "; would repair %d%s: %s", fixable, lowered("would have the revision lowered"),
				kindCounts(rep, func(k reconcile.Kind) bool { return k != reconcile.Unreadable }, true))
		}
		if n := rep.Differences[reconcile.Unreadable]; n > 0 {
			fmt.Fprintf(&b, "; %d unreadable cannot be repaired (ids: %s)", n, sampleIDs(rep, reconcile.Unreadable, n))
		}
		b.WriteString("; nothing written")
		if rep.Refused != "" {
			b.WriteString("; " + rep.Refused)
		}
	case rep.Job != "verify":
		fmt.Fprintf(&b, "; %d repaired%s, %d unrepaired", rep.Repaired, lowered("with the revision lowered"), rep.Unrepaired)
	}
	return b.String()
}

// recoverSummary is summary for a recover, e.g. "recover: 40 KV copies
// scanned in 1.2s, 38 to recover: 38 lost; 38 recovered, 1 present, 1
// hard-deleted (never recovered)", or for a dry run what it would recover,
// with the first ids.
func recoverSummary(rep *reconcile.Report) string {
	var b strings.Builder
	name := rep.Job
	if rep.DryRun {
		name += " --dry-run"
	}
	copies := "copies"
	if rep.KVScanned == 1 {
		copies = "copy"
	}
	fmt.Fprintf(&b, "%s: %d KV %s scanned in %s, ", name, rep.KVScanned, copies,
		rep.Finished.Sub(rep.Started).Round(time.Millisecond))
	todo := rep.Differences[reconcile.Lost] + rep.Differences[reconcile.Behind]
	if todo == 0 {
		b.WriteString("nothing to recover")
	} else {
		verb := "to recover"
		if rep.DryRun {
			verb = "would recover"
		}
		fmt.Fprintf(&b, "%d %s: %s", todo, verb,
			kindCounts(rep, func(k reconcile.Kind) bool { return k != reconcile.Unreadable }, rep.DryRun))
	}
	if n := rep.Differences[reconcile.Unreadable]; n > 0 {
		fmt.Fprintf(&b, "; %d unreadable cannot be recovered (ids: %s)", n, sampleIDs(rep, reconcile.Unreadable, n))
	}
	if rep.DryRun {
		fmt.Fprintf(&b, "; %d present, %d hard-deleted (never recovered); nothing written", rep.SkippedPresent, rep.SkippedGrave)
	} else {
		fmt.Fprintf(&b, "; %d recovered, %d present, %d hard-deleted (never recovered)", rep.Repaired, rep.SkippedPresent, rep.SkippedGrave)
	}
	return b.String()
}

// plural is word, with an s unless n is 1.
func plural(n int64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// kindCounts lists the counts of the kinds of difference of rep that keep
// selects (nil: all), in kindOrder and then any other kind by name, as "1
// missing, 2 extra"; with ids, each with its first ids.
func kindCounts(rep *reconcile.Report, keep func(reconcile.Kind) bool, ids bool) string {
	order := slices.Clone(kindOrder)
	for _, k := range slices.Sorted(maps.Keys(rep.Differences)) {
		if !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	var parts []string
	for _, k := range order {
		n := rep.Differences[k]
		if n == 0 || (keep != nil && !keep(k)) {
			continue
		}
		part := fmt.Sprintf("%d %s", n, k)
		if ids {
			part += " (ids: " + sampleIDs(rep, k, n) + ")"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}

// sampleIDs lists the first dryRunIDs ids of kind among rep's samples, and
// how many of the n more there are.
func sampleIDs(rep *reconcile.Report, kind reconcile.Kind, n int64) string {
	var ids []string
	for _, d := range rep.Samples {
		if d.Kind == kind && len(ids) < dryRunIDs {
			ids = append(ids, d.EventID)
		}
	}
	s := strings.Join(ids, ", ")
	if more := n - int64(len(ids)); more > 0 {
		if s != "" {
			s += " and "
		}
		s += fmt.Sprintf("%d more", more)
	}
	return s
}
