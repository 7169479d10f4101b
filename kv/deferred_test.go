package kv_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/kvtest"
	"github.com/memcell/memcell/kv/memkv"
)

var errDown = errors.New("connection refused")

// flaky opens a memkv store once up is set, and fails before.
type flaky struct {
	up       atomic.Bool
	attempts atomic.Int32
	opened   chan kv.Store
}

func newFlaky() *flaky { return &flaky{opened: make(chan kv.Store, 1)} }

func (f *flaky) open(ctx context.Context) (kv.Store, error) {
	f.attempts.Add(1)
	if !f.up.Load() {
		return nil, errDown
	}
	s, err := memkv.New(nil)
	if err == nil {
		f.opened <- s
	}
	return s, err
}

var fast = &kv.DeferredOptions{
	Capabilities:   kv.Capabilities{Backend: "memory"},
	InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
}

// TestDeferredConformance runs the store contract through a Deferred whose
// backend opened at once.
func TestDeferredConformance(t *testing.T) {
	kvtest.RunConformance(t, func(t testing.TB, grace time.Duration) kv.Store {
		d, err := kv.OpenDeferred(context.Background(), func(context.Context) (kv.Store, error) {
			return memkv.New(&memkv.Options{TombstoneGrace: grace})
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	})
}

// TestDeferredOpensLater checks that a store that cannot be opened at first
// answers ErrNotOpen, keeps being tried in the background, and serves
// every call once it has opened.
func TestDeferredOpensLater(t *testing.T) {
	ctx := context.Background()
	f := newFlaky()
	var retries atomic.Int32
	var openedAfter atomic.Int32
	opts := *fast
	opts.OnRetry = func(err error, next time.Duration) {
		if !errors.Is(err, errDown) || next <= 0 {
			t.Errorf("OnRetry(%v, %v)", err, next)
		}
		retries.Add(1)
	}
	opts.OnOpen = func(attempts int) { openedAfter.Store(int32(attempts)) }
	d, err := kv.OpenDeferred(ctx, f.open, &opts)
	if err != nil {
		t.Fatalf("OpenDeferred: %v", err)
	}
	defer d.Close()
	if d.Ready() || !errors.Is(d.Err(), errDown) {
		t.Fatalf("Ready %v, Err %v before the backend is up", d.Ready(), d.Err())
	}
	if got := d.Capabilities().Backend; got != "memory" {
		t.Errorf("Capabilities before open: %q", got)
	}
	if _, err := d.Put(ctx, kv.Entry{Key: "k", Value: []byte("v"), Rev: 1}); !errors.Is(err, kv.ErrNotOpen) || !errors.Is(err, errDown) {
		t.Errorf("Put before open: %v, want ErrNotOpen wrapping the cause", err)
	}
	if _, err := d.Get(ctx, "k"); !errors.Is(err, kv.ErrNotOpen) {
		t.Errorf("Get before open: %v", err)
	}
	if err := d.Sync(ctx); err != nil {
		t.Errorf("Sync before open: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Get(cctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a done context: %v", err)
	}
	for f.attempts.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	f.up.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for !d.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("not open 5 s after the backend came up (%d attempts)", f.attempts.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if d.Err() != nil {
		t.Errorf("Err once open: %v", d.Err())
	}
	if ok, err := d.Put(ctx, kv.Entry{Key: "k", Value: []byte("v"), Rev: 1}); !ok || err != nil {
		t.Fatalf("Put once open: %v %v", ok, err)
	}
	if v, err := d.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Errorf("Get once open: %q %v", v, err)
	}
	if retries.Load() < 2 || openedAfter.Load() != f.attempts.Load() {
		t.Errorf("%d retries reported, opened after %d of %d attempts", retries.Load(), openedAfter.Load(), f.attempts.Load())
	}
	inner := <-f.opened
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := inner.Get(ctx, "k"); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("backend after Close: %v, want ErrClosed", err)
	}
	if _, err := d.Get(ctx, "k"); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
}

// TestDeferredPermanent checks that a bad URL or option fails at once.
func TestDeferredPermanent(t *testing.T) {
	for _, cause := range []error{kv.ErrInvalidOptions, kv.ErrUnknownScheme} {
		var n int
		_, err := kv.OpenDeferred(context.Background(), func(context.Context) (kv.Store, error) {
			n++
			return nil, cause
		}, fast)
		if !errors.Is(err, cause) || n != 1 {
			t.Errorf("OpenDeferred with %v: %v after %d attempts", cause, err, n)
		}
	}
}

// TestDeferredCloseStopsRetrying checks that Close ends the background
// attempts, also while one is under way, and closes a backend that opened
// too late.
func TestDeferredCloseStopsRetrying(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	late := make(chan kv.Store, 1)
	calls := 0
	d, err := kv.OpenDeferred(context.Background(), func(ctx context.Context) (kv.Store, error) {
		calls++
		if calls == 1 {
			return nil, errDown
		}
		once.Do(func() { <-release })
		s, err := memkv.New(nil)
		late <- s
		return s, err
	}, fast)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error)
	go func() { closed <- d.Close() }()
	time.Sleep(20 * time.Millisecond)
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-late:
		if _, err := s.Get(context.Background(), "k"); !errors.Is(err, kv.ErrClosed) {
			t.Errorf("the backend that opened during Close: %v, want closed", err)
		}
	default:
		// Close came before the second attempt: nothing opened.
	}
	if d.Ready() {
		t.Error("Ready after Close")
	}
}
