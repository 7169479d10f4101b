package mirror_test

import (
	"context"
	"testing"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/mirror"
)

// TestRequestCancelledMidWrite cancels a write's context (what a shutdown
// does to a request still running at its deadline) once the primary has
// applied it and its KV write has started. The KV write is not cut short
// by it: it completes when the KV answers, and when the KV does not within
// KVTimeout the write stays recorded (its write intent and a pending
// record in the primary) for the replayer.
func TestRequestCancelledMidWrite(t *testing.T) {
	for _, tc := range []struct {
		name       string
		kvAnswers  bool
		wantStatus mirror.MirrorStatus
		// The traces left in the primary: write intents, pending records.
		intents, pending int
	}{
		{"the KV answers after the cancel", true, mirror.MirrorOK, 0, 0},
		{"the KV does not answer", false, mirror.MirrorFailed, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, memory(), &mirror.Options{KVTimeout: 300 * time.Millisecond, ClearInterval: 10 * time.Millisecond})
			release := e.kv.Stall()
			defer release()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			user := "cancelled"
			type result struct {
				m   *memcell.MemCell
				mir mirror.Mirror
				err error
			}
			done := make(chan result, 1)
			go func() {
				m, mir, err := e.repo.Append(ctx, &memcell.MemCell{UserID: &user, Timestamp: time.Now()})
				done <- result{m, mir, err}
			}()
			for e.kv.WriteAttempts.Load() == 0 { // the primary has applied it
				time.Sleep(time.Millisecond)
			}
			cancel()
			if tc.kvAnswers {
				time.Sleep(50 * time.Millisecond) // the KV write outlives the cancel
				release()
			}
			r := <-done
			if r.err != nil || r.mir.Status != tc.wantStatus {
				t.Fatalf("Append = %v, %v; want mirror status %v", r.mir, r.err, tc.wantStatus)
			}
			if tc.kvAnswers {
				if _, err := e.kv.Get(context.Background(), memcell.DefaultKeys.Key(r.m.ID)); err != nil {
					t.Errorf("the KV lacks the document: %v", err)
				}
			}
			e.waitTraces(t, tc.intents, tc.pending)
		})
	}
}
