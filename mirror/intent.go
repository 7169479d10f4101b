package mirror

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
)

// Every primary write leaves a mirror intent in the primary, in the same
// atomic operation (memcell.Primary: a mark on the document, or a pending
// note before a hard delete). Once the write's KV side is done, the intent
// is handed to the clearer, which removes the intents of many writes with
// one primary round trip, after making the KV writes durable (kv.Sync): so
// an intent is gone only once its KV write would survive a crash, and the
// replayer (reconcile.Replayer) redoes every write whose intent a crash or a
// KV failure left behind.

// DefaultClearInterval is the default Options.ClearInterval.
const DefaultClearInterval = time.Second

// clearBatch is how many intents make the clearer work before its tick.
const clearBatch = 1000

// maxClearQueue bounds the intents waiting to be cleared; beyond it they
// are left in the primary for the replayer.
const maxClearQueue = 100_000

// clearTimeout bounds one clearing: the KV sync and the primary's clear,
// which on FerretDB waits its turn for SQLite's write lock under load.
const clearTimeout = time.Minute

// maxClearHold bounds how long the clearer holds back intents that would
// not fill one of the primary's bulk commands (see clearBatcher).
const maxClearHold = 5 * time.Second

// A clearBatcher is a primary that clears intents in bulk commands of a
// given size (mongostore on FerretDB: 50). The clearer then sends whole
// commands only, and holds the rest back for up to maxClearHold, so that
// each command carries as many intents as it can.
type clearBatcher interface {
	ClearBatch() int
}

// clearer removes done intents from the primary in batches.
type clearer struct {
	primary  Primary
	kv       kv.Store
	log      *slog.Logger
	interval time.Duration
	metrics  *metrics

	batch int // intents per primary command, when the primary says

	mu    sync.Mutex
	queue []memcell.Intent
	since time.Time // when the oldest queued intent was queued

	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newClearer(primary Primary, store kv.Store, log *slog.Logger, interval time.Duration, m *metrics) *clearer {
	c := &clearer{
		primary: primary, kv: store, log: log, interval: interval, metrics: m,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if b, ok := primary.(clearBatcher); ok {
		c.batch = b.ClearBatch()
	}
	go c.run()
	return c
}

// add hands over intents whose KV writes are done. It never waits for I/O.
func (c *clearer) add(intents ...memcell.Intent) {
	c.mu.Lock()
	if len(c.queue)+len(intents) > maxClearQueue {
		c.mu.Unlock()
		c.metrics.intentsLeft.Add(float64(len(intents)))
		return
	}
	if len(c.queue) == 0 {
		c.since = time.Now()
	}
	c.queue = append(c.queue, intents...)
	n := len(c.queue)
	c.mu.Unlock()
	if n >= clearBatch {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

func (c *clearer) run() {
	defer close(c.done)
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		case <-c.kick:
		}
		c.flush(false)
	}
}

// flush clears the queued intents: first the KV is made durable, then the
// primary forgets the intents. When either fails the intents stay in the
// primary, where the replayer finds them. Unless final, it leaves queued
// the intents that would only part-fill a primary command, for up to
// maxClearHold.
func (c *clearer) flush(final bool) {
	c.mu.Lock()
	n := len(c.queue)
	if !final && c.batch > 1 && time.Since(c.since) < maxClearHold {
		n -= n % c.batch
	}
	batch := c.queue[:n:n]
	c.queue = append([]memcell.Intent(nil), c.queue[n:]...)
	c.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), clearTimeout)
	err := kv.Sync(ctx, c.kv)
	cancel()
	if err != nil {
		c.metrics.intentsLeft.Add(float64(len(batch)))
		c.log.Warn("mirror: kv sync failed; the write intents stay for the replayer", "intents", len(batch), "error", err)
		return
	}
	// A backlog (a long load on a slow primary) is cleared a chunk at a
	// time, each within its own clearTimeout, so that a slow primary
	// delays the clearing rather than failing all of it.
	for i, chunk := 0, []memcell.Intent(nil); i < len(batch); i += len(chunk) {
		chunk = batch[i:min(i+clearBatch, len(batch))]
		if err := c.clear(chunk); err != nil {
			c.metrics.intentsLeft.Add(float64(len(batch) - i))
			c.log.Warn("mirror: clearing write intents failed; they stay for the replayer", "intents", len(batch)-i, "cleared", i, "error", err)
			return
		}
	}
}

// clear removes one chunk of intents from the primary.
func (c *clearer) clear(chunk []memcell.Intent) error {
	ctx, cancel := context.WithTimeout(context.Background(), clearTimeout)
	defer cancel()
	if err := c.primary.ClearIntents(ctx, chunk); err != nil {
		return err
	}
	c.metrics.intentsCleared.Add(float64(len(chunk)))
	c.metrics.intentClears.Inc()
	return nil
}

// close stops the clearer after clearing what is queued.
func (c *clearer) close() {
	c.stopOnce.Do(func() {
		close(c.stop)
		<-c.done
		c.flush(true)
	})
}

// docIntents returns the intents the documents carry.
func docIntents(docs []*memcell.MemCell) []memcell.Intent {
	out := make([]memcell.Intent, 0, len(docs))
	for _, d := range docs {
		if !d.Intent.IsZero() {
			out = append(out, memcell.Intent{ID: d.ID, Mark: d.Intent})
		}
	}
	return out
}
