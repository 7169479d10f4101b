package mirror

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the mirror's Prometheus metrics, registered on the caller's
// registry. Labels are backend, op, and outcome or result: small closed sets,
// never ids.
type metrics struct {
	writeFailures   *prometheus.CounterVec
	readFailures    *prometheus.CounterVec
	inconsistencies *prometheus.CounterVec
	writeLatency    *prometheus.HistogramVec
	readLatency     *prometheus.HistogramVec
	validations     *prometheus.CounterVec
	operations      *prometheus.CounterVec
	writesSkipped   *prometheus.CounterVec
	intentsCleared  prometheus.Counter
	intentClears    prometheus.Counter
	intentsLeft     prometheus.Counter
	fallbackReads   *prometheus.CounterVec
	batchSize       prometheus.Histogram
	queueDrops      *prometheus.CounterVec
}

// kvBuckets span 50µs to ~1.6s: in-process stores answer in microseconds,
// Redis in tens to hundreds of them.
var kvBuckets = prometheus.ExponentialBuckets(50e-6, 2, 16)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		writeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "memcell", Name: "kv_write_failures_total",
			Help: "KV writes that failed after the primary write succeeded; each key is recorded for repair.",
		}, []string{"backend", "op"}),
		readFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "memcell", Name: "kv_read_failures_total",
			Help: "KV reads for validation that failed; the primary's data was returned.",
		}, []string{"backend", "op"}),
		inconsistencies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "memcell", Name: "data_inconsistencies_total",
			Help: "Validated reads whose KV copy differed from the primary.",
		}, []string{"backend", "op"}),
		writeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "memcell", Name: "kv_write_latency_seconds",
			Help: "Latency of KV writes made by the mirror.", Buckets: kvBuckets,
		}, []string{"backend", "op"}),
		readLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "memcell", Name: "kv_read_latency_seconds",
			Help: "Latency of KV reads made for validation.", Buckets: kvBuckets,
		}, []string{"backend", "op"}),
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "memcell", Name: "validations_total",
			Help: "Validation outcomes of reads (consistent, inconsistent, missing, error, skipped, pending).",
		}, []string{"backend", "outcome"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "memcell", Name: "kv_operations_total",
			Help: "KV operations made by the mirror, by result (ok, stale, error).",
		}, []string{"backend", "op", "result"}),
		writesSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "memcell", Name: "kv_writes_skipped_total",
			Help: "KV writes not made because mirroring was switched off; each key is recorded for repair.",
		}, []string{"backend", "op"}),
		intentsCleared: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "memcell", Name: "intents_cleared_total",
			Help: "Write intents removed from the primary once their KV writes were durable.",
		}),
		intentClears: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "memcell", Name: "intent_clears_total",
			Help: "Batches in which write intents were removed from the primary (one primary round trip each, two with hard deletes).",
		}),
		intentsLeft: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "memcell", Name: "intents_left_total",
			Help: "Write intents of done KV writes left in the primary for the replayer: the KV sync or the clearing failed, or too many were waiting.",
		}),
		fallbackReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "memcell", Name: "fallback_reads_total",
			Help: "Reads answered from the KV copies because the primary was unavailable (--read-fallback), by result (served, not_found, no_copy, error).",
		}, []string{"backend", "op", "result"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "memcell", Name: "mirror_batch_size",
			Help:    "KV writes applied together in one round of the async mirror (one pipeline or batch call per backend round).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9), // 1 to 256, maxBatchJobs
		}),
		queueDrops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "memcell", Name: "mirror_queue_drops_total",
			Help: "KV writes the async mirror's queue did not take, by reason: full (at its byte bound), kv_failing (the KV fails; one write at a time probes it), closed (shutting down). Their write intents stay and their ids are noted as pending, for the replayer.",
		}, []string{"reason"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.writeFailures, m.readFailures, m.inconsistencies, m.writeLatency, m.readLatency, m.validations, m.operations, m.writesSkipped,
			m.intentsCleared, m.intentClears, m.intentsLeft, m.fallbackReads, m.batchSize, m.queueDrops} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// opMetrics holds the curried series of one KV operation, so that the hot
// path does no label lookups.
type opMetrics struct {
	latency  prometheus.Observer
	failures prometheus.Counter
	ok       prometheus.Counter
	stale    prometheus.Counter
	errs     prometheus.Counter
	skipped  prometheus.Counter // writes only
}

func (m *metrics) write(backend, op string) *opMetrics {
	return &opMetrics{
		latency:  m.writeLatency.WithLabelValues(backend, op),
		failures: m.writeFailures.WithLabelValues(backend, op),
		ok:       m.operations.WithLabelValues(backend, op, "ok"),
		stale:    m.operations.WithLabelValues(backend, op, "stale"),
		errs:     m.operations.WithLabelValues(backend, op, "error"),
		skipped:  m.writesSkipped.WithLabelValues(backend, op),
	}
}

func (m *metrics) read(backend, op string) *opMetrics {
	return &opMetrics{
		latency:  m.readLatency.WithLabelValues(backend, op),
		failures: m.readFailures.WithLabelValues(backend, op),
		ok:       m.operations.WithLabelValues(backend, op, "ok"),
		errs:     m.operations.WithLabelValues(backend, op, "error"),
	}
}

func (o *opMetrics) since(start time.Time) {
	o.latency.Observe(time.Since(start).Seconds())
}

// registerQueue registers the gauges of the async mirror's queue, read at
// each scrape.
func (m *metrics) registerQueue(reg prometheus.Registerer, backend string, q *queue) error {
	if reg == nil {
		return nil
	}
	labels := prometheus.Labels{"backend": backend}
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "memcell", Name: "mirror_queue_depth", ConstLabels: labels,
			Help: "KV writes queued by the async mirror, waiting or under way.",
		}, func() float64 { d, _, _ := q.stats(); return float64(d) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "memcell", Name: "mirror_queue_bytes", ConstLabels: labels,
			Help: "Memory held by the KV writes waiting in the async mirror's queue.",
		}, func() float64 { _, b, _ := q.stats(); return float64(b) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "memcell", Name: "mirror_queue_capacity_bytes", ConstLabels: labels,
			Help: "Bound of memcell_mirror_queue_bytes; writes beyond it are left to the replayer.",
		}, func() float64 { return float64(q.max) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "memcell", Name: "mirror_queue_oldest_age_seconds", ConstLabels: labels,
			Help: "Age of the oldest KV write in the async mirror's queue; 0 when it is empty.",
		}, func() float64 {
			_, _, oldest := q.stats()
			if oldest.IsZero() {
				return 0
			}
			return time.Since(oldest).Seconds()
		}),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
