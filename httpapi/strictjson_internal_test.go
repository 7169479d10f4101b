package httpapi

import (
	"strings"
	"testing"

	"github.com/memcell/memcell"
)

// TestArrayBoundsInTokenPass checks that the token pass of a MemCell body
// refuses an array over its bound with the message memcell.Validate
// gives, the count exact although it stops reading the array at
// memcell.MaxArrayItems elements.
func TestArrayBoundsInTokenPass(t *testing.T) {
	repeat := func(elem string, n int) string { return strings.TrimSuffix(strings.Repeat(elem+",", n), ",") }
	const ts = `"timestamp":"2026-01-12T10:30:00Z"`
	for _, tc := range []struct {
		name, body, want string
	}{
		{"150,000 numbers", `{` + ts + `,"extend":{"e":[` + repeat("0", 150_000) + `]}}`, "extend.e: at most 10000 elements, got 150000"},
		{"strings holding commas, brackets and escapes", `{"x":[` + repeat(`"a,]}\\\",[{"`, 10_500) + `],"y":1}`, "x: at most 10000 elements, got 10500"},
		{"nested arrays and objects", `{"x":[` + repeat(`[1,[2,3]],{"a":[4,5]}`, 6_000) + `]}`, "x: at most 10000 elements, got 12000"},
		{"150,000 keywords", `{` + ts + `,"keywords":[` + repeat(`"k"`, 150_000) + `]}`, "keywords: at most 1000 values, got 150000"},
		{"1,001 keywords", `{` + ts + `,"keywords":[` + repeat(`"k"`, 1001) + `]}`, "keywords: at most 1000 values, got 1001"},
		{"1,001 messages", `{"original_data":[{"messages":[` + repeat(`{}`, 1001) + `]}]}`, "original_data.0.messages: at most 1000 values, got 1001"},
		{"an array in an array", `{"extend":{"e":[[` + repeat("1", 10_001) + `]]}}`, "extend.e.0: at most 10000 elements, got 10001"},
	} {
		err := checkDuplicateKeys([]byte(tc.body), memcell.ArrayBoundError)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// It reads no element past the bound: the allocations are those of
	// 10,000 elements (about 8 each), not of 150,000 (1.2 million).
	huge := []byte(`{"extend":{"e":[` + repeat("0", 150_000) + `]}}`)
	if allocs := testing.AllocsPerRun(1, func() { _ = checkDuplicateKeys(huge, memcell.ArrayBoundError) }); allocs > 10*memcell.MaxArrayItems {
		t.Errorf("refusing a 150,000-element array made %.0f allocations, want at most %d", allocs, 10*memcell.MaxArrayItems)
	}
	for _, ok := range []string{
		`{"keywords":[` + repeat(`"k"`, 1000) + `],"extend":{"e":[` + repeat("0", 10_000) + `]}}`,
		`{"foresight_memories":[` + repeat("{}", 1000) + `],"x":[[],[[]],{}]}`,
	} {
		if err := checkDuplicateKeys([]byte(ok), memcell.ArrayBoundError); err != nil {
			t.Errorf("a body within the bounds: %v", err)
		}
	}
	// Other bodies are not MemCells: their arrays are bounded where they
	// are decoded.
	if err := checkDuplicateKeys([]byte(`{"event_ids":[`+repeat(`"a"`, 20_000)+`]}`), nil); err != nil {
		t.Errorf("without bounds: %v", err)
	}
}
