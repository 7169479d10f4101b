package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/memcell/memcell/embedded"
	"github.com/memcell/memcell/internal/redact"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/mongostore"
)

// stores are the primary and the KV mirror a command works on: the ones the
// configuration names, or the embedded default under the data directory.
type stores struct {
	primary  *mongostore.Store
	embedded *embedded.Server // nil with an external MongoDB
	kv       kv.Store
	// kvLater is kv when it is opened in the background (serve): nil
	// otherwise.
	kvLater     *kv.Deferred
	dataDir     string
	primaryDesc string
	kvURL       string
	closers     []func() error
}

// kvLater, when not nil, lets openStores return before the KV store has
// opened: the store is opened in the background, with backoff, for as
// long as it cannot be reached (serve runs without it meanwhile).
type kvLater struct {
	onRetry func(err error, next time.Duration)
	onOpen  func(attempts int)
}

// openStores opens the primary (starting the embedded one when no MongoDB
// URI is configured) and the KV store. With later set, a KV store that
// cannot be reached does not fail it: st.kvLater keeps trying. On error
// everything opened so far is closed again; the error shows no credential
// of either URL.
func openStores(ctx context.Context, cfg *config, stderr io.Writer, log *slog.Logger, later *kvLater) (_ *stores, err error) {
	st := &stores{}
	defer func() {
		if err != nil {
			st.close(log)
		}
	}()
	if st.dataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return nil, err
	}
	mongoURI := cfg.MongoURI
	st.primaryDesc = "MongoDB " + redact.URL(cfg.MongoURI)
	if mongoURI == "" {
		dir := filepath.Join(st.dataDir, "primary")
		// FerretDB logs every command it does not support (the driver's
		// endSessions at shutdown, say) as a multi-line WARN: errors only.
		quiet := newLogger(stderr, cfg.LogFormat, "error").With("component", "embedded-primary")
		sync := cfg.EmbeddedSync
		if sync == 0 {
			sync = -1 // embedded.Options: each commit
		}
		srv, err := embedded.Start(ctx, dir, &embedded.Options{Addr: cfg.EmbeddedAddr, Logger: quiet, SyncInterval: sync})
		if err != nil {
			return nil, err
		}
		st.closers = append(st.closers, srv.Close)
		st.embedded = srv
		mongoURI = srv.URI()
		st.primaryDesc = fmt.Sprintf("embedded FerretDB (SQLite) in %s; MongoDB clients can connect to %s", dir, srv.URI())
	}
	opts := &mongostore.Options{Logger: log}
	var index *embedded.QueryIndex
	if st.embedded != nil {
		// FerretDB reads the whole collection for any filter but {_id}:
		// Find and Count ask SQLite for the ids instead (docs/architecture.md,
		// "The embedded primary at scale").
		index = st.embedded.QueryIndex(cfg.MongoDatabase, mongostore.DefaultCollection)
		st.closers = append(st.closers, index.Close)
		opts.Index = index
		// Its checkpoints hold our commands back for a moment.
		opts.Monitor = st.embedded.CommandMonitor()
	}
	if st.primary, err = mongostore.Connect(ctx, mongoURI, cfg.MongoDatabase, opts); err != nil {
		// The driver's errors may quote the URI (a bad option's value).
		return nil, fmt.Errorf("primary: %w", redact.Error(err, mongoURI))
	}
	st.closers = append(st.closers, func() error { return st.primary.Close(context.Background()) })
	if st.embedded != nil {
		// The collections exist now (mongostore made them): index their
		// _id lookups, which FerretDB would otherwise answer by a scan.
		if err := st.embedded.IndexIDs(ctx); err != nil {
			return nil, fmt.Errorf("primary: %w", err)
		}
		if err := index.Ensure(ctx); err != nil {
			return nil, fmt.Errorf("primary: %w", err)
		}
	}

	st.kvURL = cfg.KVURL
	if st.kvURL == "" {
		st.kvURL = "pebble://" + filepath.ToSlash(filepath.Join(st.dataDir, "kv"))
	}
	reg := newKVRegistry()
	if later == nil {
		if st.kv, err = reg.Open(ctx, st.kvURL); err != nil {
			return nil, fmt.Errorf("kv: %w", redact.Error(err, st.kvURL))
		}
	} else {
		d, err := kv.OpenDeferred(ctx, func(ctx context.Context) (kv.Store, error) { return reg.Open(ctx, st.kvURL) },
			&kv.DeferredOptions{
				Capabilities: kv.Capabilities{Backend: backendOf(st.kvURL)},
				OnRetry:      later.onRetry,
				OnOpen:       later.onOpen,
			})
		if err != nil {
			return nil, fmt.Errorf("kv: %w", redact.Error(err, st.kvURL))
		}
		st.kv, st.kvLater = d, d
	}
	st.closers = append(st.closers, st.kv.Close)
	return st, nil
}

// close closes everything in reverse order of opening.
func (st *stores) close(log *slog.Logger) {
	for i := len(st.closers) - 1; i >= 0; i-- {
		if err := st.closers[i](); err != nil {
			log.Warn("closing", "error", err)
		}
	}
	st.closers = nil
}

// backendOf names the backend a KV URL opens, as its Capabilities will
// once it has opened: the metrics are named by it before.
func backendOf(rawURL string) string {
	scheme, _, _ := strings.Cut(rawURL, ":")
	switch scheme = strings.ToLower(scheme); scheme {
	case "memory", "pebble", "leveldb", "rocksdb":
		return scheme
	case "redis+cluster", "rediss+cluster":
		return "redis-cluster"
	case "redis", "rediss":
		return "redis"
	}
	return scheme
}
