package main

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/memcell/memcell/internal/redact"
	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/leveldbkv"
	"github.com/memcell/memcell/kv/memkv"
	"github.com/memcell/memcell/kv/pebblekv"
	"github.com/memcell/memcell/kv/rediskv"
)

// errUsage marks a bad invocation: a flag, argument, setting or config
// file the command refuses (exit status 2, as every error but
// errDifferences).
var errUsage = errors.New("usage")

// noArgs refuses positional arguments as a usage error. The argument is
// shown redacted: a URL given without its flag may hold a password.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 1 {
		if taken, err := optionalValue(cmd.Flags(), args[0]); taken {
			return err
		}
	}
	if len(args) > 0 {
		return fmt.Errorf("%w: unknown command %q for %q", errUsage, redactWords(args[0]), cmd.CommandPath())
	}
	return nil
}

// optionalValue takes arg, the one positional argument of a command that
// takes none, as the value of a flag whose value is optional (pflag's
// NoOptDefVal: "--flag value" parses as a bare --flag and an argument)
// when that flag was given bare. It reports whether it did, and the usage
// error of a value the flag refuses.
func optionalValue(fs *pflag.FlagSet, arg string) (bool, error) {
	var f *pflag.Flag
	fs.VisitAll(func(g *pflag.Flag) {
		if _, ok := g.Value.(*enumValue); ok && g.Changed && g.NoOptDefVal != "" && g.Value.String() == g.NoOptDefVal {
			f = g
		}
	})
	if f == nil {
		return false, nil
	}
	if err := f.Value.Set(arg); err != nil {
		return true, fmt.Errorf("%w: invalid argument %q for \"--%s\" flag: %w", errUsage, redactWords(arg), f.Name, err)
	}
	return true, nil
}

// helpTopic refuses "memcell help" with a topic that is no command, as a
// usage error; cobra would print the usage and exit 0.
func helpTopic(c *cobra.Command, args []string) error {
	if cmd, rest, err := c.Root().Find(args); err != nil || cmd == nil || len(rest) > 0 {
		return fmt.Errorf("%w: unknown help topic %q", errUsage, redactWords(strings.Join(args, " ")))
	}
	return nil
}

// urlLike matches the words of a message that may be URLs, for
// redactWords.
var urlLike = regexp.MustCompile(`[^\s"'` + "`" + `]*(?:://|@)[^\s"'` + "`" + `]*`)

// redactWords returns s with every word that may be a URL (it holds "://"
// or "@") redacted, for messages that quote the command line: a flag
// error quotes the argument it refused, which may be a URL with a
// password.
func redactWords(s string) string {
	return urlLike.ReplaceAllStringFunc(s, redact.URL)
}

// strict makes every command of the tree under c refuse positional
// arguments (noArgs) and print its help when it only groups others, and
// "help" refuse an unknown topic: cobra's help and completion commands
// would otherwise exit 0 on a typo.
func strict(c *cobra.Command) {
	for _, sub := range c.Commands() {
		switch {
		case sub.Name() == "help":
			sub.Args = helpTopic
		default:
			sub.Args = noArgs
			if !sub.Runnable() {
				sub.RunE = helpOnly
			}
		}
		strict(sub)
	}
}

// helpOnly is the action of a command that only groups others: it prints
// its help. With noArgs, an unknown subcommand is a usage error rather
// than help and success.
func helpOnly(cmd *cobra.Command, _ []string) error {
	return cmd.Help()
}

// exitCode is the exit status of a command that returned err (not nil):
// 1 when it ran and found differences (kv verify, a repair dry run or a
// repair that left some), 2 for everything else: a usage error, a store
// that could not be opened, a job that could not run, a server that failed.
func exitCode(err error) int {
	if errors.Is(err, errDifferences) {
		return 1
	}
	return 2
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
http://127.0.0.1:8080.

Exit status: 0 when the command succeeded; 1 when it found differences:
"kv verify" or "kv repair --dry-run" found some, or "kv repair" or "kv sync"
left some unrepaired; 2 when it could not run: a bad flag, value, argument,
environment variable or config file, or a store or server it could not
reach.

URIs are shown with their passwords and secret options (password, token,
secret, key, authMechanismProperties...) replaced by xxxxx, and the API
token never.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE:          helpOnly,
		// --version prints what "memcell version" prints; the template
		// only reads it, so nothing in it is taken for template text.
		Version:     versionString(),
		Annotations: map[string]string{"buildinfo": buildInfo().String()},
	}
	root.SetVersionTemplate(`{{index .Annotations "buildinfo"}}`)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w: %s", errUsage, redactWords(err.Error()))
	})
	root.AddCommand(newServeCmd(), newKVCmd(), newVersionCmd())
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	strict(root)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, VCS revision and time, Go version, and whether RocksDB is linked in",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(cmd.OutOrStdout(), buildInfo())
			return nil
		},
	}
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
