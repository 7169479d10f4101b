package leveldbkv

import (
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/internal/disktest"
	"github.com/memcell/memcell/kv/kvtest"
)

var testBackend = disktest.Backend{
	Scheme:       "leveldb",
	Capabilities: kv.Capabilities{Backend: "leveldb", OrderedScan: true, Persistent: true},
	Open: disktest.Adapt(Open, func(o disktest.Options) *Options {
		return &Options{TombstoneGrace: o.TombstoneGrace, Sync: o.Sync, CacheSize: int(o.CacheSize)}
	}),
	OpenURL: OpenURL,
	// KillSafe is nil, the defaults: LevelDB writes every write to its
	// journal file before it returns, so Sync false survives kill -9.
	RawSet:  rawSet,
	RawKeys: rawKeys,
}

var open = testBackend.Opener()

func TestConformance(t *testing.T) { kvtest.RunConformance(t, open) }

func TestMetamorphic(t *testing.T) { kvtest.RunMetamorphic(t, open, kvtest.MetamorphicOptions{}) }

func TestDisk(t *testing.T) { disktest.Run(t, testBackend) }

// rawSet writes values under keys with LevelDB itself, bypassing the
// record format.
func rawSet(t testing.TB, dir string, values map[string][]byte) {
	t.Helper()
	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for k, v := range values {
		if err := db.Put([]byte(k), v, &opt.WriteOptions{Sync: true}); err != nil {
			t.Fatal(err)
		}
	}
}

// rawKeys lists the keys on disk, tombstone records included.
func rawKeys(t testing.TB, dir string) []string {
	t.Helper()
	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it := db.NewIterator(nil, nil)
	defer it.Release()
	var keys []string
	for it.Next() {
		keys = append(keys, string(it.Key()))
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	return keys
}
