package memcell

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Verdict is how a KV copy compares with the primary's document.
type Verdict struct {
	// Equal is true when the copy holds the same data: equal bytes, or
	// equal values once parsed.
	Equal bool
	// Diffs lists the differing fields when not Equal. A copy that is not
	// JSON at all differs as a whole: one Changed difference at the empty
	// path holding the primary's document.
	Diffs []Difference
	// Unparseable is true when the copy is not well-formed JSON.
	Unparseable bool
	// CopyRevision is the revision the copy holds: the primary's when the
	// revision is not among the differences, -1 when it is unknown (the
	// copy is unparseable, or has no integer revision).
	CopyRevision int64
}

// Judge compares primary, the canonical encoding of a document of revision
// rev, with copy, the KV's copy of it. It is the one comparison of the
// project: read validation and the reconcile jobs both use it, so they
// agree on what differs. Equal bytes, the common case, cost one
// bytes.Equal; only differing bytes are parsed.
func Judge(primary []byte, rev int64, copy []byte) Verdict {
	if bytes.Equal(primary, copy) {
		return Verdict{Equal: true, CopyRevision: rev}
	}
	eq, diffs, err := Compare(primary, copy)
	switch {
	case err != nil:
		return Verdict{Unparseable: true, CopyRevision: -1,
			Diffs: []Difference{{Kind: Changed, Primary: primary}}}
	case eq:
		return Verdict{Equal: true, CopyRevision: rev}
	}
	v := Verdict{Diffs: diffs, CopyRevision: rev}
	for _, d := range diffs {
		if d.Path != RevisionField {
			continue
		}
		v.CopyRevision = -1
		var n json.Number
		if d.Kind == Changed && json.Unmarshal(d.Copy, &n) == nil {
			if r, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
				v.CopyRevision = r
			}
		}
	}
	return v
}
