package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// The scale run (--scale N) answers "how does the server do with N
// documents": it loads N documents through the API with a few writers,
// reporting the load's throughput tenth by tenth, then times each kind of
// request alone (one client, a fixed number of samples) against the
// loaded collection.

// KindListGroup is a list by group (GET /v1/memcells?group_id=G&limit=20),
// timed by the scale run only.
const KindListGroup Kind = "list_group"

// groupIDs are the groups newMemCell puts one document in four in.
var groupIDs = []string{"g-travel", "g-work"}

// scaleKinds are the requests a scale run times, in report order, with
// what the report calls them.
var scaleKinds = []struct {
	kind  Kind
	label string
}{
	{KindGet, "GET by id"},
	{KindPatch, "PATCH by id"},
	{KindSoftDelete, "DELETE by id (soft)"},
	{KindList, "list by user (limit 20, newest first)"},
	{KindListGroup, "list by group (limit 20, newest first)"},
	{KindCount, "count by user"},
}

// ScaleConfig is one scale run.
type ScaleConfig struct {
	// URL is the server's base URL; Token, when set, its bearer token.
	URL, Token string
	// Docs is the number of documents to load.
	Docs int
	// Writers is the number of concurrent clients loading them.
	Writers int
	// Users is the number of user ids the documents are spread over.
	Users int
	// Seed seeds the random streams (writer i uses Seed and i).
	Seed uint64
	// Samples is the number of requests timed for each kind.
	Samples int
	// SampleTime bounds the time spent on each kind: a kind whose requests
	// are slow gets fewer samples, at least one (the report says how
	// many).
	SampleTime time.Duration
	// DocBytes is the size of the documents' encoding (~2 KB when 0).
	DocBytes int
	// RequestTimeout bounds each request (5 minutes when 0).
	RequestTimeout time.Duration
	// Client sends the requests; nil means one whose transport keeps one
	// idle connection per writer.
	Client *http.Client
	// Progress, when set, is told as each tenth of the load ends.
	Progress io.Writer
}

// Tenth is the load's throughput over one tenth of the documents.
type Tenth struct {
	// Documents are the creates that ended in this tenth (answered or
	// failed).
	Documents int     `json:"documents"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
}

// LoadReport is the load phase of a scale run.
type LoadReport struct {
	// Documents is the number of documents created.
	Documents int     `json:"documents"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	// Create is the latency of the creates (each writer's next create
	// waits for its last).
	Create Stats `json:"create"`
	// Tenths are the load's ten tenths in order (fewer when Docs < 10).
	Tenths []Tenth `json:"tenths"`
	// LastToFirst is the last tenth's throughput over the first's: below 1
	// the load slowed down as the collection grew.
	LastToFirst float64 `json:"last_to_first"`
}

// KindReport is the timing of one kind of request.
type KindReport struct {
	Kind  Kind   `json:"kind"`
	Label string `json:"label"`
	Stats
}

// Measurement is one pass of timed requests against the loaded
// collection.
type Measurement struct {
	// When says which pass: "after the load", "after a restart".
	When string `json:"when"`
	// Documents is the number of documents live when the pass began.
	Documents int          `json:"documents"`
	Kinds     []KindReport `json:"kinds"`
}

// ScaleReport is the outcome of a scale run.
type ScaleReport struct {
	URL          string        `json:"url"`
	Docs         int           `json:"docs"`
	Writers      int           `json:"writers"`
	Users        int           `json:"users"`
	DocBytes     int           `json:"doc_bytes"`
	Seed         uint64        `json:"seed"`
	Samples      int           `json:"samples"`
	Load         LoadReport    `json:"load"`
	Measurements []Measurement `json:"measurements"`
	// Errors counts the failed requests of every phase by what went wrong,
	// as Report.Errors does; Failures holds the first of each.
	Errors   map[string]int64  `json:"errors_by_status"`
	Failures map[string]string `json:"error_samples,omitempty"`
}

// Scale is a scale run in steps: Load, then Measure as many times as
// wanted (the server may be restarted between them), then Report.
type Scale struct {
	cfg    ScaleConfig
	run    Config // what the clients read
	http   *http.Client
	close  func()
	report ScaleReport
	docs   []owned // the documents loaded and not deleted since
	rounds uint64  // the clients made so far, for their seeds
}

// NewScale checks cfg and prepares a run.
func NewScale(cfg ScaleConfig) (*Scale, error) {
	if cfg.Docs < 1 || cfg.Writers < 1 || cfg.Users < 1 || cfg.Samples < 1 || cfg.SampleTime <= 0 {
		return nil, fmt.Errorf("%w: the documents, writers, users and samples must be at least 1 and the time per kind positive", ErrCouldNotRun)
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 5 * time.Minute
	}
	run := Config{
		URL: cfg.URL, Token: cfg.Token, Clients: cfg.Writers, Duration: time.Second, Users: cfg.Users,
		Seed: cfg.Seed, MaxLive: cfg.Docs, DocBytes: cfg.DocBytes, RequestTimeout: cfg.RequestTimeout,
	}
	if err := run.fill(); err != nil {
		return nil, err
	}
	cfg.URL, cfg.DocBytes = run.URL, run.DocBytes
	s := &Scale{cfg: cfg, run: run, http: cfg.Client, close: func() {}}
	if s.http == nil {
		s.http = &http.Client{Transport: newTransport(cfg.Writers)}
		s.close = s.http.CloseIdleConnections
	}
	s.report = ScaleReport{
		URL: cfg.URL, Docs: cfg.Docs, Writers: cfg.Writers, Users: cfg.Users, DocBytes: cfg.DocBytes,
		Seed: cfg.Seed, Samples: cfg.Samples, Errors: map[string]int64{}, Failures: map[string]string{},
	}
	return s, nil
}

// SetURL points the next steps at another address of the server (a
// restarted one).
func (s *Scale) SetURL(u string) {
	s.close()
	s.run.URL = u
}

// newClient returns a client of the run with a fresh random stream.
func (s *Scale) newClient(kinds []Kind) *client {
	c := newClient(&s.run, s.http, s.rounds, s.cfg.Docs, kinds)
	s.rounds++
	return c
}

// Load creates the documents, Writers at a time, and times it.
func (s *Scale) Load(ctx context.Context) {
	n := s.cfg.Docs
	ends := make([]time.Time, n) // ends[i]: when the i+1-th create ended
	var next, done atomic.Int64
	writers := make([]*client, s.cfg.Writers)
	for i := range writers {
		writers[i] = s.newClient([]Kind{KindCreate})
	}
	var mu sync.Mutex // of Progress
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range writers {
		wg.Go(func() {
			for ctx.Err() == nil && next.Add(1) <= int64(n) {
				c.create(ctx, nil)
				k := int(done.Add(1))
				ends[k-1] = time.Now()
				if s.cfg.Progress != nil && n >= 10 && k%(n/10) == 0 && k/(n/10) <= 10 {
					mu.Lock()
					fmt.Fprintf(s.cfg.Progress, "memcell-load: %d of %d documents in %.1fs\n", k, n, time.Since(start).Seconds())
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	finished := int(done.Load())

	lr := &s.report.Load
	for _, c := range writers {
		s.docs = append(s.docs, c.docs...)
	}
	lr.Documents = len(s.docs)
	if finished > 0 {
		lr.Seconds = ends[finished-1].Sub(start).Seconds()
	}
	if lr.Seconds > 0 {
		lr.PerSecond = float64(lr.Documents) / lr.Seconds
	}
	lr.Tenths = tenths(start, ends[:finished])
	if len(lr.Tenths) > 1 && lr.Tenths[0].PerSecond > 0 {
		lr.LastToFirst = lr.Tenths[len(lr.Tenths)-1].PerSecond / lr.Tenths[0].PerSecond
	}
	lr.Create = s.merge(writers, KindCreate)
}

// tenths splits the creates that ended at ends (in order) into ten
// stretches of as many creates each as can be, and gives each one's
// throughput.
func tenths(start time.Time, ends []time.Time) []Tenth {
	n := len(ends)
	var out []Tenth
	for d := range 10 {
		lo, hi := d*n/10, (d+1)*n/10
		if hi == lo {
			continue
		}
		from := start
		if lo > 0 {
			from = ends[lo-1]
		}
		t := Tenth{Documents: hi - lo, Seconds: ends[hi-1].Sub(from).Seconds()}
		if t.Seconds > 0 {
			t.PerSecond = float64(t.Documents) / t.Seconds
		}
		out = append(out, t)
	}
	return out
}

// Measure times each kind of request of scaleKinds alone, one request at a
// time, Samples of each (fewer, but at least one, when a kind's SampleTime
// runs out; fewer when soft deletes run out of documents), and adds the pass to the report
// under when.
func (s *Scale) Measure(ctx context.Context, when string) {
	kinds := make([]Kind, len(scaleKinds))
	for i, k := range scaleKinds {
		kinds[i] = k.kind
	}
	c := s.newClient(kinds)
	for _, d := range s.docs {
		c.index[d.id] = len(c.docs)
		c.docs = append(c.docs, d)
	}
	m := Measurement{When: when, Documents: len(c.docs)}
	// The reads and the patches first, on the whole collection; the soft
	// deletes last, as they take documents away.
	for _, k := range []Kind{KindGet, KindPatch, KindList, KindListGroup, KindCount, KindSoftDelete} {
		deadline := time.Now().Add(s.cfg.SampleTime)
		for i := 0; i < s.cfg.Samples && (i == 0 || time.Now().Before(deadline)) && ctx.Err() == nil; i++ {
			if k != KindList && k != KindListGroup && k != KindCount && len(c.docs) == 0 {
				break
			}
			switch k {
			case KindGet:
				c.plainGet(ctx, c.pick())
			case KindPatch:
				c.patch(ctx, c.pick())
			case KindList:
				c.listBy(ctx, KindList, "user_id", c.user())
			case KindListGroup:
				c.listBy(ctx, KindListGroup, "group_id", groupIDs[c.rng.IntN(len(groupIDs))])
			case KindCount:
				c.count(ctx)
			case KindSoftDelete:
				d := c.pick()
				if c.softDelete(ctx, d) {
					c.forget(d.id)
				}
			}
		}
	}
	for _, k := range scaleKinds {
		m.Kinds = append(m.Kinds, KindReport{Kind: k.kind, Label: k.label, Stats: s.merge([]*client{c}, k.kind)})
	}
	s.docs = c.docs
	s.report.Measurements = append(s.report.Measurements, m)
}

// merge gathers the clients' numbers for kind and adds their errors to
// the report's.
func (s *Scale) merge(clients []*client, k Kind) Stats {
	h, n, errs := gather(clients, k, s.report.Errors)
	for _, c := range clients {
		for key, sample := range c.samples {
			if _, ok := s.report.Failures[key]; !ok {
				s.report.Failures[key] = sample
			}
		}
	}
	return stats(h, n, errs)
}

// Report returns the run's report and releases its connections.
func (s *Scale) Report() *ScaleReport {
	s.close()
	return &s.report
}

// Failed counts the failed requests of the run so far.
func (r *ScaleReport) Failed() int64 {
	var n int64
	for _, v := range r.Errors {
		n += v
	}
	return n
}

// plainGet reads a document as an application does (GET by id, no
// validation) and checks that it is the last state written.
func (c *client) plainGet(ctx context.Context, d owned) {
	path := "/v1/memcells/" + d.id
	a := c.do(ctx, KindGet, http.MethodGet, path, nil)
	if c.expect(KindGet, a, http.StatusOK, "GET "+path) {
		c.same(KindGet, "GET "+path, d, a.body)
	}
}

// listBy asks for the newest 20 documents whose field is value and checks
// the page: at most 20, each with that value, newest first.
func (c *client) listBy(ctx context.Context, k Kind, field, value string) {
	path := "/v1/memcells?" + url.Values{field: {value}, "limit": {"20"}}.Encode()
	a := c.do(ctx, k, http.MethodGet, path, nil)
	if !c.expect(k, a, http.StatusOK, "GET "+path) {
		return
	}
	var page struct {
		Memcells []map[string]any `json:"memcells"`
		Count    *int             `json:"count"`
	}
	err := json.Unmarshal(a.body, &page)
	if err == nil && (page.Count == nil || *page.Count != len(page.Memcells) || len(page.Memcells) > 20) {
		err = fmt.Errorf("count %v for %d memcells", page.Count, len(page.Memcells))
	}
	var last time.Time
	for i, m := range page.Memcells {
		if err != nil {
			break
		}
		ts, _ := m["timestamp"].(string)
		t, perr := time.Parse(time.RFC3339Nano, ts)
		switch {
		case m[field] != value:
			err = fmt.Errorf("memcell %d has %s %v", i, field, m[field])
		case perr != nil:
			err = fmt.Errorf("memcell %d: timestamp: %v", i, perr)
		case i > 0 && t.After(last):
			err = fmt.Errorf("memcell %d is newer than the one before it", i)
		}
		last = t
	}
	if err != nil {
		c.fail(k, "bad-answer", fmt.Sprintf("GET %s: %v: %.200s", path, err, a.body))
	}
}

// writeScaleTable writes a scale report for a person.
func writeScaleTable(w io.Writer, r *ScaleReport) {
	l := r.Load
	writers := "writers"
	if r.Writers == 1 {
		writers = "writer"
	}
	fmt.Fprintf(w, "load: %d of %d documents (~%d bytes, %d users) by %d %s in %.1fs: %.0f documents/s; create p50 %.2f ms, p99 %.2f ms\n",
		l.Documents, r.Docs, r.DocBytes, r.Users, r.Writers, writers, l.Seconds, l.PerSecond, l.Create.P50ms, l.Create.P99ms)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tenth\tdocuments\tseconds\tdocuments/s\t")
	for i, t := range l.Tenths {
		fmt.Fprintf(tw, "%d\t%d\t%.2f\t%.0f\t\n", i+1, t.Documents, t.Seconds, t.PerSecond)
	}
	tw.Flush()
	if len(l.Tenths) > 1 {
		fmt.Fprintf(w, "last tenth / first tenth: %.2f\n", l.LastToFirst)
	}
	for _, m := range r.Measurements {
		fmt.Fprintf(w, "\n%s (%d documents), one request at a time:\n", m.When, m.Documents)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "request\tsamples\terrors\tp50 ms\tp90 ms\tp99 ms\tmax ms\t")
		for _, k := range m.Kinds {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t\n", k.Label, k.Requests, k.Errors, k.P50ms, k.P90ms, k.P99ms, k.MaxMs)
		}
		tw.Flush()
	}
	if len(r.Errors) == 0 {
		fmt.Fprintln(w, "no errors")
		return
	}
	fmt.Fprintln(w, "errors by status:")
	for _, key := range slices.Sorted(maps.Keys(r.Errors)) {
		fmt.Fprintf(w, "  %s: %d (first: %s)\n", key, r.Errors[key], r.Failures[key])
	}
}
