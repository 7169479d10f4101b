package memcell

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"time"
)

// ID is a MongoDB ObjectId: the _id of a stored MemCell and, as 24 lowercase
// hex digits, its event id.
type ID [12]byte

// ParseID parses a 24-hex-digit event id (either case).
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 24 {
		return id, &FieldError{Field: IDField, Rule: "must be a 24-character hex ObjectId"}
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, &FieldError{Field: IDField, Rule: "must be a 24-character hex ObjectId"}
	}
	return id, nil
}

// String returns the 24 lowercase hex digits.
func (id ID) String() string {
	return hex.EncodeToString(id[:])
}

// IsZero reports whether id is unset.
func (id ID) IsZero() bool {
	return id == ID{}
}

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) {
	return []byte(id.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	p, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

var (
	idProcess [5]byte
	idCounter atomic.Uint32
)

func init() {
	// Per-process random part and counter start, as the ObjectId spec asks.
	// This is process identity, not mutable configuration.
	var b [9]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("memcell: no randomness for ObjectIds: %v", err))
	}
	copy(idProcess[:], b[:5])
	idCounter.Store(binary.BigEndian.Uint32(b[5:]))
}

// NewID returns a new ObjectId: seconds since the epoch, a per-process random
// value and a counter, like every MongoDB driver makes them.
func NewID() ID {
	var id ID
	binary.BigEndian.PutUint32(id[0:4], uint32(time.Now().Unix()))
	copy(id[4:9], idProcess[:])
	c := idCounter.Add(1)
	id[9], id[10], id[11] = byte(c>>16), byte(c>>8), byte(c)
	return id
}
