package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/memcell/memcell/memcelltest"
)

func TestTenths(t *testing.T) {
	start := time.Unix(1000, 0)
	ends := func(n int) []time.Time {
		out := make([]time.Time, n)
		for i := range out {
			out[i] = start.Add(time.Duration(i+1) * 100 * time.Millisecond)
		}
		return out
	}
	got := tenths(start, ends(25))
	if len(got) != 10 {
		t.Fatalf("25 creates: %d tenths, want 10: %+v", len(got), got)
	}
	sum := 0
	for _, tn := range got {
		sum += tn.Documents
		// One create per 100 ms, whatever the tenth's size.
		if tn.Documents < 2 || tn.Documents > 3 || tn.PerSecond < 9.99 || tn.PerSecond > 10.01 {
			t.Errorf("tenth %+v: want 2 or 3 documents at 10/s", tn)
		}
	}
	if sum != 25 {
		t.Errorf("the tenths hold %d creates, want 25", sum)
	}
	if got := tenths(start, ends(3)); len(got) != 3 || got[0].Documents != 1 {
		t.Errorf("3 creates: %+v, want 3 tenths of 1", got)
	}
	if got := tenths(start, nil); len(got) != 0 {
		t.Errorf("no creates: %+v", got)
	}
}

// TestScale runs a small scale run against the API and checks its report
// against what the server holds after it.
func TestScale(t *testing.T) {
	srv := apiServer(t, "", nil)
	const docs, users, samples = 60, 4, 4
	var progress bytes.Buffer
	s, err := NewScale(ScaleConfig{
		URL: srv.URL, Docs: docs, Writers: 3, Users: users, Seed: 4, Samples: samples,
		SampleTime: time.Minute, Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Load(context.Background())
	s.Measure(context.Background(), "after the load")
	rep := s.Report()
	if rep.Failed() > 0 {
		t.Fatalf("errors against a correct server: %v %v", rep.Errors, rep.Failures)
	}
	l := rep.Load
	if l.Documents != docs || l.Create.Requests != docs || l.PerSecond <= 0 || len(l.Tenths) != 10 || l.LastToFirst <= 0 {
		t.Errorf("load: %+v", l)
	}
	sum := 0
	for _, tn := range l.Tenths {
		sum += tn.Documents
	}
	if sum != docs {
		t.Errorf("the tenths hold %d documents, want %d", sum, docs)
	}
	if n := strings.Count(progress.String(), "documents in"); n != 10 {
		t.Errorf("%d progress lines, want 10:\n%s", n, progress.String())
	}
	if len(rep.Measurements) != 1 {
		t.Fatalf("%d measurements", len(rep.Measurements))
	}
	m := rep.Measurements[0]
	if m.Documents != docs || len(m.Kinds) != len(scaleKinds) {
		t.Fatalf("measurement: %+v", m)
	}
	for i, k := range m.Kinds {
		if k.Kind != scaleKinds[i].kind || k.Requests != samples || k.Errors != 0 ||
			k.P50ms <= 0 || k.P90ms < k.P50ms || k.P99ms < k.P90ms || k.MaxMs < k.P99ms {
			t.Errorf("%s: %+v", k.Kind, k)
		}
	}
	// The server holds the documents loaded, less the ones soft deleted.
	var live int
	for i := range users {
		resp, err := http.Get(srv.URL + "/v1/memcells/count?" + url.Values{"user_id": {userID(i)}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		var n struct{ Count int }
		err = json.NewDecoder(resp.Body).Decode(&n)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		live += n.Count
	}
	if live != docs-samples || len(s.docs) != live {
		t.Errorf("%d documents live on the server, %d held by the run; want %d", live, len(s.docs), docs-samples)
	}
	var table bytes.Buffer
	writeScaleTable(&table, rep)
	for _, want := range []string{"by 3 writers", "last tenth / first tenth", "after the load (60 documents)", "list by group", "no errors"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table has no %q:\n%s", want, table.String())
		}
	}
}

// TestScaleFindsFaults serves lists that are wrong and checks that the
// scale run counts them; a kind whose time runs out gets one sample.
func TestScaleFindsFaults(t *testing.T) {
	srv := apiServer(t, "", func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/memcells" && r.Method == http.MethodGet {
				q := r.URL.Query()
				if q.Has("group_id") {
					q.Set("sort", "asc") // oldest first
				} else if q.Get("user_id") == userID(0) { // another user's
					q.Set("user_id", userID(1))
				} else {
					q.Set("user_id", userID(0))
				}
				r.URL.RawQuery = q.Encode()
			}
			h.ServeHTTP(w, r)
		})
	})
	s, err := NewScale(ScaleConfig{URL: srv.URL, Docs: 60, Writers: 2, Users: 3, Seed: 5, Samples: 50, SampleTime: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Load(context.Background())
	s.Measure(context.Background(), "after the load")
	rep := s.Report()
	for _, k := range rep.Measurements[0].Kinds {
		if k.Requests != 1 {
			t.Errorf("%s: %d samples in no time; want 1", k.Kind, k.Requests)
		}
	}
	// One list of each kind, each wrong: the group's is oldest first (the
	// groups hold several documents each), the user's holds another user's.
	if rep.Errors["bad-answer"] != 2 || !strings.Contains(rep.Failures["bad-answer"], "list") {
		t.Errorf("errors %v, first %v; want 2 bad lists", rep.Errors, rep.Failures)
	}
}

// TestScaleServe runs the command as make bench-scale does: it starts the
// memcell binary on the embedded default, loads, times, restarts it, times
// again, and removes its data directory.
func TestScaleServe(t *testing.T) {
	t.Setenv("MEMCELL_ADDR", "not an address") // not passed on to the server
	var out bytes.Buffer
	var errOut memcelltest.Buffer // the server writes its log there too
	err := run(context.Background(), []string{"--serve", serveBinary(t), "--scale", "40", "--clients", "2", "--users", "4",
		"--samples", "3", "--restart", "--json"}, func(string) string { return "" }, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	var rep ScaleReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report %s: %v", out.String(), err)
	}
	if rep.Load.Documents != 40 || len(rep.Measurements) != 2 || rep.Measurements[1].When != "after a restart" ||
		rep.Measurements[1].Documents != 37 || rep.Failed() != 0 {
		t.Errorf("report: %s", out.String())
	}
	dir := regexp.MustCompile(`data in (\S+)`).FindStringSubmatch(errOut.String())
	if dir == nil {
		t.Fatalf("no data directory in the log:\n%s", errOut.String())
	}
	if _, err := os.Stat(dir[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data directory %s is left: %v", dir[1], err)
	}

	// Flags of the mixed run are refused.
	err = run(context.Background(), []string{"--serve", "x", "--scale", "10", "--duration", "1s"}, func(string) string { return "" }, &out, &errOut)
	if !errors.Is(err, errUsage) {
		t.Errorf("--scale with --duration: %v", err)
	}
	err = run(context.Background(), []string{"--scale", "10", "--restart"}, func(string) string { return "" }, &out, &errOut)
	if !errors.Is(err, errUsage) {
		t.Errorf("--restart without --serve: %v", err)
	}
	// A binary that is not memcell cannot run.
	err = run(context.Background(), []string{"--serve", "/bin/false", "--scale", "10"}, func(string) string { return "" }, &out, &errOut)
	if !errors.Is(err, ErrCouldNotRun) {
		t.Errorf("--serve /bin/false: %v", err)
	}
}
