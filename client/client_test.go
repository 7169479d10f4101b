package client_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/client"
	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/memcelltest"
	"github.com/memcell/memcell/mirror"
)

func TestMain(m *testing.M) { os.Exit(memcelltest.Main(m)) }

// flakyPrimary is a primary whose Get fails with memcell.ErrUnavailable
// while down is set, as a primary that cannot be reached.
type flakyPrimary struct {
	memcell.Primary
	down atomic.Bool
}

func (p *flakyPrimary) Get(ctx context.Context, id memcell.ID) (*memcell.MemCell, error) {
	if p.down.Load() {
		return nil, memcell.ErrUnavailable
	}
	return p.Primary.Get(ctx, id)
}

// server starts the API in-process over a fresh primary database and an
// in-memory KV, with token as its API token when not empty, and returns
// its base URL and its primary.
func server(t testing.TB, token string) (string, *flakyPrimary) {
	t.Helper()
	store, _ := memcelltest.Store(t)
	primary := &flakyPrimary{Primary: store}
	// Sync mode: the tests read each write's KV outcome from its answer.
	repo, err := mirror.New(primary, memcelltest.KVBackends()[0].Open(t, 0), &mirror.Options{Flags: &mirror.Flags{Mirroring: true, Validation: mirror.ValidationOn, Mode: mirror.ModeSync}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := httpapi.New(repo, &httpapi.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, primary
}

func newClient(t testing.TB, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// encodeAPI is memcell.EncodeAPI that fails the test on error.
func encodeAPI(t testing.TB, m *memcell.MemCell) []byte {
	t.Helper()
	b, err := memcell.EncodeAPI(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameCell fails the test unless got and want have the same API
// representation.
func sameCell(t testing.TB, what string, got, want *memcell.MemCell) {
	t.Helper()
	if g, w := encodeAPI(t, got), encodeAPI(t, want); !bytes.Equal(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// TestClientRoundTrip runs every method of Client against the API: what
// Append sends comes back whole (extra fields, numbers, nesting), and each
// answer carries its header.
func TestClientRoundTrip(t *testing.T) {
	ctx := context.Background()
	url, _ := server(t, "s3cret-token")
	c := newClient(t, url, client.Token("s3cret-token"), client.HTTPClient(&http.Client{Timeout: 30 * time.Second}))
	r := rand.New(rand.NewPCG(1, 2))

	in := memcelltest.NewMemCell(r, 2000)
	in.UserID, in.GroupID = new("alice"), nil
	in.Keywords = []string{"kyoto", "budget"}
	stored, mir, err := c.Append(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if mir != client.MirrorOK {
		t.Errorf("Append mirror = %q, want ok", mir)
	}
	if stored.ID.IsZero() || stored.Revision != 1 || stored.CreatedAt == nil {
		t.Fatalf("Append = id %s revision %d created %v, want an id, revision 1, a date", stored.ID, stored.Revision, stored.CreatedAt)
	}
	want := *in
	want.ID, want.Revision, want.CreatedAt, want.UpdatedAt = stored.ID, stored.Revision, stored.CreatedAt, stored.UpdatedAt
	want.Timestamp = memcell.NormalizeTime(in.Timestamp)
	sameCell(t, "Append", stored, &want)

	got, v, err := c.Get(ctx, stored.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v != client.ValidationConsistent {
		t.Errorf("Get validation = %q, want consistent", v)
	}
	sameCell(t, "Get", got, stored)
	if _, v, err := c.Get(ctx, stored.ID, client.Validate(false)); err != nil || v != "" {
		t.Errorf("Get with Validate(false) = %q, %v; want no validation", v, err)
	}

	// A chosen id is kept.
	chosen := memcelltest.NewMemCell(r, 0)
	chosen.ID, chosen.UserID, chosen.GroupID = memcell.NewID(), new("alice"), nil
	chosen.Keywords = []string{"music"}
	if s, _, err := c.Append(ctx, chosen); err != nil || s.ID != chosen.ID {
		t.Fatalf("Append with id %s = %v, %v", chosen.ID, s, err)
	}

	updated, mir, err := c.Update(ctx, stored.ID, map[string]any{"summary": "new summary", "subject": nil, "tenant_id": "t-2"})
	if err != nil {
		t.Fatal(err)
	}
	if mir != client.MirrorOK || updated.Revision != 2 || *updated.Summary != "new summary" || updated.Subject != nil || updated.Extra["tenant_id"] != "t-2" {
		t.Errorf("Update = mirror %q, %s", mir, encodeAPI(t, updated))
	}

	alice := "alice"
	for _, tc := range []struct {
		name string
		q    memcell.Query
		want []memcell.ID
	}{
		{"user, newest first", memcell.Query{UserID: &alice}, []memcell.ID{stored.ID, chosen.ID}},
		{"ascending", memcell.Query{UserID: &alice, Ascending: true}, []memcell.ID{chosen.ID, stored.ID}},
		{"keyword", memcell.Query{Keywords: []string{"music"}}, []memcell.ID{chosen.ID}},
		{"all keywords", memcell.Query{Keywords: []string{"kyoto", "budget"}, KeywordsAll: true}, []memcell.ID{stored.ID}},
		{"limit and skip", memcell.Query{UserID: &alice, Limit: 1, Skip: 1}, []memcell.ID{chosen.ID}},
		{"range in another zone", memcell.Query{
			Start: new(want.Timestamp.In(time.FixedZone("", 5*3600+1800))),
			End:   new(want.Timestamp.Add(time.Millisecond).In(time.FixedZone("", -7*3600))),
		}, []memcell.ID{stored.ID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cells, v, err := c.Find(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if v != "" {
				t.Errorf("Find validation = %q, want none", v)
			}
			var ids []memcell.ID
			for _, m := range cells {
				ids = append(ids, m.ID)
			}
			if len(ids) != len(tc.want) || (len(ids) > 0 && ids[0] != tc.want[0]) {
				t.Errorf("Find = %v, want %v", ids, tc.want)
			}
			q := tc.q
			q.Limit, q.Skip = 0, 0
			n, err := c.Count(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if tc.name != "limit and skip" && n != int64(len(tc.want)) {
				t.Errorf("Count = %d, want %d", n, len(tc.want))
			}
		})
	}
	cells, v, err := c.Find(ctx, memcell.Query{UserID: &alice}, client.Validate(true))
	if err != nil || len(cells) != 2 || v != client.ValidationConsistent {
		t.Errorf("Find with Validate(true) = %d MemCells, %q, %v; want 2, consistent", len(cells), v, err)
	}
	sameCell(t, "Find", cells[0], updated)

	absent := memcell.NewID()
	found, missing, v, err := c.BatchGet(ctx, []memcell.ID{stored.ID, absent, chosen.ID, stored.ID}, client.Validate(true))
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 || found[stored.ID] == nil || found[chosen.ID] == nil || len(missing) != 1 || missing[0] != absent || v != client.ValidationConsistent {
		t.Fatalf("BatchGet = %d found, missing %v, %q", len(found), missing, v)
	}
	sameCell(t, "BatchGet", found[stored.ID], updated)

	if mir, err := c.SoftDelete(ctx, stored.ID, "tester"); err != nil || mir != client.MirrorOK {
		t.Fatalf("SoftDelete = %q, %v", mir, err)
	}
	if _, _, err := c.Get(ctx, stored.ID); !errors.Is(err, memcell.ErrNotFound) {
		t.Errorf("Get after SoftDelete = %v, want ErrNotFound", err)
	}
	restored, mir, err := c.Restore(ctx, stored.ID)
	if err != nil || mir != client.MirrorOK {
		t.Fatalf("Restore = %q, %v", mir, err)
	}
	if restored.Deleted() || restored.Revision != 4 {
		t.Errorf("Restore = %s, want live at revision 4", encodeAPI(t, restored))
	}
	if mir, err := c.HardDelete(ctx, stored.ID); err != nil || mir != client.MirrorOK {
		t.Fatalf("HardDelete = %q, %v", mir, err)
	}
	if n, err := c.Count(ctx, memcell.Query{UserID: &alice}); err != nil || n != 1 {
		t.Errorf("Count after HardDelete = %d, %v; want 1", n, err)
	}

	// The generated client reaches the other routes with the same token.
	res, err := c.API().KvStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("API().KvStats = %d, want 200", res.StatusCode)
	}
}

// TestClientErrors holds every error answer to the sentinel it wraps, with
// the API's code and message, and the queries the API cannot express to
// ErrInvalid without a request.
func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	url, primary := server(t, "s3cret-token")
	c := newClient(t, url, client.Token("s3cret-token"))
	ts := time.Date(2026, 1, 12, 10, 30, 0, 0, time.UTC)
	m, _, err := c.Append(ctx, &memcell.MemCell{Timestamp: ts})
	if err != nil {
		t.Fatal(err)
	}
	absent := memcell.NewID()
	tooMany := make([]memcell.ID, httpapi.MaxBatchIDs+1)
	for i := range tooMany {
		tooMany[i] = memcell.NewID()
	}
	for _, tc := range []struct {
		name   string
		call   func(c *client.Client) error
		is     error
		status int
		code   string
	}{
		{"get absent", func(c *client.Client) error { _, _, err := c.Get(ctx, absent); return err }, memcell.ErrNotFound, 404, "not_found"},
		{"update absent", func(c *client.Client) error {
			_, _, err := c.Update(ctx, absent, map[string]any{"summary": "x"})
			return err
		}, memcell.ErrNotFound, 404, "not_found"},
		{"soft delete absent", func(c *client.Client) error { _, err := c.SoftDelete(ctx, absent, ""); return err }, memcell.ErrNotFound, 404, "not_found"},
		{"hard delete absent", func(c *client.Client) error { _, err := c.HardDelete(ctx, absent); return err }, memcell.ErrNotFound, 404, "not_found"},
		{"restore live", func(c *client.Client) error { _, _, err := c.Restore(ctx, m.ID); return err }, memcell.ErrNotFound, 404, "not_found"},
		{"append duplicate id", func(c *client.Client) error {
			_, _, err := c.Append(ctx, &memcell.MemCell{ID: m.ID, Timestamp: ts})
			return err
		}, memcell.ErrConflict, 409, "conflict"},
		{"append invalid", func(c *client.Client) error {
			_, _, err := c.Append(ctx, &memcell.MemCell{Timestamp: ts, Type: new(memcell.DataType("Email"))})
			return err
		}, memcell.ErrInvalid, 400, "invalid_argument"},
		{"update managed field", func(c *client.Client) error {
			_, _, err := c.Update(ctx, m.ID, map[string]any{"revision": 9})
			return err
		}, memcell.ErrInvalid, 400, "invalid_argument"},
		{"find bad range", func(c *client.Client) error {
			_, _, err := c.Find(ctx, memcell.Query{Start: &ts, End: &ts})
			return err
		}, memcell.ErrInvalid, 400, "invalid_argument"},
		{"count bad range", func(c *client.Client) error {
			_, err := c.Count(ctx, memcell.Query{Start: &ts, End: &ts})
			return err
		}, memcell.ErrInvalid, 400, "invalid_argument"},
		{"batch get too many", func(c *client.Client) error { _, _, _, err := c.BatchGet(ctx, tooMany); return err }, memcell.ErrInvalid, 400, "invalid_argument"},
		{"primary unavailable", func(c *client.Client) error {
			primary.down.Store(true)
			defer primary.down.Store(false)
			_, _, err := c.Get(ctx, m.ID)
			return err
		}, memcell.ErrUnavailable, 503, "unavailable"},
		{"wrong token", func(*client.Client) error {
			_, _, err := newClient(t, url, client.Token("wrong")).Get(ctx, m.ID)
			return err
		}, nil, 401, "unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(c)
			var ae *client.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error = %v, want an *APIError", err)
			}
			if ae.Status != tc.status || ae.Code != tc.code || ae.Message == "" || ae.RequestID == "" {
				t.Errorf("error = %+v, want status %d, code %s, a message and a request id", ae, tc.status, tc.code)
			}
			for _, s := range []error{memcell.ErrNotFound, memcell.ErrConflict, memcell.ErrInvalid, memcell.ErrUnavailable} {
				if got := errors.Is(err, s); got != (s == tc.is) {
					t.Errorf("errors.Is(%v, %v) = %v", err, s, got)
				}
			}
		})
	}

	// Queries the API cannot express fail before any request.
	for _, q := range []memcell.Query{
		{Type: new(memcell.Conversation)},
		{Keywords: []string{"a,b"}},
		{Participants: []string{"x"}, Keywords: []string{"y"}, KeywordsAll: true},
	} {
		_, _, ferr := c.Find(ctx, q)
		_, cerr := c.Count(ctx, q)
		var ae *client.APIError
		for _, err := range []error{ferr, cerr} {
			if !errors.Is(err, memcell.ErrInvalid) || errors.As(err, &ae) {
				t.Errorf("query %+v: error %v, want ErrInvalid without a request", q, err)
			}
		}
	}
}

// TestClientUnexpectedAnswers feeds the client answers the API never gives:
// a body that is no MemCell, an error that is not the API's shape.
func TestClientUnexpectedAnswers(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"event_id":"nope"}`))
			return
		}
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL)
	_, _, err := c.Get(ctx, memcell.NewID())
	if !errors.Is(err, client.ErrUnexpectedAnswer) || errors.Is(err, memcell.ErrInvalid) {
		t.Errorf("Get of a bad MemCell = %v, want ErrUnexpectedAnswer and not ErrInvalid", err)
	}
	_, err = c.HardDelete(ctx, memcell.NewID())
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadGateway || ae.Code != "" || ae.Message != "bad gateway" || ae.Unwrap() != nil {
		t.Errorf("HardDelete answered 502 = %#v, want an *APIError with the body as message", err)
	}
}

// TestClientBulk runs the bulk operations on a user's MemCells and on a
// time range.
func TestClientBulk(t *testing.T) {
	ctx := context.Background()
	url, _ := server(t, "")
	c := newClient(t, url)
	ts := time.Date(2026, 1, 12, 10, 30, 0, 0, time.UTC)
	bob, carol := "bob", "carol"
	for i, user := range []string{bob, bob, carol} {
		if _, _, err := c.Append(ctx, &memcell.MemCell{UserID: &user, Timestamp: ts.Add(time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(user string) int64 {
		t.Helper()
		n, err := c.Count(ctx, memcell.Query{UserID: &user})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n, mir, err := c.SoftDeleteMany(ctx, memcell.Scope{UserID: &bob}, "tester"); err != nil || n != 2 || mir != client.MirrorOK {
		t.Fatalf("SoftDeleteMany(bob) = %d, %q, %v; want 2, ok", n, mir, err)
	}
	if n := count(bob); n != 0 {
		t.Errorf("bob has %d MemCells after SoftDeleteMany, want 0", n)
	}
	if n, mir, err := c.RestoreMany(ctx, memcell.Scope{UserID: &bob}); err != nil || n != 2 || mir != client.MirrorOK {
		t.Fatalf("RestoreMany(bob) = %d, %q, %v; want 2, ok", n, mir, err)
	}
	// The range holds the second of bob's and carol's.
	start, end := ts.Add(time.Hour), ts.Add(3*time.Hour)
	if n, mir, err := c.HardDeleteMany(ctx, memcell.Scope{Start: &start, End: &end}); err != nil || n != 2 || mir != client.MirrorOK {
		t.Fatalf("HardDeleteMany(range) = %d, %q, %v; want 2, ok", n, mir, err)
	}
	if nb, nc := count(bob), count(carol); nb != 1 || nc != 0 {
		t.Errorf("after HardDeleteMany bob has %d, carol %d; want 1, 0", nb, nc)
	}
	for name, call := range map[string]func() error{
		"SoftDeleteMany": func() error { _, _, err := c.SoftDeleteMany(ctx, memcell.Scope{}, ""); return err },
		"HardDeleteMany": func() error { _, _, err := c.HardDeleteMany(ctx, memcell.Scope{Start: &start}); return err },
		"RestoreMany":    func() error { _, _, err := c.RestoreMany(ctx, memcell.Scope{}); return err },
	} {
		var ae *client.APIError
		if err := call(); !errors.Is(err, memcell.ErrInvalid) || !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
			t.Errorf("%s with a bad scope = %v, want a 400 wrapping ErrInvalid", name, err)
		}
	}
}
