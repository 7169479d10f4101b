package mirror

import (
	"context"
	"errors"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
)

// Outcome is the result of validating one read against the KV copy.
type Outcome string

// The validation outcomes.
const (
	Consistent   Outcome = "consistent"   // the KV copy equals the primary's
	Inconsistent Outcome = "inconsistent" // it differs; logged with the diff
	Missing      Outcome = "missing"      // the KV has no copy
	Errored      Outcome = "error"        // the KV read failed
	Skipped      Outcome = "skipped"      // not validated
	// Pending: the copy is behind or missing, and the document's KV write
	// is still queued or under way (async mode); not a difference.
	Pending Outcome = "pending"
)

// Validation is the outcome of validating one document.
type Validation struct {
	Outcome Outcome
	// Diffs lists the differing fields when Outcome is Inconsistent.
	Diffs []memcell.Difference
	// Err is the KV error when Outcome is Errored.
	Err error
	// FromKV is set when the answer (a document, or not found) came from
	// the KV copy because the primary was unavailable
	// (Options.ReadFallback); such a read is not validated.
	FromKV bool
}

// ReadOption changes one read.
type ReadOption func(*readOptions)

type readOptions struct {
	validate *bool
}

// Validate overrides the read's default: single-document reads validate by
// default, batch and list reads do not. The service-wide flag still rules:
// with validation off nothing validates, and in sample mode a read asked to
// validate always does.
func Validate(v bool) ReadOption {
	return func(o *readOptions) { o.validate = &v }
}

// shouldValidate applies the per-call override, the default and the flags.
func (r *Repository) shouldValidate(ctx context.Context, def bool, opts []ReadOption) bool {
	var o readOptions
	for _, f := range opts {
		f(&o)
	}
	if txFrom(ctx) != nil {
		return false
	}
	flags := r.flags.Load()
	if flags.Validation == ValidationOff {
		return false
	}
	if o.validate != nil {
		return *o.validate
	}
	return def && flags.sample()
}

// Get returns the live MemCell with the id (memcell.ErrNotFound if absent or
// soft-deleted) and, when validated, how its KV copy compares. With
// Options.ReadFallback, while the primary is unavailable it answers from
// the KV copy (Validation.FromKV), and fails with ErrNoCopy when there is
// none.
func (r *Repository) Get(ctx context.Context, id memcell.ID, opts ...ReadOption) (*memcell.MemCell, Validation, error) {
	var m *memcell.MemCell
	err := r.primaryRead(ctx, func(ctx context.Context) (err error) {
		m, err = r.primary.Get(ctx, id)
		return err
	})
	if err != nil {
		if r.fallsBack(ctx, err) {
			return r.getFromKV(ctx, id, err)
		}
		return nil, Validation{}, err
	}
	if !r.shouldValidate(ctx, true, opts) {
		return m, r.count(Validation{Outcome: Skipped}), nil
	}
	return m, r.validateOne(ctx, m), nil
}

// validateOne compares m with its KV copy. When they differ in revision it
// reads both again once, because a concurrent write may sit between its
// primary and its KV step; only a difference that survives is reported.
func (r *Repository) validateOne(ctx context.Context, m *memcell.MemCell) Validation {
	// The encoding goes in a pooled buffer, given back unless differences
	// were found: they may hold slices of it.
	buf := encodeBuffers.Get().(*[]byte)
	want, err := memcell.AppendEncode((*buf)[:0], m)
	release := func() {
		*buf = want[:0]
		encodeBuffers.Put(buf)
	}
	if err != nil {
		release()
		return r.count(Validation{Outcome: Errored, Err: err})
	}
	key := r.Key(m.ID)
	got, v := r.readCopy(ctx, key)
	if v.Outcome == Missing && r.queue.busy(key) {
		v.Outcome = Pending
	}
	if v.Outcome != "" {
		release()
		return r.count(r.report(ctx, m.ID, v))
	}
	verdict := memcell.Judge(want, m.Revision, got)
	if !verdict.Equal && verdict.CopyRevision < m.Revision && r.queue.busy(key) {
		release()
		return r.count(Validation{Outcome: Pending})
	}
	if !verdict.Equal && verdict.CopyRevision != m.Revision {
		if again, err := r.primary.Get(ctx, m.ID); err == nil {
			if want, err = memcell.Encode(again); err == nil {
				if got, rv := r.readCopy(ctx, key); rv.Outcome == "" {
					verdict = memcell.Judge(want, again.Revision, got)
				}
			}
		}
	}
	if verdict.Equal {
		release()
	}
	v = validation(verdict)
	if !verdict.Equal && r.queue.busy(key) {
		v = Validation{Outcome: Pending}
	}
	return r.count(r.report(ctx, m.ID, v))
}

func (r *Repository) readCopy(ctx context.Context, key string) ([]byte, Validation) {
	kctx, cancel := r.kvContext(ctx)
	defer cancel()
	start := time.Now()
	got, err := r.kv.Get(kctx, key)
	r.getM.since(start)
	switch {
	case errors.Is(err, kv.ErrNotFound):
		r.getM.ok.Inc()
		return nil, Validation{Outcome: Missing}
	case err != nil:
		r.getM.errs.Inc()
		r.getM.failures.Inc()
		return nil, Validation{Outcome: Errored, Err: err}
	}
	r.getM.ok.Inc()
	return got, Validation{}
}

// validation is the outcome of a verdict.
func validation(v memcell.Verdict) Validation {
	if v.Equal {
		return Validation{Outcome: Consistent}
	}
	return Validation{Outcome: Inconsistent, Diffs: v.Diffs}
}

// report applies the error policy's logging to a validation outcome.
func (r *Repository) report(ctx context.Context, id memcell.ID, v Validation) Validation {
	switch v.Outcome {
	case Inconsistent:
		memcell.LogInconsistency(ctx, r.log, id.String(), v.Diffs)
	case Missing:
		r.log.WarnContext(ctx, "mirror: kv copy missing", "event_id", id.String(), "kv_backend", r.backend)
	case Errored:
		r.log.WarnContext(ctx, "mirror: kv read failed during validation; primary data returned", "event_id", id.String(), "kv_backend", r.backend, "error", v.Err)
	}
	return v
}

// count updates the validation metrics for one outcome.
func (r *Repository) count(v Validation) Validation {
	r.metrics.validations.WithLabelValues(r.backend, string(v.Outcome)).Inc()
	if v.Outcome == Inconsistent {
		r.metrics.inconsistencies.WithLabelValues(r.backend, "get").Inc()
	}
	return v
}

// BatchValidation reports the validation of a batch or list read.
type BatchValidation struct {
	// Outcome summarises the batch: Skipped when not validated, otherwise
	// the worst outcome met (Inconsistent > Errored > Missing > Consistent).
	Outcome Outcome
	// PerID holds each document's validation; nil when skipped.
	PerID map[memcell.ID]Validation
	// FromKV is set when the documents came from the KV copies because
	// the primary was unavailable (Options.ReadFallback); such a read is
	// not validated.
	FromKV bool
}

// GetMany returns the live MemCells among ids. It does not validate unless
// asked (Validate(true)); a validated batch reads the KV copies in one
// BatchGet. With fields set the documents are partial and never validated.
// With Options.ReadFallback, while the primary is unavailable it answers
// from the KV copies (BatchValidation.FromKV; whole documents, fields or
// not), and fails with ErrNoCopy when an id has none.
func (r *Repository) GetMany(ctx context.Context, ids []memcell.ID, fields []string, opts ...ReadOption) (map[memcell.ID]*memcell.MemCell, BatchValidation, error) {
	var docs map[memcell.ID]*memcell.MemCell
	err := r.primaryRead(ctx, func(ctx context.Context) (err error) {
		docs, err = r.primary.GetMany(ctx, ids, fields)
		return err
	})
	if err != nil {
		if r.fallsBack(ctx, err) {
			return r.getManyFromKV(ctx, ids, err)
		}
		return nil, BatchValidation{}, err
	}
	if len(fields) > 0 || !r.shouldValidate(ctx, false, opts) {
		return docs, BatchValidation{Outcome: Skipped}, nil
	}
	list := make([]*memcell.MemCell, 0, len(docs))
	for _, d := range docs {
		list = append(list, d)
	}
	return docs, r.validateBatch(ctx, list), nil
}

// Find returns the live MemCells the query selects; it validates only when
// asked, with one KV round trip for the page.
func (r *Repository) Find(ctx context.Context, q memcell.Query, opts ...ReadOption) ([]*memcell.MemCell, BatchValidation, error) {
	docs, err := r.primary.Find(ctx, q)
	if err != nil {
		return nil, BatchValidation{}, err
	}
	if !r.shouldValidate(ctx, false, opts) {
		return docs, BatchValidation{Outcome: Skipped}, nil
	}
	return docs, r.validateBatch(ctx, docs), nil
}

// Count counts the live MemCells the query selects.
func (r *Repository) Count(ctx context.Context, q memcell.Query) (int64, error) {
	return r.primary.Count(ctx, q)
}

// Latest returns a user's newest live MemCells (10 when limit is 0).
func (r *Repository) Latest(ctx context.Context, userID string, limit int64, opts ...ReadOption) ([]*memcell.MemCell, BatchValidation, error) {
	docs, err := r.primary.Latest(ctx, userID, limit)
	if err != nil {
		return nil, BatchValidation{}, err
	}
	if !r.shouldValidate(ctx, false, opts) {
		return docs, BatchValidation{Outcome: Skipped}, nil
	}
	return docs, r.validateBatch(ctx, docs), nil
}

var severity = map[Outcome]int{Consistent: 1, Pending: 2, Missing: 3, Errored: 4, Inconsistent: 5}

// validateBatch compares docs with their KV copies, read in one BatchGet.
func (r *Repository) validateBatch(ctx context.Context, docs []*memcell.MemCell) BatchValidation {
	out := BatchValidation{Outcome: Consistent, PerID: make(map[memcell.ID]Validation, len(docs))}
	if len(docs) == 0 {
		return out
	}
	keys := make([]string, len(docs))
	for i, d := range docs {
		keys[i] = r.Key(d.ID)
	}
	kctx, cancel := r.kvContext(ctx)
	defer cancel()
	start := time.Now()
	copies, err := r.kv.BatchGet(kctx, keys)
	r.bgetM.since(start)
	if err != nil {
		r.bgetM.errs.Inc()
		r.bgetM.failures.Inc()
	} else {
		r.bgetM.ok.Inc()
	}
	for i, d := range docs {
		var v Validation
		switch got, ok := copies[keys[i]]; {
		case err != nil:
			v = Validation{Outcome: Errored, Err: err}
		case !ok:
			v = Validation{Outcome: Missing}
		default:
			if want, eerr := memcell.Encode(d); eerr != nil {
				v = Validation{Outcome: Errored, Err: eerr}
			} else {
				v = validation(memcell.Judge(want, d.Revision, got))
			}
		}
		if (v.Outcome == Missing || v.Outcome == Inconsistent) && r.queue.busy(keys[i]) {
			v = Validation{Outcome: Pending}
		}
		if v.Outcome == Inconsistent {
			r.metrics.inconsistencies.WithLabelValues(r.backend, "batch_get").Inc()
			memcell.LogInconsistency(ctx, r.log, d.ID.String(), v.Diffs)
		} else if v.Outcome == Missing {
			r.log.WarnContext(ctx, "mirror: kv copy missing", "event_id", d.ID.String(), "kv_backend", r.backend)
		}
		r.metrics.validations.WithLabelValues(r.backend, string(v.Outcome)).Inc()
		out.PerID[d.ID] = v
		if severity[v.Outcome] > severity[out.Outcome] {
			out.Outcome = v.Outcome
		}
	}
	if err != nil {
		r.log.WarnContext(ctx, "mirror: kv batch read failed during validation; primary data returned", "keys", len(keys), "kv_backend", r.backend, "error", err)
	}
	return out
}
