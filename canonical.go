package memcell

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// TimeLayout is the one date format of the canonical encoding.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Encode returns the canonical encoding of m, with the id under "_id". It
// fails only when a free-form field holds a value JSON cannot represent (a
// NaN, an unsupported type) or a date outside years 0000-9999; Validate
// reports the same problems with the field's path.
func Encode(m *MemCell) ([]byte, error) {
	return AppendEncode(make([]byte, 0, 2048), m)
}

// AppendEncode appends the canonical encoding of m to dst.
func AppendEncode(dst []byte, m *MemCell) ([]byte, error) {
	e := encoder{buf: dst}
	e.path = e.small[:0]
	e.memcell(m, IDField)
	return e.buf, e.err
}

// EncodeAPI returns the API representation of m: the canonical encoding with
// the id under "event_id".
func EncodeAPI(m *MemCell) ([]byte, error) {
	return AppendEncodeAPI(make([]byte, 0, 2048), m)
}

// checkBuffers hold the encodings made only to learn whether a MemCell
// encodes (Validate, decoding): they are dropped at once.
var checkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// encodable returns the error Encode would return for m, without keeping
// the encoding.
func encodable(m *MemCell) error {
	buf := checkBuffers.Get().(*[]byte)
	b, err := AppendEncode((*buf)[:0], m)
	if cap(b) <= 64<<10 { // a huge document's buffer is left to the collector
		*buf = b[:0]
		checkBuffers.Put(buf)
	}
	return err
}

// AppendEncodeAPI appends the API representation of m to dst.
func AppendEncodeAPI(dst []byte, m *MemCell) ([]byte, error) {
	e := encoder{buf: dst}
	e.path = e.small[:0]
	e.memcell(m, APIIDField)
	return e.buf, e.err
}

// encoder appends JSON and keeps the first error with the path it met it at.
type encoder struct {
	buf  []byte
	err  error
	path []string
	// small holds path while it is short, off the heap.
	small [8]string
}

func (e *encoder) fail(rule string) {
	if e.err == nil {
		e.err = &FieldError{Field: joinPath(e.path), Rule: rule}
	}
}

func (e *encoder) key(first bool, k string) {
	if !first {
		e.buf = append(e.buf, ',')
	}
	e.buf = appendString(e.buf, k)
	e.buf = append(e.buf, ':')
}

func (e *encoder) memcell(m *MemCell, idKey string) {
	e.buf = append(e.buf, '{')
	e.key(true, idKey)
	if m.ID.IsZero() {
		e.buf = append(e.buf, "null"...)
	} else {
		e.buf = append(e.buf, '"')
		e.buf = hexAppend(e.buf, m.ID[:])
		e.buf = append(e.buf, '"')
	}
	e.field("user_id", func() { e.strPtr(m.UserID) })
	e.field("timestamp", func() {
		if m.Timestamp.IsZero() {
			e.buf = append(e.buf, "null"...)
		} else {
			e.time(m.Timestamp)
		}
	})
	e.field("summary", func() { e.strPtr(m.Summary) })
	e.field("group_id", func() { e.strPtr(m.GroupID) })
	e.field("original_data", func() { e.rawData(m.OriginalData) })
	e.field("participants", func() { e.strings(m.Participants) })
	e.field("type", func() {
		if m.Type == nil {
			e.buf = append(e.buf, "null"...)
		} else {
			e.buf = appendString(e.buf, string(*m.Type))
		}
	})
	e.field("subject", func() { e.strPtr(m.Subject) })
	e.field("keywords", func() { e.strings(m.Keywords) })
	e.field("linked_entities", func() { e.strings(m.LinkedEntities) })
	e.field("episode", func() { e.strPtr(m.Episode) })
	e.field("foresight_memories", func() {
		if m.ForesightMemories == nil {
			e.buf = append(e.buf, "null"...)
		} else {
			e.any(m.ForesightMemories)
		}
	})
	e.field("event_log", func() { e.object(m.EventLog) })
	e.field("extend", func() { e.object(m.Extend) })
	e.field("created_at", func() { e.timePtr(m.CreatedAt) })
	e.field("updated_at", func() { e.timePtr(m.UpdatedAt) })
	e.field("deleted_at", func() { e.timePtr(m.DeletedAt) })
	e.field("deleted_by", func() { e.strPtr(m.DeletedBy) })
	e.field("deleted_id", func() { e.buf = strconv.AppendInt(e.buf, m.DeletedID, 10) })
	e.field(RevisionField, func() { e.buf = strconv.AppendInt(e.buf, m.Revision, 10) })
	e.extras(m.Extra, false)
	e.buf = append(e.buf, '}')
}

// field writes one known member; fields after the id are never first.
func (e *encoder) field(name string, value func()) {
	e.key(false, name)
	e.path = append(e.path, name)
	value()
	e.path = e.path[:len(e.path)-1]
}

// sortedKeys appends the keys of m to dst in order. Given the slice of a
// small array of the caller's, it keeps the keys of a small map off the
// heap (slices.Sorted(maps.Keys(m)) allocates several times per map).
func sortedKeys[V any](dst []string, m map[string]V) []string {
	for k := range m {
		dst = append(dst, k)
	}
	slices.Sort(dst)
	return dst
}

// extras writes the members of m in key order, each preceded by a comma
// unless first is set and it is the first.
func (e *encoder) extras(m map[string]any, first bool) {
	if len(m) == 0 {
		return
	}
	var small [16]string
	for _, k := range sortedKeys(small[:0], m) {
		e.key(first, k)
		first = false
		e.path = append(e.path, k)
		e.any(m[k])
		e.path = e.path[:len(e.path)-1]
	}
}

func (e *encoder) rawData(rds []RawData) {
	if rds == nil {
		e.buf = append(e.buf, "null"...)
		return
	}
	e.buf = append(e.buf, '[')
	for i := range rds {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		rd := &rds[i]
		e.path = append(e.path, strconv.Itoa(i))
		e.buf = append(e.buf, '{')
		e.key(true, "data_type")
		e.buf = appendString(e.buf, string(rd.DataType))
		e.field("messages", func() {
			if rd.Messages == nil {
				e.buf = append(e.buf, "null"...)
				return
			}
			e.buf = append(e.buf, '[')
			for j := range rd.Messages {
				if j > 0 {
					e.buf = append(e.buf, ',')
				}
				e.path = append(e.path, strconv.Itoa(j))
				e.message(&rd.Messages[j])
				e.path = e.path[:len(e.path)-1]
			}
			e.buf = append(e.buf, ']')
		})
		e.field("meta", func() { e.stringMap(rd.Meta) })
		e.extras(rd.Extra, false)
		e.buf = append(e.buf, '}')
		e.path = e.path[:len(e.path)-1]
	}
	e.buf = append(e.buf, ']')
}

func (e *encoder) message(msg *Message) {
	e.buf = append(e.buf, '{')
	e.key(true, "content")
	e.buf = appendString(e.buf, msg.Content)
	e.field("files", func() { e.strings(msg.Files) })
	e.field("extend", func() { e.stringMap(msg.Extend) })
	e.extras(msg.Extra, false)
	e.buf = append(e.buf, '}')
}

func (e *encoder) strPtr(s *string) {
	if s == nil {
		e.buf = append(e.buf, "null"...)
		return
	}
	e.buf = appendString(e.buf, *s)
}

func (e *encoder) strings(ss []string) {
	if ss == nil {
		e.buf = append(e.buf, "null"...)
		return
	}
	e.buf = append(e.buf, '[')
	for i, s := range ss {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = appendString(e.buf, s)
	}
	e.buf = append(e.buf, ']')
}

func (e *encoder) stringMap(m map[string]string) {
	if m == nil {
		e.buf = append(e.buf, "null"...)
		return
	}
	e.buf = append(e.buf, '{')
	var small [16]string
	for i, k := range sortedKeys(small[:0], m) {
		e.key(i == 0, k)
		e.buf = appendString(e.buf, m[k])
	}
	e.buf = append(e.buf, '}')
}

func (e *encoder) object(m map[string]any) {
	if m == nil {
		e.buf = append(e.buf, "null"...)
		return
	}
	e.buf = append(e.buf, '{')
	e.extras(m, true)
	e.buf = append(e.buf, '}')
}

func (e *encoder) timePtr(t *time.Time) {
	if t == nil {
		e.buf = append(e.buf, "null"...)
		return
	}
	e.time(*t)
}

func (e *encoder) time(t time.Time) {
	t = NormalizeTime(t)
	if y := t.Year(); y < 0 || y > 9999 {
		e.fail("date must be between years 0000 and 9999")
		e.buf = append(e.buf, "null"...)
		return
	}
	e.buf = appendTime(e.buf, t)
}

// appendTime appends the quoted TimeLayout form of a normalised t; it is
// t.AppendFormat(TimeLayout) written out, because dates are on every
// document's hot path.
func appendTime(dst []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / 1e6
	dst = append(dst, '"')
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, ms, 3)
	return append(dst, 'Z', '"')
}

// appendDigits appends the n lowest decimal digits of v >= 0, zero-padded.
func appendDigits(dst []byte, v, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		d := v
		for range i {
			d /= 10
		}
		dst = append(dst, byte('0'+d%10))
	}
	return dst
}

// any writes a free-form value.
func (e *encoder) any(v any) {
	switch v := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case string:
		e.buf = appendString(e.buf, v)
	case bool:
		e.buf = strconv.AppendBool(e.buf, v)
	case json.Number:
		e.number(v)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(v), 10)
	case int32:
		e.buf = strconv.AppendInt(e.buf, int64(v), 10)
	case int64:
		e.buf = strconv.AppendInt(e.buf, v, 10)
	case uint32:
		e.buf = strconv.AppendUint(e.buf, uint64(v), 10)
	case uint64:
		e.buf = strconv.AppendUint(e.buf, v, 10)
	case float32:
		e.float(float64(v))
	case float64:
		e.float(v)
	case time.Time:
		e.time(v)
	case ID:
		e.buf = append(e.buf, '"')
		e.buf = hexAppend(e.buf, v[:])
		e.buf = append(e.buf, '"')
	case map[string]any:
		e.object(v)
	case []any:
		e.buf = append(e.buf, '[')
		for i, x := range v {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.path = append(e.path, strconv.Itoa(i))
			e.any(x)
			e.path = e.path[:len(e.path)-1]
		}
		e.buf = append(e.buf, ']')
	case []string:
		e.strings(v)
	case map[string]string:
		e.stringMap(v)
	default:
		e.fail("holds a value of unsupported type")
		e.buf = append(e.buf, "null"...)
	}
}

func (e *encoder) number(n json.Number) {
	s := string(n)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		e.buf = strconv.AppendInt(e.buf, i, 10)
		return
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		e.fail("number " + strconv.Quote(s) + " is out of range")
		e.buf = append(e.buf, "null"...)
		return
	}
	e.float(f)
}

// float writes f in the shortest form that reads back to f: plain decimals
// between 1e-6 and 1e21, exponent form outside, -0 as 0.
func (e *encoder) float(f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		e.fail("number must be finite")
		e.buf = append(e.buf, "null"...)
		return
	}
	if f == 0 {
		e.buf = append(e.buf, '0')
		return
	}
	if a := math.Abs(f); a < 1e-6 || a >= 1e21 {
		e.buf = strconv.AppendFloat(e.buf, f, 'e', -1, 64)
		// Two-digit exponents as JavaScript writes them: 1e-7, not 1e-07.
		if n := len(e.buf); n >= 4 && e.buf[n-4] == 'e' && e.buf[n-3] == '-' && e.buf[n-2] == '0' {
			e.buf[n-2] = e.buf[n-1]
			e.buf = e.buf[:n-1]
		}
		return
	}
	e.buf = strconv.AppendFloat(e.buf, f, 'f', -1, 64)
}

const hexDigits = "0123456789abcdef"

func hexAppend(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

// plainASCII marks the ASCII bytes a JSON string holds as they are.
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json reads it, so encoding is stable across a decode.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainASCII[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript parsers.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func joinPath(p []string) string {
	n := 0
	for _, s := range p {
		n += len(s) + 1
	}
	b := make([]byte, 0, n)
	for i, s := range p {
		if i > 0 {
			b = append(b, '.')
		}
		b = append(b, s...)
	}
	return string(b)
}
