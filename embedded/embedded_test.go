package embedded_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/memcell/memcell/embedded"
)

func TestStartWriteRestartRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()

	s, err := embedded.Start(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("primary at %s", s.URI())
	c, err := mongo.Connect(options.Client().ApplyURI(s.URI()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Database("d").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "x"}, {Key: "v", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	c.Disconnect(ctx)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = embedded.Start(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err = mongo.Connect(options.Client().ApplyURI(s.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(ctx)
	var got bson.M
	if err := c.Database("d").Collection("c").FindOne(ctx, bson.D{{Key: "_id", Value: "x"}}).Decode(&got); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if got["v"] != int32(1) {
		t.Errorf("after restart got %v", got)
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	if _, err := embedded.Start(context.Background(), t.TempDir(), &embedded.Options{Addr: "0.0.0.0:0"}); err == nil {
		t.Fatal("Start on 0.0.0.0 succeeded")
	}
}
