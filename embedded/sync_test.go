package embedded_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/memcell/memcell/embedded"
)

// TestGroupSync checks the default durability setting: commits are not
// synced by SQLite (synchronous(normal)) and the server syncs a log that
// changed within SyncInterval, and only one that changed; with a negative
// SyncInterval SQLite syncs each commit (synchronous(full)) and the server
// syncs nothing itself. A power loss cannot be made here: what is checked
// is that the syncs happen.
func TestGroupSync(t *testing.T) {
	if u := embedded.SQLiteURL("/d", 1, true); !strings.Contains(u, "synchronous(normal)") {
		t.Fatalf("group sync URL %q; want synchronous(normal)", u)
	}
	if u := embedded.SQLiteURL("/d", 1, false); !strings.Contains(u, "synchronous(full)") {
		t.Fatalf("sync per commit URL %q; want synchronous(full)", u)
	}
	syncs, restore := embedded.CountSyncs()
	defer restore()
	ctx := context.Background()
	const interval = 50 * time.Millisecond

	t.Run("group", func(t *testing.T) {
		dir, _, c := startServer(t, &embedded.Options{SyncInterval: interval})
		coll := c.Database("d").Collection("c")
		wal := filepath.Join(dir, "d.sqlite-wal")
		waitSynced := func(after int) int {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for syncs(wal) <= after {
				if time.Now().After(deadline) {
					t.Fatalf("the log was not synced within 10s of a write (%d syncs)", syncs(wal))
				}
				time.Sleep(5 * time.Millisecond)
			}
			return syncs(wal)
		}
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "n", Value: 1}}); err != nil {
			t.Fatal(err)
		}
		n := waitSynced(0)
		time.Sleep(10 * interval)
		idle := syncs(wal)
		if idle > n+1 {
			t.Errorf("%d syncs of an unchanged log in %v; want none", idle-n, 10*interval)
		}
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "n", Value: 2}}); err != nil {
			t.Fatal(err)
		}
		waitSynced(idle)
	})

	t.Run("every commit", func(t *testing.T) {
		dir, _, c := startServer(t, &embedded.Options{SyncInterval: -1})
		coll := c.Database("d").Collection("c")
		for i := range 20 {
			if _, err := coll.InsertOne(ctx, bson.D{{Key: "n", Value: i}}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10 * interval)
		if n := syncs(filepath.Join(dir, "d.sqlite-wal")); n != 0 {
			t.Errorf("the server synced the log %d times; want none (SQLite syncs each commit)", n)
		}
	})
}
