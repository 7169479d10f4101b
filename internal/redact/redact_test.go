package redact

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// TestURL checks the redaction of MongoDB, KV and server URLs: the
// password and the secret options hidden, the rest kept as written, and a
// string that is not a URL not echoed at all.
func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		// MongoDB.
		{"mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/"},
		{"mongodb://user:PW1@127.0.0.1:1/?authMechanismProperties=AWS_SESSION_TOKEN:TOK2&tlsCertificateKeyFilePassword=PW3",
			"mongodb://user:xxxxx@127.0.0.1:1/?authMechanismProperties=xxxxx&tlsCertificateKeyFilePassword=xxxxx"},
		{"mongodb://u:p@db1:27017,db2:27017,db3/app?replicaSet=rs0&w=majority", "mongodb://u:xxxxx@db1:27017,db2:27017,db3/app?replicaSet=rs0&w=majority"},
		{"mongodb://u:p@[::1]:27017,[fe80::1%25en0]:27018/?replicaSet=rs0", "mongodb://u:xxxxx@[::1]:27017,[fe80::1%25en0]:27018/?replicaSet=rs0"},
		{"mongodb+srv://u:p%40ss@cluster0.example.net/db?retryWrites=true", "mongodb+srv://u:xxxxx@cluster0.example.net/db?retryWrites=true"},
		{"mongodb://%2Ftmp%2Fmongodb-27017.sock/?appName=x", "mongodb://%2Ftmp%2Fmongodb-27017.sock/?appName=x"},
		{"mongodb://u:pa?ss#w@h/", "mongodb://u:xxxxx@h/"}, // "?" and "#" in a password, as the driver allows
		{"mongodb://u:p@ss@h/", "mongodb://u:xxxxx@h/"},
		{"mongodb://CN=app,OU=x@h/?authMechanism=MONGODB-X509&tlsCertificateKeyFile=/etc/app.pem&tlsCAFile=/etc/ca.pem",
			"mongodb://CN=app,OU=x@h/?authMechanism=MONGODB-X509&tlsCertificateKeyFile=/etc/app.pem&tlsCAFile=/etc/ca.pem"},
		{"mongodb://h/?sslClientCertificateKeyPassword=a;sslPassword=b;tlsPrivateKeyFile=/k.pem;authSource=admin",
			"mongodb://h/?sslClientCertificateKeyPassword=xxxxx;sslPassword=xxxxx;tlsPrivateKeyFile=/k.pem;authSource=admin"},
		{"mongodb://h/?authMechanismProperties=SERVICE_NAME:mongodb,CANONICALIZE_HOST_NAME:true", "mongodb://h/?authMechanismProperties=xxxxx"},
		// Redis and Redis Cluster.
		{"redis://:PW4@127.0.0.1:1/0", "redis://:xxxxx@127.0.0.1:1/0"},
		{"redis://:@h:6379", "redis://:xxxxx@h:6379"},
		{"rediss://default:pw@redis.example:6380/2?prefix=mc:&dial_timeout=1s", "rediss://default:xxxxx@redis.example:6380/2?prefix=mc:&dial_timeout=1s"},
		{"redis+cluster://u:pw@10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000&prefix=memcell:",
			"redis+cluster://u:xxxxx@10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000&prefix=memcell:"},
		{"redis://h:6379/0?password=pw&client_name=app", "redis://h:6379/0?password=xxxxx&client_name=app"},
		// Every secret-looking name, in any case; an empty value stays empty.
		{"x://h/?PASSWORD=1&pass=2&Pwd=3&pw=4&secret=5&client_secret=6&token=7&access_token=8&api_key=9&apiKey=10&credentials=11&password=",
			"x://h/?PASSWORD=xxxxx&pass=xxxxx&Pwd=xxxxx&pw=xxxxx&secret=xxxxx&client_secret=xxxxx&token=xxxxx&access_token=xxxxx&api_key=xxxxx&apiKey=xxxxx&credentials=xxxxx&password="},
		{"x://h/?pass%77ord=1&%zz=2&flag&a=b", "x://h/?pass%77ord=xxxxx&%zz=xxxxx&flag&a=b"},
		{"x://h/#frag", "x://h/#xxxxx"},
		// Disk stores.
		{"pebble:///var/lib/memcell/kv?sync=true", "pebble:///var/lib/memcell/kv?sync=true"},
		{"pebble:rel/dir", "pebble:rel/dir"},
		{"leveldb:///data/a@b", "leveldb:///data/a@b"},
		{"memory://", "memory://"},
		// Servers.
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"https://u:tok@memcell.example/?token=t", "https://u:xxxxx@memcell.example/?token=xxxxx"},
		{"user:pw@host:80", "user:xxxxx@host:80"},
		// Not URLs, with an "@", "?" or "#": nothing shown.
		{"u:pw@[::1", "u:xxxxx@[::1"},
		{"redis://:pa/ss@h", Unparsable},
		{"redis://h:6379?x=a@b&password=s", Unparsable},
		{"mongodb://h w/?password=s", Unparsable},
		{"mongodb://u:p w@h/", "mongodb://u:xxxxx@h/"},
		// Not URLs, but with no "@", "?" or "#": no place for a credential.
		{"redis://h:pw/0", "redis://h:pw/0"},
		{"127.0.0.1:8080", "127.0.0.1:8080"},
		{"/abs/dir", "/abs/dir"},
		{"mongodb://h w/", "mongodb://h w/"},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q)\n = %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// TestSecretOption checks the names kept: the MongoDB certificate and key
// file paths, and ordinary options.
func TestSecretOption(t *testing.T) {
	for name, want := range map[string]bool{
		"tlsCertificateKeyFile": false, "sslClientCertificateKeyFile": false, "tlsPrivateKeyFile": false,
		"tlsCertificateKeyFilePassword": true, "sslClientCertificateKeyPassword": true, "authMechanismProperties": true,
		"authMechanism": false, "authSource": false, "appName": false, "replicaSet": false, "prefix": false, "addr": false,
		"tombstone_grace": false, "client_name": false, "tlsCAFile": false,
	} {
		if got := SecretOption(name); got != want {
			t.Errorf("SecretOption(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestError checks that an error quoting a URL's secrets, as written or
// unescaped, is scrubbed and still unwraps, and that one about a URL that
// cannot be read shows nothing of it.
func TestError(t *testing.T) {
	raw := "mongodb://u:p%40ss1@h/?authMechanismProperties=AWS_SESSION_TOKEN:tok%2B2&tlsCertificateKeyFilePassword=pw3"
	base := fmt.Errorf("connect %s: password p@ss1, token tok+2 (tok%%2B2), option value %q: %w", raw, "pw3", io.EOF)
	err := Error(base, raw)
	for _, secret := range []string{"p@ss1", "p%40ss1", "tok+2", "tok%2B2", "AWS_SESSION_TOKEN:tok", "pw3"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Error(...) = %q shows %q", err, secret)
		}
	}
	if !errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "mongodb://u:xxxxx@h/") {
		t.Errorf("Error(...) = %q: want it to unwrap to io.EOF and keep the host", err)
	}
	if Error(nil, raw) != nil {
		t.Error("Error(nil) is not nil")
	}

	bad := "redis://h:se/cret@x"
	err = Error(fmt.Errorf("parse %q: se/cret: %w", bad, io.EOF), bad)
	if strings.Contains(err.Error(), "se/cret") || !errors.Is(err, io.EOF) {
		t.Errorf("Error over an unparsable URL = %q, want nothing of it shown", err)
	}
	if msg, ok := Scrub("no secrets here", "", "memory://"); !ok || msg != "no secrets here" {
		t.Errorf("Scrub = %q, %v", msg, ok)
	}
}
