package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memcell/memcell/kv/rediskv/redistest"
)

// The secrets of TestSecretsNeverShown: each appears once in the command
// line, the environment or the config file, and never in the output.
var testSecrets = []string{"PW1zq", "TOK2zq", "PW3zq", "PW4zq", "TOK5zq", "PW6zq", "TOK7zq", "TOK8zq", "PW9zq"}

// checkNoSecret fails the test if out shows one of testSecrets.
func checkNoSecret(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range testSecrets {
		if strings.Contains(out, s) {
			t.Errorf("%s shows the secret %s:\n%s", what, s, out)
		}
	}
}

// TestSecretsNeverShown runs the binary with credentials in every place a
// command reads (MongoDB URI, KV URL, server URL, API token; flag,
// environment, config file, a stray argument, a refused value) on paths
// that fail, in both log formats at debug level, and checks that no
// credential reaches stdout or stderr.
func TestSecretsNeverShown(t *testing.T) {
	tmp := t.TempDir()
	const (
		mongoURI = "mongodb://user:PW1zq@127.0.0.1:1/?authMechanismProperties=AWS_SESSION_TOKEN:TOK2zq&tlsCertificateKeyFilePassword=PW3zq&serverSelectionTimeoutMS=500"
		kvURL    = "redis://:PW4zq@127.0.0.1:1/0?dial_timeout=200ms"
		token    = "MEMCELL_API_TOKEN=TOK5zq"
		server   = "http://u:TOK7zq@127.0.0.1:1/?token=TOK8zq"
		bad      = "mongodb://u:PW6zq@h/" // a URL where it does not belong
	)
	file := func(name, content string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodFile := file("good.yaml", "mongo_uri: "+mongoURI+"\nkv: "+kvURL+"\napi_token: TOK5zq\n")
	badValue := file("badvalue.yaml", "mongo_uri: "+mongoURI+"\nmax_body_bytes: "+bad+"\n")
	badYAML := file("badyaml.yaml", "mongo_uri: !!int "+bad+"\n")
	badKey := file("badkey.yaml", "{"+bad+": 1}\n")
	data := []string{"--data-dir", filepath.Join(tmp, "data"), "--embedded-addr", "127.0.0.1:0"}
	serve := append([]string{"serve", "--addr", "127.0.0.1:0"}, data...)
	job := append([]string{"kv", "verify", "--addr", freeAddr(t)}, data...)
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		logs bool   // takes --log-level and --log-format
		want string // in the output: the run went where the case means
	}{
		{"serve, unreachable primary", []string{token}, append(serve, "--mongo-uri", mongoURI, "--kv", kvURL), true, "mongodb://user:xxxxx@127.0.0.1:1/"},
		{"serve, bad KV option", []string{token}, append(serve, "--kv", kvURL+"&colour=blue"), true, "kv: rediskv: redis://:xxxxx@127.0.0.1:1/0"},
		{"serve, driver quotes a value", nil, append(serve, "--mongo-uri", "mongodb://u:PW1zq@h/?tlsCertificateKeyFilePassword=PW3zq%zz"), true, "invalid option value"},
		{"serve, unparsable URI", nil, append(serve, "--mongo-uri", "mongodb://u:PW1zq@[::1/?serverSelectionTimeoutMS=500"), true, "cannot be parsed"},
		{"serve, environment", []string{token, "MEMCELL_MONGO_URI=" + mongoURI, "MEMCELL_KV_URL=" + kvURL}, serve, true, "primary"},
		{"serve, config file", nil, append(serve, "--config", goodFile), true, "primary"},
		{"serve, bad value in the config file", nil, append(serve, "--config", badValue), false, "max_body_bytes"},
		{"serve, config file not YAML", nil, append(serve, "--config", badYAML), false, "cannot decode"},
		{"serve, unknown key", nil, append(serve, "--config", badKey), false, "unknown key"},
		{"serve, bad value in the environment", []string{"MEMCELL_MAX_BODY_BYTES=" + bad}, serve, false, "MEMCELL_MAX_BODY_BYTES"},
		{"serve, bad flag value", nil, append(serve, "--max-body-bytes", bad), false, "max-body-bytes"},
		{"serve, stray argument", nil, append(serve, bad), false, "unknown command"},
		{"serve, unknown shorthand flag", nil, append(serve, "-X"+bad), false, "unknown shorthand flag"},
		{"help, unknown topic", nil, []string{"help", bad}, false, "unknown help topic"},
		{"kv verify, unreachable primary", []string{token}, append(job, "--mongo-uri", mongoURI, "--kv", kvURL), true, "primary"},
		{"kv verify, unreachable server", []string{token}, append(job, "--mongo-uri", mongoURI, "--server", server), true, "no memcell server answers"},
		{"kv stats, unreachable server", []string{token}, []string{"kv", "stats", "--server", server}, false, "cannot reach"},
		{"kv stats, server address", []string{token}, []string{"kv", "stats", "--server", "u:TOK7zq@127.0.0.1:1"}, false, "cannot reach"},
		{"kv stats, unreachable KV", nil, []string{"kv", "stats", "--kv", kvURL}, false, "ping"},
		{"kv stats, password option", nil, []string{"kv", "stats", "--kv", "redis://127.0.0.1:1/0?password=PW9zq"}, false, "unexpected option"},
	} {
		formats := []string{""}
		if tc.logs {
			formats = []string{"json", "text"}
		}
		for _, format := range formats {
			args := tc.args
			if format != "" {
				args = append(args[:len(args):len(args)], "--log-level", "debug", "--log-format", format)
			}
			code, out := runCLIEnv(t, tc.env, args...)
			what := tc.name + " " + format
			if code != 2 || !strings.Contains(out, tc.want) {
				t.Errorf("%s: exit %d, want 2 and an output saying %q:\n%s", what, code, tc.want, out)
			}
			checkNoSecret(t, what, out)
		}
	}
}

// TestSecretsNeverShownServing runs serve with an API token and a Redis
// password, makes requests (a wrong token, the admin routes, a job run
// from the command line), runs kv verify and a second serve with secret
// options in the MongoDB URI of the first one's primary, stops the
// servers, and checks that no credential reached the output of any of
// them.
func TestSecretsNeverShownServing(t *testing.T) {
	tg := redistest.Standalone()
	tg.Require(t)
	prefix := redistest.UniquePrefix()
	t.Cleanup(func() { tg.DeleteNamespace(t, prefix) })
	// The test Redis has no password: its default user takes any.
	kvURL := strings.Replace(tg.URL("prefix="+prefix), "redis://", "redis://default:PW4zq@", 1)
	if kvURL == tg.URL("prefix="+prefix) {
		t.Fatalf("no password put in %s", kvURL)
	}
	embedded := freeAddr(t)
	env := []string{"MEMCELL_API_TOKEN=TOK5zq"}
	s := startServer(t, env, "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--embedded-addr", embedded,
		"--kv", kvURL, "--log-level", "debug", "--log-format", "json")

	var created doc
	if resp, body := s.call("POST", "/v1/memcells", "TOK5zq", doc{"user_id": "alice", "timestamp": "2026-01-12T10:30:00Z"}, &created); resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/memcells = %d %s", resp.StatusCode, body)
	}
	for _, path := range []string{"/v1/memcells/" + created["event_id"].(string), "/v1/admin/flags", "/v1/admin/jobs", "/v1/admin/pending", "/v1/kv/stats", "/readyz"} {
		if resp, body := s.call("GET", path, "TOK5zq", nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d %s", path, resp.StatusCode, body)
		}
	}
	if resp, _ := s.call("GET", "/v1/admin/flags", "TOK5zq-wrong", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong token: %d, want 401", resp.StatusCode)
	}
	var outs []string
	code, out := runCLIEnv(t, env, "kv", "verify", "--server", s.url, "--progress", "json")
	outs = append(outs, out)
	if code != 0 || !strings.Contains(out, "runs in the memcell server") {
		t.Errorf("kv verify in the server: exit %d\n%s", code, out)
	}
	// The embedded primary takes no credentials (authMechanismProperties
	// would make the driver authenticate), but these options pass.
	mongoURI := "mongodb://" + embedded + "/?tlsCertificateKeyFilePassword=PW3zq&appName=memcell&access_token=TOK2zq"
	code, out = runCLIEnv(t, env, "kv", "verify", "--mongo-uri", mongoURI, "--kv", kvURL, "--addr", freeAddr(t),
		"--log-level", "debug", "--log-format", "text", "--progress", "json")
	outs = append(outs, out)
	if code != 0 || !strings.Contains(out, "verify: 1 documents") {
		t.Errorf("kv verify opening the stores: exit %d\n%s", code, out)
	}
	// A second server on the first one's primary, named by the URI. It
	// only reads: two processes must not write to one FerretDB.
	s2 := startServer(t, env, "--mongo-uri", mongoURI, "--kv", kvURL, "--addr", "127.0.0.1:0",
		"--log-level", "debug", "--log-format", "text")
	if resp, body := s2.call("GET", "/v1/memcells/"+created["event_id"].(string), "TOK5zq", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET through the second server = %d %s", resp.StatusCode, body)
	}
	s2.stop()
	// A third server whose KV cannot be reached: it starts, and its
	// attempts to open the store are logged.
	s3 := startServer(t, env, "--mongo-uri", mongoURI, "--kv", "redis://default:PW4zq@"+freeAddr(t)+"/0", "--addr", "127.0.0.1:0",
		"--log-level", "debug", "--log-format", "json")
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(s3.stderr.String(), "kv store not reachable") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no retry of the KV logged in 30 s:\n%s", s3.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s3.stop()
	s.stop()
	for _, srv := range []*server{s, s2, s3} {
		outs = append(outs, srv.stdout.String(), srv.stderr.String())
		if !strings.Contains(srv.stdout.String(), "redis://default:xxxxx@") || !strings.Contains(srv.stderr.String(), "(set)") {
			t.Errorf("the banner or the start-up line does not show the redacted settings:\n%s\n%s", srv.stdout, srv.stderr)
		}
	}
	if want := "tlsCertificateKeyFilePassword=xxxxx&appName=memcell&access_token=xxxxx"; !strings.Contains(s2.stdout.String(), want) {
		t.Errorf("the banner of the second server does not show %s:\n%s", want, s2.stdout)
	}
	checkNoSecret(t, "serve and kv verify", strings.Join(outs, "\n"))
}
