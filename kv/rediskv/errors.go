package rediskv

import (
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/memcell/memcell/kv"
)

// mapErr is the one place where go-redis errors become kv errors. op names
// the operation and key the store key it concerned ("" for none).
func (s *Store) mapErr(op, key string, err error) error {
	where := op
	if key != "" {
		where = fmt.Sprintf("%s %q", op, key)
	}
	switch {
	case errors.Is(err, redis.Nil):
		return fmt.Errorf("rediskv: %s: %w", where, kv.ErrNotFound)
	case errors.Is(err, redis.ErrClosed):
		return fmt.Errorf("rediskv: %s: %w", where, kv.ErrClosed)
	case redis.HasErrorPrefix(err, "WRONGTYPE"):
		return fmt.Errorf("rediskv: %s: redis key %q is not a rediskv hash; keys under prefix %q must be written only by rediskv: %w",
			where, s.key(key), s.prefix, err)
	}
	return fmt.Errorf("rediskv: %s: %w", where, err)
}

// isNoScript reports whether err says the server does not have the script
// cached: go-redis turns the reply into redis.ErrNoScript only when it reads
// it at once, so pipelined commands carry the raw NOSCRIPT reply.
func isNoScript(err error) bool {
	return errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")
}
