package reconcile

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// DefaultMaxDelete is the bound on the extras a repair deletes in one run
// when Options.MaxDelete is "": 5% of the KV keys its KV pass scans.
const DefaultMaxDelete = "5%"

// MaxDelete bounds how many KV keys a repair deletes as extras in one run:
// a share of the keys the KV pass scans ("5%"), a number of keys ("1000"),
// or no bound ("all", or "100%"). A primary that lost its documents (a
// dropped collection, a bad deleteMany by another program) makes every
// copy an extra, and deleting them would wipe the one copy left.
type MaxDelete struct {
	// Percent is the bound as a percentage of the keys scanned, when
	// Count is negative.
	Percent float64
	// Count is the bound as a number of keys; negative when Percent holds
	// the bound.
	Count int64
}

// Unbounded reports whether m lets a repair delete every extra.
func (m MaxDelete) Unbounded() bool {
	return m.Count < 0 && m.Percent >= 100
}

// Allows reports whether m lets a repair delete extras keys out of the
// scanned keys of its KV pass.
func (m MaxDelete) Allows(extras, scanned int64) bool {
	return extras <= m.Limit(scanned)
}

// Limit is how many keys m lets a repair delete out of the scanned keys of
// its KV pass.
func (m MaxDelete) Limit(scanned int64) int64 {
	switch {
	case m.Count >= 0:
		return m.Count
	case m.Unbounded():
		return math.MaxInt64
	}
	// The epsilon keeps 29% of 100 from coming out as 28.999….
	return int64(math.Floor(m.Percent*float64(scanned)/100 + 1e-9))
}

// String is m as ParseMaxDelete reads it.
func (m MaxDelete) String() string {
	switch {
	case m.Count >= 0:
		return strconv.FormatInt(m.Count, 10)
	case m.Unbounded():
		return "all"
	}
	return strconv.FormatFloat(m.Percent, 'f', -1, 64) + "%"
}

// ParseMaxDelete reads a bound on the extras a repair deletes: a
// percentage of the KV keys scanned, from "0%" to "100%" ("5%", "0.5%"), a
// number of keys ("1000"), or "all" (the same as "100%"); "" is
// DefaultMaxDelete. A number without % is a count of keys, not a share.
func ParseMaxDelete(s string) (MaxDelete, error) {
	if s == "" {
		s = DefaultMaxDelete
	}
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "all") {
		return MaxDelete{Percent: 100, Count: -1}, nil
	}
	if p, ok := strings.CutSuffix(t, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(v) || v < 0 || v > 100 {
			return MaxDelete{}, fmt.Errorf("reconcile: max delete %q: want a percentage from 0%% to 100%%, a number of keys, or all", s)
		}
		return MaxDelete{Percent: v, Count: -1}, nil
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return MaxDelete{}, fmt.Errorf("reconcile: max delete %q: want a percentage such as 5%%, a number of keys such as 1000, or all", s)
	}
	return MaxDelete{Count: n}, nil
}

// DeleteRefusedError is the error of a repair whose KV pass found more
// extras than Options.MaxDelete lets it delete. It deleted none of them;
// its other fixes stand.
type DeleteRefusedError struct {
	// Extras is the number of extras found, KVScanned the number of keys
	// the KV pass scanned.
	Extras, KVScanned int64
	// MaxDelete is the bound the extras are over.
	MaxDelete MaxDelete
}

func (e *DeleteRefusedError) Error() string {
	return "refused: " + e.reason()
}

// reason says what was refused and why, and what to do.
func (e *DeleteRefusedError) reason() string {
	share := 0.0
	if e.KVScanned > 0 {
		share = 100 * float64(e.Extras) / float64(e.KVScanned)
	}
	return fmt.Sprintf("%d extra KV %s would be deleted (%s%% of the %d scanned), over --max-delete %s; "+
		"an empty or nearly empty primary is far more often an accident than the truth: check the primary "+
		"(memcell kv recover puts its lost documents back from these copies), "+
		"or pass --max-delete %s (max_delete in the jobs API) if the deletes are meant",
		e.Extras, copies(e.Extras), strconv.FormatFloat(share, 'g', 3, 64), e.KVScanned, e.MaxDelete, suggest(e.Extras, e.KVScanned))
}

func copies(n int64) string {
	if n == 1 {
		return "copy"
	}
	return "copies"
}

// suggest is the least bound, as a percentage, that allows extras out of
// scanned keys.
func suggest(extras, scanned int64) string {
	if scanned <= 0 || extras >= scanned {
		return "100%"
	}
	p := math.Ceil(100 * float64(extras) / float64(scanned))
	if p >= 100 {
		return "100%"
	}
	return strconv.FormatFloat(p, 'f', 0, 64) + "%"
}
