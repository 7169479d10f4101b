package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"
)

// headerRequestID carries the request id both ways.
const headerRequestID = "X-Request-Id"

// unmatchedRoute labels requests no route matched (404, 405) in logs and
// metrics.
const unmatchedRoute = "unmatched"

type requestIDKey struct{}

// RequestID returns the request id the handler attached to a request's
// context, or "" when there is none.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// RequestIDHandler wraps a slog.Handler so that every record logged with a
// request's context (the mirror's WARN and [DATA_INCONSISTENCY] lines, for
// instance) carries its request_id, once: a record that has a request_id
// attribute already, or is logged through a logger made With one, keeps its
// own. Wrapping a handler it returned returns it unchanged.
//
// New wraps Options.Logger's handler itself, so the handler's own lines
// carry the request id whether or not the caller wrapped it; a caller wraps
// the loggers of the code below the handler, as the mirror's.
func RequestIDHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(requestIDHandler); ok {
		return h
	}
	return requestIDHandler{Handler: h}
}

// requestIDKeyName is the attribute RequestIDHandler adds.
const requestIDKeyName = "request_id"

type requestIDHandler struct {
	slog.Handler
	// has is set when WithAttrs gave a request_id at the current group
	// level: the handler adds none then.
	has bool
}

func (h requestIDHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id := RequestID(ctx); id != "" && !h.has && !hasRequestID(rec) {
		rec = rec.Clone()
		rec.AddAttrs(slog.String(requestIDKeyName, id))
	}
	return h.Handler.Handle(ctx, rec)
}

// hasRequestID reports whether the record has a request_id attribute of
// its own.
func hasRequestID(rec slog.Record) (found bool) {
	rec.Attrs(func(a slog.Attr) bool {
		found = a.Key == requestIDKeyName
		return !found
	})
	return found
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	has := h.has
	for _, a := range attrs {
		has = has || a.Key == requestIDKeyName
	}
	return requestIDHandler{h.Handler.WithAttrs(attrs), has}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return requestIDHandler{h.Handler, h.has} // slog opens no group
	}
	// Attributes after this go in the group, where there is none yet.
	return requestIDHandler{h.Handler.WithGroup(name), false}
}

// validRequestID accepts 1-128 characters of letters, digits and -_.:/+=@,
// so that an incoming id cannot smuggle anything into logs or headers.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-_.:/+=@", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// statusWriter records the status and size of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP is the whole middleware chain: request id, the request's
// deadline, panic recovery, the request's log line and metrics, the
// route's guard (tokens and the host check: access.go), routing with JSON
// 404 and 405 answers.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get(headerRequestID)
	if !validRequestID(id) {
		id = newRequestID()
	}
	// The deadline bounds every primary operation the request makes: the
	// driver sends what is left of it as maxTimeMS.
	ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), requestIDKey{}, id), s.timeout)
	defer cancel()
	r = r.WithContext(ctx)
	w.Header().Set(headerRequestID, id)
	sw := &statusWriter{ResponseWriter: w}

	h, pattern := s.mux.Handler(r)
	route := pattern
	if route == "" {
		route = unmatchedRoute
	}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.ErrorContext(r.Context(), "httpapi: panic serving request", "method", r.Method, "route", route,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if sw.status == 0 {
				writeErrorBody(sw, http.StatusInternalServerError, codeInternal, "internal error")
			}
		}
		s.observe(r, sw, route, time.Since(start))
	}()

	if !s.admit(sw, r, s.guards[pattern]) {
		return
	}
	if pattern == "" {
		s.unmatched(sw, r, h)
		return
	}
	s.mux.ServeHTTP(sw, r)
}

// unmatched answers a request no route took. ServeMux's own handler
// decides between 404 and 405 (and computes Allow); its plain-text answer
// is replaced by the JSON error body.
func (s *server) unmatched(w http.ResponseWriter, r *http.Request, h http.Handler) {
	c := &captureWriter{header: http.Header{}}
	h.ServeHTTP(c, r)
	switch c.status {
	case http.StatusMethodNotAllowed:
		allow := c.header.Get("Allow")
		w.Header().Set("Allow", allow)
		writeErrorBody(w, http.StatusMethodNotAllowed, codeMethodNotAllowed,
			fmt.Sprintf("method %s is not allowed here; allowed: %s", r.Method, allow))
	case http.StatusNotFound, 0:
		writeErrorBody(w, http.StatusNotFound, codeNotFound, "no route matches "+r.Method+" "+r.URL.Path)
	default:
		// A redirect to a cleaned path: pass it on without its HTML body.
		for k, v := range c.header {
			if k != "Content-Type" && k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(c.status)
	}
}

// captureWriter keeps the status and headers of an answer and drops its
// body.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}

func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}

// observe writes the request's log line and metrics. The request id comes
// from the context (the logger is a RequestIDHandler). The Authorization
// header, the query string and bodies are never logged.
func (s *server) observe(r *http.Request, w *statusWriter, route string, d time.Duration) {
	status := w.status
	if status == 0 {
		status = http.StatusOK // the handler wrote nothing: net/http sends 200
	}
	s.metrics.observe(route, status, d)
	level := slog.LevelInfo
	if status >= 500 && status != statusClientClosed {
		level = slog.LevelError
	}
	s.log.LogAttrs(r.Context(), level, "http request",
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Duration("duration", d),
		slog.Int64("bytes", w.bytes))
}
