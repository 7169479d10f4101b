package rediskv

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/rediskv/redistest"
)

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
	_, err := Open(ctx, client, nil)
	if err == nil || !strings.Contains(err.Error(), "rediskv: open: ping 127.0.0.1:1") {
		t.Errorf("Open of an unreachable server = %v; want a ping error naming the address", err)
	}
	if err := client.Ping(ctx).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("after a failed Open the client answers %v; Open should have closed it", err)
	}
	if _, err := Open(ctx, nil, nil); !errors.Is(err, kv.ErrInvalidOptions) {
		t.Errorf("Open(nil client) = %v, want kv.ErrInvalidOptions", err)
	}
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	if _, err := Open(ctx, ring, nil); !errors.Is(err, kv.ErrInvalidOptions) {
		t.Errorf("Open(ring) = %v, want kv.ErrInvalidOptions", err)
	}

	const secret = "s3cr3t-Pa55"
	u, _ := url.Parse("redis://memcell:" + secret + "@127.0.0.1:1/0?dial_timeout=1s&max_retries=-1")
	_, err = OpenURL(ctx, u)
	if err == nil || errors.Is(err, kv.ErrInvalidOptions) || strings.Contains(err.Error(), secret) ||
		!strings.Contains(err.Error(), "rediskv: open redis://memcell:xxxxx@127.0.0.1:1/0: ping 127.0.0.1:1") {
		t.Errorf("OpenURL of an unreachable server = %v; want an error naming the redacted URL", err)
	}
}

func TestOpenURL(t *testing.T) {
	tg := standalone()
	tg.Require(t)
	prefix := redistest.UniquePrefix()
	u, err := url.Parse("redis://" + tg.Addrs[0] + "/0?prefix=" + url.QueryEscape(prefix) + "&tombstone_grace=90s&client_name=memcell-test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenURL(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		tg.DeleteNamespace(t, prefix)
	})
	mustPut(t, s, "k", "v", 1)
	if _, err := s.Delete(context.Background(), "k", 1); err != nil {
		t.Fatal(err)
	}
	rs := s.(*Store)
	ttl, err := rs.client.PTTL(context.Background(), prefix+"k").Result()
	if err != nil || ttl <= time.Minute || ttl > 90*time.Second {
		t.Errorf("tombstone PTTL = %v, %v; want the 90s tombstone_grace", ttl, err)
	}

	ctg := cluster()
	ctg.Require(t)
	cu := "redis+cluster://" + ctg.Addrs[0] + "?prefix=" + url.QueryEscape(prefix)
	for _, a := range ctg.Addrs[1:] {
		cu += "&addr=" + a
	}
	u, err = url.Parse(cu)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := OpenURL(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		ctg.DeleteNamespace(t, prefix)
	})
	if got := cs.Capabilities().Backend; got != "redis-cluster" {
		t.Errorf("backend of %s = %q, want redis-cluster", cu, got)
	}
	mustPut(t, cs, "k", "v", 1)
}

// TestParseURL parses URLs without connecting.
func TestParseURL(t *testing.T) {
	const secret = "p@ss:w/rd"
	type want struct {
		prefix  string
		grace   time.Duration
		addrs   []string
		db      int
		tls     bool
		cluster bool
		user    string
	}
	for _, tc := range []struct {
		url  string
		want *want // nil: the URL is invalid
	}{
		{"redis://localhost:6379", &want{addrs: []string{"localhost:6379"}}},
		{"redis://h:1/3?prefix=memcell-test:&tombstone_grace=30s", &want{prefix: "memcell-test:", grace: 30 * time.Second, addrs: []string{"h:1"}, db: 3}},
		{"redis://user:" + url.QueryEscape(secret) + "@h:1?dial_timeout=2s&pool_size=5", &want{addrs: []string{"h:1"}, user: "user"}},
		{"rediss://h:6380?prefix=p:", &want{prefix: "p:", addrs: []string{"h:6380"}, tls: true}},
		{"REDIS://h:1", &want{addrs: []string{"h:1"}}},
		{"redis+cluster://h1:7100?addr=h2:7101&addr=h3:7102&prefix=c:", &want{prefix: "c:", addrs: []string{"h1:7100", "h2:7101", "h3:7102"}, cluster: true}},
		{"rediss+cluster://u:" + url.QueryEscape(secret) + "@h1:7100?addr=h2:7101", &want{addrs: []string{"h1:7100", "h2:7101"}, cluster: true, tls: true, user: "u"}},
		{"redis://h:1?bogus=1", nil},
		{"redis://h:1?prefix=a&prefix=b", nil},
		{"redis://h:1?tombstone_grace=-1s", nil},
		{"redis://h:1?tombstone_grace=soon", nil},
		{"redis://h:1?addr=h2:2", nil}, // addr is a cluster option
		{"redis://h:1/notadb", nil},
		{"redis+cluster://h1:7100/2", nil},
		{"redis+cluster://h1:7100?addr=nonsense", nil},
		{"memcache://h:1", nil},
		{"redis://u:" + url.QueryEscape(secret) + "@h:1?unknown_option=" + url.QueryEscape(secret), nil},
		{"redis+cluster://u:" + url.QueryEscape(secret) + "@h:1?password=" + url.QueryEscape(secret), nil},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := parseURL(u)
		if tc.want == nil {
			if !errors.Is(err, kv.ErrInvalidOptions) {
				t.Errorf("parseURL(%s) = %v, want kv.ErrInvalidOptions", kv.Redact(tc.url), err)
			} else if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), url.QueryEscape(secret)) {
				t.Errorf("parseURL error %q shows the password", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseURL(%s): %v", kv.Redact(tc.url), err)
			continue
		}
		got := want{prefix: cfg.opts.Prefix, grace: cfg.opts.TombstoneGrace, cluster: cfg.cluster != nil}
		if c := cfg.cluster; c != nil {
			got.addrs, got.tls, got.user = c.Addrs, c.TLSConfig != nil, c.Username
			if !c.ContextTimeoutEnabled {
				t.Errorf("parseURL(%s): ContextTimeoutEnabled is off", kv.Redact(tc.url))
			}
			if c.Username != "" && c.Password != secret {
				t.Errorf("parseURL(%s): password %q", kv.Redact(tc.url), c.Password)
			}
		} else {
			o := cfg.simple
			got.addrs, got.db, got.tls, got.user = []string{o.Addr}, o.DB, o.TLSConfig != nil, o.Username
			if !o.ContextTimeoutEnabled {
				t.Errorf("parseURL(%s): ContextTimeoutEnabled is off", kv.Redact(tc.url))
			}
			if o.Username != "" && o.Password != secret {
				t.Errorf("parseURL(%s): password %q", kv.Redact(tc.url), o.Password)
			}
		}
		if diff := cmp.Diff(*tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
			t.Errorf("parseURL(%s) (-want +got):\n%s", kv.Redact(tc.url), diff)
		}
	}
}
