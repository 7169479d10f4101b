//go:build rocksdb

package memcelltest

import (
	"context"
	"testing"
	"time"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/rocksdbkv"
)

// Built with the tag rocksdb, the mirror suites and benchmarks also run on
// RocksDB.
func init() {
	tagged = append(tagged, KVBackend{"rocksdb", func(t testing.TB, grace time.Duration) kv.Store {
		s, err := rocksdbkv.Open(context.Background(), t.TempDir(), &rocksdbkv.Options{TombstoneGrace: grace})
		return closing(t, s, err)
	}})
}
