package record

import (
	"bytes"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		enc  []byte
		want Record
	}{
		{"live", AppendLive(nil, 7, []byte("hello")), Record{Kind: Live, Rev: 7, Value: []byte("hello")}},
		{"live empty", AppendLive(nil, 0, nil), Record{Kind: Live, Value: []byte{}}},
		{"live max rev", AppendLive(nil, math.MaxUint64, []byte{0}), Record{Kind: Live, Rev: math.MaxUint64, Value: []byte{0}}},
		{"tombstone", AppendTombstone(nil, 3, 1_700_000_000_123), Record{Kind: Tombstone, Rev: 3, Expiry: 1_700_000_000_123}},
		{"tombstone negative expiry", AppendTombstone(nil, 0, -5), Record{Kind: Tombstone, Expiry: -5}},
		{"legacy tombstone", []byte{0x02, 3, 0x02}, Record{Kind: Tombstone, Rev: math.MaxUint64, Expiry: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.enc)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decode mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTombstoneIsNotLegacy checks that tombstones are written in the form
// whose revision limits what they refuse, never in the legacy one.
func TestTombstoneIsNotLegacy(t *testing.T) {
	if b := AppendTombstone(nil, 1, 2); b[0] != 0x03 {
		t.Errorf("a tombstone starts with 0x%02x, want 0x03", b[0])
	}
}

func TestLiveSize(t *testing.T) {
	for _, rev := range []uint64{0, 1, 127, 128, 1 << 40, math.MaxUint64} {
		for _, n := range []int{0, 1, 2048} {
			if got, want := len(AppendLive(nil, rev, make([]byte, n))), LiveSize(rev, n); got != want {
				t.Errorf("rev %d, %d bytes: encoded %d bytes, LiveSize says %d", rev, n, got, want)
			}
		}
	}
}

func TestRecordSizeAndAppend(t *testing.T) {
	for _, rec := range []Record{
		{Kind: Live, Rev: 0, Value: []byte{}},
		{Kind: Live, Rev: 300, Value: []byte("value")},
		{Kind: Live, Rev: math.MaxUint64, Value: make([]byte, 2048)},
		{Kind: Tombstone, Rev: 0, Expiry: 0},
		{Kind: Tombstone, Rev: 1 << 40, Expiry: 1_700_000_000_123},
		{Kind: Tombstone, Rev: 7, Expiry: -1},
		{Kind: Tombstone, Rev: math.MaxUint64, Expiry: math.MinInt64},
		{Kind: Tombstone, Rev: 1, Expiry: math.MaxInt64},
	} {
		enc := rec.Append(nil)
		if len(enc) != rec.Size() {
			t.Errorf("%+v: encoded %d bytes, Size says %d", rec, len(enc), rec.Size())
		}
		got, err := Decode(enc)
		if err != nil || !cmp.Equal(rec, got) {
			t.Errorf("Decode(%+v.Append) = %+v, %v", rec, got, err)
		}
		if rec.Kind == Tombstone && len(enc) > MaxTombstoneSize {
			t.Errorf("%+v: tombstone of %d bytes, more than MaxTombstoneSize", rec, len(enc))
		}
		buf := make([]byte, 0, rec.Size())
		if allocs := testing.AllocsPerRun(10, func() { rec.Append(buf[:0]) }); allocs != 0 {
			t.Errorf("%+v: Append into a buffer of Size bytes allocated %v times", rec, allocs)
		}
	}
}

func TestDecodeCorrupt(t *testing.T) {
	tomb := AppendTombstone(nil, 1, 1000)
	for name, b := range map[string][]byte{
		"empty":            nil,
		"kind only":        {byte(Live)},
		"unknown kind":     {9, 1, 'x'},
		"zero kind":        {0, 1},
		"revision cut":     {byte(Live), 0x80},
		"revision too big": append([]byte{byte(Live)}, bytes.Repeat([]byte{0xff}, 11)...),
		"no expiry":        {byte(Tombstone), 1},
		"expiry cut":       {byte(Tombstone), 1, 0x80},
		"legacy no expiry": {0x02, 1},
		"legacy trailing":  {0x02, 1, 2, 'x'},
		"trailing bytes":   append(tomb, 'x'),
	} {
		t.Run(name, func(t *testing.T) {
			if rec, err := Decode(b); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Decode(%x) = %+v, %v; want ErrCorrupt", b, rec, err)
			}
		})
	}
}

func TestAdmits(t *testing.T) {
	const now = 1000
	for _, tc := range []struct {
		name string
		rec  Record
		rev  uint64
		want bool
	}{
		{"absent", Record{}, 0, true},
		{"older", Record{Kind: Live, Rev: 5}, 4, false},
		{"equal", Record{Kind: Live, Rev: 5}, 5, true},
		{"newer", Record{Kind: Live, Rev: 5}, 6, true},
		{"live tombstone, older put", Record{Kind: Tombstone, Rev: 9, Expiry: now + 1}, 8, false},
		{"live tombstone, equal put", Record{Kind: Tombstone, Rev: 9, Expiry: now + 1}, 9, false},
		{"live tombstone, newer put", Record{Kind: Tombstone, Rev: 9, Expiry: now + 1}, 10, true},
		{"live max tombstone", Record{Kind: Tombstone, Rev: math.MaxUint64, Expiry: now + 1}, math.MaxUint64, false},
		{"tombstone expiring now", Record{Kind: Tombstone, Rev: 9, Expiry: now}, 0, true},
		{"expired tombstone", Record{Kind: Tombstone, Rev: 9, Expiry: now - 1}, 0, true},
	} {
		if got := tc.rec.Admits(tc.rev, func() int64 { return now }); got != tc.want {
			t.Errorf("%s: Admits(%d) = %v, want %v", tc.name, tc.rev, got, tc.want)
		}
	}
}

func TestHolds(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  Record
		old  []byte
		want bool
	}{
		{"same bytes", Record{Kind: Live, Rev: 9, Value: []byte("v1")}, []byte("v1"), true},
		{"other bytes", Record{Kind: Live, Rev: 9, Value: []byte("v1")}, []byte("v2"), false},
		{"prefix", Record{Kind: Live, Rev: 9, Value: []byte("v1")}, []byte("v"), false},
		{"empty and nil", Record{Kind: Live, Value: []byte{}}, nil, true},
		{"absent", Record{}, nil, false},
		{"tombstone", Record{Kind: Tombstone, Rev: 9, Expiry: 1}, nil, false},
	} {
		if got := tc.rec.Holds(tc.old); got != tc.want {
			t.Errorf("%s: Holds(%q) = %v, want %v", tc.name, tc.old, got, tc.want)
		}
	}
}

func TestDeleted(t *testing.T) {
	const now, exp = 1000, 5000
	tomb := func(rev uint64) Record { return Record{Kind: Tombstone, Rev: rev, Expiry: exp} }
	for _, tc := range []struct {
		name    string
		rec     Record
		rev     uint64
		want    Record
		removed bool
		ok      bool
	}{
		{"absent", Record{}, 4, tomb(4), false, true},
		{"older live", Record{Kind: Live, Rev: 3, Value: []byte("v")}, 4, tomb(4), true, true},
		{"equal live", Record{Kind: Live, Rev: 4}, 4, tomb(4), true, true},
		{"newer live", Record{Kind: Live, Rev: 5}, 4, Record{}, false, false},
		{"lower tombstone", Record{Kind: Tombstone, Rev: 2, Expiry: now + 1}, 4, tomb(4), false, true},
		{"higher tombstone", Record{Kind: Tombstone, Rev: 7, Expiry: now + 1}, 4, tomb(7), false, true},
		{"higher expired tombstone", Record{Kind: Tombstone, Rev: 7, Expiry: now}, 4, tomb(4), false, true},
		{"max", Record{Kind: Live, Rev: math.MaxUint64}, math.MaxUint64, tomb(math.MaxUint64), true, true},
	} {
		got, removed, ok := tc.rec.Deleted(tc.rev, exp, now)
		if !cmp.Equal(got, tc.want) || removed != tc.removed || ok != tc.ok {
			t.Errorf("%s: Deleted(%d) = %+v, %v, %v; want %+v, %v, %v", tc.name, tc.rev, got, removed, ok, tc.want, tc.removed, tc.ok)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(AppendLive(nil, 1, []byte(`{"a":1}`)))
	f.Add(AppendTombstone(nil, 2, 1_700_000_000_000))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := Decode(b)
		if err != nil {
			return
		}
		var again []byte
		switch rec.Kind {
		case Live:
			again = AppendLive(nil, rec.Rev, rec.Value)
		case Tombstone:
			again = AppendTombstone(nil, rec.Rev, rec.Expiry)
		default:
			t.Fatalf("Decode(%x) gave kind %d without an error", b, rec.Kind)
		}
		// Varints have non-minimal encodings, so compare decoded records.
		rec2, err := Decode(again)
		if err != nil || !cmp.Equal(rec, rec2) {
			t.Fatalf("re-encoding %+v gave %+v, %v", rec, rec2, err)
		}
	})
}

func TestStripeSetLocksEachStripeOnce(t *testing.T) {
	l := NewLocks()
	set := l.Set()
	for _, k := range []string{"a", "b", "a", "c", "b"} {
		set.Add(k)
	}
	set.Lock() // a stripe locked twice would deadlock here
	for _, k := range []string{"a", "b", "c"} {
		if m := l.For(k); m.TryLock() {
			m.Unlock()
			t.Errorf("stripe of %q not held by the set", k)
		}
	}
	set.Unlock()

	// Batches with overlapping keys in opposite orders must not deadlock.
	var wg sync.WaitGroup
	keys := []string{"k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8"}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				s := l.Set()
				for j := range keys {
					if w%2 == 1 {
						j = len(keys) - 1 - j // odd workers add in reverse
					}
					s.Add(keys[j])
				}
				s.Lock()
				m := l.For(keys[i%len(keys)])
				if m.TryLock() {
					t.Errorf("stripe of %q not held by the set", keys[i%len(keys)])
					m.Unlock()
				}
				s.Unlock()
			}
		}()
	}
	wg.Wait()
}
