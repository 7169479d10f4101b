package memcell

import "errors"

// Sentinel errors of the domain.
var (
	// ErrInvalid is wrapped by every validation and decoding error; the
	// concrete error is a *FieldError naming the field and the rule.
	ErrInvalid = errors.New("memcell: invalid MemCell")
	// ErrNotFound reports a MemCell that does not exist or is soft-deleted.
	ErrNotFound = errors.New("memcell: not found")
)

// FieldError is bad input: the dotted path of the field and the rule it
// breaks. It wraps ErrInvalid.
type FieldError struct {
	Field string // e.g. "timestamp", "original_data.0.messages"
	Rule  string // e.g. "is required"
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return "memcell: " + e.Rule
	}
	return "memcell: field " + e.Field + ": " + e.Rule
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// More sentinel errors of the domain, each with its own meaning for callers
// (the API maps them to status codes).
var (
	// ErrConflict reports a write that collides with existing data, such as
	// a duplicate id.
	ErrConflict = errors.New("memcell: conflict")
	// ErrUnavailable reports that the primary store cannot be reached.
	ErrUnavailable = errors.New("memcell: primary unavailable")
	// ErrTransactionsUnsupported reports a transaction asked of a server that
	// has none (a standalone mongod, the embedded primary).
	ErrTransactionsUnsupported = errors.New("memcell: the primary does not support transactions (it needs a MongoDB replica set or sharded cluster)")
)

// UnreadableError reports a stored document that is not a valid MemCell:
// written by another program with fields of the wrong type, or with an id
// that is not an ObjectId. Scans report it and go on.
type UnreadableError struct {
	// ID is the document's _id as text: the hex of an ObjectId, the value
	// itself otherwise.
	ID  string
	Err error
}

func (e *UnreadableError) Error() string {
	return "memcell: document " + e.ID + " is not a readable MemCell: " + e.Err.Error()
}

// Unwrap returns the reason, which wraps ErrInvalid when the document
// breaks a rule of the model.
func (e *UnreadableError) Unwrap() error { return e.Err }
