// Package rediskv is the kv.Store backend on Redis: one implementation for a
// standalone server (or a sentinel-managed failover client) and for Redis
// Cluster, on go-redis v9's redis.UniversalClient.
//
// # Data layout
//
// Every store owns the Redis keys that start with its prefix (Options.Prefix,
// or the prefix URL option), so several stores, deployments or test runs can
// share one server. Keys outside the prefix are never read or written; keys
// inside it must only be written by rediskv. Store key k lives in Redis key
// prefix+k as a hash:
//
//	v  the value
//	r  the revision, as an unsigned decimal
//
// so a copy can be read by hand with
//
//	redis-cli HGET <prefix><key> v
//
// A tombstone is the hash
//
//	d  the tombstone's revision, as an unsigned decimal
//
// with a server-side expiry (PEXPIRE) of the tombstone grace period; Redis
// removes it when the grace period is over, so the store needs no garbage
// collection of its own. A put admitted over a tombstone replaces the whole
// hash, expiry included. The hash {t: "1"}, the tombstone of earlier
// versions, is still honoured as a tombstone that refuses every put
// (revision kv.MaxRev) until it expires; it is no longer written.
//
// # Invariants
//
// Guarded puts and deletes run as Lua scripts, so each is atomic on the server
// and correct between any number of processes that share the prefix (the
// store reports Capabilities.Shared). A put is refused when the key holds a
// live revision higher than the new one, or a tombstone of a revision equal
// to or higher than the new one; a delete is refused (changes nothing) when
// the key holds a live revision higher than the delete's. Swap (the
// compare-and-swap) is a script too: it writes the new value and revision
// only when the hash is a live value whose v field is byte for byte the
// expected value, and never touches a tombstone. Revisions are
// compared as exact unsigned 64-bit decimals, never as Lua numbers, which
// lose precision
// above 2^53. A key in the namespace that is not such a hash makes every
// operation touching it fail with an error that says so (it is never
// overwritten).
//
// Batches are sent as one pipeline: one round trip per server, and in a
// cluster one per master, sent to the masters in parallel. No command
// touches more than one key, so keys of one batch may fall in any slots.
// Scan and Stats walk the namespace with SCAN (on every master of a cluster)
// and are O(number of keys in the namespace); Scan is unordered.
//
// # URLs
//
// OpenURL accepts, with the scheme names registered by the caller (see
// Schemes):
//
//	redis://[user:password@]host:port[/db][?options]
//	rediss://[user:password@]host:port[/db][?options]        (TLS)
//	redis+cluster://[user:password@]host:port[?addr=host:port&addr=...&options]
//	rediss+cluster://[user:password@]host:port[?addr=host:port&addr=...&options]
//
// For a cluster, the host in the authority and every addr option are seed
// nodes. Options read by rediskv:
//
//	prefix=memcell:         namespace prefix (default: none, the whole database)
//	tombstone_grace=30s     tombstone grace period (default kv.DefaultTombstoneGrace)
//
// Every other option is passed to go-redis (redis.ParseURL or
// redis.ParseClusterURL), which rejects options it does not know; for example
// dial_timeout=5s, read_timeout=3s, pool_size=20, max_retries=3,
// client_name=memcell, protocol=3, skip_verify=true (rediss only). Clients
// opened by URL honour context deadlines (ContextTimeoutEnabled). Errors
// never contain the URL's password.
//
// A prefix containing a hash tag, such as "{memcell}:", puts the whole
// namespace in one cluster slot and therefore on one master; normally the
// prefix should have no braces so that keys spread over the cluster.
package rediskv
