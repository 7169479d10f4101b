package rediskv

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// The scripts compare revisions as strings, shorter first (the local
// function gt), because Lua numbers are doubles and cannot tell 2^53 from
// 2^53+1; every revision is a decimal without leading zeros.
//
// A tombstone is the hash {d: rev}. The legacy tombstone {t: "1"}, written
// before tombstones carried a revision, stands for one of revision
// 18446744073709551615 (kv.MaxRev): it refuses every put until it expires.

// putScript is the guarded put. KEYS[1] is the Redis key, ARGV[1] the value,
// ARGV[2] the revision. It returns 1 when the value was stored and 0 when a
// higher live revision, or a tombstone of an equal or higher revision,
// refused it. A put admitted over a tombstone replaces it, expiry included.
var putScript = redis.NewScript(`
local function gt(a, b) return #a > #b or (#a == #b and a > b) end
local f = redis.call('HMGET', KEYS[1], 'r', 'd', 't')
local new = ARGV[2]
if f[1] then
	if gt(f[1], new) then
		return 0
	end
elseif f[3] then
	return 0
elseif f[2] then
	if not gt(new, f[2]) then
		return 0
	end
	redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'r', new)
return 1
`)

// swapScript is the compare-and-swap. KEYS[1] is the Redis key, ARGV[1]
// the value the caller read, ARGV[2] the new value, ARGV[3] its revision.
// It returns 1 when the key held a live value of exactly the bytes ARGV[1]
// (Lua compares strings byte for byte) and now holds ARGV[2] at revision
// ARGV[3], whatever revision it held before; 0 when the key is absent, is a
// tombstone (of either form) or holds other bytes. A live hash never has an
// expiry (a put over a tombstone deletes the key first), so none is kept.
var swapScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'v', 'r', 'd', 't')
if not f[1] or not f[2] or f[3] or f[4] then
	return 0
end
if f[1] ~= ARGV[1] then
	return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'r', ARGV[3])
return 1
`)

// deleteScript is the guarded delete of KEYS[1] at revision ARGV[2]. When
// the key holds a live value of a higher revision it changes nothing and
// returns 0. Otherwise it replaces the key with the tombstone {d: rev} that
// expires after ARGV[1] milliseconds, where rev is the higher of ARGV[2] and
// the revision of the tombstone the key held, and returns 1 when the key had
// a live value.
var deleteScript = redis.NewScript(`
local function gt(a, b) return #a > #b or (#a == #b and a > b) end
local f = redis.call('HMGET', KEYS[1], 'r', 'd', 't')
local rev = ARGV[2]
local existed = 0
if f[1] then
	if gt(f[1], rev) then
		return 0
	end
	existed = 1
elseif f[3] then
	rev = '18446744073709551615'
elseif f[2] and gt(f[2], rev) then
	rev = f[2]
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', rev)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return existed
`)

// loadScripts loads the scripts into the script cache of every server (every
// master of a cluster), so that EVALSHA finds them.
func (s *Store) loadScripts(ctx context.Context) error {
	return s.forEachNode(ctx, func(ctx context.Context, c redis.Cmdable) error {
		for _, sc := range []*redis.Script{putScript, swapScript, deleteScript} {
			if err := sc.Load(ctx, c).Err(); err != nil {
				return err
			}
		}
		return nil
	})
}

// evalAll runs sc once for each key, with args[i] for keys[i], in one
// pipeline: one round trip per server. Commands refused with NOSCRIPT (the
// script cache was flushed, or a master joined the cluster) are sent again,
// once, after the scripts are loaded everywhere. The caller reads each
// command's result and error.
func (s *Store) evalAll(ctx context.Context, sc *redis.Script, keys []string, args [][]any) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(keys))
	pipe := s.client.Pipeline()
	for i, k := range keys {
		cmds[i] = pipe.EvalSha(ctx, sc.Hash(), []string{k}, args[i]...)
	}
	_, _ = pipe.Exec(ctx)

	var retry []int
	for i, cmd := range cmds {
		if isNoScript(cmd.Err()) {
			retry = append(retry, i)
		}
	}
	if len(retry) == 0 {
		return cmds
	}
	if err := s.loadScripts(ctx); err != nil {
		for _, i := range retry {
			cmds[i].SetErr(fmt.Errorf("script not cached, and loading it failed: %w", err))
		}
		return cmds
	}
	pipe = s.client.Pipeline()
	for _, i := range retry {
		cmds[i] = pipe.EvalSha(ctx, sc.Hash(), []string{keys[i]}, args[i]...)
	}
	_, _ = pipe.Exec(ctx)
	return cmds
}
