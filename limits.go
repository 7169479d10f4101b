package memcell

// Bounds on what one MemCell may hold, checked by Validate before any write
// (the API refuses a document over them with 400, and the primary never
// sees it). They keep the work a document makes for the primary, the mirror
// and every later read bounded. Documents already stored (written by other
// programs, or before these bounds) still read: only writes are checked.
const (
	// MaxListItems bounds each named list: participants, keywords,
	// linked_entities, foresight_memories, original_data, the messages of
	// a segment and the files of a message.
	MaxListItems = 1000
	// MaxArrayItems bounds every other array, at any depth of the
	// free-form values (extend, event_log, the elements of
	// foresight_memories, extra fields at any level).
	MaxArrayItems = 10_000
	// MaxExtraFields bounds the unknown top-level fields of a document.
	MaxExtraFields = 100
)
