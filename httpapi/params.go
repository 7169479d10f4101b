package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/mirror"
)

// Response headers that report the KV side of a request.
const (
	headerValidation = "Memcell-Validation"
	headerMirror     = "Memcell-Mirror"
	// headerSource is sourceKV on a read answered from the KV copies
	// while the primary was unavailable; absent otherwise.
	headerSource = "Memcell-Source"
	sourceKV     = "kv"
)

// setValidation reports a read's validation outcome; reads that did not
// validate say nothing.
func setValidation(w http.ResponseWriter, o mirror.Outcome) {
	if o != "" && o != mirror.Skipped {
		w.Header().Set(headerValidation, string(o))
	}
}

// setSource marks an answer that came from the KV copies because the
// primary was unavailable (mirror.Options.ReadFallback).
func setSource(w http.ResponseWriter, fromKV bool) {
	if fromKV {
		w.Header().Set(headerSource, sourceKV)
	}
}

// setMirror reports what became of a write's KV copy.
func setMirror(w http.ResponseWriter, m mirror.Mirror) {
	if m.Status != "" {
		w.Header().Set(headerMirror, string(m.Status))
	}
}

// writeJSON writes a JSON body with status.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeValue writes v as JSON with status.
func writeValue(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only values of this package are written: a bug, not input.
		panic(fmt.Sprintf("httpapi: encoding %T: %v", v, err))
	}
	writeJSON(w, status, buf.Bytes())
}

// encodeMemCell is the API representation of m. A stored document the
// encoding cannot hold is the server's problem, not the client's: its
// field error is hidden from classify, so that it answers 500.
func encodeMemCell(m *memcell.MemCell) ([]byte, error) {
	return appendMemCell(nil, m)
}

// appendMemCell appends the API representation of m to dst, with
// encodeMemCell's error.
func appendMemCell(dst []byte, m *memcell.MemCell) ([]byte, error) {
	b, err := memcell.AppendEncodeAPI(dst, m)
	if err != nil {
		return nil, fmt.Errorf("httpapi: encoding the stored MemCell %s: %v", m.ID, err)
	}
	return b, nil
}

// answerBuffers hold the encodings of the single MemCells answered: the
// bytes are written before the handler returns (net/http has copied or
// sent them when Write returns), so the buffer can serve the next answer.
var answerBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooledAnswer bounds the buffers kept for reuse: an unusually large
// document's buffer is left to the garbage collector.
const maxPooledAnswer = 64 << 10

// pooledMemCell encodes m as encodeMemCell does, into a buffer of
// answerBuffers; the caller writes *buf and then calls releaseAnswer.
func pooledMemCell(m *memcell.MemCell) (*[]byte, error) {
	buf := answerBuffers.Get().(*[]byte)
	b, err := appendMemCell((*buf)[:0], m)
	if err != nil {
		answerBuffers.Put(buf)
		return nil, err
	}
	*buf = b
	return buf, nil
}

// releaseAnswer gives a buffer of pooledMemCell back once it is written.
func releaseAnswer(buf *[]byte) {
	if cap(*buf) <= maxPooledAnswer {
		*buf = (*buf)[:0]
		answerBuffers.Put(buf)
	}
}

// eventID parses the {event_id} of the path.
func eventID(r *http.Request) (memcell.ID, error) {
	id, err := memcell.ParseID(r.PathValue(memcell.APIIDField))
	if err != nil {
		return memcell.ID{}, fieldError(memcell.APIIDField, "must be a 24-character hex ObjectId")
	}
	return id, nil
}

// parseQuery parses the query string and refuses parameters the route
// does not take: a misspelt filter on a bulk delete must not widen it.
func parseQuery(r *http.Request, allowed ...string) (url.Values, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query string: %v", err)
	}
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return nil, fieldError(k, "is not a parameter of this route (it takes none)")
			}
			return nil, fieldError(k, "is not a parameter of this route (it takes "+strings.Join(allowed, ", ")+")")
		}
	}
	return v, nil
}

// single returns the one value of a parameter ("" and false when absent).
func single(v url.Values, name string) (string, bool, error) {
	vals, ok := v[name]
	if !ok {
		return "", false, nil
	}
	if len(vals) > 1 {
		return "", false, fieldError(name, "must be given once")
	}
	return vals[0], true, nil
}

// stringParam returns a parameter's value, nil when absent.
func stringParam(v url.Values, name string) (*string, error) {
	s, ok, err := single(v, name)
	if err != nil || !ok {
		return nil, err
	}
	if s == "" {
		return nil, fieldError(name, "must not be empty")
	}
	return &s, nil
}

// boolParam returns a true/false parameter, nil when absent.
func boolParam(v url.Values, name string) (*bool, error) {
	s, ok, err := single(v, name)
	if err != nil || !ok {
		return nil, err
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return nil, fieldError(name, "must be true or false")
	}
	return &b, nil
}

// intParam returns an integer parameter in [lo, hi], def when absent.
func intParam(v url.Values, name string, def, lo, hi int64) (int64, error) {
	s, ok, err := single(v, name)
	if err != nil || !ok {
		return def, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		if hi == maxInt64 {
			return 0, fieldError(name, fmt.Sprintf("must be an integer of at least %d", lo))
		}
		return 0, fieldError(name, fmt.Sprintf("must be an integer between %d and %d", lo, hi))
	}
	return n, nil
}

const maxInt64 = 1<<63 - 1

// timeParam returns an RFC 3339 time parameter normalised to UTC
// milliseconds, nil when absent. A space where the zone's '+' should be is
// read as '+': an unescaped '+' in a query string arrives as a space.
func timeParam(v url.Values, name string) (*time.Time, error) {
	s, ok, err := single(v, name)
	if err != nil || !ok {
		return nil, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && strings.Contains(s, " ") {
		t, err = time.Parse(time.RFC3339Nano, strings.ReplaceAll(s, " ", "+"))
	}
	if err != nil {
		return nil, fieldError(name, "must be an RFC 3339 date such as 2026-01-12T10:30:00.123Z")
	}
	t = memcell.NormalizeTime(t)
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, fieldError(name, "must be between years 0000 and 9999")
	}
	return &t, nil
}

// timeRange reads start and end; when both are given start must be before
// end.
func timeRange(v url.Values) (start, end *time.Time, err error) {
	if start, err = timeParam(v, "start"); err != nil {
		return nil, nil, err
	}
	if end, err = timeParam(v, "end"); err != nil {
		return nil, nil, err
	}
	if start != nil && end != nil && !start.Before(*end) {
		return nil, nil, fieldError("end", "must be after start")
	}
	return start, end, nil
}

// Bounds on a list parameter (participants, keywords): values given as
// repeated keys and comma-separated values count together.
const (
	// MaxListParamValues bounds the values of one list parameter.
	MaxListParamValues = 100
	// MaxListParamBytes bounds each value of a list parameter.
	MaxListParamBytes = 256
)

// listParam returns the values of a list parameter given as repeated keys,
// comma-separated values or both; empty items are dropped. More than
// MaxListParamValues values, or a value over MaxListParamBytes, is an
// error: the primary matches every document against every value.
func listParam(v url.Values, name string) ([]string, error) {
	var out []string
	n := 0
	for _, s := range v[name] {
		for item := range strings.SplitSeq(s, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			n++
			if len(item) > MaxListParamBytes {
				return nil, fieldError(name, fmt.Sprintf("at most %d bytes per value, got %d", MaxListParamBytes, len(item)))
			}
			if n <= MaxListParamValues {
				out = append(out, item)
			}
		}
	}
	if n > MaxListParamValues {
		return nil, fieldError(name, fmt.Sprintf("at most %d values, got %d", MaxListParamValues, n))
	}
	return out, nil
}

// readBody reads a JSON request body: it must say it is JSON (415), fit
// the size limit (413) and be one well-formed JSON value with no key twice
// in an object and, with arrays set, no array over its bound (400).
func (s *server) readBody(w http.ResponseWriter, r *http.Request, arrays arrayBound) ([]byte, error) {
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return nil, err
	}
	if r.ContentLength > s.maxBody {
		return nil, &http.MaxBytesError{Limit: s.maxBody}
	}
	// Read into one buffer of the announced size (io.ReadAll would start
	// at 512 bytes and grow it several times).
	var b bytes.Buffer
	if r.ContentLength > 0 {
		b.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := b.ReadFrom(http.MaxBytesReader(w, r.Body, s.maxBody))
	body := b.Bytes()
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		return nil, &apiError{http.StatusBadRequest, codeMalformedJSON, "the request body could not be read"}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &apiError{http.StatusBadRequest, codeMalformedJSON, "the request body is empty; send a JSON object"}
	}
	if err := memcell.ValidJSON(body); err != nil {
		msg := err.Error()
		var fe *memcell.FieldError
		if errors.As(err, &fe) {
			msg = fe.Rule
		}
		return nil, &apiError{http.StatusBadRequest, codeMalformedJSON, msg}
	}
	if err := checkDuplicateKeys(body, arrays); err != nil {
		return nil, err
	}
	return body, nil
}

// checkContentType accepts application/json with at most a UTF-8 charset.
func checkContentType(ct string) error {
	unsupported := &apiError{http.StatusUnsupportedMediaType, codeMediaType,
		"the request body must be JSON: Content-Type: application/json"}
	if ct == "" {
		return unsupported
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return unsupported
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return unsupported
		}
	}
	return nil
}

// decodeStrict decodes a well-formed JSON object body into v, refusing
// unknown fields and naming the field of a type error.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		if ute.Field == "" {
			return fieldError("", "the body must be a JSON object")
		}
		return fieldError(ute.Field, "must be "+jsonKind(ute.Type.Kind().String()))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if n, uerr := strconv.Unquote(name); uerr == nil {
			name = n
		}
		return fieldError(name, "is not a field of this request")
	}
	return fieldError("", "invalid body: "+strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names the JSON type that a Go kind decodes from.
func jsonKind(kind string) string {
	switch kind {
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "float64", "float32", "int", "int64", "int32", "uint", "uint64", "uint32":
		return "a number"
	case "struct", "map":
		return "an object"
	}
	return "of another type"
}
