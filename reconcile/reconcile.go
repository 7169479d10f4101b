// Package reconcile compares the MongoDB primary with its key-value mirror
// and brings the mirror back in line with it: Sync (backfill), Verify and
// Repair, the jobs behind `memcell kv sync|verify|repair`; and Recover
// (`memcell kv recover`) restores the primary from the mirror, putting back
// the documents it lost (see Recover).
//
// The primary is the truth (docs/architecture.md#invariants). A job reads the
// primary through one streaming cursor over the whole collection,
// soft-deleted documents included since the mirror holds them too, and
// handles the documents in batches of Options.BatchSize: one kv.BatchGet per
// batch, the canonical encodings compared byte for byte, memcell.Compare only
// where the bytes differ. Verify and Repair then scan the KV prefix for keys
// the primary does not account for: they look the ids up in the primary,
// 10,000 per query, unless the scanned keys turn out to be exactly the copies
// the primary pass saw (see keySet), which spares FerretDB a read of the
// whole collection. Nothing is kept per document: memory is bounded by the
// batch sizes, whatever the size of the collection (target P6,
// docs/benchmarks.md), but for the ids of the extras a repair holds, up to
// 100,000 (1.2 MB).
//
// Jobs may run beside live traffic. A document whose copy differs is read
// again, primary first and KV second, before it is reported, so a write
// caught between its primary and its KV step is not reported; the
// differing documents are set aside and read again together, because
// FerretDB answers any lookup of a list of ids by reading the whole
// collection. Every KV write a job makes is guarded by the document's
// revision (kv.Entry.Rev), so it never replaces a newer copy that live
// traffic wrote meanwhile. A copy of a document the primary does not have
// is looked up in the primary again just before it is deleted, and the
// delete leaves a tombstone like any other.
//
// A repair deletes extras only once its KV pass has scanned every key, and
// only when they are within Options.MaxDelete of them (5% by default): a
// primary emptied by accident makes every KV copy an extra, and those copies
// are then the only ones left. Over the bound it deletes none and fails with
// a *DeleteRefusedError; its other fixes stand. Up to 100,000 extras are
// held until the scan ends; when there are more, a second scan of the KV
// prefix deletes them.
//
// Sync writes each batch as soon as it is read, and reads a batch again
// before writing it when it was read more than a second earlier (a rate
// limit, a slow store): a document hard-deleted meanwhile is not written
// back once the delete's tombstone has expired, however slowly the job
// runs.
//
// A copy whose revision is higher than the primary's document cannot be
// replaced by a guarded write. Repair replaces it only after reading the
// primary again (its revision is still lower) and the KV again, with a
// compare-and-swap of the exact bytes it read (kv.Store.Swap), so that a
// live write landing meanwhile wins; it then reads the primary once more
// and writes, guarded, a state that moved on meanwhile (whose own guarded
// put the copy may have refused just before the swap).
//
// Verify writes to neither store. Sync writes only KV copies. Repair writes
// KV copies, deletes extras, and clears the primary's pending record
// (memcell.Primary.RecordPending) of the documents it leaves consistent and
// of the ids that have neither a document nor a copy any more. Recover
// writes only primary documents (Primary.Recover), never the KV.
package reconcile

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/memcell/memcell"
)

// Primary is what a job reads from the primary, beside the Ping and
// RecordPending every memcell.Primary has: streaming reads of the whole
// collection, soft-deleted documents included, and lookups of id lists.
// *mongostore.Store implements it.
type Primary interface {
	// Scan streams every document, live and soft-deleted, batch per round
	// trip; ordered (or a non-zero after) reads in _id order after that id.
	// A stored document that is not a valid MemCell is yielded as a nil
	// document with a *memcell.UnreadableError and the scan goes on; an
	// error that ends it is yielded last.
	Scan(ctx context.Context, ordered bool, after memcell.ID, batch int) iter.Seq2[*memcell.MemCell, error]
	// Stream streams the documents of ids as Scan does; ids without a
	// document are not yielded.
	Stream(ctx context.Context, ids []memcell.ID, batch int) iter.Seq2[*memcell.MemCell, error]
	// LookupMany returns the documents of ids, live or soft-deleted.
	LookupMany(ctx context.Context, ids []memcell.ID) (map[memcell.ID]*memcell.MemCell, error)
	// Existing reports which of ids have a document.
	Existing(ctx context.Context, ids []memcell.ID) (map[memcell.ID]bool, error)
	// Pending returns the ids of the pending records (memcell.Primary's
	// record of writes the KV missed).
	Pending(ctx context.Context) ([]memcell.ID, error)
	// PendingBefore returns the ids of the pending records made before t.
	PendingBefore(ctx context.Context, t time.Time) ([]memcell.ID, error)
	// PendingStats returns how many ids the pending record lists and when
	// the oldest was recorded (zero when none).
	PendingStats(ctx context.Context) (int64, time.Time, error)
	// ClearPendingBefore removes the pending records of ids written
	// before t.
	ClearPendingBefore(ctx context.Context, ids []memcell.ID, t time.Time) error
	// Intents returns the ids of the documents carrying a write intent
	// (memcell.MemCell.Intent) stamped before t; ClearIntents removes
	// intents whose KV writes are done.
	Intents(ctx context.Context, before time.Time) ([]memcell.ID, error)
	ClearIntents(ctx context.Context, intents []memcell.Intent) error
	// GraveRevisions returns the revisions that hard-deleted documents
	// among ids had when they were removed, for the ids it remembers.
	GraveRevisions(ctx context.Context, ids []memcell.ID) (map[memcell.ID]int64, error)
	// Recover puts a document back exactly as its KV copy holds it (its
	// own id, revision, timestamps and deletion marks; no new revision,
	// no write intent): without replace, only where the primary has no
	// document with its id; with replace, only over one at a lower
	// revision, never where the document is gone (deleted since it was
	// found older). It never brings back a document hard-deleted at the
	// copy's revision or later, and reports whether it wrote.
	Recover(ctx context.Context, m *memcell.MemCell, replace bool) (bool, error)
	// EstimatedCount is a cheap estimate of the number of documents.
	EstimatedCount(ctx context.Context) (int64, error)
	// Namespace names the collection, "database.collection"; checkpoints
	// record it.
	Namespace() string
}

// Kind is a kind of difference between the primary and the mirror.
type Kind string

// The kinds of difference. Stale is a Differs whose copy carries an older
// revision than the primary's document: the mirror missed writes (a KV
// outage, a killed process). They are told apart because they have
// different causes; Differs with an equal revision means the copy was
// changed behind the mirror's back, or the primary was (written by another
// program, which does not bump the revision), and with a higher copy
// revision that the primary went back in time (restored from a backup).
const (
	// Missing: the primary has the document, the KV has no copy.
	Missing Kind = "missing"
	// Extra: the KV has a key under the prefix that no primary document
	// accounts for: a copy of a document the primary does not have, or a
	// key that is not a valid event id at all.
	Extra Kind = "extra"
	// Differs: both have it and the copies hold different data (equal bytes
	// or equal values per memcell.Compare are not a difference).
	Differs Kind = "differs"
	// Stale: a Differs whose copy has a lower revision than the primary's.
	Stale Kind = "stale"
	// Unreadable: the primary holds a document that is not a valid MemCell
	// (wrong field types, an _id that is not an ObjectId), so it has no
	// canonical encoding and cannot be mirrored. Repair cannot fix it; fix
	// the document in MongoDB. For recover: a KV copy that cannot be
	// decoded, or a key that is not an event id, so it cannot be put back.
	Unreadable Kind = "unreadable"
	// Lost (recover): the KV holds a copy of a document the primary does
	// not have and does not remember hard-deleting; recover puts it back.
	Lost Kind = "lost"
	// Behind (recover with OverwriteOlder): the primary holds the document
	// at a lower revision than its KV copy; recover replaces it.
	Behind Kind = "behind"
)

// kinds lists every Kind, for metrics.
var kinds = [...]Kind{Missing, Extra, Differs, Stale, Unreadable, Lost, Behind}

// Diff is one document that differs between the primary and the KV.
type Diff struct {
	// EventID is the document's id; for an Extra key that is not a valid
	// id, the part of the key after the prefix; for an Unreadable document
	// whose _id is not an ObjectId, that _id as text.
	EventID string `json:"event_id"`
	// Key is the KV key.
	Key  string `json:"key"`
	Kind Kind   `json:"kind"`
	// Fields are the field-level differences of Differs and Stale.
	Fields []memcell.Difference `json:"fields,omitempty"`
	// Error says why an Unreadable document could not be read.
	Error string `json:"error,omitempty"`
}

// MaxSamples is how many differences a Report lists.
const MaxSamples = 100

// Report is the outcome of a job, and what `--report FILE` writes as JSON.
type Report struct {
	// Job is "sync", "verify", "repair" or "recover".
	Job string `json:"job"`
	// DryRun is set for a repair or a recover that wrote nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Started is when the job started; for a resumed job, when its first
	// run started.
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Scanned counts the primary documents read, KVScanned the KV keys
	// read looking for extras (verify and repair).
	Scanned   int64 `json:"scanned"`
	KVScanned int64 `json:"kv_scanned"`
	// Differences counts the differences found, by kind (for a repair,
	// before it fixed them; a sync finds only Unreadable documents).
	Differences map[Kind]int64 `json:"differences"`
	// Repaired counts the KV copies written (sync, repair) or deleted
	// (repair), and the documents a recover put back in the primary. Unrepaired counts differences a repair could not fix:
	// unreadable documents, and copies the KV refused to replace that live
	// traffic did not explain: a tombstone (a document deleted in the KV
	// within its grace period), a copy that is not JSON but holds a higher
	// revision in the KV, or a copy that kept changing while the repair
	// tried to replace it.
	Repaired   int64 `json:"repaired"`
	Unrepaired int64 `json:"unrepaired"`
	// RevisionsLowered counts the copies, included in Repaired, whose
	// revision was ahead of the primary's document (its revision went
	// down: restored from a backup, replaced by another program) and which
	// a repair replaced with the primary's document at the primary's
	// revision (kv.Store.Swap). In a dry run it counts the copies a repair
	// would replace so.
	RevisionsLowered int64 `json:"revisions_lowered"`
	// SkippedPresent counts the KV copies a recover left alone because the
	// primary has the document (at the copy's revision or above, with
	// OverwriteOlder), including those written there while it ran;
	// SkippedGrave those of documents the primary remembers hard-deleting
	// at the copy's revision or later. Other jobs leave them 0.
	SkippedPresent int64 `json:"skipped_present"`
	SkippedGrave   int64 `json:"skipped_grave"`
	// Samples are the first MaxSamples differences.
	Samples []Diff `json:"samples"`
	// Resumed is set when the job continued from a checkpoint.
	Resumed bool `json:"resumed"`
	// Refused is set when a repair found more extras than
	// Options.MaxDelete lets it delete, and so deleted none (a dry run: a
	// repair would refuse): it says how many, out of how many KV keys,
	// and what to do. The extras are counted in Differences all the same.
	Refused string `json:"refused,omitempty"`
}

// DifferenceCount is the number of differences of every kind.
func (r *Report) DifferenceCount() int64 {
	var n int64
	for _, c := range r.Differences {
		n += c
	}
	return n
}

// Progress is a job's state, reported through Options.Progress.
type Progress struct {
	Job string
	// Phase is "primary" while the primary is read, "kv" while the KV
	// prefix is scanned for extras (verify and repair) or copies to
	// recover (recover's one phase).
	Phase string
	// Scanned and KVScanned are as in Report, Differences is their total
	// count so far, Repaired as in Report.
	Scanned, KVScanned, Differences, Repaired int64
	// Total is the estimated number of primary documents
	// (Primary.EstimatedCount, asked only when Options.Progress is
	// set); 0 if unknown. The KV phase visits about as many keys.
	Total   int64
	Elapsed time.Duration
}

// Options configure a job. Nil means defaults.
type Options struct {
	// KeyPrefix goes before the event id in KV keys; nil means
	// memcell.DefaultKeyPrefix. It must be the prefix the mirror writes.
	// Every key under it belongs to the mirror: Repair deletes those that
	// are not the key of a primary document, so with "" it deletes every
	// other key of the store.
	KeyPrefix *string
	// Logger receives the job's start and end lines and one line per
	// difference (the first MaxSamples at WARN or, for copies that differ,
	// as memcell.LogInconsistency's ERROR line; the rest at DEBUG); nil
	// discards them.
	Logger *slog.Logger
	// Registerer receives the job metrics
	// memcell_job_documents_scanned_total{job},
	// memcell_job_differences_total{job,kind} and
	// memcell_job_repaired_total{job}. Jobs run one after the other may
	// share it. Nil registers nothing.
	Registerer prometheus.Registerer
	// Rate bounds the documents read per second: primary documents in the
	// primary pass, KV keys in the KV pass. 0 means unlimited.
	Rate float64
	// BatchSize is the number of documents per KV batch and per cursor
	// batch of the primary; 0 means DefaultBatchSize.
	BatchSize int
	// Progress, if set, is called about once a second while the job runs
	// and once when it ends (successfully or not), one call at a time but
	// not always on the caller's goroutine. It must not block for long.
	Progress func(Progress)
	// Checkpoint is the path of a checkpoint file, "" for none. With one,
	// the primary is read in _id order and after every batch the job
	// writes the last _id it finished and its counts to the file
	// (atomically: a temporary file renamed over it). A job that finds the
	// file resumes after that _id, with those counts; the KV pass, which
	// cannot be resumed, runs whole. Recover, whose one pass is the KV
	// scan, records the id of the last copy of each lookup batch (10,000
	// copies) and resumes after it; it needs a KV backend that scans in
	// key order. The file is removed when the job
	// succeeds. A checkpoint made by another kind of job, or for another
	// collection, KV backend or prefix, is an error. Verify writes the file
	// too: it is the job's own state, not either store.
	//
	// The file moves on only while no differing document waits for its
	// second look (see the package documentation), so it may lag the job
	// by a few seconds.
	// Sorting by _id costs FerretDB a read of the whole collection into its
	// memory before the first document; MongoDB reads the _id index.
	Checkpoint string

	// DryRun makes Repair (or Recover) write nothing, to either store, and
	// report the differences it would fix (the documents it would put
	// back): the plan. Only Repair and Recover accept it.
	DryRun bool

	// OverwriteOlder makes Recover also replace primary documents whose
	// revision is lower than their KV copy's (guarded: a document written
	// meanwhile at the copy's revision or above stays). Only Recover
	// accepts it.
	OverwriteOlder bool

	// MaxDelete bounds the KV keys a Repair deletes as extras in one run,
	// as ParseMaxDelete reads it: "5%" of the keys its KV pass scans, a
	// number of keys ("1000"), or "all"; "" means DefaultMaxDelete. Extras
	// are deleted only once the KV pass has scanned every key: when they
	// are more than the bound, the repair deletes none of them and fails
	// with a *DeleteRefusedError (its other fixes stand; a dry run sets
	// Report.Refused instead). A primary that lost its documents by
	// accident makes every KV copy an extra, and the copies are then the
	// only ones left. Sync and Verify delete nothing and ignore it.
	MaxDelete string

	checkpointLag time.Duration // 0: checkpointLag; set by tests
	recoverBatch  int           // 0: recoverBatch; set by tests
	maxHeld       int           // 0: maxHeld; set by tests
}

// DefaultBatchSize is the default Options.BatchSize.
const DefaultBatchSize = 500

// maxBatchSize bounds Options.BatchSize: a batch's documents are in memory
// at once.
const maxBatchSize = 100_000

func (o *Options) check() error {
	switch {
	case o.BatchSize < 0 || o.BatchSize > maxBatchSize:
		return fmt.Errorf("reconcile: BatchSize must be between 0 and %d, got %d", maxBatchSize, o.BatchSize)
	case o.Rate < 0 || math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0):
		return fmt.Errorf("reconcile: Rate must be a non-negative number of documents per second, got %v", o.Rate)
	}
	_, err := ParseMaxDelete(o.MaxDelete)
	return err
}
