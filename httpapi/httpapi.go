// Package httpapi is memcell's REST API on net/http (openapi.yaml describes
// every route): one http.Handler over a mirror.Repository.
//
// What every route can rely on:
//
//   - Requests and responses are JSON. Errors are
//     {"error": {"code": "...", "message": "..."}}; one table (errors.go)
//     maps domain errors to status and code, and internal errors are
//     logged with their details while the client sees "internal error".
//   - Bad input is refused before anything is written: every parameter and
//     the whole body are checked before the repository is called. Bodies
//     are strict JSON (no key twice in an object), and every list,
//     parameter, body and header is bounded (README, "API limits").
//   - Each request has a deadline (Options.RequestTimeout), which its
//     primary operations carry to the server as maxTimeMS; a request past
//     it is answered 503.
//   - MemCells are in their API representation (memcell.EncodeAPI): the
//     canonical encoding with the id under "event_id", dates in RFC 3339
//     UTC with millisecond precision.
//   - A read that validated against the KV copy says its outcome in the
//     Memcell-Validation header; a write says what became of its KV copy in
//     Memcell-Mirror. A failed KV write does not fail the request
//     (docs/architecture.md#error-policy).
//   - Each request gets a request id (a valid incoming X-Request-Id, or a
//     new one), echoed in X-Request-Id and carried in the request context
//     (RequestID); one log line and the HTTP metrics record each request
//     under its route pattern, never its raw path.
//   - Access (access.go). /healthz and /readyz are open to every caller,
//     so that probes reach them. With an API token configured (Options.Token)
//     every other route needs "Authorization: Bearer <token>" (401
//     otherwise); GET /metrics also takes the metrics token
//     (Options.MetricsToken), which opens nothing else. /readyz shows the
//     internal text of a failure (hosts, ports, driver messages) only to a
//     caller who may use the admin routes.
//   - The host check, against DNS rebinding: a request that presents no
//     valid token is served only when its Host header names the loopback
//     (localhost, 127.0.0.0/8, ::1) or one of Options.AllowedHosts (403
//     host_not_allowed otherwise). With AllowedHosts set, requests with a
//     token must name one of those hosts too. The probes are exempt.
//   - The runtime profiles of net/http/pprof, under /debug/pprof/, only
//     with Options.Pprof, behind the API token and the host check.
//
// The OpenAPI 3 description of the API is embedded (OpenAPI) and served at
// GET /openapi.yaml; the tests hold every response to it.
package httpapi

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/memcell/memcell/mirror"
	"github.com/memcell/memcell/reconcile"
)

// DefaultMaxBodyBytes bounds request bodies when Options.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// DefaultRequestTimeout bounds each request when Options.RequestTimeout is
// 0.
const DefaultRequestTimeout = 30 * time.Second

// MaxHeaderBytes is the http.Server.MaxHeaderBytes memcell serve sets: the
// request line (query string included) and the headers, together. net/http
// answers a request over it with 431 before any handler runs.
const MaxHeaderBytes = 64 << 10

// Options configure the handler. Nil means defaults.
type Options struct {
	// Logger receives one line per request and the details of internal
	// errors; nil discards them. New wraps its handler with
	// RequestIDHandler (unless it is one already), so each line logged for
	// a request carries its request_id exactly once.
	Logger *slog.Logger
	// Registerer receives the HTTP metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Gatherer is served on GET /metrics; nil makes /metrics answer 404.
	Gatherer prometheus.Gatherer
	// Token, when not empty, is required as "Authorization: Bearer <token>"
	// on every route but /healthz and /readyz.
	Token string
	// MetricsToken, when not empty, is accepted besides Token on GET
	// /metrics, and required there when Token is empty. It opens no other
	// route and does not show /readyz's details.
	MetricsToken string
	// AllowedHosts are the host names or IP addresses (without port),
	// besides the loopback ones, that the Host header of a request may
	// name. The host check applies to requests that present no valid
	// token (all of them when no token is configured) and, when
	// AllowedHosts is not empty, to every request; /healthz and /readyz
	// are exempt. New refuses an entry that is not a host name or IP
	// address.
	AllowedHosts []string
	// MaxBodyBytes bounds request bodies (413 beyond); 0 means
	// DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
	// RequestTimeout bounds each request: its context gets this deadline,
	// which every primary operation it makes carries (the driver sends it
	// as maxTimeMS); a request that runs past it is answered 503. The KV
	// calls of the mirror keep their own timeout (mirror.Options.KVTimeout)
	// and jobs started through /v1/admin/jobs run on their own context. 0
	// means DefaultRequestTimeout (30 s).
	RequestTimeout time.Duration
	// Ready reports readiness for GET /readyz (nil error: ready); nil means
	// the repository's Ping, which asks both stores.
	Ready func(ctx context.Context) error
	// Version is reported by GET /readyz.
	Version string
	// Jobs runs the reconcile jobs of /v1/admin/jobs; nil makes those
	// routes answer 404. The caller closes it.
	Jobs *JobRunner
	// Replayer is the replayer of the pending record, whose status GET
	// /v1/admin/pending reports; nil makes that route answer 404.
	Replayer *reconcile.Replayer
	// Pprof serves the runtime profiles of net/http/pprof under
	// /debug/pprof/, guarded like the admin routes (the API token and the
	// host check); false makes those routes answer 404. A CPU profile or
	// trace lasts at most RequestTimeout.
	Pprof bool
}

// Route is one route the handler serves. Its ServeMux pattern is
// Method + " " + Pattern.
type Route struct {
	Method  string // GET, POST, ...
	Pattern string // the path pattern, e.g. /v1/memcells/{event_id}
}

// route is a Route with its handler.
type route struct {
	Route
	handle handlerFunc
	// guard is what the route asks of a request.
	guard guard
}

// handlerFunc serves a request or returns the error to answer with.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// routes lists every route; Routes and New both read it, so the list the
// OpenAPI test checks is the list that is served. New leaves out the
// /debug/pprof/ routes unless Options.Pprof is set.
func (s *server) routes() []route {
	r := func(method, pattern string, h handlerFunc) route {
		return route{Route: Route{method, pattern}, handle: h}
	}
	with := func(g guard, rt route) route { rt.guard = g; return rt }
	return []route{
		r(http.MethodPost, "/v1/memcells", s.create),
		r(http.MethodGet, "/v1/memcells", s.list),
		r(http.MethodDelete, "/v1/memcells", s.deleteMany),
		r(http.MethodGet, "/v1/memcells/count", s.count),
		r(http.MethodPost, "/v1/memcells/batch-get", s.batchGet),
		r(http.MethodPost, "/v1/memcells/restore", s.restoreMany),
		r(http.MethodGet, "/v1/memcells/{event_id}", s.get),
		r(http.MethodPatch, "/v1/memcells/{event_id}", s.update),
		r(http.MethodDelete, "/v1/memcells/{event_id}", s.delete),
		r(http.MethodPost, "/v1/memcells/{event_id}/restore", s.restore),
		r(http.MethodGet, "/v1/kv/stats", s.kvStats),
		r(http.MethodGet, "/v1/admin/flags", s.getFlags),
		r(http.MethodPut, "/v1/admin/flags", s.putFlags),
		r(http.MethodPost, "/v1/admin/jobs", s.startJob),
		r(http.MethodGet, "/v1/admin/jobs", s.listJobs),
		r(http.MethodGet, "/v1/admin/jobs/{id}", s.getJob),
		r(http.MethodDelete, "/v1/admin/jobs/{id}", s.cancelJob),
		r(http.MethodGet, "/v1/admin/pending", s.pending),
		with(guardMetrics, r(http.MethodGet, "/metrics", s.metricsPage)),
		with(guardOpen, r(http.MethodGet, "/healthz", s.healthz)),
		with(guardOpen, r(http.MethodGet, "/readyz", s.readyz)),
		r(http.MethodGet, "/openapi.yaml", s.openAPI),
		// net/http/pprof's handlers, with Options.Pprof. Its init also
		// registers them on http.DefaultServeMux, which memcell never
		// serves.
		r(http.MethodGet, pprofPrefix+"{$}", pprofHandler(pprof.Index)),
		r(http.MethodGet, pprofPrefix+"{profile}", pprofHandler(pprof.Index)), // heap, goroutine, allocs, block, mutex, threadcreate
		r(http.MethodGet, pprofPrefix+"cmdline", pprofHandler(pprof.Cmdline)),
		r(http.MethodGet, pprofPrefix+"profile", pprofHandler(pprof.Profile)),
		r(http.MethodGet, pprofPrefix+"symbol", pprofHandler(pprof.Symbol)),
		r(http.MethodPost, pprofPrefix+"symbol", pprofHandler(pprof.Symbol)),
		r(http.MethodGet, pprofPrefix+"trace", pprofHandler(pprof.Trace)),
	}
}

// pprofPrefix is the path under which Options.Pprof serves the profiles;
// pprof.Index expects it.
const pprofPrefix = "/debug/pprof/"

// pprofHandler adapts a net/http/pprof handler, which answers its own
// errors.
func pprofHandler(h http.HandlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		h(w, r)
		return nil
	}
}

// Routes returns every route the handler serves; the /debug/pprof/ ones
// only with Options.Pprof.
func Routes() []Route {
	var s server
	rs := s.routes()
	out := make([]Route, len(rs))
	for i, r := range rs {
		out[i] = r.Route
	}
	return out
}

//go:embed openapi.yaml
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3 description of the API (YAML), the document
// served at GET /openapi.yaml.
func OpenAPI() []byte {
	return append([]byte(nil), openAPIDoc...)
}

// server is the handler.
type server struct {
	repo     *mirror.Repository
	log      *slog.Logger
	gatherer prometheus.Gatherer
	ready    func(context.Context) error
	version  string
	maxBody  int64
	timeout  time.Duration // of each request
	// tokenSum and metricsSum are the SHA-256 of the tokens (nil when not
	// set); hashing both sides makes the comparison constant-time in the
	// token's length too.
	tokenSum, metricsSum *[sha256.Size]byte
	// hosts are the AllowedHosts, canonical (netaddr.CanonicalHost).
	hosts    map[string]bool
	mux      *http.ServeMux
	guards   map[string]guard // by pattern; absent means guardToken
	metrics  *httpMetrics
	jobs     *JobRunner
	replayer *reconcile.Replayer
}

// New returns the API handler over repo. It does no I/O; it fails only when
// the options are invalid or the metrics cannot be registered.
func New(repo *mirror.Repository, opts *Options) (http.Handler, error) {
	if repo == nil {
		return nil, errors.New("httpapi: nil repository")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxBodyBytes < 0 {
		return nil, errors.New("httpapi: MaxBodyBytes must not be negative")
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.RequestTimeout < 0 {
		return nil, errors.New("httpapi: RequestTimeout must not be negative")
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// Every line logged with a request's context carries its request_id,
	// once, whether or not the caller wrapped the handler.
	o.Logger = slog.New(RequestIDHandler(o.Logger.Handler()))
	if o.Ready == nil {
		o.Ready = repo.Ping
	}
	hosts, err := hostSet(o.AllowedHosts)
	if err != nil {
		return nil, err
	}
	m, err := newHTTPMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	s := &server{
		repo: repo, log: o.Logger, gatherer: o.Gatherer, ready: o.Ready,
		version: o.Version, maxBody: o.MaxBodyBytes, timeout: o.RequestTimeout,
		mux: http.NewServeMux(), guards: map[string]guard{}, metrics: m, jobs: o.Jobs, replayer: o.Replayer,
		tokenSum: tokenSum(o.Token), metricsSum: tokenSum(o.MetricsToken), hosts: hosts,
	}
	for _, rt := range s.routes() {
		if !o.Pprof && strings.HasPrefix(rt.Pattern, pprofPrefix) {
			continue
		}
		pattern := rt.Method + " " + rt.Pattern
		s.mux.Handle(pattern, s.adapt(rt.handle))
		if rt.guard != guardToken {
			s.guards[pattern] = rt.guard
		}
	}
	return s, nil
}

// adapt turns a handlerFunc into an http.Handler that answers its error.
func (s *server) adapt(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// readyTimeout bounds the readiness check.
const readyTimeout = 5 * time.Second
