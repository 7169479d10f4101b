package reconcile

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SetCheckpointLag sets how long a job that keeps a checkpoint lets a
// differing document wait for its second look (checkpointLag).
func SetCheckpointLag(o *Options, d time.Duration) { o.checkpointLag = d }

// SetRecoverBatch sets how many KV copies a recover looks up in the
// primary at once (recoverBatch).
func SetRecoverBatch(o *Options, n int) { o.recoverBatch = n }

// ScannedCounter returns the counter of documents scanned by the jobs named
// job on reg: the one those jobs counted on, found the way a job finds the
// collectors of the jobs before it.
func ScannedCounter(reg prometheus.Registerer, job string) (prometheus.Counter, error) {
	m, err := newMetrics(reg, job)
	if err != nil {
		return nil, err
	}
	return m.scanned, nil
}

// SetMaxHeld sets how many extras a repair holds until its KV pass ends
// (maxHeld); beyond them it scans the KV again to delete them.
func SetMaxHeld(o *Options, n int) { o.maxHeld = n }
