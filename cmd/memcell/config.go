package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/memcell/memcell"
	"github.com/memcell/memcell/embedded"
	"github.com/memcell/memcell/httpapi"
	"github.com/memcell/memcell/internal/netaddr"
	"github.com/memcell/memcell/internal/redact"
	"github.com/memcell/memcell/mirror"
	"github.com/memcell/memcell/reconcile"
)

// config is the service's configuration. Each value comes from, in order of
// precedence: a flag, the environment, the config file, the default.
//
// Every setting is a typed pflag flag bound to its field (bind). The
// environment and the file are applied by setting the flags the command
// line left alone, so a value is checked by one parser whatever its source;
// a configuration library would add a dozen modules and global state for
// that.
type config struct {
	MongoURI        string
	MongoDatabase   string
	KVURL           string
	Addr            string
	DataDir         string
	APIToken        string
	MetricsToken    string
	AllowedHosts    []string // canonical (netaddr.CanonicalHost)
	TLSCert         string
	TLSKey          string
	LogLevel        string
	LogFormat       string
	EmbeddedAddr    string
	EmbeddedSync    time.Duration // 0: SQLite syncs each commit
	Insecure        bool
	Mirror          mirror.Flags // --mirroring, --validation and --mirror-mode
	QueueBytes      int64
	MaxBodyBytes    int64
	ShutdownTimeout time.Duration
	ReplayInterval  time.Duration
	RequestTimeout  time.Duration
	Pprof           bool
	ReadFallback    bool
}

// setting names one configuration value's flag and environment variable;
// its config-file key is the flag with _ for - (fileKey). secret values are
// redacted in logs.
type setting struct {
	flag, env string
	secret    bool
}

// settings are in the order bind registers them.
var settings = []setting{
	{"mongo-uri", "MEMCELL_MONGO_URI", true},
	{"mongo-database", "MEMCELL_MONGO_DATABASE", false},
	{"kv", "MEMCELL_KV_URL", true},
	{"addr", "MEMCELL_ADDR", false},
	{"data-dir", "MEMCELL_DATA_DIR", false},
	{"api-token", "MEMCELL_API_TOKEN", true},
	{"metrics-token", "MEMCELL_METRICS_TOKEN", true},
	{"allowed-hosts", "MEMCELL_ALLOWED_HOSTS", false},
	{"tls-cert", "MEMCELL_TLS_CERT", false},
	{"tls-key", "MEMCELL_TLS_KEY", false},
	{"log-level", "MEMCELL_LOG_LEVEL", false},
	{"log-format", "MEMCELL_LOG_FORMAT", false},
	{"embedded-addr", "MEMCELL_EMBEDDED_ADDR", false},
	{"embedded-sync-interval", "MEMCELL_EMBEDDED_SYNC_INTERVAL", false},
	{"validation", "MEMCELL_VALIDATION", false},
	{"insecure", "MEMCELL_INSECURE", false},
	{"mirroring", "MEMCELL_MIRRORING", false},
	{"mirror-mode", "MEMCELL_MIRROR_MODE", false},
	{"mirror-queue-bytes", "MEMCELL_MIRROR_QUEUE_BYTES", false},
	{"max-body-bytes", "MEMCELL_MAX_BODY_BYTES", false},
	{"shutdown-timeout", "MEMCELL_SHUTDOWN_TIMEOUT", false},
	{"replay-interval", "MEMCELL_REPLAY_INTERVAL", false},
	{"request-timeout", "MEMCELL_REQUEST_TIMEOUT", false},
	{"pprof", "MEMCELL_PPROF", false},
	{"read-fallback", "MEMCELL_READ_FALLBACK", false},
}

// fileKey is a flag's key in the config file.
func fileKey(flag string) string { return strings.ReplaceAll(flag, "-", "_") }

// bind registers every setting on fs as a flag bound to its field of c,
// which it sets to the defaults. The usage of each names its environment
// variable.
func (c *config) bind(fs *pflag.FlagSet) {
	fs.StringVar(&c.MongoURI, "mongo-uri", "", "MongoDB URI of the primary (MongoDB 5.0+, a replica set for transactions); empty starts the embedded primary")
	fs.StringVar(&c.MongoDatabase, "mongo-database", "memcell", "database holding the memcells collection")
	fs.StringVar(&c.KVURL, "kv", "", "KV store URL (memory://, pebble:///dir, leveldb:///dir, rocksdb:///dir, redis://host:6379/0, redis+cluster://...); empty means Pebble under the data directory")
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "address the API listens on; a non-loopback address needs --api-token or --insecure")
	fs.StringVar(&c.DataDir, "data-dir", "memcell-data", "directory of the embedded primary and the default Pebble store")
	fs.StringVar(&c.APIToken, "api-token", "", "bearer token every route but /healthz and /readyz requires (prefer the environment variable: flags show in ps)")
	fs.StringVar(&c.MetricsToken, "metrics-token", "", "bearer token GET /metrics accepts besides the API token, and nothing else does")
	fs.Var(&hostListValue{&c.AllowedHosts}, "allowed-hosts", "host names or IPs (comma-separated) the Host header may name besides the loopback ones; checked on requests without a token, and on all once set (not /healthz, /readyz)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate (chain) file: serve HTTPS, with --tls-key")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key file of --tls-cert")
	c.LogLevel = "info"
	fs.Var(&logLevelValue{&c.LogLevel}, "log-level", "debug, info, warn or error")
	c.LogFormat = "auto"
	fs.Var(&enumValue{p: &c.LogFormat, allowed: []string{"text", "json", "auto"}}, "log-format", "text, json, or auto (text on a terminal, JSON otherwise)")
	fs.StringVar(&c.EmbeddedAddr, "embedded-addr", "127.0.0.1:27027", "loopback address the embedded primary listens on (port 0 picks a free one)")
	c.EmbeddedSync = embedded.DefaultSyncInterval
	fs.Var((*nonNegativeDuration)(&c.EmbeddedSync), "embedded-sync-interval",
		"how often the embedded primary syncs its committed writes to disk (a power loss can lose the last interval's, a crash none); 0 syncs each write before it is answered")
	c.Mirror = mirror.Flags{Mirroring: true, Validation: mirror.ValidationOn}
	fs.Var(&validationValue{&c.Mirror}, "validation", "read validation: on, off, or sample:N (validate N% of the reads that would validate)")
	fs.BoolVar(&c.Insecure, "insecure", false, "allow a non-loopback --addr without an API token")
	fs.BoolVar(&c.Mirror.Mirroring, "mirroring", true, "mirror writes to the KV store (can change at runtime: PUT /v1/admin/flags)")
	c.Mirror.Mode = mirror.DefaultMode
	fs.Var(&enumValue{p: &c.Mirror.Mode, allowed: []string{mirror.ModeAsync, mirror.ModeSync}}, "mirror-mode",
		"async: a write answers once the primary has, its KV write is queued and applied in batches behind it (Memcell-Mirror: queued); sync: each write waits for its KV write and reports it (can change at runtime: PUT /v1/admin/flags)")
	c.QueueBytes = mirror.DefaultQueueBytes
	fs.Var((*positiveInt64)(&c.QueueBytes), "mirror-queue-bytes", "memory bound of the KV writes queued in async mode; writes beyond it are left to the replayer")
	c.MaxBodyBytes = 1 << 20
	fs.Var((*positiveInt64)(&c.MaxBodyBytes), "max-body-bytes", "largest request body accepted (413 beyond)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a shutdown waits for in-flight requests before cancelling them")
	c.ReplayInterval = reconcile.DefaultReplayInterval
	fs.Var((*positiveDuration)(&c.ReplayInterval), "replay-interval", "how often serve redoes the KV writes recorded as missed (KV outage, mirroring off)")
	c.RequestTimeout = httpapi.DefaultRequestTimeout
	fs.Var((*positiveDuration)(&c.RequestTimeout), "request-timeout", "time limit of each API request, its primary queries included (503 beyond)")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve the runtime profiles (net/http/pprof) under /debug/pprof/, behind the API token and the host check like the admin routes")
	fs.BoolVar(&c.ReadFallback, "read-fallback", false, "while the primary is unavailable, answer GET /v1/memcells/{id} and batch-get from the KV copies (possibly stale; Memcell-Source: kv)")
	for _, s := range settings {
		f := fs.Lookup(s.flag)
		f.Usage += " ($" + s.env + ")"
	}
}

// configFlag is the value of --config: the file's path, and the
// configuration the command's setting flags are bound to, so that
// loadConfig finds everything on the command's FlagSet.
type configFlag struct {
	path string
	cfg  *config
	// all holds every setting's flag, those the command does not show too
	// (the environment and the file still set them).
	all *pflag.FlagSet
}

func (v *configFlag) String() string     { return v.path }
func (v *configFlag) Set(s string) error { v.path = s; return nil }
func (v *configFlag) Type() string       { return "string" }

// addConfigFlags registers the flags of the settings (all of them, or the
// ones named in only), plus --config.
func addConfigFlags(fs *pflag.FlagSet, only ...string) {
	cf := &configFlag{cfg: &config{}, all: pflag.NewFlagSet("config", pflag.ContinueOnError)}
	cf.cfg.bind(cf.all)
	cf.all.VisitAll(func(f *pflag.Flag) {
		if len(only) == 0 || slices.Contains(only, f.Name) {
			fs.AddFlag(f) // the same *Flag: fs's parse marks it Changed in all
		}
	})
	fs.Var(cf, "config", "YAML config file (keys as the flags with _ for -, e.g. mongo_uri); flags and environment win over it")
}

// loadConfig resolves every setting: flag > environment > file > default.
// fs must be a FlagSet addConfigFlags registered on, already parsed. A
// value from the environment or the file is set on its flag, so a bad one
// is refused in pflag's words, after the name of its source.
func loadConfig(fs *pflag.FlagSet, getenv func(string) string) (*config, error) {
	f := fs.Lookup("config")
	if f == nil {
		return nil, errors.New("loadConfig: the command has no configuration flags")
	}
	cf := f.Value.(*configFlag)
	file := map[string]string{}
	if cf.path != "" {
		var err error
		if file, err = readConfigFile(cf.path); err != nil {
			return nil, err
		}
	}
	for _, s := range settings {
		key := fileKey(s.flag)
		fv, inFile := file[key]
		delete(file, key)
		if cf.all.Lookup(s.flag).Changed {
			continue // given on the command line, and parsed there
		}
		var v, from string
		if ev := getenv(s.env); ev != "" {
			v, from = ev, "$"+s.env
		} else if inFile {
			v, from = fv, "config file key "+key
		} else {
			continue
		}
		if err := cf.all.Set(s.flag, v); err != nil {
			return nil, fmt.Errorf("%w: %s: %s", errUsage, from, redactWords(err.Error()))
		}
	}
	if len(file) > 0 {
		keys := make([]string, 0, len(file))
		for k := range file {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return nil, fmt.Errorf("%w: config file: unknown key(s) %s", errUsage, redactWords(strings.Join(keys, ", ")))
	}
	return cf.cfg, nil
}

func readConfigFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: config file: %v", errUsage, err)
	}
	var raw map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		// The decoder quotes short values, which may be URLs with passwords.
		return nil, fmt.Errorf("%w: config file %s: %s", errUsage, path, redactWords(err.Error()))
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v.(type) {
		case map[string]any, []any:
			return nil, fmt.Errorf("%w: config file %s: %s must be a single value", errUsage, path, redactWords(k))
		case nil:
			out[k] = ""
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out, nil
}

// redacted returns the settings with credentials hidden, for logs and for
// the admin API.
func (c *config) redacted() map[string]string {
	// Flags bound to a scratch config show c's values once c is copied in.
	var scratch config
	fs := pflag.NewFlagSet("redacted", pflag.ContinueOnError)
	scratch.bind(fs)
	scratch = *c
	out := map[string]string{}
	for _, s := range settings {
		v := fs.Lookup(s.flag).Value.String()
		switch {
		case s.flag == "api-token" || s.flag == "metrics-token":
			if v != "" {
				v = "(set)"
			}
		case s.secret && v != "":
			v = redact.URL(v)
		}
		out[fileKey(s.flag)] = v
	}
	return out
}

// hostListValue is the --allowed-hosts value: comma-separated host names
// or IP addresses without port, each checked and normalised by
// netaddr.CanonicalHost. Each use of the flag adds to the list.
type hostListValue struct{ p *[]string }

func (h *hostListValue) String() string { return strings.Join(*h.p, ",") }
func (h *hostListValue) Type() string   { return "strings" }

func (h *hostListValue) Set(s string) error {
	for part := range strings.SplitSeq(s, ",") {
		c, err := netaddr.CanonicalHost(part)
		if err != nil {
			return err
		}
		*h.p = append(*h.p, c)
	}
	return nil
}

// nonNegativeDuration is a duration flag value that must not be below zero.
type nonNegativeDuration time.Duration

func (p *nonNegativeDuration) String() string { return time.Duration(*p).String() }
func (p *nonNegativeDuration) Type() string   { return "duration" }

func (p *nonNegativeDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return errors.New("must not be negative")
	}
	*p = nonNegativeDuration(d)
	return nil
}

// positiveDuration is a duration flag value that must be above zero.
type positiveDuration time.Duration

func (p *positiveDuration) String() string { return time.Duration(*p).String() }
func (p *positiveDuration) Type() string   { return "duration" }

func (p *positiveDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d <= 0 {
		return errors.New("must be positive")
	}
	*p = positiveDuration(d)
	return nil
}

// positiveInt64 is an int64 flag value that must be above zero. Its type
// reads "int" in the help, as pflag's own int64 flags do.
type positiveInt64 int64

func (p *positiveInt64) String() string { return strconv.FormatInt(int64(*p), 10) }
func (p *positiveInt64) Type() string   { return "int64" }

func (p *positiveInt64) Set(s string) error {
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return err
	}
	if v <= 0 {
		return errors.New("must be positive")
	}
	*p = positiveInt64(v)
	return nil
}

// enumValue is a string flag value that must be one of allowed.
type enumValue struct {
	p       *string
	allowed []string
}

func (e *enumValue) String() string { return *e.p }
func (e *enumValue) Type() string   { return "string" }

func (e *enumValue) Set(s string) error {
	if !slices.Contains(e.allowed, s) {
		last := len(e.allowed) - 1
		return fmt.Errorf("want %s or %s", strings.Join(e.allowed[:last], ", "), e.allowed[last])
	}
	*e.p = s
	return nil
}

// logLevelValue is a log level flag value: whatever slog.Level parses
// (debug, info, warn, error, in any case).
type logLevelValue struct{ p *string }

func (l *logLevelValue) String() string { return *l.p }
func (l *logLevelValue) Type() string   { return "string" }

func (l *logLevelValue) Set(s string) error {
	if _, err := parseLevel(s); err != nil {
		return errors.New("want debug, info, warn or error")
	}
	*l.p = s
	return nil
}

// validationValue is the --validation flag value, on, off or sample:N,
// parsed by mirror.Flags.SetValidation.
type validationValue struct{ f *mirror.Flags }

func (v *validationValue) Type() string { return "string" }

func (v *validationValue) String() string {
	if v.f.Validation == mirror.ValidationSample {
		return mirror.ValidationSample + ":" + strconv.FormatFloat(v.f.SamplePercent, 'g', -1, 64)
	}
	return v.f.Validation
}

func (v *validationValue) Set(s string) error {
	err := v.f.SetValidation(s)
	if fe, ok := errors.AsType[*memcell.FieldError](err); ok {
		return errors.New(fe.Rule) // pflag's message names the flag already
	}
	return err
}
