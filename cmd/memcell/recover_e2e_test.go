package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestEndToEndRecover writes MemCells of every shape through the API of a
// server on the embedded default, reads each from MongoDB (through the
// driver, on the embedded primary's address) and through the API, drops the
// collection, runs kv recover in the server, and checks that every document
// came back field by field and type by type, every API answer byte for
// byte, a hard-deleted one not at all, and that kv verify then agrees.
func TestEndToEndRecover(t *testing.T) {
	dir := t.TempDir()
	addr, embedded := freeAddr(t), freeAddr(t)
	s := startServer(t, nil, "--data-dir", dir, "--addr", addr, "--embedded-addr", embedded)
	post := func(body doc) string {
		t.Helper()
		var created doc
		s.want("POST", "/v1/memcells", body, http.StatusCreated, &created)
		return created["event_id"].(string)
	}
	var ids []string
	// Every known field, and extras with nested objects, numbers of each
	// kind JSON has, booleans and nulls.
	ids = append(ids, post(doc{
		"user_id": "alice", "timestamp": "2026-01-12T10:30:00.123456+02:00", "summary": "full",
		"group_id": "g1", "participants": []string{"alice", "bob"}, "type": "Conversation",
		"subject": "subject", "keywords": []string{"k1", "k2"}, "linked_entities": []string{},
		"episode": "an episode", "foresight_memories": []doc{{"content": "later", "score": 0.5}},
		"event_log":     doc{"atomic_fact": []string{"a", "b"}, "n": 3},
		"extend":        doc{"embedding": []any{0.25, -1.5, 3}},
		"original_data": []doc{{"data_type": "Conversation", "messages": []doc{{"content": "hello", "files": []string{"a.txt"}}}}},
		"tenant_id":     "t-1",
		"meta": doc{"int": 7, "negative": -42, "float": 0.1, "whole_float": 2.0, "big": int64(1) << 53,
			"nested": doc{"list": []any{1, 2.5, "x", true, nil, doc{"deep": "yes"}}}},
		"flag": false, "nothing": nil,
	}))
	// A double with an integer value, as JSON "2.0": MongoDB holds a
	// double, the canonical copy the number 2, which recover writes as an
	// int64 (the one type change; see the README's Disaster recovery).
	wholeDouble := post(doc{"user_id": "gina", "timestamp": "2026-01-12T00:00:00Z", "ratio": json.RawMessage("2.0"), "half": json.RawMessage("2.5")})
	ids = append(ids, wholeDouble)
	// Unicode everywhere.
	ids = append(ids, post(doc{"user_id": "zoë", "timestamp": "2026-01-13T00:00:00Z", "summary": "héllo 🧠 ✓ 日本語",
		"keywords": []string{"🧠", "ñ"}, "note": "Ελληνικά \u2028 \"quoted\" \\ slash"}))
	// Minimal.
	ids = append(ids, post(doc{"user_id": "bob", "timestamp": "2026-01-14T00:00:00Z"}))
	// Soft-deleted.
	soft := post(doc{"user_id": "carol", "timestamp": "2026-01-15T00:00:00Z", "summary": "soft", "x": 1})
	s.want("DELETE", "/v1/memcells/"+soft+"?deleted_by=e2e", nil, http.StatusNoContent, nil)
	ids = append(ids, soft)
	// Restored.
	restored := post(doc{"user_id": "dave", "timestamp": "2026-01-16T00:00:00Z", "summary": "restored"})
	s.want("DELETE", "/v1/memcells/"+restored+"?deleted_by=e2e", nil, http.StatusNoContent, nil)
	s.want("POST", "/v1/memcells/"+restored+"/restore", nil, http.StatusOK, nil)
	ids = append(ids, restored)
	// Updated many times, an extra field and a known one set and unset.
	updated := post(doc{"user_id": "erin", "timestamp": "2026-01-17T00:00:00Z", "summary": "v0", "counter": 0})
	for i := range 12 {
		s.want("PATCH", "/v1/memcells/"+updated, doc{"summary": fmt.Sprintf("v%d", i+1), "counter": i + 1, "score": float64(i) + 0.5}, http.StatusOK, nil)
	}
	s.want("PATCH", "/v1/memcells/"+updated, doc{"subject": "set"}, http.StatusOK, nil)
	s.want("PATCH", "/v1/memcells/"+updated, doc{"subject": nil, "added_late": doc{"k": []any{1, "two"}}}, http.StatusOK, nil)
	ids = append(ids, updated)
	// Hard-deleted: never comes back.
	hard := post(doc{"user_id": "frank", "timestamp": "2026-01-18T00:00:00Z"})
	s.want("DELETE", "/v1/memcells/"+hard+"?hard=true", nil, http.StatusNoContent, nil)

	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + embedded + "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	coll := client.Database("memcell").Collection("memcells")
	readAll := func() map[string]bson.Raw {
		t.Helper()
		out := map[string]bson.Raw{}
		cur, err := coll.Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		defer cur.Close(ctx)
		for cur.Next(ctx) {
			out[cur.Current.Lookup("_id").ObjectID().Hex()] = slices.Clone(cur.Current)
		}
		if err := cur.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	type answer struct {
		status int
		body   []byte
	}
	getAll := func() map[string]answer {
		t.Helper()
		out := map[string]answer{}
		for _, id := range append(slices.Clone(ids), hard) {
			resp, body := s.call("GET", "/v1/memcells/"+id, "", nil, nil)
			out[id] = answer{resp.StatusCode, body}
		}
		return out
	}
	// The KV writes are done when the API answers; the clearer removes
	// their write intents within a second. A recovered document carries
	// the empty intent of a settled one.
	before := readAll()
	for deadline := time.Now().Add(30 * time.Second); ; before = readAll() {
		settled := true
		for _, raw := range before {
			if vals, _ := raw.Lookup("kv_intent").Array().Values(); len(vals) != 0 {
				settled = false
			}
		}
		if settled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the write intents were not cleared within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	apiBefore := getAll()
	if len(before) != len(ids) {
		t.Fatalf("the primary holds %d documents, want %d", len(before), len(ids))
	}
	if a := apiBefore[soft]; a.status != http.StatusNotFound {
		t.Fatalf("GET of the soft-deleted document = %d", a.status)
	}

	if err := coll.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readAll(); len(got) != 0 {
		t.Fatalf("after the drop the primary holds %d documents", len(got))
	}
	jobArgs := []string{"--server", s.url, "--progress", "none"}
	code, out := runCLI(t, append([]string{"kv", "recover", "--dry-run"}, jobArgs...)...)
	if code != 1 || !strings.Contains(out, fmt.Sprintf("%d would recover: %d lost", len(ids), len(ids))) || !strings.Contains(out, "nothing written") {
		t.Fatalf("kv recover --dry-run exit %d, want 1:\n%s", code, out)
	}
	if got := readAll(); len(got) != 0 {
		t.Fatalf("the dry run wrote %d documents", len(got))
	}
	code, out = runCLI(t, append([]string{"kv", "recover"}, jobArgs...)...)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("; %d recovered, 0 present, 0 hard-deleted", len(ids))) {
		t.Fatalf("kv recover exit %d, want 0:\n%s\n%s", code, out, s.stderr)
	}

	after := readAll()
	if len(after) != len(before) {
		t.Errorf("recovered %d documents, want %d", len(after), len(before))
	}
	if _, ok := after[hard]; ok {
		t.Errorf("the hard-deleted document %s came back", hard)
	}
	for id, want := range before {
		got, ok := after[id]
		if !ok {
			t.Errorf("%s was not recovered", id)
			continue
		}
		if id == wholeDouble {
			if r, ok := got.Lookup("ratio").Int64OK(); !ok || r != 2 || want.Lookup("ratio").Double() != 2 {
				t.Errorf("ratio was %s, recovered as %s; want the double 2 back as the int64 2", want.Lookup("ratio"), got.Lookup("ratio"))
			}
			want = withInt64(t, want, "ratio", 2)
		}
		if diff := rawDiff(want, got); diff != "" {
			t.Errorf("%s differs after recover:\n%s", id, diff)
		}
	}
	for id, want := range apiBefore {
		got := getAll()[id]
		if got.status != want.status || !bytes.Equal(got.body, want.body) {
			t.Errorf("GET %s after recover = %d %s\nwant %d %s", id, got.status, got.body, want.status, want.body)
		}
	}
	// Running it again finds everything in place.
	if code, out = runCLI(t, append([]string{"kv", "recover", "--overwrite-older"}, jobArgs...)...); code != 0 ||
		!strings.Contains(out, fmt.Sprintf("nothing to recover; 0 recovered, %d present", len(ids))) {
		t.Errorf("second kv recover exit %d:\n%s", code, out)
	}
	if code, out = runCLI(t, append([]string{"kv", "verify"}, jobArgs...)...); code != 0 {
		t.Errorf("kv verify after recover exit %d, want 0:\n%s", code, out)
	}
	s.stop()
}

// withInt64 returns doc with the field key set to the int64 n, in place.
func withInt64(t *testing.T, doc bson.Raw, key string, n int64) bson.Raw {
	t.Helper()
	var d bson.D
	if err := bson.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	for i := range d {
		if d[i].Key == key {
			d[i].Value = n
		}
	}
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawDiff lists how two documents differ: fields missing on either side,
// values of another BSON type or other bytes, and a different order of the
// known fields (up to kv_intent). Extra fields come back sorted by name, as
// an append writes them; an update appends a new one after the others, so
// their order may differ.
func rawDiff(want, got bson.Raw) string {
	we, err1 := want.Elements()
	ge, err2 := got.Elements()
	if err1 != nil || err2 != nil {
		return fmt.Sprintf("unreadable: %v %v", err1, err2)
	}
	var b strings.Builder
	gm := map[string]bson.RawValue{}
	var gk, wk []string
	for _, e := range ge {
		gm[e.Key()] = e.Value()
		gk = append(gk, e.Key())
	}
	for _, e := range we {
		wk = append(wk, e.Key())
		g, ok := gm[e.Key()]
		switch {
		case !ok:
			fmt.Fprintf(&b, "  %s: missing (was %s %s)\n", e.Key(), e.Value().Type, e.Value())
		case g.Type != e.Value().Type || !bytes.Equal(g.Value, e.Value().Value):
			fmt.Fprintf(&b, "  %s: %s %s, was %s %s\n", e.Key(), g.Type, g, e.Value().Type, e.Value())
		}
		delete(gm, e.Key())
	}
	for k, v := range gm {
		fmt.Fprintf(&b, "  %s: added %s %s\n", k, v.Type, v)
	}
	known := func(keys []string) []string { return keys[:slices.Index(keys, "kv_intent")+1] }
	if b.Len() == 0 && !slices.Equal(known(wk), known(gk)) {
		fmt.Fprintf(&b, "  field order %v, was %v\n", gk, wk)
	}
	return b.String()
}
