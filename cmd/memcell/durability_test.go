package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// TestKillKeepsAnsweredWrites kills memcell serve on the embedded default
// with SIGKILL right after its last answer, starts it again on the same
// data directory and reads every document back: a process crash loses no
// answered write, whether the embedded primary syncs its log every
// --embedded-sync-interval (the default) or each write (0). (What a power
// loss would take cannot be tested here: up to one interval's writes with
// the default, as docs/architecture.md says.)
func TestKillKeepsAnsweredWrites(t *testing.T) {
	for _, interval := range []string{"100ms", "0"} {
		t.Run("sync-interval="+interval, func(t *testing.T) {
			args := []string{"--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--embedded-addr", "127.0.0.1:0",
				"--embedded-sync-interval", interval, "--log-format", "json"}
			s := startServer(t, nil, args...)
			const writers, each = 4, 25
			revs := map[string]float64{} // event_id → answered revision
			var (
				mu   sync.Mutex
				wg   sync.WaitGroup
				errs []error
			)
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						rev, id, err := createAndPatch(s.url, fmt.Sprintf("user-%d", w), i%2 == 0)
						mu.Lock()
						if err != nil {
							errs = append(errs, err)
						} else {
							revs[id] = rev
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			s.kill()
			if len(errs) > 0 {
				t.Fatalf("%d writes failed, the first: %v", len(errs), errs[0])
			}

			s = startServer(t, nil, args...)
			lost := 0
			for id, rev := range revs {
				var got doc
				resp, body := s.call("GET", "/v1/memcells/"+id, "", nil, &got)
				if resp.StatusCode != http.StatusOK || got["revision"] != rev {
					lost++
					t.Errorf("after the kill GET %s = %d %s; want revision %v", id, resp.StatusCode, body, rev)
				}
			}
			t.Logf("%d documents written, %d lost by the kill", len(revs), lost)
			s.stop()
		})
	}
}

// createAndPatch creates a document for user through the API at base, and
// with patch updates it once; it returns the last answered revision.
func createAndPatch(base, user string, patch bool) (rev float64, id string, err error) {
	var created doc
	if err := send("POST", base+"/v1/memcells", doc{
		"user_id":       user,
		"timestamp":     "2026-11-30T10:00:00Z",
		"summary":       "kept through a kill",
		"type":          "Conversation",
		"original_data": []doc{{"data_type": "Conversation", "messages": []doc{{"content": "hello"}}}},
	}, http.StatusCreated, &created); err != nil {
		return 0, "", err
	}
	id, _ = created["event_id"].(string)
	rev, _ = created["revision"].(float64)
	if !patch {
		return rev, id, nil
	}
	var patched doc
	if err := send("PATCH", base+"/v1/memcells/"+id, doc{"summary": "patched"}, http.StatusOK, &patched); err != nil {
		return 0, "", err
	}
	rev, _ = patched["revision"].(float64)
	return rev, id, nil
}

// send makes one JSON request from any goroutine and decodes the answer.
func send(method, url string, body any, status int, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		return fmt.Errorf("%s %s = %d, want %d", method, url, resp.StatusCode, status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
