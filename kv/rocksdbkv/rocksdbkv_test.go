//go:build rocksdb

package rocksdbkv

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/internal/disktest"
	"github.com/memcell/memcell/kv/kvtest"
)

var testBackend = disktest.Backend{
	Scheme:       "rocksdb",
	Capabilities: kv.Capabilities{Backend: "rocksdb", OrderedScan: true, Persistent: true},
	Open: disktest.Adapt(Open, func(o disktest.Options) *Options {
		return &Options{TombstoneGrace: o.TombstoneGrace, Sync: o.Sync, CacheSize: o.CacheSize, SyncInterval: o.SyncInterval}
	}),
	OpenURL: OpenURL,
	// RocksDB writes every write to its log file before it returns, so
	// Sync false survives kill -9 even with the group sync off.
	KillSafe: &disktest.Options{SyncInterval: -1},
	// The group sync is for machine crashes; kill -9 must not undo it
	// either.
	GroupSync: &disktest.Options{SyncInterval: 50 * time.Millisecond},
	RawSet:    rawSet,
	RawKeys:   rawKeys,
}

var open = testBackend.Opener()

func TestConformance(t *testing.T) { kvtest.RunConformance(t, open) }

func TestMetamorphic(t *testing.T) { kvtest.RunMetamorphic(t, open, kvtest.MetamorphicOptions{}) }

func TestDisk(t *testing.T) { disktest.Run(t, testBackend) }

// rawSet writes values under keys with RocksDB itself, bypassing the
// record format.
func rawSet(t testing.TB, dir string, values map[string][]byte) {
	t.Helper()
	db, err := openDB(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	wo.SetSync(true)
	for k, v := range values {
		if err := db.Put(wo, []byte(k), v); err != nil {
			t.Fatal(err)
		}
	}
}

// rawKeys lists the keys on disk, tombstone records included.
func rawKeys(t testing.TB, dir string) []string {
	t.Helper()
	db, err := openDB(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	it := db.NewIterator(ro)
	defer it.Close()
	var keys []string
	for it.SeekToFirst(); it.Valid(); it.Next() {
		keys = append(keys, string(it.Key().Data()))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestCacheSize checks that the URL's cache_size reaches RocksDB: the
// block cache's capacity that RocksDB writes to its LOG file at open is
// the one asked for, and RocksDB's default (8 MiB) without it.
func TestCacheSize(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"?cache_size=3145728", 3 << 20},
		{"", 8 << 20},
	} {
		dir := t.TempDir()
		u, err := url.Parse("rocksdb://" + filepath.ToSlash(dir) + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		s, err := OpenURL(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		log, err := os.ReadFile(filepath.Join(dir, "LOG"))
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("block_cache_options:\n    capacity : %d\n", tc.want)
		if !bytes.Contains(log, []byte(want)) {
			t.Errorf("%s: RocksDB's LOG lacks %q", u, want)
		}
	}
}
