package memcell

import (
	"strconv"
)

// Validate checks the rules a MemCell must meet before it is written:
// timestamp set, every original_data entry with a known data_type and at
// least one message, a known type, non-negative revision, and free-form
// values that JSON can represent with dates in years 0000-9999. The error
// is a *FieldError naming the first field that breaks a rule.
func (m *MemCell) Validate() error {
	if m.Timestamp.IsZero() {
		return &FieldError{Field: "timestamp", Rule: "is required"}
	}
	if m.Type != nil && !m.Type.Known() {
		return &FieldError{Field: "type", Rule: "must be one of Conversation, AgentConversation"}
	}
	for i, rd := range m.OriginalData {
		p := "original_data." + strconv.Itoa(i)
		if !rd.DataType.Known() {
			return &FieldError{Field: p + ".data_type", Rule: "must be one of Conversation, AgentConversation"}
		}
		if len(rd.Messages) == 0 {
			return &FieldError{Field: p + ".messages", Rule: "must hold at least one message"}
		}
	}
	if m.Revision < 0 {
		return &FieldError{Field: RevisionField, Rule: "must not be negative"}
	}
	// The encoder knows what JSON can hold; let it find the rest.
	if _, err := Encode(m); err != nil {
		return err
	}
	return nil
}
