package memcell

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
)

// Decode parses a canonical encoding (id under "_id"). It accepts any valid
// JSON object whose known fields have the right types: dates in any RFC 3339
// zone and precision are normalised, absent known fields read as unset, and
// unknown fields go to Extra. Errors are *FieldError values naming the field.
// Decode checks types only; Validate checks the rules.
func Decode(data []byte) (*MemCell, error) {
	return decode(data, IDField)
}

// DecodeAPI parses the API representation (id under "event_id").
func DecodeAPI(data []byte) (*MemCell, error) {
	return decode(data, APIIDField)
}

func decode(data []byte, idKey string) (*MemCell, error) {
	doc, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	return fromMap(doc, idKey)
}

// decodeObject parses data as exactly one JSON object, numbers as
// json.Number so that no digit is lost.
func decodeObject(data []byte) (map[string]any, error) {
	v, err := parseJSON(data)
	if err != nil {
		return nil, err
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, &FieldError{Rule: "a MemCell must be a JSON object"}
	}
	return doc, nil
}

// parseJSON parses data as exactly one JSON value, numbers as json.Number.
func parseJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &FieldError{Rule: "malformed JSON: " + jsonErrorText(err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &FieldError{Rule: "malformed JSON: data after the top-level value"}
	}
	return v, nil
}

func jsonErrorText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return err.Error()
}

// FromMap builds a MemCell from a generic document with the id under "_id",
// such as one read from MongoDB and converted to Go values: strings, bools,
// numbers, time.Time, ID, []any, map[string]any and nil. It applies the same
// type rules as Decode.
func FromMap(doc map[string]any) (*MemCell, error) {
	return fromMap(doc, IDField)
}

// FromAPIMap is FromMap for the API representation (id under "event_id"),
// for a caller that has parsed the body already (numbers as json.Number):
// DecodeAPI without a second parse. doc is not modified.
func FromAPIMap(doc map[string]any) (*MemCell, error) {
	return fromMap(doc, APIIDField)
}

func fromMap(doc map[string]any, idKey string) (*MemCell, error) {
	d := decoder{}
	m := &MemCell{}
	// Sorted, so that a document with several bad fields always names the
	// same one.
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		v := doc[k]
		d.path = append(d.path[:0], k)
		switch k {
		case idKey:
			m.ID = d.id(v)
		case "user_id":
			m.UserID = d.strPtr(v)
		case "timestamp":
			if t := d.timePtr(v); t != nil {
				m.Timestamp = *t
			}
		case "summary":
			m.Summary = d.strPtr(v)
		case "group_id":
			m.GroupID = d.strPtr(v)
		case "original_data":
			m.OriginalData = d.rawData(v)
		case "participants":
			m.Participants = d.strings(v)
		case "type":
			if s := d.strPtr(v); s != nil {
				t := DataType(*s)
				m.Type = &t
			}
		case "subject":
			m.Subject = d.strPtr(v)
		case "keywords":
			m.Keywords = d.strings(v)
		case "linked_entities":
			m.LinkedEntities = d.strings(v)
		case "episode":
			m.Episode = d.strPtr(v)
		case "foresight_memories":
			if v != nil {
				a, ok := v.([]any)
				if !ok {
					d.fail("must be an array or null")
				}
				m.ForesightMemories = a
			}
		case "event_log":
			m.EventLog = d.object(v)
		case "extend":
			m.Extend = d.object(v)
		case "created_at":
			m.CreatedAt = d.timePtr(v)
		case "updated_at":
			m.UpdatedAt = d.timePtr(v)
		case "deleted_at":
			m.DeletedAt = d.timePtr(v)
		case "deleted_by":
			m.DeletedBy = d.strPtr(v)
		case "deleted_id":
			m.DeletedID = d.int(v)
		case RevisionField:
			m.Revision = d.int(v)
			if m.Revision < 0 {
				d.fail("must not be negative")
			}
		case IDField, APIIDField:
			// The other representation's id name: refusing it keeps the two
			// representations from ever holding two ids.
			d.fail("is reserved; the id goes under " + strconv.Quote(idKey))
		default:
			m.Extra = setExtra(m.Extra, k, v)
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	// Free-form values are taken as they come; the encoder finds those JSON
	// cannot hold (numbers out of range, unsupported types), so that what
	// decodes always encodes.
	if err := encodable(m); err != nil {
		return nil, err
	}
	return m, nil
}

type decoder struct {
	path []string
	err  error
}

func (d *decoder) fail(rule string) {
	if d.err == nil {
		d.err = &FieldError{Field: joinPath(d.path), Rule: rule}
	}
}

func (d *decoder) id(v any) ID {
	switch v := v.(type) {
	case nil:
		return ID{}
	case ID:
		return v
	case string:
		id, err := ParseID(v)
		if err != nil {
			d.fail("must be a 24-character hex ObjectId")
		}
		return id
	}
	d.fail("must be a 24-character hex ObjectId")
	return ID{}
}

func (d *decoder) strPtr(v any) *string {
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return &v
	}
	d.fail("must be a string or null")
	return nil
}

func (d *decoder) strings(v any) []string {
	switch v := v.(type) {
	case nil:
		return nil
	case []string:
		return v
	case []any:
		out := make([]string, len(v))
		for i, x := range v {
			s, ok := x.(string)
			if !ok {
				d.path = append(d.path, strconv.Itoa(i))
				d.fail("must be a string")
				return nil
			}
			out[i] = s
		}
		return out
	}
	d.fail("must be an array of strings or null")
	return nil
}

func (d *decoder) stringMap(v any) map[string]string {
	switch v := v.(type) {
	case nil:
		return nil
	case map[string]string:
		return v
	case map[string]any:
		out := make(map[string]string, len(v))
		for k, x := range v {
			s, ok := x.(string)
			if !ok {
				d.path = append(d.path, k)
				d.fail("must be a string")
				return nil
			}
			out[k] = s
		}
		return out
	}
	d.fail("must be an object of strings or null")
	return nil
}

func (d *decoder) object(v any) map[string]any {
	switch v := v.(type) {
	case nil:
		return nil
	case map[string]any:
		return v
	}
	d.fail("must be an object or null")
	return nil
}

func (d *decoder) timePtr(v any) *time.Time {
	var t time.Time
	switch v := v.(type) {
	case nil:
		return nil
	case time.Time:
		t = v
	case string:
		var err error
		t, err = time.Parse(time.RFC3339Nano, v)
		if err != nil {
			d.fail("must be an RFC 3339 date such as 2026-01-12T10:30:00.123Z")
			return nil
		}
	default:
		d.fail("must be an RFC 3339 date string or null")
		return nil
	}
	t = NormalizeTime(t)
	if y := t.Year(); y < 0 || y > 9999 {
		d.fail("date must be between years 0000 and 9999")
		return nil
	}
	return &t
}

func (d *decoder) int(v any) int64 {
	switch v := v.(type) {
	case nil:
		return 0
	case int:
		return int64(v)
	case int32:
		return int64(v)
	case int64:
		return v
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<63 {
			return int64(v)
		}
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return i
		}
		if f, err := strconv.ParseFloat(string(v), 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			return int64(f)
		}
	}
	d.fail("must be a 64-bit integer")
	return 0
}

// objects walks an array of objects: for element i it sets the path to
// <path>.i.<key> and calls field for each member. It reports the array's
// length, or -1 when v is null; on a type error it records it and stops.
func (d *decoder) objects(v any, field func(i int, k string, fv any)) int {
	if v == nil {
		return -1
	}
	arr, ok := v.([]any)
	if !ok {
		d.fail("must be an array")
		return -1
	}
	base := len(d.path)
	for i, x := range arr {
		d.path = append(d.path[:base], strconv.Itoa(i))
		obj, ok := x.(map[string]any)
		if !ok {
			d.fail("must be an object")
			return -1
		}
		for k, fv := range obj {
			d.path = append(d.path[:base+1], k)
			field(i, k, fv)
			if d.err != nil {
				return -1
			}
		}
	}
	d.path = d.path[:base]
	return len(arr)
}

func (d *decoder) rawData(v any) []RawData {
	var out []RawData
	n := d.objects(v, func(i int, k string, fv any) {
		if out == nil {
			out = make([]RawData, len(v.([]any)))
		}
		rd := &out[i]
		switch k {
		case "data_type":
			if s := d.strPtr(fv); s != nil {
				rd.DataType = DataType(*s)
			}
		case "messages":
			rd.Messages = d.messages(fv)
		case "meta":
			rd.Meta = d.stringMap(fv)
		default:
			rd.Extra = setExtra(rd.Extra, k, fv)
		}
	})
	if n < 0 {
		return nil
	}
	if out == nil {
		out = make([]RawData, n) // elements without members
	}
	return out
}

func (d *decoder) messages(v any) []Message {
	var out []Message
	n := d.objects(v, func(i int, k string, fv any) {
		if out == nil {
			out = make([]Message, len(v.([]any)))
		}
		msg := &out[i]
		switch k {
		case "content":
			if s := d.strPtr(fv); s != nil {
				msg.Content = *s
			}
		case "files":
			msg.Files = d.strings(fv)
		case "extend":
			msg.Extend = d.stringMap(fv)
		default:
			msg.Extra = setExtra(msg.Extra, k, fv)
		}
	})
	if n < 0 {
		return nil
	}
	if out == nil {
		out = make([]Message, n)
	}
	return out
}

func setExtra(m map[string]any, k string, v any) map[string]any {
	if m == nil {
		m = make(map[string]any)
	}
	m[k] = v
	return m
}
