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
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
)

// The embedded primary's SQLite files are in WAL mode (FerretDB's default,
// journal_mode(wal)), set here explicitly. How a commit reaches the disk is
// Options.SyncInterval's choice:
//
//   - Group sync (the default, every 100 ms): synchronous(normal), so a
//     commit is written to the log but not synced, and the server syncs
//     each log that changed every SyncInterval. A process that crashes or
//     is killed loses nothing (the log is in the operating system's
//     cache); a power loss or an operating system crash can lose the
//     writes of the last interval, as MongoDB's default journal commit
//     interval (100 ms) does for writes without j:true. Checkpoints sync
//     the log and the database as always. A sync costs about 2 ms on this
//     kind of disk; synced per commit it bounded the primary at a few
//     hundred writes a second and made every write wait for it.
//   - Every commit (SyncInterval < 0): synchronous(full), SQLite's
//     default: each commit, so each acknowledged write, is synced to the
//     log before FerretDB answers.
//
// SQLite checkpoints the log into the database by itself
// (wal_autocheckpoint, 1,000 pages, PASSIVE, after a commit), but such a
// checkpoint stops at the oldest running
// reader, and the log is rewound only when a write starts while it is
// wholly checkpointed and no reader uses it. Under steady concurrent reads
// and writes that moment never comes (checkpoint starvation): the log grew
// by about 150 KB per document written through the API, to gigabytes, and
// every page read searches its index, slower the longer it is (a read by id
// took 137 ms at 10,000 documents before a restart, 16 ms after).
//
// A TRUNCATE checkpoint rewinds the log, but it needs a moment with no
// writer and no reader on an old snapshot, and under that load it could not
// get one even when it waited seconds. So the server makes the moment: the
// clients that connect with its CommandMonitor (memcell's own) hold their
// next commands while it checkpoints. Every CheckpointInterval it compares
// each log with WALLimit; above it, it stops letting new commands start,
// waits up to gateWait for those running to end, runs
// wal_checkpoint(TRUNCATE) (waiting up to checkpointBusyTimeout for readers
// it does not see, such as an open cursor's), and lets the commands go. A
// checkpoint kept busy is tried again later, the interval doubling up to
// maxCheckpointBackoff. journal_size_limit also cuts a log SQLite rewinds
// by itself back to WALLimit.

const (
	// DefaultWALLimit is Options.WALLimit's default: 64 MiB.
	DefaultWALLimit = 64 << 20
	// DefaultCheckpointInterval is Options.CheckpointInterval's default.
	DefaultCheckpointInterval = time.Second
	// DefaultSyncInterval is Options.SyncInterval's default.
	DefaultSyncInterval = 100 * time.Millisecond
	// checkpointBusyTimeout bounds the wait of a checkpoint for readers
	// and writers it does not hold back.
	checkpointBusyTimeout = 250 * time.Millisecond
	// gateWait bounds the wait for the commands running when a
	// checkpoint starts.
	gateWait = time.Second
	// maxCheckpointBackoff bounds the interval after checkpoints kept
	// busy.
	maxCheckpointBackoff = time.Minute
)

// gate holds back the commands of the clients that use the server's
// CommandMonitor while a checkpoint runs.
type gate struct {
	mu       sync.Mutex
	cond     *sync.Cond
	paused   bool
	inFlight map[int64]struct{}
}

func newGate() *gate {
	g := &gate{inFlight: map[int64]struct{}{}}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *gate) started(_ context.Context, e *event.CommandStartedEvent) {
	g.mu.Lock()
	for g.paused {
		g.cond.Wait()
	}
	g.inFlight[e.RequestID] = struct{}{}
	g.mu.Unlock()
}

func (g *gate) finished(id int64) {
	g.mu.Lock()
	if _, ok := g.inFlight[id]; ok {
		delete(g.inFlight, id)
		if len(g.inFlight) == 0 {
			g.cond.Broadcast()
		}
	}
	g.mu.Unlock()
}

// pause stops new commands from starting and waits up to d for those
// running to end; it reports whether they have. resume must follow.
func (g *gate) pause(d time.Duration) bool {
	deadline := time.Now().Add(d)
	wake := time.AfterFunc(d, func() {
		g.mu.Lock()
		g.cond.Broadcast()
		g.mu.Unlock()
	})
	defer wake.Stop()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.paused = true
	for len(g.inFlight) > 0 && time.Now().Before(deadline) {
		g.cond.Wait()
	}
	return len(g.inFlight) == 0
}

func (g *gate) resume() {
	g.mu.Lock()
	g.paused = false
	g.cond.Broadcast()
	g.mu.Unlock()
}

// CommandMonitor returns the driver command monitor that lets the server's
// checkpoints hold back the client's commands for a moment (see
// Checkpoint). Give it to every client of memcell's own
// (options.ClientOptions.SetMonitor); a client without it is not held
// back, and its reads and writes may keep a checkpoint from completing.
func (s *Server) CommandMonitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started:   s.gate.started,
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) { s.gate.finished(e.RequestID) },
		Failed:    func(_ context.Context, e *event.CommandFailedEvent) { s.gate.finished(e.RequestID) },
	}
}

// sqliteURL is FerretDB's SQLite URL for the data directory dir: the
// journal and sync settings above, on every connection FerretDB opens;
// groupSync chooses synchronous(normal) over synchronous(full).
func sqliteURL(dir string, walLimit int64, groupSync bool) string {
	sync := "full"
	if groupSync {
		sync = "normal"
	}
	return "file:" + dir + "/?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)&_pragma=synchronous(" + sync + ")" +
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
// limit is 0), holding back the commands of the clients that use
// CommandMonitor meanwhile, and reports what it did. The server calls it
// every Options.CheckpointInterval with Options.WALLimit.
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
		busy := true
		if s.gate.pause(gateWait) {
			busy, err = checkpoint(ctx, f)
		}
		s.gate.resume()
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

// housekeep runs Checkpoint every interval (longer after busy ones) until
// ctx ends.
func (s *Server) housekeep(ctx context.Context, interval time.Duration, limit int64, log *slog.Logger) {
	wait := interval
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		res, err := s.Checkpoint(ctx, limit)
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "embedded: checkpoint failed", "error", err)
		}
		wait = interval
		for _, r := range res {
			if r.Busy {
				wait = min(2*wait, maxCheckpointBackoff)
				log.InfoContext(ctx, "embedded: checkpoint kept busy; trying again later", "database", r.Database, "wal_bytes", r.WALBytes, "in", wait)
			}
		}
	}
}
