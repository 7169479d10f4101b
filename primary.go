package memcell

import "context"

// Primary is the contract of the authoritative store, as the dual-write
// repository (package mirror) uses it; package mongostore implements it on
// MongoDB. Implementations are safe for concurrent use.
//
// Every write bumps the document's revision (RevisionField) in the same
// atomic operation and returns the document as it stands after the write,
// so that callers can mirror exactly that state, ordered by revision. In
// that same operation it leaves a mirror intent on the document
// (MemCell.Intent, stored under IntentField): the durable note that the
// state still has to reach the KV, which ClearIntents removes once it has.
// A hard delete notes its intent in the pending record before it removes
// anything, since the document cannot carry it.
// Soft-deleted documents are hidden from every read but those that say
// otherwise. Errors wrap the sentinels of this package: ErrNotFound,
// ErrConflict, ErrUnavailable, ErrInvalid (through *FieldError) and
// ErrTransactionsUnsupported; a cancelled ctx gives ctx.Err().
type Primary interface {
	// Append validates m and stores it as a new document: a new id unless
	// m has one, created_at = updated_at = now, revision 1. m is not
	// modified.
	Append(ctx context.Context, m *MemCell) (*MemCell, error)
	// Get returns the live document with the id.
	Get(ctx context.Context, id ID) (*MemCell, error)
	// GetMany returns the live documents among ids, keyed by id. With
	// fields set only those top-level fields are read: the documents are
	// partial and must not be mirrored or compared.
	GetMany(ctx context.Context, ids []ID, fields []string) (map[ID]*MemCell, error)
	// Update sets top-level fields of a live document (canonical JSON
	// values; null unsets), refreshes updated_at and bumps the revision.
	Update(ctx context.Context, id ID, fields map[string]any) (*MemCell, error)
	// SoftDelete marks a live document deleted; Restore clears the marks.
	SoftDelete(ctx context.Context, id ID, by string) (*MemCell, error)
	Restore(ctx context.Context, id ID) (*MemCell, error)
	// HardDelete notes the delete in the pending record (its mirror
	// intent), then removes the document, live or not, and reports whether
	// there was one and, read atomically with the removal, the revision it
	// had. When there was none it takes the note back (Removal.Intent is
	// zero). It remembers that revision so that an Append re-creating the id
	// starts above it. When Deleted is true the document is gone even if
	// err is not nil: err then says that remembering the revision failed.
	HardDelete(ctx context.Context, id ID) (Removal, error)
	// SoftDeleteMany and RestoreMany change every document in scope and
	// return the count and their new states. When they fail part-way, the
	// result returned with the error holds what was done before it: the
	// count of documents changed and the states of those it could read
	// back, so that the caller can mirror them.
	SoftDeleteMany(ctx context.Context, sc Scope, by string) (BulkResult, error)
	RestoreMany(ctx context.Context, sc Scope) (BulkResult, error)
	// HardDeleteMany removes every document in scope and returns how many
	// it removed, exactly their ids and the revisions they had when removed
	// (BulkResult.Removed, RemovedRevisions), each noted in the pending
	// record before it was removed (BulkResult.Intent); it remembers the
	// revisions as HardDelete does. When it fails part-way, the result
	// returned with the error holds those removed before it.
	HardDeleteMany(ctx context.Context, sc Scope) (BulkResult, error)
	// Find returns the live documents the query selects, sorted by
	// timestamp then id; Count counts them (sort, limit and skip ignored).
	Find(ctx context.Context, q Query) ([]*MemCell, error)
	Count(ctx context.Context, q Query) (int64, error)
	// Latest returns the user's newest live documents (10 when limit is 0).
	Latest(ctx context.Context, userID string, limit int64) ([]*MemCell, error)
	// RecordPending durably notes that the mirror copies of ids need
	// repair, with the reason, and returns the mark of the notes; Pending
	// lists the ids noted and not cleared.
	RecordPending(ctx context.Context, ids []ID, reason string) (mark ID, err error)
	Pending(ctx context.Context) ([]ID, error)
	// ClearIntents removes mirror intents whose KV writes are done: the
	// mark of each from its document, if the document still carries it
	// (a later write's mark stays), and the pending notes made with the
	// marks of those with Pending set.
	ClearIntents(ctx context.Context, intents []Intent) error
	// RunTransaction runs fn in a transaction, retrying it as the server
	// asks (fn may run more than once); operations called with the ctx fn
	// receives take part in it. It fails with ErrTransactionsUnsupported,
	// without calling fn, on servers without transactions.
	RunTransaction(ctx context.Context, fn func(ctx context.Context) error) error
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
}

// An Intent names one mirror intent: the document and the mark of the
// write. Pending is set for the notes RecordPending made (a hard delete's),
// unset for marks the document carries.
type Intent struct {
	ID      ID
	Mark    ID
	Pending bool
}
