package reconcile

import "time"

// SetCheckpointLag sets how long a job that keeps a checkpoint lets a
// differing document wait for its second look (checkpointLag).
func SetCheckpointLag(o *Options, d time.Duration) { o.checkpointLag = d }
