package rediskv

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// putScript is the guarded put. KEYS[1] is the Redis key, ARGV[1] the value,
// ARGV[2] the revision as a decimal without leading zeros. It returns 1 when
// the value was stored and 0 when a tombstone or a higher revision refused
// it. Revisions are compared as strings, shorter first, because Lua numbers
// are doubles and cannot tell 2^53 from 2^53+1.
var putScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 't') == 1 then
	return 0
end
local old = redis.call('HGET', KEYS[1], 'r')
if old then
	local new = ARGV[2]
	if #old > #new or (#old == #new and old > new) then
		return 0
	end
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'r', ARGV[2])
return 1
`)

// deleteScript deletes KEYS[1] and leaves the tombstone {t: 1} that expires
// after ARGV[1] milliseconds. It returns 1 when the key had a live value.
var deleteScript = redis.NewScript(`
local existed = redis.call('HEXISTS', KEYS[1], 'v')
redis.call('DEL', KEYS[1])
local grace = tonumber(ARGV[1])
if grace > 0 then
	redis.call('HSET', KEYS[1], 't', '1')
	redis.call('PEXPIRE', KEYS[1], grace)
end
return existed
`)

// loadScripts loads the scripts into the script cache of every server (every
// master of a cluster), so that EVALSHA finds them.
func (s *Store) loadScripts(ctx context.Context) error {
	return s.forEachNode(ctx, func(ctx context.Context, c redis.Cmdable) error {
		for _, sc := range []*redis.Script{putScript, deleteScript} {
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
