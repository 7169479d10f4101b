package httpapi_test

import (
	"context"
	"math/rand/v2"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/rediskv"
	"github.com/memcell/memcell/kv/rediskv/redistest"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
)

// P11: asynchronous mirroring.
//
// BenchmarkP11Write: POST /v1/memcells through the full HTTP stack (as
// P8: the in-memory primary double, 32 concurrent clients) with the KV in
// a private redis-server that is up, paused (CLIENT PAUSE WRITE for the
// whole run) or stopped, in each mirror mode, and with mirroring off.
// Target: with Redis paused or stopped, the async mode's p99 within +1 ms
// of mirroring off. queue-bytes is what the queue held at the end of the
// run (bounded by --mirror-queue-bytes, 64 MiB by default).
//
// BenchmarkP11Throughput: mirrored appends through the repository (the
// in-memory primary double, so that the mirror is what is measured) from
// 32 goroutines, on Redis and Redis Cluster, in each mode; in async mode
// the clock stops only once the queue has drained, so ns/op is the cost of
// a write that reached the KV (the queue's byte bound is lifted: the
// primary double produces faster than any KV takes). Target: async ≥ 3×
// the throughput of sync.

func BenchmarkP11Write(b *testing.B) {
	for _, tc := range []struct{ mode, kv string }{
		{"off", "up"},
		{mirror.ModeAsync, "up"},
		{mirror.ModeAsync, "paused"},
		{mirror.ModeAsync, "stopped"},
		{mirror.ModeSync, "up"},
		{mirror.ModeSync, "paused"},
		{mirror.ModeSync, "stopped"},
	} {
		b.Run("mode="+tc.mode+"/kv="+tc.kv, func(b *testing.B) {
			srv := redistest.StartServer(b)
			client := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
			store, err := rediskv.Open(context.Background(), client, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { store.Close() })
			flags := &mirror.Flags{Mirroring: tc.mode != "off", Validation: mirror.ValidationOn, Mode: tc.mode}
			if tc.mode == "off" {
				flags.Mode = mirror.ModeAsync
			}
			fx := newP8Fixture(b, store, flags)
			switch tc.kv {
			case "paused":
				ctl := redis.NewClient(&redis.Options{Addr: srv.Addr})
				if err := ctl.Do(context.Background(), "CLIENT", "PAUSE", "600000", "WRITE").Err(); err != nil {
					b.Fatal(err)
				}
				// Before the repository's Close (cleanups run last
				// first), so that it drains.
				b.Cleanup(func() {
					_ = ctl.Do(context.Background(), "CLIENT", "UNPAUSE").Err()
					ctl.Close()
				})
			case "stopped":
				srv.Stop()
			}
			api := httptest.NewServer(fx.stack)
			defer api.Close()
			benchP8(b, api.URL, "post", true, fx)
			b.ReportMetric(float64(fx.repo.QueueStats().Bytes), "queue-bytes")
		})
	}
}

func BenchmarkP11Throughput(b *testing.B) {
	for _, tg := range []redistest.Target{redistest.Standalone(), redistest.Cluster()} {
		for _, mode := range []string{mirror.ModeSync, mirror.ModeAsync} {
			b.Run("redis="+tg.Name+"/mode="+mode, func(b *testing.B) {
				tg.Require(b)
				prefix := redistest.UniquePrefix()
				client := tg.Client()
				store, err := rediskv.Open(context.Background(), client, &rediskv.Options{Prefix: prefix})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() {
					store.Close()
					tg.DeleteNamespace(b, prefix)
				})
				benchP11Throughput(b, store, mode)
			})
		}
	}
}

func benchP11Throughput(b *testing.B, store kv.Store, mode string) {
	// The producers (the primary double answers in microseconds) outrun
	// any KV; the queue's bound is lifted so that every write is queued
	// and ns/op measures the rate at which the KV side drains it.
	repo, err := mirror.New(newMemPrimary(), store, &mirror.Options{
		Flags:      &mirror.Flags{Mirroring: true, Validation: mirror.ValidationOn, Mode: mode},
		QueueBytes: 8 << 30,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(repo.Close)
	r := rand.New(rand.NewPCG(11, 11))
	docs := make([]*memcell.MemCell, 64)
	for i := range docs {
		docs[i] = memcelltest.NewMemCell(r, 2048)
	}
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((p8Clients + procs - 1) / procs)
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m := *docs[i%len(docs)]
			i++
			_, mir, err := repo.Append(ctx, &m)
			if err != nil || (mir.Status != mirror.MirrorOK && mir.Status != mirror.MirrorQueued) {
				b.Errorf("Append = %+v, %v", mir, err)
				return
			}
		}
	})
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := repo.Drain(dctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}
