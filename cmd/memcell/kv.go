package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/internal/redact"
)

func newKVCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "kv",
		Short: "Inspect, backfill, verify and repair the key-value mirror, and recover the primary from it",
		Long: `Commands that work on the key-value mirror.

KV URLs:
  memory://                                  in memory (this process only)
  pebble:///abs/dir  or  pebble:rel/dir      Pebble   (options: sync, tombstone_grace)
  leveldb:///abs/dir or  leveldb:rel/dir     LevelDB  (options: sync, tombstone_grace)
  rocksdb:///abs/dir or  rocksdb:rel/dir     RocksDB  (same options; in a memcell built
                                                      with make build-rocksdb)
  redis://[user:pass@]host:6379/0            Redis    (options: prefix, tombstone_grace,
  rediss://...                                          and go-redis's own)
  redis+cluster://host1:7100?addr=host2:7101 Redis Cluster (same options)`,
		Args: noArgs,
		RunE: helpOnly,
	}
	c.AddCommand(newKVStatsCmd(), newKVSyncCmd(), newKVVerifyCmd(), newKVRepairCmd(), newKVRecoverCmd())
	return c
}

func newKVStatsCmd() *cobra.Command {
	var kvURL, server, caCert string
	c := &cobra.Command{
		Use:   "stats",
		Short: "Print the backend, entry count and total value bytes of the KV mirror as JSON",
		Long: `Print the KV mirror's statistics as JSON: the backend name, entry_count (live
keys; tombstones are not counted) and total_size_bytes (the bytes of the
stored values).

By default it asks the running server (--server, else $MEMCELL_ADDR, else
127.0.0.1:8080; the token comes from $MEMCELL_API_TOKEN; an https server's
certificate must be trusted by the system, $SSL_CERT_FILE or --ca-cert).
With --kv it opens the store itself instead — not possible for Pebble,
LevelDB or RocksDB while a server has them open. On Pebble, LevelDB, RocksDB
and Redis the count scans the store.`,
		Example: `  memcell kv stats
  memcell kv stats --server 10.0.0.5:8080
  memcell kv stats --server https://memcell.internal:8443 --ca-cert ca.pem
  memcell kv stats --kv redis://127.0.0.1:6379/0`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var st httpapi.KVStats // what GET /v1/kv/stats answers
			if kvURL != "" {
				s, err := newKVRegistry().Open(ctx, kvURL)
				if err != nil {
					return redact.Error(err, kvURL)
				}
				defer s.Close()
				kst, err := s.Stats(ctx)
				if err != nil {
					return err
				}
				st = httpapi.KVStats{Backend: s.Capabilities().Backend, EntryCount: kst.EntryCount, TotalSizeBytes: kst.TotalSizeBytes}
			} else {
				if server == "" {
					server = cmp.Or(os.Getenv("MEMCELL_ADDR"), "127.0.0.1:8080")
				}
				client, err := httpClient(caCert)
				if err != nil {
					return err
				}
				if err := getJSON(ctx, client, server, "/v1/kv/stats", os.Getenv("MEMCELL_API_TOKEN"), &st); err != nil {
					return err
				}
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(st)
		},
	}
	c.Flags().StringVar(&kvURL, "kv", "", "open this KV store URL directly instead of asking the server")
	c.Flags().StringVar(&server, "server", "", "address or URL of the running server (default $MEMCELL_ADDR or 127.0.0.1:8080)")
	c.Flags().StringVar(&caCert, "ca-cert", "", "PEM certificates to trust, besides the system's, for an https --server")
	return c
}

// getJSON GETs path from a memcell server with client and decodes the
// JSON answer.
func getJSON(ctx context.Context, client *http.Client, server, path, token string, out any) error {
	base := server
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+path, nil)
	if err != nil {
		return fmt.Errorf("%w: server %q: %v", errUsage, shownAddr(server), redact.Error(err, base))
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("cannot reach the memcell server at %s (is \"memcell serve\" running? use --server or --kv): %w", redact.URL(base), redact.Error(err, base))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("server answered %s: %s", resp.Status, e.Error.Message)
		}
		return fmt.Errorf("server answered %s", resp.Status)
	}
	return json.Unmarshal(body, out)
}
