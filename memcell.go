// Package memcell holds the domain of the memcell storage layer: the MemCell
// document, its validation rules, its one canonical JSON encoding, and the
// tools that compare two encodings field by field.
//
// MongoDB is the authoritative store of MemCells; a key-value store keeps a
// mirror of every document. Both copies meet only through the canonical
// encoding defined here (Encode, Decode), so the same document always gives
// the same bytes whichever path produced them:
//
//   - the id is the 24-hex string of the ObjectId, under "_id" (or
//     "event_id" in the API representation);
//   - every known field is present, null when unset, in a fixed order;
//   - unknown extra fields are kept and follow the known ones, sorted by
//     name; object keys inside free-form fields are sorted too;
//   - dates are RFC 3339 in UTC with exactly three fractional digits
//     (2026-01-12T10:30:00.123Z), because MongoDB keeps milliseconds; finer
//     input is truncated and other zones converted on the way in;
//   - numbers are written in the shortest form that reads back to the same
//     value (integers without a fraction, 1.0 as 1).
//
// This package imports nothing else of the project.
package memcell

import (
	"time"
)

// DataType is the kind of source data a MemCell was built from.
type DataType string

// The data types EverMemOS writes.
const (
	Conversation      DataType = "Conversation"
	AgentConversation DataType = "AgentConversation"
)

// Known reports whether t is one of the data types this version knows.
func (t DataType) Known() bool {
	return t == Conversation || t == AgentConversation
}

// MemCell is one memory record. Pointer and slice fields are nil when unset
// (null in the encoding); an empty, non-nil slice is an empty list.
type MemCell struct {
	ID        ID        // the event id; zero before the document is stored
	UserID    *string   // null for group memory
	Timestamp time.Time // required: when the memory happened
	Summary   *string
	GroupID   *string
	// OriginalData holds the source segments the MemCell was extracted from.
	OriginalData   []RawData
	Participants   []string
	Type           *DataType
	Subject        *string
	Keywords       []string
	LinkedEntities []string
	Episode        *string
	// ForesightMemories, EventLog and Extend are free-form: their values are
	// nil, bool, string, numbers (json.Number, int*, uint*, float*),
	// time.Time, ID, []any and map[string]any.
	ForesightMemories []any
	EventLog          map[string]any
	Extend            map[string]any

	CreatedAt *time.Time
	UpdatedAt *time.Time
	DeletedAt *time.Time // set while soft-deleted
	DeletedBy *string
	DeletedID int64 // 0 while live, non-zero once soft-deleted

	// Revision counts the writes made through memcell; documents written by
	// others have revision 0. It is stored in MongoDB under RevisionField
	// and orders the writes to the key-value mirror.
	Revision int64

	// Intent is the mark of the write's mirror intent: the note the primary
	// keeps on the document, in the same atomic operation as the write, that
	// the state still has to reach the KV (see Intent). Zero when the
	// document carries none. It is not part of the document: no encoding
	// holds it and comparisons ignore it.
	Intent ID

	// Extra holds fields this version does not know, kept through every
	// round trip. Values are free-form as above.
	Extra map[string]any
}

// RawData is one segment of source data.
type RawData struct {
	DataType DataType
	Messages []Message // at least one
	Meta     map[string]string
	Extra    map[string]any
}

// Message is one message of a RawData segment.
type Message struct {
	Content string
	Files   []string
	Extend  map[string]string
	Extra   map[string]any
}

// Field names of the stored document.
const (
	IDField       = "_id"
	APIIDField    = "event_id" // the id's name in the API representation
	RevisionField = "revision"
	// IntentField holds a document's mirror intent in MongoDB: an array of
	// at most one mark (an ObjectId) while the KV has not been told of the
	// document's last write, empty or absent otherwise.
	IntentField = "kv_intent"
)

// Deleted reports whether the MemCell is soft-deleted.
func (m *MemCell) Deleted() bool {
	return m.DeletedAt != nil || m.DeletedID != 0
}

// NormalizeTime returns t in UTC truncated to whole milliseconds, the
// precision MongoDB stores.
func NormalizeTime(t time.Time) time.Time {
	return t.Truncate(time.Millisecond).UTC()
}
