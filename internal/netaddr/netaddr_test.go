package netaddr

import "testing"

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
