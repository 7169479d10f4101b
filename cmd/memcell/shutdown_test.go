package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestServeUntilDrains checks the shutdown order: a request still running
// when the grace period is over is cancelled, and serveUntil returns only
// once its handler has returned, so the stores it uses are closed after
// it, not under it.
func TestServeUntilDrains(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var finished, cancelled atomic.Bool
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/quick" {
			return
		}
		close(started)
		<-r.Context().Done() // the request is cancelled at the deadline
		cancelled.Store(true)
		time.Sleep(200 * time.Millisecond) // what a write does after its context ends: record it
		finished.Store(true)
	})}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveUntil(ctx, srv, ln, 100*time.Millisecond, slog.New(slog.DiscardHandler)) }()
	url := "http://" + ln.Addr().String()
	if resp, err := http.Get(url + "/quick"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	go func() {
		if resp, err := http.Get(url + "/slow"); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serveUntil: %v", err)
		}
	case <-time.After(drainTimeout + 5*time.Second):
		t.Fatal("serveUntil did not return")
	}
	if !cancelled.Load() || !finished.Load() {
		t.Fatalf("serveUntil returned with the handler cancelled %v, finished %v: the stores would close under it", cancelled.Load(), finished.Load())
	}
	if _, err := http.Get(url + "/quick"); err == nil {
		t.Error("still accepting after serveUntil returned")
	}
}
