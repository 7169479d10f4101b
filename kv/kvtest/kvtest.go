// Package kvtest is the conformance suite and benchmark set that every
// kv.Store backend runs. A backend's test file is a harness plus one call:
//
//	func TestConformance(t *testing.T) {
//		kvtest.RunConformance(t, func(t testing.TB, grace time.Duration) kv.Store { ... })
//	}
package kvtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/memcell/memcell/kv"
)

// Opener returns a fresh, empty store whose tombstones live for grace. It
// registers the store's cleanup with t itself.
type Opener func(t testing.TB, grace time.Duration) kv.Store

// longGrace outlives every test; shortGrace is waited out by the expiry tests.
const (
	longGrace  = time.Hour
	shortGrace = 300 * time.Millisecond
)

// RunConformance runs every conformance test against stores made by open.
func RunConformance(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"NotFound", testNotFound},
		{"PutGet", testPutGet},
		{"Overwrite", testOverwrite},
		{"OlderRevisionRefused", testOlderRevisionRefused},
		{"CallerOwnsBuffers", testCallerOwnsBuffers},
		{"DeleteAbsent", testDeleteAbsent},
		{"BatchGet", testBatchGet},
		{"BatchPut", testBatchPut},
		{"BatchDelete", testBatchDelete},
		{"EmptyBatches", testEmptyBatches},
		{"LargeValue", testLargeValue},
		{"Unicode", testUnicode},
		{"Scan", testScan},
		{"ScanStops", testScanStops},
		{"Stats", testStats},
		{"ConcurrentRevisions", testConcurrentRevisions},
		{"ConcurrentMixed", testConcurrentMixed},
		{"TombstoneBlocks", testTombstoneBlocks},
		{"DeleteRefusedByNewer", testDeleteRefusedByNewer},
		{"TombstoneRevision", testTombstoneRevision},
		{"TombstoneRevisionMax", testTombstoneRevisionMax},
		{"TombstoneMaxRev", testTombstoneMaxRev},
		{"BatchDeleteRevisions", testBatchDeleteRevisions},
		{"TombstoneInvisible", testTombstoneInvisible},
		{"TombstoneExpires", testTombstoneExpires},
		{"Swap", testSwap},
		{"SwapRefused", testSwapRefused},
		{"ConcurrentSwap", testConcurrentSwap},
		{"UseAfterClose", testUseAfterClose},
		{"CancelledContext", testCancelledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

func mustPut(t testing.TB, s kv.Store, key, value string, rev uint64) {
	t.Helper()
	ok, err := s.Put(context.Background(), kv.Entry{Key: key, Value: []byte(value), Rev: rev})
	if err != nil {
		t.Fatalf("Put(%q, rev %d): %v", key, rev, err)
	}
	if !ok {
		t.Fatalf("Put(%q, rev %d) was refused, want stored", key, rev)
	}
}

// mustDelete deletes key at rev and wants removed as the result.
func mustDelete(t testing.TB, s kv.Store, key string, rev uint64, removed bool) {
	t.Helper()
	ok, err := s.Delete(context.Background(), key, rev)
	if err != nil {
		t.Fatalf("Delete(%q, rev %d): %v", key, rev, err)
	}
	if ok != removed {
		t.Fatalf("Delete(%q, rev %d) = %v, want %v", key, rev, ok, removed)
	}
}

// dels returns deletions of keys, all at rev.
func dels(rev uint64, keys ...string) []kv.Deletion {
	out := make([]kv.Deletion, len(keys))
	for i, k := range keys {
		out[i] = kv.Deletion{Key: k, Rev: rev}
	}
	return out
}

func mustGet(t testing.TB, s kv.Store, key string) string {
	t.Helper()
	v, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return string(v)
}

func wantNotFound(t testing.TB, s kv.Store, key string) {
	t.Helper()
	v, err := s.Get(context.Background(), key)
	if !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want kv.ErrNotFound", key, v, err)
	}
}

func scanAll(t testing.TB, s kv.Store, prefix string) []kv.Item {
	t.Helper()
	var items []kv.Item
	err := s.Scan(context.Background(), prefix, func(it kv.Item) error {
		items = append(items, kv.Item{Key: it.Key, Value: bytes.Clone(it.Value), Rev: it.Rev})
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q): %v", prefix, err)
	}
	return items
}

func mustStats(t testing.TB, s kv.Store) kv.Stats {
	t.Helper()
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}

func testNotFound(t *testing.T, open Opener) {
	s := open(t, longGrace)
	wantNotFound(t, s, "missing")
	wantNotFound(t, s, "")
}

func testPutGet(t *testing.T, open Opener) {
	s := open(t, longGrace)
	mustPut(t, s, "a", `{"x":1}`, 1)
	mustPut(t, s, "empty", "", 0)
	if got := mustGet(t, s, "a"); got != `{"x":1}` {
		t.Errorf("Get(a) = %q, want %q", got, `{"x":1}`)
	}
	v, err := s.Get(context.Background(), "empty")
	if err != nil || len(v) != 0 {
		t.Errorf("Get(empty) = %q, %v; want empty value, nil", v, err)
	}
}

func testOverwrite(t *testing.T, open Opener) {
	s := open(t, longGrace)
	mustPut(t, s, "k", "one", 0)
	mustPut(t, s, "k", "two", 0) // equal revision replaces
	if got := mustGet(t, s, "k"); got != "two" {
		t.Errorf("after equal-revision overwrite Get = %q, want two", got)
	}
	mustPut(t, s, "k", "three", 7)
	if got := mustGet(t, s, "k"); got != "three" {
		t.Errorf("after higher-revision overwrite Get = %q, want three", got)
	}
	mustPut(t, s, "k", "three-again", 7)
	if got := mustGet(t, s, "k"); got != "three-again" {
		t.Errorf("after same-revision rewrite Get = %q, want three-again", got)
	}
}

func testOlderRevisionRefused(t *testing.T, open Opener) {
	s := open(t, longGrace)
	ctx := context.Background()
	mustPut(t, s, "k", "new", 1<<62+5) // beyond float64 precision on purpose
	ok, err := s.Put(ctx, kv.Entry{Key: "k", Value: []byte("old"), Rev: 1<<62 + 4})
	if err != nil || ok {
		t.Fatalf("Put of an older revision = %v, %v; want false, nil", ok, err)
	}
	if got := mustGet(t, s, "k"); got != "new" {
		t.Errorf("Get = %q after refused put, want new", got)
	}
	items := scanAll(t, s, "")
	if len(items) != 1 || items[0].Rev != 1<<62+5 {
		t.Errorf("Scan = %+v, want one item with revision %d", items, uint64(1<<62+5))
	}
}

func testCallerOwnsBuffers(t *testing.T, open Opener) {
	s := open(t, longGrace)
	ctx := context.Background()
	buf := []byte("original")
	if _, err := s.Put(ctx, kv.Entry{Key: "k", Value: buf}); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXXXX")
	got, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "original" {
		t.Fatalf("Get = %q; the store kept the caller's buffer", got)
	}
	copy(got, "YYYYYYYY")
	if again := mustGet(t, s, "k"); again != "original" {
		t.Fatalf("Get = %q; the store handed out its own buffer", again)
	}
	m, err := s.BatchGet(ctx, []string{"k"})
	if err != nil {
		t.Fatal(err)
	}
	copy(m["k"], "ZZZZZZZZ")
	if again := mustGet(t, s, "k"); again != "original" {
		t.Fatalf("Get = %q; BatchGet handed out the store's buffer", again)
	}
}

func testDeleteAbsent(t *testing.T, open Opener) {
	s := open(t, longGrace)
	if ok, err := s.Delete(context.Background(), "never-there", 1); err != nil || ok {
		t.Fatalf("Delete of an absent key = %v, %v; want false, nil", ok, err)
	}
	n, err := s.BatchDelete(context.Background(), dels(1, "x", "y"))
	if err != nil || n != 0 {
		t.Fatalf("BatchDelete of absent keys = %d, %v; want 0, nil", n, err)
	}
}

func testBatchGet(t *testing.T, open Opener) {
	s := open(t, longGrace)
	for i := range 50 {
		mustPut(t, s, fmt.Sprintf("key-%02d", i), fmt.Sprintf("value-%02d", i), uint64(i))
	}
	keys := []string{"key-00", "nope", "key-49", "key-07", "key-07", "also-missing"}
	got, err := s.BatchGet(context.Background(), keys)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"key-00": []byte("value-00"), "key-49": []byte("value-49"), "key-07": []byte("value-07")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("BatchGet mismatch (-want +got):\n%s", diff)
	}
}

func testBatchPut(t *testing.T, open Opener) {
	s := open(t, longGrace)
	ctx := context.Background()
	mustPut(t, s, "guarded", "v9", 9)
	entries := []kv.Entry{
		{Key: "a", Value: []byte("A"), Rev: 1},
		{Key: "b", Value: []byte("B"), Rev: 2},
		{Key: "guarded", Value: []byte("v3"), Rev: 3}, // refused: older
		{Key: "c/d", Value: []byte("CD"), Rev: 0},
	}
	n, err := s.BatchPut(ctx, entries)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("BatchPut stored %d, want 3", n)
	}
	for key, want := range map[string]string{"a": "A", "b": "B", "guarded": "v9", "c/d": "CD"} {
		if got := mustGet(t, s, key); got != want {
			t.Errorf("Get(%q) = %q, want %q", key, got, want)
		}
	}
}

func testBatchDelete(t *testing.T, open Opener) {
	s := open(t, longGrace)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		mustPut(t, s, k, k, 1)
	}
	n, err := s.BatchDelete(ctx, dels(1, "a", "missing", "c"))
	if err != nil || n != 2 {
		t.Fatalf("BatchDelete = %d, %v; want 2, nil", n, err)
	}
	wantNotFound(t, s, "a")
	wantNotFound(t, s, "c")
	if got := mustGet(t, s, "b"); got != "b" {
		t.Errorf("Get(b) = %q, want b", got)
	}
	n, err = s.BatchDelete(ctx, dels(1, "a", "c"))
	if err != nil || n != 0 {
		t.Fatalf("second BatchDelete = %d, %v; want 0, nil", n, err)
	}
}

func testEmptyBatches(t *testing.T, open Opener) {
	s := open(t, longGrace)
	ctx := context.Background()
	m, err := s.BatchGet(ctx, nil)
	if err != nil || len(m) != 0 {
		t.Errorf("BatchGet(nil) = %v, %v; want empty, nil", m, err)
	}
	if n, err := s.BatchPut(ctx, nil); err != nil || n != 0 {
		t.Errorf("BatchPut(nil) = %d, %v", n, err)
	}
	if n, err := s.BatchDelete(ctx, nil); err != nil || n != 0 {
		t.Errorf("BatchDelete(nil) = %d, %v", n, err)
	}
}

func testLargeValue(t *testing.T, open Opener) {
	s := open(t, longGrace)
	big := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.IntN(256))
	}
	ctx := context.Background()
	if _, err := s.Put(ctx, kv.Entry{Key: "big", Value: big, Rev: 1}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, big) {
		t.Fatalf("1 MiB value came back different (len %d)", len(got))
	}
	if st := mustStats(t, s); st.EntryCount != 1 || st.TotalSizeBytes != 1<<20 {
		t.Errorf("Stats = %+v, want 1 entry of %d bytes", st, 1<<20)
	}
}

func testUnicode(t *testing.T, open Opener) {
	s := open(t, longGrace)
	pairs := map[string]string{
		"memcell:日本語":     `{"summary":"こんにちは 🌍"}`,
		"memcell:emoji-🧠": "Ünïcödé ✓",
		"memcell:ß":       "\u0000nul and\ttab",
	}
	for k, v := range pairs {
		mustPut(t, s, k, v, 1)
	}
	for k, v := range pairs {
		if got := mustGet(t, s, k); got != v {
			t.Errorf("Get(%q) = %q, want %q", k, got, v)
		}
	}
	var wantBytes int64
	for _, v := range pairs {
		wantBytes += int64(len(v))
	}
	if st := mustStats(t, s); st.EntryCount != 3 || st.TotalSizeBytes != wantBytes {
		t.Errorf("Stats = %+v, want 3 entries, %d bytes (bytes, not characters)", st, wantBytes)
	}
	items := scanAll(t, s, "memcell:日")
	if len(items) != 1 || items[0].Key != "memcell:日本語" {
		t.Errorf("Scan(memcell:日) = %+v", items)
	}
}

func testScan(t *testing.T, open Opener) {
	s := open(t, longGrace)
	keys := []string{"memcell:b", "memcell:a", "memcell:c", "memcellx", "other:a", "memcell:a:sub", "mem*cell[1]?"}
	for i, k := range keys {
		mustPut(t, s, k, "v-"+k, uint64(i))
	}
	cases := []struct {
		prefix string
		want   []string
	}{
		{"memcell:", []string{"memcell:a", "memcell:a:sub", "memcell:b", "memcell:c"}},
		{"memcell", []string{"memcell:a", "memcell:a:sub", "memcell:b", "memcell:c", "memcellx"}},
		{"mem*", []string{"mem*cell[1]?"}}, // glob characters are literal
		{"nothing", nil},
		{"", append([]string(nil), keys...)},
	}
	ordered := s.Capabilities().OrderedScan
	for _, tc := range cases {
		items := scanAll(t, s, tc.prefix)
		var got []string
		for _, it := range items {
			got = append(got, it.Key)
			if want := "v-" + it.Key; string(it.Value) != want {
				t.Errorf("Scan(%q) item %q has value %q, want %q", tc.prefix, it.Key, it.Value, want)
			}
		}
		if ordered && !sort.StringsAreSorted(got) {
			t.Errorf("Scan(%q) = %q: backend declares OrderedScan but keys are not sorted", tc.prefix, got)
		}
		sort.Strings(got)
		want := append([]string(nil), tc.want...)
		sort.Strings(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Scan(%q) keys (-want +got):\n%s", tc.prefix, diff)
		}
	}
}

func testScanStops(t *testing.T, open Opener) {
	s := open(t, longGrace)
	for i := range 20 {
		mustPut(t, s, fmt.Sprintf("k%02d", i), "v", 0)
	}
	stop := errors.New("stop here")
	calls := 0
	err := s.Scan(context.Background(), "", func(kv.Item) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Scan returned %v, want the callback's error", err)
	}
	if calls != 3 {
		t.Errorf("callback ran %d times after returning an error at call 3", calls)
	}
}

func testStats(t *testing.T, open Opener) {
	s := open(t, longGrace)
	ctx := context.Background()
	if st := mustStats(t, s); st != (kv.Stats{}) {
		t.Fatalf("Stats of an empty store = %+v", st)
	}
	mustPut(t, s, "a", "12345", 1)
	mustPut(t, s, "b", "1234567890", 1)
	mustPut(t, s, "a", "123", 2) // replace: size shrinks
	if st := mustStats(t, s); st != (kv.Stats{EntryCount: 2, TotalSizeBytes: 13}) {
		t.Errorf("Stats = %+v, want 2 entries, 13 bytes", st)
	}
	if _, err := s.Put(ctx, kv.Entry{Key: "a", Value: []byte("older and longer"), Rev: 1}); err != nil {
		t.Fatal(err)
	}
	mustDelete(t, s, "b", 1, true)
	if st := mustStats(t, s); st != (kv.Stats{EntryCount: 1, TotalSizeBytes: 3}) {
		t.Errorf("Stats after a refused put and a delete = %+v, want 1 entry, 3 bytes", st)
	}
}

// testConcurrentRevisions has many goroutines write one key with random
// revisions; whatever the interleaving, the highest revision must win.
func testConcurrentRevisions(t *testing.T, open Opener) {
	s := open(t, longGrace)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	const writers, perWriter = 16, 40
	var (
		mu   sync.Mutex
		max  uint64
		wg   sync.WaitGroup
		errs = make(chan error, writers)
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(seed), uint64(w)))
			for range perWriter {
				rev := r.Uint64N(1 << 40)
				mu.Lock()
				if rev > max {
					max = rev
				}
				mu.Unlock()
				e := kv.Entry{Key: "hot", Value: fmt.Appendf(nil, "rev-%d", rev), Rev: rev}
				var err error
				if r.IntN(4) == 0 {
					_, err = s.BatchPut(context.Background(), []kv.Entry{e, {Key: fmt.Sprintf("cold-%d", w), Value: []byte("x")}})
				} else {
					_, err = s.Put(context.Background(), e)
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
		t.Fatalf("seed %d: concurrent put: %v", seed, err)
	}
	if got, want := mustGet(t, s, "hot"), fmt.Sprintf("rev-%d", max); got != want {
		t.Fatalf("seed %d: final value %q, want %q (the highest revision)", seed, got, want)
	}
}

// testConcurrentMixed runs puts, gets, deletes, batches and scans on
// overlapping keys at once; it checks for errors and data races, and that
// the stats still agree with a scan afterwards.
func testConcurrentMixed(t *testing.T, open Opener) {
	s := open(t, longGrace)
	ctx := context.Background()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(seed), uint64(w)))
			for i := range 60 {
				key := fmt.Sprintf("m%02d", r.IntN(30))
				var err error
				switch r.IntN(6) {
				case 0:
					_, err = s.Put(ctx, kv.Entry{Key: key, Value: bytes.Repeat([]byte{'v'}, r.IntN(100)), Rev: uint64(i)})
				case 1:
					_, err = s.Get(ctx, key)
					if errors.Is(err, kv.ErrNotFound) {
						err = nil
					}
				case 2:
					_, err = s.Delete(ctx, key, uint64(r.IntN(60)))
				case 3:
					_, err = s.BatchGet(ctx, []string{key, "m00", "m01"})
				case 4:
					_, err = s.BatchPut(ctx, []kv.Entry{{Key: key, Value: []byte("b"), Rev: uint64(i)}, {Key: "m29", Value: []byte("c"), Rev: uint64(i)}})
				case 5:
					err = s.Scan(ctx, "m1", func(kv.Item) error { return nil })
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
	var want kv.Stats
	for _, it := range scanAll(t, s, "") {
		want.EntryCount++
		want.TotalSizeBytes += int64(len(it.Value))
	}
	if got := mustStats(t, s); got != want {
		t.Errorf("seed %d: Stats = %+v, but a scan finds %+v", seed, got, want)
	}
}

func testTombstoneBlocks(t *testing.T, open Opener) {
	s := open(t, longGrace)
	ctx := context.Background()
	mustPut(t, s, "k", "v1", 1)
	mustPut(t, s, "j", "v1", 1)
	mustDelete(t, s, "k", 5, true)
	if n, err := s.BatchDelete(ctx, dels(5, "j", "never")); err != nil || n != 1 {
		t.Fatalf("BatchDelete = %d, %v; want 1, nil", n, err)
	}
	for _, rev := range []uint64{0, 1, 4, 5} {
		ok, err := s.Put(ctx, kv.Entry{Key: "k", Value: []byte("late"), Rev: rev})
		if err != nil || ok {
			t.Errorf("Put(rev %d) over a tombstone of revision 5 = %v, %v; want refused", rev, ok, err)
		}
	}
	n, err := s.BatchPut(ctx, []kv.Entry{
		{Key: "j", Value: []byte("late"), Rev: 5},
		{Key: "never", Value: []byte("late"), Rev: 3}, // deleted while absent: still a tombstone
		{Key: "fresh", Value: []byte("ok"), Rev: 5},
	})
	if err != nil || n != 1 {
		t.Errorf("BatchPut over tombstones stored %d, %v; want 1 (only the fresh key)", n, err)
	}
	wantNotFound(t, s, "k")
	wantNotFound(t, s, "j")
	wantNotFound(t, s, "never")
	// Deleting again keeps the key deleted and reports it absent.
	if n, err := s.BatchDelete(ctx, dels(5, "k")); err != nil || n != 0 {
		t.Errorf("BatchDelete of a tombstoned key = %d, %v; want 0, nil", n, err)
	}
	// A put of a higher revision replaces the tombstone: the document was
	// written again after the delete.
	mustPut(t, s, "k", "v6", 6)
	mustPut(t, s, "never", "v6", 6)
	n, err = s.BatchPut(ctx, []kv.Entry{{Key: "j", Value: []byte("v6"), Rev: 6}})
	if err != nil || n != 1 {
		t.Errorf("BatchPut above a tombstone's revision stored %d, %v; want 1", n, err)
	}
	for _, k := range []string{"k", "j", "never"} {
		if got := mustGet(t, s, k); got != "v6" {
			t.Errorf("Get(%q) = %q after re-creation, want v6", k, got)
		}
	}
	// The re-created value is live like any other: a delete removes it.
	mustDelete(t, s, "k", 6, true)
	wantNotFound(t, s, "k")
}

// testDeleteRefusedByNewer: a delete of a revision lower than the live
// value's changes nothing, and an equal revision deletes.
func testDeleteRefusedByNewer(t *testing.T, open Opener) {
	s := open(t, longGrace)
	ctx := context.Background()
	mustPut(t, s, "k", "v5", 5)
	mustDelete(t, s, "k", 4, false)
	if got := mustGet(t, s, "k"); got != "v5" {
		t.Fatalf("Get after a refused delete = %q, want v5", got)
	}
	// The refused delete left no tombstone: the key takes puts as before.
	mustPut(t, s, "k", "v5b", 5)
	mustPut(t, s, "j", "v9", 9)
	n, err := s.BatchDelete(ctx, []kv.Deletion{{Key: "k", Rev: 1}, {Key: "j", Rev: 8}})
	if err != nil || n != 0 {
		t.Fatalf("BatchDelete with older revisions = %d, %v; want 0, nil", n, err)
	}
	if got := mustGet(t, s, "j"); got != "v9" {
		t.Errorf("Get(j) = %q, want v9", got)
	}
	if st := mustStats(t, s); st != (kv.Stats{EntryCount: 2, TotalSizeBytes: 5}) {
		t.Errorf("Stats = %+v, want 2 entries, 5 bytes", st)
	}
	mustDelete(t, s, "k", 5, true)
	wantNotFound(t, s, "k")
	if ok, err := s.Put(ctx, kv.Entry{Key: "k", Value: []byte("late"), Rev: 5}); err != nil || ok {
		t.Errorf("Put(rev 5) after a delete of revision 5 = %v, %v; want refused", ok, err)
	}
	mustDelete(t, s, "j", kv.MaxRev, true)
	wantNotFound(t, s, "j")
}

// testTombstoneRevision: a tombstone refuses puts of its revision and
// older, whether the deleted key was live or absent, and admits a newer one.
func testTombstoneRevision(t *testing.T, open Opener) {
	s := open(t, longGrace)
	ctx := context.Background()
	mustPut(t, s, "live", "v2", 2)
	mustDelete(t, s, "live", 7, true) // the delete may be of a later revision
	mustDelete(t, s, "absent", 7, false)
	for _, k := range []string{"live", "absent"} {
		for _, rev := range []uint64{0, 2, 6, 7} {
			if ok, err := s.Put(ctx, kv.Entry{Key: k, Value: []byte("old"), Rev: rev}); err != nil || ok {
				t.Errorf("Put(%q, rev %d) over a tombstone of revision 7 = %v, %v; want refused", k, rev, ok, err)
			}
		}
		wantNotFound(t, s, k)
		mustPut(t, s, k, "v8", 8)
		if got := mustGet(t, s, k); got != "v8" {
			t.Errorf("Get(%q) = %q, want v8", k, got)
		}
	}
	// Revisions past 2^53 compare exactly.
	const big = 1<<53 + 1
	mustDelete(t, s, "big", big, false)
	if ok, err := s.Put(ctx, kv.Entry{Key: "big", Value: []byte("x"), Rev: big}); err != nil || ok {
		t.Errorf("Put(rev 2^53+1) over a tombstone of that revision = %v, %v; want refused", ok, err)
	}
	mustPut(t, s, "big", "y", big+1)
}

// testTombstoneRevisionMax: a tombstone keeps the highest revision of the
// deletes that met it while it lived.
func testTombstoneRevisionMax(t *testing.T, open Opener) {
	s := open(t, longGrace)
	ctx := context.Background()
	mustPut(t, s, "k", "v3", 3)
	mustDelete(t, s, "k", 9, true)
	mustDelete(t, s, "k", 4, false) // a late delete does not lower the tombstone
	if ok, err := s.Put(ctx, kv.Entry{Key: "k", Value: []byte("x"), Rev: 9}); err != nil || ok {
		t.Errorf("Put(rev 9) after deletes of revisions 9 then 4 = %v, %v; want refused", ok, err)
	}
	mustDelete(t, s, "j", 2, false)
	mustDelete(t, s, "j", 6, false) // a newer delete raises it
	if ok, err := s.Put(ctx, kv.Entry{Key: "j", Value: []byte("x"), Rev: 6}); err != nil || ok {
		t.Errorf("Put(rev 6) after deletes of revisions 2 then 6 = %v, %v; want refused", ok, err)
	}
	mustPut(t, s, "k", "v10", 10)
	mustPut(t, s, "j", "v7", 7)
}

// testTombstoneMaxRev: a delete with kv.MaxRev refuses every put, and it
// deletes a live value of any revision.
func testTombstoneMaxRev(t *testing.T, open Opener) {
	s := open(t, longGrace)
	ctx := context.Background()
	mustPut(t, s, "k", "top", kv.MaxRev)
	mustDelete(t, s, "k", kv.MaxRev, true)
	mustDelete(t, s, "j", 3, false)
	mustDelete(t, s, "j", kv.MaxRev, false)
	if n, err := s.BatchDelete(ctx, dels(kv.MaxRev, "b")); err != nil || n != 0 {
		t.Fatalf("BatchDelete(MaxRev) of an absent key = %d, %v; want 0, nil", n, err)
	}
	for _, k := range []string{"k", "j", "b"} {
		for _, rev := range []uint64{0, 1, 1 << 60, kv.MaxRev - 1, kv.MaxRev} {
			if ok, err := s.Put(ctx, kv.Entry{Key: k, Value: []byte("late"), Rev: rev}); err != nil || ok {
				t.Errorf("Put(%q, rev %d) over a MaxRev tombstone = %v, %v; want refused", k, rev, ok, err)
			}
		}
		if n, err := s.BatchPut(ctx, []kv.Entry{{Key: k, Value: []byte("late"), Rev: kv.MaxRev}}); err != nil || n != 0 {
			t.Errorf("BatchPut(%q, MaxRev) over a MaxRev tombstone stored %d, %v; want 0", k, n, err)
		}
		wantNotFound(t, s, k)
	}
}

// testBatchDeleteRevisions: a batch judges each deletion as Delete would,
// and duplicates one after the other.
func testBatchDeleteRevisions(t *testing.T, open Opener) {
	s := open(t, longGrace)
	ctx := context.Background()
	mustPut(t, s, "newer", "v9", 9)
	mustPut(t, s, "equal", "v4", 4)
	mustPut(t, s, "older", "v2", 2)
	mustPut(t, s, "dup", "v5", 5)
	mustPut(t, s, "dup2", "v5", 5)
	n, err := s.BatchDelete(ctx, []kv.Deletion{
		{Key: "newer", Rev: 4},
		{Key: "equal", Rev: 4},
		{Key: "older", Rev: 4},
		{Key: "absent", Rev: 4},
		{Key: "dup", Rev: 3}, // refused: the live value is newer
		{Key: "dup", Rev: 6}, // removes it
		{Key: "dup", Rev: 5}, // meets the tombstone of revision 6
		{Key: "dup2", Rev: 8},
		{Key: "dup2", Rev: 8},
	})
	if err != nil || n != 4 {
		t.Fatalf("BatchDelete = %d, %v; want 4 (equal, older, dup, dup2), nil", n, err)
	}
	if got := mustGet(t, s, "newer"); got != "v9" {
		t.Errorf("Get(newer) = %q, want v9", got)
	}
	for _, k := range []string{"equal", "older", "absent", "dup", "dup2"} {
		wantNotFound(t, s, k)
	}
	n, err = s.BatchPut(ctx, []kv.Entry{
		{Key: "equal", Value: []byte("x"), Rev: 4},  // refused
		{Key: "older", Value: []byte("x"), Rev: 5},  // stored
		{Key: "absent", Value: []byte("x"), Rev: 4}, // refused
		{Key: "dup", Value: []byte("x"), Rev: 6},    // refused: revision 6 kept
		{Key: "dup", Value: []byte("y"), Rev: 7},    // stored
		{Key: "dup2", Value: []byte("x"), Rev: 8},   // refused
	})
	if err != nil || n != 2 {
		t.Fatalf("BatchPut after BatchDelete stored %d, %v; want 2", n, err)
	}
	if got := mustGet(t, s, "dup"); got != "y" {
		t.Errorf("Get(dup) = %q, want y", got)
	}
	if st := mustStats(t, s); st != (kv.Stats{EntryCount: 3, TotalSizeBytes: 4}) {
		t.Errorf("Stats = %+v, want 3 entries (newer, older, dup), 4 bytes", st)
	}
}

func testTombstoneInvisible(t *testing.T, open Opener) {
	s := open(t, longGrace)
	ctx := context.Background()
	mustPut(t, s, "p:live", "live", 1)
	mustPut(t, s, "p:dead", "dead-value", 1)
	mustDelete(t, s, "p:dead", 1, true)
	mustDelete(t, s, "p:never", kv.MaxRev, false)
	mustDelete(t, s, "p:newer", 3, false)
	mustPut(t, s, "p:newer", "v4", 4) // replaces a tombstone: visible
	mustDelete(t, s, "p:newer", 9, true)
	m, err := s.BatchGet(ctx, []string{"p:live", "p:dead", "p:never"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]byte{"p:live": []byte("live")}, m); diff != "" {
		t.Errorf("BatchGet shows tombstones (-want +got):\n%s", diff)
	}
	if items := scanAll(t, s, "p:"); len(items) != 1 || items[0].Key != "p:live" {
		t.Errorf("Scan shows tombstones: %+v", items)
	}
	if st := mustStats(t, s); st != (kv.Stats{EntryCount: 1, TotalSizeBytes: 4}) {
		t.Errorf("Stats = %+v, want tombstones uncounted (1 entry, 4 bytes)", st)
	}
}

func testTombstoneExpires(t *testing.T, open Opener) {
	s := open(t, shortGrace)
	ctx := context.Background()
	mustPut(t, s, "k", "v1", 3)
	mustDelete(t, s, "k", kv.MaxRev, true)
	if n, err := s.BatchDelete(ctx, dels(5, "b")); err != nil || n != 0 {
		t.Fatalf("BatchDelete of an absent key = %d, %v; want 0, nil", n, err)
	}
	if ok, err := s.Put(ctx, kv.Entry{Key: "k", Value: []byte("early"), Rev: 4}); err != nil || ok {
		t.Fatalf("Put inside the grace period = %v, %v; want refused", ok, err)
	}
	if ok, err := s.Put(ctx, kv.Entry{Key: "b", Value: []byte("early"), Rev: 5}); err != nil || ok {
		t.Fatalf("Put(b) inside the grace period = %v, %v; want refused", ok, err)
	}
	deadline := time.Now().Add(shortGrace + 5*time.Second)
	for {
		time.Sleep(shortGrace / 3)
		ok, err := s.Put(ctx, kv.Entry{Key: "k", Value: []byte("after"), Rev: 1})
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tombstone still blocks puts %v after a %v grace period", shortGrace+5*time.Second, shortGrace)
		}
	}
	// Once the tombstone is gone the key has no memory of revision 3.
	if got := mustGet(t, s, "k"); got != "after" {
		t.Errorf("Get = %q, want after", got)
	}
	if n, err := s.BatchPut(ctx, []kv.Entry{{Key: "b", Value: []byte("x"), Rev: 0}}); err != nil || n != 1 {
		t.Errorf("BatchPut(b, rev 0) after the grace period stored %d, %v; want 1", n, err)
	}
	if st := mustStats(t, s); st != (kv.Stats{EntryCount: 2, TotalSizeBytes: 6}) {
		t.Errorf("Stats = %+v, want 2 entries, 6 bytes", st)
	}
}

// mustSwap swaps key to value at rev if it holds old, and wants swapped as
// the result.
func mustSwap(t testing.TB, s kv.Store, key, value string, rev uint64, old string, swapped bool) {
	t.Helper()
	ok, err := s.Swap(context.Background(), kv.Entry{Key: key, Value: []byte(value), Rev: rev}, []byte(old))
	if err != nil {
		t.Fatalf("Swap(%q to %q rev %d, old %q): %v", key, value, rev, old, err)
	}
	if ok != swapped {
		t.Fatalf("Swap(%q to %q rev %d, old %q) = %v, want %v", key, value, rev, old, ok, swapped)
	}
}

// wantItem wants key's live value and revision as a scan sees them.
func wantItem(t testing.TB, s kv.Store, key, value string, rev uint64) {
	t.Helper()
	for _, it := range scanAll(t, s, key) {
		if it.Key == key {
			if string(it.Value) != value || it.Rev != rev {
				t.Fatalf("%q holds %q at revision %d, want %q at %d", key, it.Value, it.Rev, value, rev)
			}
			return
		}
	}
	t.Fatalf("%q has no live value, want %q at revision %d", key, value, rev)
}

// testSwap checks that a swap of the exact bytes stores a lower revision,
// and that later puts are judged against the revision it stored.
func testSwap(t *testing.T, open Opener) {
	s := open(t, longGrace)
	const high = 1<<62 + 9 // beyond float64 precision on purpose
	mustPut(t, s, "k", "copy at 9", high)
	mustPut(t, s, "other", "x", 1)
	mustSwap(t, s, "k", "primary at 3", high-6, "copy at 9", true)
	wantItem(t, s, "k", "primary at 3", high-6)
	if st, want := mustStats(t, s), int64(len("primary at 3")+len("x")); st.EntryCount != 2 || st.TotalSizeBytes != want {
		t.Errorf("Stats after swap = %+v, want 2 entries of %d bytes", st, want)
	}
	// Guarded puts now meet revision 3: 2 is refused, 5 (between the new
	// and the old revision) admitted.
	if ok, err := s.Put(context.Background(), kv.Entry{Key: "k", Value: []byte("at 2"), Rev: high - 7}); err != nil || ok {
		t.Fatalf("Put below the swapped revision = %v, %v; want false, nil", ok, err)
	}
	mustPut(t, s, "k", "at 5", high-4)
	wantItem(t, s, "k", "at 5", high-4)
	// A swap may also raise the revision, or keep it; empty values are
	// values like any other.
	mustSwap(t, s, "k", "", high, "at 5", true)
	wantItem(t, s, "k", "", high)
	mustSwap(t, s, "k", "back", 0, "", true)
	wantItem(t, s, "k", "back", 0)
	mustPut(t, s, "k", "plain", 0)
}

// testSwapRefused checks that a swap changes nothing unless the key's live
// value is exactly the expected bytes: not when they differ, not for an
// absent key, not over a tombstone.
func testSwapRefused(t *testing.T, open Opener) {
	s := open(t, longGrace)
	mustPut(t, s, "k", "copy", 9)
	for _, old := range []string{"copy ", "cop", "Copy", ""} {
		mustSwap(t, s, "k", "primary", 3, old, false)
	}
	wantItem(t, s, "k", "copy", 9)

	mustSwap(t, s, "absent", "primary", 3, "", false)
	mustSwap(t, s, "absent", "primary", 3, "copy", false)
	wantNotFound(t, s, "absent")

	mustPut(t, s, "gone", "copy", 9)
	mustDelete(t, s, "gone", 9, true)
	mustSwap(t, s, "gone", "primary", 3, "copy", false)
	mustSwap(t, s, "gone", "primary", 12, "", false)
	wantNotFound(t, s, "gone")
	// The tombstone still refuses what it refused before.
	if ok, err := s.Put(context.Background(), kv.Entry{Key: "gone", Value: []byte("late"), Rev: 9}); err != nil || ok {
		t.Fatalf("Put at the tombstone's revision after a refused swap = %v, %v; want false, nil", ok, err)
	}
	mustPut(t, s, "gone", "again", 10)

	mustDelete(t, s, "blocked", kv.MaxRev, false)
	mustSwap(t, s, "blocked", "primary", 3, "", false)
	wantNotFound(t, s, "blocked")
	if st := mustStats(t, s); st.EntryCount != 2 {
		t.Errorf("Stats after refused swaps = %+v, want 2 entries", st)
	}
}

// testConcurrentSwap races a swap that lowers a key's revision from 10 to
// 4 with a put of revision 6 (between the two), many times. Whichever runs
// first, the outcome is one of the two orders: the swap always succeeds
// (the put, were it first, is refused by revision 10 and leaves the
// bytes), and the key ends at revision 6 exactly when the put was stored,
// at revision 4 otherwise. A put of revision 11 always wins.
func testConcurrentSwap(t *testing.T, open Opener) {
	s := open(t, longGrace)
	ctx := context.Background()
	const rounds = 40
	for i := range rounds {
		for _, putRev := range []uint64{6, 11} {
			key := fmt.Sprintf("race-%d-%d", i, putRev)
			mustPut(t, s, key, "copy", 10)
			var (
				wg            sync.WaitGroup
				start         = make(chan struct{})
				put, swapped  bool
				perr, swapErr error
			)
			wg.Go(func() {
				<-start
				put, perr = s.Put(ctx, kv.Entry{Key: key, Value: []byte("live"), Rev: putRev})
			})
			wg.Go(func() {
				<-start
				swapped, swapErr = s.Swap(ctx, kv.Entry{Key: key, Value: []byte("primary"), Rev: 4}, []byte("copy"))
			})
			close(start)
			wg.Wait()
			if perr != nil || swapErr != nil {
				t.Fatalf("%s: Put: %v; Swap: %v", key, perr, swapErr)
			}
			switch {
			case putRev == 11 && put:
				// Put first (swap refused) or swap first: live wins.
				wantItem(t, s, key, "live", 11)
			case putRev == 6 && swapped && put:
				wantItem(t, s, key, "live", 6)
			case putRev == 6 && swapped && !put:
				wantItem(t, s, key, "primary", 4)
			default:
				t.Fatalf("%s: put of revision %d stored %v, swap %v: no order of the two gives that", key, putRev, put, swapped)
			}
		}
	}
}

func testUseAfterClose(t *testing.T, open Opener) {
	s := open(t, longGrace)
	mustPut(t, s, "k", "v", 1)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	checkAll(t, s, context.Background(), kv.ErrClosed)
}

func testCancelledContext(t *testing.T, open Opener) {
	s := open(t, longGrace)
	mustPut(t, s, "k", "v", 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	checkAll(t, s, ctx, context.Canceled)
	// Nothing was written or deleted by the cancelled calls.
	if got := mustGet(t, s, "k"); got != "v" {
		t.Errorf("Get = %q after cancelled calls, want v", got)
	}
	if items := scanAll(t, s, ""); len(items) != 1 {
		t.Errorf("cancelled calls changed the store: %+v", items)
	}
}

// checkAll calls every method and wants errors.Is(err, want) from each.
func checkAll(t *testing.T, s kv.Store, ctx context.Context, want error) {
	t.Helper()
	e := kv.Entry{Key: "k2", Value: []byte("v2"), Rev: 9}
	calls := map[string]func() error{
		"Get":      func() error { _, err := s.Get(ctx, "k"); return err },
		"BatchGet": func() error { _, err := s.BatchGet(ctx, []string{"k"}); return err },
		"Put":      func() error { _, err := s.Put(ctx, e); return err },
		"BatchPut": func() error { _, err := s.BatchPut(ctx, []kv.Entry{e}); return err },
		"Swap": func() error {
			_, err := s.Swap(ctx, kv.Entry{Key: "k", Value: []byte("v3"), Rev: 3}, []byte("v"))
			return err
		},
		"Delete":      func() error { _, err := s.Delete(ctx, "k", kv.MaxRev); return err },
		"BatchDelete": func() error { _, err := s.BatchDelete(ctx, dels(kv.MaxRev, "k")); return err },
		"Scan":        func() error { return s.Scan(ctx, "", func(kv.Item) error { return nil }) },
		"Stats":       func() error { _, err := s.Stats(ctx); return err },
	}
	names := make([]string, 0, len(calls))
	for n := range calls {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := calls[name](); !errors.Is(err, want) {
			t.Errorf("%s = %v, want %v", name, err, want)
		} else if !strings.Contains(err.Error(), want.Error()) {
			t.Errorf("%s error %q does not say %q", name, err, want)
		}
	}
}
