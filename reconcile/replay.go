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

// The primary keeps a record of the documents whose KV writes did not happen
// (memcell.Primary.RecordPending: a failed or timed-out KV write, a write
// made while mirroring was switched off). Replay drains that record: it
// writes each listed document's current state to the KV, or deletes the
// copy of a document the primary no longer has, and clears the record. A
// Replayer does it over and over in the background, so that the mirror
// catches up by itself once the KV is back, without a full scan.

// ReplayResult is what one Replay pass did.
type ReplayResult struct {
	// Pending is how many ids the record listed when the pass began.
	Pending int `json:"pending"`
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

// Replay drains the primary's pending record once, batch by batch
// (Options.BatchSize ids, one LookupMany and one guarded KV batch each).
// Every write is guarded by the document's revision, and the copies of
// documents the primary no longer has are deleted with kv.MaxRev, so
// Replay is safe beside live traffic and other replayers. Records written
// after the pass began stay, since they may stand for writes it did not
// see. Only Options.KeyPrefix, Logger and BatchSize apply. On error the
// result counts what was done and the records not done stay.
func Replay(ctx context.Context, primary Primary, store kv.Store, opts *Options) (ReplayResult, error) {
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
	start := time.Now()
	ids, err := primary.Pending(ctx)
	if err != nil {
		return ReplayResult{}, fmt.Errorf("reconcile: replay: pending record: %w", err)
	}
	res := ReplayResult{Pending: len(ids)}
	for chunk := range slices.Chunk(ids, batch) {
		docs, err := primary.LookupMany(ctx, chunk)
		if err != nil {
			return res, fmt.Errorf("reconcile: replay: primary: %w", err)
		}
		var (
			entries []kv.Entry
			gone    []kv.Deletion
			done    []memcell.ID
		)
		for _, id := range chunk {
			m, ok := docs[id]
			if !ok {
				gone = append(gone, kv.Deletion{Key: keys.Key(id), Rev: kv.MaxRev})
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
		}
		if len(entries) > 0 {
			n, err := store.BatchPut(ctx, entries)
			if err != nil {
				return res, fmt.Errorf("reconcile: replay: kv batch put: %w", err)
			}
			res.Written += n
		}
		if len(gone) > 0 {
			n, err := store.BatchDelete(ctx, gone)
			if err != nil {
				return res, fmt.Errorf("reconcile: replay: kv batch delete: %w", err)
			}
			res.Deleted += n
		}
		if err := primary.ClearPendingBefore(ctx, done, start); err != nil {
			return res, fmt.Errorf("reconcile: replay: clear pending: %w", err)
		}
	}
	return res, nil
}

// ReplayerOptions configure a Replayer. Nil means defaults.
type ReplayerOptions struct {
	// Options are those of each pass (KeyPrefix, Logger, BatchSize).
	Options
	// Interval is the time between the end of one pass and the start of
	// the next; 0 means DefaultReplayInterval. After a failed pass the
	// wait doubles, up to MaxReplayBackoff, until a pass succeeds.
	Interval time.Duration
}

// DefaultReplayInterval is the default ReplayerOptions.Interval.
const DefaultReplayInterval = 5 * time.Second

// MaxReplayBackoff bounds the wait after failed passes.
const MaxReplayBackoff = time.Minute

// ReplayState is a Replayer's state, for GET /v1/admin/pending and logs.
type ReplayState struct {
	// Passes counts the passes run, Failures the failed ones.
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
	primary  Primary
	kv       kv.Store
	opts     Options
	interval time.Duration
	log      *slog.Logger

	pending  prometheus.Gauge
	replayed *prometheus.CounterVec

	mu    sync.Mutex
	state ReplayState
}

// NewReplayer returns a Replayer; Run starts it. Its metrics,
// memcell_pending_records (the ids the record listed when the last pass
// began: a backlog that stays above zero is one that does not drain) and
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
	r := &Replayer{primary: primary, kv: store, opts: o.Options, interval: o.Interval, log: o.Logger,
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "memcell", Name: "pending_records",
			Help: "Documents listed in the primary's record of KV writes to redo when the replayer's last pass began.",
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
		for _, c := range []prometheus.Collector{r.pending, r.replayed} {
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

// Pass runs one Replay now and records its outcome.
func (r *Replayer) Pass(ctx context.Context) error {
	res, err := Replay(ctx, r.primary, r.kv, &r.opts)
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
		s.Failures++
		s.LastError = err.Error()
		if ctx.Err() == nil {
			r.log.WarnContext(ctx, "reconcile: replay failed; trying again later", "pending", res.Pending, "written", res.Written, "error", err)
		}
		return err
	}
	if res.Pending > 0 {
		r.log.InfoContext(ctx, "reconcile: replayed the pending record", "pending", res.Pending,
			"written", res.Written, "deleted", res.Deleted, "unreadable", res.Unreadable)
	}
	return nil
}

// State returns the replayer's state.
func (r *Replayer) State() ReplayState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}
