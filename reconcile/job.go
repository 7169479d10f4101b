package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
)

// Verify compares every primary document with its KV copy and every KV key
// under the prefix with the primary, and reports the differences. It
// writes to neither store (only to Options.Checkpoint, if set).
//
// Invalid options are an error before any I/O, with a nil report. When the
// job fails or ctx ends the report is returned with the error, holding the
// counts so far; the error is then ctx.Err() itself, or wraps what failed
// (a primary or KV error, a checkpoint that cannot be used). Verify is safe
// to run beside live traffic; a document that keeps changing while it is
// read may still be reported.
func Verify(ctx context.Context, primary Primary, store kv.Store, opts *Options) (*Report, error) {
	return run(ctx, primary, store, opts, jobVerify)
}

// Sync backfills the KV: it writes the canonical encoding of every primary
// document, soft-deleted ones included, guarded by its revision so that it
// never replaces a newer copy. It reads nothing from the KV and deletes
// nothing (Repair removes extras). Report.Repaired counts the copies
// stored; the rest were refused because the KV already held a newer
// revision or a tombstone. Errors are as for Verify.
func Sync(ctx context.Context, primary Primary, store kv.Store, opts *Options) (*Report, error) {
	return run(ctx, primary, store, opts, jobSync)
}

// Repair verifies as Verify does and fixes what it finds: missing, stale and
// differing copies are written from the primary's current document (guarded
// by its revision), extras are deleted (leaving tombstones) once the primary
// has been asked again that it does not have them. A copy whose revision is
// ahead of the primary's document (the primary's revision went down: a
// restore from a backup, another program's replacement), which no guarded
// write can replace, is replaced with kv.Store.Swap once the primary and
// the KV have been read again, and counted in Report.RevisionsLowered as
// well as Repaired; a tombstone is never replaced. It clears the pending
// record (memcell.Primary.RecordPending) of every document it leaves consistent,
// keeping records written after it started. Report.Differences counts what
// it found, Repaired what it fixed, Unrepaired what it could not.
//
// With Options.DryRun, Repair writes nothing (to either store) and reports
// the differences it would fix: the plan. Errors are as for Verify.
func Repair(ctx context.Context, primary Primary, store kv.Store, opts *Options) (*Report, error) {
	if opts != nil && opts.DryRun {
		return run(ctx, primary, store, opts, jobRepairDryRun)
	}
	return run(ctx, primary, store, opts, jobRepair)
}

// Recover restores the primary from the KV: it scans the copies under the
// prefix and puts back, exactly as its copy holds it (Primary.Recover: its
// own id, revision, timestamps and deletion marks), every document the
// primary lacks, or with Options.OverwriteOlder holds at a lower revision.
// A document the primary remembers hard-deleting at the copy's revision or
// later (Primary.GraveRevisions) is never brought back, nor is one whose
// copy the KV deleted (a tombstone, which the scan does not see);
// soft-deleted documents come back soft-deleted. Report.KVScanned counts
// the copies read, Differences the documents to recover (Lost, Behind)
// and the copies that cannot be decoded (Unreadable), Repaired the
// documents recovered, SkippedPresent and SkippedGrave the copies left
// alone. It writes nothing to the KV.
//
// With Options.DryRun it writes nothing and reports what it would
// recover. A checkpoint needs a KV backend that scans in key order
// (kv.Capabilities.OrderedScan). Errors are as for Verify.
func Recover(ctx context.Context, primary Primary, store kv.Store, opts *Options) (*Report, error) {
	if opts != nil && opts.DryRun {
		return run(ctx, primary, store, opts, jobRecoverDryRun)
	}
	return run(ctx, primary, store, opts, jobRecover)
}

// Run runs the job named name, "sync", "verify", "repair" or "recover"
// (Report.Job), as Sync, Verify, Repair or Recover does; another name is
// an error.
func Run(ctx context.Context, name string, primary Primary, store kv.Store, opts *Options) (*Report, error) {
	switch name {
	case jobRecover.name:
		return Recover(ctx, primary, store, opts)
	case jobSync.name:
		return Sync(ctx, primary, store, opts)
	case jobVerify.name:
		return Verify(ctx, primary, store, opts)
	case jobRepair.name:
		return Repair(ctx, primary, store, opts)
	}
	return nil, fmt.Errorf("reconcile: unknown job %q: want sync, verify, repair or recover", name)
}

// jobKind says what a job does.
type jobKind struct {
	name    string
	compare bool // read the KV and report differences (verify, repair)
	fix     bool // write fixes (repair)
	write   bool // write every document (sync)
	recover bool // put KV copies back into the primary (recover)
	dryRun  bool
}

var (
	jobVerify        = jobKind{name: "verify", compare: true}
	jobSync          = jobKind{name: "sync", write: true}
	jobRepair        = jobKind{name: "repair", compare: true, fix: true}
	jobRepairDryRun  = jobKind{name: "repair", compare: true, dryRun: true}
	jobRecover       = jobKind{name: "recover", recover: true}
	jobRecoverDryRun = jobKind{name: "recover", recover: true, dryRun: true}
)

// job is one run of a job. Its methods run on one goroutine at a time,
// though not always the caller's (the KV pass runs in Scan's callback).
type job struct {
	jobKind
	primary Primary
	kv      kv.Store
	keys    memcell.Keys
	log     *slog.Logger
	metrics *metrics
	limit   *limiter
	batch   int
	onProg  func(Progress)

	overwriteOlder bool // recover: replace older primary documents
	recoverBatch   int  // recover: copies per primary lookup

	report       *Report
	started      time.Time // this run's start
	total        int64
	phase        string
	lastProgress time.Time

	ckptPath string
	ckpt     *checkpoint // nil without Options.Checkpoint

	// copies fingerprints the ids whose KV copy the primary pass saw or
	// wrote; copiesOK is false once it is known not to be all of them.
	copies   keySet
	copiesOK bool

	// maxDelete bounds the extras a repair deletes; extras counts those
	// the KV pass found, and held keeps them, for a repair, until the pass
	// has scanned every key (see kvPass). deletable is how many more the
	// run may delete.
	maxDelete MaxDelete
	extras    int64
	held      extraSet
	deletable int64
	maxHeld   int // maxHeld but in tests

	// suspects are the ids of the primary pass whose copies differed,
	// waiting for their second look (see maxSuspects) since suspectsSince.
	// ckptLag is checkpointLag but in tests.
	suspects      []memcell.ID
	suspectsSince time.Time
	ckptLag       time.Duration
}

func run(ctx context.Context, primary Primary, store kv.Store, opts *Options, kind jobKind) (*Report, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.DryRun && kind.name != jobRepair.name && !kind.recover {
		return nil, fmt.Errorf("reconcile: DryRun applies to Repair and Recover only, not to %s", kind.name)
	}
	if o.OverwriteOlder && !kind.recover {
		return nil, fmt.Errorf("reconcile: OverwriteOlder applies to Recover only, not to %s", kind.name)
	}
	if primary == nil || store == nil {
		return nil, errors.New("reconcile: a primary and a KV store are required")
	}
	if o.Checkpoint != "" {
		if err := checkCheckpointPath(o.Checkpoint); err != nil {
			return nil, err
		}
		if kind.recover && !store.Capabilities().OrderedScan {
			return nil, fmt.Errorf("reconcile: recover: a checkpoint needs a KV backend that scans in key order, and %s does not", store.Capabilities().Backend)
		}
	}
	var err error
	j := &job{
		jobKind: kind,
		primary: primary,
		kv:      store,
		keys:    memcell.KeysWithPrefix(o.KeyPrefix),
		log:     o.Logger,
		limit:   newLimiter(o.Rate),
		batch:   o.BatchSize,
		onProg:  o.Progress,
		started: time.Now(),
		phase:   phasePrimary,
		copies:  newKeySet(maphash.MakeSeed()),
		ckptLag: checkpointLag,

		overwriteOlder: o.OverwriteOlder,
	}
	if kind.recover {
		j.phase = phaseKV
		j.recoverBatch = recoverBatch
		if o.recoverBatch > 0 {
			j.recoverBatch = o.recoverBatch
		}
	}
	if o.checkpointLag > 0 {
		j.ckptLag = o.checkpointLag
	}
	j.maxHeld = cmp.Or(o.maxHeld, maxHeld)
	if j.log == nil {
		j.log = slog.New(slog.DiscardHandler)
	}
	if j.maxDelete, err = ParseMaxDelete(o.MaxDelete); err != nil {
		return nil, err
	}
	if j.batch == 0 {
		j.batch = DefaultBatchSize
	}
	if j.metrics, err = newMetrics(o.Registerer, kind.name); err != nil {
		return nil, fmt.Errorf("reconcile: metrics: %w", err)
	}
	j.report = &Report{Job: kind.name, DryRun: kind.dryRun, Started: j.started.UTC(), Differences: map[Kind]int64{}, Samples: []Diff{}}
	if o.Checkpoint != "" {
		if err := j.openCheckpoint(o.Checkpoint); err != nil {
			j.report.Finished = time.Now().UTC()
			return j.report, fmt.Errorf("reconcile: %s: %w", kind.name, err)
		}
	}
	err = j.run(ctx)
	j.report.Finished = time.Now().UTC()
	j.progress(true)
	elapsed := time.Since(j.started)
	attrs := []any{"job", j.name, "dry_run", j.dryRun, "scanned", j.report.Scanned, "kv_scanned", j.report.KVScanned,
		"differences", j.report.DifferenceCount(), "repaired", j.report.Repaired, "unrepaired", j.report.Unrepaired,
		"revisions_lowered", j.report.RevisionsLowered,
		"skipped_present", j.report.SkippedPresent, "skipped_grave", j.report.SkippedGrave,
		"elapsed", elapsed.Round(time.Millisecond)}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			j.log.WarnContext(ctx, "reconcile: job interrupted", append(attrs, "error", cerr)...)
			return j.report, cerr
		}
		j.log.ErrorContext(ctx, "reconcile: job failed", append(attrs, "error", err)...)
		return j.report, fmt.Errorf("reconcile: %s: %w", j.name, err)
	}
	if j.ckpt != nil {
		if err := os.Remove(j.ckptPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			j.log.WarnContext(ctx, "reconcile: could not remove the checkpoint of a finished job", "checkpoint", j.ckptPath, "error", err)
		}
	}
	j.log.InfoContext(ctx, "reconcile: job finished", attrs...)
	return j.report, nil
}

func (j *job) run(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if j.recover {
		j.log.InfoContext(ctx, "reconcile: job started", "job", j.name, "dry_run", j.dryRun,
			"kv_backend", j.kv.Capabilities().Backend, "key_prefix", j.keys.Prefix,
			"overwrite_older", j.overwriteOlder, "resumed", j.report.Resumed)
		return j.recoverPass(ctx)
	}
	if j.onProg != nil { // the estimate serves only the progress reports
		if n, err := j.primary.EstimatedCount(ctx); err == nil {
			j.total = n
		}
	}
	j.log.InfoContext(ctx, "reconcile: job started", "job", j.name, "dry_run", j.dryRun,
		"kv_backend", j.kv.Capabilities().Backend, "key_prefix", j.keys.Prefix,
		"estimated_documents", j.total, "resumed", j.report.Resumed, "phase", j.phase)
	if j.phase == phasePrimary {
		// A resumed primary pass sees only part of the documents.
		j.copiesOK = j.ckpt == nil || j.ckpt.LastID == ""
		if err := j.primaryPass(ctx); err != nil {
			return err
		}
		if !j.compare {
			return nil
		}
		// The primary pass's final count, reported before the KV pass
		// starts: a pass shorter than progressEvery is reported too, so
		// each pass has its line.
		j.progress(true)
		j.phase = phaseKV
		if err := j.saveCheckpoint(""); err != nil {
			return err
		}
	}
	err := j.kvPass(ctx)
	if _, refused := errors.AsType[*DeleteRefusedError](err); err != nil && !refused {
		return err
	}
	// A refused delete leaves the copies; the pending records of ids that
	// have neither a document nor a copy are done with all the same.
	return cmp.Or(j.clearGone(ctx), err)
}

// openCheckpoint loads the checkpoint at path, if there is one, and
// continues from it.
func (j *job) openCheckpoint(path string) error {
	want := &checkpoint{
		Version:   checkpointVersion,
		Job:       j.name,
		DryRun:    j.dryRun,
		Namespace: j.primary.Namespace(),
		Backend:   j.kv.Capabilities().Backend,
		KeyPrefix: j.keys.Prefix,
		Phase:     phasePrimary,
		Started:   j.report.Started,
	}
	j.ckptPath, j.ckpt = path, want
	got, err := loadCheckpoint(path)
	if err != nil || got == nil {
		return err
	}
	if err := got.matches(path, want); err != nil {
		return err
	}
	if got.LastID != "" {
		if _, err := memcell.ParseID(got.LastID); err != nil {
			return fmt.Errorf("checkpoint %s: last_id %q: %w (remove it to start over)", path, got.LastID, err)
		}
	}
	j.ckpt = got
	j.phase = got.Phase
	r := j.report
	r.Resumed = true
	r.Started = got.Started
	r.Scanned, r.Repaired, r.Unrepaired = got.Scanned, got.Repaired, got.Unrepaired
	r.RevisionsLowered = got.RevisionsLowered
	r.KVScanned = got.KVScanned
	r.SkippedPresent, r.SkippedGrave = got.SkippedPresent, got.SkippedGrave
	for k, n := range got.Differences {
		r.Differences[k] = n
	}
	if got.Samples != nil {
		r.Samples = got.Samples
	}
	return nil
}

// saveCheckpoint records that everything up to lastID ("" keeps the last
// one) is done.
func (j *job) saveCheckpoint(lastID string) error {
	c := j.ckpt
	if c == nil {
		return nil
	}
	r := j.report
	c.Phase = j.phase
	if lastID != "" {
		c.LastID = lastID
	}
	c.Scanned, c.Repaired, c.Unrepaired = r.Scanned, r.Repaired, r.Unrepaired
	c.RevisionsLowered = r.RevisionsLowered
	c.KVScanned = r.KVScanned
	c.SkippedPresent, c.SkippedGrave = r.SkippedPresent, r.SkippedGrave
	c.Differences, c.Samples = r.Differences, r.Samples
	return c.save(j.ckptPath)
}

// found records a difference: counted, logged, and kept as a sample while
// there is room.
func (j *job) found(ctx context.Context, d Diff) {
	j.report.Differences[d.Kind]++
	j.metrics.differences.WithLabelValues(string(d.Kind)).Inc()
	sample := len(j.report.Samples) < MaxSamples
	if sample {
		j.report.Samples = append(j.report.Samples, d)
	}
	switch {
	case !sample:
		j.log.DebugContext(ctx, "reconcile: difference", "job", j.name, "kind", d.Kind, "event_id", d.EventID, "key", d.Key)
	case d.Kind == Differs || d.Kind == Stale:
		memcell.LogInconsistency(ctx, j.log.With("job", j.name, "kind", d.Kind, "key", d.Key), d.EventID, d.Fields)
	default:
		j.log.WarnContext(ctx, "reconcile: difference", "job", j.name, "kind", d.Kind, "event_id", d.EventID, "key", d.Key, "error", d.Error)
	}
}

func (j *job) scanned() {
	j.report.Scanned++
	j.metrics.scanned.Inc()
}

func (j *job) repaired(n int) {
	j.report.Repaired += int64(n)
	j.metrics.repaired.Add(float64(n))
}

// progressEvery is the least time between two calls of Options.Progress.
const progressEvery = time.Second

// progress calls Options.Progress if a second has passed since the last
// call, or if final.
func (j *job) progress(final bool) {
	if j.onProg == nil {
		return
	}
	now := time.Now()
	if !final {
		if j.lastProgress.IsZero() {
			j.lastProgress = j.started
		}
		if now.Sub(j.lastProgress) < progressEvery {
			return
		}
	}
	j.lastProgress = now
	r := j.report
	j.onProg(Progress{
		Job: j.name, Phase: j.phase,
		Scanned: r.Scanned, KVScanned: r.KVScanned, Differences: r.DifferenceCount(), Repaired: r.Repaired,
		Total: j.total, Elapsed: now.Sub(j.started),
	})
}
