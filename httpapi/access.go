package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/memcell/memcell/internal/netaddr"
)

// guard is what a route asks of a request before it is served.
type guard int

const (
	// guardToken: the API token, when one is configured, and the host
	// check. Every route but the metrics page and the probes, and
	// requests no route matched.
	guardToken guard = iota
	// guardMetrics: the metrics token or the API token, when either is
	// configured, and the host check. GET /metrics.
	guardMetrics
	// guardOpen: nothing. The probes, /healthz and /readyz, which a
	// kubelet asks with the pod's IP as Host and no token.
	guardOpen
)

// tokenSum returns the SHA-256 of token, or nil for an empty token.
func tokenSum(token string) *[sha256.Size]byte {
	if token == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(token))
	return &sum
}

// hostSet checks and normalises Options.AllowedHosts.
func hostSet(hosts []string) (map[string]bool, error) {
	set := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		c, err := netaddr.CanonicalHost(h)
		if err != nil {
			return nil, fmt.Errorf("httpapi: AllowedHosts: %w", err)
		}
		set[c] = true
	}
	return set, nil
}

// denial is the answer to a request a guard refuses.
type denial struct {
	status    int
	code      string
	message   string
	challenge string // WWW-Authenticate, for 401
}

// check decides whether r may reach a route with guard g; nil means it
// may. With a token required it answers 401 before looking at the Host,
// so a client without the token learns what it lacks; the host check
// comes next.
func (s *server) check(r *http.Request, g guard) *denial {
	if g == guardOpen {
		return nil
	}
	sums := []*[sha256.Size]byte{s.tokenSum}
	if g == guardMetrics {
		sums = append(sums, s.metricsSum)
	}
	required, authenticated := false, false
	for _, sum := range sums {
		required = required || sum != nil
	}
	if required {
		ok, given := bearer(r, sums)
		if !ok {
			challenge := `Bearer realm="memcell"`
			if given {
				challenge += `, error="invalid_token"`
			}
			return &denial{http.StatusUnauthorized, codeUnauthorized,
				"a valid bearer token is required (Authorization: Bearer <token>)", challenge}
		}
		authenticated = true
	}
	// A page in a browser can make it send requests to a loopback
	// address under its own host name (DNS rebinding), but it cannot know
	// a token: requests without one must name a host this server answers
	// to. A configured host list applies to every request.
	if (!authenticated || len(s.hosts) > 0) && !s.hostAllowed(r.Host) {
		return &denial{status: http.StatusForbidden, code: codeHostNotAllowed, message: s.hostMessage(r.Host)}
	}
	// The Host check does not stop a page on another site from sending
	// a request to http://localhost:8080 itself (cross-site request
	// forgery): a POST without a body, such as a bulk restore, needs no
	// preflight. Browsers name the page's origin in Origin, so a request
	// without a token must come from no page or from a page on an allowed
	// host.
	if !authenticated {
		if origin := r.Header.Get("Origin"); origin != "" && !s.originAllowed(origin) {
			return &denial{status: http.StatusForbidden, code: codeHostNotAllowed, message: originMessage(origin)}
		}
	}
	return nil
}

// originAllowed reports whether an Origin header names a page on a
// loopback or allowed host. "null" (a sandboxed or file page) does not.
func (s *server) originAllowed(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return s.hostAllowed(u.Host)
}

// originMessage explains a refused Origin.
func originMessage(origin string) string {
	if len(origin) > 100 {
		origin = origin[:100] + "..."
	}
	return fmt.Sprintf("requests from web pages of the origin %q are refused without a token: only pages on a loopback or allowed host may call this server; "+
		"set an API token and send it, or add the host to the allowed hosts (--allowed-hosts, $MEMCELL_ALLOWED_HOSTS)", origin)
}

// admit writes the answer of a request check refuses and reports whether
// the request may go on.
func (s *server) admit(w http.ResponseWriter, r *http.Request, g guard) bool {
	d := s.check(r, g)
	if d == nil {
		return true
	}
	if d.challenge != "" {
		w.Header().Set("WWW-Authenticate", d.challenge)
	}
	writeErrorBody(w, d.status, d.code, d.message)
	return false
}

// bearer checks the request's bearer token against each non-nil sum, in
// constant time and without stopping at a match; given reports whether
// the request carried a bearer token at all.
func bearer(r *http.Request, sums []*[sha256.Size]byte) (ok, given bool) {
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return false, false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	for _, want := range sums {
		if want != nil {
			match |= subtle.ConstantTimeCompare(sum[:], want[:])
		}
	}
	return match == 1, true
}

// hostAllowed reports whether a Host header names the loopback or one of
// the allowed hosts.
func (s *server) hostAllowed(hostHeader string) bool {
	h, ok := netaddr.HostOf(hostHeader)
	return ok && (netaddr.LoopbackHost(h) || s.hosts[h])
}

// hostMessage explains a refused Host and names the fix.
func (s *server) hostMessage(hostHeader string) string {
	shown := hostHeader
	if len(shown) > 100 {
		shown = shown[:100] + "..."
	}
	msg := fmt.Sprintf("the Host %q is not one this server answers to: it answers requests naming a loopback host (localhost, 127.0.0.1, [::1])", shown)
	if len(s.hosts) > 0 {
		msg += " or one of its allowed hosts"
	}
	msg += "; to serve this name, add it to the allowed hosts (--allowed-hosts, $MEMCELL_ALLOWED_HOSTS)"
	if len(s.hosts) == 0 {
		msg += ", or set an API token and send it"
	}
	return msg
}

// showDetails reports whether the caller may see internal error text
// (hosts, ports, driver messages): a caller who may use the admin routes.
// The metrics token does not show them.
func (s *server) showDetails(r *http.Request) bool { return s.check(r, guardToken) == nil }
