package reconcile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// checkpointVersion is the format of checkpoint files; a file of another
// version is refused.
const checkpointVersion = 1

// The phases of a job.
const (
	phasePrimary = "primary"
	phaseKV      = "kv"
)

// checkpoint is the state of an interrupted job: where its primary pass got
// to and the counts so far. The fields that name the job and the stores
// must match for a run to resume from it.
type checkpoint struct {
	Version   int    `json:"version"`
	Job       string `json:"job"`
	DryRun    bool   `json:"dry_run,omitempty"`
	Namespace string `json:"namespace"` // database.collection of the primary
	Backend   string `json:"kv_backend"`
	KeyPrefix string `json:"key_prefix"`

	// Phase is the phase the job was in: "primary" with LastID the last
	// _id whose batch was finished ("" before the first), or "kv" once the
	// primary pass was done.
	Phase  string `json:"phase"`
	LastID string `json:"last_id,omitempty"`

	// The counts of the job up to that point (of the primary pass only:
	// the KV pass is not checkpointed).
	Started     time.Time      `json:"started"`
	Saved       time.Time      `json:"saved"`
	Scanned     int64          `json:"scanned"`
	Differences map[Kind]int64 `json:"differences"`
	Repaired    int64          `json:"repaired"`
	Unrepaired  int64          `json:"unrepaired"`
	// RevisionsLowered is omitted by versions that did not count it, and
	// reads as 0.
	RevisionsLowered int64 `json:"revisions_lowered,omitempty"`
	// KVScanned, SkippedPresent and SkippedGrave are the counts of a
	// recover, whose one pass is the KV scan ("kv", with LastID the id of
	// the last copy of the last batch done).
	KVScanned      int64  `json:"kv_scanned,omitempty"`
	SkippedPresent int64  `json:"skipped_present,omitempty"`
	SkippedGrave   int64  `json:"skipped_grave,omitempty"`
	Samples        []Diff `json:"samples"`
}

// loadCheckpoint reads the checkpoint at path; it returns nil, nil when
// there is none.
func loadCheckpoint(path string) (*checkpoint, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var c checkpoint
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("checkpoint %s is unreadable (remove it to start over): %w", path, err)
	}
	if c.Version != checkpointVersion {
		return nil, fmt.Errorf("checkpoint %s has version %d, this program writes %d (remove it to start over)", path, c.Version, checkpointVersion)
	}
	if c.Phase != phasePrimary && c.Phase != phaseKV {
		return nil, fmt.Errorf("checkpoint %s has an unknown phase %q (remove it to start over)", path, c.Phase)
	}
	return &c, nil
}

// matches reports why c cannot be resumed by the job described by want, or
// nil if it can.
func (c *checkpoint) matches(path string, want *checkpoint) error {
	type field struct{ name, got, want string }
	for _, f := range []field{
		{"job", c.Job, want.Job},
		{"dry run", fmt.Sprint(c.DryRun), fmt.Sprint(want.DryRun)},
		{"collection", c.Namespace, want.Namespace},
		{"KV backend", c.Backend, want.Backend},
		{"key prefix", c.KeyPrefix, want.KeyPrefix},
	} {
		if f.got != f.want {
			return fmt.Errorf("checkpoint %s was made with %s %q, not %q: use another checkpoint file, or remove it to start over", path, f.name, f.got, f.want)
		}
	}
	return nil
}

// save writes c to path atomically: a temporary file in the same directory,
// synced, then renamed over path.
func (c *checkpoint) save(path string) error {
	c.Saved = time.Now().UTC()
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// checkCheckpointPath checks, before any work, that a checkpoint can be
// written at path.
func checkCheckpointPath(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("reconcile: checkpoint directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("reconcile: checkpoint directory %s is not a directory", dir)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("reconcile: checkpoint %s is a directory", path)
	}
	return nil
}
