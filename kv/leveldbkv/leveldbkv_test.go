package leveldbkv_test

import (
	"context"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/internal/record"
	"github.com/memcell/memcell/kv/kvtest"
	"github.com/memcell/memcell/kv/leveldbkv"
)

func open(t testing.TB, grace time.Duration) kv.Store {
	t.Helper()
	return openDir(t, t.TempDir(), grace)
}

func openDir(t testing.TB, dir string, grace time.Duration) *leveldbkv.Store {
	t.Helper()
	s, err := leveldbkv.Open(context.Background(), dir, &leveldbkv.Options{TombstoneGrace: grace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) { kvtest.RunConformance(t, open) }

func TestOpenURL(t *testing.T) {
	t.Chdir(t.TempDir()) // relative URLs land here
	abs := filepath.ToSlash(t.TempDir())
	for _, tc := range []struct {
		url    string
		wantOK bool
	}{
		{"leveldb://" + abs + "/a", true},
		{"leveldb://" + abs + "/b?sync=true&tombstone_grace=30s&cache_size=1048576", true},
		{"leveldb://" + abs + "/c?tombstone_grace=0s", true},
		{"leveldb:relative/dir", true},
		{"leveldb:rel%20with%20space?sync=false", true},
		{"LEVELDB:upper", true},
		{"leveldb://" + abs + "/d?colour=blue", false},
		{"leveldb://" + abs + "/d?sync=maybe", false},
		{"leveldb://" + abs + "/d?tombstone_grace=-1s", false},
		{"leveldb://" + abs + "/d?tombstone_grace=1s&tombstone_grace=2s", false},
		{"leveldb://" + abs + "/d?cache_size=-1", false},
		{"leveldb://host/dir", false},
		{"leveldb://user@/dir", false},
		{"leveldb://", false},
		{"leveldb:", false},
		{"leveldb:?sync=true", false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			s, err := leveldbkv.OpenURL(context.Background(), u)
			if tc.wantOK != (err == nil) {
				t.Fatalf("OpenURL error = %v, want ok=%v", err, tc.wantOK)
			}
			if err != nil {
				if !errors.Is(err, kv.ErrInvalidOptions) {
					t.Errorf("error %v is not kv.ErrInvalidOptions", err)
				}
				return
			}
			defer s.Close()
			if got := s.Capabilities(); got != (kv.Capabilities{Backend: "leveldb", OrderedScan: true, Persistent: true}) {
				t.Errorf("Capabilities = %+v", got)
			}
		})
	}
}

func TestOpenChecksOptionsFirst(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "never-created")
	for name, o := range map[string]*leveldbkv.Options{"negative cache": {CacheSize: -1}} {
		if _, err := leveldbkv.Open(ctx, dir, o); !errors.Is(err, kv.ErrInvalidOptions) {
			t.Errorf("%s: Open error = %v, want kv.ErrInvalidOptions", name, err)
		}
	}
	if _, err := leveldbkv.Open(ctx, "", nil); !errors.Is(err, kv.ErrInvalidOptions) {
		t.Errorf("Open(\"\") error = %v, want kv.ErrInvalidOptions", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := leveldbkv.Open(cancelled, dir, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open that failed before I/O touched %s: %v", dir, err)
	}
}

func TestOpenCreatesDirAndLocksIt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s := openDir(t, dir, 0)
	if _, err := leveldbkv.Open(context.Background(), dir, nil); err == nil {
		t.Error("a second Open of an open directory succeeded; want the directory lock to refuse it")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReopen checks that values, revisions and tombstones survive closing
// and reopening the directory.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDir(t, dir, time.Hour)
	mustPut(t, s, "a", "A", 5)
	mustPut(t, s, "gone", "G", 1)
	if err := s.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openDir(t, dir, time.Hour)
	if v, err := s.Get(ctx, "a"); err != nil || string(v) != "A" {
		t.Fatalf("Get(a) after reopen = %q, %v; want A", v, err)
	}
	if ok, err := s.Put(ctx, kv.Entry{Key: "a", Value: []byte("old"), Rev: 4}); err != nil || ok {
		t.Errorf("Put of an older revision after reopen = %v, %v; want refused", ok, err)
	}
	if ok, err := s.Put(ctx, kv.Entry{Key: "gone", Value: []byte("late"), Rev: 9}); err != nil || ok {
		t.Errorf("Put over a tombstone after reopen = %v, %v; want refused", ok, err)
	}
	var revs []uint64
	if err := s.Scan(ctx, "", func(it kv.Item) error { revs = append(revs, it.Rev); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(revs) != 1 || revs[0] != 5 {
		t.Errorf("Scan revisions after reopen = %v, want [5]", revs)
	}
}

// TestCorruptRecord stores bytes that are not a record and checks that each
// method reports it instead of panicking, and that Delete clears it.
func TestCorruptRecord(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rawSet(t, dir, map[string][]byte{"bad": {0x7f, 'x'}, "cut": {byte(record.Live)}})
	s := openDir(t, dir, time.Hour)
	mustPut(t, s, "good", "G", 1)

	if _, err := s.Get(ctx, "bad"); !errors.Is(err, record.ErrCorrupt) {
		t.Errorf("Get = %v, want record.ErrCorrupt", err)
	}
	if _, err := s.BatchGet(ctx, []string{"good", "cut"}); !errors.Is(err, record.ErrCorrupt) {
		t.Errorf("BatchGet = %v, want record.ErrCorrupt", err)
	}
	if ok, err := s.Put(ctx, kv.Entry{Key: "bad", Value: []byte("v"), Rev: 1}); ok || !errors.Is(err, record.ErrCorrupt) {
		t.Errorf("Put = %v, %v; want false, record.ErrCorrupt", ok, err)
	}
	n, err := s.BatchPut(ctx, []kv.Entry{{Key: "bad", Value: []byte("v")}, {Key: "new", Value: []byte("N")}})
	if n != 1 || !errors.Is(err, record.ErrCorrupt) {
		t.Errorf("BatchPut = %d, %v; want 1 (the sound entry), record.ErrCorrupt", n, err)
	}
	if v, err := s.Get(ctx, "new"); err != nil || string(v) != "N" {
		t.Errorf("Get(new) = %q, %v; want the batch's sound entry stored", v, err)
	}
	if err := s.Scan(ctx, "", func(kv.Item) error { return nil }); !errors.Is(err, record.ErrCorrupt) {
		t.Errorf("Scan = %v, want record.ErrCorrupt", err)
	}
	if _, err := s.Stats(ctx); !errors.Is(err, record.ErrCorrupt) {
		t.Errorf("Stats = %v, want record.ErrCorrupt", err)
	}
	if n, err := s.BatchDelete(ctx, []string{"bad", "cut"}); err != nil || n != 0 {
		t.Errorf("BatchDelete of corrupt records = %d, %v; want 0, nil", n, err)
	}
	if _, err := s.Get(ctx, "bad"); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("Get after Delete = %v, want kv.ErrNotFound", err)
	}
	if st, err := s.Stats(ctx); err != nil || st != (kv.Stats{EntryCount: 2, TotalSizeBytes: 2}) {
		t.Errorf("Stats after Delete = %+v, %v; want 2 entries of 1 byte", st, err)
	}
}

// TestScanRemovesExpiredTombstones checks the lazy garbage collection: a
// scan deletes the expired tombstones it passes, and leaves live ones.
func TestScanRemovesExpiredTombstones(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDir(t, dir, 50*time.Millisecond)
	for _, k := range []string{"p:old", "p:live", "q:old"} {
		mustPut(t, s, k, "v", 1)
	}
	if _, err := s.BatchDelete(ctx, []string{"p:old", "q:old"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	s.Close()
	s = openDir(t, dir, time.Hour)
	if err := s.Delete(ctx, "p:fresh"); err != nil { // a live tombstone
		t.Fatal(err)
	}
	if err := s.Scan(ctx, "p:", func(kv.Item) error { return nil }); err != nil {
		t.Fatal(err)
	}
	s.Close()

	got := rawKeys(t, dir)
	want := []string{"p:fresh", "p:live", "q:old"} // q: was not scanned
	if len(got) != len(want) {
		t.Fatalf("keys on disk after the scan = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("keys on disk after the scan = %q, want %q", got, want)
		}
	}
}

// TestScanInChunks covers scans longer than one chunk, a callback that calls
// the store, and Close from inside a callback.
func TestScanInChunks(t *testing.T) {
	ctx := context.Background()
	s := open(t, time.Hour).(*leveldbkv.Store)
	const n = 1000
	entries := make([]kv.Entry, n)
	for i := range entries {
		entries[i] = kv.Entry{Key: kvtest.BenchKey(i), Value: kvtest.BenchValue(i), Rev: uint64(i)}
	}
	if _, err := s.BatchPut(ctx, entries); err != nil {
		t.Fatal(err)
	}
	seen := 0
	err := s.Scan(ctx, "memcell:", func(it kv.Item) error {
		if it.Key != entries[seen].Key || string(it.Value) != string(entries[seen].Value) || it.Rev != uint64(seen) {
			t.Fatalf("item %d = %q rev %d, want %q rev %d", seen, it.Key, it.Rev, entries[seen].Key, seen)
		}
		seen++
		if seen < 700 {
			if _, err := s.Get(ctx, it.Key); err != nil {
				t.Fatalf("Get inside the callback: %v", err)
			}
			return nil
		}
		if seen == 700 {
			return s.Close()
		}
		// Items read before Close may still come; then the scan stops.
		return nil
	})
	if !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Scan after Close in its callback = %v, want kv.ErrClosed", err)
	}
	if seen < 700 || seen >= n {
		t.Errorf("callback ran %d times, want it to stop soon after Close at 700", seen)
	}
}

// TestCloseWhileBusy closes the store under concurrent calls: every call
// must succeed or fail with kv.ErrClosed, and none may panic.
func TestCloseWhileBusy(t *testing.T) {
	ctx := context.Background()
	s := open(t, time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				key := kvtest.BenchKey(w*1000 + i)
				var err error
				switch i % 4 {
				case 0:
					_, err = s.Put(ctx, kv.Entry{Key: key, Value: []byte("v"), Rev: uint64(i)})
				case 1:
					_, err = s.Get(ctx, key)
				case 2:
					err = s.Delete(ctx, key)
				case 3:
					err = s.Scan(ctx, "", func(kv.Item) error { return nil })
				}
				if errors.Is(err, kv.ErrClosed) {
					return
				}
				if err != nil && !errors.Is(err, kv.ErrNotFound) {
					errs <- err
					return
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func mustPut(t testing.TB, s kv.Store, key, value string, rev uint64) {
	t.Helper()
	if ok, err := s.Put(context.Background(), kv.Entry{Key: key, Value: []byte(value), Rev: rev}); err != nil || !ok {
		t.Fatalf("Put(%q, rev %d) = %v, %v; want stored", key, rev, ok, err)
	}
}

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
