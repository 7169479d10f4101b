// Package embedded runs an in-process MongoDB-compatible primary: FerretDB
// on SQLite, listening on a loopback port so that any MongoDB client (the
// service itself, mongosh, the tests) can reach it.
//
// It is meant for evaluation, tests and single-process deployments.
// FerretDB has no transactions and no change streams, and evaluates every
// filter other than exactly {_id: value} after reading the whole
// collection. The package makes up for the latter where memcell needs it:
// IndexIDs indexes the lookups by _id, and a QueryIndex answers memcell's
// queries (lists, counts, bulk scopes, write intents) from SQLite indexes
// of its own while the documents are still read, and every write made,
// through FerretDB. The server also keeps SQLite's write-ahead logs short
// (Checkpoint).
package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"

	"github.com/memcell/memcell/internal/netaddr"
)

// Options configure a Server. Nil means defaults.
type Options struct {
	// Addr is the loopback TCP address to listen on; "" picks a free port
	// on 127.0.0.1.
	Addr string
	// Logger receives FerretDB's own log lines and the server's warnings;
	// nil discards them.
	Logger *slog.Logger
	// WALLimit is the size in bytes of a database's write-ahead log above
	// which the server checkpoints and empties it; 0 means
	// DefaultWALLimit. See Checkpoint.
	WALLimit int64
	// CheckpointInterval is how often the server compares the logs with
	// WALLimit; 0 means DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// SyncInterval is how often the server syncs the write-ahead logs
	// that changed to the disk, its databases committing without a sync
	// of their own (group sync): a power loss or an operating system
	// crash can lose the writes of the last interval, a process crash
	// none. 0 means DefaultSyncInterval; a negative value syncs every
	// commit before it is answered instead. See the package's notes on
	// the journal settings (wal.go).
	SyncInterval time.Duration
}

// Server is a running embedded primary.
type Server struct {
	dir    string
	uri    string
	cancel context.CancelFunc
	done   chan error
	// stopHousekeeping ends the checkpoint loop; housekept is closed when
	// it has.
	stopHousekeeping context.CancelFunc
	housekept        chan struct{}
	gate             *gate
}

// Start runs a primary whose SQLite files live in dir (created if needed)
// and waits until it accepts connections. It refuses a non-loopback Addr:
// the embedded primary has no authentication.
func Start(ctx context.Context, dir string, opts *Options) (*Server, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	switch loopback, err := netaddr.Loopback(o.Addr); {
	case err != nil:
		return nil, fmt.Errorf("embedded: %w", err)
	case !loopback:
		return nil, fmt.Errorf("embedded: listen address %q is not loopback; the embedded primary has no authentication", o.Addr)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.WALLimit <= 0 {
		o.WALLimit = DefaultWALLimit
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("embedded: data directory: %w", err)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: o.Addr},
		Logger:    o.Logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL(abs, o.WALLimit, o.SyncInterval > 0),
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	hkCtx, stopHousekeeping := context.WithCancel(context.Background())
	s := &Server{dir: abs, cancel: cancel, done: make(chan error, 1), stopHousekeeping: stopHousekeeping, housekept: make(chan struct{}), gate: newGate()}
	go func() { s.done <- f.Run(runCtx) }()
	go func() {
		defer close(s.housekept)
		var wg sync.WaitGroup
		if o.SyncInterval > 0 {
			y := &syncer{dir: abs, synced: map[string]logState{}}
			wg.Go(func() { y.groupSync(hkCtx, o.SyncInterval, o.Logger) })
		}
		s.housekeep(hkCtx, o.CheckpointInterval, o.WALLimit, o.Logger)
		wg.Wait()
	}()

	// MongoDBURI waits for the listener; do not let a failed start hang us.
	uri := make(chan string, 1)
	go func() { uri <- f.MongoDBURI() }()
	select {
	case s.uri = <-uri:
	case err := <-s.done:
		cancel()
		stopHousekeeping()
		<-s.housekept
		return nil, fmt.Errorf("embedded: primary stopped at start: %w", err)
	case <-ctx.Done():
		s.Close()
		return nil, fmt.Errorf("embedded: %w", ctx.Err())
	}
	return s, nil
}

// URI is the loopback MongoDB connection string of the primary.
func (s *Server) URI() string { return s.uri }

// Close stops the primary and waits for it to close its files.
func (s *Server) Close() error {
	s.stopHousekeeping()
	<-s.housekept
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("embedded: %w", err)
		}
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("embedded: primary did not stop within 30s")
	}
}
