package memcell

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Validate checks the rules a MemCell must meet before it is written:
// timestamp set, every original_data entry with a known data_type and at
// least one message, a known type, non-negative revision, the bounds of
// limits.go (list and array lengths, extra fields), field names MongoDB can
// store at every depth, and free-form values that JSON can represent with
// dates in years 0000-9999. The error is a *FieldError naming the first
// field that breaks a rule.
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
	if err := m.checkShape(); err != nil {
		return err
	}
	// The encoder knows what JSON can hold; let it find the rest.
	if err := encodable(m); err != nil {
		return err
	}
	return nil
}

// checkShape applies the bounds of limits.go and the rule on field names
// to the whole document, in a fixed order (sorted keys), so that a
// document with several faults always names the same one.
func (m *MemCell) checkShape() error {
	for _, l := range []struct {
		field string
		n     int
	}{
		{"participants", len(m.Participants)},
		{"keywords", len(m.Keywords)},
		{"linked_entities", len(m.LinkedEntities)},
		{"foresight_memories", len(m.ForesightMemories)},
		{"original_data", len(m.OriginalData)},
	} {
		if l.n > MaxListItems {
			return tooManyValues(l.field, l.n)
		}
	}
	if len(m.Extra) > MaxExtraFields {
		return &FieldError{Rule: fmt.Sprintf("at most %d extra fields, got %d (extra fields are the top-level names memcell does not know)", MaxExtraFields, len(m.Extra))}
	}
	var w shapeWalker
	for _, k := range slices.Sorted(maps.Keys(m.Extra)) {
		if err := CheckFieldName(k); err != nil {
			return err
		}
		w.path = append(w.path[:0], k)
		if err := w.value(m.Extra[k]); err != nil {
			return err
		}
	}
	for i, x := range m.ForesightMemories {
		w.path = append(w.path[:0], "foresight_memories", strconv.Itoa(i))
		if err := w.value(x); err != nil {
			return err
		}
	}
	for _, o := range []struct {
		field string
		v     map[string]any
	}{{"event_log", m.EventLog}, {"extend", m.Extend}} {
		w.path = append(w.path[:0], o.field)
		if err := w.object(o.v); err != nil {
			return err
		}
	}
	for i, rd := range m.OriginalData {
		seg := []string{"original_data", strconv.Itoa(i)}
		if len(rd.Messages) > MaxListItems {
			return tooManyValues(joinPath(append(seg, "messages")), len(rd.Messages))
		}
		w.path = append(w.path[:0], seg...)
		if err := w.object(rd.Extra); err != nil {
			return err
		}
		w.path = append(w.path[:0], append(seg, "meta")...)
		if err := w.names(slices.Collect(maps.Keys(rd.Meta))); err != nil {
			return err
		}
		for j, msg := range rd.Messages {
			mp := append(slices.Clip(seg), "messages", strconv.Itoa(j))
			if len(msg.Files) > MaxListItems {
				return tooManyValues(joinPath(append(mp, "files")), len(msg.Files))
			}
			w.path = append(w.path[:0], mp...)
			if err := w.object(msg.Extra); err != nil {
				return err
			}
			w.path = append(w.path[:0], append(mp, "extend")...)
			if err := w.names(slices.Collect(maps.Keys(msg.Extend))); err != nil {
				return err
			}
		}
	}
	return nil
}

// ArrayBoundError returns the error Validate gives a MemCell whose array
// at path (field names and indexes of its API form, e.g. original_data, 0,
// messages) has n elements, or nil when n is within the array's bound:
// MaxListItems for the named lists, MaxArrayItems for any other array. It
// lets a reader of a body refuse an array over its bound before building
// the document.
func ArrayBoundError(path []string, n int) error {
	if isNamedList(path) {
		if n > MaxListItems {
			return tooManyValues(joinPath(path), n)
		}
		return nil
	}
	if n > MaxArrayItems {
		return &FieldError{Field: joinPath(path), Rule: fmt.Sprintf("at most %d elements, got %d", MaxArrayItems, n)}
	}
	return nil
}

// isNamedList reports whether path names one of the lists MaxListItems
// bounds: a top-level list, a segment's messages, a message's files.
func isNamedList(path []string) bool {
	switch len(path) {
	case 1:
		switch path[0] {
		case "participants", "keywords", "linked_entities", "foresight_memories", "original_data":
			return true
		}
	case 3:
		return path[0] == "original_data" && path[2] == "messages"
	case 5:
		return path[0] == "original_data" && path[2] == "messages" && path[4] == "files"
	}
	return false
}

func tooManyValues(field string, n int) error {
	return &FieldError{Field: field, Rule: fmt.Sprintf("at most %d values, got %d", MaxListItems, n)}
}

// nestedNameRule is the rule for a field name below the top level that
// MongoDB could not store, or could store but not query or update (a
// leading '$' reads as an operator, a '.' as a path, NUL ends a BSON
// name); "" when the name is fine. Unlike top-level names (CheckFieldName)
// an empty name is allowed.
func nestedNameRule(name string) string {
	switch {
	case strings.HasPrefix(name, "$"):
		return "field names must not start with $"
	case strings.Contains(name, "."):
		return "field names must not contain ."
	case strings.IndexByte(name, 0) >= 0:
		return "field names must not hold NUL, which MongoDB cannot store"
	}
	return ""
}

// shapeWalker walks free-form values, path being where it stands.
type shapeWalker struct {
	path []string
}

func (w *shapeWalker) fail(rule string) error {
	return &FieldError{Field: joinPath(w.path), Rule: rule}
}

// value checks every array within MaxArrayItems and every object key
// against nestedNameRule, at any depth of v.
func (w *shapeWalker) value(v any) error {
	switch v := v.(type) {
	case map[string]any:
		return w.object(v)
	case map[string]string:
		return w.names(slices.Collect(maps.Keys(v)))
	case []any:
		if err := ArrayBoundError(w.path, len(v)); err != nil {
			return err
		}
		base := len(w.path)
		for i, x := range v {
			switch x.(type) {
			case map[string]any, map[string]string, []any, []string:
			default:
				continue // a scalar: nothing to check
			}
			w.path = append(w.path[:base], strconv.Itoa(i))
			if err := w.value(x); err != nil {
				return err
			}
		}
		w.path = w.path[:base]
	case []string:
		return ArrayBoundError(w.path, len(v))
	}
	return nil
}

func (w *shapeWalker) object(o map[string]any) error {
	base := len(w.path)
	for _, k := range slices.Sorted(maps.Keys(o)) {
		w.path = append(w.path[:base], k)
		if rule := nestedNameRule(k); rule != "" {
			return w.fail(rule)
		}
		if err := w.value(o[k]); err != nil {
			return err
		}
	}
	w.path = w.path[:base]
	return nil
}

// names checks the keys of a string map.
func (w *shapeWalker) names(keys []string) error {
	slices.Sort(keys)
	base := len(w.path)
	for _, k := range keys {
		if rule := nestedNameRule(k); rule != "" {
			w.path = append(w.path[:base], k)
			return w.fail(rule)
		}
	}
	return nil
}
