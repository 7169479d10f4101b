// Package record holds what the embedded backends (kv/pebblekv,
// kv/leveldbkv and kv/rocksdbkv) share on top of a plain ordered key-value
// library: the format of a stored value and the guard rule that decides
// whether a put may replace it.
//
// A stored value is a small header followed by the user's bytes:
//
//	live value: 0x01 uvarint(rev) value...
//	tombstone:  0x03 uvarint(rev) varint(expiry in Unix milliseconds)
//
// A tombstone's revision is the highest revision it refuses puts of (see
// Admits).
//
// Stores written before tombstones had a meaningful revision hold the
// legacy tombstone, 0x02 uvarint(rev) varint(expiry), whose revision was
// that of the record it replaced and which refused every put until it
// expired. Decode still reads it, as a Tombstone of revision
// math.MaxUint64, so it keeps that meaning; it is never written any more.
// A store that holds tombstones of the current form cannot be read by a
// program that knows only the legacy form (it reports them as corrupt)
// until they expire and are removed.
//
// Decode never panics: anything that is not exactly one of these forms is
// ErrCorrupt.
package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Kind says what a stored record is.
type Kind byte

// The kinds of records, which are also their first stored byte. Absent is
// never stored: it is the zero Record, which stands for a key with no record
// at all.
const (
	Absent    Kind = 0
	Live      Kind = 1
	Tombstone Kind = 3
)

// legacyTombstone is the first byte of a tombstone of the legacy form, which
// refuses every put until it expires.
const legacyTombstone = 0x02

// ErrCorrupt reports a stored value that is not a valid record.
var ErrCorrupt = errors.New("corrupt record")

// Record is a decoded stored value.
type Record struct {
	Kind Kind
	// Rev is the revision of a live value, or the highest revision a
	// tombstone refuses.
	Rev uint64
	// Expiry is when a tombstone stops blocking puts, in Unix milliseconds.
	Expiry int64
	// Value is the user's value of a live record. Decode makes it alias its
	// input.
	Value []byte
}

// Now returns the current time in the unit of Record.Expiry.
func Now() int64 { return time.Now().UnixMilli() }

// ExpiryAfter returns the expiry of a tombstone written now that lives for
// grace.
func ExpiryAfter(grace time.Duration) int64 { return time.Now().Add(grace).UnixMilli() }

// Expired reports whether r is a tombstone whose grace period is over at
// now. An expired tombstone means the same as no record.
func (r Record) Expired(now int64) bool {
	return r.Kind == Tombstone && now >= r.Expiry
}

// Admits reports whether a put of revision rev may replace r: always when r
// is absent or an expired tombstone, when rev is above r.Rev for a living
// tombstone, and when rev is at least r.Rev for a live value. now gives the
// current time (see Now); it is called only for tombstones of revision rev
// or higher, since reading the clock costs more than the rest of the
// decision.
func (r Record) Admits(rev uint64, now func() int64) bool {
	switch r.Kind {
	case Live:
		return rev >= r.Rev
	case Tombstone:
		return rev > r.Rev || now() >= r.Expiry
	default:
		return true
	}
}

// Holds reports whether r is a live value of exactly the bytes old (nil and
// empty are the same), the condition of a compare-and-swap (kv.Store.Swap).
// Tombstones, expired or not, and absent records hold nothing.
func (r Record) Holds(old []byte) bool {
	return r.Kind == Live && bytes.Equal(r.Value, old)
}

// Deleted returns the record a guarded delete of revision rev leaves on r,
// with a tombstone that expires at expiry, and whether r held a live value
// that the delete removes. ok is false when r is a live value of a higher
// revision, which the delete leaves alone. The tombstone's revision is the
// higher of rev and that of a tombstone r still is at now. A corrupt record
// should be passed as the zero Record: the delete replaces it.
func (r Record) Deleted(rev uint64, expiry, now int64) (tomb Record, removed, ok bool) {
	switch r.Kind {
	case Live:
		if r.Rev > rev {
			return Record{}, false, false
		}
		removed = true
	case Tombstone:
		if r.Rev > rev && !r.Expired(now) {
			rev = r.Rev
		}
	}
	return Record{Kind: Tombstone, Rev: rev, Expiry: expiry}, removed, true
}

// MaxTombstoneSize is the largest encoded length of a tombstone.
const MaxTombstoneSize = 1 + 2*binary.MaxVarintLen64

// LiveSize is the encoded length of a live record of revision rev holding
// valueLen bytes.
func LiveSize(rev uint64, valueLen int) int {
	return 1 + uvarintLen(rev) + valueLen
}

// AppendLive appends the live record (rev, value) to dst. When dst has
// LiveSize bytes of spare capacity it does not allocate.
func AppendLive(dst []byte, rev uint64, value []byte) []byte {
	dst = append(dst, byte(Live))
	dst = binary.AppendUvarint(dst, rev)
	return append(dst, value...)
}

// AppendTombstone appends a tombstone of revision rev expiring at expiry
// (Unix milliseconds) to dst.
func AppendTombstone(dst []byte, rev uint64, expiry int64) []byte {
	dst = append(dst, byte(Tombstone))
	dst = binary.AppendUvarint(dst, rev)
	return binary.AppendVarint(dst, expiry)
}

// Size returns the encoded length of r, which must be a Live or Tombstone
// record.
func (r Record) Size() int {
	if r.Kind == Tombstone {
		return 1 + uvarintLen(r.Rev) + varintLen(r.Expiry)
	}
	return LiveSize(r.Rev, len(r.Value))
}

// Append appends the encoding of r, which must be a Live or Tombstone
// record, to dst: AppendLive or AppendTombstone of its fields. When dst has
// r.Size() bytes of spare capacity it does not allocate.
func (r Record) Append(dst []byte) []byte {
	if r.Kind == Tombstone {
		return AppendTombstone(dst, r.Rev, r.Expiry)
	}
	return AppendLive(dst, r.Rev, r.Value)
}

// Decode parses a stored value. The returned Value aliases b. A value that
// is not a well-formed record gives an error wrapping ErrCorrupt.
func Decode(b []byte) (Record, error) {
	if len(b) == 0 {
		return Record{}, fmt.Errorf("%w: empty value", ErrCorrupt)
	}
	kind := Kind(b[0])
	rev, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return Record{}, fmt.Errorf("%w: bad revision", ErrCorrupt)
	}
	rest := b[1+n:]
	switch kind {
	case Live:
		return Record{Kind: Live, Rev: rev, Value: rest}, nil
	case Tombstone, legacyTombstone:
		expiry, m := binary.Varint(rest)
		if m <= 0 || m != len(rest) {
			return Record{}, fmt.Errorf("%w: bad tombstone expiry", ErrCorrupt)
		}
		if kind == legacyTombstone {
			rev = math.MaxUint64
		}
		return Record{Kind: Tombstone, Rev: rev, Expiry: expiry}, nil
	default:
		return Record{}, fmt.Errorf("%w: unknown kind 0x%02x", ErrCorrupt, b[0])
	}
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// varintLen is the length of binary.AppendVarint's encoding of x.
func varintLen(x int64) int {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	return uvarintLen(ux)
}
