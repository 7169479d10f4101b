package rediskv

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/memcell/memcell/kv"
)

// Schemes returns the URL schemes OpenURL understands, for registering it:
//
//	for _, s := range rediskv.Schemes() {
//		registry.Register(s, rediskv.OpenURL)
//	}
func Schemes() []string {
	return []string{"redis", "rediss", "redis+cluster", "rediss+cluster"}
}

// OpenURL opens a store from a URL of one of the forms in the package
// documentation. It rejects unknown options with kv.ErrInvalidOptions, and
// its errors never contain the password.
func OpenURL(ctx context.Context, u *url.URL) (kv.Store, error) {
	cfg, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	var client redis.UniversalClient
	if cfg.cluster != nil {
		client = redis.NewClusterClient(cfg.cluster)
	} else {
		client = redis.NewClient(cfg.simple)
	}
	s, err := open(ctx, client, &cfg.opts)
	if err != nil {
		return nil, fmt.Errorf("rediskv: open %s: %w", describeURL(u), err)
	}
	return s, nil
}

// urlConfig is what a URL says: our options and exactly one of the go-redis
// client options.
type urlConfig struct {
	opts    Options
	simple  *redis.Options
	cluster *redis.ClusterOptions
}

// parseURL reads u without connecting anywhere.
func parseURL(u *url.URL) (*urlConfig, error) {
	if u == nil {
		return nil, fmt.Errorf("rediskv: %w: nil URL", kv.ErrInvalidOptions)
	}
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("rediskv: %s: %w: %s", describeURL(u), kv.ErrInvalidOptions, fmt.Sprintf(format, args...))
	}

	var base string
	cluster := false
	switch scheme := strings.ToLower(u.Scheme); scheme {
	case "redis", "rediss":
		base = scheme
	case "redis+cluster", "rediss+cluster":
		base, cluster = strings.TrimSuffix(scheme, "+cluster"), true
		if u.Path != "" && u.Path != "/" {
			return nil, invalid("a Redis Cluster has only database 0, so the URL takes no path")
		}
	default:
		return nil, invalid("scheme %q is not one of %s", u.Scheme, strings.Join(Schemes(), ", "))
	}

	q := kv.NewQuery(u)
	cfg := &urlConfig{opts: Options{
		Prefix:         q.String("prefix", ""),
		TombstoneGrace: q.Duration("tombstone_grace", 0),
	}}
	rest := q.Rest()
	if err := q.Done(); err != nil {
		return nil, fmt.Errorf("rediskv: %s: %w", describeURL(u), err)
	}

	// go-redis reads the rest and rejects what it does not know.
	r := *u
	r.Scheme = base
	r.RawQuery = rest.Encode()
	r.Fragment, r.RawFragment = "", ""
	var err error
	if cluster {
		cfg.cluster, err = redis.ParseClusterURL(r.String())
		if err == nil {
			cfg.cluster.ContextTimeoutEnabled = true
		}
	} else {
		cfg.simple, err = redis.ParseURL(r.String())
		if err == nil {
			cfg.simple.ContextTimeoutEnabled = true
		}
	}
	if err != nil {
		return nil, invalid("%s", scrub(err.Error(), u))
	}
	return cfg, nil
}

// describeURL returns u without password and query (where a misplaced
// credential could hide) for error messages.
func describeURL(u *url.URL) string {
	r := *u
	r.RawQuery, r.ForceQuery = "", false
	r.Fragment, r.RawFragment = "", ""
	return r.Redacted()
}

// scrub removes u's password from msg, in case a go-redis error echoes it.
func scrub(msg string, u *url.URL) string {
	p, ok := u.User.Password()
	if !ok || p == "" {
		return msg
	}
	for _, s := range []string{p, url.QueryEscape(p), url.PathEscape(p), url.UserPassword("", p).String()} {
		if s != "" && s != ":" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return msg
}
