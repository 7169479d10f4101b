// Package disktest holds the tests and benchmarks that the embedded
// backends (kv/pebblekv, kv/leveldbkv and kv/rocksdbkv) share beyond the
// kvtest conformance suite: opening and URLs, persistence across
// reopening, corrupt records, chunked scans, closing under load, lazy
// tombstone removal and durability across kill -9. A backend's test file is a harness
// plus calls:
//
//	var testBackend = disktest.Backend{Scheme: "pebble", Open: disktest.Adapt(Open, ...), ...}
//
//	func TestConformance(t *testing.T) { kvtest.RunConformance(t, open) }
//	func TestDisk(t *testing.T)        { disktest.Run(t, testBackend) }
package disktest

import (
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/internal/record"
	"github.com/memcell/memcell/kv/kvtest"
)

// Options are the options every disk backend has, for Backend.Open to pass
// on as the backend's own.
type Options struct {
	TombstoneGrace time.Duration
	Sync           bool
	CacheSize      int64
	SyncInterval   time.Duration
}

// Backend is what the shared tests need to know of a disk backend.
type Backend struct {
	// Scheme is the backend's URL scheme ("pebble").
	Scheme string
	// Capabilities is what the backend's stores report.
	Capabilities kv.Capabilities
	// Open is the backend's Open, with o made into the backend's options
	// (nil staying nil); see Adapt.
	Open func(ctx context.Context, dir string, o *Options) (kv.Store, error)
	// OpenURL is the backend's OpenURL.
	OpenURL kv.Opener
	// KillSafe are the options under which the backend promises that a
	// write that returned survives kill -9 of its process.
	KillSafe *Options
	// GroupSync, for a backend that syncs its log in the background, are
	// options with Sync false and a SyncInterval under which a write
	// survives kill -9 once that interval has passed; nil for the others.
	GroupSync *Options
	// RawSet writes values under keys into the database in dir with the
	// library itself, bypassing the record format. No store has dir open.
	RawSet func(t testing.TB, dir string, values map[string][]byte)
	// RawKeys lists the keys of the database in dir in order, tombstone
	// records included. No store has dir open.
	RawKeys func(t testing.TB, dir string) []string
}

// Adapt makes a backend's Open into a Backend.Open, with conv making
// Options into the backend's own (nil options stay nil).
func Adapt[O any, S kv.Store](open func(context.Context, string, *O) (S, error), conv func(Options) *O) func(context.Context, string, *Options) (kv.Store, error) {
	return func(ctx context.Context, dir string, o *Options) (kv.Store, error) {
		var bo *O
		if o != nil {
			bo = conv(*o)
		}
		s, err := open(ctx, dir, bo)
		if err != nil {
			return nil, err // not a typed nil in a kv.Store
		}
		return s, nil
	}
}

// OpenDir opens the store in dir with tombstones that live for grace,
// failing t on error, and closes it when t ends.
func (b Backend) OpenDir(t testing.TB, dir string, grace time.Duration) kv.Store {
	t.Helper()
	s, err := b.Open(context.Background(), dir, &Options{TombstoneGrace: grace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// BenchOpener returns the kvtest.Opener of the impl=ours benchmarks: stores
// in fresh temporary directories without the group sync, so that they do
// the work the raw database does (writes without a sync), and P5 compares
// like with like. BenchmarkGroupSync measures what the group sync costs.
func (b Backend) BenchOpener() kvtest.Opener {
	return func(t testing.TB, grace time.Duration) kv.Store {
		t.Helper()
		s, err := b.Open(context.Background(), t.TempDir(), &Options{TombstoneGrace: grace, SyncInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

// Opener returns the kvtest.Opener that opens stores in fresh temporary
// directories.
func (b Backend) Opener() kvtest.Opener {
	return func(t testing.TB, grace time.Duration) kv.Store {
		t.Helper()
		return b.OpenDir(t, t.TempDir(), grace)
	}
}

// Run runs every shared test against b.
func Run(t *testing.T, b Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b Backend)
	}{
		{"OpenURL", testOpenURL},
		{"OpenURLDirAndGrace", testOpenURLDirAndGrace},
		{"OpenChecksOptionsFirst", testOpenChecksOptionsFirst},
		{"OpenCreatesDirAndLocksIt", testOpenCreatesDirAndLocksIt},
		{"Reopen", testReopen},
		{"CorruptRecord", testCorruptRecord},
		{"LegacyTombstone", testLegacyTombstone},
		{"ScanRemovesExpiredTombstones", testScanRemovesExpiredTombstones},
		{"ScanInChunks", testScanInChunks},
		{"CloseWhileBusy", testCloseWhileBusy},
		{"KillKeepsAcknowledgedWrites", testKillKeepsAcknowledgedWrites},
	}
	if b.GroupSync != nil {
		tests = append(tests, struct {
			name string
			fn   func(t *testing.T, b Backend)
		}{"KillAfterGroupSync", testKillAfterGroupSync})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}

func testOpenURL(t *testing.T, b Backend) {
	t.Chdir(t.TempDir()) // relative URLs land here
	abs := filepath.ToSlash(t.TempDir())
	s := b.Scheme
	for _, tc := range []struct {
		url    string
		wantOK bool
	}{
		{s + "://" + abs + "/a", true},
		{s + "://" + abs + "/b?sync=true&tombstone_grace=30s&cache_size=1048576", true},
		{s + "://" + abs + "/c?tombstone_grace=0s", true},
		{s + ":relative/dir", true},
		{s + ":rel%20with%20space?sync=false", true},
		{strings.ToUpper(s) + ":upper", true},
		{s + "://" + abs + "/d?colour=blue", false},
		{s + "://" + abs + "/d?sync=maybe", false},
		{s + "://" + abs + "/d?tombstone_grace=-1s", false},
		{s + "://" + abs + "/d?tombstone_grace=1s&tombstone_grace=2s", false},
		{s + "://" + abs + "/d?cache_size=-1", false},
		{s + "://host/dir", false},
		{s + "://user@/dir", false},
		{s + "://", false},
		{s + ":", false},
		{s + ":?sync=true", false},
		// sync_interval is an option of the backends with a group sync only.
		{s + "://" + abs + "/e?sync_interval=50ms", b.GroupSync != nil},
		{s + "://" + abs + "/f?sync_interval=-1s", false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			s, err := b.OpenURL(context.Background(), u)
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
			if got := s.Capabilities(); got != b.Capabilities {
				t.Errorf("Capabilities = %+v, want %+v", got, b.Capabilities)
			}
		})
	}
}

// testOpenURLDirAndGrace checks that a URL's relative path is taken from
// the working directory and its absolute one as it is, and that its
// tombstone_grace reaches the store: a tombstone stops blocking older puts
// after that grace, not the default one.
func testOpenURLDirAndGrace(t *testing.T, b Backend) {
	ctx := context.Background()
	wd := t.TempDir()
	t.Chdir(wd)
	abs := filepath.Join(t.TempDir(), "abs")
	for _, tc := range []struct{ url, dir string }{
		{b.Scheme + ":rel/dir?tombstone_grace=50ms", filepath.Join(wd, "rel", "dir")},
		{b.Scheme + "://" + filepath.ToSlash(abs) + "?tombstone_grace=50ms", abs},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		s, err := b.OpenURL(ctx, u)
		if err != nil {
			t.Fatalf("OpenURL(%s): %v", tc.url, err)
		}
		if files, err := os.ReadDir(tc.dir); err != nil || len(files) == 0 {
			t.Errorf("OpenURL(%s) left %s with %d files (%v), want the database there", tc.url, tc.dir, len(files), err)
		}
		mustPut(t, s, "k", "v", 3)
		if ok, err := s.Delete(ctx, "k", kv.MaxRev); err != nil || !ok {
			t.Fatalf("Delete = %v, %v; want removed", ok, err)
		}
		if !putAfter(ctx, s, 5*time.Second) {
			t.Errorf("OpenURL(%s): the tombstone still blocks a put after 5s, want tombstone_grace=50ms", tc.url)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// putAfter retries a put of "k" at revision 1 until the tombstone before
// it has expired, and reports whether it did within limit.
func putAfter(ctx context.Context, s kv.Store, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok, err := s.Put(ctx, kv.Entry{Key: "k", Value: []byte("after"), Rev: 1}); err == nil && ok {
			return true
		}
	}
	return false
}

func testOpenChecksOptionsFirst(t *testing.T, b Backend) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "never-created")
	for name, o := range map[string]*Options{"negative cache": {CacheSize: -1}} {
		if _, err := b.Open(ctx, dir, o); !errors.Is(err, kv.ErrInvalidOptions) {
			t.Errorf("%s: Open error = %v, want kv.ErrInvalidOptions", name, err)
		}
	}
	if _, err := b.Open(ctx, "", nil); !errors.Is(err, kv.ErrInvalidOptions) {
		t.Errorf("Open(\"\") error = %v, want kv.ErrInvalidOptions", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Open(cancelled, dir, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open that failed before I/O touched %s: %v", dir, err)
	}
}

func testOpenCreatesDirAndLocksIt(t *testing.T, b Backend) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s := b.OpenDir(t, dir, 0)
	if _, err := b.Open(context.Background(), dir, nil); err == nil {
		t.Error("a second Open of an open directory succeeded; want the directory lock to refuse it")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// testReopen checks that values, revisions and tombstones survive closing
// and reopening the directory.
func testReopen(t *testing.T, b Backend) {
	ctx := context.Background()
	dir := t.TempDir()
	s := b.OpenDir(t, dir, time.Hour)
	mustPut(t, s, "a", "A", 5)
	mustPut(t, s, "gone", "G", 1)
	if ok, err := s.Delete(ctx, "gone", 4); err != nil || !ok {
		t.Fatalf("Delete = %v, %v; want true, nil", ok, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = b.OpenDir(t, dir, time.Hour)
	if v, err := s.Get(ctx, "a"); err != nil || string(v) != "A" {
		t.Fatalf("Get(a) after reopen = %q, %v; want A", v, err)
	}
	if ok, err := s.Put(ctx, kv.Entry{Key: "a", Value: []byte("old"), Rev: 4}); err != nil || ok {
		t.Errorf("Put of an older revision after reopen = %v, %v; want refused", ok, err)
	}
	if ok, err := s.Put(ctx, kv.Entry{Key: "gone", Value: []byte("late"), Rev: 4}); err != nil || ok {
		t.Errorf("Put over a tombstone of its revision after reopen = %v, %v; want refused", ok, err)
	}
	var revs []uint64
	if err := s.Scan(ctx, "", func(it kv.Item) error { revs = append(revs, it.Rev); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(revs) != 1 || revs[0] != 5 {
		t.Errorf("Scan revisions after reopen = %v, want [5]", revs)
	}
}

// testCorruptRecord stores bytes that are not a record and checks that each
// method reports it instead of panicking, and that Delete clears it.
func testCorruptRecord(t *testing.T, b Backend) {
	ctx := context.Background()
	dir := t.TempDir()
	b.RawSet(t, dir, map[string][]byte{"bad": {0x7f, 'x'}, "cut": {byte(record.Live)}})
	s := b.OpenDir(t, dir, time.Hour)
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
	if n, err := s.BatchDelete(ctx, []kv.Deletion{{Key: "bad", Rev: 1}, {Key: "cut", Rev: 1}}); err != nil || n != 0 {
		t.Errorf("BatchDelete of corrupt records = %d, %v; want 0, nil", n, err)
	}
	if _, err := s.Get(ctx, "bad"); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("Get after Delete = %v, want kv.ErrNotFound", err)
	}
	if st, err := s.Stats(ctx); err != nil || st != (kv.Stats{EntryCount: 2, TotalSizeBytes: 2}) {
		t.Errorf("Stats after Delete = %+v, %v; want 2 entries of 1 byte", st, err)
	}
}

// testLegacyTombstone checks that a tombstone of the legacy form (kind
// 0x02, written before tombstones carried the revision they refuse) still
// refuses every put until it expires, whatever its stored revision, and is
// then removed like any other.
func testLegacyTombstone(t *testing.T, b Backend) {
	ctx := context.Background()
	dir := t.TempDir()
	legacy := func(rev uint64, expiry int64) []byte {
		return binary.AppendVarint(binary.AppendUvarint([]byte{0x02}, rev), expiry)
	}
	b.RawSet(t, dir, map[string][]byte{
		"alive":   legacy(3, time.Now().Add(time.Hour).UnixMilli()),
		"expired": legacy(3, time.Now().Add(-time.Second).UnixMilli()),
		"deleted": legacy(3, time.Now().Add(time.Hour).UnixMilli()),
	})
	s := b.OpenDir(t, dir, time.Hour)
	for _, rev := range []uint64{0, 3, 4, kv.MaxRev} {
		if ok, err := s.Put(ctx, kv.Entry{Key: "alive", Value: []byte("late"), Rev: rev}); err != nil || ok {
			t.Errorf("Put(rev %d) over a living legacy tombstone = %v, %v; want refused", rev, ok, err)
		}
	}
	// A delete over it keeps refusing everything.
	if ok, err := s.Delete(ctx, "deleted", 1); err != nil || ok {
		t.Errorf("Delete over a legacy tombstone = %v, %v; want false, nil", ok, err)
	}
	if n, err := s.BatchPut(ctx, []kv.Entry{{Key: "deleted", Value: []byte("x"), Rev: 2}, {Key: "expired", Value: []byte("new"), Rev: 1}}); err != nil || n != 1 {
		t.Errorf("BatchPut = %d, %v; want 1 (only over the expired legacy tombstone)", n, err)
	}
	if v, err := s.Get(ctx, "expired"); err != nil || string(v) != "new" {
		t.Errorf("Get(expired) = %q, %v; want new", v, err)
	}
	if st, err := s.Stats(ctx); err != nil || st != (kv.Stats{EntryCount: 1, TotalSizeBytes: 3}) {
		t.Errorf("Stats = %+v, %v; want 1 entry of 3 bytes", st, err)
	}
}

// testScanRemovesExpiredTombstones checks the lazy garbage collection: a
// scan deletes the expired tombstones it passes, and leaves live ones.
func testScanRemovesExpiredTombstones(t *testing.T, b Backend) {
	ctx := context.Background()
	dir := t.TempDir()
	s := b.OpenDir(t, dir, 50*time.Millisecond)
	for _, k := range []string{"p:old", "p:live", "q:old"} {
		mustPut(t, s, k, "v", 1)
	}
	if _, err := s.BatchDelete(ctx, []kv.Deletion{{Key: "p:old", Rev: 1}, {Key: "q:old", Rev: kv.MaxRev}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	s.Close()
	s = b.OpenDir(t, dir, time.Hour)
	if _, err := s.Delete(ctx, "p:fresh", 1); err != nil { // a live tombstone
		t.Fatal(err)
	}
	if err := s.Scan(ctx, "p:", func(kv.Item) error { return nil }); err != nil {
		t.Fatal(err)
	}
	s.Close()

	got := b.RawKeys(t, dir)
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

// testScanInChunks covers scans longer than one chunk, a callback that calls
// the store, and Close from inside a callback.
func testScanInChunks(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.OpenDir(t, t.TempDir(), time.Hour)
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

// testCloseWhileBusy closes the store under concurrent calls: every call
// must succeed or fail with kv.ErrClosed, and none may panic.
func testCloseWhileBusy(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.OpenDir(t, t.TempDir(), time.Hour)
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
					_, err = s.Delete(ctx, key, uint64(i))
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
