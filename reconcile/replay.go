package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
)

// Every write leaves a durable trace in the primary until its KV write is
// done: the write intent on the document (memcell.MemCell.Intent), the
// pending note of a hard delete, and the pending record of a KV write that
// failed or was skipped (memcell.Primary.RecordPending). Replay redoes what
// those traces name: it writes each document's current state to the KV, or
// deletes the copy of a document the primary no longer has, makes the KV
// durable, and clears the traces. A Replayer does it at start and over and
// over in the background, so that the mirror catches up by itself after a
// crash or a KV outage, without a full scan.

// ReplayResult is what one Replay pass did.
type ReplayResult struct {
	// Pending is how many ids the pass found to replay: the pending record
	// and, when it looked, the documents carrying write intents.
	Pending int `json:"pending"`
	// Intents is how many of them were found by their write intents.
	Intents int `json:"intents"`
	// Written counts the copies stored; Deleted the copies removed of
	// documents the primary no longer has. Copies the KV refused because
	// it already held a newer revision or a tombstone count in neither:
	// the KV was already right.
	Written int `json:"written"`
	Deleted int `json:"deleted"`
	// Unreadable counts documents that are not valid MemCells: they stay
	// in the record, for a repair to report.
	Unreadable int `json:"unreadable"`
}

// Replay drains the primary's pending record and every write intent once;
// see ReplayIntents.
func Replay(ctx context.Context, primary Primary, store kv.Store, opts *Options) (ReplayResult, error) {
	now := time.Now()
	return ReplayIntents(ctx, primary, store, opts, now, now)
}

// ReplayIntents drains the primary's pending records made before
// notesBefore and the write intents stamped before intentsBefore (none
// when it is the zero time) once, batch by batch (Options.BatchSize ids, one LookupMany and one guarded KV batch
// each). Every write is guarded by the document's revision, and the copies
// of documents the primary no longer has are deleted with kv.MaxRev, so it
// is safe beside live traffic and other replayers. The traces it clears
// are those it has redone: pending records written before the pass began,
// and the intent marks it read with the documents (a later write's mark
// stays), once the KV has made the writes durable (kv.Sync). Only
// Options.KeyPrefix, Logger and BatchSize apply. On error the result
// counts what was done and the traces not done stay.
//
// Younger records belong to writes still under way in a live process,
// which clears them itself: a hard delete notes its id before it deletes,
// and a replay that met the note of a delete that had not removed anything
// yet (or would find nothing) could not tell it from one whose process
// died between the removal and its grave, and would delete the copy at
// kv.MaxRev.
func ReplayIntents(ctx context.Context, primary Primary, store kv.Store, opts *Options, notesBefore, intentsBefore time.Time) (ReplayResult, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.check(); err != nil {
		return ReplayResult{}, err
	}
	if primary == nil || store == nil {
		return ReplayResult{}, errors.New("reconcile: a primary and a KV store are required")
	}
	keys := memcell.KeysWithPrefix(o.KeyPrefix)
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	batch := o.BatchSize
	if batch == 0 {
		batch = DefaultBatchSize
	}
	start := notesBefore
	ids, err := primary.PendingBefore(ctx, notesBefore)
	if err != nil {
		return ReplayResult{}, fmt.Errorf("reconcile: replay: pending record: %w", err)
	}
	res := ReplayResult{}
	if !intentsBefore.IsZero() {
		marked, err := primary.Intents(ctx, intentsBefore)
		if err != nil {
			return ReplayResult{}, fmt.Errorf("reconcile: replay: write intents: %w", err)
		}
		seen := make(map[memcell.ID]bool, len(ids))
		for _, id := range ids {
			seen[id] = true
		}
		for _, id := range marked {
			if !seen[id] {
				ids = append(ids, id)
				res.Intents++
			}
		}
	}
	res.Pending = len(ids)
	// The documents are looked up existsBatch ids at a time: FerretDB
	// answers each lookup by reading the whole collection.
	for lookup := range slices.Chunk(ids, existsBatch) {
		docs, err := primary.LookupMany(ctx, lookup)
		if err != nil {
			return res, fmt.Errorf("reconcile: replay: primary: %w", err)
		}
		var gone []memcell.ID
		for _, id := range lookup {
			if docs[id] == nil {
				gone = append(gone, id)
			}
		}
		graves := map[memcell.ID]int64{}
		if len(gone) > 0 {
			if graves, err = primary.GraveRevisions(ctx, gone); err != nil {
				return res, fmt.Errorf("reconcile: replay: primary: %w", err)
			}
		}
		for chunk := range slices.Chunk(lookup, batch) {
			if err := replayBatch(ctx, primary, store, keys, log, chunk, docs, graves, start, &res); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// replayBatch writes (or deletes) the copies of ids, as docs holds them,
// makes them durable, and clears their records made before start (the
// notes bound) and the intents the documents carried. The copy of a document the primary no
// longer has is deleted at the revision its grave remembers, so that a
// document made again under the id (whose revisions start above it) keeps
// its copy and its later writes; without a grave it can trust (a delete by
// another program; a grave older than the id's note, which a crash
// between the removal and the grave leaves) at the copy's own revision,
// and not at all when there is no copy.
func replayBatch(ctx context.Context, primary Primary, store kv.Store, keys memcell.Keys, log *slog.Logger,
	ids []memcell.ID, docs map[memcell.ID]*memcell.MemCell, graves map[memcell.ID]int64, start time.Time, res *ReplayResult) error {
	var (
		entries []kv.Entry
		gone    []kv.Deletion
		done    []memcell.ID
		intents []memcell.Intent
	)
	var unsure []string
	for _, id := range ids {
		m, ok := docs[id]
		if !ok {
			if g, ok := graves[id]; ok {
				gone = append(gone, kv.Deletion{Key: keys.Key(id), Rev: uint64(g)})
			} else {
				unsure = append(unsure, keys.Key(id))
			}
			done = append(done, id)
			continue
		}
		v, err := memcell.Encode(m)
		if err != nil {
			res.Unreadable++
			log.WarnContext(ctx, "reconcile: replay: the document cannot be mirrored", "event_id", id.String(), "error", err)
			continue
		}
		entries = append(entries, kv.Entry{Key: keys.Key(id), Value: v, Rev: uint64(m.Revision)})
		done = append(done, id)
		if !m.Intent.IsZero() {
			intents = append(intents, memcell.Intent{ID: id, Mark: m.Intent})
		}
	}
	if len(unsure) > 0 {
		// No grave to trust: delete the copy at its own revision, if there
		// is one. No tombstone is needed where there is no copy, and one
		// at kv.MaxRev would refuse a re-creation of the id.
		copies, err := store.BatchGet(ctx, unsure)
		if err != nil {
			return fmt.Errorf("reconcile: replay: kv batch get: %w", err)
		}
		for _, key := range unsure {
			if v, ok := copies[key]; ok {
				gone = append(gone, kv.Deletion{Key: key, Rev: copyRevision(v)})
			}
		}
	}
	if len(entries) > 0 {
		n, err := store.BatchPut(ctx, entries)
		if err != nil {
			return fmt.Errorf("reconcile: replay: kv batch put: %w", err)
		}
		res.Written += n
	}
	if len(gone) > 0 {
		n, err := store.BatchDelete(ctx, gone)
		if err != nil {
			return fmt.Errorf("reconcile: replay: kv batch delete: %w", err)
		}
		res.Deleted += n
	}
	if err := kv.Sync(ctx, store); err != nil {
		return fmt.Errorf("reconcile: replay: kv sync: %w", err)
	}
	if len(intents) > 0 {
		if err := primary.ClearIntents(ctx, intents); err != nil {
			return fmt.Errorf("reconcile: replay: clear intents: %w", err)
		}
	}
	if err := primary.ClearPendingBefore(ctx, done, start); err != nil {
		return fmt.Errorf("reconcile: replay: clear pending: %w", err)
	}
	return nil
}

// copyRevision is the revision a KV copy holds, kv.MaxRev when it cannot
// be read.
func copyRevision(v []byte) uint64 {
	m, err := memcell.Decode(v)
	if err != nil || m.Revision < 0 {
		return kv.MaxRev
	}
	return uint64(m.Revision)
}

// ReplayerOptions configure a Replayer. Nil means defaults.
type ReplayerOptions struct {
	// Options are those of each pass (KeyPrefix, Logger, BatchSize).
	Options
	// Interval is the time between the end of one pass and the start of
	// the next; 0 means DefaultReplayInterval. After a failed pass the
	// wait doubles, up to MaxReplayBackoff, until a pass succeeds.
	Interval time.Duration
	// IntentScanInterval is how often a pass also looks for write intents
	// older than it (left by a process that died, or by a KV write that
	// failed without a pending record); 0 means
	// DefaultIntentScanInterval. The first pass looks for every intent
	// stamped before it began. MongoDB answers from an index; FerretDB
	// reads the whole collection.
	IntentScanInterval time.Duration
	// NoteAge is how old a pending record must be for a pass after the
	// first to redo it; 0 means DefaultNoteAge. The first pass redoes
	// every record made before it began.
	NoteAge time.Duration
	// Paused, when set and returning true, skips passes: the mirror's
	// mirroring flag is off.
	Paused func() bool
}

// DefaultNoteAge is the default ReplayerOptions.NoteAge: far longer than a
// live write takes from its note to clearing it.
const DefaultNoteAge = 10 * time.Second

// DefaultIntentScanInterval is the default
// ReplayerOptions.IntentScanInterval.
const DefaultIntentScanInterval = time.Minute

// DefaultReplayInterval is the default ReplayerOptions.Interval.
const DefaultReplayInterval = 5 * time.Second

// MaxReplayBackoff bounds the wait after failed passes.
const MaxReplayBackoff = time.Minute

// ReplayState is a Replayer's state, for GET /v1/admin/pending and logs.
type ReplayState struct {
	// Passes counts the passes run, Failures the failed ones (a pass cut
	// short by its context ending is not one).
	Passes   int64 `json:"passes"`
	Failures int64 `json:"failures"`
	// Last is the result of the last pass; LastAt when it ended; LastError
	// its error, "" when it succeeded.
	Last      ReplayResult `json:"last"`
	LastAt    time.Time    `json:"last_at"`
	LastError string       `json:"last_error,omitempty"`
	// Written and Deleted are the totals since the start.
	Written int64 `json:"written"`
	Deleted int64 `json:"deleted"`
}

// Replayer runs Replay at start and then every interval until its context
// ends: the mirror's own catch-up after KV outages, without anyone running
// a repair. Several replicas may run one each: every write is guarded.
type Replayer struct {
	primary   Primary
	kv        kv.Store
	opts      Options
	interval  time.Duration
	scanEvery time.Duration
	noteAge   time.Duration
	paused    func() bool
	passMu    sync.Mutex // one pass at a time
	lastScan  time.Time  // when the last intent scan began; zero before the first
	log       *slog.Logger

	pending  prometheus.Gauge
	oldest   prometheus.Gauge
	replayed *prometheus.CounterVec

	mu    sync.Mutex
	state ReplayState
}

// NewReplayer returns a Replayer; Run starts it. Its metrics,
// memcell_pending_records (the ids the record listed when the last pass
// began: a backlog that stays above zero is one that does not drain),
// memcell_pending_oldest_age_seconds (after the last pass) and
// memcell_replayed_total{result="written"|"deleted"}, go to
// opts.Registerer.
func NewReplayer(primary Primary, store kv.Store, opts *ReplayerOptions) (*Replayer, error) {
	var o ReplayerOptions
	if opts != nil {
		o = *opts
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.Interval < 0 {
		return nil, fmt.Errorf("reconcile: replay interval must not be negative, got %v", o.Interval)
	}
	if o.Interval == 0 {
		o.Interval = DefaultReplayInterval
	}
	if o.IntentScanInterval < 0 {
		return nil, fmt.Errorf("reconcile: intent scan interval must not be negative, got %v", o.IntentScanInterval)
	}
	if o.IntentScanInterval == 0 {
		o.IntentScanInterval = DefaultIntentScanInterval
	}
	if o.NoteAge < 0 {
		return nil, fmt.Errorf("reconcile: note age must not be negative, got %v", o.NoteAge)
	}
	if o.NoteAge == 0 {
		o.NoteAge = DefaultNoteAge
	}
	r := &Replayer{primary: primary, kv: store, opts: o.Options, interval: o.Interval, log: o.Logger,
		scanEvery: o.IntentScanInterval, noteAge: o.NoteAge, paused: o.Paused,
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "memcell", Name: "pending_records",
			Help: "Documents listed in the primary's record of KV writes to redo when the replayer's last pass began.",
		}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "memcell", Name: "pending_oldest_age_seconds",
			Help: "Age of the oldest entry of the primary's record of KV writes to redo after the replayer's last pass; 0 when it is empty.",
		}),
		replayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "memcell", Name: "replayed_total",
			Help: "KV copies the replayer wrote (result=written) or deleted (result=deleted) from the pending record.",
		}, []string{"result"}),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{r.pending, r.oldest, r.replayed} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("reconcile: replayer metrics: %w", err)
			}
		}
	}
	r.replayed.WithLabelValues("written")
	r.replayed.WithLabelValues("deleted")
	r.opts.Registerer = nil // the job metrics are not the replayer's
	return r, nil
}

// Run replays until ctx ends, then returns ctx.Err().
func (r *Replayer) Run(ctx context.Context) error {
	wait := time.Duration(0)
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if err := r.Pass(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			wait = min(max(2*wait, r.interval), MaxReplayBackoff)
			continue
		}
		wait = r.interval
	}
}

// Pass runs one replay now and records its outcome. It redoes the pending
// records older than NoteAge (the first pass: all made before it), and the
// first pass, then one every IntentScanInterval, also the write intents
// stamped before it (the first) or more than IntentScanInterval before it:
// younger ones belong to writes whose own KV writes may still be under way.
// While Paused says so, Pass does nothing.
func (r *Replayer) Pass(ctx context.Context) error {
	if r.paused != nil && r.paused() {
		return nil
	}
	r.passMu.Lock()
	defer r.passMu.Unlock()
	now := time.Now()
	var before time.Time
	notes := now.Add(-r.noteAge)
	switch {
	case r.lastScan.IsZero():
		before, notes = now, now
	case now.Sub(r.lastScan) >= r.scanEvery:
		before = now.Add(-r.scanEvery)
	}
	res, err := ReplayIntents(ctx, r.primary, r.kv, &r.opts, notes, before)
	if err == nil && !before.IsZero() {
		r.lastScan = now
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.state
	s.Passes++
	s.Last, s.LastAt, s.LastError = res, time.Now().UTC(), ""
	s.Written += int64(res.Written)
	s.Deleted += int64(res.Deleted)
	r.replayed.WithLabelValues("written").Add(float64(res.Written))
	r.replayed.WithLabelValues("deleted").Add(float64(res.Deleted))
	if err == nil || res.Pending > 0 {
		r.pending.Set(float64(res.Pending))
	}
	if err != nil {
		if ctx.Err() != nil {
			// Cut short by its caller (a shutdown): not a failure, and the
			// next pass, in this process or the next, redoes the rest.
			return err
		}
		s.Failures++
		s.LastError = err.Error()
		r.log.WarnContext(ctx, "reconcile: replay failed; trying again later", "pending", res.Pending, "written", res.Written, "error", err)
		return err
	}
	if _, oldest, err := r.primary.PendingStats(ctx); err == nil {
		r.oldest.Set(age(oldest))
	}
	if res.Pending > 0 {
		r.log.InfoContext(ctx, "reconcile: replayed the pending record and write intents", "pending", res.Pending,
			"intents", res.Intents, "written", res.Written, "deleted", res.Deleted, "unreadable", res.Unreadable)
	}
	return nil
}

// State returns the replayer's state.
func (r *Replayer) State() ReplayState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// age is the seconds since t, 0 for the zero time.
func age(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return max(time.Since(t).Seconds(), 0)
}

// PendingStatus is the pending record now and the replayer's state: GET
// /v1/admin/pending.
type PendingStatus struct {
	// Count is how many ids the record lists; OldestAgeSeconds how long
	// ago the oldest was recorded (0 when none).
	Count            int64   `json:"count"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	// Replay is the replayer's state.
	Replay ReplayState `json:"replay"`
}

// Status reads the pending record's size and age from the primary now, and
// adds the replayer's state.
func (r *Replayer) Status(ctx context.Context) (PendingStatus, error) {
	n, oldest, err := r.primary.PendingStats(ctx)
	if err != nil {
		return PendingStatus{}, err
	}
	return PendingStatus{Count: n, OldestAgeSeconds: age(oldest), Replay: r.State()}, nil
}
