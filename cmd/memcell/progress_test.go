package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"

	"github.com/memcell/memcell/reconcile"
)

// lockedBuffer is a bytes.Buffer safe for the bars' goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBarDisplay draws a verify job's bars into a buffer: one bar per pass,
// the KV pass counting KV keys (not sitting at 100 % from the start), a
// sane rate, and the log lines written meanwhile printed above the bars
// rather than onto them.
func TestBarDisplay(t *testing.T) {
	var out, direct lockedBuffer
	logs := &switchWriter{w: &direct}
	d := newBarDisplay(logs, mpb.WithOutput(&out), mpb.WithWidth(120), mpb.WithAutoRefresh(), mpb.WithRefreshRate(time.Millisecond))
	p := reconcile.Progress{Job: "verify", Phase: "primary", Total: 1000}
	for i, scanned := range []int64{500, 700, 990} {
		p.Scanned, p.Elapsed = scanned, time.Duration(i+1)*2*time.Second
		d.update(p)
		if i == 0 {
			fmt.Fprintln(logs, `level=WARN msg="reconcile: missing copy"`)
		}
	}
	// The first report of the KV pass has the primary pass's final count.
	p.Phase, p.Scanned = "kv", 1000
	p.KVScanned, p.Elapsed = 10, 7*time.Second
	d.update(p)
	time.Sleep(50 * time.Millisecond) // a few frames
	kvStart := out.String()
	p.KVScanned, p.Elapsed = 1000, 11*time.Second
	d.update(p)
	d.finish(nil)
	fmt.Fprintln(logs, "after the bars")

	got := out.String()
	last := strings.LastIndex(got, "verify: primary pass")
	if last < 0 {
		t.Fatalf("no primary pass bar in:\n%s", got)
	}
	frame := got[last:]
	lines := strings.Split(strings.TrimSpace(frame), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "verify: KV pass") {
		t.Fatalf("last frame %q, want a primary pass bar and a KV pass bar", frame)
	}
	// The bar ends at the count the KV pass's first report gives: 500
	// more documents in the 5 s after the pass's first report.
	if want := "1000 / 1000, 100 docs/s"; !strings.Contains(lines[0], want) {
		t.Errorf("primary pass bar %q, want %q", lines[0], want)
	}
	if want := "1000 / 1000, 248 docs/s"; !strings.Contains(lines[1], want) {
		t.Errorf("KV pass bar %q, want %q", lines[1], want)
	}
	if i := strings.Index(got, "reconcile: missing copy"); i < 0 || i > last || strings.Contains(direct.String(), "missing copy") {
		t.Errorf("the log line written while the bars ran is not above them:\n%s\n(directly: %q)", got, direct.String())
	}
	if !strings.Contains(direct.String(), "after the bars") || strings.Contains(got, "after the bars") {
		t.Errorf("a log line after the bars went to %q, not straight to the log's writer", got)
	}
	// Early in the KV pass its bar shows 10 of 1000 keys, not 100 %.
	if i := strings.LastIndex(kvStart, "verify: KV pass"); i < 0 || !strings.Contains(kvStart[i:], " 10 / 1000") {
		t.Errorf("early KV pass frames:\n%s\nwant its bar at 10 / 1000", kvStart)
	}
}

// TestBarDisplayEnds checks that the display ends when the job failed
// before any report or during a pass (that bar stops where it is).
func TestBarDisplayEnds(t *testing.T) {
	var out lockedBuffer
	newBarDisplay(nil, mpb.WithOutput(&out), mpb.WithAutoRefresh()).finish(errors.New("no primary"))
	d := newBarDisplay(&switchWriter{w: &out}, mpb.WithOutput(&out), mpb.WithWidth(100), mpb.WithAutoRefresh(), mpb.WithRefreshRate(time.Millisecond))
	d.update(reconcile.Progress{Job: "sync", Phase: "primary", Scanned: 40, Total: 100, Elapsed: time.Second})
	d.finish(errors.New("cancelled"))
	if got := out.String(); !strings.Contains(got, "sync: primary pass") || !strings.Contains(got, "40 / 100") {
		t.Errorf("output %q, want the bar stopped at 40 / 100", got)
	}
}

// TestRateText checks that no rate shows before a phase has run for
// minRateWindow (a resumed job starts from the counts of its checkpoint,
// which once showed as tens of millions of documents per second), and the
// rate and the time left after.
func TestRateText(t *testing.T) {
	for _, tc := range []struct {
		first, current, total int64
		firstAt, at           time.Duration
		want                  string
	}{
		{0, 500, 1000, time.Second, time.Second, ""},
		{66173557, 66173557, 70000000, time.Millisecond, 2 * time.Second, ""},
		{0, 300, 1000, time.Second, 4 * time.Second, ", 100 docs/s, 7s left"},
		{66173557, 66173857, 0, time.Second, 4 * time.Second, ", 100 docs/s"},
		{0, 15, 45, 0, 3 * time.Second, ", 5.0 docs/s, 6s left"},
		{0, 1000, 1000, 0, 10 * time.Second, ", 100 docs/s"},
	} {
		if got := rateText(tc.first, tc.current, tc.total, tc.firstAt, tc.at); got != tc.want {
			t.Errorf("rateText(%d, %d, %d, %v, %v) = %q, want %q", tc.first, tc.current, tc.total, tc.firstAt, tc.at, got, tc.want)
		}
	}
}
