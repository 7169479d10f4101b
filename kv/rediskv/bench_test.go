package rediskv

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/kvtest"
	"github.com/memcell/memcell/kv/rediskv/redistest"
)

// The benchmarks run against the standalone Redis of the tests. Each one
// compares the store (impl=ours) with go-redis doing the same work by hand
// (impl=raw) on the same client, so that
//
//	go test -run '^$' -bench . -count 10 ./kv/rediskv > bench.txt
//	benchstat -col /impl bench.txt
//
// shows the cost of the store over the library (target P5 in
// docs/benchmarks.md: at most 10%).

// BenchmarkStore runs the shared benchmarks, comparable across backends.
func BenchmarkStore(b *testing.B) {
	tg := standalone()
	tg.Require(b)
	kvtest.RunBenchmarks(b, func(t testing.TB, grace time.Duration) kv.Store { return tg.open(t, grace) })
}

// benchStore returns a store filled with kvtest.BenchKeys values of
// kvtest.ValueSize bytes, and its prefix.
func benchStore(b *testing.B) (*Store, string) {
	prefix := redistest.UniquePrefix()
	s := standalone().openPrefix(b, prefix, time.Hour)
	kvtest.Fill(b, s)
	return s, prefix
}

func BenchmarkGet(b *testing.B) {
	s, prefix := benchStore(b)
	ctx := context.Background()
	b.Run("impl=ours", func(b *testing.B) {
		b.SetBytes(kvtest.ValueSize)
		for i := 0; b.Loop(); i++ {
			if _, err := s.Get(ctx, kvtest.BenchKey(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=raw", func(b *testing.B) {
		b.SetBytes(kvtest.ValueSize)
		for i := 0; b.Loop(); i++ {
			if _, err := s.client.HGet(ctx, prefix+kvtest.BenchKey(i), "v").Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// rawPutScript is the store's guarded put, run by the raw benchmark through
// the library directly so both sides do the same work.
var rawPutScript = putScript

func BenchmarkPut(b *testing.B) {
	s, prefix := benchStore(b)
	ctx := context.Background()
	if err := rawPutScript.Load(ctx, s.client).Err(); err != nil {
		b.Fatal(err)
	}
	v := kvtest.BenchValue(1)
	// Revisions rise across all sub-benchmarks and runs, so that every put
	// is stored, as in live mirroring.
	var rev atomic.Uint64
	rev.Store(1)
	b.Run("impl=ours", func(b *testing.B) {
		b.SetBytes(kvtest.ValueSize)
		for i := 0; b.Loop(); i++ {
			ok, err := s.Put(ctx, kv.Entry{Key: kvtest.BenchKey(i), Value: v, Rev: rev.Add(1)})
			if err != nil || !ok {
				b.Fatalf("Put = %v, %v", ok, err)
			}
		}
	})
	b.Run("impl=raw", func(b *testing.B) {
		b.SetBytes(kvtest.ValueSize)
		for i := 0; b.Loop(); i++ {
			key := prefix + kvtest.BenchKey(i)
			n, err := s.client.EvalSha(ctx, rawPutScript.Hash(), []string{key}, v, strconv.FormatUint(rev.Add(1), 10)).Int64()
			if err != nil || n != 1 {
				b.Fatalf("EVALSHA = %d, %v", n, err)
			}
		}
	})
	// An unguarded HSET, for reference: what the guard itself costs.
	b.Run("impl=raw-hset", func(b *testing.B) {
		b.SetBytes(kvtest.ValueSize)
		for i := 0; b.Loop(); i++ {
			key := prefix + kvtest.BenchKey(i)
			if err := s.client.HSet(ctx, key, "v", v, "r", strconv.FormatUint(rev.Add(1), 10)).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkBatchGet(b *testing.B) {
	s, prefix := benchStore(b)
	ctx := context.Background()
	keys := make([]string, 100)
	b.Run("impl=ours", func(b *testing.B) {
		b.SetBytes(int64(len(keys)) * kvtest.ValueSize)
		for i := 0; b.Loop(); i++ {
			for j := range keys {
				keys[j] = kvtest.BenchKey(i*len(keys) + j)
			}
			m, err := s.BatchGet(ctx, keys)
			if err != nil || len(m) != len(keys) {
				b.Fatalf("BatchGet = %d values, %v", len(m), err)
			}
		}
	})
	b.Run("impl=raw", func(b *testing.B) {
		b.SetBytes(int64(len(keys)) * kvtest.ValueSize)
		cmds := make([]*redis.StringCmd, len(keys))
		for i := 0; b.Loop(); i++ {
			for j := range keys {
				keys[j] = kvtest.BenchKey(i*len(keys) + j)
			}
			pipe := s.client.Pipeline()
			for j, k := range keys {
				cmds[j] = pipe.HGet(ctx, prefix+k, "v")
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
			m := make(map[string][]byte, len(keys))
			for j, cmd := range cmds {
				v, err := cmd.Bytes()
				if err != nil {
					b.Fatal(err)
				}
				m[keys[j]] = v
			}
		}
	})
}
