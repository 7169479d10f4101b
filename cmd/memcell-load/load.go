package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/time/rate"

	"github.com/memcell/memcell"
)

// Kind names one kind of request the load sends; the report keeps its
// latencies and errors apart.
type Kind string

// The kinds of request, in the order the report lists them.
const (
	KindCreate     Kind = "create"      // POST /v1/memcells, a ~2 KB MemCell
	KindGet        Kind = "get"         // GET /v1/memcells/{id}?validate=true
	KindPatch      Kind = "patch"       // PATCH /v1/memcells/{id}
	KindList       Kind = "list"        // GET /v1/memcells?user_id=U&limit=20
	KindCount      Kind = "count"       // GET /v1/memcells/count?user_id=U
	KindSoftDelete Kind = "soft_delete" // DELETE /v1/memcells/{id}, then a restore
	KindRestore    Kind = "restore"     // POST /v1/memcells/{id}/restore
	KindHardDelete Kind = "hard_delete" // DELETE /v1/memcells/{id}?hard=true
	KindBatchGet   Kind = "batch_get"   // POST /v1/memcells/batch-get, up to 10 ids, validated
)

// Kinds lists every kind in report order.
var Kinds = []Kind{KindCreate, KindGet, KindPatch, KindList, KindCount, KindSoftDelete, KindRestore, KindHardDelete, KindBatchGet}

// Mix weighs the operations a client picks from. An operation is a kind,
// except that a soft_delete is always followed by the restore of the same
// document (so restore has no weight of its own).
type Mix map[Kind]int

// DefaultMix is the mix without --mix: mostly reads, every write kind.
var DefaultMix = Mix{
	KindGet: 35, KindBatchGet: 15, KindPatch: 15, KindCreate: 10,
	KindList: 8, KindHardDelete: 7, KindCount: 5, KindSoftDelete: 5,
}

// ParseMix reads "get=35,create=10,...": the weights given replace the
// defaults entirely (kinds not named get 0).
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("mix %q: %q is not kind=weight", s, part)
		}
		k := Kind(strings.TrimSpace(name))
		if !slices.Contains(Kinds, k) || k == KindRestore {
			return nil, fmt.Errorf("mix %q: unknown kind %q (one of create, get, patch, list, count, soft_delete, hard_delete, batch_get)", s, name)
		}
		w, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || w < 0 {
			return nil, fmt.Errorf("mix %q: weight of %s must be a whole number ≥ 0", s, k)
		}
		m[k] = w
	}
	total := 0
	for _, w := range m {
		total += w
	}
	if total == 0 {
		return nil, fmt.Errorf("mix %q: no kind has a weight", s)
	}
	return m, nil
}

// String is the mix in ParseMix's form, kinds in report order.
func (m Mix) String() string {
	var parts []string
	for _, k := range Kinds {
		if w := m[k]; w > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, w))
		}
	}
	return strings.Join(parts, ",")
}

// Config is one load run.
type Config struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// Token, when set, is sent as "Authorization: Bearer <token>". It is
	// never printed.
	Token string
	// Clients is the number of concurrent clients, each a closed loop: it
	// sends its next request when the last one is answered.
	Clients int
	// Duration bounds the timed run.
	Duration time.Duration
	// Rate caps the requests per second of all clients together (a token
	// bucket without burst; the wait for a token is not part of a
	// request's latency); 0 sends as fast as the server answers.
	Rate float64
	// Mix weighs the operations; nil means DefaultMix.
	Mix Mix
	// Users is the number of user ids the documents are spread over, and
	// list and count ask for.
	Users int
	// Seed seeds each client's random stream (client i uses Seed and i).
	Seed uint64
	// MaxLive caps the live documents of the run: each client holds at most
	// its share, and a create at the cap first hard-deletes one of its
	// documents (both are counted). It keeps the collection, and so the
	// cost of list and count, bounded.
	MaxLive int
	// Prefill makes each client create its share of MaxLive before the
	// timed run starts; those creates are checked (a failure is counted)
	// but neither timed nor counted as requests.
	Prefill bool
	// DocBytes is the size of the created documents' encoding (~2 KB).
	DocBytes int
	// RequestTimeout bounds each request (30 s when 0).
	RequestTimeout time.Duration
	// Client sends the requests; nil means a client whose transport keeps
	// one idle connection per client.
	Client *http.Client
}

// Stats are one kind's numbers (or all kinds', for Report.Overall).
// Latencies are in milliseconds.
type Stats struct {
	Requests int64            `json:"requests"`
	Errors   int64            `json:"errors"`
	P50ms    float64          `json:"p50_ms"`
	P90ms    float64          `json:"p90_ms"`
	P99ms    float64          `json:"p99_ms"`
	MaxMs    float64          `json:"max_ms"`
	MeanMs   float64          `json:"mean_ms"`
	ByStatus map[string]int64 `json:"errors_by_status,omitempty"`
}

// Report is the outcome of a run.
type Report struct {
	URL       string  `json:"url"`
	Clients   int     `json:"clients"`
	Rate      float64 `json:"rate,omitempty"`
	Mix       string  `json:"mix"`
	Seed      uint64  `json:"seed"`
	Users     int     `json:"users"`
	MaxLive   int     `json:"max_live"`
	Prefilled int64   `json:"prefilled"`
	// Started is when the timed run began (after the prefill).
	Started    time.Time `json:"started"`
	Seconds    float64   `json:"seconds"`
	Throughput float64   `json:"requests_per_second"`
	// Live is the number of documents the clients hold at the end.
	Live    int            `json:"live"`
	Overall Stats          `json:"overall"`
	Kinds   map[Kind]Stats `json:"kinds"`
	// Errors counts the failed requests by what went wrong: the HTTP status
	// of an unexpected answer ("404", "500"), "transport" (no answer),
	// "mismatch" (a document that is not the one last written),
	// "validation:<outcome>" (a validated read that was not consistent) or
	// "bad-answer" (a body that is not what the route answers).
	Errors map[string]int64 `json:"errors_by_status"`
	// Samples holds the first failure of each key of Errors.
	Samples map[string]string `json:"error_samples,omitempty"`
}

// ServerErrors counts the answers with a 5xx status.
func (r *Report) ServerErrors() int64 {
	var n int64
	for k, v := range r.Errors {
		if code, err := strconv.Atoi(k); err == nil && code >= 500 {
			n += v
		}
	}
	return n
}

// ErrCouldNotRun marks a run that could not start (a bad configuration,
// no server).
var ErrCouldNotRun = errors.New("could not run")

// histogram bounds: 1 µs to 5 minutes, 3 significant digits.
const (
	histLowest  = int64(time.Microsecond)
	histHighest = int64(5 * time.Minute)
)

// gather gathers the clients' latencies, request count and errors of kind k,
// and adds the errors to total too.
func gather(clients []*client, k Kind, total map[string]int64) (*hdrhistogram.Histogram, int64, map[string]int64) {
	h := newHistogram()
	errs := map[string]int64{}
	var n int64
	for _, c := range clients {
		t := c.tallies[k]
		h.Merge(t.hist)
		n += t.requests
		for key, v := range t.errors {
			errs[key] += v
			total[key] += v
		}
	}
	return h, n, errs
}

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, 3)
}

// tally is one client's numbers for one kind. Each client has its own, so
// recording takes no lock; Run merges them at the end.
type tally struct {
	hist     *hdrhistogram.Histogram
	errors   map[string]int64
	requests int64
}

// owned is a document a client created, with the API representation of
// its last state the server answered.
type owned struct {
	id   string
	body []byte
}

// client is one closed loop. It works only on the documents it created,
// so a validated read never races another client's write of the same
// document: any answer other than the last state written is a finding.
type client struct {
	cfg     *Config
	http    *http.Client
	rng     *rand.Rand
	max     int // its share of MaxLive
	docs    []owned
	index   map[string]int // id -> position in docs
	limiter *rate.Limiter  // nil: no cap
	until   time.Time      // the end of the timed run
	tallies map[Kind]*tally
	samples map[string]string
	picks   []Kind // the mix, expanded for weighted picks
}

// Run drives the server at cfg.URL for cfg.Duration and returns the
// report. It fails only when the run could not start; failed requests are
// counted in the report. Cancelling ctx ends the run early (requests cut
// off by it are not counted).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	hc := cfg.Client
	if hc == nil {
		hc = &http.Client{Transport: newTransport(cfg.Clients)}
		defer hc.CloseIdleConnections()
	}
	var picks []Kind
	for _, k := range Kinds {
		for range cfg.Mix[k] {
			picks = append(picks, k)
		}
	}
	clients := make([]*client, cfg.Clients)
	for i := range clients {
		share := cfg.MaxLive / cfg.Clients
		if i < cfg.MaxLive%cfg.Clients {
			share++
		}
		clients[i] = newClient(&cfg, hc, uint64(i), max(share, 1), Kinds)
		clients[i].picks = picks
	}

	var prefilled int64
	if cfg.Prefill {
		var wg sync.WaitGroup
		counts := make([]int64, len(clients))
		for i, c := range clients {
			wg.Go(func() { counts[i] = c.prefill(ctx) })
		}
		wg.Wait()
		for _, n := range counts {
			prefilled += n
		}
		// Their failures count; their times and numbers do not.
		for _, c := range clients {
			for _, t := range c.tallies {
				t.hist.Reset()
				t.requests = 0
			}
		}
	}

	start := time.Now()
	end := start.Add(cfg.Duration)
	if cfg.Rate > 0 {
		limiter := rate.NewLimiter(rate.Limit(cfg.Rate), 1)
		for _, c := range clients {
			c.limiter, c.until = limiter, end
		}
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				c.step(ctx)
			}
		})
	}
	wg.Wait()
	r := report(&cfg, clients, time.Since(start), prefilled)
	r.Started = start
	return r, nil
}

// newClient returns client number i of cfg's run, holding at most max
// documents, with a tally for each of kinds.
func newClient(cfg *Config, hc *http.Client, i uint64, max int, kinds []Kind) *client {
	c := &client{
		cfg: cfg, http: hc, rng: rand.New(rand.NewPCG(cfg.Seed, i)), max: max,
		index: map[string]int{}, tallies: map[Kind]*tally{}, samples: map[string]string{},
	}
	for _, k := range kinds {
		c.tallies[k] = &tally{hist: newHistogram(), errors: map[string]int64{}}
	}
	return c
}

// newTransport returns the transport of a run of n concurrent clients: one
// idle connection kept for each.
func newTransport(n int) *http.Transport {
	return &http.Transport{
		MaxIdleConns: n, MaxIdleConnsPerHost: n,
		IdleConnTimeout: 90 * time.Second, DisableCompression: true,
	}
}

// fill checks cfg and sets its defaults.
func (cfg *Config) fill() error {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: the server URL %q is not an http(s) URL", ErrCouldNotRun, cfg.URL)
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	if cfg.Clients < 1 {
		return fmt.Errorf("%w: clients must be at least 1", ErrCouldNotRun)
	}
	if cfg.Duration <= 0 {
		return fmt.Errorf("%w: the duration must be positive", ErrCouldNotRun)
	}
	if cfg.Rate < 0 {
		return fmt.Errorf("%w: the rate must not be negative", ErrCouldNotRun)
	}
	if cfg.Users < 1 {
		return fmt.Errorf("%w: users must be at least 1", ErrCouldNotRun)
	}
	if cfg.MaxLive < 1 {
		return fmt.Errorf("%w: max-live must be at least 1", ErrCouldNotRun)
	}
	if cfg.Mix == nil {
		cfg.Mix = DefaultMix
	}
	if cfg.DocBytes == 0 {
		cfg.DocBytes = 2048
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	return nil
}

// report merges the clients' tallies.
func report(cfg *Config, clients []*client, elapsed time.Duration, prefilled int64) *Report {
	r := &Report{
		URL: cfg.URL, Clients: cfg.Clients, Rate: cfg.Rate, Mix: cfg.Mix.String(), Seed: cfg.Seed, Users: cfg.Users,
		MaxLive: cfg.MaxLive, Prefilled: prefilled, Seconds: elapsed.Seconds(),
		Kinds: map[Kind]Stats{}, Errors: map[string]int64{}, Samples: map[string]string{},
	}
	all := newHistogram()
	allErrors := map[string]int64{}
	for _, k := range Kinds {
		h, n, errs := gather(clients, k, allErrors)
		all.Merge(h)
		r.Overall.Requests += n
		if n > 0 {
			r.Kinds[k] = stats(h, n, errs)
		}
	}
	r.Overall = stats(all, r.Overall.Requests, allErrors)
	r.Errors = allErrors
	for _, c := range clients {
		r.Live += len(c.docs)
		for key, s := range c.samples {
			if _, ok := r.Samples[key]; !ok {
				r.Samples[key] = s
			}
		}
	}
	if r.Seconds > 0 {
		r.Throughput = float64(r.Overall.Requests) / r.Seconds
	}
	return r
}

func stats(h *hdrhistogram.Histogram, n int64, errs map[string]int64) Stats {
	ms := func(v int64) float64 { return float64(v) / float64(time.Millisecond) }
	s := Stats{Requests: n, ByStatus: errs}
	for _, v := range errs {
		s.Errors += v
	}
	if h.TotalCount() > 0 {
		s.P50ms, s.P90ms, s.P99ms, s.MaxMs = ms(h.ValueAtQuantile(50)), ms(h.ValueAtQuantile(90)), ms(h.ValueAtQuantile(99)), ms(h.Max())
		s.MeanMs = h.Mean() / float64(time.Millisecond)
	}
	return s
}

// prefill creates documents until the client holds its share of MaxLive
// and returns how many it created.
func (c *client) prefill(ctx context.Context) int64 {
	var n int64
	for len(c.docs) < c.max && ctx.Err() == nil {
		before := len(c.docs)
		c.create(ctx, nil)
		if len(c.docs) == before {
			return n // a failure: counted in the tallies, do not spin
		}
		n++
	}
	return n
}

// step sends one operation of the mix (two for a soft delete and its
// restore, or for a create at the cap).
func (c *client) step(ctx context.Context) {
	k := c.picks[c.rng.IntN(len(c.picks))]
	if len(c.docs) == 0 && k != KindList && k != KindCount {
		k = KindCreate // nothing to read or change yet
	}
	switch k {
	case KindCreate:
		if len(c.docs) >= c.max {
			c.hardDelete(ctx, c.pick())
		}
		if len(c.docs) < c.max {
			c.create(ctx, nil)
		}
	case KindGet:
		c.get(ctx, c.pick())
	case KindPatch:
		c.patch(ctx, c.pick())
	case KindList:
		c.list(ctx)
	case KindCount:
		c.count(ctx)
	case KindSoftDelete:
		d := c.pick()
		if c.softDelete(ctx, d) {
			c.restore(ctx, d)
		}
	case KindHardDelete:
		c.hardDelete(ctx, c.pick())
	case KindBatchGet:
		c.batchGet(ctx)
	}
}

// pick returns a random document of the client's.
func (c *client) pick() owned {
	return c.docs[c.rng.IntN(len(c.docs))]
}

// answer is one response.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request, times it under kind and returns the answer; nil
// when the request got no answer (counted as "transport" unless ctx ended).
func (c *client) do(ctx context.Context, k Kind, method, path string, body []byte) *answer {
	if c.limiter != nil {
		// A token due after the end of the run is not waited for.
		wctx, cancel := context.WithDeadline(ctx, c.until)
		err := c.limiter.Wait(wctx)
		cancel()
		if err != nil {
			return nil // the run is over
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.URL+path, rd)
	if err != nil {
		c.fail(k, "transport", err.Error())
		return nil
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	var data []byte
	if err == nil {
		data, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	d := time.Since(start)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil // the run was cancelled: not the server's failure
		}
		c.record(k, d)
		c.fail(k, "transport", method+" "+path+": "+err.Error())
		return nil
	}
	c.record(k, d)
	return &answer{status: resp.StatusCode, header: resp.Header, body: data}
}

func (c *client) record(k Kind, d time.Duration) {
	t := c.tallies[k]
	t.requests++
	_ = t.hist.RecordValue(min(max(int64(d), histLowest), histHighest))
}

// fail counts a failed request under key and keeps the first sample.
func (c *client) fail(k Kind, key, sample string) {
	c.tallies[k].errors[key]++
	if _, ok := c.samples[key]; !ok {
		if len(sample) > 300 {
			sample = sample[:300] + "…"
		}
		c.samples[key] = string(k) + ": " + sample
	}
}

// expect checks the status of an answer; any other is an error named by
// the status.
func (c *client) expect(k Kind, a *answer, status int, what string) bool {
	if a == nil {
		return false
	}
	if a.status != status {
		c.fail(k, strconv.Itoa(a.status), fmt.Sprintf("%s: %d %s", what, a.status, a.body))
		return false
	}
	return true
}

// create stores a new document (body, or a generated ~2 KB MemCell).
func (c *client) create(ctx context.Context, body []byte) {
	if body == nil {
		body = newMemCell(c.rng, c.cfg.Users, c.cfg.DocBytes)
	}
	a := c.do(ctx, KindCreate, http.MethodPost, "/v1/memcells", body)
	if !c.expect(KindCreate, a, http.StatusCreated, "POST /v1/memcells") {
		return
	}
	var created struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal(a.body, &created); err != nil {
		c.fail(KindCreate, "bad-answer", fmt.Sprintf("POST /v1/memcells: %v: %s", err, a.body))
		return
	}
	if _, err := memcell.ParseID(created.EventID); err != nil || a.header.Get("Location") != "/v1/memcells/"+created.EventID {
		c.fail(KindCreate, "bad-answer", fmt.Sprintf("POST /v1/memcells: event_id %q, Location %q", created.EventID, a.header.Get("Location")))
		return
	}
	c.index[created.EventID] = len(c.docs)
	c.docs = append(c.docs, owned{id: created.EventID, body: bytes.TrimSpace(a.body)})
}

// update remembers the state the server answered for id.
func (c *client) update(id string, body []byte) {
	if i, ok := c.index[id]; ok {
		c.docs[i].body = bytes.TrimSpace(body)
	}
}

// forget drops id from the client's documents.
func (c *client) forget(id string) {
	i, ok := c.index[id]
	if !ok {
		return
	}
	last := len(c.docs) - 1
	c.docs[i] = c.docs[last]
	c.index[c.docs[i].id] = i
	c.docs = c.docs[:last]
	delete(c.index, id)
}

// same checks that a document answered is the last state the client saw.
func (c *client) same(k Kind, what string, d owned, got []byte) bool {
	if !bytes.Equal(bytes.TrimSpace(got), d.body) {
		c.fail(k, "mismatch", fmt.Sprintf("%s: answered %s, last written %s", what, got, d.body))
		return false
	}
	return true
}

// consistent checks a validated read's Memcell-Validation header.
func (c *client) consistent(k Kind, what string, a *answer) bool {
	if v := a.header.Get("Memcell-Validation"); v != "consistent" {
		c.fail(k, "validation:"+v, fmt.Sprintf("%s: Memcell-Validation %q", what, v))
		return false
	}
	return true
}

func (c *client) get(ctx context.Context, d owned) {
	path := "/v1/memcells/" + d.id + "?validate=true"
	a := c.do(ctx, KindGet, http.MethodGet, path, nil)
	if c.expect(KindGet, a, http.StatusOK, "GET "+path) && c.consistent(KindGet, "GET "+path, a) {
		c.same(KindGet, "GET "+path, d, a.body)
	}
}

func (c *client) patch(ctx context.Context, d owned) {
	body, _ := json.Marshal(map[string]any{
		"summary":  fmt.Sprintf("load edit %x", c.rng.Uint32()),
		"keywords": []string{keywords[c.rng.IntN(len(keywords))], "edited"},
	})
	path := "/v1/memcells/" + d.id
	a := c.do(ctx, KindPatch, http.MethodPatch, path, body)
	if c.expect(KindPatch, a, http.StatusOK, "PATCH "+path) {
		c.update(d.id, a.body)
	}
}

func (c *client) list(ctx context.Context) {
	path := "/v1/memcells?" + url.Values{"user_id": {c.user()}, "limit": {"20"}}.Encode()
	a := c.do(ctx, KindList, http.MethodGet, path, nil)
	if !c.expect(KindList, a, http.StatusOK, "GET "+path) {
		return
	}
	var page struct {
		Memcells []json.RawMessage `json:"memcells"`
		Count    *int              `json:"count"`
	}
	if err := json.Unmarshal(a.body, &page); err != nil || page.Count == nil || *page.Count != len(page.Memcells) || len(page.Memcells) > 20 {
		c.fail(KindList, "bad-answer", fmt.Sprintf("GET %s: %v: %.200s", path, err, a.body))
	}
}

func (c *client) count(ctx context.Context) {
	path := "/v1/memcells/count?" + url.Values{"user_id": {c.user()}}.Encode()
	a := c.do(ctx, KindCount, http.MethodGet, path, nil)
	if !c.expect(KindCount, a, http.StatusOK, "GET "+path) {
		return
	}
	var n struct {
		Count *int64 `json:"count"`
	}
	if err := json.Unmarshal(a.body, &n); err != nil || n.Count == nil || *n.Count < 0 {
		c.fail(KindCount, "bad-answer", fmt.Sprintf("GET %s: %v: %s", path, err, a.body))
	}
}

func (c *client) softDelete(ctx context.Context, d owned) bool {
	path := "/v1/memcells/" + d.id + "?deleted_by=memcell-load"
	return c.expect(KindSoftDelete, c.do(ctx, KindSoftDelete, http.MethodDelete, path, nil), http.StatusNoContent, "DELETE "+path)
}

func (c *client) restore(ctx context.Context, d owned) {
	path := "/v1/memcells/" + d.id + "/restore"
	a := c.do(ctx, KindRestore, http.MethodPost, path, nil)
	if !c.expect(KindRestore, a, http.StatusOK, "POST "+path) {
		c.forget(d.id) // still deleted: reading it would only repeat the failure
		return
	}
	var got struct {
		EventID   string  `json:"event_id"`
		DeletedAt *string `json:"deleted_at"`
	}
	if err := json.Unmarshal(a.body, &got); err != nil || got.EventID != d.id || got.DeletedAt != nil {
		c.fail(KindRestore, "bad-answer", fmt.Sprintf("POST %s: %v: %.200s", path, err, a.body))
		return
	}
	c.update(d.id, a.body)
}

func (c *client) hardDelete(ctx context.Context, d owned) {
	path := "/v1/memcells/" + d.id + "?hard=true"
	if c.expect(KindHardDelete, c.do(ctx, KindHardDelete, http.MethodDelete, path, nil), http.StatusNoContent, "DELETE "+path) {
		c.forget(d.id)
	}
}

// batchGet reads up to 10 of the client's documents, validated.
func (c *client) batchGet(ctx context.Context) {
	n := min(len(c.docs), 1+c.rng.IntN(10))
	picked := make([]owned, 0, n)
	ids := make([]string, 0, n)
	for _, i := range c.rng.Perm(len(c.docs))[:n] {
		picked = append(picked, c.docs[i])
		ids = append(ids, c.docs[i].id)
	}
	body, _ := json.Marshal(map[string]any{"event_ids": ids, "validate": true})
	const what = "POST /v1/memcells/batch-get"
	a := c.do(ctx, KindBatchGet, http.MethodPost, "/v1/memcells/batch-get", body)
	if !c.expect(KindBatchGet, a, http.StatusOK, what) || !c.consistent(KindBatchGet, what, a) {
		return
	}
	var got struct {
		Memcells map[string]json.RawMessage `json:"memcells"`
		Missing  []string                   `json:"missing"`
	}
	if err := json.Unmarshal(a.body, &got); err != nil || len(got.Missing) > 0 || len(got.Memcells) != n {
		c.fail(KindBatchGet, "bad-answer", fmt.Sprintf("%s of %d ids: %v: missing %v, %d found", what, n, err, got.Missing, len(got.Memcells)))
		return
	}
	for _, d := range picked {
		if !c.same(KindBatchGet, what, d, got.Memcells[d.id]) {
			return
		}
	}
}

// user returns one of the run's user ids.
func (c *client) user() string {
	return userID(c.rng.IntN(c.cfg.Users))
}

func userID(i int) string { return fmt.Sprintf("load-user-%d", i) }

var keywords = []string{"kyoto", "budget", "deadline", "music", "health", "🧠"}

// newMemCell returns the JSON of a valid MemCell, shaped like the test
// fixtures (memcelltest.NewMemCell): always a user, so that a bulk delete
// by user removes what a run left (one time in four also a group), a
// timestamp with sub-millisecond digits, a conversation segment,
// participants, keywords, free-form fields and extra fields, its episode
// padded so that the body is about size bytes.
func newMemCell(r *rand.Rand, users, size int) []byte {
	user := userID(r.IntN(users))
	kw := func() string { return keywords[r.IntN(len(keywords))] }
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(30 * 24 * time.Hour))))
	d := map[string]any{
		"user_id":   user,
		"timestamp": ts.Format(time.RFC3339Nano),
		"summary":   fmt.Sprintf("%s talked about %s", user, kw()),
		"type":      "Conversation",
		"subject":   "subject " + kw(),
		"episode":   "episode text",
		"original_data": []any{map[string]any{
			"data_type": "Conversation",
			"messages": []any{
				map[string]any{"content": "hello from " + user, "files": []string{"a.txt"}, "extend": map[string]string{"lang": "en"}},
				map[string]any{"content": "réponse ✓"},
			},
			"meta": map[string]string{"channel": "chat"},
		}},
		"participants":       []string{user, userID(r.IntN(users))},
		"keywords":           []string{kw(), kw()},
		"linked_entities":    []string{},
		"foresight_memories": []any{map[string]any{"content": "follow up", "score": 0.5}},
		"event_log":          map[string]any{"atomic_fact": []string{"fact one", "fact two"}, "n": r.IntN(100)},
		"extend":             map[string]any{"embedding": []any{r.Float64(), -1.25, 3}},
		"tenant_id":          "t-1",
		"session_id":         fmt.Sprintf("s-%d", r.IntN(1000)),
	}
	if r.IntN(4) == 0 {
		d["group_id"] = []string{"g-travel", "g-work"}[r.IntN(2)]
	}
	b, _ := json.Marshal(d)
	if len(b) < size {
		// The stored encoding adds the managed fields (~200 bytes).
		d["episode"] = strings.Repeat("x", max(size-len(b)-200, 0))
		b, _ = json.Marshal(d)
	}
	return b
}
