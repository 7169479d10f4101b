package memkv_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/kvtest"
	"github.com/memcell/memcell/kv/memkv"
)

func open(t testing.TB, grace time.Duration) kv.Store {
	t.Helper()
	s, err := memkv.New(&memkv.Options{TombstoneGrace: grace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) { kvtest.RunConformance(t, open) }

func BenchmarkStore(b *testing.B) { kvtest.RunBenchmarks(b, open) }

func TestOpenURL(t *testing.T) {
	for _, tc := range []struct {
		url    string
		wantOK bool
	}{
		{"memory://", true},
		{"memory://?shards=8&tombstone_grace=1s", true},
		{"memory://?shards=0", false},
		{"memory://?shards=x", false},
		{"memory://?tombstone_grace=-1s", false},
		{"memory://?colour=blue", false},
		{"memory://host", false},
		{"memory:///some/path", false},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		s, err := memkv.OpenURL(context.Background(), u)
		if tc.wantOK != (err == nil) {
			t.Errorf("OpenURL(%q) error = %v, want ok=%v", tc.url, err, tc.wantOK)
		}
		if err == nil {
			s.Close()
		} else if !errors.Is(err, kv.ErrInvalidOptions) {
			t.Errorf("OpenURL(%q) error %v is not kv.ErrInvalidOptions", tc.url, err)
		}
	}
}

func TestNewRejectsBadShards(t *testing.T) {
	if _, err := memkv.New(&memkv.Options{Shards: -1}); !errors.Is(err, kv.ErrInvalidOptions) {
		t.Errorf("New(Shards: -1) = %v, want kv.ErrInvalidOptions", err)
	}
}

// TestTombstoneSweep deletes far more keys than the sweep threshold with a
// tiny grace period and checks that the expired tombstones do not block
// puts and do not show up anywhere.
func TestTombstoneSweep(t *testing.T) {
	s := open(t, time.Millisecond)
	ctx := context.Background()
	keys := make([]string, 5000)
	for i := range keys {
		keys[i] = "k" + string(rune('a'+i%26)) + time.Duration(i).String()
	}
	for _, k := range keys {
		if _, err := s.Put(ctx, kv.Entry{Key: k, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Millisecond)
	dels := make([]kv.Deletion, len(keys))
	for i, k := range keys {
		dels[i] = kv.Deletion{Key: k, Rev: kv.MaxRev}
	}
	if n, err := s.BatchDelete(ctx, dels); err != nil || n != len(keys) {
		t.Fatalf("BatchDelete = %d, %v", n, err)
	}
	time.Sleep(2 * time.Millisecond)
	n, err := s.BatchPut(ctx, []kv.Entry{{Key: keys[0], Value: []byte("again")}})
	if err != nil || n != 1 {
		t.Fatalf("BatchPut after expiry = %d, %v; want 1", n, err)
	}
	st, err := s.Stats(ctx)
	if err != nil || st != (kv.Stats{EntryCount: 1, TotalSizeBytes: 5}) {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
}

// TestMetamorphic runs the metamorphic test of memkv against a fresh memkv:
// a check of the test itself more than of the store.
func TestMetamorphic(t *testing.T) { kvtest.RunMetamorphic(t, open, kvtest.MetamorphicOptions{}) }
