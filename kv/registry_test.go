package kv_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/memkv"
)

func TestRegistryOpen(t *testing.T) {
	r := kv.NewRegistry()
	r.Register("memory", memkv.OpenURL)
	ctx := context.Background()

	s, err := r.Open(ctx, "MEMORY://?shards=4")
	if err != nil {
		t.Fatalf("Open(memory) = %v", err)
	}
	if got := s.Capabilities().Backend; got != "memory" {
		t.Errorf("backend = %q, want memory", got)
	}
	s.Close()

	_, err = r.Open(ctx, "nosuch://user:hunter2@host/")
	if !errors.Is(err, kv.ErrUnknownScheme) {
		t.Fatalf("Open(nosuch) = %v, want ErrUnknownScheme", err)
	}
	if !strings.Contains(err.Error(), "memory") {
		t.Errorf("error %q does not list the known schemes", err)
	}
	for _, raw := range []string{"nosuch://user:hunter2@host/", "redis://user:hunter2@ho st:1/"} {
		if _, err := r.Open(ctx, raw); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error %v leaks the password or succeeded", raw, err)
		}
	}
	if got := r.Schemes(); len(got) != 1 || got[0] != "memory" {
		t.Errorf("Schemes = %v", got)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	r := kv.NewRegistry()
	r.Register("memory", memkv.OpenURL)
	defer func() {
		if recover() == nil {
			t.Error("registering a scheme twice did not panic")
		}
	}()
	r.Register("memory", memkv.OpenURL)
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"redis://user:hunter2@localhost:6379/0?prefix=x":     "redis://user:xxxxx@localhost:6379/0?prefix=x",
		"redis://localhost:6379/0?password=hunter2&prefix=x": "redis://localhost:6379/0?password=xxxxx&prefix=x",
		"redis+cluster://:hunter2@h1:7000?addr=h2:7001":      "redis+cluster://:xxxxx@h1:7000?addr=h2:7001",
		"pebble:///var/lib/kv?sync=true":                     "pebble:///var/lib/kv?sync=true",
		"redis://user:hunter2@[::1:6379/0":                   "<unparsable URL>",
	} {
		if got := kv.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestQuery(t *testing.T) {
	u, _ := url.Parse("x://?a=1&b=true&d=30s&s=hello&extra=1")
	q := kv.NewQuery(u)
	if got := q.Int("a", 0, 1); got != 1 {
		t.Errorf("Int = %d", got)
	}
	if !q.Bool("b", false) || q.Duration("d", 0) != 30*time.Second || q.String("s", "") != "hello" {
		t.Error("getters returned wrong values")
	}
	if q.Int("absent", 7, 0) != 7 {
		t.Error("default not used")
	}
	if err := q.Done(); !errors.Is(err, kv.ErrInvalidOptions) || !strings.Contains(err.Error(), "extra") {
		t.Errorf("Done = %v, want the unknown option named", err)
	}

	for _, raw := range []string{"x://?a=0", "x://?a=z", "x://?b=maybe", "x://?d=-1s", "x://?d=soon", "x://?a=1&a=2"} {
		u, _ := url.Parse(raw)
		q := kv.NewQuery(u)
		q.Int("a", 1, 1)
		q.Bool("b", false)
		q.Duration("d", 0)
		if err := q.Done(); !errors.Is(err, kv.ErrInvalidOptions) {
			t.Errorf("%s: Done = %v, want ErrInvalidOptions", raw, err)
		}
	}
}
