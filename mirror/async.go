package mirror

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
)

// The asynchronous mirror (Flags.Mode ModeAsync).
//
// A write returns once the primary has answered and its KV writes are in a
// queue in memory (MirrorQueued). Workers take what is queued, as much as
// one batch holds, and apply it in one BatchPut and one BatchDelete: on
// Redis one pipeline each. While a round trip is under way the next writes
// gather, so the busier the service the larger the batches (group commit)
// without any write waiting for a batch to fill.
//
// What guarantees what:
//
//   - Nothing is lost. Every primary write carries its durable mirror
//     intent (intent.go) from the same atomic operation; it is cleared only
//     once the KV holds the write durably. A write the queue cannot take
//     (full, or closing), a batch the KV refuses, a process that dies with
//     writes queued: the intent stays, the ids of the first two are also
//     noted as pending (off the request path, by the queue's recorder),
//     and the replayer (reconcile.Replayer) writes them.
//   - Enqueueing never waits on the KV: it takes one mutex, held for a map
//     lookup.
//   - Per key, the queue keeps one write: a later write of a key still
//     waiting replaces it (when its revision is higher, or equal and a
//     delete), and a key being written is not taken again until that write
//     is done. So the KV sees each key's writes in revision order. The
//     revision guards (kv.Store) make any other order harmless too: the
//     replayer, a repair or another replica writing the same key can never
//     put an older state over a newer one.
//   - A validated read of a document whose KV write is waiting or under
//     way reports Pending, not a difference.

// Mirror modes (Flags.Mode).
const (
	// ModeAsync queues the KV writes and answers once the primary has.
	ModeAsync = "async"
	// ModeSync makes each write wait for its KV write (bounded by
	// Options.KVTimeout) and report its outcome.
	ModeSync = "sync"
)

// DefaultMode is the mirror mode when Flags.Mode is unset.
const DefaultMode = ModeAsync

// Defaults of the asynchronous mirror's bounds.
const (
	// DefaultQueueBytes bounds the memory the queued writes hold.
	DefaultQueueBytes = 64 << 20
	// DefaultWorkers is how many batches may be under way at once.
	DefaultWorkers = 4
	// DefaultDrainTimeout bounds how long Close waits for the queue.
	DefaultDrainTimeout = 10 * time.Second
)

// maxBatchJobs bounds the writes one worker applies in one backend round.
const maxBatchJobs = 256

// jobOverhead is what a queued write costs besides its key and value: the
// job, its map entry and its place in the order.
const jobOverhead = 192

// maxSpill bounds the ids waiting to be noted as pending; beyond it only
// their intents say that the KV missed them.
const maxSpill = 100_000

// spillInterval is how often the recorder notes the ids the queue could
// not mirror.
const spillInterval = 200 * time.Millisecond

// A job is one queued KV write: a put of val at rev, or a delete at rev.
type job struct {
	key     string
	id      memcell.ID
	val     []byte
	buf     *[]byte // the pooled buffer val is in, if any
	del     bool
	rev     uint64
	op      string
	intents []memcell.Intent
	groups  []*jobGroup
	queued  time.Time // when the key's oldest waiting write was queued
}

// A jobGroup is the jobs of one hard delete, whose pending notes share one
// intent: it is cleared once every job of the group is done, and never
// when one failed (the notes then stay for the replayer).
type jobGroup struct {
	intent memcell.Intent
	left   atomic.Int64
	failed atomic.Bool
}

func newJobGroup(intent memcell.Intent, n int) *jobGroup {
	g := &jobGroup{intent: intent}
	g.left.Store(int64(n))
	return g
}

// settle counts one job of the group done, and returns the group's intent
// to clear when it was the last and none failed.
func (g *jobGroup) settle(ok bool) (memcell.Intent, bool) {
	if !ok {
		g.failed.Store(true)
	}
	return g.intent, g.left.Add(-1) == 0 && !g.failed.Load()
}

// The errors of a write the queue did not take.
var (
	errQueueFull   = errors.New("mirror: the queue of KV writes is full; left to the replayer")
	errKVFailing   = errors.New("mirror: the KV fails; left to the replayer")
	errQueueClosed = errors.New("mirror: the repository is closing; left to the replayer")
)

// queued reports whether a write made with ctx goes through the queue: the
// mode is async and no transaction holds the write.
func (r *Repository) queued(ctx context.Context) bool {
	return r.flags.Load().Mode == ModeAsync && txFrom(ctx) == nil
}

// enqueue queues jobs and reports MirrorQueued, or MirrorFailed when the
// queue could not take some of them (their intents and notes cover them).
func (r *Repository) enqueue(jobs []*job) Mirror {
	if len(jobs) == 0 {
		return Mirror{Status: MirrorSkipped}
	}
	if dropped, reason := r.queue.enqueue(jobs); len(dropped) > 0 {
		err := map[string]error{dropFull: errQueueFull, dropFailing: errKVFailing, dropClosed: errQueueClosed}[reason]
		return Mirror{Status: MirrorFailed, Err: err}
	}
	return Mirror{Status: MirrorQueued}
}

// size is the memory the job holds: its key, its value's buffer and the
// overhead.
func (j *job) size() int64 { return int64(len(j.key)+cap(j.val)) + jobOverhead }

// release gives the job's value buffer back to the pool; the job's value
// must not be used afterwards.
func (j *job) release() {
	if j.buf != nil && cap(*j.buf) <= maxPooledBuffer {
		encodeBuffers.Put(j.buf)
	}
	j.buf, j.val = nil, nil
}

// maxPooledBuffer is the largest encoding buffer given back to the pool.
const maxPooledBuffer = 64 << 10

// supersedes reports whether j may replace old, a waiting write of the
// same key: its revision is higher, or equal and j deletes.
func (j *job) supersedes(old *job) bool {
	return j.rev > old.rev || (j.rev == old.rev && j.del)
}

// queue is the asynchronous mirror's queue and its workers.
type queue struct {
	r   *Repository
	max int64

	mu       sync.Mutex
	work     *sync.Cond // signalled when writes are queued, or on stop
	waiting  map[string]*job
	order    []*job // the waiting jobs, oldest first
	inflight map[string]time.Time
	bytes    int64
	closed   bool // takes no more writes
	stopped  bool // workers take no more batches
	// failing is set while the KV fails: the last batch failed. The queue
	// then holds one write at a time, a probe, and leaves the others to
	// the pending record at once, so that an outage neither fills memory
	// nor sends the KV more than a probe per backoff; the first batch that
	// succeeds clears it.
	failing bool
	// started[w] is when worker w's batch under way began; zero when idle.
	// A batch under way for longer than stallAfter makes the queue behave
	// as failing too: the KV has stalled.
	started    []time.Time
	stallAfter time.Duration
	spill      []memcell.ID
	spillOps   string

	workers   sync.WaitGroup
	halt      chan struct{} // closed when the workers are to stop
	recorder  chan struct{} // closed to stop the recorder
	recorded  chan struct{} // closed when the recorder has stopped
	closeOnce sync.Once
}

func newQueue(r *Repository, maxBytes int64, workers int, stallAfter time.Duration) *queue {
	q := &queue{
		r: r, max: maxBytes, stallAfter: stallAfter,
		waiting: map[string]*job{}, inflight: map[string]time.Time{},
		recorder: make(chan struct{}), recorded: make(chan struct{}), halt: make(chan struct{}),
	}
	q.work = sync.NewCond(&q.mu)
	q.workers.Add(workers)
	q.started = make([]time.Time, workers)
	for w := range workers {
		go q.worker(w)
	}
	go q.record()
	return q
}

// Why the queue did not take a write (memcell_mirror_queue_drops_total's
// reason label).
const (
	dropFull    = "full"       // the queue is at its byte bound
	dropFailing = "kv_failing" // the KV fails; a probe is under way
	dropClosed  = "closed"     // the repository is closing
)

// enqueue queues jobs and returns those it could not take, with why (the
// reason of the last), which the caller leaves to their intents; their ids
// are noted as pending.
func (q *queue) enqueue(jobs []*job) (dropped []*job, reason string) {
	now := time.Now()
	q.mu.Lock()
	added := false
	drop := func(j *job, why string) {
		dropped, reason = append(dropped, j), why
		q.r.metrics.queueDrops.WithLabelValues(why).Inc()
	}
	for _, j := range jobs {
		switch {
		case q.closed:
			drop(j, dropClosed)
			continue
		case (q.failing || q.stalledLocked(now)) && (len(q.waiting) > 0 || len(q.inflight) > 0):
			drop(j, dropFailing)
			continue
		}
		if old, ok := q.waiting[j.key]; ok {
			if !j.supersedes(old) {
				// An older state of a key whose newer state waits: it
				// is done once that one is.
				old.intents = append(old.intents, j.intents...)
				old.groups = append(old.groups, j.groups...)
				j.release()
				continue
			}
			delta := int64(cap(j.val) - cap(old.val))
			if delta > 0 && q.bytes+delta > q.max {
				drop(j, dropFull)
				continue
			}
			old.release()
			old.val, old.buf, old.del, old.rev, old.op = j.val, j.buf, j.del, j.rev, j.op
			old.intents = append(old.intents, j.intents...)
			old.groups = append(old.groups, j.groups...)
			q.bytes += delta
			continue
		}
		if q.bytes+j.size() > q.max {
			drop(j, dropFull)
			continue
		}
		j.queued = now
		q.waiting[j.key] = j
		q.order = append(q.order, j)
		q.bytes += j.size()
		added = true
	}
	q.mu.Unlock()
	if added {
		q.work.Signal()
	}
	if len(dropped) > 0 {
		q.note(dropped)
		for _, j := range dropped {
			j.release()
		}
	}
	return dropped, reason
}

// busy reports whether key has a write waiting or under way.
func (q *queue) busy(key string) bool {
	q.mu.Lock()
	_, waiting := q.waiting[key]
	_, inflight := q.inflight[key]
	q.mu.Unlock()
	return waiting || inflight
}

// DefaultStallAfter is the default Options.StallAfter.
const DefaultStallAfter = time.Second

// stalledLocked reports whether a batch has been under way for longer
// than stallAfter.
func (q *queue) stalledLocked(now time.Time) bool {
	for _, t := range q.started {
		if !t.IsZero() && now.Sub(t) > q.stallAfter {
			return true
		}
	}
	return false
}

// take waits for writes and returns up to maxBatchJobs of them whose keys
// are not being written, marked as under way by worker w; nil once
// stopped.
func (q *queue) take(w int) []*job {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if q.stopped {
			return nil
		}
		if batch := q.takeLocked(); len(batch) > 0 {
			q.started[w] = time.Now()
			if len(q.order) > 0 {
				q.work.Signal() // more for another worker
			}
			return batch
		}
		q.work.Wait()
	}
}

func (q *queue) takeLocked() []*job {
	var batch []*job
	kept := 0
	for i, j := range q.order {
		if len(batch) == maxBatchJobs {
			kept += copy(q.order[kept:], q.order[i:])
			break
		}
		if _, busy := q.inflight[j.key]; busy {
			q.order[kept] = j
			kept++
			continue
		}
		batch = append(batch, j)
		delete(q.waiting, j.key)
		q.inflight[j.key] = j.queued
		q.bytes -= j.size()
	}
	clear(q.order[kept:])
	q.order = q.order[:kept]
	return batch
}

// finish marks a batch done.
func (q *queue) finish(w int, batch []*job) {
	q.mu.Lock()
	q.started[w] = time.Time{}
	for _, j := range batch {
		delete(q.inflight, j.key)
	}
	more := len(q.order) > 0
	q.mu.Unlock()
	if more {
		q.work.Signal() // a key held back behind this batch may go now
	}
}

// After a failed batch a worker waits before its next one, doubling from
// failBackoff up to maxFailBackoff, so that a dead KV is not hammered; the
// queue meanwhile fills up to its bound, and enqueueing never waits.
const (
	failBackoff    = 50 * time.Millisecond
	maxFailBackoff = time.Second
)

func (q *queue) worker(w int) {
	defer q.workers.Done()
	var wait time.Duration
	for {
		batch := q.take(w)
		if batch == nil {
			return
		}
		ok := q.apply(batch)
		for _, j := range batch {
			j.release()
		}
		q.finish(w, batch)
		if ok {
			wait = 0
			continue
		}
		wait = min(max(2*wait, failBackoff), maxFailBackoff)
		select {
		case <-q.halt:
		case <-time.After(wait):
		}
	}
}

// apply writes a batch: its puts in one BatchPut, its deletes in one
// BatchDelete. The intents of what the KV took (stored, or refused for a
// newer copy) go to the clearer; the ids of what failed are noted. It
// reports whether every write succeeded.
func (q *queue) apply(batch []*job) bool {
	r := q.r
	r.metrics.batchSize.Observe(float64(len(batch)))
	var puts, dels []*job
	for _, j := range batch {
		if j.del {
			dels = append(dels, j)
		} else {
			puts = append(puts, j)
		}
	}
	ctx := context.Background()
	ok := true
	if len(puts) > 0 {
		entries := make([]kv.Entry, len(puts))
		for i, j := range puts {
			entries[i] = kv.Entry{Key: j.key, Value: j.val, Rev: j.rev}
		}
		var mir Mirror
		if len(entries) == 1 {
			mir = q.r.putKV(ctx, puts[0].op, entries[0])
		} else {
			mir = q.r.batchPutKV(ctx, puts[0].op, entries)
		}
		q.settle(puts, mir)
		ok = mir.Status != MirrorFailed
	}
	if len(dels) > 0 {
		ds := make([]kv.Deletion, len(dels))
		for i, j := range dels {
			ds[i] = kv.Deletion{Key: j.key, Rev: j.rev}
		}
		mir := q.r.deleteKV(ctx, dels[0].op, ds)
		q.settle(dels, mir)
		ok = ok && mir.Status != MirrorFailed
	}
	return ok
}

// settle hands the intents of applied jobs to the clearer, or notes the
// ids of failed ones as pending.
func (q *queue) settle(jobs []*job, mir Mirror) {
	failing := mir.Status == MirrorFailed
	q.mu.Lock()
	was := q.failing
	q.failing = failing
	q.mu.Unlock()
	switch {
	case failing && !was:
		q.r.log.Warn("mirror: the KV fails; until it answers again, writes go to the pending record, one at a time to the KV as a probe", "kv_backend", q.r.backend)
	case !failing && was:
		q.r.log.Info("mirror: the KV answers again; writes are queued", "kv_backend", q.r.backend)
	}
	if mir.Status == MirrorFailed {
		q.r.log.Warn("mirror: queued kv writes failed; recorded for the replayer", "op", jobs[0].op,
			"kv_backend", q.r.backend, "key", jobs[0].key, "keys", len(jobs), "error", mir.Err)
		q.note(jobs)
		return
	}
	var intents []memcell.Intent
	for _, j := range jobs {
		intents = append(intents, j.intents...)
		for _, g := range j.groups {
			if in, last := g.settle(true); last {
				intents = append(intents, in)
			}
		}
	}
	q.r.done(intents...)
}

// note hands the ids of jobs the queue could not mirror to the recorder,
// which notes them as pending in the primary (memcell.Primary.RecordPending)
// so that the replayer writes them at its next pass. Their intents stay
// anyway.
func (q *queue) note(jobs []*job) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, j := range jobs {
		for _, g := range j.groups {
			g.settle(false)
		}
		if len(q.spill) >= maxSpill {
			q.r.metrics.intentsLeft.Inc()
			continue
		}
		q.spill = append(q.spill, j.id)
		q.spillOps = j.op
	}
}

// record notes the spilled ids in the primary every spillInterval, one
// primary round trip for all of them, until the queue closes.
func (q *queue) record() {
	defer close(q.recorded)
	t := time.NewTicker(spillInterval)
	defer t.Stop()
	for {
		select {
		case <-q.recorder:
			q.flushSpill()
			return
		case <-t.C:
			q.flushSpill()
		}
	}
}

func (q *queue) flushSpill() {
	q.mu.Lock()
	ids, op := q.spill, q.spillOps
	q.spill = nil
	q.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), clearTimeout)
	defer cancel()
	if _, err := q.r.primary.RecordPending(ctx, ids, op+": not mirrored from the queue"); err != nil {
		q.r.log.Warn("mirror: could not note the unmirrored keys as pending; their write intents remain", "keys", len(ids), "error", err)
	}
}

// stats returns the queue's depth (writes waiting or under way), the bytes
// the waiting ones hold, and when the oldest of them was queued (zero when
// none is).
func (q *queue) stats() (depth int, bytes int64, oldest time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.order) > 0 {
		oldest = q.order[0].queued
	}
	for _, t := range q.inflight {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return len(q.waiting) + len(q.inflight), q.bytes, oldest
}

// drain waits until nothing is waiting or under way, or ctx ends.
func (q *queue) drain(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if n, _, _ := q.stats(); n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// close takes no more writes, waits up to timeout for the queue to drain,
// stops the workers (after the batches under way, each bounded by the KV
// timeout), and notes what is left as pending; the intents cover it too.
func (q *queue) close(timeout time.Duration) {
	q.closeOnce.Do(func() {
		q.mu.Lock()
		q.closed = true
		q.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := q.drain(ctx)
		cancel()
		q.mu.Lock()
		q.stopped = true
		left := q.order
		q.order, q.waiting, q.bytes = nil, map[string]*job{}, 0
		q.mu.Unlock()
		close(q.halt)
		q.work.Broadcast()
		q.workers.Wait()
		if err != nil {
			q.r.log.Warn("mirror: shutdown: the queue did not drain in time; its writes are left to the replayer",
				"left", len(left), "timeout", timeout)
			q.note(left)
		}
		close(q.recorder)
		<-q.recorded
	})
}
