package embedded_test

import (
	"context"
	"database/sql"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestIDIndexUsed checks, on the SQLite file itself, that after IndexIDs a
// lookup by _id as FerretDB pushes it down is an index search, not a scan,
// and that FerretDB still reads, updates and deletes by _id. It fails if
// FerretDB's version or storage layout changed (the metadata table, the
// document column, the pushed-down expression): then IndexIDs must be
// revisited.
func TestIDIndexUsed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, s, c := startServer(t, nil)
	if v := ferretVersion(t); v != "v1.24.2" {
		t.Fatalf("FerretDB %s: IndexIDs is written for v1.24.2's SQLite layout; check it against this one", v)
	}
	coll := c.Database("d").Collection("memcells")
	var ids []bson.ObjectID
	for i := range 50 {
		id := bson.NewObjectID()
		ids = append(ids, id)
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "n", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // idempotent
		if err := s.IndexIDs(ctx); err != nil {
			t.Fatal(err)
		}
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "d.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var table string
	if err := db.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = 'memcells'`).Scan(&table); err != nil {
		t.Fatalf("FerretDB's metadata table: %v", err)
	}
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`, table), ids[7].Hex())
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	rows.Close()
	if p := strings.Join(plan, "; "); !strings.Contains(p, "USING INDEX") || !strings.Contains(p, "_memcell_id") {
		t.Errorf("the pushed-down _id lookup is planned as %q, want a search using the _memcell_id index", p)
	}

	// FerretDB still works by _id over the indexed table.
	var got bson.M
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: ids[7]}}).Decode(&got); err != nil || got["n"] != int32(7) {
		t.Fatalf("FindOne by _id = %v, %v", got, err)
	}
	if r, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: ids[8]}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 80}}}}); err != nil || r.ModifiedCount != 1 {
		t.Fatalf("UpdateOne by _id = %+v, %v", r, err)
	}
	if r, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: ids[9]}}); err != nil || r.DeletedCount != 1 {
		t.Fatalf("DeleteOne by _id = %+v, %v", r, err)
	}
	if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != 49 {
		t.Fatalf("CountDocuments = %d, %v; want 49", n, err)
	}
}

// ferretVersion is the version of the FerretDB module the build uses.
func ferretVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/FerretDB/FerretDB").Output()
	if err != nil {
		t.Fatalf("go list -m FerretDB: %v", err)
	}
	return strings.TrimSpace(string(out))
}
