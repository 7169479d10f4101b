package memcell

import (
	"bytes"
	"testing"
)

// FuzzDecode checks that Decode never panics and that the canonical
// encoding is a fixed point: decode → encode → decode → encode gives the
// same bytes as the first encode. The seed corpus is in testdata/fuzz.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"timestamp":"2026-01-12T10:30:00.123Z"}`))
	f.Add([]byte(`{"_id":"65a1b2c3d4e5f60718293a4b","timestamp":"2026-01-12T18:30:00.123456+08:00","extend":{"e":[1.5,1e300,-0]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		enc1, err := Encode(m)
		if err != nil {
			t.Fatalf("Decode accepted %q but Encode failed: %v", data, err)
		}
		m2, err := Decode(enc1)
		if err != nil {
			t.Fatalf("Decode of our own encoding %q failed: %v", enc1, err)
		}
		enc2, err := Encode(m2)
		if err != nil {
			t.Fatalf("second Encode failed: %v", err)
		}
		if !bytes.Equal(enc1, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc1, enc2)
		}
		if eq, diffs, err := Compare(enc1, enc2); !eq || err != nil {
			t.Fatalf("Compare of equal encodings = %v, %v, %v", eq, diffs, err)
		}
		if err := ValidJSON(enc1); err != nil {
			t.Fatalf("our encoding is not valid JSON: %v", err)
		}
	})
}

// FuzzCompare checks that Compare never panics, that a document equals
// itself, and that Compare agrees with ValidJSON on what is JSON.
func FuzzCompare(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":[1,2]}`), []byte(`{"b":[1,2.0],"a":1}`))
	f.Add([]byte(`{"a":{"b":"x"}}`), []byte(`{"a":{"c":"x"}}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		eq, diffs, err := Compare(a, b)
		validA, validB := ValidJSON(a) == nil, ValidJSON(b) == nil
		if (err == nil) != (validA && validB) && !bytes.Equal(a, b) {
			t.Fatalf("Compare error %v, but ValidJSON says %v, %v", err, validA, validB)
		}
		if err == nil && eq != (len(diffs) == 0) {
			t.Fatalf("Compare = %v with %d differences", eq, len(diffs))
		}
		if validA {
			if eq, diffs, err := Compare(a, append([]byte(" "), a...)); !eq || err != nil {
				t.Fatalf("a document differs from itself: %v %v", diffs, err)
			}
		}
	})
}
