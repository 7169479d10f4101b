package kv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// ErrNotOpen is returned by every method of a Deferred store whose backend
// has not opened yet. It wraps the reason of the last failed attempt.
var ErrNotOpen = errors.New("kv: store not open yet")

// DeferredOptions configure OpenDeferred. Nil means defaults.
type DeferredOptions struct {
	// Capabilities are reported until the backend has opened (a mirror
	// names its metrics by Backend when it is made); then the backend's
	// own are.
	Capabilities Capabilities
	// InitialBackoff is the wait after the first failed attempt; each
	// later wait doubles, up to MaxBackoff, with ±20% jitter so that many
	// processes do not retry in step. 0 means 500 ms and 30 s.
	InitialBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one attempt; 0 means 10 s.
	AttemptTimeout time.Duration
	// OnRetry, if set, is called after each failed attempt with its error
	// and the wait before the next one.
	OnRetry func(err error, next time.Duration)
	// OnOpen, if set, is called once the backend has opened after at least
	// one failed attempt, with the number of attempts it took.
	OnOpen func(attempts int)
}

// Deferred is a Store whose backend need not be reachable when the program
// starts: OpenDeferred tries to open it at once and, while it cannot, keeps
// trying in the background with exponential backoff. Until it opens, every
// method returns an error wrapping ErrNotOpen (a mirror records the writes
// it could not make, and catches up once the store is there); from then on
// every call goes to the backend, which handles later outages itself (a
// Redis client reconnects on its own).
type Deferred struct {
	caps  Capabilities
	store atomic.Pointer[storeBox]
	// mu guards lastErr and closed.
	mu      sync.Mutex
	lastErr error
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
}

type storeBox struct{ Store }

// permanent reports whether an open error is one retrying cannot cure: a
// malformed URL, an unknown option or scheme.
func permanent(err error) bool {
	return errors.Is(err, ErrInvalidOptions) || errors.Is(err, ErrUnknownScheme)
}

// OpenDeferred opens a store with open, once at once and then in the
// background until it succeeds or the Deferred is closed. It returns an
// error only when the first attempt fails with ErrInvalidOptions or
// ErrUnknownScheme, which no retry cures; any other failure leaves a
// Deferred that is not open yet (Err says why).
func OpenDeferred(ctx context.Context, open func(context.Context) (Store, error), opts *DeferredOptions) (*Deferred, error) {
	var o DeferredOptions
	if opts != nil {
		o = *opts
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 10 * time.Second
	}
	attempt := func(ctx context.Context) (Store, error) {
		actx, cancel := context.WithTimeout(ctx, o.AttemptTimeout)
		defer cancel()
		return open(actx)
	}
	d := &Deferred{caps: o.Capabilities, done: make(chan struct{})}
	s, err := attempt(ctx)
	if err == nil {
		d.store.Store(&storeBox{s})
		close(d.done)
		return d, nil
	}
	if permanent(err) {
		return nil, err
	}
	d.lastErr = err
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.cancel = cancel
	go d.retry(bctx, attempt, &o)
	return d, nil
}

// retry opens the store in the background; the first attempt has failed.
func (d *Deferred) retry(ctx context.Context, attempt func(context.Context) (Store, error), o *DeferredOptions) {
	defer close(d.done)
	b := &backoff.ExponentialBackOff{
		InitialInterval:     o.InitialBackoff,
		MaxInterval:         o.MaxBackoff,
		Multiplier:          2,
		RandomizationFactor: 0.2,
	}
	attempts := 1
	notify := func(err error, next time.Duration) {
		d.mu.Lock()
		d.lastErr = err
		d.mu.Unlock()
		if o.OnRetry != nil {
			o.OnRetry(err, next)
		}
	}
	// backoff.Retry makes its first attempt at once; the first attempt was
	// OpenDeferred's, so wait here first.
	first := o.InitialBackoff
	notify(d.Err(), first)
	t := time.NewTimer(first)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return
	}
	s, err := backoff.Retry(ctx, func() (Store, error) {
		attempts++
		s, err := attempt(ctx)
		if err != nil && permanent(err) {
			return nil, backoff.Permanent(err)
		}
		return s, err
	},
		backoff.WithBackOff(b),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(notify))
	if err != nil {
		if ctx.Err() == nil {
			// A permanent error on a later attempt: the configuration
			// changed under the process (a file replaced, say). Keep the
			// error; Err reports it.
			d.mu.Lock()
			d.lastErr = err
			d.mu.Unlock()
		}
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		_ = s.Close()
		return
	}
	d.store.Store(&storeBox{s})
	d.lastErr = nil
	if o.OnOpen != nil {
		o.OnOpen(attempts)
	}
}

// Ready reports whether the backend has opened.
func (d *Deferred) Ready() bool { return d.store.Load() != nil }

// Err returns why the backend is not open yet, or nil once it is.
func (d *Deferred) Err() error {
	if d.Ready() {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	return d.lastErr
}

// backend returns the open store, or the error a call answers with.
func (d *Deferred) backend(ctx context.Context) (Store, error) {
	if b := d.store.Load(); b != nil {
		return b.Store, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	return nil, fmt.Errorf("%w: %w", ErrNotOpen, d.lastErr)
}

func (d *Deferred) Get(ctx context.Context, key string) ([]byte, error) {
	s, err := d.backend(ctx)
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, key)
}

func (d *Deferred) BatchGet(ctx context.Context, keys []string) (map[string][]byte, error) {
	s, err := d.backend(ctx)
	if err != nil {
		return nil, err
	}
	return s.BatchGet(ctx, keys)
}

func (d *Deferred) Put(ctx context.Context, e Entry) (bool, error) {
	s, err := d.backend(ctx)
	if err != nil {
		return false, err
	}
	return s.Put(ctx, e)
}

func (d *Deferred) BatchPut(ctx context.Context, entries []Entry) (int, error) {
	s, err := d.backend(ctx)
	if err != nil {
		return 0, err
	}
	return s.BatchPut(ctx, entries)
}

func (d *Deferred) Swap(ctx context.Context, e Entry, old []byte) (bool, error) {
	s, err := d.backend(ctx)
	if err != nil {
		return false, err
	}
	return s.Swap(ctx, e, old)
}

func (d *Deferred) Delete(ctx context.Context, key string, rev uint64) (bool, error) {
	s, err := d.backend(ctx)
	if err != nil {
		return false, err
	}
	return s.Delete(ctx, key, rev)
}

func (d *Deferred) BatchDelete(ctx context.Context, dels []Deletion) (int, error) {
	s, err := d.backend(ctx)
	if err != nil {
		return 0, err
	}
	return s.BatchDelete(ctx, dels)
}

func (d *Deferred) Scan(ctx context.Context, prefix string, fn func(Item) error) error {
	s, err := d.backend(ctx)
	if err != nil {
		return err
	}
	return s.Scan(ctx, prefix, fn)
}

func (d *Deferred) Stats(ctx context.Context) (Stats, error) {
	s, err := d.backend(ctx)
	if err != nil {
		return Stats{}, err
	}
	return s.Stats(ctx)
}

// Sync syncs the backend when it is open and a Syncer; before it opens
// there is nothing to sync.
func (d *Deferred) Sync(ctx context.Context) error {
	if b := d.store.Load(); b != nil {
		return Sync(ctx, b.Store)
	}
	return nil
}

// Capabilities are the backend's once it has opened, those given in
// DeferredOptions before.
func (d *Deferred) Capabilities() Capabilities {
	if b := d.store.Load(); b != nil {
		return b.Capabilities()
	}
	return d.caps
}

// Close stops the background attempts and closes the backend if it has
// opened. It is safe to call more than once.
func (d *Deferred) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	if d.cancel != nil {
		d.cancel()
	}
	<-d.done
	if b := d.store.Load(); b != nil {
		return b.Close()
	}
	return nil
}
