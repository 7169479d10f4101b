// Package memcelltest provides what memcell's tests share: a real
// MongoDB-wire primary with an isolated database per test, fixtures and
// random operation generators.
//
// By default the primary is the embedded FerretDB (package embedded),
// started once per test binary by Main. Set MEMCELL_TEST_MONGO_URI to run the
// same tests against a real MongoDB instead, e.g.
//
//	MEMCELL_TEST_MONGO_URI='mongodb://127.0.0.1:27017/?replicaSet=rs0' make test
//
// A replica set enables the transaction tests.
package memcelltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/memcell/memcell/embedded"
	"github.com/memcell/memcell/mongostore"
)

// EnvMongoURI names the environment variable that points the tests at a
// real MongoDB.
const EnvMongoURI = "MEMCELL_TEST_MONGO_URI"

var shared struct {
	mu     sync.Mutex
	uri    string
	client *mongo.Client
	server *embedded.Server
	dir    string
}

// Main runs a test binary's tests with a primary: the one in
// MEMCELL_TEST_MONGO_URI, or an embedded one started here and stopped after.
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(memcelltest.Main(m)) }
func Main(m *testing.M) int {
	if err := start(); err != nil {
		fmt.Fprintln(os.Stderr, "memcelltest:", err)
		return 1
	}
	code := m.Run()
	stop()
	return code
}

func start() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	uri := os.Getenv(EnvMongoURI)
	if uri == "" {
		dir, err := os.MkdirTemp("", "memcelltest-primary-")
		if err != nil {
			return err
		}
		s, err := embedded.Start(ctx, dir, nil)
		if err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("starting the embedded primary: %w", err)
		}
		shared.server, shared.dir, uri = s, dir, s.URI()
	}
	co := options.Client().ApplyURI(uri)
	if shared.server != nil {
		co.SetMonitor(shared.server.CommandMonitor())
	}
	client, err := mongo.Connect(co)
	if err == nil {
		err = client.Ping(ctx, nil)
	}
	if err != nil {
		return fmt.Errorf("the test primary does not answer (set %s to a reachable MongoDB, or unset it to use the embedded one): %w", EnvMongoURI, err)
	}
	shared.uri, shared.client = uri, client
	return nil
}

func stop() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.client != nil {
		_ = shared.client.Disconnect(context.Background())
	}
	if shared.server != nil {
		_ = shared.server.Close()
		os.RemoveAll(shared.dir)
	}
}

// URI is the primary's connection string. Tests must run under Main.
func URI(t testing.TB) string {
	t.Helper()
	mustStarted(t)
	return shared.uri
}

// Client is a client connected to the primary, shared by the tests.
func Client(t testing.TB) *mongo.Client {
	t.Helper()
	mustStarted(t)
	return shared.client
}

func mustStarted(t testing.TB) {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.client == nil {
		t.Fatal("memcelltest: no primary; call memcelltest.Main from TestMain")
	}
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_]+`)

// Database returns the name of a new, empty database for this test, dropped
// when the test ends.
func Database(t testing.TB) string {
	t.Helper()
	client := Client(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := unsafeName.ReplaceAllString(t.Name(), "_")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	name = strings.Trim("t_"+hex.EncodeToString(b[:])+"_"+name, "_")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := client.Database(name).Drop(ctx); err != nil {
			t.Logf("memcelltest: dropping %s: %v", name, err)
		}
	})
	return name
}

// IndexIDs gives the collections of database on the embedded test primary
// the _id index the program gives its own (embedded.Server.IndexIDs); with
// an external MongoDB it does nothing. Call it once the collections exist.
func IndexIDs(t testing.TB, database string) {
	t.Helper()
	mustStarted(t)
	if shared.server == nil {
		return
	}
	if err := shared.server.IndexIDs(context.Background(), database); err != nil {
		t.Fatalf("memcelltest: %v", err)
	}
}

// Store opens a mongostore.Store on a fresh database of the test primary
// (Database) and returns it with the database's name. On the embedded
// primary it is set up as the program sets up its own: the collections'
// _id lookups indexed (IndexIDs) and Find and Count answered through the
// query index (embedded.QueryIndex).
func Store(t testing.TB) (*mongostore.Store, string) {
	t.Helper()
	db := Database(t)
	var opts mongostore.Options
	if idx := QueryIndex(t, db); idx != nil {
		opts.Index = idx
	}
	s, err := mongostore.Open(context.Background(), Client(t), db, &opts)
	if err != nil {
		t.Fatal(err)
	}
	IndexIDs(t, db)
	return s, db
}

// QueryIndex returns the query index of database's memcell collection on
// the embedded test primary, closed when the test ends; nil with an
// external MongoDB.
func QueryIndex(t testing.TB, database string) *embedded.QueryIndex {
	t.Helper()
	mustStarted(t)
	if shared.server == nil {
		return nil
	}
	idx := shared.server.QueryIndex(database, mongostore.DefaultCollection)
	t.Cleanup(func() { _ = idx.Close() })
	return idx
}

// SupportsTransactions reports whether the primary can run transactions: a
// replica set member or a mongos.
func SupportsTransactions(t testing.TB) bool {
	t.Helper()
	var hello bson.M
	err := Client(t).Database("admin").RunCommand(context.Background(), bson.D{{Key: "hello", Value: 1}}).Decode(&hello)
	if err != nil {
		t.Fatalf("hello: %v", err)
	}
	_, rs := hello["setName"]
	return rs || hello["msg"] == "isdbgrid"
}

// Collection returns the driver collection of a namespace
// ("database.collection", as mongostore.Store.Namespace gives it), for
// tests that read or write stored documents behind the store's back.
func Collection(t testing.TB, namespace string) *mongo.Collection {
	t.Helper()
	db, coll, ok := strings.Cut(namespace, ".")
	if !ok {
		t.Fatalf("memcelltest: namespace %q is not database.collection", namespace)
	}
	return Client(t).Database(db).Collection(coll)
}
