package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The embedded primary's SQLite files are in WAL mode (FerretDB's default,
// journal_mode(wal)) with synchronous(full), set here explicitly: each
// commit, so each acknowledged write, is synced to the write-ahead log
// before FerretDB answers. SQLite checkpoints the log into the database by
// itself (wal_autocheckpoint, 1,000 pages, PASSIVE, after a commit), but
// such a checkpoint stops at the oldest running reader, and the log is
// rewound only once a checkpoint has completed and no reader uses it.
// While long reads overlap (FerretDB's whole-collection scans did, under
// concurrent requests) the log grows without bound, and every page read
// searches its index, slower the longer it is: reads slowed down tenfold
// during a long write burst and were fast again after a restart, which
// checkpointed. The server therefore checks the size of each log every
// CheckpointInterval and, above WALLimit, runs a TRUNCATE checkpoint: it
// waits up to checkpointBusyTimeout for the readers to move to the newest
// data (writers wait for it meanwhile), copies the whole log into the
// database and empties it; kept busy, it tries again at the next check.
// journal_size_limit also cuts a log SQLite rewinds by itself back to
// WALLimit.

const (
	// DefaultWALLimit is Options.WALLimit's default: 64 MiB.
	DefaultWALLimit = 64 << 20
	// DefaultCheckpointInterval is Options.CheckpointInterval's default.
	DefaultCheckpointInterval = 10 * time.Second
	// checkpointBusyTimeout bounds the wait of a checkpoint for readers
	// and writers, and so the pause it may impose on writers, who wait for
	// it meanwhile.
	checkpointBusyTimeout = 250 * time.Millisecond
)

// sqliteURL is FerretDB's SQLite URL for the data directory dir: the
// journal and sync settings above, on every connection FerretDB opens.
func sqliteURL(dir string, walLimit int64) string {
	return "file:" + dir + "/?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)&_pragma=synchronous(full)" +
		"&_pragma=journal_size_limit(" + strconv.FormatInt(walLimit, 10) + ")"
}

// CheckpointResult is what Checkpoint did to one database's log.
type CheckpointResult struct {
	// Database is the database's name.
	Database string
	// WALBytes is the size of its log before, in bytes.
	WALBytes int64
	// Busy is set when readers or writers kept the checkpoint from
	// completing within its wait; it is tried again at the next check.
	Busy bool
}

// Checkpoint checkpoints and empties the write-ahead log of every database
// whose log is larger than limit bytes (every database with a log when
// limit is 0), and reports what it did. The server calls it every
// Options.CheckpointInterval with Options.WALLimit.
func (s *Server) Checkpoint(ctx context.Context, limit int64) ([]CheckpointResult, error) {
	files, err := filepath.Glob(filepath.Join(s.dir, "*.sqlite"))
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	var out []CheckpointResult
	var errs []error
	for _, f := range files {
		st, err := os.Stat(f + "-wal")
		if err != nil || st.Size() == 0 || st.Size() <= limit {
			continue
		}
		busy, err := checkpoint(ctx, f)
		if err != nil {
			errs = append(errs, fmt.Errorf("embedded: checkpoint %s: %w", filepath.Base(f), err))
			continue
		}
		name := filepath.Base(f)
		out = append(out, CheckpointResult{Database: name[:len(name)-len(".sqlite")], WALBytes: st.Size(), Busy: busy})
	}
	return out, errors.Join(errs...)
}

func checkpoint(ctx context.Context, file string) (busy bool, err error) {
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout("+strconv.FormatInt(checkpointBusyTimeout.Milliseconds(), 10)+")")
	if err != nil {
		return false, err
	}
	defer db.Close()
	var isBusy, logPages, done int
	if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&isBusy, &logPages, &done); err != nil {
		return false, err
	}
	return isBusy != 0, nil
}

// housekeep runs Checkpoint every interval until ctx ends.
func (s *Server) housekeep(ctx context.Context, interval time.Duration, limit int64, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := s.Checkpoint(ctx, limit)
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "embedded: checkpoint failed", "error", err)
		}
		for _, r := range res {
			if r.Busy {
				log.InfoContext(ctx, "embedded: checkpoint kept busy; trying again later", "database", r.Database, "wal_bytes", r.WALBytes)
			}
		}
	}
}
