package embedded_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/memcell/memcell/embedded"
)

func walSize(t *testing.T, dir string) int64 {
	t.Helper()
	st, err := os.Stat(filepath.Join(dir, "d.sqlite-wal"))
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// growWAL writes documents while a reader holds an old snapshot, so that
// SQLite's own checkpoints cannot rewind the log, until the log is larger
// than size; it returns the reader's transaction, still open.
func growWAL(t *testing.T, dir string, coll *mongo.Collection, size int64) *sql.Tx {
	t.Helper()
	ctx := context.Background()
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "n", Value: -1}}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "d.sqlite")+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reader, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRowContext(ctx, `SELECT count(*) FROM _ferretdb_collections`).Scan(&n); err != nil {
		t.Fatal(err) // the snapshot starts here
	}
	pad := strings.Repeat("x", 4000)
	for i := 0; walSize(t, dir) <= size; i++ {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "n", Value: i}, {Key: "pad", Value: pad}}); err != nil {
			t.Fatal(err)
		}
	}
	return reader
}

// TestCheckpoint checks the embedded primary's journal settings and that
// Checkpoint empties a write-ahead log that SQLite's own checkpoints could
// not rewind while a reader held an old snapshot: busy while the reader
// stays, done once it has gone, with every document still there.
func TestCheckpoint(t *testing.T) {
	ctx := context.Background()
	const limit = 1 << 20
	dir, s, c := startServer(t, &embedded.Options{WALLimit: limit, CheckpointInterval: time.Hour})
	coll := c.Database("d").Collection("c")
	reader := growWAL(t, dir, coll, 3*limit)

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "d.sqlite")+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}

	res, err := s.Checkpoint(ctx, limit)
	if err != nil || len(res) != 1 || res[0].Database != "d" || !res[0].Busy || res[0].WALBytes <= limit {
		t.Fatalf("Checkpoint with a reader on an old snapshot = %+v, %v; want d busy", res, err)
	}
	if err := reader.Rollback(); err != nil {
		t.Fatal(err)
	}
	want, err := coll.CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	res, err = s.Checkpoint(ctx, limit)
	if err != nil || len(res) != 1 || res[0].Busy {
		t.Fatalf("Checkpoint once the reader has gone = %+v, %v; want d done", res, err)
	}
	if n := walSize(t, dir); n != 0 {
		t.Fatalf("the log holds %d bytes after a checkpoint; want it emptied", n)
	}
	if res, err := s.Checkpoint(ctx, limit); err != nil || len(res) != 0 {
		t.Fatalf("Checkpoint of an empty log = %+v, %v; want nothing done", res, err)
	}
	if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != want {
		t.Fatalf("after the checkpoint %d documents, %v; want %d", n, err, want)
	}
}

// TestCheckpointLoop checks that the server checkpoints a log grown past
// WALLimit by itself.
func TestCheckpointLoop(t *testing.T) {
	const limit = 1 << 20
	dir, _, c := startServer(t, &embedded.Options{WALLimit: limit, CheckpointInterval: 200 * time.Millisecond})
	reader := growWAL(t, dir, c.Database("d").Collection("c"), 2*limit)
	if err := reader.Rollback(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for walSize(t, dir) > limit {
		if time.Now().After(deadline) {
			t.Fatalf("the log still holds %d bytes a minute after its reader went; want at most %d", walSize(t, dir), limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// busyLoad runs 4 clients that each insert, read back and update
// documents through c until n documents are written, and returns the
// largest size the log reached meanwhile.
func busyLoad(t *testing.T, dir string, c *mongo.Client, n int) int64 {
	t.Helper()
	ctx := context.Background()
	coll := c.Database("d").Collection("c")
	pad := strings.Repeat("x", 2000)
	var peak atomic.Int64
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				id := bson.NewObjectID()
				if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "pad", Value: pad}}); err != nil {
					errs <- err
					return
				}
				if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Err(); err != nil {
					errs <- err
					return
				}
				if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 1}}}}); err != nil {
					errs <- err
					return
				}
				if w := walSize(t, dir); w > peak.Load() {
					peak.Store(w)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return peak.Load()
}

// TestCheckpointUnderLoad checks that steady concurrent reads and writes
// through clients that use the server's CommandMonitor do not starve the
// checkpoints: the log stays within a few times WALLimit.
func TestCheckpointUnderLoad(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const limit = 1 << 20
	s, err := embedded.Start(ctx, dir, &embedded.Options{WALLimit: limit, CheckpointInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := mongo.Connect(options.Client().ApplyURI(s.URI()).SetMonitor(s.CommandMonitor()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(ctx)
	if err := c.Database("d").CreateCollection(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := s.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	peak := busyLoad(t, dir, c, 3000)
	t.Logf("the log reached %d bytes", peak)
	if peak > 8*limit {
		t.Errorf("the log reached %d bytes under load; want it kept near %d", peak, limit)
	}
}

// startServer starts an embedded server in a new directory with opts and
// connects a client to it; both are closed when the test ends.
func startServer(t *testing.T, opts *embedded.Options) (dir string, s *embedded.Server, c *mongo.Client) {
	t.Helper()
	dir = t.TempDir()
	s, err := embedded.Start(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if c, err = mongo.Connect(options.Client().ApplyURI(s.URI())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return dir, s, c
}
