package main

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/mirror"
)

// config is the service's configuration. Each value comes from, in order of
// precedence: a flag, the environment, the config file, the default.
//
// The precedence is a few lines over the settings table below; a
// configuration library would add a dozen modules and global state for it.
type config struct {
	MongoURI        string
	MongoDatabase   string
	KVURL           string
	Addr            string
	DataDir         string
	APIToken        string
	LogLevel        string
	LogFormat       string
	EmbeddedAddr    string
	Insecure        bool
	Mirroring       bool
	Validation      string
	MaxBodyBytes    int64
	ShutdownTimeout time.Duration
}

// setting is one configuration value: its flag, environment variable and
// config-file key, its default and where it goes.
type setting struct {
	flag, env, file string
	def             string
	help            string
	secret          bool
	boolean         bool
	set             func(c *config, v string) error
	get             func(c *config) string
}

func str(p func(*config) *string) (func(*config, string) error, func(*config) string) {
	return func(c *config, v string) error { *p(c) = v; return nil }, func(c *config) string { return *p(c) }
}

func settings() []setting {
	s := func(flag, env, def, help string, secret bool, p func(*config) *string) setting {
		set, get := str(p)
		return setting{flag: flag, env: env, file: strings.ReplaceAll(flag, "-", "_"), def: def, help: help, secret: secret, set: set, get: get}
	}
	return []setting{
		s("mongo-uri", "MEMCELL_MONGO_URI", "", "MongoDB URI of the primary (MongoDB 5.0+, a replica set for transactions); empty starts the embedded primary", true, func(c *config) *string { return &c.MongoURI }),
		s("mongo-database", "MEMCELL_MONGO_DATABASE", "memcell", "database holding the memcells collection", false, func(c *config) *string { return &c.MongoDatabase }),
		s("kv", "MEMCELL_KV_URL", "", "KV store URL (memory://, pebble:///dir, leveldb:///dir, redis://host:6379/0, redis+cluster://...); empty means Pebble under the data directory", true, func(c *config) *string { return &c.KVURL }),
		s("addr", "MEMCELL_ADDR", "127.0.0.1:8080", "address the API listens on; a non-loopback address needs --api-token or --insecure", false, func(c *config) *string { return &c.Addr }),
		s("data-dir", "MEMCELL_DATA_DIR", "memcell-data", "directory of the embedded primary and the default Pebble store", false, func(c *config) *string { return &c.DataDir }),
		s("api-token", "MEMCELL_API_TOKEN", "", "bearer token every route but /healthz requires (prefer the environment variable: flags show in ps)", true, func(c *config) *string { return &c.APIToken }),
		s("log-level", "MEMCELL_LOG_LEVEL", "info", "debug, info, warn or error", false, func(c *config) *string { return &c.LogLevel }),
		s("log-format", "MEMCELL_LOG_FORMAT", "auto", "text, json, or auto (text on a terminal, JSON otherwise)", false, func(c *config) *string { return &c.LogFormat }),
		s("embedded-addr", "MEMCELL_EMBEDDED_ADDR", "127.0.0.1:27027", "loopback address the embedded primary listens on (port 0 picks a free one)", false, func(c *config) *string { return &c.EmbeddedAddr }),
		s("validation", "MEMCELL_VALIDATION", "on", "read validation: on, off, or sample:N (validate N% of the reads that would validate)", false, func(c *config) *string { return &c.Validation }),
		{flag: "insecure", env: "MEMCELL_INSECURE", file: "insecure", def: "false", boolean: true, help: "allow a non-loopback --addr without an API token",
			set: func(c *config, v string) (err error) { c.Insecure, err = strconv.ParseBool(v); return }, get: func(c *config) string { return strconv.FormatBool(c.Insecure) }},
		{flag: "mirroring", env: "MEMCELL_MIRRORING", file: "mirroring", def: "true", boolean: true, help: "mirror writes to the KV store (can change at runtime: PUT /v1/admin/flags)",
			set: func(c *config, v string) (err error) { c.Mirroring, err = strconv.ParseBool(v); return }, get: func(c *config) string { return strconv.FormatBool(c.Mirroring) }},
		{flag: "max-body-bytes", env: "MEMCELL_MAX_BODY_BYTES", file: "max_body_bytes", def: "1048576", help: "largest request body accepted (413 beyond)",
			set: func(c *config, v string) (err error) {
				c.MaxBodyBytes, err = strconv.ParseInt(v, 10, 64)
				if err == nil && c.MaxBodyBytes <= 0 {
					err = fmt.Errorf("must be positive")
				}
				return
			}, get: func(c *config) string { return strconv.FormatInt(c.MaxBodyBytes, 10) }},
		{flag: "shutdown-timeout", env: "MEMCELL_SHUTDOWN_TIMEOUT", file: "shutdown_timeout", def: "30s", help: "how long a shutdown waits for in-flight requests",
			set: func(c *config, v string) (err error) { c.ShutdownTimeout, err = time.ParseDuration(v); return }, get: func(c *config) string { return c.ShutdownTimeout.String() }},
	}
}

// addConfigFlags registers the flags of the settings (all of them, or the
// ones named in only), plus --config.
func addConfigFlags(fs *pflag.FlagSet, only ...string) {
	for _, s := range settings() {
		if len(only) > 0 && !slices.Contains(only, s.flag) {
			continue
		}
		if s.boolean {
			fs.Bool(s.flag, s.def == "true", s.help+" ($"+s.env+")")
			continue
		}
		fs.String(s.flag, s.def, s.help+" ($"+s.env+")")
	}
	fs.String("config", "", "YAML config file (keys as the flags with _ for -, e.g. mongo_uri); flags and environment win over it")
}

// loadConfig resolves every setting: flag > environment > file > default.
func loadConfig(fs *pflag.FlagSet, getenv func(string) string) (*config, error) {
	c := &config{}
	file := map[string]string{}
	if path, _ := fs.GetString("config"); path != "" {
		var err error
		if file, err = readConfigFile(path); err != nil {
			return nil, err
		}
	}
	for _, s := range settings() {
		v, from := s.def, "default"
		if fv, ok := file[s.file]; ok {
			v, from = fv, "config file key "+s.file
			delete(file, s.file)
		}
		if ev := getenv(s.env); ev != "" {
			v, from = ev, "$"+s.env
		}
		if f := fs.Lookup(s.flag); f != nil && f.Changed {
			v, from = f.Value.String(), "--"+s.flag
		}
		if err := s.set(c, v); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errUsage, from, err)
		}
	}
	if len(file) > 0 {
		keys := make([]string, 0, len(file))
		for k := range file {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return nil, fmt.Errorf("%w: config file: unknown key(s) %s", errUsage, strings.Join(keys, ", "))
	}
	if _, err := c.flags(); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	switch c.LogFormat {
	case "auto", "text", "json":
	default:
		return nil, fmt.Errorf("%w: log format %q: want text, json or auto", errUsage, c.LogFormat)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return c, nil
}

func readConfigFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: config file: %v", errUsage, err)
	}
	var raw map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil && err.Error() != "EOF" {
		return nil, fmt.Errorf("%w: config file %s: %v", errUsage, path, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v.(type) {
		case map[string]any, []any:
			return nil, fmt.Errorf("%w: config file %s: %s must be a single value", errUsage, path, k)
		case nil:
			out[k] = ""
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out, nil
}

// flags turns the validation and mirroring settings into mirror flags.
func (c *config) flags() (mirror.Flags, error) {
	f := mirror.Flags{Mirroring: c.Mirroring}
	switch v := c.Validation; {
	case v == "on" || v == "off":
		f.Validation = v
	case strings.HasPrefix(v, "sample:"):
		p, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(v, "sample:"), "%"), 64)
		if err != nil || p < 0 || p > 100 {
			return f, fmt.Errorf("validation %q: the sample must be a percentage 0-100, e.g. sample:10", v)
		}
		f.Validation, f.SamplePercent = mirror.ValidationSample, p
	default:
		return f, fmt.Errorf("validation %q: want on, off or sample:N", v)
	}
	return f, nil
}

// redacted returns the settings with credentials hidden, for logs and for
// the admin API.
func (c *config) redacted() map[string]string {
	out := map[string]string{}
	for _, s := range settings() {
		v := s.get(c)
		switch {
		case s.flag == "api-token":
			if v != "" {
				v = "(set)"
			}
		case s.secret && v != "":
			v = kv.Redact(v)
		}
		out[s.file] = v
	}
	return out
}
