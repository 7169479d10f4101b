package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/client"
	"github.com/memcell/memcell/embedded"
	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/kv/memkv"
	"github.com/memcell/memcell/mirror"
	"github.com/memcell/memcell/mongostore"
)

// startServer runs memcell's API in-process, as memcell serve does with the
// embedded primary and the in-memory KV, with token as its API token. It
// returns the API's base URL and the function that stops everything.
func startServer(token string) (string, func()) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "memcell-client-example-")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := embedded.Start(ctx, dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	primary, err := mongostore.Connect(ctx, srv.URI(), "example", nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.IndexIDs(ctx, "example"); err != nil {
		log.Fatal(err)
	}
	store, err := memkv.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	// Sync mode: each answer reports its KV write's outcome (the default,
	// async, answers "queued" and writes the KV behind the answer).
	repo, err := mirror.New(primary, store, &mirror.Options{Flags: &mirror.Flags{Mirroring: true, Validation: mirror.ValidationOn, Mode: mirror.ModeSync}})
	if err != nil {
		log.Fatal(err)
	}
	h, err := httpapi.New(repo, &httpapi.Options{Token: token})
	if err != nil {
		log.Fatal(err)
	}
	api := httptest.NewServer(h)
	return api.URL, func() {
		api.Close()
		_ = primary.Close(ctx)
		_ = store.Close()
		_ = srv.Close()
		_ = os.RemoveAll(dir)
	}
}

// Example stores a MemCell, reads it back validated against its KV copy,
// finds it, deletes it and sees it gone.
func Example() {
	url, stop := startServer("s3cret-token")
	defer stop()
	ctx := context.Background()

	c, err := client.New(url, client.Token("s3cret-token"))
	if err != nil {
		log.Fatal(err)
	}
	user, summary := "alice", "planned the Kyoto trip"
	stored, mir, err := c.Append(ctx, &memcell.MemCell{
		UserID:    &user,
		Timestamp: time.Date(2026, 1, 12, 10, 30, 0, 0, time.UTC),
		Summary:   &summary,
		Keywords:  []string{"kyoto", "travel"},
		Extra:     map[string]any{"tenant_id": "t-1"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("appended: revision", stored.Revision, "mirror", mir)

	m, v, err := c.Get(ctx, stored.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("got:", *m.Summary, m.Extra["tenant_id"], "validation", v)

	found, _, err := c.Find(ctx, memcell.Query{UserID: &user, Keywords: []string{"kyoto"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("found:", len(found))

	if _, err := c.SoftDelete(ctx, stored.ID, "alice"); err != nil {
		log.Fatal(err)
	}
	_, _, err = c.Get(ctx, stored.ID)
	var apiErr *client.APIError
	fmt.Println("after delete: not found", errors.Is(err, memcell.ErrNotFound), errors.As(err, &apiErr) && apiErr.Code == "not_found")
	// Output:
	// appended: revision 1 mirror ok
	// got: planned the Kyoto trip t-1 validation consistent
	// found: 1
	// after delete: not found true true
}
