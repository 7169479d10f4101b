package reconcile

import (
	"context"
	"time"
)

// limiter paces documents to a rate. It is a token bucket with a small
// bucket: after an idle spell at most slack's worth of documents pass at
// once, and a sleep that overshoots is made up by the documents after it
// passing without sleeping, so the long-run rate is the one asked for.
//
// golang.org/x/time/rate would do the same, but it is not a requirement of
// this module (only an unused node of its module graph) and adding it means
// changing go.mod; pacing one goroutine needs these few lines.
//
// A limiter is used by one goroutine; a nil limiter does not limit.
type limiter struct {
	interval time.Duration // time per document
	next     time.Time     // when the next document may pass
}

// slack is the burst allowance of a limiter, as a span of time.
const slack = 20 * time.Millisecond

func newLimiter(perSecond float64) *limiter {
	if perSecond <= 0 {
		return nil
	}
	return &limiter{interval: time.Duration(float64(time.Second) / perSecond)}
}

// wait blocks until one more document may pass, or ctx ends (ctx.Err()).
func (l *limiter) wait(ctx context.Context) error {
	if l == nil {
		return ctx.Err()
	}
	now := time.Now()
	if floor := now.Add(-slack); l.next.Before(floor) {
		l.next = floor
	}
	at := l.next
	l.next = l.next.Add(l.interval)
	d := at.Sub(now)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
