package kvtest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/memkv"
)

// The metamorphic test draws its operations from a seed. A failure prints
// the seed; either of these replays it:
//
//	MEMCELL_KVTEST_SEED=1234 go test -run Metamorphic ./kv/pebblekv
//	go test -run Metamorphic ./kv/pebblekv -args -kvtest.seed=1234
//
// MEMCELL_KVTEST_OPS and -kvtest.ops change the number of operations (for a
// longer soak).
var (
	seedFlag = flag.Uint64("kvtest.seed", 0, "seed of the metamorphic kv test (0: $MEMCELL_KVTEST_SEED, else random)")
	opsFlag  = flag.Int("kvtest.ops", 0, "operations of the metamorphic kv test (0: $MEMCELL_KVTEST_OPS, else the test's own)")
)

// MetamorphicOptions configure Metamorphic. The zero value means defaults.
type MetamorphicOptions struct {
	// Ops is the number of operations; 0 means DefaultMetamorphicOps. The
	// kvtest.ops flag and $MEMCELL_KVTEST_OPS override it.
	Ops int
	// Seed of the operation stream; 0 means the kvtest.seed flag, else
	// $MEMCELL_KVTEST_SEED, else a random seed.
	Seed uint64
	// TombstoneGrace is the grace period both stores were opened with; it
	// must be set. Short periods make tombstones expire within the run (the
	// test sleeps now and then to let them), so re-creating a deleted key is
	// exercised too; see DefaultMetamorphicGrace.
	TombstoneGrace time.Duration
	// CheckEvery is how many operations pass between two comparisons of the
	// whole state (Scan, Stats and BatchGet of every key); 0 means 50.
	CheckEvery int
}

// Defaults of RunMetamorphic.
const (
	DefaultMetamorphicOps   = 2000
	DefaultMetamorphicGrace = 100 * time.Millisecond
)

// RunMetamorphic opens a memkv reference and a store with open, both with
// tombstones that live for opts.TombstoneGrace (DefaultMetamorphicGrace
// when unset), and runs Metamorphic on them.
func RunMetamorphic(t *testing.T, open Opener, opts MetamorphicOptions) {
	t.Helper()
	if opts.TombstoneGrace <= 0 {
		opts.TombstoneGrace = DefaultMetamorphicGrace
	}
	ref, err := memkv.New(&memkv.Options{TombstoneGrace: opts.TombstoneGrace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ref.Close() })
	Metamorphic(t, ref, open(t, opts.TombstoneGrace), opts)
}

// Metamorphic runs one seeded random stream of operations against reference
// and store, two empty stores opened with tombstones that live for
// opts.TombstoneGrace, and fails at the first operation whose results
// differ: return values, errors (compared by the sentinel errors they wrap),
// and every opts.CheckEvery operations the whole visible state.
//
// The keys come from a small set that shares prefixes, so that operations
// meet often: revision-guarded puts and deletes with older, equal and newer
// revisions (and kv.MaxRev for deletes), deletes of live and absent keys,
// puts over tombstones of lower and higher revisions and after they expire,
// deletes over tombstones, swaps (kv.Store.Swap) of the last value drawn for
// the key or of other bytes, to lower, equal and higher revisions, batches with repeated keys, scans by prefix,
// empty and binary values, and calls with a cancelled context.
//
// Whether a tombstone has expired depends on the clock, and the two stores
// read it at slightly different times. The test never compares a put or a
// delete whose key's tombstone is near its expiry: it waits until the
// tombstone has surely expired in both stores. Should a write run so long
// that it still meets such a tombstone, its results are not compared and
// the keys concerned are deleted with kv.MaxRev from both stores, which
// makes them equal again; the test logs it.
func Metamorphic(t *testing.T, reference, store kv.Store, opts MetamorphicOptions) {
	t.Helper()
	if opts.TombstoneGrace <= 0 {
		t.Fatal("kvtest.Metamorphic: MetamorphicOptions.TombstoneGrace must be the grace period the stores were opened with")
	}
	seed := metamorphicSeed(t, opts.Seed)
	ops := metamorphicOps(t, opts.Ops)
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = 50
	}
	backend := store.Capabilities().Backend
	t.Logf("metamorphic %s: seed %d, %d operations, grace %v (replay: MEMCELL_KVTEST_SEED=%d)", backend, seed, ops, opts.TombstoneGrace, seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("metamorphic %s failed with seed %d; replay with MEMCELL_KVTEST_SEED=%d or -args -kvtest.seed=%d", backend, seed, seed, seed)
		}
	})

	m := &metamorphic{
		t:         t,
		ref:       reference,
		store:     store,
		ordered:   store.Capabilities().OrderedScan,
		grace:     opts.TombstoneGrace,
		margin:    10 * time.Millisecond,
		budget:    max(opts.TombstoneGrace/4, 20*time.Millisecond),
		r:         rand.New(rand.NewPCG(seed, 0x6d657461)),
		seed:      seed,
		tombs:     make(map[string]tombWindow),
		lastRev:   make(map[string]uint64),
		lastValue: make(map[string][]byte),
	}
	m.keys = metamorphicKeys()
	start := time.Now()
	for i := range ops {
		m.step = i
		m.apply(m.next())
		if (i+1)%opts.CheckEvery == 0 {
			m.checkState()
		}
	}
	m.checkState()
	t.Logf("metamorphic %s: %d operations in %v (%v asleep waiting out tombstones; %d puts not compared; %d of %d swaps stored)",
		backend, ops, time.Since(start).Round(time.Millisecond), m.slept.Round(time.Millisecond), m.skipped, m.swapsStored, m.swaps)
}

func metamorphicSeed(t *testing.T, seed uint64) uint64 {
	t.Helper()
	if seed != 0 {
		return seed
	}
	if *seedFlag != 0 {
		return *seedFlag
	}
	if s := os.Getenv("MEMCELL_KVTEST_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			t.Fatalf("MEMCELL_KVTEST_SEED=%q is not a positive integer", s)
		}
		return n
	}
	for seed == 0 {
		seed = rand.Uint64() >> 1 // fits int64, for readers of the log
	}
	return seed
}

func metamorphicOps(t *testing.T, ops int) int {
	t.Helper()
	if *opsFlag > 0 {
		return *opsFlag
	}
	if s := os.Getenv("MEMCELL_KVTEST_OPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("MEMCELL_KVTEST_OPS=%q is not a positive integer", s)
		}
		return n
	}
	if ops > 0 {
		return ops
	}
	return DefaultMetamorphicOps
}

// metamorphicKeys is the key space: short keys over a two-letter alphabet,
// which are prefixes of each other, and keys with bytes that have a meaning
// somewhere (glob characters, separators, NUL, 0xff, multi-byte UTF-8), and
// the empty key.
func metamorphicKeys() []string {
	var keys []string
	var gen func(prefix string, depth int)
	gen = func(prefix string, depth int) {
		if depth == 0 {
			return
		}
		for _, c := range []string{"a", "b"} {
			keys = append(keys, prefix+c)
			gen(prefix+c, depth-1)
		}
	}
	gen("", 3) // a, aa, aaa, aab, ab, ..., bbb: 14 keys
	return append(keys,
		"memcell:doc1", "memcell:doc10", "memcell:doc2", "memcell",
		"k*", "k?[x]", `k\`, "a:b", "a\x00", "a\xff", "\xff\xff", "日本", "日本語", "",
	)
}

// tombWindow brackets the moment a key's latest delete wrote its tombstone:
// from before the reference's call to after the store's.
type tombWindow struct{ from, to time.Time }

type metamorphic struct {
	t            *testing.T
	ref, store   kv.Store
	ordered      bool
	grace        time.Duration
	margin       time.Duration // clock slack: ms truncation, Redis' own clock
	budget       time.Duration // what a put is assumed to take at most
	r            *rand.Rand
	seed         uint64
	keys         []string
	step         int
	tombs        map[string]tombWindow
	lastRev      map[string]uint64 // last revision drawn per key (not what is stored)
	lastValue    map[string][]byte // last value drawn per key by a put or swap
	history      []string          // the latest operations, for failure messages
	slept        time.Duration
	skipped      int
	valueCounter int
	swaps        int // swaps compared
	swapsStored  int // of which the reference stored
}

type opKind int

const (
	opGet opKind = iota
	opBatchGet
	opPut
	opBatchPut
	opDelete
	opBatchDelete
	opScan
	opScanStop
	opStats
	opCancelled
	opSleep
	opSwap
)

var opNames = [...]string{"Get", "BatchGet", "Put", "BatchPut", "Delete", "BatchDelete", "Scan", "ScanStop", "Stats", "Cancelled", "Sleep", "Swap"}

// op is one drawn operation. Which fields matter depends on kind.
type op struct {
	kind    opKind
	keys    []string      // Get: keys[0]; BatchGet
	entries []kv.Entry    // Put: entries[0]; BatchPut
	dels    []kv.Deletion // Delete: dels[0]; BatchDelete
	old     []byte        // Swap: the expected value
	prefix  string        // Scan, ScanStop
	stopAt  int           // ScanStop: the callback fails at this call
	inner   *op           // Cancelled: the operation run with a done context
	sleep   time.Duration
}

func (o op) String() string {
	var b strings.Builder
	b.WriteString(opNames[o.kind])
	switch o.kind {
	case opGet, opBatchGet:
		fmt.Fprintf(&b, "%q", o.keys)
	case opDelete, opBatchDelete:
		b.WriteString("[")
		for i, d := range o.dels {
			if i > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "{%q rev %d}", d.Key, d.Rev)
		}
		b.WriteString("]")
	case opPut, opBatchPut:
		b.WriteString("[")
		for i, e := range o.entries {
			if i > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "{%q rev %d %s}", e.Key, e.Rev, showValue(e.Value))
		}
		b.WriteString("]")
	case opSwap:
		e := o.entries[0]
		fmt.Fprintf(&b, "[{%q rev %d %s} if %s]", e.Key, e.Rev, showValue(e.Value), showValue(o.old))
	case opScan:
		fmt.Fprintf(&b, "(%q)", o.prefix)
	case opScanStop:
		fmt.Fprintf(&b, "(%q, stop at %d)", o.prefix, o.stopAt)
	case opCancelled:
		fmt.Fprintf(&b, "(%s)", o.inner)
	case opSleep:
		fmt.Fprintf(&b, "(%v)", o.sleep)
	}
	return b.String()
}

func showValue(v []byte) string {
	switch {
	case v == nil:
		return "nil"
	case len(v) > 24:
		return fmt.Sprintf("%q...(%d bytes)", v[:24], len(v))
	}
	return fmt.Sprintf("%q", v)
}

// next draws the next operation. It uses only the random source and what
// earlier draws were, never a store's answers, so a seed always gives the
// same stream.
func (m *metamorphic) next() op {
	n := m.r.IntN(100)
	switch {
	case n < 12:
		return op{kind: opGet, keys: []string{m.key()}}
	case n < 20:
		return op{kind: opBatchGet, keys: m.keyList()}
	case n < 39:
		return op{kind: opPut, entries: []kv.Entry{m.entry()}}
	case n < 44:
		return m.swap()
	case n < 56:
		k := m.r.IntN(7)
		if k == 0 && m.r.IntN(2) == 0 {
			return op{kind: opBatchPut} // nil batch
		}
		entries := make([]kv.Entry, k)
		for i := range entries {
			entries[i] = m.entry()
		}
		return op{kind: opBatchPut, entries: entries}
	case n < 68:
		return op{kind: opDelete, dels: []kv.Deletion{m.deletion(m.key())}}
	case n < 75:
		keys := m.keyList()
		if keys == nil {
			return op{kind: opBatchDelete} // nil batch
		}
		dels := make([]kv.Deletion, len(keys))
		for i, k := range keys {
			dels[i] = m.deletion(k)
		}
		return op{kind: opBatchDelete, dels: dels}
	case n < 85:
		return op{kind: opScan, prefix: m.prefix()}
	case n < 89:
		return op{kind: opScanStop, prefix: m.prefix(), stopAt: 1 + m.r.IntN(4)}
	case n < 93:
		return op{kind: opStats}
	case n < 99:
		inner := m.next()
		for inner.kind == opCancelled || inner.kind == opSleep {
			inner = m.next()
		}
		return op{kind: opCancelled, inner: &inner}
	}
	if m.r.IntN(3) == 0 {
		// Sleep past every tombstone written so far.
		return op{kind: opSleep, sleep: m.grace + 2*m.margin}
	}
	return op{kind: opSleep, sleep: time.Duration(m.r.Int64N(int64(m.grace)))}
}

func (m *metamorphic) key() string {
	return m.keys[m.r.IntN(len(m.keys))]
}

// keyList draws 0 to 6 keys, often with repeats; sometimes nil.
func (m *metamorphic) keyList() []string {
	n := m.r.IntN(7)
	if n == 0 && m.r.IntN(2) == 0 {
		return nil
	}
	keys := make([]string, n)
	for i := range keys {
		if i > 0 && m.r.IntN(5) == 0 {
			keys[i] = keys[m.r.IntN(i)]
		} else {
			keys[i] = m.key()
		}
	}
	return keys
}

// prefix draws a scan prefix: empty, the start of a key, a whole key, or
// one that matches nothing.
func (m *metamorphic) prefix() string {
	switch m.r.IntN(6) {
	case 0:
		return ""
	case 1:
		return []string{"z", "\xff\xff\xff", "memcell:doc3", "k*x", "日本人"}[m.r.IntN(5)]
	case 2:
		return m.key()
	}
	k := m.key()
	return k[:m.r.IntN(len(k)+1)]
}

// entry draws a put: a revision older than, equal to or newer than the last
// one drawn for the key, or one of the edges, and a value.
func (m *metamorphic) entry() kv.Entry {
	key := m.key()
	last := m.lastRev[key]
	var rev uint64
	switch m.r.IntN(10) {
	case 0:
		rev = 0
	case 1, 2:
		rev = last
	case 3, 4:
		if last > 0 {
			rev = last - 1 - m.r.Uint64N(min(last, 3))
		}
	case 5:
		rev = []uint64{1 << 53, 1<<53 + 1, 1<<63 + 1, 1<<64 - 2, 1<<64 - 1}[m.r.IntN(5)]
	default:
		rev = last + 1 + m.r.Uint64N(3)
		if rev < last { // wrapped
			rev = last
		}
	}
	if rev > last {
		m.lastRev[key] = rev
	}
	v := m.value()
	m.lastValue[key] = v
	return kv.Entry{Key: key, Value: v, Rev: rev}
}

// swap draws a swap: mostly of the last value drawn for the key (which the
// key often holds), sometimes of other bytes; to a revision often lower
// than the last one drawn for the key, sometimes equal, higher or an edge.
func (m *metamorphic) swap() op {
	key := m.key()
	last := m.lastRev[key]
	var old []byte
	switch m.r.IntN(8) {
	case 0:
		old = m.value()
	case 1:
		old = append(bytes.Clone(m.lastValue[key]), 'x')
	default:
		old = m.lastValue[key]
	}
	var rev uint64
	switch m.r.IntN(8) {
	case 0:
		rev = 0
	case 1:
		rev = last
	case 2:
		rev = last + 1 + m.r.Uint64N(3)
		if rev < last { // wrapped
			rev = last
		}
		m.lastRev[key] = rev
	case 3:
		rev = []uint64{1 << 53, 1<<53 + 1, 1<<64 - 1}[m.r.IntN(3)]
		m.lastRev[key] = max(last, rev)
	default:
		if last > 0 {
			rev = last - 1 - m.r.Uint64N(min(last, 5))
		}
	}
	v := m.value()
	m.lastValue[key] = v
	return op{kind: opSwap, entries: []kv.Entry{{Key: key, Value: v, Rev: rev}}, old: old}
}

// deletion draws a delete of key: a revision older than, equal to or newer
// than the last one drawn for the key, or kv.MaxRev. A newer revision
// becomes the key's last, so later puts meet its tombstone with equal and
// newer revisions too.
func (m *metamorphic) deletion(key string) kv.Deletion {
	last := m.lastRev[key]
	var rev uint64
	switch m.r.IntN(8) {
	case 0:
		rev = kv.MaxRev
	case 1, 2:
		rev = last
	case 3, 4:
		if last > 0 {
			rev = last - 1 - m.r.Uint64N(min(last, 3))
		}
	default:
		rev = last + 1 + m.r.Uint64N(3)
		if rev < last { // wrapped
			rev = last
		}
		if rev != kv.MaxRev {
			m.lastRev[key] = rev
		}
	}
	return kv.Deletion{Key: key, Rev: rev}
}

func (m *metamorphic) value() []byte {
	m.valueCounter++
	switch m.r.IntN(10) {
	case 0:
		return nil
	case 1:
		return []byte{}
	case 2, 3:
		b := make([]byte, 1+m.r.IntN(40))
		for i := range b {
			b[i] = byte(m.r.IntN(256))
		}
		return b
	case 4:
		return bytes.Repeat([]byte{0}, 1+m.r.IntN(8))
	case 5:
		b := make([]byte, 4096+m.r.IntN(4096))
		for i := range b {
			b[i] = byte(m.r.IntN(256))
		}
		return b
	}
	return fmt.Appendf(nil, `{"n":%d,"s":"v%d"}`, m.valueCounter, m.r.IntN(1000))
}

// errClass names the sentinel error err wraps, so that the two stores'
// errors compare by meaning rather than text.
func errClass(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, kv.ErrNotFound):
		return "ErrNotFound"
	case errors.Is(err, kv.ErrClosed):
		return "ErrClosed"
	case errors.Is(err, context.Canceled):
		return "context.Canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "context.DeadlineExceeded"
	case errors.Is(err, errStopScan):
		return "callback error"
	}
	return "other: " + err.Error()
}

var errStopScan = errors.New("kvtest: metamorphic scan stopped by its callback")

// cmpOpts compare values without telling nil from empty: the contract does
// not say which an empty value comes back as.
var cmpOpts = cmp.Options{cmpopts.EquateEmpty()}

// cmpDiff is cmp.Diff(want, got, cmpOpts) with a fast path for equal values:
// cmp walks byte slices element by element.
func cmpDiff[T any](want, got T) string {
	if reflect.DeepEqual(normalize(want), normalize(got)) {
		return ""
	}
	return cmp.Diff(want, got, cmpOpts)
}

// normalize returns v with every empty slice and map made nil, as
// cmpopts.EquateEmpty sees them.
func normalize(v any) any {
	switch v := v.(type) {
	case result:
		v.Value = normBytes(v.Value)
		v.Values = normMap(v.Values)
		v.Items = normItems(v.Items)
		return v
	case []kv.Item:
		return normItems(v)
	case kv.Item:
		v.Value = normBytes(v.Value)
		return v
	}
	return v
}

func normBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func normMap(m map[string][]byte) map[string][]byte {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = normBytes(v)
	}
	return out
}

func normItems(items []kv.Item) []kv.Item {
	if len(items) == 0 {
		return nil
	}
	out := make([]kv.Item, len(items))
	for i, it := range items {
		it.Value = normBytes(it.Value)
		out[i] = it
	}
	return out
}

// result is what one store answered to one operation.
type result struct {
	Err    string
	Value  []byte            `json:",omitempty"`
	Values map[string][]byte `json:",omitempty"`
	OK     bool
	N      int
	Items  []kv.Item
	Stats  kv.Stats
}

func (m *metamorphic) fail(o op, format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("seed %d, operation %d: %s\n%s\nlatest operations, oldest first:\n  %s",
		m.seed, m.step, o, fmt.Sprintf(format, args...), strings.Join(m.history, "\n  "))
}

func (m *metamorphic) record(o op) {
	const keep = 20
	if len(m.history) == keep {
		copy(m.history, m.history[1:])
		m.history = m.history[:keep-1]
	}
	m.history = append(m.history, fmt.Sprintf("%d: %s", m.step, o))
}

func (m *metamorphic) apply(o op) {
	m.t.Helper()
	m.record(o)
	switch o.kind {
	case opSleep:
		time.Sleep(o.sleep)
		m.slept += o.sleep
		return
	case opCancelled:
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		want, got := m.run(ctx, m.ref, *o.inner), m.run(ctx, m.store, *o.inner)
		if want.Err != "context.Canceled" || got.Err != "context.Canceled" {
			m.fail(o, "with a cancelled context: reference error %s, store error %s; want context.Canceled from both", want.Err, got.Err)
		}
		return
	case opPut, opBatchPut, opDelete, opBatchDelete:
		m.waitOutTombstones(o.writtenKeys())
	}

	ctx := context.Background()
	begin := time.Now()
	want := m.run(ctx, m.ref, o)
	got := m.run(ctx, m.store, o)
	end := time.Now()

	switch o.kind {
	case opDelete, opBatchDelete:
		// A delete's result depends only on the live value, but the
		// tombstone it leaves takes the revision of the one it met.
		unsure := m.unsure(o.writtenKeys(), begin, end)
		for _, d := range o.dels {
			m.tombs[d.Key] = tombWindow{begin, end}
		}
		if len(unsure) > 0 {
			m.skipped++
			m.t.Logf("operation %d %s took %v and met tombstones expiring meanwhile; deleting %q from both stores",
				m.step, o, end.Sub(begin), unsure)
			m.forget(unsure)
		}
	case opPut, opBatchPut:
		if unsure := m.unsure(o.writtenKeys(), begin, end); len(unsure) > 0 {
			m.skipped++
			m.t.Logf("operation %d %s took %v and met tombstones expiring meanwhile; not compared, deleting %q from both stores",
				m.step, o, end.Sub(begin), unsure)
			m.forget(unsure)
			return
		}
	case opSwap:
		m.swaps++
		if want.OK {
			m.swapsStored++
		}
	case opScan:
		if m.ordered && !sort.SliceIsSorted(got.Items, func(i, j int) bool { return got.Items[i].Key < got.Items[j].Key }) {
			m.fail(o, "the store declares OrderedScan but scanned keys out of order: %q", itemKeys(got.Items))
		}
		sortItems(want.Items)
		sortItems(got.Items)
	case opScanStop:
		m.compareScanStop(o, want, got)
		return
	}
	if diff := cmpDiff(want, got); diff != "" {
		m.fail(o, "results differ (-reference +store):\n%s", diff)
	}
}

// compareScanStop checks a scan whose callback fails at call o.stopAt:
// both stores stop there (or finish sooner when they hold fewer keys), and
// the items seen are live ones; an ordered store sees the first ones.
func (m *metamorphic) compareScanStop(o op, want, got result) {
	m.t.Helper()
	if want.Err != got.Err || want.N != got.N {
		m.fail(o, "reference: %d calls then %s; store: %d calls then %s", want.N, want.Err, got.N, got.Err)
	}
	all := m.scan(m.ref, o.prefix)
	sortItems(all)
	if m.ordered {
		if diff := cmpDiff(all[:min(len(all), len(got.Items))], got.Items); diff != "" {
			m.fail(o, "an ordered store's stopped scan did not see the first keys (-want +got):\n%s", diff)
		}
		return
	}
	byKey := make(map[string]kv.Item, len(all))
	for _, it := range all {
		byKey[it.Key] = it
	}
	for _, it := range got.Items {
		if diff := cmpDiff(byKey[it.Key], it); diff != "" {
			m.fail(o, "the stopped scan saw an item the reference does not hold (-reference +store):\n%s", diff)
		}
	}
}

// run applies o to s and collects its answer.
func (m *metamorphic) run(ctx context.Context, s kv.Store, o op) result {
	var (
		res result
		err error
	)
	switch o.kind {
	case opGet:
		res.Value, err = s.Get(ctx, o.keys[0])
	case opBatchGet:
		res.Values, err = s.BatchGet(ctx, o.keys)
	case opPut:
		res.OK, err = s.Put(ctx, o.entries[0])
	case opSwap:
		res.OK, err = s.Swap(ctx, o.entries[0], o.old)
	case opBatchPut:
		res.N, err = s.BatchPut(ctx, o.entries)
	case opDelete:
		res.OK, err = s.Delete(ctx, o.dels[0].Key, o.dels[0].Rev)
	case opBatchDelete:
		res.N, err = s.BatchDelete(ctx, o.dels)
	case opScan:
		err = s.Scan(ctx, o.prefix, func(it kv.Item) error {
			res.Items = append(res.Items, kv.Item{Key: it.Key, Value: bytes.Clone(it.Value), Rev: it.Rev})
			return nil
		})
	case opScanStop:
		err = s.Scan(ctx, o.prefix, func(it kv.Item) error {
			res.N++
			res.Items = append(res.Items, kv.Item{Key: it.Key, Value: bytes.Clone(it.Value), Rev: it.Rev})
			if res.N == o.stopAt {
				return errStopScan
			}
			return nil
		})
	case opStats:
		res.Stats, err = s.Stats(ctx)
	default:
		panic("kvtest: metamorphic: cannot run " + o.String())
	}
	res.Err = errClass(err)
	return res
}

// writtenKeys returns the keys a put or delete writes, repeats included.
func (o op) writtenKeys() []string {
	keys := make([]string, 0, len(o.entries)+len(o.dels))
	for _, e := range o.entries {
		keys = append(keys, e.Key)
	}
	for _, d := range o.dels {
		keys = append(keys, d.Key)
	}
	return keys
}

// waitOutTombstones sleeps until no key of keys has a tombstone that might
// expire while the write runs, in either store.
func (m *metamorphic) waitOutTombstones(keys []string) {
	for {
		var until time.Time
		now := time.Now()
		for _, k := range keys {
			w, ok := m.tombs[k]
			if !ok {
				continue
			}
			if now.Add(m.budget).Before(w.from.Add(m.grace - m.margin)) {
				continue // surely alive until the put is over
			}
			if gone := w.to.Add(m.grace + m.margin); now.Before(gone) && gone.After(until) {
				until = gone
			}
		}
		if until.IsZero() {
			return
		}
		// Sleeping for one key may bring another's tombstone near its
		// expiry: look again afterwards.
		d := time.Until(until)
		time.Sleep(d)
		m.slept += d
	}
}

// unsure returns those of written whose tombstone may have expired in one
// store and not in the other during [begin, end]. It forgets the tombstones
// that have surely expired.
func (m *metamorphic) unsure(written []string, begin, end time.Time) []string {
	var keys []string
	for _, k := range written {
		w, ok := m.tombs[k]
		if !ok {
			continue
		}
		switch {
		case end.Before(w.from.Add(m.grace - m.margin)):
			// alive in both
		case begin.After(w.to.Add(m.grace + m.margin)):
			delete(m.tombs, k) // expired in both
		default:
			if !contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// forget deletes keys with kv.MaxRev from both stores without comparing the
// answers, which a write whose outcome was left to the clock may have made
// differ; after it the keys are alike in both: no value, and a tombstone
// that refuses every put.
func (m *metamorphic) forget(keys []string) {
	m.t.Helper()
	dels := make([]kv.Deletion, len(keys))
	for i, k := range keys {
		dels[i] = kv.Deletion{Key: k, Rev: kv.MaxRev}
	}
	o := op{kind: opBatchDelete, dels: dels}
	m.record(o)
	begin := time.Now()
	for _, s := range []kv.Store{m.ref, m.store} {
		if res := m.run(context.Background(), s, o); res.Err != "nil" {
			m.fail(o, "%s: BatchDelete failed: %s", s.Capabilities().Backend, res.Err)
		}
	}
	end := time.Now()
	for _, k := range keys {
		m.tombs[k] = tombWindow{begin, end}
	}
}

func contains(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// checkState compares everything the stores show: a full scan, Stats and
// BatchGet and Get of every key in the key space.
func (m *metamorphic) checkState() {
	m.t.Helper()
	o := op{kind: opScan}
	want, got := m.scan(m.ref, ""), m.scan(m.store, "")
	sortItems(want)
	sortItems(got)
	if diff := cmpDiff(want, got); diff != "" {
		m.fail(o, "full state differs (-reference +store):\n%s", diff)
	}
	for _, o := range []op{{kind: opStats}, {kind: opBatchGet, keys: m.keys}} {
		if diff := cmpDiff(m.run(context.Background(), m.ref, o), m.run(context.Background(), m.store, o)); diff != "" {
			m.fail(o, "full-state check: results differ (-reference +store):\n%s", diff)
		}
	}
	for _, k := range m.keys {
		o := op{kind: opGet, keys: []string{k}}
		if diff := cmpDiff(m.run(context.Background(), m.ref, o), m.run(context.Background(), m.store, o)); diff != "" {
			m.fail(o, "full-state check: results differ (-reference +store):\n%s", diff)
		}
	}
}

func (m *metamorphic) scan(s kv.Store, prefix string) []kv.Item {
	m.t.Helper()
	res := m.run(context.Background(), s, op{kind: opScan, prefix: prefix})
	if res.Err != "nil" {
		m.fail(op{kind: opScan, prefix: prefix}, "%s: Scan failed: %s", s.Capabilities().Backend, res.Err)
	}
	return res.Items
}

func sortItems(items []kv.Item) {
	sort.SliceStable(items, func(i, j int) bool { return items[i].Key < items[j].Key })
}

func itemKeys(items []kv.Item) []string {
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	return keys
}
