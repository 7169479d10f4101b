package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return l, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// logFormat is format, or for "auto" the format of a log written to w:
// text on a terminal, JSON otherwise.
func logFormat(w io.Writer, format string) string {
	if format != "auto" {
		return format
	}
	if isTerminal(w) {
		return "text"
	}
	return "json"
}

// newLogger builds the process logger: text on a terminal, JSON otherwise,
// unless format says which.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	l, _ := parseLevel(level) // checked by the --log-level flag's value
	opts := &slog.HandlerOptions{Level: l, ReplaceAttr: durationSeconds}
	if logFormat(w, format) == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// durationSeconds is the loggers' ReplaceAttr: it writes every
// time.Duration attribute as seconds (a float64) under its key with
// "_seconds" appended (unless it ends so already), so that every duration
// a log line carries has the same form, in JSON and text alike.
func durationSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindDuration {
		return a
	}
	key := a.Key
	if !strings.HasSuffix(key, "_seconds") {
		key += "_seconds"
	}
	return slog.Float64(key, a.Value.Duration().Seconds())
}
