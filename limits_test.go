package memcell

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestValidateLimits checks the bounds Validate puts on a document's
// arrays, its extra fields and the names inside its free-form values: each
// refusal names the field and the limit, and a document at the limit
// passes.
func TestValidateLimits(t *testing.T) {
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	strs := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "s" + strconv.Itoa(i)
		}
		return out
	}
	anys := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = int64(i)
		}
		return out
	}
	msg := Message{Content: "x"}
	segment := func(msgs int) RawData {
		rd := RawData{DataType: Conversation, Messages: make([]Message, msgs)}
		for i := range rd.Messages {
			rd.Messages[i] = msg
		}
		return rd
	}
	segments := func(n int) []RawData {
		out := make([]RawData, n)
		for i := range out {
			out[i] = segment(1)
		}
		return out
	}
	extras := func(n int) map[string]any {
		out := make(map[string]any, n)
		for i := range n {
			out["x"+strconv.Itoa(i)] = i
		}
		return out
	}
	cases := []struct {
		name    string
		m       MemCell
		field   string // "" means valid
		mention string // the rule must say it
	}{
		{"keywords at the limit", MemCell{Timestamp: ts, Keywords: strs(MaxListItems)}, "", ""},
		{"keywords over", MemCell{Timestamp: ts, Keywords: strs(MaxListItems + 1)}, "keywords", "at most 1000 values, got 1001"},
		{"participants over", MemCell{Timestamp: ts, Participants: strs(150_000)}, "participants", "at most 1000 values, got 150000"},
		{"linked entities over", MemCell{Timestamp: ts, LinkedEntities: strs(MaxListItems + 1)}, "linked_entities", "1000"},
		{"raw data at the limit", MemCell{Timestamp: ts, OriginalData: segments(MaxListItems)}, "", ""},
		{"raw data over", MemCell{Timestamp: ts, OriginalData: segments(MaxListItems + 1)}, "original_data", "at most 1000"},
		{"messages over", MemCell{Timestamp: ts, OriginalData: []RawData{segment(MaxListItems + 1)}}, "original_data.0.messages", "at most 1000"},
		{"files over", MemCell{Timestamp: ts, OriginalData: []RawData{{DataType: Conversation, Messages: []Message{{Files: strs(MaxListItems + 1)}}}}}, "original_data.0.messages.0.files", "at most 1000"},
		{"foresight over", MemCell{Timestamp: ts, ForesightMemories: anys(MaxListItems + 1)}, "foresight_memories", "at most 1000"},
		{"array in extend at the limit", MemCell{Timestamp: ts, Extend: map[string]any{"e": anys(MaxArrayItems)}}, "", ""},
		{"array in extend over", MemCell{Timestamp: ts, Extend: map[string]any{"e": anys(MaxArrayItems + 1)}}, "extend.e", "at most 10000 elements, got 10001"},
		{"array in an extra field over", MemCell{Timestamp: ts, Extra: map[string]any{"x": map[string]any{"y": []any{anys(150_000)}}}}, "x.y.0", "at most 10000 elements, got 150000"},
		{"array in a segment's extra over", MemCell{Timestamp: ts, OriginalData: []RawData{{DataType: Conversation, Messages: []Message{msg}, Extra: map[string]any{"a": anys(MaxArrayItems + 1)}}}}, "original_data.0.a", "10000"},
		{"array in a message's extra over", MemCell{Timestamp: ts, OriginalData: []RawData{{DataType: Conversation, Messages: []Message{{Extra: map[string]any{"a": anys(MaxArrayItems + 1)}}}}}}, "original_data.0.messages.0.a", "10000"},
		{"array in foresight over", MemCell{Timestamp: ts, ForesightMemories: []any{map[string]any{"a": anys(MaxArrayItems + 1)}}}, "foresight_memories.0.a", "10000"},
		{"extra fields at the limit", MemCell{Timestamp: ts, Extra: extras(MaxExtraFields)}, "", ""},
		{"extra fields over", MemCell{Timestamp: ts, Extra: extras(1000)}, "", "at most 100 extra fields, got 1000"},

		{"$ key in extend", MemCell{Timestamp: ts, Extend: map[string]any{"$gt": 1}}, "extend.$gt", "$"},
		{"dotted key in event_log", MemCell{Timestamp: ts, EventLog: map[string]any{"a.b": 1}}, "event_log.a.b", "."},
		{"$ key deep in an extra field", MemCell{Timestamp: ts, Extra: map[string]any{"x": map[string]any{"y": []any{map[string]any{"$where": 1}}}}}, "x.y.0.$where", "$"},
		{"dotted key in foresight", MemCell{Timestamp: ts, ForesightMemories: []any{map[string]any{"a.b": 1}}}, "foresight_memories.0.a.b", "."},
		{"$ key in meta", MemCell{Timestamp: ts, OriginalData: []RawData{{DataType: Conversation, Messages: []Message{msg}, Meta: map[string]string{"$m": "x"}}}}, "original_data.0.meta.$m", "$"},
		{"dotted key in a message's extend", MemCell{Timestamp: ts, OriginalData: []RawData{{DataType: Conversation, Messages: []Message{{Extend: map[string]string{"a.b": "x"}}}}}}, "original_data.0.messages.0.extend.a.b", "."},
		{"$ key in a segment's extra", MemCell{Timestamp: ts, OriginalData: []RawData{{DataType: Conversation, Messages: []Message{msg}, Extra: map[string]any{"s": map[string]any{"$x": 1}}}}}, "original_data.0.s.$x", "$"},
		{"dollar inside a name is fine", MemCell{Timestamp: ts, Extend: map[string]any{"price$": 1, "": 2}}, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m.Validate()
			if tc.field == "" && tc.mention == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Validate = %v, want an error naming %q", err, tc.field)
			}
			if !strings.Contains(fe.Rule, tc.mention) {
				t.Errorf("rule %q does not say %q", fe.Rule, tc.mention)
			}
		})
	}
}
