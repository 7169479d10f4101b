package main

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// dashboardFile is the Grafana dashboard that ships with memcell.
const dashboardFile = "../../deploy/grafana/memcell.json"

// scrapeSeries are the series Prometheus makes of every scrape itself;
// no exporter has them.
var scrapeSeries = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped"}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"job", "instance"}

// dashboard is what the test reads of a Grafana dashboard.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

// queries returns every PromQL expression of the dashboard, each with where
// it is: the panels' targets and the query variables.
func (d *dashboard) queries(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for i, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q: target %d has no expr", p.Title, i)
				}
				out[tg.Expr] = "panel " + p.Title
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var s string
			if err := json.Unmarshal(v.Query, &s); err != nil {
				t.Fatalf("variable %s: query %s is neither a string nor an object", v.Name, v.Query)
			}
			q.Query = s
		}
		out[q.Query] = "variable " + v.Name
	}
	return out
}

var (
	// groupings are the label lists of by (...) and without (...).
	groupings = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	// selectors are the label matchers of a series selector, {...}.
	selectors = regexp.MustCompile(`\{([^}]*)\}`)
	matcher   = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	// metricName is a metric of memcell or of the Go and process
	// collectors, or a series of the scrape itself, once the label lists
	// are gone.
	metricName = regexp.MustCompile(`\b(?:(?:memcell|go|process)_[a-zA-Z0-9_]+|up|scrape_[a-z_]+)\b`)
)

// promQLNames returns the metric names and the label names a PromQL
// expression uses.
func promQLNames(expr string) (metrics, labels []string) {
	for _, m := range groupings.FindAllStringSubmatch(expr, -1) {
		for l := range strings.SplitSeq(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
	}
	for _, m := range selectors.FindAllStringSubmatch(expr, -1) {
		for _, l := range matcher.FindAllStringSubmatch(m[1], -1) {
			labels = append(labels, l[1])
		}
	}
	bare := groupings.ReplaceAllString(selectors.ReplaceAllString(expr, "{}"), "by ()")
	metrics = metricName.FindAllString(bare, -1)
	return metrics, labels
}

// exposition is what a /metrics page says: each family's type, and the
// label names of each family's samples.
type exposition struct {
	types  map[string]string          // family: counter, gauge, histogram, summary, untyped
	labels map[string]map[string]bool // family: label names of its samples
}

var (
	typeLine   = regexp.MustCompile(`^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) ([a-z]+)$`)
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? `)
	labelName  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
)

func parseExposition(page string) *exposition {
	e := &exposition{types: map[string]string{}, labels: map[string]map[string]bool{}}
	for l := range strings.Lines(page) {
		l = strings.TrimRight(l, "\n")
		if m := typeLine.FindStringSubmatch(l); m != nil {
			e.types[m[1]] = m[2]
			continue
		}
		m := sampleLine.FindStringSubmatch(l)
		if m == nil || strings.HasPrefix(l, "#") {
			continue
		}
		fam, ok := e.family(m[1])
		if !ok {
			continue
		}
		if e.labels[fam] == nil {
			e.labels[fam] = map[string]bool{}
		}
		for _, n := range labelName.FindAllStringSubmatch(m[2], -1) {
			e.labels[fam][n[1]] = true
		}
	}
	return e
}

// family returns the family of a series name: itself, or the histogram or
// summary whose _bucket, _sum or _count it is.
func (e *exposition) family(series string) (string, bool) {
	if _, ok := e.types[series]; ok {
		return series, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(series, suffix)
		if !ok {
			continue
		}
		switch e.types[base] {
		case "histogram":
			return base, true
		case "summary":
			return base, suffix != "_bucket"
		}
	}
	return "", false
}

// TestDashboardQueriesExported checks deploy/grafana/memcell.json: it is a
// dashboard Grafana imports (a uid, schemaVersion 39, every panel on the
// datasource variable), and every metric its panels and variables query,
// and every label they group or match by, is exported by a running
// memcell serve, on its /metrics after a few requests and a job have made
// the lazily created series. It also checks that serve --pprof serves the
// profiles.
func TestDashboardQueriesExported(t *testing.T) {
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion != 39 {
		t.Errorf("dashboard uid %q, title %q, schemaVersion %d; want a uid, a title, 39", d.UID, d.Title, d.SchemaVersion)
	}
	hasDatasource := slices.ContainsFunc(d.Templating.List, func(v struct {
		Name  string          `json:"name"`
		Type  string          `json:"type"`
		Query json.RawMessage `json:"query"`
	}) bool {
		return v.Name == "datasource" && v.Type == "datasource"
	})
	if !hasDatasource {
		t.Error("the dashboard has no datasource variable named datasource")
	}
	ids := map[int]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if other, ok := ids[p.ID]; ok || p.ID == 0 {
				t.Errorf("panel %q: id %d is missing or also %q's", p.Title, p.ID, other)
			}
			ids[p.ID] = p.Title
			if p.Type != "row" && (p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}") {
				t.Errorf("panel %q: datasource %+v, want prometheus, the variable ${datasource}", p.Title, p.Datasource)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	queries := d.queries(t)

	s := startServer(t, nil, "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0", "--pprof")
	var created doc
	s.want("POST", "/v1/memcells", doc{"user_id": "dash", "timestamp": "2026-01-10T10:30:00Z", "summary": "dashboard", "type": "Conversation"}, http.StatusCreated, &created)
	id, _ := created["event_id"].(string)
	s.want("GET", "/v1/memcells/"+id, nil, http.StatusOK, nil)
	s.want("GET", "/v1/memcells/nosuch", nil, http.StatusBadRequest, nil)
	var job struct {
		ID, State string
	}
	s.want("POST", "/v1/admin/jobs", doc{"kind": "verify"}, http.StatusAccepted, &job)
	for deadline := time.Now().Add(time.Minute); job.State == "queued" || job.State == "running"; {
		if time.Now().After(deadline) {
			t.Fatalf("the verify job is still %s after a minute", job.State)
		}
		time.Sleep(50 * time.Millisecond)
		s.want("GET", "/v1/admin/jobs/"+job.ID, nil, http.StatusOK, &job)
	}
	if job.State != "succeeded" {
		t.Errorf("verify job %s", job.State)
	}
	if resp, body := s.call("GET", "/debug/pprof/", "", nil, nil); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Errorf("GET /debug/pprof/ with --pprof = %d %.200s", resp.StatusCode, body)
	}
	_, page := s.call("GET", "/metrics", "", nil, nil)
	s.stop()
	exp := parseExposition(string(page))

	used := map[string]bool{}
	for expr, where := range queries {
		metrics, labels := promQLNames(expr)
		if len(metrics) == 0 {
			t.Errorf("%s: no metric found in %q", where, expr)
		}
		have := map[string]bool{}
		for _, l := range targetLabels {
			have[l] = true
		}
		for _, m := range metrics {
			if slices.Contains(scrapeSeries, m) {
				continue
			}
			fam, ok := exp.family(m)
			if !ok {
				t.Errorf("%s: %s is not on memcell's /metrics (query %q)", where, m, expr)
				continue
			}
			used[fam] = true
			for l := range exp.labels[fam] {
				have[l] = true
			}
		}
		for _, l := range labels {
			if !have[l] {
				t.Errorf("%s: no series of %v has the label %q (query %q)", where, metrics, l, expr)
			}
		}
	}
	// The families the dashboard is about: a panel for each.
	for _, want := range []string{
		"memcell_kv_write_failures_total", "memcell_kv_read_failures_total", "memcell_data_inconsistencies_total",
		"memcell_kv_write_latency_seconds", "memcell_kv_read_latency_seconds", "memcell_validations_total",
		"memcell_kv_operations_total", "memcell_http_requests_total", "memcell_http_request_duration_seconds",
		"memcell_pending_records", "memcell_replayed_total", "memcell_intents_cleared_total", "memcell_intents_left_total",
		"memcell_job_documents_scanned_total", "memcell_job_differences_total", "memcell_build_info",
		"process_resident_memory_bytes", "go_goroutines",
	} {
		if !used[want] {
			t.Errorf("no panel queries %s", want)
		}
	}
}
