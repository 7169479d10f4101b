package mirror

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
)

// Degraded reads (Options.ReadFallback). While the primary cannot be
// reached, Get and GetMany answer from the KV copies: the canonical
// encoding of each document's last mirrored state, soft-delete marks
// included. Only a primary error that wraps memcell.ErrUnavailable falls
// back; not found, bad input and a caller that went away do not, and
// neither do reads inside a transaction.
//
// A down primary can make each read wait for the driver's server selection
// timeout (30 s by default). With ReadFallback on, the primary's part of a
// read is bounded by FallbackTimeout, and once a read has found the primary
// unavailable the reads of the next FallbackHold go straight to the KV.
// The first read after that asks the primary again, so reads are back on
// the primary at most FallbackHold after it returns, with nothing to reset.

// DefaultFallbackTimeout bounds the primary's part of a read when
// Options.ReadFallback is on and Options.FallbackTimeout is 0.
const DefaultFallbackTimeout = time.Second

// DefaultFallbackHold is how long reads go straight to the KV after one
// found the primary unavailable, when Options.FallbackHold is 0.
const DefaultFallbackHold = 2 * time.Second

// ErrNoCopy is wrapped, with the primary's error (which wraps
// memcell.ErrUnavailable), by a degraded read that met an id the KV holds
// no copy of: whether the document exists cannot be told, so the read
// fails rather than answer not found.
var ErrNoCopy = errors.New("mirror: the KV holds no copy to answer from")

// errHeldDown is the primary's error while a recent read found it
// unavailable (Options.FallbackHold).
var errHeldDown = fmt.Errorf("%w: it did not answer a read moments ago; not asked again yet", memcell.ErrUnavailable)

// The results of memcell_fallback_reads_total.
const (
	fallbackServed   = "served"    // answered from the KV copy (copies, for a batch)
	fallbackNotFound = "not_found" // the copy is soft-deleted: 404, as from the primary
	fallbackNoCopy   = "no_copy"   // an id without a copy: the read fails (ErrNoCopy)
	fallbackError    = "error"     // the KV read failed or a copy did not decode
)

// primaryRead runs read, a read of the primary. With ReadFallback on (and
// outside a transaction) it is bounded by the fallback timeout and skipped
// while the primary is held down; an unavailable primary (or one that did
// not answer in time) starts a hold. The error wraps memcell.ErrUnavailable
// in both cases.
func (r *Repository) primaryRead(ctx context.Context, read func(context.Context) error) error {
	if !r.fallback || txFrom(ctx) != nil {
		return read(ctx)
	}
	if until := r.downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return errHeldDown
	}
	pctx, cancel := context.WithTimeout(ctx, r.fbTimeout)
	defer cancel()
	err := read(pctx)
	if err == nil || ctx.Err() != nil {
		return err
	}
	if errors.Is(err, memcell.ErrUnavailable) || errors.Is(pctx.Err(), context.DeadlineExceeded) {
		r.downUntil.Store(time.Now().Add(r.fbHold).UnixNano())
		if !errors.Is(err, memcell.ErrUnavailable) {
			err = fmt.Errorf("%w: no answer within %s: %w", memcell.ErrUnavailable, r.fbTimeout, err)
		}
	}
	return err
}

// fallsBack reports whether a failed primary read is answered from the KV.
func (r *Repository) fallsBack(ctx context.Context, err error) bool {
	return r.fallback && txFrom(ctx) == nil && ctx.Err() == nil && errors.Is(err, memcell.ErrUnavailable)
}

// getFromKV answers Get from the KV copy after the primary failed with
// perr.
func (r *Repository) getFromKV(ctx context.Context, id memcell.ID, perr error) (*memcell.MemCell, Validation, error) {
	v := Validation{Outcome: Skipped, FromKV: true}
	kctx, cancel := r.kvContext(ctx)
	defer cancel()
	got, err := r.kv.Get(kctx, r.Key(id))
	switch {
	case errors.Is(err, kv.ErrNotFound):
		r.fallbackCount("get", fallbackNoCopy)
		return nil, v, fmt.Errorf("%w: %w: no copy of %s", perr, ErrNoCopy, id)
	case err != nil:
		r.fallbackCount("get", fallbackError)
		return nil, v, fmt.Errorf("%w; the KV read failed too: %w", perr, err)
	}
	m, err := memcell.Decode(got)
	if err != nil {
		r.fallbackCount("get", fallbackError)
		r.log.ErrorContext(ctx, "mirror: kv copy does not decode; cannot answer from it", "event_id", id.String(), "kv_backend", r.backend, "error", err)
		return nil, v, fmt.Errorf("%w; the KV copy of %s does not decode: %w", perr, id, err)
	}
	if m.Deleted() {
		r.fallbackCount("get", fallbackNotFound)
		return nil, v, fmt.Errorf("get %s from the KV copy: %w", id, memcell.ErrNotFound)
	}
	r.fallbackCount("get", fallbackServed)
	r.log.DebugContext(ctx, "mirror: primary unavailable; answered from the kv copy", "event_id", id.String(), "kv_backend", r.backend)
	return m, v, nil
}

// getManyFromKV answers GetMany from the KV copies, read in one BatchGet,
// after the primary failed with perr. Soft-deleted copies are left out, as
// the primary leaves out soft-deleted documents; an id without a copy fails
// the whole read (ErrNoCopy). The documents are whole even when fields are
// asked for: the caller keeps the fields it wants.
func (r *Repository) getManyFromKV(ctx context.Context, ids []memcell.ID, perr error) (map[memcell.ID]*memcell.MemCell, BatchValidation, error) {
	v := BatchValidation{Outcome: Skipped, FromKV: true}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = r.Key(id)
	}
	kctx, cancel := r.kvContext(ctx)
	defer cancel()
	copies, err := r.kv.BatchGet(kctx, keys)
	if err != nil {
		r.fallbackCount("batch_get", fallbackError)
		return nil, v, fmt.Errorf("%w; the KV read failed too: %w", perr, err)
	}
	docs := make(map[memcell.ID]*memcell.MemCell, len(ids))
	var noCopy int
	for i, id := range ids {
		got, ok := copies[keys[i]]
		if !ok {
			noCopy++
			continue
		}
		m, err := memcell.Decode(got)
		if err != nil {
			r.fallbackCount("batch_get", fallbackError)
			r.log.ErrorContext(ctx, "mirror: kv copy does not decode; cannot answer from it", "event_id", id.String(), "kv_backend", r.backend, "error", err)
			return nil, v, fmt.Errorf("%w; the KV copy of %s does not decode: %w", perr, id, err)
		}
		if !m.Deleted() {
			docs[id] = m
		}
	}
	if noCopy > 0 {
		r.fallbackCount("batch_get", fallbackNoCopy)
		return nil, v, fmt.Errorf("%w: %w: no copy of %d of the %d ids", perr, ErrNoCopy, noCopy, len(ids))
	}
	r.fallbackCount("batch_get", fallbackServed)
	r.log.DebugContext(ctx, "mirror: primary unavailable; answered from the kv copies", "ids", len(ids), "kv_backend", r.backend)
	return docs, v, nil
}

func (r *Repository) fallbackCount(op, result string) {
	r.metrics.fallbackReads.WithLabelValues(r.backend, op, result).Inc()
}
