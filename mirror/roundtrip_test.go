package mirror_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
	"github.com/memcell/memcell/mongostore"
)

// commandLog counts the commands a driver client sends, by command name and
// collection, through the driver's command monitor.
type commandLog struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *commandLog) started(_ context.Context, e *event.CommandStartedEvent) {
	coll := ""
	if v, err := e.Command.LookupErr(e.CommandName); err == nil {
		coll, _ = v.StringValueOK()
	}
	if i := strings.LastIndex(coll, "_"); i > 0 && strings.HasPrefix(coll, mongostore.DefaultCollection) {
		coll = "*" + coll[i:] // memcells_kv_pending, memcells_graves
	}
	c.mu.Lock()
	c.counts[e.CommandName+" "+coll]++
	c.mu.Unlock()
}

// take returns the counts since the last take and starts again.
func (c *commandLog) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.counts
	c.counts = map[string]int{}
	return out
}

// monitoredEnv is a repository over the memory KV whose primary client
// counts the commands it sends.
func monitoredEnv(t testing.TB, clearInterval time.Duration) (*mirror.Repository, *mongostore.Store, *commandLog) {
	t.Helper()
	log := &commandLog{counts: map[string]int{}}
	client, err := mongo.Connect(options.Client().ApplyURI(memcelltest.URI(t)).SetMonitor(&event.CommandMonitor{Started: log.started}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	db := memcelltest.Database(t)
	primary, err := mongostore.Open(context.Background(), client, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	memcelltest.IndexIDs(t, db)
	repo, err := mirror.New(primary, memory().Open(t, 0), &mirror.Options{ClearInterval: clearInterval, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(repo.Close)
	log.take()
	return repo, primary, log
}

// TestIntentRoundTrips counts, through the driver's command monitor, the
// primary commands each write sends while it runs (P9): the write intent
// rides in the write's own command, so append, update, soft delete and
// restore send exactly what they sent without it, and a hard delete sends
// one more (its note, before the delete). The clearing happens later, for
// many writes at once: one command for the batch, one more when it holds
// hard deletes.
func TestIntentRoundTrips(t *testing.T) {
	repo, _, log := monitoredEnv(t, time.Hour) // no clearing until Close
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 5))
	const n = 10
	var ids []memcell.ID
	for range n {
		m, _, err := repo.Append(ctx, memcelltest.NewMemCell(rng, 512))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	// FerretDB's updates are not atomic, so the store reads a document
	// before it changes it there (mongostore's writeLocks); MongoDB sends
	// the findAndModify alone.
	read := map[string]int{}
	if isFerret(t) {
		read = map[string]int{"find memcells": n}
	}
	want := func(extra map[string]int) map[string]int {
		out := maps.Clone(read)
		maps.Copy(out, extra)
		return out
	}
	check := func(op string, want map[string]int) {
		t.Helper()
		if got := log.take(); !maps.Equal(got, want) {
			t.Errorf("%d × %s sent %v, want %v", n, op, got, want)
		}
	}
	check("append", map[string]int{"insert memcells": n})
	for _, id := range ids {
		if _, _, err := repo.Update(ctx, id, map[string]any{"summary": "u"}); err != nil {
			t.Fatal(err)
		}
	}
	check("update", want(map[string]int{"findAndModify memcells": n}))
	for _, id := range ids {
		if _, _, err := repo.SoftDelete(ctx, id, "t"); err != nil {
			t.Fatal(err)
		}
	}
	check("soft delete", want(map[string]int{"findAndModify memcells": n}))
	for _, id := range ids {
		if _, _, err := repo.Restore(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	check("restore", want(map[string]int{"findAndModify memcells": n}))
	for _, id := range ids[:n/2] {
		if _, _, err := repo.HardDelete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// The note, the delete, and the grave that keeps the revision.
	check("hard delete", map[string]int{"insert *_pending": n / 2, "findAndModify memcells": n / 2, "update *_graves": n / 2})

	// 45 writes' intents, 5 of them hard deletes' notes: two commands.
	repo.Close()
	check("clearing", map[string]int{"update memcells": 1, "delete *_pending": 1})
}

func isFerret(t testing.TB) bool {
	t.Helper()
	var info map[string]any
	if err := memcelltest.Client(t).Database("admin").RunCommand(context.Background(), map[string]any{"buildInfo": 1}).Decode(&info); err != nil {
		t.Fatal(err)
	}
	_, ok := info["ferretdbVersion"]
	return ok
}

// BenchmarkP9IntentClearing runs 32 concurrent appends through the
// repository with the default clear interval and reports the primary
// commands the clearer sent per write (P9: at most 1 per 50 writes) next
// to those the writes sent themselves.
func BenchmarkP9IntentClearing(b *testing.B) {
	repo, primary, log := monitoredEnv(b, 0)
	rng := rand.New(rand.NewPCG(6, 6))
	docs := make([]*memcell.MemCell, 64)
	for i := range docs {
		docs[i] = memcelltest.NewMemCell(rng, 2048)
	}
	var next atomic.Int64
	b.SetParallelism(16) // 32 writers on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := repo.Append(context.Background(), docs[next.Add(1)%int64(len(docs))]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	writes := log.take()
	repo.Close() // the last partial batch
	clears := log.take()
	if left, err := primary.Intents(context.Background(), time.Now().Add(time.Hour)); err != nil || len(left) > 0 {
		b.Fatalf("%d write intents left after Close (%v), want none", len(left), err)
	}
	// The clearer's commands that ran during the benchmark were counted
	// with the writes: move them over.
	clears["update memcells"] += writes["update memcells"]
	delete(writes, "update memcells")
	nw, nc := 0, 0
	for _, v := range writes {
		nw += v
	}
	for _, v := range clears {
		nc += v
	}
	b.ReportMetric(float64(nw)/float64(b.N), "write-cmds/op")
	b.ReportMetric(float64(nc)/float64(b.N), "clear-cmds/op")
	if testing.Verbose() {
		b.Logf("N=%d writes %v clears %v (%s)", b.N, writes, clears, fmt.Sprint(slices.Sorted(maps.Keys(clears))))
	}
}
