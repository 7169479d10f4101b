package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newKVCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "kv",
		Short: "Inspect the key-value mirror",
		Long: `Commands that work on the key-value mirror.

KV URLs:
  memory://                                  in memory (this process only)
  pebble:///abs/dir  or  pebble:rel/dir      Pebble   (options: sync, tombstone_grace)
  leveldb:///abs/dir or  leveldb:rel/dir     LevelDB  (options: sync, tombstone_grace)
  redis://[user:pass@]host:6379/0            Redis    (options: prefix, tombstone_grace,
  rediss://...                                          and go-redis's own)
  redis+cluster://host1:7100?addr=host2:7101 Redis Cluster (same options)`,
	}
	c.AddCommand(newKVStatsCmd())
	return c
}

func newKVStatsCmd() *cobra.Command {
	var url string
	c := &cobra.Command{
		Use:   "stats",
		Short: "Print the backend, entry count and total value bytes of a KV store as JSON",
		Long: `Open the KV store at --kv (or $MEMCELL_KV_URL) and print its statistics as JSON:
the backend name, entry_count (live keys; tombstones are not counted) and
total_size_bytes (the bytes of the stored values). On Pebble, LevelDB and
Redis this scans the store.`,
		Example: `  memcell kv stats --kv pebble:///var/lib/memcell/kv
  MEMCELL_KV_URL=redis://127.0.0.1:6379/0 memcell kv stats`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				url = os.Getenv("MEMCELL_KV_URL")
			}
			if url == "" {
				return fmt.Errorf("%w: --kv URL (or MEMCELL_KV_URL) is required", errUsage)
			}
			ctx := cmd.Context()
			s, err := newKVRegistry().Open(ctx, url)
			if err != nil {
				return err
			}
			defer s.Close()
			st, err := s.Stats(ctx)
			if err != nil {
				return err
			}
			out := struct {
				Backend        string `json:"backend"`
				EntryCount     int64  `json:"entry_count"`
				TotalSizeBytes int64  `json:"total_size_bytes"`
			}{s.Capabilities().Backend, st.EntryCount, st.TotalSizeBytes}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	}
	c.Flags().StringVar(&url, "kv", "", "KV store URL (default $MEMCELL_KV_URL)")
	return c
}
