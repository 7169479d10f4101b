package embedded

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// syncFile syncs an open file to the disk; the tests count its calls.
var syncFile = (*os.File).Sync

// logState is what a write-ahead log looked like when it was last synced.
type logState struct {
	size    int64
	modTime time.Time
}

// syncer syncs the write-ahead logs of a data directory whose databases
// commit without syncing (synchronous(normal), see Options.SyncInterval).
type syncer struct {
	dir    string
	synced map[string]logState
}

// syncLogs syncs every write-ahead log in the directory that changed since
// it was last synced: its size or modification time differs. The state is
// read before the sync, so a commit written during the sync is seen as a
// change by the next call.
func (y *syncer) syncLogs() error {
	logs, err := filepath.Glob(filepath.Join(y.dir, "*.sqlite-wal"))
	if err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	var errs []error
	seen := make(map[string]bool, len(logs))
	for _, name := range logs {
		seen[name] = true
		st, err := os.Stat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed by the last connection closing it, after a checkpoint
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		now := logState{size: st.Size(), modTime: st.ModTime()}
		if y.synced[name] == now {
			continue
		}
		if err := syncPath(name); err != nil {
			errs = append(errs, err)
			continue
		}
		y.synced[name] = now
	}
	for name := range y.synced {
		if !seen[name] {
			delete(y.synced, name)
		}
	}
	return errors.Join(errs...)
}

func syncPath(name string) error {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("embedded: sync: %w", err)
	}
	defer f.Close()
	if err := syncFile(f); err != nil {
		return fmt.Errorf("embedded: sync %s: %w", filepath.Base(name), err)
	}
	return nil
}

// groupSync syncs the logs every interval until ctx ends, and once more
// then, so the writes of the last interval are synced when the server
// stops.
func (y *syncer) groupSync(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := y.syncLogs(); err != nil {
				log.Warn("embedded: sync of the write-ahead logs failed", "error", err)
			}
			return
		case <-t.C:
		}
		if err := y.syncLogs(); err != nil {
			log.WarnContext(ctx, "embedded: sync of the write-ahead logs failed", "error", err)
		}
	}
}
