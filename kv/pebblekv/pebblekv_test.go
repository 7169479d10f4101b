package pebblekv

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/internal/disktest"
	"github.com/memcell/memcell/kv/kvtest"
)

var testBackend = disktest.Backend{
	Scheme:       "pebble",
	Capabilities: kv.Capabilities{Backend: "pebble", OrderedScan: true, Persistent: true},
	Open: disktest.Adapt(Open, func(o disktest.Options) *Options {
		return &Options{TombstoneGrace: o.TombstoneGrace, Sync: o.Sync, CacheSize: o.CacheSize, SyncInterval: o.SyncInterval}
	}),
	OpenURL: OpenURL,
	// Without Sync a write may still be in Pebble's log buffer when the
	// process is killed.
	KillSafe: &disktest.Options{Sync: true},
	// With the defaults, the group sync makes them durable shortly after.
	GroupSync: &disktest.Options{SyncInterval: 50 * time.Millisecond},
	RawSet:    rawSet,
	RawKeys:   rawKeys,
}

var open = testBackend.Opener()

func TestConformance(t *testing.T) { kvtest.RunConformance(t, open) }

func TestMetamorphic(t *testing.T) { kvtest.RunMetamorphic(t, open, kvtest.MetamorphicOptions{}) }

func TestDisk(t *testing.T) { disktest.Run(t, testBackend) }

// rawSet writes values under keys with Pebble itself, bypassing the record
// format.
func rawSet(t testing.TB, dir string, values map[string][]byte) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: testLogger{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for k, v := range values {
		if err := db.Set([]byte(k), v, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
}

// rawKeys lists the keys on disk, tombstone records included.
func rawKeys(t testing.TB, dir string) []string {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: testLogger{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var keys []string
	for ok := it.First(); ok; ok = it.Next() {
		keys = append(keys, string(it.Key()))
	}
	return keys
}

// testLogger sends Pebble's messages to the test log.
type testLogger struct{ t testing.TB }

func (l testLogger) Infof(format string, args ...any)  { l.t.Logf(format, args...) }
func (l testLogger) Errorf(format string, args ...any) { l.t.Errorf(format, args...) }
func (l testLogger) Fatalf(format string, args ...any) { l.t.Fatalf(format, args...) }

// TestEngineGetAllocs checks that the engine's point read, which every
// guarded put and every get makes, passes the key to Pebble without copying
// it: Pebble's Get itself allocates nothing for a key it finds.
func TestEngineGetAllocs(t *testing.T) {
	db, err := pebble.Open(t.TempDir(), pebbleOptions(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := kvtest.BenchKey(7)
	if err := db.Set([]byte(key), []byte("value"), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	e := engine{db}
	allocs := testing.AllocsPerRun(100, func() {
		_, closer, found, err := e.Get(key)
		if err != nil || !found {
			t.Fatalf("Get(%q) = found %v, %v", key, found, err)
		}
		closer.Close()
	})
	if allocs != 0 {
		t.Errorf("engine.Get allocates %v times per call, want 0", allocs)
	}
}
