package netaddr

import (
	"strings"
	"testing"
)

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080":   true,
		"127.1.2.3:0":      true,
		"[::1]:8080":       true,
		"localhost:8080":   true,
		":8080":            false,
		"0.0.0.0:8080":     false,
		"[::]:8080":        false,
		"192.168.1.5:8080": false,
		"example.com:80":   false,
	} {
		got, err := Loopback(addr)
		if err != nil || got != want {
			t.Errorf("Loopback(%q) = %v, %v; want %v", addr, got, err, want)
		}
	}
	for _, addr := range []string{"127.0.0.1", "", "localhost"} {
		if _, err := Loopback(addr); err == nil {
			t.Errorf("Loopback(%q): no error for an address without a port", addr)
		}
	}
}

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost":          true,
		"LocalHost":          true,
		"localhost.":         true,
		"127.0.0.1":          true,
		"127.255.0.9":        true,
		"::1":                true,
		"[::1]":              true,
		"::ffff:127.0.0.1":   true,
		"0:0:0:0:0:0:0:1":    true,
		"app.localhost":      false, // may go to DNS
		"localhost.example":  false,
		"127.0.0.1.nip.io":   false,
		"0.0.0.0":            false,
		"::":                 false,
		"192.168.1.5":        false,
		"attacker.example":   false,
		"localhost:8080":     false, // a port is not a host
		"":                   false,
		"[127.0.0.1]":        false,
		"local host":         false,
		"2130706433":         false, // a name here, not 127.0.0.1
		"[::1]:8080":         false,
		"example.com/x":      false,
		"xn--80ak6aa92e.com": false,
	} {
		if got := LoopbackHost(host); got != want {
			t.Errorf("LoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestCanonicalHost(t *testing.T) {
	for in, want := range map[string]string{
		"Memcell.Example.":   "memcell.example",
		" memcell.internal ": "memcell.internal",
		"10.0.0.5":           "10.0.0.5",
		"[FD00::0:1]":        "fd00::1",
		"fd00:0::1":          "fd00::1",
		"::ffff:10.0.0.5":    "10.0.0.5",
		"my_host-1":          "my_host-1",
	} {
		if got, err := CanonicalHost(in); err != nil || got != want {
			t.Errorf("CanonicalHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ".", "memcell.example:8080", "*.example", "a..b", "http://x", "[10.0.0.5]", "[fd00::1", "x/y", strings.Repeat("a", 64) + ".example"} {
		if got, err := CanonicalHost(bad); err == nil {
			t.Errorf("CanonicalHost(%q) = %q, want an error", bad, got)
		}
	}
	if _, err := CanonicalHost("memcell.example:8080"); err == nil || !strings.Contains(err.Error(), "without a port") {
		t.Errorf("CanonicalHost of a host:port = %v, want advice to drop the port", err)
	}
}

func TestHostOf(t *testing.T) {
	for in, want := range map[string]string{
		"localhost":             "localhost",
		"localhost:8080":        "localhost",
		"LOCALHOST.:80":         "localhost",
		"127.0.0.1:8080":        "127.0.0.1",
		"[::1]:8080":            "::1",
		"[::1]":                 "::1",
		"[::1]:":                "::1",
		"::1":                   "::1",
		"attacker.example:8080": "attacker.example",
		"Memcell.Example":       "memcell.example",
		"[fd00::1]:443":         "fd00::1",
	} {
		if got, ok := HostOf(in); !ok || got != want {
			t.Errorf("HostOf(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", ":8080", "localhost:http", "localhost:123456", "[::1]x", "[::1]:8080:1", "[localhost]:80", "a b:80", "[::1"} {
		if got, ok := HostOf(bad); ok {
			t.Errorf("HostOf(%q) = %q, want no host", bad, got)
		}
	}
}
