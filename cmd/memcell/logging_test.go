package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestLogDurations checks that every time.Duration a log line carries is
// written as seconds under a key ending in _seconds, in JSON and in text.
func TestLogDurations(t *testing.T) {
	logLine := func(format string) string {
		var b bytes.Buffer
		newLogger(&b, format, "info").Info("done",
			slog.Duration("duration", 1500*time.Millisecond), "elapsed", 2*time.Second, "retry_in_seconds", 250*time.Millisecond,
			slog.Group("pass", slog.Duration("took", time.Millisecond)), "count", 3)
		return b.String()
	}

	var got map[string]any
	if err := json.Unmarshal([]byte(logLine("json")), &got); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{"duration_seconds": 1.5, "elapsed_seconds": 2.0, "retry_in_seconds": 0.25, "count": 3.0} {
		if got[key] != want {
			t.Errorf("JSON line %v: %s = %v, want %v", got, key, got[key], want)
		}
	}
	if pass, _ := got["pass"].(map[string]any); pass["took_seconds"] != 0.001 {
		t.Errorf("JSON line %v: pass.took_seconds = %v, want 0.001", got, pass["took_seconds"])
	}
	for _, key := range []string{"duration", "elapsed"} {
		if _, ok := got[key]; ok {
			t.Errorf("JSON line %v keeps %s", got, key)
		}
	}

	text := logLine("text")
	for _, want := range []string{" duration_seconds=1.5 ", " elapsed_seconds=2 ", " retry_in_seconds=0.25 ", " pass.took_seconds=0.001 ", " count=3"} {
		if !strings.Contains(text, want) {
			t.Errorf("text line %q does not have %q", text, want)
		}
	}
}
