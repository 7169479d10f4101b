package rediskv

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/kvtest"
	"github.com/memcell/memcell/kv/rediskv/redistest"
)

// The tests need a standalone Redis and a Redis Cluster. They fail, rather
// than skip, when either cannot be reached (go test -short skips instead):
//
//	redis-server --daemonize yes                # or set MEMCELL_TEST_REDIS_ADDR
//	scripts/redis-cluster.sh start              # or set MEMCELL_TEST_REDIS_CLUSTER
//	go test -race ./kv/rediskv
//	scripts/redis-cluster.sh stop
//
// target is one Redis deployment the tests run against.
type target struct{ redistest.Target }

func standalone() target { return target{redistest.Standalone()} }
func cluster() target    { return target{redistest.Cluster()} }
func targets() []target  { return []target{standalone(), cluster()} }

// open returns a store on tg with a fresh prefix whose keys are all deleted
// when the test ends.
func (tg target) open(t testing.TB, grace time.Duration) *Store {
	t.Helper()
	return tg.openPrefix(t, redistest.UniquePrefix(), grace)
}

func (tg target) openPrefix(t testing.TB, prefix string, grace time.Duration) *Store {
	t.Helper()
	tg.Require(t)
	s, err := Open(context.Background(), tg.Client(), &Options{Prefix: prefix, TombstoneGrace: grace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		tg.DeleteNamespace(t, prefix)
	})
	return s
}

func TestConformance(t *testing.T) {
	tg := standalone()
	tg.Require(t) // fail once here rather than in every subtest
	kvtest.RunConformance(t, func(t testing.TB, grace time.Duration) kv.Store { return tg.open(t, grace) })
}

func TestConformanceCluster(t *testing.T) {
	tg := cluster()
	tg.Require(t)
	kvtest.RunConformance(t, func(t testing.TB, grace time.Duration) kv.Store { return tg.open(t, grace) })
}

// TestMetamorphic compares each deployment with memkv on one seeded random
// stream of operations (kvtest.Metamorphic).
func TestMetamorphic(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.Name, func(t *testing.T) {
			tg.Require(t)
			kvtest.RunMetamorphic(t, func(t testing.TB, grace time.Duration) kv.Store { return tg.open(t, grace) }, kvtest.MetamorphicOptions{})
		})
	}
}

func TestCapabilities(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.Name, func(t *testing.T) {
			got := tg.open(t, 0).Capabilities()
			want := kv.Capabilities{Backend: "redis", Persistent: true, Shared: true}
			if tg.Cluster {
				want.Backend = "redis-cluster"
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Capabilities (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLayout checks the documented data layout, which operators rely on to
// read values by hand with redis-cli.
func TestLayout(t *testing.T) {
	tg := standalone()
	prefix := redistest.UniquePrefix()
	s := tg.openPrefix(t, prefix, time.Minute)
	ctx := context.Background()
	mustPut(t, s, "doc", "value", 1<<63+1)
	got, err := s.client.HGetAll(ctx, prefix+"doc").Result()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"v": "value", "r": "9223372036854775809"}, got); diff != "" {
		t.Errorf("HGETALL of a live key (-want +got):\n%s", diff)
	}
	if ok, err := s.Delete(ctx, "doc", 1<<63+2); err != nil || !ok {
		t.Fatalf("Delete = %v, %v; want true, nil", ok, err)
	}
	got, err = s.client.HGetAll(ctx, prefix+"doc").Result()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"d": "9223372036854775810"}, got); diff != "" {
		t.Errorf("HGETALL of a tombstone (-want +got):\n%s", diff)
	}
	ttl, err := s.client.PTTL(ctx, prefix+"doc").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("tombstone PTTL = %v, %v; want within the one-minute grace", ttl, err)
	}
}

// TestSwapLayout checks that a swap keeps the documented layout (v and r,
// no expiry), compares the v field byte for byte, and refuses a hash that
// holds a tombstone's revision field, even one that also has a v field.
func TestSwapLayout(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.Name, func(t *testing.T) {
			prefix := redistest.UniquePrefix()
			s := tg.openPrefix(t, prefix, time.Minute)
			ctx := context.Background()
			binary := "a\x00b\xff\xfe" + strings.Repeat("é", 3)
			mustPut(t, s, "doc", binary, 1<<63+1)
			for _, old := range []string{"a", "a\x00b", binary + "\x00", strings.ToUpper(binary)} {
				if ok, err := s.Swap(ctx, kv.Entry{Key: "doc", Value: []byte("no"), Rev: 1}, []byte(old)); err != nil || ok {
					t.Errorf("Swap(old %q) = %v, %v; want refused", old, ok, err)
				}
			}
			if ok, err := s.Swap(ctx, kv.Entry{Key: "doc", Value: []byte("lowered"), Rev: 7}, []byte(binary)); err != nil || !ok {
				t.Fatalf("Swap of the exact bytes = %v, %v; want true, nil", ok, err)
			}
			got, err := s.client.HGetAll(ctx, prefix+"doc").Result()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]string{"v": "lowered", "r": "7"}, got); diff != "" {
				t.Errorf("HGETALL after a swap (-want +got):\n%s", diff)
			}
			if ttl, err := s.client.PTTL(ctx, prefix+"doc").Result(); err != nil || ttl != -1 {
				t.Errorf("PTTL after a swap = %v, %v; want no expiry (-1)", ttl, err)
			}
			// A tombstone-shaped hash, even with a stray v field, refuses.
			if err := s.client.HSet(ctx, prefix+"odd", "d", "3", "v", "x").Err(); err != nil {
				t.Fatal(err)
			}
			if ok, err := s.Swap(ctx, kv.Entry{Key: "odd", Value: []byte("y"), Rev: 1}, []byte("x")); err != nil || ok {
				t.Errorf("Swap over a hash holding d = %v, %v; want refused", ok, err)
			}
			if v, _ := s.client.HGet(ctx, prefix+"odd", "v").Result(); v != "x" {
				t.Errorf("the refused swap changed the hash: v = %q", v)
			}
		})
	}
}

// TestLegacyTombstone checks that the tombstone of earlier versions, the
// hash {t: "1"}, still refuses every put until it expires, and that a
// delete over it leaves a tombstone of revision kv.MaxRev.
func TestLegacyTombstone(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.Name, func(t *testing.T) {
			prefix := redistest.UniquePrefix()
			s := tg.openPrefix(t, prefix, time.Minute)
			ctx := context.Background()
			for _, k := range []string{"old", "old2"} {
				if err := s.client.HSet(ctx, prefix+k, "t", "1").Err(); err != nil {
					t.Fatal(err)
				}
				if err := s.client.PExpire(ctx, prefix+k, time.Minute).Err(); err != nil {
					t.Fatal(err)
				}
			}
			for _, rev := range []uint64{0, 1, 2, kv.MaxRev} {
				if ok, err := s.Put(ctx, kv.Entry{Key: "old", Value: []byte("late"), Rev: rev}); err != nil || ok {
					t.Errorf("Put(rev %d) over a legacy tombstone = %v, %v; want refused", rev, ok, err)
				}
			}
			if ok, err := s.Delete(ctx, "old2", 5); err != nil || ok {
				t.Fatalf("Delete over a legacy tombstone = %v, %v; want false, nil", ok, err)
			}
			got, err := s.client.HGetAll(ctx, prefix+"old2").Result()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]string{"d": "18446744073709551615"}, got); diff != "" {
				t.Errorf("HGETALL after a delete over a legacy tombstone (-want +got):\n%s", diff)
			}
			if n, err := s.BatchPut(ctx, []kv.Entry{{Key: "old2", Value: []byte("x"), Rev: 6}}); err != nil || n != 0 {
				t.Errorf("BatchPut over it = %d, %v; want 0", n, err)
			}
			for _, old := range []string{"", "1"} {
				if ok, err := s.Swap(ctx, kv.Entry{Key: "old", Value: []byte("x"), Rev: 1}, []byte(old)); err != nil || ok {
					t.Errorf("Swap(old %q) over a legacy tombstone = %v, %v; want refused", old, ok, err)
				}
			}
		})
	}
}

// TestRevisionCompare drives the Lua comparison through the edges where a
// numeric comparison in Lua (doubles) would be wrong.
func TestRevisionCompare(t *testing.T) {
	s := standalone().open(t, 0)
	ctx := context.Background()
	for _, tc := range []struct {
		stored, put uint64
		want        bool
	}{
		{0, 0, true},
		{9, 10, true},
		{10, 9, false},
		{1 << 53, 1<<53 + 1, true},
		{1<<53 + 1, 1 << 53, false},
		{1<<64 - 1, 1<<64 - 2, false},
		{1<<64 - 2, 1<<64 - 1, true},
		{1<<64 - 1, 1<<64 - 1, true},
		{99, 100, true},
		{100, 99, false},
	} {
		key := fmt.Sprintf("%d-%d", tc.stored, tc.put)
		mustPut(t, s, key, "old", tc.stored)
		got, err := s.Put(ctx, kv.Entry{Key: key, Value: []byte("new"), Rev: tc.put})
		if err != nil || got != tc.want {
			t.Errorf("Put(rev %d) over rev %d = %v, %v; want %v", tc.put, tc.stored, got, err, tc.want)
		}
		// A delete of revision put is refused by the same live revisions.
		mustPut(t, s, "d"+key, "old", tc.stored)
		if got, err := s.Delete(ctx, "d"+key, tc.put); err != nil || got != tc.want {
			t.Errorf("Delete(rev %d) over rev %d = %v, %v; want %v", tc.put, tc.stored, got, err, tc.want)
		}
		// A tombstone of revision stored admits only higher revisions; a
		// second delete keeps the higher of the two revisions.
		if _, err := s.Delete(ctx, "t"+key, tc.stored); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Delete(ctx, "t"+key, tc.stored/2); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Put(ctx, kv.Entry{Key: "t" + key, Value: []byte("new"), Rev: tc.put}); err != nil || got != (tc.put > tc.stored) {
			t.Errorf("Put(rev %d) over a tombstone of rev %d = %v, %v; want %v", tc.put, tc.stored, got, err, tc.put > tc.stored)
		}
	}
}

// TestClusterBatchAcrossSlots checks that one batch may hold keys of
// different slots, which a multi-key command such as MGET would refuse.
func TestClusterBatchAcrossSlots(t *testing.T) {
	tg := cluster()
	prefix := redistest.UniquePrefix()
	s := tg.openPrefix(t, prefix, time.Hour)
	ctx := context.Background()
	keys := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"}
	slots := map[int64]bool{}
	for _, k := range keys {
		slot, err := s.client.ClusterKeySlot(ctx, prefix+k).Result()
		if err != nil {
			t.Fatal(err)
		}
		slots[slot] = true
	}
	if len(slots) < 2 {
		t.Fatalf("test keys fall in %d slot(s); pick keys that spread", len(slots))
	}
	entries := make([]kv.Entry, len(keys))
	want := map[string][]byte{}
	for i, k := range keys {
		entries[i] = kv.Entry{Key: k, Value: []byte("v-" + k), Rev: 1}
		want[k] = []byte("v-" + k)
	}
	if n, err := s.BatchPut(ctx, entries); err != nil || n != len(keys) {
		t.Fatalf("BatchPut across %d slots = %d, %v", len(slots), n, err)
	}
	got, err := s.BatchGet(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("BatchGet across slots (-want +got):\n%s", diff)
	}
	if n, err := s.BatchDelete(ctx, deletions(1, keys...)); err != nil || n != len(keys) {
		t.Fatalf("BatchDelete across slots = %d, %v", n, err)
	}
	if got, err := s.BatchGet(ctx, keys); err != nil || len(got) != 0 {
		t.Errorf("BatchGet after BatchDelete = %v, %v; want none", got, err)
	}
}

// countingHook counts what one cluster node is sent.
type countingHook struct {
	pipelines atomic.Int64 // pipelines (round trips) of data commands
	commands  atomic.Int64 // single data commands
}

// isHousekeeping reports whether cmd is go-redis setting up a connection or
// reading the cluster topology rather than doing our work.
func isHousekeeping(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select", "readonly", "cluster", "command":
		return true
	}
	return false
}

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !isHousekeeping(cmd) {
			h.commands.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !slices.ContainsFunc(cmds, isHousekeeping) {
			h.pipelines.Add(1)
		}
		return next(ctx, cmds)
	}
}

// TestClusterRoundTrips checks that a batch costs at most one round trip per
// master, by counting what each node's client is sent.
func TestClusterRoundTrips(t *testing.T) {
	tg := cluster()
	tg.Require(t)
	prefix := redistest.UniquePrefix()
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: tg.Addrs, ContextTimeoutEnabled: true})
	var (
		mu    sync.Mutex
		hooks = map[string]*countingHook{}
	)
	client.OnNewNode(func(node *redis.Client) {
		h := &countingHook{}
		node.AddHook(h)
		mu.Lock()
		hooks[node.Options().Addr] = h
		mu.Unlock()
	})
	ctx := context.Background()
	s, err := Open(ctx, client, &Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		tg.DeleteNamespace(t, prefix)
	})
	keys := make([]string, 100)
	entries := make([]kv.Entry, len(keys))
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%03d", i)
		entries[i] = kv.Entry{Key: keys[i], Value: []byte("value"), Rev: 1}
	}

	check := func(op string, call func() error) {
		t.Helper()
		mu.Lock()
		for _, h := range hooks {
			h.pipelines.Store(0)
			h.commands.Store(0)
		}
		mu.Unlock()
		if err := call(); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		mu.Lock()
		defer mu.Unlock()
		used := 0
		for addr, h := range hooks {
			p, c := h.pipelines.Load(), h.commands.Load()
			if p > 1 || c > 0 {
				t.Errorf("%s of %d keys sent node %s %d pipelines and %d single commands; want at most one pipeline", op, len(keys), addr, p, c)
			}
			used += int(p)
		}
		if used < 2 {
			t.Errorf("%s of %d keys reached %d node(s); the keys should spread over the cluster", op, len(keys), used)
		}
	}
	check("BatchPut", func() error {
		n, err := s.BatchPut(ctx, entries)
		if err == nil && n != len(entries) {
			err = fmt.Errorf("stored %d", n)
		}
		return err
	})
	check("BatchGet", func() error {
		m, err := s.BatchGet(ctx, keys)
		if err == nil && len(m) != len(keys) {
			err = fmt.Errorf("got %d values", len(m))
		}
		return err
	})
	check("BatchDelete", func() error {
		n, err := s.BatchDelete(ctx, deletions(kv.MaxRev, keys...))
		if err == nil && n != len(keys) {
			err = fmt.Errorf("deleted %d", n)
		}
		return err
	})
}

// TestScriptCacheFlushed checks that puts and deletes recover when the
// servers forget the scripts (SCRIPT FLUSH, a restart, a new master).
func TestScriptCacheFlushed(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.Name, func(t *testing.T) {
			s := tg.open(t, time.Hour)
			ctx := context.Background()
			flush := func() {
				t.Helper()
				if err := s.forEachNode(ctx, func(ctx context.Context, c redis.Cmdable) error {
					return c.ScriptFlush(ctx).Err()
				}); err != nil {
					t.Fatal(err)
				}
			}
			flush()
			if n, err := s.BatchPut(ctx, []kv.Entry{{Key: "a", Value: []byte("A"), Rev: 1}, {Key: "b", Value: []byte("B"), Rev: 1}}); err != nil || n != 2 {
				t.Fatalf("BatchPut after SCRIPT FLUSH = %d, %v; want 2, nil", n, err)
			}
			flush()
			if n, err := s.BatchDelete(ctx, deletions(1, "a", "c")); err != nil || n != 1 {
				t.Fatalf("BatchDelete after SCRIPT FLUSH = %d, %v; want 1, nil", n, err)
			}
			flush()
			mustPut(t, s, "d", "D", 1)
			flush()
			if ok, err := s.Swap(ctx, kv.Entry{Key: "b", Value: []byte("B"), Rev: 0}, []byte("B")); err != nil || !ok {
				t.Fatalf("Swap after SCRIPT FLUSH = %v, %v; want true, nil", ok, err)
			}
			flush()
			if ok, err := s.Delete(ctx, "d", 1); err != nil || !ok {
				t.Fatalf("Delete after SCRIPT FLUSH = %v, %v; want true, nil", ok, err)
			}
			got, err := s.BatchGet(ctx, []string{"a", "b", "c", "d"})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string][]byte{"b": []byte("B")}, got); diff != "" {
				t.Errorf("BatchGet (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWrongType puts a foreign value under the store's prefix: every
// operation that meets it fails with an error that names the problem.
func TestWrongType(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.Name, func(t *testing.T) {
			prefix := redistest.UniquePrefix()
			s := tg.openPrefix(t, prefix, time.Hour)
			ctx := context.Background()
			if err := s.client.Set(ctx, prefix+"foreign", "a plain string", 0).Err(); err != nil {
				t.Fatal(err)
			}
			mustPut(t, s, "ours", "v", 1)
			calls := map[string]func() error{
				"Get":      func() error { _, err := s.Get(ctx, "foreign"); return err },
				"BatchGet": func() error { _, err := s.BatchGet(ctx, []string{"ours", "foreign"}); return err },
				"Put":      func() error { _, err := s.Put(ctx, kv.Entry{Key: "foreign", Value: []byte("x")}); return err },
				"BatchPut": func() error { _, err := s.BatchPut(ctx, []kv.Entry{{Key: "foreign", Value: []byte("x")}}); return err },
				"Swap": func() error {
					_, err := s.Swap(ctx, kv.Entry{Key: "foreign", Value: []byte("x")}, []byte("a plain string"))
					return err
				},
				"Delete":      func() error { _, err := s.Delete(ctx, "foreign", 1); return err },
				"BatchDelete": func() error { _, err := s.BatchDelete(ctx, deletions(1, "foreign")); return err },
				"Scan":        func() error { return s.Scan(ctx, "", func(kv.Item) error { return nil }) },
				"Stats":       func() error { _, err := s.Stats(ctx); return err },
			}
			for name, call := range calls {
				err := call()
				if err == nil || !strings.Contains(err.Error(), "is not a rediskv hash") || !strings.Contains(err.Error(), "WRONGTYPE") {
					t.Errorf("%s on a string key = %v; want an error saying the key is not a rediskv hash", name, err)
				}
			}
			if v, err := s.client.Get(ctx, prefix+"foreign").Result(); err != nil || v != "a plain string" {
				t.Errorf("foreign key now %q, %v; rediskv must leave it alone", v, err)
			}
			if got := mustGet(t, s, "ours"); got != "v" {
				t.Errorf("Get(ours) = %q", got)
			}
		})
	}
}

// TestTwoReplicas simulates two service replicas: two stores with separate
// clients share one prefix, and writers on both put random revisions of the
// same keys. Each key must end at its highest revision.
func TestTwoReplicas(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.Name, func(t *testing.T) {
			prefix := redistest.UniquePrefix()
			replicas := []*Store{tg.openPrefix(t, prefix, time.Hour), tg.openPrefix(t, prefix, time.Hour)}
			seed := mrand.Uint64()
			t.Logf("seed %d", seed)
			const keys, writers, perWriter = 8, 8, 50
			var (
				mu  sync.Mutex
				max [keys]uint64
				wg  sync.WaitGroup
			)
			errs := make(chan error, writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := replicas[w%2]
					r := mrand.New(mrand.NewPCG(seed, uint64(w)))
					for range perWriter {
						k := r.IntN(keys)
						rev := r.Uint64() // the whole range, beyond float64 precision
						mu.Lock()
						max[k] = maxU64(max[k], rev)
						mu.Unlock()
						e := kv.Entry{Key: fmt.Sprint("k", k), Value: fmt.Append(nil, rev), Rev: rev}
						var err error
						if r.IntN(2) == 0 {
							_, err = s.Put(context.Background(), e)
						} else {
							_, err = s.BatchPut(context.Background(), []kv.Entry{e})
						}
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("seed %d: %v", seed, err)
			}
			for k := range keys {
				if max[k] == 0 {
					continue
				}
				for i, s := range replicas {
					if got, want := mustGet(t, s, fmt.Sprint("k", k)), fmt.Sprint(max[k]); got != want {
						t.Errorf("seed %d: replica %d reads k%d = %s, want the highest revision %s", seed, i, k, got, want)
					}
				}
			}
		})
	}
}

func maxU64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// TestScanNamespace checks that a store sees only its own prefix, and that
// glob characters in the prefix are literal.
func TestScanNamespace(t *testing.T) {
	tg := standalone()
	base := redistest.UniquePrefix()
	a := tg.openPrefix(t, base+"a*[x]?\\:", time.Hour)
	b := tg.openPrefix(t, base+"ab:", time.Hour)
	mustPut(t, a, "k1", "a1", 1)
	mustPut(t, b, "k1", "b1", 1)
	mustPut(t, b, "k2", "b2", 1)
	var got []string
	if err := a.Scan(context.Background(), "", func(it kv.Item) error {
		got = append(got, it.Key+"="+string(it.Value))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"k1=a1"}, got); diff != "" {
		t.Errorf("Scan of store a (-want +got):\n%s", diff)
	}
	if st, err := b.Stats(context.Background()); err != nil || st != (kv.Stats{EntryCount: 2, TotalSizeBytes: 4}) {
		t.Errorf("Stats of store b = %+v, %v", st, err)
	}
}

func TestEscapeGlob(t *testing.T) {
	for in, want := range map[string]string{
		"":            "",
		"memcell:":    "memcell:",
		`a*b?c[d]e\f`: `a\*b\?c\[d\]e\\f`,
		"{tag}:日本-^!": "{tag}:日本-^!",
	} {
		if got := escapeGlob(in); got != want {
			t.Errorf("escapeGlob(%q) = %q, want %q", in, got, want)
		}
	}
}

func mustPut(t testing.TB, s kv.Store, key, value string, rev uint64) {
	t.Helper()
	ok, err := s.Put(context.Background(), kv.Entry{Key: key, Value: []byte(value), Rev: rev})
	if err != nil || !ok {
		t.Fatalf("Put(%q, rev %d) = %v, %v; want stored", key, rev, ok, err)
	}
}

func mustGet(t testing.TB, s kv.Store, key string) string {
	t.Helper()
	v, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return string(v)
}

// deletions returns deletions of keys, all at rev.
func deletions(rev uint64, keys ...string) []kv.Deletion {
	out := make([]kv.Deletion, len(keys))
	for i, k := range keys {
		out[i] = kv.Deletion{Key: k, Rev: rev}
	}
	return out
}
