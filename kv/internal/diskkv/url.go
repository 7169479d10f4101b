package diskkv

import (
	"fmt"
	"net/url"
	"time"

	"github.com/memcell/memcell/kv"
)

// URLOptions are what a disk backend's URL says.
type URLOptions struct {
	Dir            string
	Sync           bool
	TombstoneGrace time.Duration
	CacheSize      int
	SyncInterval   time.Duration
}

// ParseURL reads a URL of b: scheme:///absolute/path or
// scheme:relative/path, with the options sync (bool), tombstone_grace (a
// duration such as 30s; 0 means the default), cache_size (bytes) and, for
// a backend with Backend.GroupSync, sync_interval (a duration; 0 means
// DefaultSyncInterval).
// Unknown options, a host, user information and an empty path are errors
// wrapping kv.ErrInvalidOptions.
func (b Backend) ParseURL(u *url.URL) (URLOptions, error) {
	if u.Host != "" || u.User != nil {
		return URLOptions{}, fmt.Errorf("%w: %s: a %s URL names a directory, not a host (%s:///abs/path or %s:rel/path)",
			kv.ErrInvalidOptions, b.Name, b.Scheme, b.Scheme, b.Scheme)
	}
	o := URLOptions{Dir: u.Path}
	if u.Opaque != "" {
		var err error
		if o.Dir, err = url.PathUnescape(u.Opaque); err != nil {
			return URLOptions{}, fmt.Errorf("%w: %s: bad path escape", kv.ErrInvalidOptions, b.Name)
		}
	}
	if o.Dir == "" {
		return URLOptions{}, fmt.Errorf("%w: %s: the URL has no directory path", kv.ErrInvalidOptions, b.Name)
	}
	q := kv.NewQuery(u)
	o.Sync = q.Bool("sync", false)
	o.TombstoneGrace = q.Duration("tombstone_grace", 0)
	o.CacheSize = q.Int("cache_size", 0, 0)
	if b.GroupSync {
		o.SyncInterval = q.Duration("sync_interval", 0)
	}
	if err := q.Done(); err != nil {
		return URLOptions{}, fmt.Errorf("%s: %w", b.Name, err)
	}
	return o, nil
}
