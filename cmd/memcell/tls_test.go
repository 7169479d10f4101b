package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed ECDSA P-256 certificate for 127.0.0.1
// and its key to dir, made now, and returns their paths.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "memcell test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestServeTLS serves over HTTPS with a certificate made for the test, and
// talks to it as a client that trusts it, as one that does not, in plain
// HTTP, and through the kv commands.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, t.TempDir())
	addr := freeAddr(t)
	const token = "tok-tls"
	s := startServer(t, []string{"MEMCELL_API_TOKEN=" + token}, "--data-dir", dir, "--addr", addr, "--embedded-addr", "127.0.0.1:0",
		"--tls-cert", certFile, "--tls-key", keyFile, "--log-format", "json")
	if s.url != "https://"+addr {
		t.Fatalf("the api line says %s, want https://%s", s.url, addr)
	}
	s.client = trusting(t, certFile, 0)
	resp, _ := s.call("GET", "/healthz", "", nil, nil)
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("GET /healthz over https = %d, TLS %+v", resp.StatusCode, resp.TLS)
	}
	var created doc
	if resp, body := s.call("POST", "/v1/memcells", token, doc{"user_id": "alice", "timestamp": "2026-01-12T10:30:00Z"}, &created); resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST over https = %d %s", resp.StatusCode, body)
	}

	// TLS 1.1 is refused, and so is a client that does not trust the
	// certificate.
	if resp, err := trusting(t, certFile, tls.VersionTLS11).Get(s.url + "/healthz"); err == nil || !strings.Contains(err.Error(), "version") {
		if err == nil {
			resp.Body.Close()
		}
		t.Errorf("a TLS 1.1 client = %v, want a protocol version error", err)
	}
	if resp, err := http.Get(s.url + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		if err == nil {
			resp.Body.Close()
		}
		t.Errorf("a client that does not trust the certificate = %v, want a certificate error", err)
	}
	// Plain HTTP to the TLS port is not served: Go's server answers a bare
	// 400 that is not memcell's.
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || resp.Header.Get("X-Request-Id") != "" {
			t.Errorf("plain http to the TLS port = %d, served by memcell", resp.StatusCode)
		}
	}

	// kv stats: --ca-cert, or $SSL_CERT_FILE, makes the client trust it.
	env := []string{"MEMCELL_API_TOKEN=" + token}
	if code, out := runCLIEnv(t, env, "kv", "stats", "--server", s.url, "--ca-cert", certFile); code != 0 || !strings.Contains(out, `"entry_count": 1`) {
		t.Errorf("kv stats --ca-cert exit %d:\n%s", code, out)
	}
	if code, out := runCLIEnv(t, append(env, "SSL_CERT_FILE="+certFile), "kv", "stats", "--server", s.url); code != 0 || !strings.Contains(out, `"entry_count": 1`) {
		t.Errorf("kv stats with SSL_CERT_FILE exit %d:\n%s", code, out)
	}
	if code, out := runCLIEnv(t, env, "kv", "stats", "--server", s.url); code == 0 || !strings.Contains(out, "certificate") {
		t.Errorf("kv stats without trusting the certificate exit %d:\n%s", code, out)
	}
	// A job runs in the server over https: with --server and --ca-cert,
	// and from the server's own settings (address and certificate).
	store := []string{"--data-dir", dir, "--embedded-addr", "127.0.0.1:0", "--progress", "none"}
	if code, out := runCLIEnv(t, env, append([]string{"kv", "verify", "--server", s.url, "--ca-cert", certFile}, store...)...); code != 0 || !strings.Contains(out, "runs in the memcell server at https://"+addr) {
		t.Errorf("kv verify --server https --ca-cert exit %d:\n%s", code, out)
	}
	serverEnv := append(env, "MEMCELL_ADDR="+addr, "MEMCELL_TLS_CERT="+certFile, "MEMCELL_TLS_KEY="+keyFile)
	if code, out := runCLIEnv(t, serverEnv, append([]string{"kv", "repair"}, store...)...); code != 0 || !strings.Contains(out, "runs in the memcell server at https://"+addr) {
		t.Errorf("kv repair with the server's TLS settings exit %d:\n%s", code, out)
	}
	// Not trusted: the command says so instead of opening the stores.
	if code, out := runCLIEnv(t, env, append([]string{"kv", "verify", "--server", s.url}, store...)...); code != 2 || !strings.Contains(out, "--ca-cert") {
		t.Errorf("kv verify against an untrusted certificate exit %d:\n%s", code, out)
	}
	s.stop()
	if strings.Contains(s.stderr.String(), token) {
		t.Error("the API token appears in the log")
	}
}

// trusting returns a client that trusts the certificates in certFile and
// speaks TLS up to maxVersion (0: the default).
func trusting(t *testing.T, certFile string, maxVersion uint16) *http.Client {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("no certificate in", certFile)
	}
	cfg := &tls.Config{RootCAs: pool, MaxVersion: maxVersion}
	if maxVersion != 0 {
		cfg.MinVersion = tls.VersionTLS10
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: time.Minute}
}
