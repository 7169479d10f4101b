package embedded_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
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
	dir := t.TempDir()
	const limit = 1 << 20
	s, err := embedded.Start(ctx, dir, &embedded.Options{WALLimit: limit, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := mongo.Connect(options.Client().ApplyURI(s.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(ctx)
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
	ctx := context.Background()
	dir := t.TempDir()
	const limit = 1 << 20
	s, err := embedded.Start(ctx, dir, &embedded.Options{WALLimit: limit, CheckpointInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := mongo.Connect(options.Client().ApplyURI(s.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(ctx)
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
