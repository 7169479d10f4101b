package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/mirror"
)

// Error codes of the API's error bodies.
const (
	codeMalformedJSON    = "malformed_json"         // 400: the body is not one JSON value
	codeInvalidArgument  = "invalid_argument"       // 400: a field, parameter or id breaks a rule
	codeUnauthorized     = "unauthorized"           // 401
	codeHostNotAllowed   = "host_not_allowed"       // 403: the Host header names no host this server answers to
	codeNotFound         = "not_found"              // 404
	codeMethodNotAllowed = "method_not_allowed"     // 405
	codeConflict         = "conflict"               // 409
	codeTooLarge         = "body_too_large"         // 413
	codeMediaType        = "unsupported_media_type" // 415
	codeInternal         = "internal"               // 500
	codeUnavailable      = "unavailable"            // 503
	codeCanceled         = "canceled"               // 499: the client went away
)

// statusClientClosed is the status logged and counted for requests whose
// client went away before the answer (nginx's 499); nobody receives it.
const statusClientClosed = 499

// apiError is an error with its answer already decided.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.message }

func badRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, codeInvalidArgument, fmt.Sprintf(format, args...)}
}

// fieldError is bad input in a named field or parameter.
func fieldError(field, rule string) error {
	return &memcell.FieldError{Field: field, Rule: rule}
}

var errNotFound = &apiError{http.StatusNotFound, codeNotFound, "no such MemCell"}

// classify is the one table from errors to answers: status, code and the
// message the client may see. internal reports an error whose details
// belong in the log only.
func classify(err error) (status int, code, message string, internal bool) {
	var ae *apiError
	var fe *memcell.FieldError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae.status, ae.code, ae.message, false
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("the request body is larger than %d bytes", tooLarge.Limit), false
	case errors.As(err, &fe):
		return http.StatusBadRequest, codeInvalidArgument, fieldMessage(fe), false
	case errors.Is(err, memcell.ErrInvalid):
		return http.StatusBadRequest, codeInvalidArgument, strings.TrimPrefix(err.Error(), "memcell: "), false
	case errors.Is(err, memcell.ErrNotFound):
		return http.StatusNotFound, codeNotFound, "no such MemCell", false
	case errors.Is(err, memcell.ErrConflict):
		return http.StatusConflict, codeConflict, "the write conflicts with existing data (a MemCell with this event_id exists)", false
	case errors.Is(err, mirror.ErrNoCopy):
		return http.StatusServiceUnavailable, codeUnavailable, "the primary store is unavailable and the KV store holds no copy to answer from: whether the MemCell exists cannot be told", true
	case errors.Is(err, memcell.ErrUnavailable):
		return http.StatusServiceUnavailable, codeUnavailable, "the primary store is unavailable", true
	case errors.Is(err, context.Canceled):
		return statusClientClosed, codeCanceled, "the request was canceled", false
	}
	return http.StatusInternalServerError, codeInternal, "internal error", true
}

// fieldMessage renders a field error without the package prefix.
func fieldMessage(fe *memcell.FieldError) string {
	if fe.Field == "" {
		return fe.Rule
	}
	return "field " + fe.Field + ": " + fe.Rule
}

// writeError answers err and logs what the client does not see.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, message, internal := classify(err)
	if status >= 500 && (errors.Is(r.Context().Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)) {
		// Whatever failed, it failed because the request ran out of time
		// (the server may give up on its maxTimeMS a moment before the
		// context ends): the client hears that, the log hears what it was.
		s.log.WarnContext(r.Context(), "httpapi: request ran past its time limit", "method", r.Method, "route", r.Pattern,
			"timeout", s.timeout, "error", err)
		status, code, internal = http.StatusServiceUnavailable, codeUnavailable, false
		message = fmt.Sprintf("the request did not finish within the server's time limit (%s)", s.timeout)
	}
	if internal {
		s.log.ErrorContext(r.Context(), "httpapi: request failed", "method", r.Method, "route", r.Pattern,
			"status", status, "error", err)
	}
	writeErrorBody(w, status, code, message)
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeErrorBody writes the error body with status.
func writeErrorBody(w http.ResponseWriter, status int, code, message string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, message
	writeValue(w, status, &b)
}
