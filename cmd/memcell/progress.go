package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/memcell/memcell/reconcile"
)

// minRateWindow is how long a phase must have run, from its first progress
// report, before its bar shows a rate and the time left: an earlier rate
// would rest on one batch (or on the counts a resumed job starts from).
const minRateWindow = 3 * time.Second

// progressReporter returns the Progress callback for mode and the function
// that ends the display, given the job's error (nil when it succeeded).
// In bar mode, while the bars are drawn, the lines written to logs (the
// job's log) are printed above them.
func progressReporter(mode string, w io.Writer, logs *switchWriter) (func(reconcile.Progress), func(error)) {
	if mode == "auto" {
		mode = "json"
		if isTerminal(w) {
			mode = "bar"
		}
	}
	switch mode {
	case "bar":
		d := newBarDisplay(logs, mpb.WithOutput(w), mpb.WithAutoRefresh(),
			mpb.ContainerOptional(mpb.WithRefreshRate(time.Second), !isTerminal(w)))
		return d.update, d.finish
	case "json":
		enc := json.NewEncoder(w)
		var last time.Time
		var phase string
		var pending *reconcile.Progress // the last report not written
		emit := func(p reconcile.Progress) {
			last, phase, pending = time.Now(), p.Phase, nil
			_ = enc.Encode(map[string]any{"progress": p.Job, "phase": p.Phase, "scanned": p.Scanned, "kv_scanned": p.KVScanned,
				"total": p.Total, "differences": p.Differences, "repaired": p.Repaired, "elapsed_seconds": p.Elapsed.Seconds()})
		}
		return func(p reconcile.Progress) {
				// A new phase is written at once, the rest every few
				// seconds; the last report is written at the end.
				if p.Phase == phase && time.Since(last) < 5*time.Second {
					pending = &p
					return
				}
				emit(p)
			}, func(error) {
				if pending != nil {
					emit(*pending)
				}
			}
	}
	return nil, func(error) {}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// switchWriter writes to a writer that can change: a job's log lines go
// through the progress bars' container while bars are drawn, so that they
// are printed above the bars, not onto them.
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// swap makes s write to w and returns the writer it wrote to.
func (s *switchWriter) swap(w io.Writer) io.Writer {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.w
	s.w = w
	return old
}

// barDisplay draws a job's progress as one bar per phase: the primary pass
// (documents read, out of the primary's estimated count), then for verify
// and repair the KV pass (keys read, out of the documents the primary pass
// read, which the KV holds about as many keys as).
type barDisplay struct {
	p    *mpb.Progress
	logs *switchWriter
	prev io.Writer // what logs wrote to before the bars
	bars map[string]*phaseBar
	cur  *phaseBar
}

// phaseBar is the bar of one phase and the counts it shows.
type phaseBar struct {
	phase string
	bar   *mpb.Bar

	mu             sync.Mutex
	first, current int64         // the count at the phase's first report, and now
	firstAt, at    time.Duration // the job's elapsed time then and now
	total          int64         // 0: unknown
}

func newBarDisplay(logs *switchWriter, opts ...mpb.ContainerOption) *barDisplay {
	return &barDisplay{p: mpb.New(opts...), logs: logs, bars: map[string]*phaseBar{}}
}

// phaseName names a phase on its bar.
func phaseName(phase string) string {
	switch phase {
	case "primary":
		return "primary pass"
	case "kv":
		return "KV pass"
	}
	return phase
}

// phaseCounts is the count and total a report gives the bar of phase: the
// primary documents read out of the estimate, or the KV keys read out of
// the documents read.
func phaseCounts(phase string, p reconcile.Progress) (count, total int64) {
	if phase == "kv" {
		return p.KVScanned, p.Scanned
	}
	return p.Scanned, p.Total
}

// update shows a progress report: it ends the bar of the previous phase
// when the phase changes and moves the bar of the report's phase.
func (d *barDisplay) update(p reconcile.Progress) {
	count, total := phaseCounts(p.Phase, p)
	pb := d.bars[p.Phase]
	if pb == nil {
		if d.cur != nil {
			// The report of a new phase has the final count of the
			// previous one.
			last, _ := phaseCounts(d.cur.phase, p)
			d.cur.mu.Lock()
			d.cur.current, d.cur.total, d.cur.at = last, last, p.Elapsed
			d.cur.mu.Unlock()
			d.cur.bar.SetCurrent(last)
			d.cur.bar.SetTotal(-1, true)
		}
		if d.logs != nil && d.prev == nil {
			d.prev = d.logs.swap(d.p)
		}
		pb = &phaseBar{phase: p.Phase, first: count, firstAt: p.Elapsed}
		// A bar made with total 0 does not complete by itself when the
		// count passes an estimate; SetTotal below sets what it shows.
		pb.bar = d.p.New(0, mpb.BarStyle(),
			mpb.PrependDecorators(decor.Name(p.Job+": "+phaseName(p.Phase), decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return pb.text() }, decor.WCSyncSpaceR)))
		d.bars[p.Phase] = pb
		d.cur = pb
	}
	pb.mu.Lock()
	pb.current, pb.at, pb.total = count, p.Elapsed, max(total, count)
	pb.mu.Unlock()
	if total > 0 {
		pb.bar.SetTotal(max(total, count), false)
	}
	pb.bar.SetCurrent(count)
}

// finish ends the display: the last bar completes, or stops where it is if
// the job failed; log lines go straight to their writer again.
func (d *barDisplay) finish(err error) {
	if d.cur != nil {
		if err != nil {
			d.cur.bar.Abort(false)
		} else {
			d.cur.bar.SetTotal(-1, true)
		}
	}
	d.p.Wait()
	if d.prev != nil {
		d.logs.swap(d.prev)
	}
}

// text is what the bar shows after it: the counts, and once the phase has
// run for minRateWindow its rate and the time left.
func (pb *phaseBar) text() string {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	s := fmt.Sprintf("%d", pb.current)
	if pb.total > 0 {
		s += fmt.Sprintf(" / %d", pb.total)
	}
	return s + rateText(pb.first, pb.current, pb.total, pb.firstAt, pb.at)
}

// rateText is ", N docs/s" and, when the total is known, ", T left", for a
// phase that counted from first to current between the job's elapsed times
// firstAt and at; "" before the phase has run minRateWindow, so that the
// first rate shown rests on more than one batch.
func rateText(first, current, total int64, firstAt, at time.Duration) string {
	window := at - firstAt
	if window < minRateWindow || current < first {
		return ""
	}
	rate := float64(current-first) / window.Seconds()
	s := fmt.Sprintf(", %.0f docs/s", rate)
	if rate < 10 {
		s = fmt.Sprintf(", %.1f docs/s", rate)
	}
	if total > current && rate > 0 {
		left := time.Duration(float64(total-current) / rate * float64(time.Second))
		s += ", " + left.Round(time.Second).String() + " left"
	}
	return s
}
