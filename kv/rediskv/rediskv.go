package rediskv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/memcell/memcell/kv"
)

// Hash fields of a stored key; see the package documentation.
const (
	fieldValue = "v"
	fieldRev   = "r"
)

// Options configures a Store. The zero value (and a nil *Options) is valid.
type Options struct {
	// Prefix is prepended to every key in Redis. The store reads and writes
	// only keys under it, and Scan and Stats see only those.
	Prefix string
	// TombstoneGrace is how long a delete blocks later puts of the key.
	// Zero or negative means kv.DefaultTombstoneGrace.
	TombstoneGrace time.Duration
}

// Store is a kv.Store on Redis or Redis Cluster. It is safe for concurrent
// use.
type Store struct {
	client  redis.UniversalClient
	prefix  string
	graceMS int64 // tombstone lifetime in milliseconds, at least 1
	backend string
	closed  atomic.Bool
}

var _ kv.Store = (*Store)(nil)

// Open returns a store on client, which may be a *redis.Client (standalone
// or sentinel failover) or a *redis.ClusterClient. A *redis.Ring is refused
// with kv.ErrInvalidOptions: it moves keys to other shards while one is
// down, which would lose revisions and tombstones. Open pings the server and
// loads the Lua scripts, so an unreachable server fails here.
//
// The store takes ownership of client: Store.Close closes it, and Open
// closes it when it fails. Context deadlines bound the network I/O only
// when the client was made with ContextTimeoutEnabled set.
func Open(ctx context.Context, client redis.UniversalClient, opts *Options) (*Store, error) {
	s, err := open(ctx, client, opts)
	if err != nil {
		return nil, fmt.Errorf("rediskv: open: %w", err)
	}
	return s, nil
}

// open is Open with errors left for the caller to prefix.
func open(ctx context.Context, client redis.UniversalClient, opts *Options) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil redis client", kv.ErrInvalidOptions)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.TombstoneGrace <= 0 {
		o.TombstoneGrace = kv.DefaultTombstoneGrace
	}
	s := &Store{
		client:  client,
		prefix:  o.Prefix,
		graceMS: int64((o.TombstoneGrace + time.Millisecond - 1) / time.Millisecond),
		backend: "redis",
	}
	switch client.(type) {
	case *redis.Ring:
		_ = client.Close()
		return nil, fmt.Errorf("%w: redis.Ring is not supported; use a redis.Client or redis.ClusterClient", kv.ErrInvalidOptions)
	case *redis.ClusterClient:
		s.backend = "redis-cluster"
	}

	if err := ctx.Err(); err != nil {
		_ = client.Close()
		return nil, err
	}
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("ping %s: %w", addrs(client), err)
	}
	if err := s.loadScripts(ctx); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("load scripts on %s: %w", addrs(client), err)
	}
	return s, nil
}

// addrs names the servers of client for error messages.
func addrs(client redis.UniversalClient) string {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().Addr
	case *redis.ClusterClient:
		return "cluster " + strings.Join(c.Options().Addrs, ",")
	}
	return "redis"
}

// begin is called first by every method: it refuses work on a closed store
// or a done context, before any I/O.
func (s *Store) begin(ctx context.Context, op string) error {
	if s.closed.Load() {
		return fmt.Errorf("rediskv: %s: %w", op, kv.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rediskv: %s: %w", op, err)
	}
	return nil
}

// key returns the Redis key of store key k.
func (s *Store) key(k string) string { return s.prefix + k }

// Get returns the live value of key, or an error wrapping kv.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.begin(ctx, "get"); err != nil {
		return nil, err
	}
	v, err := s.client.HGet(ctx, s.key(key), fieldValue).Bytes()
	if err != nil {
		return nil, s.mapErr("get", key, err)
	}
	return v, nil
}

// BatchGet returns the live values of keys in one pipeline: one round trip
// per server, in parallel across cluster masters.
func (s *Store) BatchGet(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := s.begin(ctx, "batch get"); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	uniq := make([]string, 0, len(keys))
	seen := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		if _, dup := seen[k]; !dup {
			seen[k] = struct{}{}
			uniq = append(uniq, k)
		}
	}
	pipe := s.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(uniq))
	for i, k := range uniq {
		cmds[i] = pipe.HGet(ctx, s.key(k), fieldValue)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own result and error
	for i, cmd := range cmds {
		v, err := cmd.Bytes()
		switch {
		case err == nil:
			out[uniq[i]] = v
		case errors.Is(err, redis.Nil):
		default:
			return nil, s.mapErr("batch get", uniq[i], err)
		}
	}
	return out, nil
}

// Put writes one guarded entry; see the package documentation.
func (s *Store) Put(ctx context.Context, e kv.Entry) (bool, error) {
	if err := s.begin(ctx, "put"); err != nil {
		return false, err
	}
	n, err := putScript.Run(ctx, s.client, []string{s.key(e.Key)}, e.Value, strconv.FormatUint(e.Rev, 10)).Int64()
	if err != nil {
		return false, s.mapErr("put", e.Key, err)
	}
	return n == 1, nil
}

// BatchPut writes guarded entries in one pipeline: one round trip per
// server, in parallel across cluster masters.
func (s *Store) BatchPut(ctx context.Context, entries []kv.Entry) (int, error) {
	if err := s.begin(ctx, "batch put"); err != nil {
		return 0, err
	}
	if len(entries) == 0 {
		return 0, nil
	}
	keys := make([]string, len(entries))
	args := make([][]any, len(entries))
	for i, e := range entries {
		keys[i] = s.key(e.Key)
		args[i] = []any{e.Value, strconv.FormatUint(e.Rev, 10)}
	}
	cmds := s.evalAll(ctx, putScript, keys, args)
	stored := 0
	for i, cmd := range cmds {
		n, err := cmd.Int64()
		if err != nil {
			return stored, s.mapErr("batch put", entries[i].Key, err)
		}
		if n == 1 {
			stored++
		}
	}
	return stored, nil
}

// Swap replaces key's live value with e when it is exactly old, in one
// script call; see the package documentation.
func (s *Store) Swap(ctx context.Context, e kv.Entry, old []byte) (bool, error) {
	if err := s.begin(ctx, "swap"); err != nil {
		return false, err
	}
	if old == nil {
		old = []byte{}
	}
	n, err := swapScript.Run(ctx, s.client, []string{s.key(e.Key)}, old, e.Value, strconv.FormatUint(e.Rev, 10)).Int64()
	if err != nil {
		return false, s.mapErr("swap", e.Key, err)
	}
	return n == 1, nil
}

// Delete is the guarded delete of key at revision rev; see the package
// documentation.
func (s *Store) Delete(ctx context.Context, key string, rev uint64) (bool, error) {
	if err := s.begin(ctx, "delete"); err != nil {
		return false, err
	}
	n, err := deleteScript.Run(ctx, s.client, []string{s.key(key)}, s.graceMS, strconv.FormatUint(rev, 10)).Int64()
	if err != nil {
		return false, s.mapErr("delete", key, err)
	}
	return n == 1, nil
}

// BatchDelete applies dels in one pipeline (one round trip per server) and
// returns how many live values it removed. The commands of one key go to
// one server in order, so a key listed twice is judged as two Deletes in
// a row would be, and counts at most once.
func (s *Store) BatchDelete(ctx context.Context, dels []kv.Deletion) (int, error) {
	if err := s.begin(ctx, "batch delete"); err != nil {
		return 0, err
	}
	if len(dels) == 0 {
		return 0, nil
	}
	rkeys := make([]string, len(dels))
	args := make([][]any, len(dels))
	for i, d := range dels {
		rkeys[i] = s.key(d.Key)
		args[i] = []any{s.graceMS, strconv.FormatUint(d.Rev, 10)}
	}
	cmds := s.evalAll(ctx, deleteScript, rkeys, args)
	removed := 0
	for i, cmd := range cmds {
		n, err := cmd.Int64()
		if err != nil {
			return removed, s.mapErr("batch delete", dels[i].Key, err)
		}
		if n == 1 {
			removed++
		}
	}
	return removed, nil
}

// Capabilities reports backend "redis" or "redis-cluster", unordered scans,
// and a store that is persistent (as far as the server's own persistence
// settings make it) and shared between processes.
func (s *Store) Capabilities() kv.Capabilities {
	return kv.Capabilities{
		Backend:     s.backend,
		OrderedScan: false,
		Persistent:  true,
		Shared:      true,
	}
}

// Close closes the Redis client. Later calls of any method return
// kv.ErrClosed; calls of Close after the first return nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.client.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("rediskv: close: %w", err)
	}
	return nil
}
