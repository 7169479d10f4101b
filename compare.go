package memcell

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// DiffKind says how one field differs between two copies of a document.
type DiffKind string

// The kinds of Difference.
const (
	Changed       DiffKind = "changed"         // present in both, different values
	MissingInCopy DiffKind = "missing_in_copy" // present in the primary only
	ExtraInCopy   DiffKind = "extra_in_copy"   // present in the copy only
)

// Difference is one field that differs between the primary's copy of a
// document and another copy.
type Difference struct {
	// Path is the dotted path of the field; array elements are numbered
	// from 0 (original_data.0.messages.1.content). Arrays of different
	// lengths are reported whole.
	Path string   `json:"path"`
	Kind DiffKind `json:"kind"`
	// Primary and Copy are the two values as JSON; nil where absent.
	Primary json.RawMessage `json:"primary,omitempty"`
	Copy    json.RawMessage `json:"copy,omitempty"`
}

// Compare reports whether two JSON documents hold the same data: equal
// bytes, or equal values once parsed (object key order and number spelling
// do not matter). When they differ it returns every differing field, in path
// order. It fails when either side is not well-formed JSON.
func Compare(primary, copy []byte) (bool, []Difference, error) {
	if bytes.Equal(primary, copy) {
		return true, nil, nil
	}
	a, err := parseJSON(primary)
	if err != nil {
		return false, nil, fmt.Errorf("primary document: %w", err)
	}
	b, err := parseJSON(copy)
	if err != nil {
		return false, nil, fmt.Errorf("copy: %w", err)
	}
	var diffs []Difference
	diffValues(&diffs, nil, a, b)
	return len(diffs) == 0, diffs, nil
}

func diffValues(out *[]Difference, path []string, a, b any) {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			keys := slices.Sorted(maps.Keys(av))
			for k := range bv {
				if _, ok := av[k]; !ok {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				x, inA := av[k]
				y, inB := bv[k]
				p := append(path, k)
				switch {
				case !inB:
					*out = append(*out, Difference{Path: joinPath(p), Kind: MissingInCopy, Primary: rawJSON(x)})
				case !inA:
					*out = append(*out, Difference{Path: joinPath(p), Kind: ExtraInCopy, Copy: rawJSON(y)})
				default:
					diffValues(out, p, x, y)
				}
			}
			return
		}
	case []any:
		if bv, ok := b.([]any); ok && len(bv) == len(av) {
			for i := range av {
				diffValues(out, append(path, strconv.Itoa(i)), av[i], bv[i])
			}
			return
		}
	default:
		if sameScalar(a, b) {
			return
		}
	}
	*out = append(*out, Difference{Path: joinPath(path), Kind: Changed, Primary: rawJSON(a), Copy: rawJSON(b)})
}

// sameScalar compares two JSON scalars; numbers compare by value as the
// canonical encoding writes them.
func sameScalar(a, b any) bool {
	an, aok := a.(json.Number)
	bn, bok := b.(json.Number)
	if aok && bok {
		return an == bn || bytes.Equal(rawJSON(an), rawJSON(bn))
	}
	if aok != bok {
		return false
	}
	switch a.(type) {
	case map[string]any, []any:
		return false
	}
	switch b.(type) {
	case map[string]any, []any:
		return false
	}
	return a == b
}

// rawJSON encodes a parsed value canonically (sorted keys, canonical
// numbers).
func rawJSON(v any) json.RawMessage {
	e := encoder{}
	e.any(v)
	return e.buf
}

// ValidJSON reports whether data is one well-formed JSON value; the error
// says what is wrong and at which byte.
func ValidJSON(data []byte) error {
	if json.Valid(data) {
		return nil
	}
	_, err := parseJSON(data)
	if err == nil { // json.Valid and the decoder disagree: cannot happen
		return &FieldError{Rule: "malformed JSON"}
	}
	return err
}

// InconsistencyMarker starts the message of every inconsistency log line, so
// that log searches and alerts can find them.
const InconsistencyMarker = "[DATA_INCONSISTENCY]"

// maxLoggedValue bounds each value shown in an inconsistency log line, so a
// differing embedding does not flood the log.
const maxLoggedValue = 256

// LogInconsistency writes the one ERROR line that reports two differing
// copies of the document eventID: the message
// "[DATA_INCONSISTENCY] event_id=<id>" and the field-level differences as
// attributes. A nil logger logs nothing.
func LogInconsistency(ctx context.Context, logger *slog.Logger, eventID string, diffs []Difference) {
	if logger == nil {
		return
	}
	logger.ErrorContext(ctx, InconsistencyMarker+" event_id="+eventID,
		slog.String("event_id", eventID),
		slog.Int("differences", len(diffs)),
		slog.String("diff", DescribeDiffs(diffs)))
}

// DescribeDiffs renders differences on one line, e.g.
// `summary: primary "a" != copy "b"; extend.tag: missing in copy (primary "x")`.
func DescribeDiffs(diffs []Difference) string {
	var b strings.Builder
	for i, d := range diffs {
		if i > 0 {
			b.WriteString("; ")
		}
		path := d.Path
		if path == "" {
			path = "(document)"
		}
		b.WriteString(path)
		switch d.Kind {
		case MissingInCopy:
			b.WriteString(": missing in copy (primary " + clip(d.Primary) + ")")
		case ExtraInCopy:
			b.WriteString(": only in copy (copy " + clip(d.Copy) + ")")
		default:
			b.WriteString(": primary " + clip(d.Primary) + " != copy " + clip(d.Copy))
		}
	}
	return b.String()
}

func clip(v json.RawMessage) string {
	if len(v) <= maxLoggedValue {
		return string(v)
	}
	return string(v[:maxLoggedValue]) + "…(" + strconv.Itoa(len(v)) + " bytes)"
}
