package mirror

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/memcelltest"
)

// chunkPrimary records the ClearIntents calls it gets and fails the one
// numbered failAt (from 1; 0 never).
type chunkPrimary struct {
	memcell.Primary
	mu     sync.Mutex
	calls  []int
	failAt int
}

func (p *chunkPrimary) ClearIntents(_ context.Context, intents []memcell.Intent) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, len(intents))
	if len(p.calls) == p.failAt {
		return errors.New("primary busy")
	}
	return nil
}

// TestClearerChunks checks that a backlog of intents is cleared in chunks
// of clearBatch, so that a failing chunk leaves only itself and those after
// it for the replayer, not the whole backlog.
func TestClearerChunks(t *testing.T) {
	for _, tc := range []struct {
		name          string
		failAt        int
		calls         []int
		cleared, left float64
	}{
		{"all cleared", 0, []int{1000, 1000, 500}, 2500, 0},
		{"second chunk fails", 2, []int{1000, 1000}, 1000, 1500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := newMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			p := &chunkPrimary{failAt: tc.failAt}
			c := newClearer(p, memcelltest.KVBackends()[0].Open(t, 0), slog.New(slog.NewTextHandler(io.Discard, nil)), time.Hour, m)
			intents := make([]memcell.Intent, 2500)
			for i := range intents {
				intents[i] = memcell.Intent{ID: memcell.NewID(), Mark: memcell.NewID()}
			}
			c.mu.Lock()
			c.queue = intents // queued at once, as a backlog would be
			c.since = time.Now()
			c.mu.Unlock()
			c.close()
			if !slices.Equal(p.calls, tc.calls) {
				t.Errorf("ClearIntents calls of %v intents; want %v", p.calls, tc.calls)
			}
			if got := testutil.ToFloat64(m.intentsCleared); got != tc.cleared {
				t.Errorf("intents cleared %v; want %v", got, tc.cleared)
			}
			if got := testutil.ToFloat64(m.intentsLeft); got != tc.left {
				t.Errorf("intents left %v; want %v", got, tc.left)
			}
		})
	}
}
