package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcell/memcell/kv"
	"github.com/memcell/memcell/kv/pebblekv"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestKVStats(t *testing.T) {
	dir := t.TempDir()
	s, err := pebblekv.Open(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.BatchPut(context.Background(), []kv.Entry{{Key: "memcell:a", Value: []byte("12345")}, {Key: "memcell:b", Value: []byte("é")}}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	out, err := run(t, "kv", "stats", "--kv", "pebble://"+dir)
	if err != nil {
		t.Fatalf("kv stats: %v\n%s", err, out)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output %q is not JSON: %v", out, err)
	}
	if got["backend"] != "pebble" || got["entry_count"] != 2.0 || got["total_size_bytes"] != 7.0 {
		t.Errorf("kv stats = %v, want pebble, 2 entries, 7 bytes", got)
	}
}

func TestKVStatsErrors(t *testing.T) {
	if _, err := run(t, "kv", "stats", "--server", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "cannot reach the memcell server") {
		t.Errorf("kv stats with no server = %v, want a clear error", err)
	}
	if _, err := run(t, "kv", "stats", "--bogus"); exitCode(err) != 2 {
		t.Errorf("unknown flag = %v, want exit 2", err)
	}
	_, err := run(t, "kv", "stats", "--kv", "nosuch://x")
	if !errors.Is(err, kv.ErrUnknownScheme) || exitCode(err) != 2 {
		t.Errorf("unknown scheme = %v", err)
	}
	_, err = run(t, "kv", "stats", "--kv", "redis://user:hunter2@127.0.0.1:1/0?dial_timeout=200ms")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("unreachable Redis = %v: want an error without the password", err)
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "memcell.yaml")
	if err := os.WriteFile(file, []byte("addr: 127.0.0.1:9001\nmongo_database: fromfile\nlog_level: warn\nvalidation: sample:25\nmirroring: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MEMCELL_MONGO_DATABASE": "fromenv", "MEMCELL_LOG_LEVEL": "debug", "MEMCELL_REQUEST_TIMEOUT": "5s"}
	cmd := newServeCmd()
	if err := cmd.ParseFlags([]string{"--config", file, "--log-level", "error"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(cmd.Flags(), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9001" || cfg.MongoDatabase != "fromenv" || cfg.LogLevel != "error" || cfg.DataDir != "memcell-data" || cfg.Mirror.Mirroring {
		t.Errorf("precedence wrong: %+v", cfg)
	}
	if cfg.RequestTimeout != 5*time.Second {
		t.Errorf("request timeout = %v, want 5s from the environment", cfg.RequestTimeout)
	}
	if f := cfg.Mirror; f.Validation != "sample" || f.SamplePercent != 25 {
		t.Errorf("mirror flags = %+v", f)
	}

	for _, bad := range []string{"colour: blue\n", "addr: [1, 2]\n", "validation: sometimes\n", "log_level: loud\n", "max_body_bytes: -1\n", ": :\n"} {
		if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := newServeCmd()
		_ = cmd.ParseFlags([]string{"--config", file})
		if _, err := loadConfig(cmd.Flags(), func(string) string { return "" }); !errors.Is(err, errUsage) {
			t.Errorf("config %q: %v, want a usage error", bad, err)
		}
	}
}

// TestPprofSetting checks that --pprof is off by default and comes from
// the flag, $MEMCELL_PPROF or the config key pprof.
func TestPprofSetting(t *testing.T) {
	file := filepath.Join(t.TempDir(), "memcell.yaml")
	if err := os.WriteFile(file, []byte("pprof: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want bool
	}{
		{"default", nil, nil, false},
		{"flag", []string{"--pprof"}, nil, true},
		{"environment", nil, map[string]string{"MEMCELL_PPROF": "true"}, true},
		{"file", []string{"--config", file}, nil, true},
		{"flag over file", []string{"--config", file, "--pprof=false"}, nil, false},
		{"environment over file", []string{"--config", file}, map[string]string{"MEMCELL_PPROF": "false"}, false},
	} {
		cmd := newServeCmd()
		if err := cmd.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(cmd.Flags(), func(k string) string { return tc.env[k] })
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if cfg.Pprof != tc.want {
			t.Errorf("%s: pprof = %v, want %v", tc.name, cfg.Pprof, tc.want)
		}
	}
	cmd := newServeCmd()
	_ = cmd.ParseFlags(nil)
	if _, err := loadConfig(cmd.Flags(), func(k string) string { return map[string]string{"MEMCELL_PPROF": "maybe"}[k] }); !errors.Is(err, errUsage) {
		t.Errorf("MEMCELL_PPROF=maybe: %v, want a usage error", err)
	}
}

func TestRedactedConfig(t *testing.T) {
	cfg := &config{MongoURI: "mongodb://u:hunter2@db/", KVURL: "redis://:hunter3@r:6379/0", APIToken: "tok", MetricsToken: "scrape-secret"}
	out := fmt.Sprint(cfg.redacted())
	for _, secret := range []string{"hunter2", "hunter3", "tok ", "scrape-secret"} {
		if strings.Contains(out+" ", secret) {
			t.Errorf("redacted config %s shows %q", out, secret)
		}
	}
}

func TestCheckBind(t *testing.T) {
	const clear, hosts = "travel in clear", "--allowed-hosts"
	for _, tc := range []struct {
		cfg  config
		ok   bool
		warn []string // a substring of each warning, in order
	}{
		{config{Addr: "127.0.0.1:8080"}, true, nil},
		{config{Addr: "localhost:8080"}, true, nil},
		{config{Addr: "[::1]:8080"}, true, nil},
		{config{Addr: "127.0.0.1:8080", APIToken: "t"}, true, nil},
		{config{Addr: "0.0.0.0:8080"}, false, nil},
		{config{Addr: ":8080"}, false, nil},
		{config{Addr: "0.0.0.0:8080", APIToken: "t"}, true, []string{clear}},
		{config{Addr: "0.0.0.0:8080", APIToken: "t", TLSCert: "c", TLSKey: "k"}, true, nil},
		{config{Addr: "0.0.0.0:8080", Insecure: true}, true, []string{hosts}},
		{config{Addr: "0.0.0.0:8080", Insecure: true, AllowedHosts: []string{"memcell.internal"}}, true, nil},
		{config{Addr: "0.0.0.0:8080", Insecure: true, MetricsToken: "m"}, true, []string{clear, hosts}},
		{config{Addr: "nonsense"}, false, nil},
	} {
		warnings, err := checkBind(&tc.cfg)
		if (err == nil) != tc.ok {
			t.Errorf("checkBind(%q, token %v, insecure %v) = %v", tc.cfg.Addr, tc.cfg.APIToken != "", tc.cfg.Insecure, err)
		}
		if len(warnings) != len(tc.warn) {
			t.Errorf("checkBind(%+v) warns %q, want %d warnings", tc.cfg, warnings, len(tc.warn))
			continue
		}
		for i, w := range tc.warn {
			if !strings.Contains(warnings[i], w) {
				t.Errorf("checkBind(%+v) warning %q lacks %q", tc.cfg, warnings[i], w)
			}
		}
	}
}

// TestServerTLS checks that --tls-cert and --tls-key go together and that
// files that are not a key pair are a usage error.
func TestServerTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir)
	cfg, err := serverTLS(&config{TLSCert: certFile, TLSKey: keyFile})
	if err != nil || cfg == nil || cfg.MinVersion != tls.VersionTLS12 || len(cfg.Certificates) != 1 {
		t.Fatalf("serverTLS with a key pair = %+v, %v", cfg, err)
	}
	if cfg, err := serverTLS(&config{}); cfg != nil || err != nil {
		t.Errorf("serverTLS without files = %+v, %v; want nil, nil", cfg, err)
	}
	for _, c := range []config{
		{TLSCert: certFile},
		{TLSKey: keyFile},
		{TLSCert: keyFile, TLSKey: certFile},
		{TLSCert: filepath.Join(dir, "absent.pem"), TLSKey: keyFile},
	} {
		if _, err := serverTLS(&c); !errors.Is(err, errUsage) || exitCode(err) != 2 {
			t.Errorf("serverTLS(%+v) = %v, want a usage error", c, err)
		}
	}
	// From the command line, one without the other stops serve at once.
	_, err = run(t, "serve", "--tls-cert", certFile, "--data-dir", dir)
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "--tls-cert and --tls-key go together") {
		t.Errorf("serve --tls-cert alone = %v, want a usage error", err)
	}
}

// TestAllowedHostsSetting checks the --allowed-hosts list from each source:
// comma-separated, normalised, refused when an entry is not a host.
func TestAllowedHostsSetting(t *testing.T) {
	cmd := newServeCmd()
	if err := cmd.ParseFlags([]string{"--allowed-hosts", "Memcell.Internal, 10.0.0.5", "--allowed-hosts", "[FD00::1]"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(cmd.Flags(), func(string) string { return "" })
	if err != nil || strings.Join(cfg.AllowedHosts, " ") != "memcell.internal 10.0.0.5 fd00::1" {
		t.Errorf("--allowed-hosts = %q, %v", cfg.AllowedHosts, err)
	}
	if got := cfg.redacted()["allowed_hosts"]; got != "memcell.internal,10.0.0.5,fd00::1" {
		t.Errorf("redacted allowed_hosts = %q", got)
	}
	cmd = newServeCmd()
	_ = cmd.ParseFlags(nil)
	cfg, err = loadConfig(cmd.Flags(), func(k string) string { return map[string]string{"MEMCELL_ALLOWED_HOSTS": "a.example,b.example"}[k] })
	if err != nil || strings.Join(cfg.AllowedHosts, " ") != "a.example b.example" {
		t.Errorf("MEMCELL_ALLOWED_HOSTS = %q, %v", cfg.AllowedHosts, err)
	}
	file := filepath.Join(t.TempDir(), "memcell.yaml")
	if err := os.WriteFile(file, []byte("allowed_hosts: memcell.internal\ntls_cert: c.pem\ntls_key: k.pem\nmetrics_token: mt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd = newServeCmd()
	_ = cmd.ParseFlags([]string{"--config", file})
	cfg, err = loadConfig(cmd.Flags(), func(string) string { return "" })
	if err != nil || strings.Join(cfg.AllowedHosts, " ") != "memcell.internal" || cfg.TLSCert != "c.pem" || cfg.TLSKey != "k.pem" || cfg.MetricsToken != "mt" {
		t.Errorf("config file = %+v, %v", cfg, err)
	}
}

// TestConfigErrors checks that a bad value is a usage error that names its
// source and the setting, whichever source it comes from.
func TestConfigErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "memcell.yaml")
	for _, tc := range []struct {
		setting, value string // flag name, and a value it refuses
		env, key       string
	}{
		{"max-body-bytes", "x", "MEMCELL_MAX_BODY_BYTES", "max_body_bytes"},
		{"max-body-bytes", "0", "MEMCELL_MAX_BODY_BYTES", "max_body_bytes"},
		{"shutdown-timeout", "30", "MEMCELL_SHUTDOWN_TIMEOUT", "shutdown_timeout"},
		{"replay-interval", "0s", "MEMCELL_REPLAY_INTERVAL", "replay_interval"},
		{"request-timeout", "0s", "MEMCELL_REQUEST_TIMEOUT", "request_timeout"},
		{"request-timeout", "-1s", "MEMCELL_REQUEST_TIMEOUT", "request_timeout"},
		{"replay-interval", "soon", "MEMCELL_REPLAY_INTERVAL", "replay_interval"},
		{"mirroring", "maybe", "MEMCELL_MIRRORING", "mirroring"},
		{"insecure", "maybe", "MEMCELL_INSECURE", "insecure"},
		{"validation", "sometimes", "MEMCELL_VALIDATION", "validation"},
		{"validation", "sample:101", "MEMCELL_VALIDATION", "validation"},
		{"log-level", "loud", "MEMCELL_LOG_LEVEL", "log_level"},
		{"log-format", "xml", "MEMCELL_LOG_FORMAT", "log_format"},
		{"allowed-hosts", "memcell.internal:8080", "MEMCELL_ALLOWED_HOSTS", "allowed_hosts"},
		{"allowed-hosts", "a.example,,b.example", "MEMCELL_ALLOWED_HOSTS", "allowed_hosts"},
		{"allowed-hosts", "*.example", "MEMCELL_ALLOWED_HOSTS", "allowed_hosts"},
	} {
		flagName := `"--` + tc.setting + `" flag`
		check := func(source string, err error, wantSource string) {
			t.Helper()
			if !errors.Is(err, errUsage) || exitCode(err) != 2 {
				t.Errorf("%s %s=%q: %v, want a usage error", source, tc.setting, tc.value, err)
				return
			}
			for _, want := range []string{wantSource, flagName, strconv.Quote(tc.value)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s %s=%q: %q does not name %s", source, tc.setting, tc.value, err, want)
				}
			}
		}

		// The command line: pflag refuses it while parsing. (Were it
		// accepted, the bad --addr would stop serve before it starts.)
		flagArg := "--" + tc.setting + "=" + tc.value
		_, err := run(t, "serve", "--addr=nonsense", flagArg)
		check("flag", err, "") // the flag is the source

		// The environment.
		cmd := newServeCmd()
		if err := cmd.ParseFlags(nil); err != nil {
			t.Fatal(err)
		}
		_, err = loadConfig(cmd.Flags(), func(k string) string {
			if k == tc.env {
				return tc.value
			}
			return ""
		})
		check("environment", err, "$"+tc.env+":")

		// The config file.
		if err := os.WriteFile(file, []byte(tc.key+": "+strconv.Quote(tc.value)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd = newServeCmd()
		if err := cmd.ParseFlags([]string{"--config", file}); err != nil {
			t.Fatal(err)
		}
		_, err = loadConfig(cmd.Flags(), func(string) string { return "" })
		check("file", err, "config file key "+tc.key+":")
	}

	// A good flag wins over a bad environment value and a bad file value,
	// which are not even parsed.
	if err := os.WriteFile(file, []byte("max_body_bytes: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := newServeCmd()
	if err := cmd.ParseFlags([]string{"--config", file, "--max-body-bytes", "2048"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(cmd.Flags(), func(k string) string { return map[string]string{"MEMCELL_MAX_BODY_BYTES": "x"}[k] })
	if err != nil || cfg.MaxBodyBytes != 2048 {
		t.Errorf("--max-body-bytes 2048 over bad env and file = %+v, %v", cfg, err)
	}
	// A job command does not show every setting, but the environment still
	// sets them, and is checked.
	t.Setenv("MEMCELL_MAX_BODY_BYTES", "x")
	_, err = run(t, "kv", "verify")
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), `$MEMCELL_MAX_BODY_BYTES: invalid argument "x" for "--max-body-bytes" flag`) {
		t.Errorf("kv verify with MEMCELL_MAX_BODY_BYTES=x: %v, want a usage error", err)
	}
	// The jobs' own enum flag is refused while parsing too.
	_, err = run(t, "kv", "verify", "--progress", "fancy")
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), `invalid argument "fancy" for "--progress" flag: want auto, bar, json or none`) {
		t.Errorf("kv verify --progress fancy: %v, want a usage error", err)
	}
}

// TestServeHelp checks that the help shows each flag's type.
func TestServeHelp(t *testing.T) {
	out, err := run(t, "serve", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"--max-body-bytes int ", "(default 1048576)",
		"--shutdown-timeout duration ", "(default 30s)",
		"--request-timeout duration ", "$MEMCELL_REQUEST_TIMEOUT",
		"--addr string ", "--validation string ", `(default "on")`,
		"$MEMCELL_MAX_BODY_BYTES", "--config string ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^\s+--mirroring\s+mirror writes`).MatchString(out) {
		t.Errorf("serve --help shows --mirroring with a value:\n%s", out)
	}
}

// TestStrayArguments checks that unknown subcommands and stray positional
// arguments are usage errors (exit status 2, which verify keeps apart from
// 1, "differences found"), and that a command grouping others prints its
// help when called alone.
func TestStrayArguments(t *testing.T) {
	for _, args := range [][]string{
		{"kv", "verify", "extra-arg"},
		{"kv", "repair", "x"},
		{"kv", "bogus"},
		{"bogus"},
		{"version", "x"},
		{"serve", "x"},
	} {
		_, err := run(t, args...)
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "unknown command") {
			t.Errorf("memcell %v = %v (exit %d), want a usage error naming the unknown command (exit 2)", args, err, exitCode(err))
		}
	}
	for _, args := range [][]string{{}, {"kv"}} {
		out, err := run(t, args...)
		if err != nil || !strings.Contains(out, "Available Commands") {
			t.Errorf("memcell %v = %v, output %q; want its help", args, err, out)
		}
	}
}

// TestProgressFlag checks that --progress takes an optional value: alone it
// is auto and never takes the next flag as its value, and "--progress json"
// still means --progress=json.
func TestProgressFlag(t *testing.T) {
	for _, tc := range []struct {
		args          []string
		progress, dir string
		err           string
	}{
		{args: []string{"--progress"}, progress: "auto"},
		{args: []string{"--progress", "--data-dir", "X"}, progress: "auto", dir: "X"},
		{args: []string{"--data-dir", "X", "--progress"}, progress: "auto", dir: "X"},
		{args: []string{"--progress", "json", "--data-dir", "X"}, progress: "json", dir: "X"},
		{args: []string{"--progress=none"}, progress: "none"},
		{args: []string{"--progress", "bar"}, progress: "bar"},
		{args: []string{}, progress: "auto"},
		{args: []string{"--progress", "fancy"}, err: `invalid argument "fancy" for "--progress" flag: want auto, bar, json or none`},
		{args: []string{"--progress=json", "none"}, err: `unknown command "none"`},
		{args: []string{"json"}, err: `unknown command "json"`},
	} {
		cmd, _, err := newRootCmd().Find([]string{"kv", "verify"})
		if err != nil {
			t.Fatal(err)
		}
		if err = cmd.ParseFlags(tc.args); err == nil {
			err = cmd.ValidateArgs(cmd.Flags().Args())
		}
		if tc.err != "" {
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("kv verify %q: %v, want a usage error saying %s", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("kv verify %q: %v", tc.args, err)
			continue
		}
		progress, dir := cmd.Flags().Lookup("progress").Value.String(), cmd.Flags().Lookup("data-dir").Value.String()
		if progress != tc.progress || (tc.dir != "" && dir != tc.dir) {
			t.Errorf("kv verify %q: --progress %q, --data-dir %q; want %q, %q", tc.args, progress, dir, tc.progress, tc.dir)
		}
	}
}
