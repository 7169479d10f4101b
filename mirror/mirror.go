// Package mirror is memcell's dual-write repository. MongoDB (the primary)
// is written first and is the truth; every change it accepts is then
// mirrored to a key-value store, and reads can be validated against that
// copy.
//
// The rules (docs/architecture.md#invariants and #error-policy):
//
//   - The KV holds the canonical encoding (memcell.Encode) of each
//     document's current primary state, soft-delete marks included; a hard
//     delete removes the copy and leaves a tombstone.
//   - Every mirror write carries the document's revision, so an older state
//     never replaces a newer one whatever order concurrent writers reach the
//     KV in.
//   - KV trouble never fails a primary operation: a failed KV write is
//     logged at WARN, counted, recorded durably for repair, and reported to
//     the caller in the operation's Mirror value; the primary's result is
//     returned as success. A failed primary operation writes nothing to the
//     KV.
//   - Reads return the primary's data. A validated read compares it with
//     the KV copy and reports consistent, inconsistent (one ERROR line with
//     the [DATA_INCONSISTENCY] marker and the field-level diff), missing,
//     error or skipped.
//   - Inside WithTransaction the KV writes wait for the commit and are
//     dropped on abort.
package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
)

// DefaultKeyPrefix is put before the event id to make a KV key.
const DefaultKeyPrefix = memcell.DefaultKeyPrefix

// DefaultKVTimeout bounds each KV call the mirror makes, so that a slow KV
// cannot hold up a primary operation for longer.
const DefaultKVTimeout = 2 * time.Second

// Primary is the primary store the repository writes first and reads
// from; *mongostore.Store implements it.
type Primary = memcell.Primary

// Options configure a Repository. Nil means defaults.
type Options struct {
	// KeyPrefix goes before the event id in KV keys; nil means
	// DefaultKeyPrefix ("memcell:"), and "" is allowed.
	KeyPrefix *string
	// KVTimeout bounds each KV call; 0 means DefaultKVTimeout.
	KVTimeout time.Duration
	// Logger receives the mirror's log lines; nil discards them.
	Logger *slog.Logger
	// Registerer receives the mirror's metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Flags are the starting feature flags; nil means Flags{Mirroring: true,
	// Validation: ValidationOn}.
	Flags *Flags
	// ClearInterval is how often the write intents of done KV writes are
	// removed from the primary, in one batch; 0 means
	// DefaultClearInterval. A batch of 1,000 goes at once.
	ClearInterval time.Duration
	// ReadFallback makes Get and GetMany answer from the KV copies while
	// the primary is unavailable (its error wraps memcell.ErrUnavailable);
	// see fallback.go. Off by default: such answers may be stale.
	ReadFallback bool
	// FallbackTimeout bounds the primary's part of a read when
	// ReadFallback is on; 0 means DefaultFallbackTimeout.
	FallbackTimeout time.Duration
	// FallbackHold is how long reads go straight to the KV after one
	// found the primary unavailable, when ReadFallback is on; 0 means
	// DefaultFallbackHold.
	FallbackHold time.Duration
	// QueueBytes bounds the memory of the KV writes queued in async mode
	// (Flags.Mode); 0 means DefaultQueueBytes. Writes beyond it are left
	// to their intents and the replayer.
	QueueBytes int64
	// Workers is how many batches of queued KV writes may be under way at
	// once; 0 means DefaultWorkers.
	Workers int
	// DrainTimeout bounds how long Close waits for the queued KV writes;
	// 0 means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// StallAfter is how long a batch of queued KV writes may be under way
	// before the queue takes the KV for stalled and, as for a failing one,
	// stops holding writes for it (they go to the pending record); 0 means
	// DefaultStallAfter.
	StallAfter time.Duration
}

// Validation modes of the service-wide flag.
const (
	ValidationOn     = "on"     // reads validate per their defaults and overrides
	ValidationOff    = "off"    // no read validates
	ValidationSample = "sample" // reads that would validate do so SamplePercent of the time
)

// Flags are the feature flags that can change at runtime.
type Flags struct {
	// Mirroring turns KV writes on or off. While off, writes report
	// MirrorSkipped and the KV falls behind until a repair; the ids they
	// touched are recorded as pending (memcell.Primary.RecordPending) and
	// counted in memcell_kv_writes_skipped_total, as failed writes are.
	Mirroring bool `json:"mirroring"`
	// Validation is ValidationOn, ValidationOff or ValidationSample.
	Validation string `json:"validation"`
	// SamplePercent is the share of validations done in sample mode, 0-100.
	SamplePercent float64 `json:"sample_percent"`
	// Mode is ModeAsync or ModeSync: whether a write waits for its KV
	// write. "" means DefaultMode in New and the current mode in SetFlags.
	Mode string `json:"mirror_mode"`
}

func (f Flags) check() error {
	switch f.Mode {
	case ModeAsync, ModeSync, "":
	default:
		return &memcell.FieldError{Field: "mirror_mode", Rule: fmt.Sprintf("must be %q or %q, got %q", ModeAsync, ModeSync, f.Mode)}
	}
	switch f.Validation {
	case ValidationOn, ValidationOff:
	case ValidationSample:
		if f.SamplePercent < 0 || f.SamplePercent > 100 {
			return &memcell.FieldError{Field: "sample_percent", Rule: fmt.Sprintf("must be between 0 and 100, got %v", f.SamplePercent)}
		}
	default:
		return &memcell.FieldError{Field: "validation", Rule: fmt.Sprintf("must be %q, %q or %q, got %q", ValidationOn, ValidationOff, ValidationSample, f.Validation)}
	}
	return nil
}

// SetValidation sets Validation and SamplePercent from the setting as
// people write it: "on", "off", or "sample:N" to validate N percent (0-100,
// a trailing "%" allowed) of the reads that would validate. The error names
// the setting and what it accepts.
func (f *Flags) SetValidation(s string) error {
	g := *f
	switch {
	case s == ValidationOn || s == ValidationOff:
		g.Validation, g.SamplePercent = s, 0
	case strings.HasPrefix(s, ValidationSample+":"):
		p, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(s, ValidationSample+":"), "%"), 64)
		if err != nil {
			return &memcell.FieldError{Field: "validation", Rule: fmt.Sprintf("%q: the sample must be a percentage 0-100, e.g. sample:10", s)}
		}
		g.Validation, g.SamplePercent = ValidationSample, p
	default:
		return &memcell.FieldError{Field: "validation", Rule: fmt.Sprintf("%q: want on, off or sample:N", s)}
	}
	if err := g.check(); err != nil {
		return err
	}
	*f = g
	return nil
}

// Repository is the dual-write MemCell repository. It is safe for
// concurrent use.
type Repository struct {
	primary Primary
	kv      kv.Store
	backend string
	keys    memcell.Keys
	timeout time.Duration
	log     *slog.Logger
	flags   atomic.Pointer[Flags]

	// Degraded reads (fallback.go): on or off, the bound of the primary's
	// part of a read, the hold, and until when (Unix nanoseconds) reads
	// skip the primary.
	fallback  bool
	fbTimeout time.Duration
	fbHold    time.Duration
	downUntil atomic.Int64

	metrics *metrics
	putM    *opMetrics
	batchM  *opMetrics
	delM    *opMetrics
	bdelM   *opMetrics
	getM    *opMetrics
	bgetM   *opMetrics

	clear        *clearer
	queue        *queue
	drainTimeout time.Duration
}

// New returns a repository over primary and store. It does no I/O; it
// starts the goroutine that clears write intents, which Close stops.
func New(primary Primary, store kv.Store, opts *Options) (*Repository, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	keys := memcell.KeysWithPrefix(o.KeyPrefix)
	if o.KVTimeout < 0 {
		return nil, errors.New("mirror: KVTimeout must not be negative")
	}
	if o.KVTimeout == 0 {
		o.KVTimeout = DefaultKVTimeout
	}
	if o.ClearInterval < 0 {
		return nil, errors.New("mirror: ClearInterval must not be negative")
	}
	if o.ClearInterval == 0 {
		o.ClearInterval = DefaultClearInterval
	}
	if o.FallbackTimeout < 0 || o.FallbackHold < 0 {
		return nil, errors.New("mirror: FallbackTimeout and FallbackHold must not be negative")
	}
	if o.FallbackTimeout == 0 {
		o.FallbackTimeout = DefaultFallbackTimeout
	}
	if o.FallbackHold == 0 {
		o.FallbackHold = DefaultFallbackHold
	}
	if o.QueueBytes < 0 || o.Workers < 0 || o.DrainTimeout < 0 || o.StallAfter < 0 {
		return nil, errors.New("mirror: QueueBytes, Workers, DrainTimeout and StallAfter must not be negative")
	}
	if o.StallAfter == 0 {
		o.StallAfter = DefaultStallAfter
	}
	if o.QueueBytes == 0 {
		o.QueueBytes = DefaultQueueBytes
	}
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	flags := Flags{Mirroring: true, Validation: ValidationOn}
	if o.Flags != nil {
		flags = *o.Flags
	}
	if flags.Mode == "" {
		flags.Mode = DefaultMode
	}
	if err := flags.check(); err != nil {
		return nil, err
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("mirror: metrics: %w", err)
	}
	backend := store.Capabilities().Backend
	r := &Repository{
		primary: primary, kv: store, backend: backend, keys: keys,
		timeout: o.KVTimeout, log: o.Logger, metrics: m,
		fallback: o.ReadFallback, fbTimeout: o.FallbackTimeout, fbHold: o.FallbackHold,
		putM: m.write(backend, "put"), batchM: m.write(backend, "batch_put"),
		delM: m.write(backend, "delete"), bdelM: m.write(backend, "batch_delete"),
		getM: m.read(backend, "get"), bgetM: m.read(backend, "batch_get"),
	}
	// Create every series an alert watches at zero, so the first increase
	// after a start shows as one.
	for _, op := range []string{"get", "batch_get"} {
		m.inconsistencies.WithLabelValues(backend, op)
	}
	for _, reason := range []string{dropFull, dropFailing, dropClosed} {
		m.queueDrops.WithLabelValues(reason)
	}
	for _, o := range []Outcome{Consistent, Inconsistent, Missing, Errored, Skipped, Pending} {
		m.validations.WithLabelValues(backend, string(o))
	}
	if o.ReadFallback {
		for _, op := range []string{"get", "batch_get"} {
			for _, res := range []string{fallbackServed, fallbackNotFound, fallbackNoCopy, fallbackError} {
				m.fallbackReads.WithLabelValues(backend, op, res)
			}
		}
	}
	r.flags.Store(&flags)
	r.clear = newClearer(primary, store, o.Logger, o.ClearInterval, m)
	r.queue = newQueue(r, o.QueueBytes, o.Workers, o.StallAfter)
	r.drainTimeout = o.DrainTimeout
	if err := m.registerQueue(o.Registerer, backend, r.queue); err != nil {
		r.Close()
		return nil, fmt.Errorf("mirror: metrics: %w", err)
	}
	r.log.Info("mirror: ready", "kv_backend", backend, "key_prefix", keys.Prefix, "mirror_mode", flags.Mode,
		"mirroring", flags.Mirroring, "validation", flags.Validation, "read_fallback", o.ReadFallback)
	return r, nil
}

// Close applies the queued KV writes (waiting up to Options.DrainTimeout;
// what is left stays to the intents and the replayer), clears the write
// intents of the KV writes done so far (making the KV durable first) and
// stops the background work. Call it after the last operation and before
// closing the stores; the repository must not be used afterwards. It is
// safe to call more than once.
func (r *Repository) Close() {
	r.queue.close(r.drainTimeout)
	r.clear.close()
}

// QueueStats describes the queue of KV writes of the async mode.
type QueueStats struct {
	// Depth counts the writes waiting or under way.
	Depth int `json:"depth"`
	// Bytes is the memory the waiting writes hold; Capacity its bound.
	Bytes    int64 `json:"bytes"`
	Capacity int64 `json:"capacity"`
	// Oldest is when the oldest of them was queued; zero when none is.
	Oldest time.Time `json:"oldest,omitzero"`
}

// QueueStats returns the state of the queue of KV writes.
func (r *Repository) QueueStats() QueueStats {
	depth, bytes, oldest := r.queue.stats()
	return QueueStats{Depth: depth, Bytes: bytes, Capacity: r.queue.max, Oldest: oldest}
}

// Drain waits until every queued KV write has been applied (or has failed
// and been noted), or ctx ends.
func (r *Repository) Drain(ctx context.Context) error {
	return r.queue.drain(ctx)
}

// Flags returns the current feature flags.
func (r *Repository) Flags() Flags { return *r.flags.Load() }

// SetFlags replaces the feature flags; it takes effect for the next
// operation.
func (r *Repository) SetFlags(f Flags) error {
	if f.Mode == "" {
		f.Mode = r.flags.Load().Mode
	}
	if err := f.check(); err != nil {
		return err
	}
	r.flags.Store(&f)
	r.log.Info("mirror: flags changed", "mirror_mode", f.Mode, "mirroring", f.Mirroring, "validation", f.Validation, "sample_percent", f.SamplePercent)
	return nil
}

// Key returns the KV key of an event id.
func (r *Repository) Key(id memcell.ID) string { return r.keys.Key(id) }

// Keys returns the codec between event ids and KV keys the repository
// writes with.
func (r *Repository) Keys() memcell.Keys { return r.keys }

// readyKey is the key Ping reads: under the prefix, but never an event
// id's key.
const readyKey = "readyz"

// Ping checks that both stores answer: the primary's Ping and a read of
// one KV key under the prefix (absent is fine). Each store that failed is
// a *StoreError in the returned error (joined when both failed).
func (r *Repository) Ping(ctx context.Context) error {
	var errs []error
	if err := r.primary.Ping(ctx); err != nil {
		errs = append(errs, &StoreError{Store: StorePrimary, Err: err})
	}
	kctx, cancel := r.kvContext(ctx)
	defer cancel()
	if _, err := r.kv.Get(kctx, r.keys.Prefix+readyKey); err != nil && !errors.Is(err, kv.ErrNotFound) {
		errs = append(errs, &StoreError{Store: StoreKV, Err: err})
	}
	return errors.Join(errs...)
}

// The stores a StoreError names.
const (
	StorePrimary = "primary"
	StoreKV      = "kv"
)

// StoreError is a store that did not answer Ping. Store is StorePrimary or
// StoreKV, a name fit to show anyone; Err holds the details (hosts, ports),
// which are not.
type StoreError struct {
	Store string
	Err   error
}

func (e *StoreError) Error() string { return e.Store + ": " + e.Err.Error() }
func (e *StoreError) Unwrap() error { return e.Err }

// FailedStores returns the stores err (from Ping) names as failed, in
// order.
func FailedStores(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *StoreError:
			out = append(out, e.Store)
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// Backend is the KV backend's name.
func (r *Repository) Backend() string { return r.backend }

// KVStats returns the KV store's statistics (entry count, total value bytes).
func (r *Repository) KVStats(ctx context.Context) (kv.Stats, error) {
	return r.kv.Stats(ctx)
}

// Pending returns the ids whose mirror writes failed and are not repaired.
func (r *Repository) Pending(ctx context.Context) ([]memcell.ID, error) {
	return r.primary.Pending(ctx)
}

// kvContext bounds a KV call and detaches it from the caller's
// cancellation: once the primary has changed, the mirror write should
// happen even if the client has gone away.
func (r *Repository) kvContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
}

// sample decides whether a read that would validate does so now.
func (f *Flags) sample() bool {
	switch f.Validation {
	case ValidationOff:
		return false
	case ValidationSample:
		return rand.Float64()*100 < f.SamplePercent
	}
	return true
}
