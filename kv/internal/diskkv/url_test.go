package diskkv

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/memcell/memcell/kv"
)

// TestParseURL checks what each URL form and option of a disk backend's URL
// parses to; disktest's OpenURL checks that the backends open with them.
func TestParseURL(t *testing.T) {
	withSync := Backend{Name: "rocksdbkv", Scheme: "rocksdb", GroupSync: true}
	for _, tc := range []struct {
		b    Backend
		url  string
		want URLOptions
	}{
		{withSync, "rocksdb:///var/lib/kv", URLOptions{Dir: "/var/lib/kv"}},
		{withSync, "rocksdb:rel/dir", URLOptions{Dir: "rel/dir"}},
		{withSync, "rocksdb:rel%20dir/x", URLOptions{Dir: "rel dir/x"}},
		{withSync, "rocksdb:///abs/dir?sync=true&tombstone_grace=30s&cache_size=1048576&sync_interval=50ms",
			URLOptions{Dir: "/abs/dir", Sync: true, TombstoneGrace: 30 * time.Second, CacheSize: 1 << 20, SyncInterval: 50 * time.Millisecond}},
		{withSync, "rocksdb:rel?sync=false&tombstone_grace=0s&sync_interval=0s", URLOptions{Dir: "rel"}},
		{Backend{Name: "leveldbkv", Scheme: "leveldb"}, "leveldb:rel?cache_size=0&sync=1",
			URLOptions{Dir: "rel", Sync: true}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got, err := tc.b.ParseURL(mustParse(t, tc.url))
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			if got != tc.want {
				t.Errorf("ParseURL = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestParseURLRefuses checks the URLs that name no directory or carry an
// option the backend does not have.
func TestParseURLRefuses(t *testing.T) {
	withSync := Backend{Name: "rocksdbkv", Scheme: "rocksdb", GroupSync: true}
	noSync := Backend{Name: "leveldbkv", Scheme: "leveldb"}
	for _, tc := range []struct {
		b   Backend
		url string
	}{
		{withSync, "rocksdb://host/dir"},
		{withSync, "rocksdb://user@/dir"},
		{withSync, "rocksdb:"},
		{withSync, "rocksdb:%zz"},
		{withSync, "rocksdb:rel?colour=blue"},
		{withSync, "rocksdb:rel?cache_size=-1"},
		{withSync, "rocksdb:rel?tombstone_grace=soon"},
		{withSync, "rocksdb:rel?sync_interval=-1s"},
		{noSync, "leveldb:rel?sync_interval=50ms"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			o, err := tc.b.ParseURL(mustParse(t, tc.url))
			if !errors.Is(err, kv.ErrInvalidOptions) {
				t.Errorf("ParseURL = %+v, %v; want an error wrapping kv.ErrInvalidOptions", o, err)
			}
		})
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
