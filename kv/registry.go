package kv

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/memcell/memcell/internal/redact"
)

// Opener opens a store from a parsed URL. It must reject query options it
// does not know, so that a typo never passes silently.
type Opener func(ctx context.Context, u *url.URL) (Store, error)

// Registry maps URL schemes to backends. The caller builds one and registers
// the backends it links in; there is no global registry.
//
// A Registry is safe for concurrent use.
type Registry struct {
	mu      sync.RWMutex
	openers map[string]Opener
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{openers: make(map[string]Opener)}
}

// Register makes scheme open with o. It panics on an empty scheme, a nil
// opener or a scheme registered twice, which are programming errors.
func (r *Registry) Register(scheme string, o Opener) {
	if scheme == "" || o == nil {
		panic("kv: Register with an empty scheme or nil opener")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.openers[scheme]; dup {
		panic("kv: scheme " + scheme + " registered twice")
	}
	r.openers[scheme] = o
}

// Schemes returns the registered schemes in order.
func (r *Registry) Schemes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := make([]string, 0, len(r.openers))
	for k := range r.openers {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// Open parses rawURL and opens it with the backend registered for its scheme.
// Errors never contain the URL's password.
func (r *Registry) Open(ctx context.Context, rawURL string) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse echoes the input, which may hold credentials.
		return nil, fmt.Errorf("%w: unparsable KV URL", ErrInvalidOptions)
	}
	r.mu.RLock()
	o, ok := r.openers[strings.ToLower(u.Scheme)]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownScheme, u.Scheme, strings.Join(r.Schemes(), ", "))
	}
	return o(ctx, u)
}

// Redact returns rawURL with its password and the values of its secret
// options (password, token, secret, key... in the option's name) replaced
// by "xxxxx", for logs and errors. A string that is not a URL is not shown:
// it comes back as "<unparsable URL>".
func Redact(rawURL string) string {
	return redact.URL(rawURL)
}

// Query reads the options of a KV URL's query string. Each getter removes the
// option it read; Done then reports any option nobody asked for.
type Query struct {
	v   url.Values
	err error
}

// NewQuery wraps the query of u.
func NewQuery(u *url.URL) *Query {
	return &Query{v: u.Query()}
}

func (q *Query) take(name string) (string, bool) {
	vals, ok := q.v[name]
	if !ok {
		return "", false
	}
	delete(q.v, name)
	if len(vals) != 1 && q.err == nil {
		q.err = fmt.Errorf("%w: option %s given %d times", ErrInvalidOptions, name, len(vals))
	}
	return vals[len(vals)-1], true
}

// String returns the option name, or def when absent.
func (q *Query) String(name, def string) string {
	if s, ok := q.take(name); ok {
		return s
	}
	return def
}

// Bool returns the boolean option name, or def when absent.
func (q *Query) Bool(name string, def bool) bool {
	s, ok := q.take(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(s)
	if err != nil && q.err == nil {
		q.err = fmt.Errorf("%w: option %s=%q is not a boolean", ErrInvalidOptions, name, s)
	}
	return b
}

// Int returns the integer option name, or def when absent. Values below min
// are an error.
func (q *Query) Int(name string, def, min int) int {
	s, ok := q.take(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(s)
	if (err != nil || n < min) && q.err == nil {
		q.err = fmt.Errorf("%w: option %s=%q must be an integer >= %d", ErrInvalidOptions, name, s, min)
	}
	return n
}

// Duration returns the duration option name (Go syntax, e.g. "90s"), or def
// when absent. Negative durations are an error.
func (q *Query) Duration(name string, def time.Duration) time.Duration {
	s, ok := q.take(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(s)
	if (err != nil || d < 0) && q.err == nil {
		q.err = fmt.Errorf("%w: option %s=%q must be a non-negative duration such as 30s", ErrInvalidOptions, name, s)
	}
	return d
}

// Rest removes and returns the options not read yet, for a backend that
// passes them on to its client library.
func (q *Query) Rest() url.Values {
	rest := q.v
	q.v = url.Values{}
	return rest
}

// Done returns the first error met, or an error naming the options that were
// never read.
func (q *Query) Done() error {
	if q.err != nil {
		return q.err
	}
	if len(q.v) > 0 {
		names := make([]string, 0, len(q.v))
		for k := range q.v {
			names = append(names, k)
		}
		sort.Strings(names)
		return fmt.Errorf("%w: unknown option(s) %s", ErrInvalidOptions, strings.Join(names, ", "))
	}
	return nil
}
