package memcell

import (
	"fmt"
	"time"
)

// MaxLimit is the most documents one Find returns.
const MaxLimit = 1000

// Query selects live documents for Find and Count. Every set condition must
// hold.
type Query struct {
	UserID *string
	// IncludeParticipant makes UserID also match documents where the user is
	// one of the participants (EverMemOS's find by user and time range).
	IncludeParticipant bool
	GroupID            *string
	Type               *DataType
	// Participants matches documents with any of them, or all with
	// ParticipantsAll.
	Participants    []string
	ParticipantsAll bool
	// Keywords matches documents with any of them, or all with KeywordsAll.
	Keywords    []string
	KeywordsAll bool
	// Start <= timestamp < End; either may be nil.
	Start, End *time.Time
	// Ascending sorts oldest first; the default is newest first, with the
	// id as the tie-breaker so that pages are stable.
	Ascending bool
	// Limit caps the documents returned (0 means MaxLimit; more is an
	// error); Skip skips the first ones.
	Limit, Skip int64
}

// Check reports the first rule the query breaks, as a *FieldError: limit
// and skip in range, a non-empty time range.
func (q *Query) Check() error {
	if q.Limit < 0 || q.Limit > MaxLimit {
		return &FieldError{Field: "limit", Rule: fmt.Sprintf("must be between 0 and %d (0 means %d)", MaxLimit, MaxLimit)}
	}
	if q.Skip < 0 {
		return &FieldError{Field: "skip", Rule: "must not be negative"}
	}
	return checkRange(q.Start, q.End)
}

// Scope selects documents for the bulk operations: a user, a time range, or
// both. At least one must be set.
type Scope struct {
	UserID *string
	// Start and End bound timestamp: Start <= timestamp < End. Either may be
	// nil for an open end, but a range needs at least one.
	Start, End *time.Time
}

// Check reports a scope that selects nothing in particular (neither a user
// nor a time range) or an empty time range, as a *FieldError.
func (sc *Scope) Check() error {
	if sc.UserID == nil && sc.Start == nil && sc.End == nil {
		return &FieldError{Field: "user_id", Rule: "a bulk operation needs user_id or a time range"}
	}
	return checkRange(sc.Start, sc.End)
}

func checkRange(start, end *time.Time) error {
	if start != nil && end != nil && !start.Before(*end) {
		return &FieldError{Field: "end", Rule: "must be after start"}
	}
	return nil
}

// BulkResult is what a bulk soft delete or restore changed.
type BulkResult struct {
	// Count is how many documents the operation changed.
	Count int64
	// Docs are the current states of the documents it touched, for the
	// mirror; they may include later changes made by others.
	Docs []*MemCell
	// Removed are the ids a bulk hard delete removed and RemovedRevisions
	// the revisions they had (as Removal.Revision: -1 when unreadable),
	// and Intent the mark of the pending notes it made of them before
	// removing anything.
	Removed          []ID
	RemovedRevisions []int64
	Intent           ID
}

// Removal is what a hard delete of one document did.
type Removal struct {
	// Deleted reports whether there was a document to remove.
	Deleted bool
	// Revision is the revision the document had, read atomically with its
	// removal: 0 when it had none, -1 when the field was unreadable.
	Revision int64
	// Intent is the mark of the pending note the delete made before it
	// removed anything.
	Intent ID
}
