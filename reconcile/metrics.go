package reconcile

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the job metrics (docs/architecture.md#metrics), on the caller's
// registry. Labels are the job name and the difference kind: small closed
// sets.
type metrics struct {
	scanned     prometheus.Counter
	differences *prometheus.CounterVec // by kind, curried with the job
	repaired    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, job string) (*metrics, error) {
	scanned := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "memcell", Name: "job_documents_scanned_total",
		Help: "Primary documents read by sync, verify and repair jobs.",
	}, []string{"job"})
	diffs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "memcell", Name: "job_differences_total",
		Help: "Differences between the primary and the KV mirror found by verify and repair jobs, by kind.",
	}, []string{"job", "kind"})
	repaired := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "memcell", Name: "job_repaired_total",
		Help: "KV copies written or deleted by sync and repair jobs.",
	}, []string{"job"})
	if reg != nil {
		var err error
		// Jobs run many times in one process on one registry: the second
		// job finds the first one's collectors and counts on.
		if scanned, err = register(reg, scanned); err != nil {
			return nil, err
		}
		if diffs, err = register(reg, diffs); err != nil {
			return nil, err
		}
		if repaired, err = register(reg, repaired); err != nil {
			return nil, err
		}
	}
	m := &metrics{
		scanned:     scanned.WithLabelValues(job),
		differences: diffs.MustCurryWith(prometheus.Labels{"job": job}),
		repaired:    repaired.WithLabelValues(job),
	}
	// Series a dashboard or alert watches exist from the first job on:
	// those of the kinds the job can find.
	for _, k := range kinds {
		if (k == Lost || k == Behind) == (job == jobRecover.name) || k == Unreadable {
			m.differences.WithLabelValues(string(k))
		}
	}
	return m, nil
}

func register(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing, nil
		}
	}
	return c, err
}
