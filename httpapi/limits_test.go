package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/reconcile"
)

// refuseWithin bounds the answer to a hostile request here. It is
// generous: the race detector slows the decoding of a 1 MiB body about
// tenfold. cmd/memcell's TestEndToEndHostileRequests holds the built server
// to a second.
const refuseWithin = 5 * time.Second

// values returns n distinct short values.
func values(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// TestListParamLimits checks the bounds on the list parameters of the list
// and count routes: repeated keys and comma-separated values count
// together, each value has a byte limit, and a hostile list is refused at
// once, naming the parameter and the limit.
func TestListParamLimits(t *testing.T) {
	e := newEnv(t, nil)
	e.seed(cell("alice", epoch, "kyoto"))
	long := strings.Repeat("k", httpapi.MaxListParamBytes)
	repeated := url.Values{"keywords": values("r", 60)}.Encode() + "&keywords=" + strings.Join(values("c", 41), ",")
	atLimit := strings.Repeat("&participants="+long, httpapi.MaxListParamValues-1) + "&participants=alice"
	cases := []struct {
		name    string
		target  string
		status  int
		mention string
	}{
		{"list: 100,000 keywords", "/v1/memcells?keywords=" + strings.Join(values("k", 100_000), ","), 400, "keywords: at most 100 values, got 100000"},
		{"count: 100,000 participants", "/v1/memcells/count?participants=" + strings.Join(values("p", 100_000), ","), 400, "participants: at most 100 values, got 100000"},
		{"list: repeated and comma-separated together", "/v1/memcells?" + repeated, 400, "keywords: at most 100 values, got 101"},
		{"count: a value over the byte limit", "/v1/memcells/count?keywords=a," + long + "k", 400, "keywords: at most 256 bytes per value, got 257"},
		{"list: empty items do not count", "/v1/memcells?keywords=" + strings.Repeat(",", 1000) + "kyoto", 200, ""},
		{"count: at the limits", "/v1/memcells/count?" + atLimit[1:], 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			start := time.Now()
			r := e.do("GET", tc.target, nil)
			if d := time.Since(start); d > refuseWithin {
				t.Errorf("answered in %v", d)
			}
			if r.status != tc.status {
				t.Fatalf("GET %.80s = %d %.300s, want %d", tc.target, r.status, r.body, tc.status)
			}
			if tc.status != 200 {
				if code := r.errorCode(t); code != "invalid_argument" {
					t.Errorf("code = %q", code)
				}
				if !strings.Contains(string(r.body), tc.mention) {
					t.Errorf("message %s does not say %q", r.body, tc.mention)
				}
			}
		})
	}
	e.t = t
	var c struct{ Count int64 }
	e.want(http.StatusOK, "GET", "/v1/memcells/count?"+atLimit[1:], nil).decode(t, &c)
	if c.Count != 1 {
		t.Errorf("count at the limits = %d, want 1", c.Count)
	}
}

// TestDocumentLimits sends documents over the bounds of the root package
// (memcell.MaxListItems, MaxArrayItems, MaxExtraFields) and field names
// the primary cannot take at depth: each is refused with 400 in the API's
// own words, and nothing is written.
func TestDocumentLimits(t *testing.T) {
	e := newEnv(t, nil)
	ids := e.seed(cell("alice", epoch, "kyoto"))
	live := "/v1/memcells/" + ids[0]
	const ts = `"timestamp":"2026-01-12T10:30:00Z"`
	quoted := func(vals []string) string { return `"` + strings.Join(vals, `","`) + `"` }
	zeros := func(n int) string { return strings.TrimSuffix(strings.Repeat("0,", n), ",") }
	var extras strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&extras, `,"x%d":1`, i)
	}
	cases := []struct {
		name, method, target, body string
		mention                    string
	}{
		{"1001 keywords", "POST", "/v1/memcells", `{` + ts + `,"keywords":[` + quoted(values("k", 1001)) + `]}`, "field keywords: at most 1000 values, got 1001"},
		{"150,000 participants", "POST", "/v1/memcells", `{` + ts + `,"participants":[` + strings.TrimSuffix(strings.Repeat(`"a",`, 150_000), ",") + `]}`, "field participants: at most 1000 values, got 150000"},
		{"150,000-element array in extend", "POST", "/v1/memcells", `{` + ts + `,"extend":{"e":[` + zeros(150_000) + `]}}`, "field extend.e: at most 10000 elements, got 150000"},
		{"array in an extra field", "POST", "/v1/memcells", `{` + ts + `,"x":[{"y":[` + zeros(10_001) + `]}]}`, "field x.0.y: at most 10000 elements, got 10001"},
		{"1000 extra fields", "POST", "/v1/memcells", `{` + ts + extras.String() + `}`, "at most 100 extra fields, got 1000"},
		{"$ key in extend", "POST", "/v1/memcells", `{` + ts + `,"extend":{"$gt":1}}`, "field extend.$gt: field names must not start with $"},
		{"dotted key in event_log", "POST", "/v1/memcells", `{` + ts + `,"event_log":{"a.b":1}}`, "field event_log.a.b: field names must not contain ."},
		{"$ key in an object in an array of an extra field", "POST", "/v1/memcells", `{` + ts + `,"x":{"y":[1,{"$where":"1"}]}}`, "field x.y.1.$where"},
		{"dotted key in a message", "POST", "/v1/memcells", `{` + ts + `,"original_data":[{"data_type":"Conversation","messages":[{"content":"c","extend":{"a.b":"x"}}]}]}`, "field original_data.0.messages.0.extend.a.b"},
		{"patch: 1001 keywords", "PATCH", live, `{"keywords":[` + quoted(values("k", 1001)) + `]}`, "field keywords: at most 1000 values, got 1001"},
		{"patch: 150,000-element array", "PATCH", live, `{"extend":{"e":[` + zeros(150_000) + `]}}`, "field extend.e: at most 10000 elements, got 150000"},
		{"patch: $ key deep", "PATCH", live, `{"event_log":{"a":[{"$inc":1}]}}`, "field event_log.a.0.$inc"},
		{"patch: 1000 extra fields", "PATCH", live, `{` + extras.String()[1:] + `}`, "at most 100 extra fields, got 1000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			before := e.state()
			start := time.Now()
			r := e.do(tc.method, tc.target, tc.body)
			if d := time.Since(start); d > refuseWithin {
				t.Errorf("answered in %v", d)
			}
			if r.status != http.StatusBadRequest {
				t.Fatalf("%s = %d %.300s, want 400", tc.name, r.status, r.body)
			}
			if code := r.errorCode(t); code != "invalid_argument" {
				t.Errorf("code = %q", code)
			}
			if !strings.Contains(string(r.body), tc.mention) || strings.Contains(string(r.body), "primary") {
				t.Errorf("message %.300s does not say %q in the API's words", r.body, tc.mention)
			}
			e.unchanged(before, tc.name)
		})
	}
}

// TestDuplicateKeys checks that every JSON body with a key twice in one
// object, at any depth, is refused, and that nothing is written; the same
// key in two different objects is fine.
func TestDuplicateKeys(t *testing.T) {
	e, _ := newJobsEnv(t, nil)
	ids := e.seed(cell("alice", epoch, "kyoto"))
	live := "/v1/memcells/" + ids[0]
	const ts = `"timestamp":"2026-01-12T10:30:00Z"`
	cases := []struct {
		name, method, target, body string
		mention                    string
	}{
		{"create: top level", "POST", "/v1/memcells", `{` + ts + `,"summary":"a","summary":"b"}`, `duplicate key "summary"`},
		{"create: timestamp twice", "POST", "/v1/memcells", `{` + ts + `,` + ts + `}`, `duplicate key "timestamp"`},
		{"create: in extend", "POST", "/v1/memcells", `{` + ts + `,"extend":{"a":1,"b":2,"a":3}}`, `field extend: duplicate key "a"`},
		{"create: in an object in an array", "POST", "/v1/memcells", `{` + ts + `,"x":[1,{"k":1},{"k":1,"k":2}]}`, `field x.2: duplicate key "k"`},
		{"create: in a message", "POST", "/v1/memcells", `{` + ts + `,"original_data":[{"data_type":"Conversation","messages":[{"content":"a","content":"b"}]}]}`, `field original_data.0.messages.0: duplicate key "content"`},
		{"patch", "PATCH", live, `{"summary":"a","summary":"b"}`, `duplicate key "summary"`},
		{"patch: nested", "PATCH", live, `{"event_log":{"t":{"u":1,"u":1}}}`, `field event_log.t: duplicate key "u"`},
		{"batch-get", "POST", "/v1/memcells/batch-get", `{"event_ids":[],"event_ids":["` + ids[0] + `"]}`, `duplicate key "event_ids"`},
		{"flags", "PUT", "/v1/admin/flags", `{"mirroring":true,"validation":"on","mirroring":false}`, `duplicate key "mirroring"`},
		{"jobs", "POST", "/v1/admin/jobs", `{"kind":"verify","kind":"repair"}`, `duplicate key "kind"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			before := e.state()
			r := e.do(tc.method, tc.target, tc.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("%s = %d %.300s, want 400", tc.name, r.status, r.body)
			}
			if code := r.errorCode(t); code != "invalid_argument" {
				t.Errorf("code = %q", code)
			}
			if !strings.Contains(string(r.body), strings.ReplaceAll(tc.mention, `"`, `\"`)) {
				t.Errorf("message %s does not say %s", r.body, tc.mention)
			}
			e.unchanged(before, tc.name)
		})
	}
	e.t = t
	if jobs := e.want(http.StatusOK, "GET", "/v1/admin/jobs", nil); strings.Contains(string(jobs.body), `"id"`) {
		t.Errorf("a refused job body started a job: %s", jobs.body)
	}
	e.want(http.StatusCreated, "POST", "/v1/memcells", `{`+ts+`,"extend":{"a":{"k":1},"b":{"k":2}},"x":[{"k":1},{"k":2}],"k":0}`)
}

// TestRequestTimeout checks Options.RequestTimeout: the request context
// carries the deadline down to the stores, a request that runs past it is
// answered 503 saying so, and a job started through /v1/admin/jobs runs on
// its own context, without the deadline.
func TestRequestTimeout(t *testing.T) {
	var deadline time.Time
	e := newEnv(t, &httpapi.Options{RequestTimeout: time.Second, Ready: func(ctx context.Context) error {
		deadline, _ = ctx.Deadline()
		return nil
	}})
	start := time.Now()
	e.want(http.StatusOK, "GET", "/readyz", nil)
	if deadline.IsZero() || deadline.After(start.Add(time.Second+100*time.Millisecond)) {
		t.Errorf("the request context's deadline is %v, want within 1s of %v", deadline, start)
	}

	// Past its deadline before the primary answers.
	jobDeadline := make(chan bool, 1)
	var runner *httpapi.JobRunner
	e = newEnvWith(t, &httpapi.Options{RequestTimeout: time.Nanosecond}, func(e *env) *httpapi.JobRunner {
		runner = httpapi.NewJobRunner(func(ctx context.Context, kind string, o *reconcile.Options) (*reconcile.Report, error) {
			_, has := ctx.Deadline()
			jobDeadline <- has
			return reconcile.Run(ctx, kind, e.primary, e.kv, o)
		}, nil)
		return runner
	})
	t.Cleanup(func() { _ = runner.Close(context.Background()) })
	e.seed(cell("alice", epoch, "kyoto"))
	for _, target := range []string{"/v1/memcells?user_id=alice", "/v1/memcells/count?keywords=kyoto"} {
		r := e.want(http.StatusServiceUnavailable, "GET", target, nil)
		if code := r.errorCode(t); code != "unavailable" || !strings.Contains(string(r.body), "time limit") {
			t.Errorf("GET %s past its deadline = %s", target, r.body)
		}
	}
	if lines := e.logs.Lines(`request failed`); len(lines) != 0 {
		t.Errorf("a request past its deadline was logged as an internal error: %q", lines)
	}
	if lines := e.logs.Lines(`"level":"WARN"`, `time limit`); len(lines) != 2 {
		t.Errorf("want one WARN line per request past its deadline, got %q", lines)
	}
	var j httpapi.Job
	e.want(http.StatusAccepted, "POST", "/v1/admin/jobs", `{"kind":"verify"}`).decode(t, &j)
	if <-jobDeadline {
		t.Error("the job's context has the request's deadline")
	}
	if j = e.waitJob(j.ID); j.State != httpapi.JobSucceeded {
		t.Errorf("job ended %+v", j)
	}
}
