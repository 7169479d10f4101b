package main

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/leveldbkv"
	"github.com/memcell/memcell/kv/memkv"
	"github.com/memcell/memcell/kv/pebblekv"
	"github.com/memcell/memcell/kv/rediskv"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = ""

// errUsage marks a bad invocation (exit status 2).
var errUsage = errors.New("usage")

// noArgs refuses positional arguments as a usage error (exit status 2),
// as cobra.NoArgs does with a plain one.
func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// helpOnly is the action of a command that only groups others: it prints
// its help. With noArgs, an unknown subcommand is a usage error rather
// than help and success.
func helpOnly(cmd *cobra.Command, _ []string) error {
	return cmd.Help()
}

func exitCode(err error) int {
	switch {
	case errors.Is(err, errUsage), errors.Is(err, errCouldNotRun):
		return 2
	}
	return 1
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "memcell",
		Short: "Store MemCells in MongoDB with a mirrored, verifiable key-value copy",
		Long: `memcell keeps MemCells (memory records of an AI memory system) in MongoDB
and mirrors every change to a key-value store: in memory, Pebble, LevelDB,
RocksDB (in a memcell built with the tag rocksdb), Redis or Redis Cluster.

Start with "memcell serve": with no configuration it runs an embedded
primary and a Pebble store under ./memcell-data and serves the API on
http://127.0.0.1:8080.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE:          helpOnly,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w: %v", errUsage, err)
	})
	root.AddCommand(newServeCmd(), newKVCmd(), newVersionCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and the Go version it was built with",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			goVersion := "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				goVersion = bi.GoVersion
			}
			fmt.Fprintf(cmd.OutOrStdout(), "memcell %s (%s)\n", versionString(), goVersion)
			return nil
		},
	}
}

// versionString is the link-time version, else the module version, else
// "devel".
func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "" {
		v = bi.Main.Version
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	return v
}

// newKVRegistry links in every backend this program knows. The rocksdb
// scheme opens RocksDB only in a memcell built with the tag rocksdb; without
// it, it says how to build one.
func newKVRegistry() *kv.Registry {
	r := kv.NewRegistry()
	r.Register("memory", memkv.OpenURL)
	r.Register("pebble", pebblekv.OpenURL)
	r.Register("leveldb", leveldbkv.OpenURL)
	r.Register("rocksdb", openRocksDB) // rocksdb.go, or norocksdb.go without the tag
	for _, scheme := range rediskv.Schemes() {
		r.Register(scheme, rediskv.OpenURL)
	}
	return r
}
