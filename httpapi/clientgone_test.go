package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/kv/memkv"
	"github.com/memcell/memcell/mirror"
)

// stuckPrimary is a primary whose list and count queries run until their
// context ends, and say when that was.
type stuckPrimary struct {
	*memPrimary
	started, ended chan struct{}
}

func (p *stuckPrimary) wait(ctx context.Context) error {
	p.started <- struct{}{}
	<-ctx.Done()
	p.ended <- struct{}{}
	return ctx.Err()
}

func (p *stuckPrimary) Find(ctx context.Context, _ memcell.Query) ([]*memcell.MemCell, error) {
	return nil, p.wait(ctx)
}

func (p *stuckPrimary) Count(ctx context.Context, _ memcell.Query) (int64, error) {
	return 0, p.wait(ctx)
}

// TestClientGoneStopsWork checks that the primary's work for a request
// stops when its client hangs up, long before the request's time limit:
// the context the handler passes down ends with the connection.
func TestClientGoneStopsWork(t *testing.T) {
	p := &stuckPrimary{memPrimary: newMemPrimary(), started: make(chan struct{}, 1), ended: make(chan struct{}, 1)}
	store, err := memkv.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := mirror.New(p, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := httpapi.New(repo, &httpapi.Options{RequestTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	for _, target := range []string{"/v1/memcells?user_id=alice", "/v1/memcells/count?keywords=kyoto"} {
		ctx, cancel := context.WithCancel(context.Background())
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+target, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = testHost
		answered := make(chan error, 1)
		go func() {
			resp, err := srv.Client().Do(req)
			if err == nil {
				resp.Body.Close()
			}
			answered <- err
		}()
		select {
		case <-p.started:
		case err := <-answered:
			t.Fatalf("GET %s answered before reaching the primary: %v", target, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("GET %s did not reach the primary", target)
		}
		hungUp := time.Now()
		cancel() // the client goes away
		<-answered
		select {
		case <-p.ended:
			t.Logf("GET %s: the primary's query ended %v after the client hung up", target, time.Since(hungUp))
		case <-time.After(5 * time.Second):
			t.Fatalf("GET %s: the primary's query still runs 5s after the client hung up (the limit is 1m)", target)
		}
	}
}
