package memcell

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

func readGolden(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/memcell-full.json")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}

func fullMemCell() *MemCell {
	id, _ := ParseID("65a1b2c3d4e5f60718293a4b")
	ts := time.Date(2026, 1, 12, 18, 30, 0, 123_999_999, time.FixedZone("CST", 8*3600))
	created := time.Date(2026, 1, 12, 10, 31, 0, 0, time.UTC)
	updated := time.Date(2026, 1, 13, 8, 0, 0, 500_000_000, time.UTC)
	return &MemCell{
		ID:        id,
		UserID:    ptr("user-1"),
		Timestamp: ts,
		Summary:   ptr("Planned a trip to Kyoto"),
		GroupID:   ptr("group-7"),
		OriginalData: []RawData{{
			DataType: Conversation,
			Messages: []Message{
				{Content: "Let's go to Kyoto in April", Files: []string{"itinerary.pdf"}, Extend: map[string]string{"lang": "en"}},
				{Content: "Great, I'll book", Extra: map[string]any{"reaction": "👍"}},
			},
			Meta:  map[string]string{"channel": "chat"},
			Extra: map[string]any{"source": "import"},
		}},
		Participants:      []string{"user-1", "user-2"},
		Type:              ptr(Conversation),
		Subject:           ptr("Travel"),
		Keywords:          []string{"kyoto", "april", "trip"},
		LinkedEntities:    []string{},
		Episode:           ptr("The two users agreed on a trip."),
		ForesightMemories: []any{map[string]any{"content": "book hotel", "due": time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}},
		EventLog:          map[string]any{"time": "April", "atomic_fact": []any{"user-1 likes temples"}},
		Extend:            map[string]any{"model": "e5", "embedding": []any{0.125, -1.5, int64(3)}},
		CreatedAt:         &created,
		UpdatedAt:         &updated,
		Revision:          3,
		Extra:             map[string]any{"tenant_id": "t-1", "session_id": "s-42"},
	}
}

func TestEncodeGolden(t *testing.T) {
	got, err := Encode(fullMemCell())
	if err != nil {
		t.Fatal(err)
	}
	if want := readGolden(t); !bytes.Equal(got, want) {
		t.Errorf("Encode mismatch (-want +got):\n%s", cmp.Diff(string(want), string(got)))
	}
	if !json.Valid(got) {
		t.Error("Encode produced invalid JSON")
	}
}

func TestEncodeDeterministic(t *testing.T) {
	m := fullMemCell()
	for i := range 50 {
		m.Extra[string(rune('a'+i%26))+strings.Repeat("x", i)] = i
	}
	first, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, _ := Encode(m)
		if !bytes.Equal(first, again) {
			t.Fatal("two encodings of one MemCell differ")
		}
	}
}

func TestRoundTrip(t *testing.T) {
	golden := readGolden(t)
	m, err := Decode(golden)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, golden) {
		t.Errorf("decode → encode changed the bytes (-want +got):\n%s", cmp.Diff(string(golden), string(got)))
	}
	if m.Extra["tenant_id"] != "t-1" || m.OriginalData[0].Extra["source"] != "import" || m.OriginalData[0].Messages[1].Extra["reaction"] != "👍" {
		t.Errorf("extra fields lost: %+v", m.Extra)
	}
	api, err := EncodeAPI(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(api, []byte(`{"event_id":"65a1b2c3d4e5f60718293a4b","user_id"`)) {
		t.Errorf("EncodeAPI = %.60s…, want the id under event_id", api)
	}
	back, err := DecodeAPI(api)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := Encode(back); !bytes.Equal(again, golden) {
		t.Error("API round trip changed the document")
	}
	// FromAPIMap on the body parsed as DecodeAPI parses it gives the same.
	dec := json.NewDecoder(bytes.NewReader(api))
	dec.UseNumber()
	var tree map[string]any
	if err := dec.Decode(&tree); err != nil {
		t.Fatal(err)
	}
	fromTree, err := FromAPIMap(tree)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := Encode(fromTree); !bytes.Equal(again, golden) {
		t.Error("FromAPIMap gave another document than DecodeAPI")
	}
	if _, err := FromAPIMap(map[string]any{"timestamp": "2026-01-01T00:00:00Z", "_id": "65a1b2c3d4e5f60718293a4b"}); err == nil {
		t.Error("FromAPIMap accepted an _id")
	}
}

func TestUnsetFieldsAreNull(t *testing.T) {
	m := &MemCell{Timestamp: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	got, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"_id":null,"user_id":null,"timestamp":"2026-01-01T00:00:00.000Z","summary":null,"group_id":null,"original_data":null,"participants":null,"type":null,"subject":null,"keywords":null,"linked_entities":null,"episode":null,"foresight_memories":null,"event_log":null,"extend":null,"created_at":null,"updated_at":null,"deleted_at":null,"deleted_by":null,"deleted_id":0,"revision":0}`
	if string(got) != want {
		t.Errorf("Encode(minimal) mismatch (-want +got):\n%s", cmp.Diff(want, string(got)))
	}
	// Absent and null read the same.
	m2, err := Decode([]byte(`{"timestamp":"2026-01-01T00:00:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := Encode(m2); string(again) != want {
		t.Errorf("absent fields do not encode as null:\n%s", again)
	}
}

func TestDatesNormalised(t *testing.T) {
	cases := map[string]string{
		"2026-01-12T18:30:00.123456789+08:00": "2026-01-12T10:30:00.123Z",
		"2026-01-12T10:30:00Z":                "2026-01-12T10:30:00.000Z",
		"2026-01-12T10:30:00.1-00:30":         "2026-01-12T11:00:00.100Z",
		"0001-01-01T00:00:00.999Z":            "0001-01-01T00:00:00.999Z",
	}
	for in, want := range cases {
		m, err := Decode([]byte(`{"timestamp":"` + in + `","created_at":"` + in + `"}`))
		if err != nil {
			t.Fatalf("Decode(%s): %v", in, err)
		}
		out, _ := Encode(m)
		if !bytes.Contains(out, []byte(`"timestamp":"`+want+`"`)) || !bytes.Contains(out, []byte(`"created_at":"`+want+`"`)) {
			t.Errorf("%s encoded as %s, want %s", in, out, want)
		}
	}
}

func TestNumbersCanonical(t *testing.T) {
	in := `{"timestamp":"2026-01-01T00:00:00Z","extend":{"a":1.0,"b":1e2,"c":-0.0,"d":12345678901234567890,"e":0.0000001,"f":1.5e300,"g":-7}}`
	m, err := Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `"extend":{"a":1,"b":100,"c":0,"d":12345678901234567000,"e":1e-7,"f":1.5e+300,"g":-7}`
	if !bytes.Contains(out, []byte(want)) {
		t.Errorf("got %s\nwant it to contain %s", out, want)
	}
}

func TestDecodeErrorsNameTheField(t *testing.T) {
	cases := []struct {
		in    string
		field string
	}{
		{`{"timestamp":"yesterday"}`, "timestamp"},
		{`{"timestamp":12}`, "timestamp"},
		{`{"timestamp":"2026-01-01T00:00:00Z","_id":"xyz"}`, "_id"},
		{`{"timestamp":"2026-01-01T00:00:00Z","_id":"65a1b2c3d4e5f60718293a4"}`, "_id"},
		{`{"timestamp":"2026-01-01T00:00:00Z","_id":"65a1b2c3d4e5f60718293a4g"}`, "_id"},
		{`{"timestamp":"2026-01-01T00:00:00Z","event_id":"65a1b2c3d4e5f60718293a4b"}`, "event_id"},
		{`{"timestamp":"2026-01-01T00:00:00Z","user_id":5}`, "user_id"},
		{`{"timestamp":"2026-01-01T00:00:00Z","keywords":"a,b"}`, "keywords"},
		{`{"timestamp":"2026-01-01T00:00:00Z","keywords":["a",2]}`, "keywords.1"},
		{`{"timestamp":"2026-01-01T00:00:00Z","event_log":[1]}`, "event_log"},
		{`{"timestamp":"2026-01-01T00:00:00Z","deleted_id":"one"}`, "deleted_id"},
		{`{"timestamp":"2026-01-01T00:00:00Z","deleted_id":1.5}`, "deleted_id"},
		{`{"timestamp":"2026-01-01T00:00:00Z","revision":-1}`, "revision"},
		{`{"timestamp":"2026-01-01T00:00:00Z","original_data":{}}`, "original_data"},
		{`{"timestamp":"2026-01-01T00:00:00Z","original_data":[{"messages":[{"content":1}]}]}`, "original_data.0.messages.0.content"},
		{`{"timestamp":"2026-01-01T00:00:00Z","original_data":[{"meta":{"k":1}}]}`, "original_data.0.meta.k"},
		{`{"timestamp":"2026-01-01T00:00:00Z","foresight_memories":{}}`, "foresight_memories"},
		{`[1,2]`, ""},
		{`{"timestamp":`, ""},
		{`{} {}`, ""},
	}
	for _, tc := range cases {
		_, err := Decode([]byte(tc.in))
		var fe *FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
			t.Errorf("Decode(%s) = %v, want a *FieldError wrapping ErrInvalid", tc.in, err)
			continue
		}
		if fe.Field != tc.field {
			t.Errorf("Decode(%s) error names field %q, want %q (%v)", tc.in, fe.Field, tc.field, err)
		}
	}
	// The API representation takes its id under event_id only.
	if _, err := DecodeAPI([]byte(`{"timestamp":"2026-01-01T00:00:00Z","_id":"65a1b2c3d4e5f60718293a4b"}`)); err == nil {
		t.Error("DecodeAPI accepted an _id")
	}
}

func TestValidate(t *testing.T) {
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		m     MemCell
		field string // "" means valid
	}{
		{"minimal", MemCell{Timestamp: ts}, ""},
		{"full", *fullMemCell(), ""},
		{"no timestamp", MemCell{}, "timestamp"},
		{"unknown type", MemCell{Timestamp: ts, Type: ptr(DataType("Email"))}, "type"},
		{"no messages", MemCell{Timestamp: ts, OriginalData: []RawData{{DataType: Conversation}}}, "original_data.0.messages"},
		{"bad data type", MemCell{Timestamp: ts, OriginalData: []RawData{{Messages: []Message{{Content: "x"}}}}}, "original_data.0.data_type"},
		{"negative revision", MemCell{Timestamp: ts, Revision: -2}, "revision"},
		{"NaN in extend", MemCell{Timestamp: ts, Extend: map[string]any{"v": []any{1.0, nan()}}}, "extend.v.1"},
		{"unsupported type", MemCell{Timestamp: ts, Extra: map[string]any{"ch": make(chan int)}}, "ch"},
		{"NUL in a nested key", MemCell{Timestamp: ts, Extend: map[string]any{"a": map[string]any{"b\x00": 1}}}, "extend.a.b\x00"},
		{"dotted extra", MemCell{Timestamp: ts, Extra: map[string]any{"a.b": 1}}, "a.b"},
		{"dollar extra", MemCell{Timestamp: ts, Extra: map[string]any{"$set": 1}}, "$set"},
		{"year 10000", MemCell{Timestamp: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "timestamp"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Validate = %v, want an error naming %q", err, tc.field)
			}
		})
	}
}

func nan() float64 { z := 0.0; return z / z }

func TestParseID(t *testing.T) {
	id, err := ParseID("65A1B2C3D4E5F60718293A4B")
	if err != nil || id.String() != "65a1b2c3d4e5f60718293a4b" {
		t.Errorf("ParseID(upper case) = %v, %v", id, err)
	}
	for _, bad := range []string{"", "65a1b2c3d4e5f60718293a4", "65a1b2c3d4e5f60718293a4bb", "zza1b2c3d4e5f60718293a4b", "../../etc/passwd0000000000"} {
		if _, err := ParseID(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseID(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	a, b := NewID(), NewID()
	if a == b || a.IsZero() {
		t.Errorf("NewID gave %v and %v", a, b)
	}
	if back, err := ParseID(a.String()); err != nil || back != a {
		t.Errorf("NewID does not round-trip: %v %v", back, err)
	}
}

func TestCompare(t *testing.T) {
	golden := readGolden(t)
	if eq, diffs, err := Compare(golden, golden); !eq || diffs != nil || err != nil {
		t.Fatalf("Compare(x, x) = %v, %v, %v", eq, diffs, err)
	}
	if eq, _, err := Compare([]byte(`{"a":1,"b":[1.0,2]}`), []byte(`{"b":[1,2.00],"a":1e0}`)); !eq || err != nil {
		t.Errorf("reordered keys and respelled numbers compare unequal: %v", err)
	}
	primary := `{"summary":"a","extend":{"tag":"x","n":1},"original_data":[{"messages":[{"content":"hi"}]}],"keywords":["a","b"]}`
	cp := `{"summary":"b","extend":{"n":1,"new":true},"original_data":[{"messages":[{"content":"ho"}]}],"keywords":["a"]}`
	eq, diffs, err := Compare([]byte(primary), []byte(cp))
	if err != nil || eq {
		t.Fatalf("Compare = %v, %v", eq, err)
	}
	want := []Difference{
		{Path: "extend.new", Kind: ExtraInCopy, Copy: json.RawMessage(`true`)},
		{Path: "extend.tag", Kind: MissingInCopy, Primary: json.RawMessage(`"x"`)},
		{Path: "keywords", Kind: Changed, Primary: json.RawMessage(`["a","b"]`), Copy: json.RawMessage(`["a"]`)},
		{Path: "original_data.0.messages.0.content", Kind: Changed, Primary: json.RawMessage(`"hi"`), Copy: json.RawMessage(`"ho"`)},
		{Path: "summary", Kind: Changed, Primary: json.RawMessage(`"a"`), Copy: json.RawMessage(`"b"`)},
	}
	if d := cmp.Diff(want, diffs); d != "" {
		t.Errorf("differences mismatch (-want +got):\n%s", d)
	}
	if _, _, err := Compare([]byte(`{"a":1}`), []byte(`{"a":`)); err == nil {
		t.Error("Compare accepted malformed JSON")
	}
}

func TestLogInconsistency(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	diffs := []Difference{{Path: "summary", Kind: Changed, Primary: json.RawMessage(`"a"`), Copy: json.RawMessage(`"` + strings.Repeat("b", 1000) + `"`)}}
	LogInconsistency(context.Background(), logger, "65a1b2c3d4e5f60718293a4b", diffs)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
	if line["level"] != "ERROR" || line["msg"] != "[DATA_INCONSISTENCY] event_id=65a1b2c3d4e5f60718293a4b" {
		t.Errorf("log line = %v", line)
	}
	diff, _ := line["diff"].(string)
	if !strings.HasPrefix(diff, `summary: primary "a" != copy "bbb`) || !strings.Contains(diff, "(1002 bytes)") {
		t.Errorf("diff attribute = %q", diff)
	}
	LogInconsistency(context.Background(), nil, "x", diffs) // nil logger: no panic, no output
}

func TestValidJSON(t *testing.T) {
	if err := ValidJSON([]byte(` {"a":[1,2,{"b":null}]} `)); err != nil {
		t.Errorf("ValidJSON(good) = %v", err)
	}
	for _, bad := range []string{``, `{`, `{"a":}`, `{"a":1}}`, `nul`, "\"\x00\""} {
		err := ValidJSON([]byte(bad))
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidJSON(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if err := ValidJSON([]byte(`{"a":}`)); !strings.Contains(err.Error(), "at byte 6") {
		t.Errorf("error %q does not give the offset", err)
	}
}

func TestStringEscaping(t *testing.T) {
	m := &MemCell{Timestamp: time.Unix(0, 0), Summary: ptr("quote\" back\\ nl\n tab\t ctl\x01 bad\xff sep\u2028 <html>&")}
	out, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"summary":"quote\" back\\ nl\n tab\t ctl\u0001 bad\ufffd sep\u2028 <html>&"`)) {
		t.Errorf("escaping: %s", out)
	}
	back, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	if *back.Summary != "quote\" back\\ nl\n tab\t ctl\x01 bad\uFFFD sep\u2028 <html>&" {
		t.Errorf("round trip = %q", *back.Summary)
	}
}

func BenchmarkEncode(b *testing.B) {
	m := fullMemCell()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = AppendEncode(buf[:0], m)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecode(b *testing.B) {
	data := readGolden(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
