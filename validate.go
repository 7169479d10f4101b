package memcell

import (
	"strconv"
	"strings"
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
	for k := range m.Extra {
		if err := CheckFieldName(k); err != nil {
			return err
		}
	}
	for name, v := range map[string]any{"foresight_memories": m.ForesightMemories, "event_log": m.EventLog, "extend": m.Extend, "": m.Extra} {
		if path, ok := nulKey(v); !ok {
			return &FieldError{Field: strings.TrimPrefix(name+"."+path, "."), Rule: "field names must not hold NUL, which MongoDB cannot store"}
		}
	}
	// The encoder knows what JSON can hold; let it find the rest.
	if err := encodable(m); err != nil {
		return err
	}
	return nil
}

// nulKey finds an object key holding NUL anywhere inside v; ok is false and
// path names it when there is one.
func nulKey(v any) (path string, ok bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if strings.IndexByte(k, 0) >= 0 {
				return k, false
			}
			if p, ok := nulKey(x); !ok {
				return k + "." + p, false
			}
		}
	case []any:
		for i, x := range v {
			if p, ok := nulKey(x); !ok {
				return strconv.Itoa(i) + "." + p, false
			}
		}
	}
	return "", true
}
