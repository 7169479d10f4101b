package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/mirror"
)

// TestBadInput sends every kind of bad input the API refuses and checks the
// status, the error code, that the message names the culprit, and that
// nothing was written.
func TestBadInput(t *testing.T) {
	e := newEnv(t, nil)
	ids := e.seed(cell("alice", epoch, "kyoto"), cell("bob", epoch))
	e.want(http.StatusNoContent, "DELETE", "/v1/memcells/"+ids[1], nil)
	live := "/v1/memcells/" + ids[0]
	const ts = `"timestamp":"2026-01-12T10:30:00Z"`
	deep := strings.Repeat(`{"a":`, 70) + "1" + strings.Repeat("}", 70)
	tooMany := make([]string, 1001)
	for i := range tooMany {
		tooMany[i] = ids[0]
	}
	json := []string{"Content-Type", "application/json"}
	cases := []struct {
		name           string
		method, target string
		body           any
		headers        []string
		status         int
		code           string
		mention        string // the message must contain it
	}{
		// POST /v1/memcells
		{"create: malformed JSON", "POST", "/v1/memcells", `{"timestamp":`, nil, 400, "malformed_json", "unexpected end"},
		{"create: syntax error", "POST", "/v1/memcells", `{"timestamp" "x"}`, nil, 400, "malformed_json", "byte"},
		{"create: two values", "POST", "/v1/memcells", `{} {}`, nil, 400, "malformed_json", "after the top-level value"},
		{"create: empty body", "POST", "/v1/memcells", "", json, 400, "malformed_json", "empty"},
		{"create: not an object", "POST", "/v1/memcells", `[1,2]`, nil, 400, "invalid_argument", "object"},
		{"create: no timestamp", "POST", "/v1/memcells", `{"user_id":"a"}`, nil, 400, "invalid_argument", "timestamp"},
		{"create: null timestamp", "POST", "/v1/memcells", `{"timestamp":null}`, nil, 400, "invalid_argument", "timestamp"},
		{"create: bad date", "POST", "/v1/memcells", `{"timestamp":"yesterday"}`, nil, 400, "invalid_argument", "timestamp"},
		{"create: wrong type", "POST", "/v1/memcells", `{` + ts + `,"user_id":5}`, nil, 400, "invalid_argument", "user_id"},
		{"create: wrong element type", "POST", "/v1/memcells", `{` + ts + `,"keywords":["a",2]}`, nil, 400, "invalid_argument", "keywords.1"},
		{"create: invalid id", "POST", "/v1/memcells", `{` + ts + `,"event_id":"xyz"}`, nil, 400, "invalid_argument", "event_id"},
		{"create: _id", "POST", "/v1/memcells", `{` + ts + `,"_id":"65a1b2c3d4e5f60718293a4b"}`, nil, 400, "invalid_argument", "_id"},
		{"create: revision", "POST", "/v1/memcells", `{` + ts + `,"revision":3}`, nil, 400, "invalid_argument", "revision"},
		{"create: created_at", "POST", "/v1/memcells", `{` + ts + `,"created_at":null}`, nil, 400, "invalid_argument", "created_at"},
		{"create: deleted_id", "POST", "/v1/memcells", `{` + ts + `,"deleted_id":0}`, nil, 400, "invalid_argument", "deleted_id"},
		{"create: unknown type", "POST", "/v1/memcells", `{` + ts + `,"type":"Email"}`, nil, 400, "invalid_argument", "type"},
		{"create: no messages", "POST", "/v1/memcells", `{` + ts + `,"original_data":[{"data_type":"Conversation","messages":[]}]}`, nil, 400, "invalid_argument", "original_data.0.messages"},
		{"create: number out of range", "POST", "/v1/memcells", `{` + ts + `,"extend":{"n":1e400}}`, nil, 400, "invalid_argument", "extend.n"},
		{"create: $ field", "POST", "/v1/memcells", `{` + ts + `,"$where":1}`, nil, 400, "invalid_argument", "$where"},
		{"create: dotted field", "POST", "/v1/memcells", `{` + ts + `,"a.b":1}`, nil, 400, "invalid_argument", "a.b"},
		{"create: NUL in a field name", "POST", "/v1/memcells", `{` + ts + `,"extend":{"a\u0000b":1}}`, nil, 400, "invalid_argument", "extend"},
		{"create: too deep", "POST", "/v1/memcells", `{` + ts + `,"extend":` + deep + `}`, nil, 400, "invalid_argument", "deeper"},
		{"create: text/plain", "POST", "/v1/memcells", `{` + ts + `}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", "application/json"},
		{"create: no content type", "POST", "/v1/memcells", `{` + ts + `}`, []string{"Content-Type", ""}, 415, "unsupported_media_type", "application/json"},
		{"create: latin1", "POST", "/v1/memcells", `{` + ts + `}`, []string{"Content-Type", "application/json; charset=iso-8859-1"}, 415, "unsupported_media_type", "application/json"},
		{"create: form", "POST", "/v1/memcells", `timestamp=x`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", "application/json"},
		{"create: too large", "POST", "/v1/memcells", `{` + ts + `,"summary":"` + strings.Repeat("x", 1<<20) + `"}`, nil, 413, "body_too_large", "1048576"},
		{"create: query parameter", "POST", "/v1/memcells?validate=true", `{` + ts + `}`, nil, 400, "invalid_argument", "validate"},

		// GET /v1/memcells/{event_id}
		{"get: invalid id", "GET", "/v1/memcells/xyz", nil, nil, 400, "invalid_argument", "event_id"},
		{"get: 23 digits", "GET", "/v1/memcells/65a1b2c3d4e5f60718293a4", nil, nil, 400, "invalid_argument", "event_id"},
		{"get: bad validate", "GET", live + "?validate=maybe", nil, nil, 400, "invalid_argument", "validate"},
		{"get: unknown parameter", "GET", live + "?fields=a", nil, nil, 400, "invalid_argument", "fields"},

		// PATCH
		{"patch: invalid id", "PATCH", "/v1/memcells/xyz", `{"summary":"x"}`, nil, 400, "invalid_argument", "event_id"},
		{"patch: malformed JSON", "PATCH", live, `{"summary":`, nil, 400, "malformed_json", "unexpected end"},
		{"patch: not an object", "PATCH", live, `["summary"]`, nil, 400, "invalid_argument", "object"},
		{"patch: empty", "PATCH", live, `{}`, nil, 400, "invalid_argument", "at least one field"},
		{"patch: revision", "PATCH", live, `{"revision":9}`, nil, 400, "invalid_argument", "revision"},
		{"patch: event_id", "PATCH", live, `{"event_id":"65a1b2c3d4e5f60718293a4b"}`, nil, 400, "invalid_argument", "event_id"},
		{"patch: deleted_at", "PATCH", live, `{"deleted_at":null}`, nil, 400, "invalid_argument", "deleted_at"},
		{"patch: unset timestamp", "PATCH", live, `{"timestamp":null}`, nil, 400, "invalid_argument", "timestamp"},
		{"patch: wrong type", "PATCH", live, `{"keywords":"a,b"}`, nil, 400, "invalid_argument", "keywords"},
		{"patch: bad date", "PATCH", live, `{"timestamp":"soon"}`, nil, 400, "invalid_argument", "timestamp"},
		{"patch: $ field", "PATCH", live, `{"$set":{"a":1}}`, nil, 400, "invalid_argument", "$set"},
		{"patch: text/plain", "PATCH", live, `{"summary":"x"}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", "application/json"},
		{"patch: absent", "PATCH", "/v1/memcells/65a1b2c3d4e5f60718293a4b", `{"summary":"x"}`, nil, 404, "not_found", "MemCell"},
		{"patch: soft-deleted", "PATCH", "/v1/memcells/" + ids[1], `{"summary":"x"}`, nil, 404, "not_found", "MemCell"},

		// DELETE /v1/memcells/{event_id}, restore
		{"delete: invalid id", "DELETE", "/v1/memcells/xyz", nil, nil, 400, "invalid_argument", "event_id"},
		{"delete: bad hard", "DELETE", live + "?hard=yes%20please", nil, nil, 400, "invalid_argument", "hard"},
		{"delete: hard with deleted_by", "DELETE", live + "?hard=true&deleted_by=x", nil, nil, 400, "invalid_argument", "deleted_by"},
		{"delete: unknown parameter", "DELETE", live + "?force=true", nil, nil, 400, "invalid_argument", "force"},
		{"restore: invalid id", "POST", "/v1/memcells/xyz/restore", nil, nil, 400, "invalid_argument", "event_id"},
		{"restore: live", "POST", live + "/restore", nil, nil, 404, "not_found", "MemCell"},

		// batch-get
		{"batch: invalid id", "POST", "/v1/memcells/batch-get", `{"event_ids":["` + ids[0] + `","xyz"]}`, nil, 400, "invalid_argument", "event_ids.1"},
		{"batch: no ids", "POST", "/v1/memcells/batch-get", `{"validate":true}`, nil, 400, "invalid_argument", "event_ids"},
		{"batch: too many", "POST", "/v1/memcells/batch-get", map[string]any{"event_ids": tooMany}, nil, 400, "invalid_argument", "event_ids: at most 1000 ids, got 1001"},
		{"batch: too many fields", "POST", "/v1/memcells/batch-get", map[string]any{"event_ids": ids[:1], "fields": values("f", 101)}, nil, 400, "invalid_argument", "fields: at most 100 field names, got 101"},
		{"batch: unknown field", "POST", "/v1/memcells/batch-get", `{"event_ids":[],"ids":[]}`, nil, 400, "invalid_argument", "ids"},
		{"batch: wrong type", "POST", "/v1/memcells/batch-get", `{"event_ids":"` + ids[0] + `"}`, nil, 400, "invalid_argument", "event_ids"},
		{"batch: wrong validate", "POST", "/v1/memcells/batch-get", `{"event_ids":[],"validate":"yes"}`, nil, 400, "invalid_argument", "validate"},
		{"batch: bad field name", "POST", "/v1/memcells/batch-get", `{"event_ids":[],"fields":["$x"]}`, nil, 400, "invalid_argument", "fields.0"},
		{"batch: not an object", "POST", "/v1/memcells/batch-get", `["` + ids[0] + `"]`, nil, 400, "invalid_argument", "object"},
		{"batch: malformed JSON", "POST", "/v1/memcells/batch-get", `{"event_ids":[`, nil, 400, "malformed_json", "unexpected end"},
		{"batch: text/plain", "POST", "/v1/memcells/batch-get", `{"event_ids":[]}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", "application/json"},

		// GET /v1/memcells
		{"list: inverted range", "GET", "/v1/memcells?start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z", nil, nil, 400, "invalid_argument", "end"},
		{"list: empty range", "GET", "/v1/memcells?start=2026-01-02T00:00:00Z&end=2026-01-02T01:00:00%2B01:00", nil, nil, 400, "invalid_argument", "end"},
		{"list: bad start", "GET", "/v1/memcells?start=yesterday", nil, nil, 400, "invalid_argument", "start"},
		{"list: limit over max", "GET", "/v1/memcells?limit=1001", nil, nil, 400, "invalid_argument", "limit"},
		{"list: limit 0", "GET", "/v1/memcells?limit=0", nil, nil, 400, "invalid_argument", "limit"},
		{"list: limit not an integer", "GET", "/v1/memcells?limit=ten", nil, nil, 400, "invalid_argument", "limit"},
		{"list: negative skip", "GET", "/v1/memcells?skip=-1", nil, nil, 400, "invalid_argument", "skip"},
		{"list: fractional skip", "GET", "/v1/memcells?skip=1.5", nil, nil, 400, "invalid_argument", "skip"},
		{"list: bad sort", "GET", "/v1/memcells?sort=newest", nil, nil, 400, "invalid_argument", "sort"},
		{"list: bad match_all", "GET", "/v1/memcells?match_all=all", nil, nil, 400, "invalid_argument", "match_all"},
		{"list: misspelt filter", "GET", "/v1/memcells?userid=alice", nil, nil, 400, "invalid_argument", "userid"},
		{"list: user twice", "GET", "/v1/memcells?user_id=a&user_id=b", nil, nil, 400, "invalid_argument", "user_id"},
		{"list: empty user", "GET", "/v1/memcells?user_id=", nil, nil, 400, "invalid_argument", "user_id"},
		{"list: include_participant alone", "GET", "/v1/memcells?include_participant=true", nil, nil, 400, "invalid_argument", "include_participant"},
		{"list: malformed query", "GET", "/v1/memcells?user_id=%zz", nil, nil, 400, "invalid_argument", "query"},

		// count
		{"count: inverted range", "GET", "/v1/memcells/count?start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z", nil, nil, 400, "invalid_argument", "end"},
		{"count: limit", "GET", "/v1/memcells/count?limit=5", nil, nil, 400, "invalid_argument", "limit"},

		// bulk delete and restore
		{"bulk delete: no scope", "DELETE", "/v1/memcells", nil, nil, 400, "invalid_argument", "user_id"},
		{"bulk delete: only start", "DELETE", "/v1/memcells?start=2026-01-01T00:00:00Z", nil, nil, 400, "invalid_argument", "end"},
		{"bulk delete: only end", "DELETE", "/v1/memcells?end=2026-01-01T00:00:00Z", nil, nil, 400, "invalid_argument", "start"},
		{"bulk delete: inverted range", "DELETE", "/v1/memcells?user_id=alice&start=2026-02-01T00:00:00Z&end=2026-01-01T00:00:00Z", nil, nil, 400, "invalid_argument", "end"},
		{"bulk delete: misspelt scope", "DELETE", "/v1/memcells?userid=alice&start=2026-01-01T00:00:00Z&end=2027-01-01T00:00:00Z", nil, nil, 400, "invalid_argument", "userid"},
		{"bulk delete: list filter", "DELETE", "/v1/memcells?user_id=alice&keywords=kyoto", nil, nil, 400, "invalid_argument", "keywords"},
		{"bulk delete: hard with deleted_by", "DELETE", "/v1/memcells?user_id=alice&hard=true&deleted_by=x", nil, nil, 400, "invalid_argument", "deleted_by"},
		{"bulk delete: bad hard", "DELETE", "/v1/memcells?user_id=alice&hard=2", nil, nil, 400, "invalid_argument", "hard"},
		{"bulk restore: no scope", "POST", "/v1/memcells/restore", nil, nil, 400, "invalid_argument", "user_id"},
		{"bulk restore: bad end", "POST", "/v1/memcells/restore?start=2026-01-01T00:00:00Z&end=later", nil, nil, 400, "invalid_argument", "end"},

		// flags
		{"flags: bad validation", "PUT", "/v1/admin/flags", `{"mirroring":false,"validation":"maybe"}`, nil, 400, "invalid_argument", "validation"},
		{"flags: no mirroring", "PUT", "/v1/admin/flags", `{"validation":"off"}`, nil, 400, "invalid_argument", "mirroring"},
		{"flags: sample over 100", "PUT", "/v1/admin/flags", `{"mirroring":false,"validation":"sample","sample_percent":200}`, nil, 400, "invalid_argument", "sample_percent"},
		{"flags: unknown field", "PUT", "/v1/admin/flags", `{"mirroring":false,"validation":"on","mirror":true}`, nil, 400, "invalid_argument", "mirror"},
		{"flags: wrong type", "PUT", "/v1/admin/flags", `{"mirroring":"no","validation":"on"}`, nil, 400, "invalid_argument", "mirroring"},
		{"flags: bad mirror mode", "PUT", "/v1/admin/flags", `{"mirroring":false,"validation":"on","mirror_mode":"later"}`, nil, 400, "invalid_argument", "mirror_mode"},
		{"flags: empty mirror mode", "PUT", "/v1/admin/flags", `{"mirroring":false,"validation":"on","mirror_mode":""}`, nil, 400, "invalid_argument", "mirror_mode"},
		{"flags: text/plain", "PUT", "/v1/admin/flags", `{"mirroring":false,"validation":"on"}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", "application/json"},
		{"flags: malformed", "PUT", "/v1/admin/flags", `{"mirroring":fals}`, nil, 400, "malformed_json", "invalid"},

		// routing
		{"unknown route", "GET", "/v1/nothing", nil, nil, 404, "not_found", "/v1/nothing"},
		{"unknown root", "GET", "/", nil, nil, 404, "not_found", "GET /"},
		{"too many segments", "GET", live + "/restore/again", nil, nil, 404, "not_found", "restore"},
		{"wrong method", "PUT", "/v1/memcells", `{}`, nil, 405, "method_not_allowed", "PUT"},
		{"wrong method on id", "POST", live, `{}`, nil, 405, "method_not_allowed", "POST"},
		{"wrong method on stats", "DELETE", "/v1/kv/stats", nil, nil, 405, "method_not_allowed", "GET"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			before := e.state()
			r := e.do(tc.method, tc.target, tc.body, tc.headers...)
			if r.status != tc.status {
				t.Fatalf("%s %.80s = %d %s, want %d", tc.method, tc.target, r.status, r.body, tc.status)
			}
			if code := r.errorCode(t); code != tc.code {
				t.Errorf("code = %q, want %q (%s)", code, tc.code, r.body)
			}
			if !strings.Contains(string(r.body), tc.mention) {
				t.Errorf("message %s does not mention %q", r.body, tc.mention)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			e.unchanged(before, tc.name)
		})
	}
	e.t = t
	if f := e.repo.Flags(); f != (mirror.Flags{Mirroring: true, Validation: mirror.ValidationOn, Mode: mirror.ModeSync}) {
		t.Errorf("bad flag updates changed the flags to %+v", f)
	}
}

func TestMethodNotAllowedSaysAllow(t *testing.T) {
	e := newEnv(t, nil)
	r := e.want(http.StatusMethodNotAllowed, "PUT", "/v1/memcells", `{}`)
	if allow := r.header.Get("Allow"); allow != "DELETE, GET, HEAD, POST" {
		t.Errorf("Allow = %q", allow)
	}
}

// TestBodyOfUnknownLength checks the size limit on a body sent without a
// Content-Length (chunked), and a configured smaller limit.
func TestBodyOfUnknownLength(t *testing.T) {
	e := newEnv(t, nil)
	small := newEnv(t, &httpapi.Options{MaxBodyBytes: 100})
	big := `{"timestamp":"2026-01-12T10:30:00Z","summary":"` + strings.Repeat("x", 200) + `"}`
	for _, tc := range []struct {
		e      *env
		body   string
		status int
	}{
		{e, `{"timestamp":"2026-01-12T10:30:00Z"}`, http.StatusCreated},
		{e, `{"timestamp":"2026-01-12T10:30:00Z","summary":"` + strings.Repeat("x", 1<<20) + `"}`, http.StatusRequestEntityTooLarge},
		{small, big, http.StatusRequestEntityTooLarge},
		{small, `{"timestamp":"2026-01-12T10:30:00Z"}`, http.StatusCreated},
	} {
		req := httptest.NewRequest("POST", "/v1/memcells", strings.NewReader(tc.body))
		req.Host = testHost
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
		rec := httptest.NewRecorder()
		tc.e.h.ServeHTTP(rec, req)
		r := &response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
		checkAgainstSpec(t, req, r)
		if r.status != tc.status {
			t.Errorf("%d-byte body of unknown length = %d %s, want %d", len(tc.body), r.status, r.body, tc.status)
		}
		if tc.status == http.StatusRequestEntityTooLarge {
			if code := r.errorCode(t); code != "body_too_large" {
				t.Errorf("code = %q", code)
			}
		}
	}
	if st := small.state(); st.docs != 1 {
		t.Errorf("the small server holds %d documents, want 1", st.docs)
	}
}
