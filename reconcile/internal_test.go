package reconcile

import (
	"context"
	"errors"
	"hash/maphash"
	"strings"
	"testing"
	"time"

	"github.com/memcell/memcell"
)

func TestLimiter(t *testing.T) {
	l := newLimiter(1000)
	ctx := context.Background()
	start := time.Now()
	for range 100 {
		if err := l.wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// 100 documents at 1000/s: 0.1s less the burst allowance.
	if d := time.Since(start); d < 100*time.Millisecond-slack-time.Millisecond {
		t.Errorf("100 waits at 1000/s took %v", d)
	}
	if newLimiter(0) != nil {
		t.Error("a zero rate limits")
	}
	if err := (*limiter)(nil).wait(ctx); err != nil {
		t.Errorf("nil limiter: %v", err)
	}

	slow := newLimiter(0.5)
	_ = slow.wait(ctx) // the first passes
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := slow.wait(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait past the deadline: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a cancelled wait took %v", d)
	}
}

func TestJudge(t *testing.T) {
	m := &memcell.MemCell{ID: memcell.NewID(), Timestamp: time.Date(2026, 1, 12, 10, 30, 0, 0, time.UTC), Summary: ptr("a"), Revision: 3}
	enc := func(f func(*memcell.MemCell)) []byte {
		c := *m
		f(&c)
		v, err := memcell.Encode(&c)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	want := enc(func(*memcell.MemCell) {})
	for _, tc := range []struct {
		name    string
		held    []byte
		present bool
		kind    Kind
	}{
		{"equal", want, true, ""},
		{"missing", nil, false, Missing},
		{"same value, other spelling", []byte(strings.Replace(string(want), `"revision":3`, `"revision":3.0`, 1)), true, ""},
		{"tampered", enc(func(c *memcell.MemCell) { c.Summary = ptr("b") }), true, Differs},
		{"older", enc(func(c *memcell.MemCell) { c.Summary, c.Revision = ptr("b"), 2 }), true, Stale},
		{"newer", enc(func(c *memcell.MemCell) { c.Summary, c.Revision = ptr("b"), 4 }), true, Differs},
		{"not JSON", []byte("{"), true, Differs},
	} {
		kind, _, _ := judge(want, m.Revision, tc.held, tc.present)
		if kind != tc.kind {
			t.Errorf("%s: judge = %q, want %q", tc.name, kind, tc.kind)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestKeySet(t *testing.T) {
	seed := newKeySet(maphash.MakeSeed()).seed
	ids := []memcell.ID{memcell.NewID(), memcell.NewID(), memcell.NewID()}
	a, b := newKeySet(seed), newKeySet(seed)
	for i := range ids {
		a.add(ids[i])
		b.add(ids[len(ids)-1-i])
	}
	if !a.equal(&b) {
		t.Error("the same ids in another order differ")
	}
	c := newKeySet(seed)
	c.add(ids[0])
	c.add(ids[1])
	c.add(memcell.NewID())
	if a.equal(&c) {
		t.Error("sets of equal size with different ids are equal")
	}
	d := newKeySet(seed)
	d.add(ids[0])
	d.add(ids[0])
	d.add(ids[1])
	d.add(ids[2])
	if a.equal(&d) {
		t.Error("a duplicate goes unnoticed")
	}
}
