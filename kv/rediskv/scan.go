package rediskv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/memcell/memcell/kv"
)

// scanCount is the COUNT hint of each SCAN call, and so roughly the number of
// keys whose values are fetched in one pipeline.
const scanCount = 1000

// Scan calls fn for every live key under prefix, in no particular order. It
// walks the namespace with SCAN (every master of a cluster, in parallel, but
// fn is never called concurrently) and fetches each page's values in one
// pipeline. As with SCAN itself, a key present for the whole scan is seen,
// and a key may be reported twice if Redis resizes its keyspace while keys
// are being written during the scan.
func (s *Store) Scan(ctx context.Context, prefix string, fn func(kv.Item) error) error {
	if err := s.begin(ctx, "scan"); err != nil {
		return err
	}
	var (
		mu    sync.Mutex // serializes fn
		cbErr error      // the error fn returned; guarded by mu
	)
	err := s.scanPages(ctx, "scan", s.prefix+prefix, func(ctx context.Context, keys []string) error {
		pipe := s.client.Pipeline()
		cmds := make([]*redis.SliceCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.HMGet(ctx, k, fieldValue, fieldRev)
		}
		_, _ = pipe.Exec(ctx)
		items := make([]kv.Item, 0, len(keys))
		for i, cmd := range cmds {
			key := keys[i][len(s.prefix):]
			vals, err := cmd.Result()
			if err != nil {
				return s.mapErr("scan", key, err)
			}
			v, ok := vals[0].(string)
			if !ok {
				continue // a tombstone, or deleted since SCAN saw it
			}
			var rev uint64
			if r, ok := vals[1].(string); ok {
				if rev, err = strconv.ParseUint(r, 10, 64); err != nil {
					return fmt.Errorf("rediskv: scan %q: redis key %q has revision %q, not an unsigned integer", key, keys[i], r)
				}
			}
			items = append(items, kv.Item{Key: key, Value: []byte(v), Rev: rev})
		}
		mu.Lock()
		defer mu.Unlock()
		for _, it := range items {
			if cbErr != nil {
				return errScanStopped
			}
			if err := ctx.Err(); err != nil { // another master failed, or the caller gave up
				return fmt.Errorf("rediskv: scan: %w", err)
			}
			if err := fn(it); err != nil {
				cbErr = err
				return errScanStopped
			}
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if cbErr != nil {
		return cbErr // as it is, so that the caller can compare it
	}
	return err
}

// Stats counts the live keys of the namespace and the bytes of their values.
// It walks the whole namespace with SCAN, so it costs O(number of keys),
// tombstones included, in round trips of about a thousand keys.
func (s *Store) Stats(ctx context.Context) (kv.Stats, error) {
	if err := s.begin(ctx, "stats"); err != nil {
		return kv.Stats{}, err
	}
	var (
		mu    sync.Mutex
		stats kv.Stats
	)
	err := s.scanPages(ctx, "stats", s.prefix, func(ctx context.Context, keys []string) error {
		pipe := s.client.Pipeline()
		sizes := make([]*redis.IntCmd, len(keys))
		live := make([]*redis.BoolCmd, len(keys))
		for i, k := range keys {
			sizes[i] = pipe.HStrLen(ctx, k, fieldValue)
			live[i] = pipe.HExists(ctx, k, fieldValue)
		}
		_, _ = pipe.Exec(ctx)
		var page kv.Stats
		for i := range keys {
			n, err := sizes[i].Result()
			if err != nil {
				return s.mapErr("stats", keys[i][len(s.prefix):], err)
			}
			ok, err := live[i].Result()
			if err != nil {
				return s.mapErr("stats", keys[i][len(s.prefix):], err)
			}
			if ok {
				page.EntryCount++
				page.TotalSizeBytes += n
			}
		}
		mu.Lock()
		stats.EntryCount += page.EntryCount
		stats.TotalSizeBytes += page.TotalSizeBytes
		mu.Unlock()
		return nil
	})
	if err != nil {
		return kv.Stats{}, err
	}
	return stats, nil
}

// errScanStopped ends the walks of every master once fn has failed; Scan then
// returns fn's error instead.
var errScanStopped = errors.New("rediskv: scan: stopped by the callback")

// scanPages SCANs the Redis keys that start with prefix on every server (every
// master of a cluster, in parallel) and calls page with each batch of keys;
// page may be called concurrently for different masters and returns errors
// already mapped. The first error stops every walk and is returned.
func (s *Store) scanPages(ctx context.Context, op, prefix string, page func(ctx context.Context, keys []string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) error {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
		return err
	}
	match := escapeGlob(prefix) + "*"
	err := s.forEachNode(ctx, func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			if err := ctx.Err(); err != nil {
				return fail(fmt.Errorf("rediskv: %s: %w", op, err))
			}
			keys, next, err := c.Scan(ctx, cursor, match, scanCount).Result()
			if err != nil {
				return fail(s.mapErr(op, "", err))
			}
			if len(keys) > 0 {
				if err := page(ctx, keys); err != nil {
					return fail(err)
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	})
	mu.Lock()
	defer mu.Unlock()
	switch {
	case firstErr != nil:
		return firstErr
	case err != nil: // failed before walking, e.g. loading the cluster state
		return s.mapErr(op, "", err)
	}
	return nil
}

// forEachNode calls fn with every server that holds part of the keyspace: the
// client itself, or each master of a cluster, in parallel.
func (s *Store) forEachNode(ctx context.Context, fn func(ctx context.Context, c redis.Cmdable) error) error {
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return fn(ctx, c)
		})
	}
	return fn(ctx, s.client)
}

// escapeGlob quotes the characters that SCAN MATCH patterns treat specially,
// so that prefix matches only itself.
func escapeGlob(prefix string) string {
	var b strings.Builder
	b.Grow(len(prefix) + 8)
	for i := 0; i < len(prefix); i++ {
		switch c := prefix[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
