package mongostore_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mongostore"
)

// TestDeadlineSendsMaxTimeMS checks that every command the request path
// sends carries the context's deadline to the server as maxTimeMS, the
// list (find) and batch reads included, and that without a deadline none
// does.
func TestDeadlineSendsMaxTimeMS(t *testing.T) {
	var (
		mu   sync.Mutex
		sent []event.CommandStartedEvent
	)
	client, err := mongo.Connect(options.Client().ApplyURI(memcelltest.URI(t)).SetMonitor(&event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			mu.Lock()
			sent = append(sent, *e)
			mu.Unlock()
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	db := memcelltest.Database(t)
	s, err := mongostore.Open(context.Background(), client, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	memcelltest.IndexIDs(t, db)
	user := "alice"
	m := mustAppend(t, s, &memcell.MemCell{UserID: &user, Timestamp: time.Now(), Keywords: []string{"kyoto"}})

	// What a request does, under ctx.
	requests := func(ctx context.Context) {
		t.Helper()
		steps := []func() error{
			func() error { _, err := s.Get(ctx, m.ID); return err },
			func() error {
				got, err := s.GetMany(ctx, []memcell.ID{m.ID, memcell.NewID()}, nil)
				if err == nil && (len(got) != 1 || got[m.ID] == nil || got[m.ID].UserID == nil) {
					t.Errorf("GetMany = %v", got)
				}
				return err
			},
			func() error {
				got, err := s.GetMany(ctx, []memcell.ID{m.ID}, []string{"summary"})
				if err == nil && (len(got) != 1 || got[m.ID] == nil || got[m.ID].UserID != nil) {
					t.Errorf("GetMany of summary = %v", got)
				}
				return err
			},
			func() error {
				got, err := s.Find(ctx, memcell.Query{UserID: &user, Keywords: []string{"kyoto"}, Limit: 10})
				if err == nil && (len(got) != 1 || got[0].ID != m.ID) {
					t.Errorf("Find = %v", got)
				}
				return err
			},
			func() error { _, err := s.Count(ctx, memcell.Query{Keywords: []string{"kyoto"}}); return err },
			func() error { _, err := s.Update(ctx, m.ID, map[string]any{"summary": "x"}); return err },
			func() error { _, err := s.LookupMany(ctx, []memcell.ID{m.ID}); return err },
		}
		for i, step := range steps {
			if err := step(); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
	}
	// The commands a query or a write of the request path is: not the
	// cursor's getMore and killCursors, which belong to the find.
	queries := func() []event.CommandStartedEvent {
		mu.Lock()
		defer mu.Unlock()
		out := slices.DeleteFunc(slices.Clone(sent), func(e event.CommandStartedEvent) bool {
			switch e.CommandName {
			case "find", "aggregate", "count", "findAndModify", "update", "insert", "delete":
				return e.DatabaseName != db
			}
			return true
		})
		sent = sent[:0]
		return out
	}

	queries()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	requests(ctx)
	got := queries()
	names := map[string]bool{}
	for _, e := range got {
		names[e.CommandName] = true
		v, err := e.Command.LookupErr("maxTimeMS")
		if err != nil {
			t.Errorf("%s under a deadline has no maxTimeMS: %s", e.CommandName, e.Command)
			continue
		}
		if ms, ok := v.AsInt64OK(); !ok || ms <= 0 || ms > time.Minute.Milliseconds() {
			t.Errorf("%s has maxTimeMS %v, want what is left of a minute", e.CommandName, v)
		}
	}
	if !names["find"] || len(got) < 7 {
		t.Errorf("the requests sent %d queries (%v), want a find among at least 7", len(got), names)
	}

	requests(context.Background())
	for _, e := range queries() {
		if _, err := e.Command.LookupErr("maxTimeMS"); err == nil {
			t.Errorf("%s without a deadline has maxTimeMS: %s", e.CommandName, e.Command)
		}
	}
}
