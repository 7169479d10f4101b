package memcelltest

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/leveldbkv"
	"github.com/memcell/memcell/kv/memkv"
	"github.com/memcell/memcell/kv/pebblekv"
	"github.com/memcell/memcell/kv/rediskv"
	"github.com/memcell/memcell/kv/rediskv/redistest"
)

// KVBackend opens fresh, empty stores of one backend configuration.
type KVBackend struct {
	Name string
	// Open returns a new empty store, closed and cleaned up when the test
	// ends. grace is its tombstone grace period (0 for the default).
	Open func(t testing.TB, grace time.Duration) kv.Store
}

// tagged are the backends behind build tags (RocksDB: rocksdb.go), added
// by the files those tags build.
var tagged []KVBackend

// KVBackends are the five configurations every mirror suite runs with:
// memory, Pebble and LevelDB on temporary directories, standalone Redis and
// Redis Cluster (each store with its own key prefix); built with the tag
// rocksdb, RocksDB too.
func KVBackends() []KVBackend {
	return append([]KVBackend{
		{"memory", func(t testing.TB, grace time.Duration) kv.Store {
			s, err := memkv.New(&memkv.Options{TombstoneGrace: grace})
			return closing(t, s, err)
		}},
		{"pebble", func(t testing.TB, grace time.Duration) kv.Store {
			s, err := pebblekv.Open(context.Background(), t.TempDir(), &pebblekv.Options{TombstoneGrace: grace})
			return closing(t, s, err)
		}},
		{"leveldb", func(t testing.TB, grace time.Duration) kv.Store {
			s, err := leveldbkv.Open(context.Background(), t.TempDir(), &leveldbkv.Options{TombstoneGrace: grace})
			return closing(t, s, err)
		}},
		{"redis", redisBackend(redistest.Standalone())},
		{"redis-cluster", redisBackend(redistest.Cluster())},
	}, tagged...)
}

func redisBackend(tg redistest.Target) func(t testing.TB, grace time.Duration) kv.Store {
	return func(t testing.TB, grace time.Duration) kv.Store {
		t.Helper()
		tg.Require(t)
		prefix := redistest.UniquePrefix()
		q := url.Values{"prefix": {prefix}}
		if grace > 0 {
			q.Set("tombstone_grace", grace.String())
		}
		u, err := url.Parse(tg.URL(q.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		s, err := rediskv.OpenURL(context.Background(), u)
		t.Cleanup(func() { tg.DeleteNamespace(t, prefix) })
		return closing(t, s, err)
	}
}

func closing[S kv.Store](t testing.TB, s S, err error) kv.Store {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
