// Package netaddr holds the one rule the service and the embedded primary
// apply to addresses: what counts as loopback. It also normalises the host
// names the API's host check compares.
package netaddr

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Loopback reports whether addr, a host:port, listens on loopback only:
// a loopback host (LoopbackHost). An empty host (":8080") listens on every
// interface and is not loopback. The error is for an address that is not
// host:port.
func Loopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("listen address %q: %w", addr, err)
	}
	return LoopbackHost(host), nil
}

// LoopbackHost reports whether host, a host name or IP address without a
// port (an IPv6 address with or without brackets), names the loopback:
// "localhost" (in any case, with or without a trailing dot) or an IP
// address in 127.0.0.0/8 or ::1 (an IPv4-mapped one too). Names under
// .localhost are not loopback here: a resolver may send them to DNS.
func LoopbackHost(host string) bool {
	h, err := CanonicalHost(host)
	if err != nil {
		return false
	}
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

// CanonicalHost normalises a host name or IP address, given without a
// port, for comparison: a name in lower case without its trailing dot, an
// IP address in its canonical form (IPv6 without brackets, an IPv4-mapped
// address as IPv4). The error says why s is neither; a host:port is
// refused.
func CanonicalHost(s string) (string, error) {
	h := strings.TrimSpace(s)
	if inner, ok := strings.CutPrefix(h, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		ip, err := netip.ParseAddr(inner)
		if !ok || err != nil || !ip.Is6() {
			return "", fmt.Errorf("host %q: brackets hold an IPv6 address and nothing else", s)
		}
		return ip.Unmap().String(), nil
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Unmap().String(), nil
	}
	if strings.Contains(h, ":") {
		return "", fmt.Errorf("host %q: give the host name without a port", s)
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if err := checkName(h); err != nil {
		return "", fmt.Errorf("host %q: %w", s, err)
	}
	return h, nil
}

// checkName accepts a DNS name: dot-separated labels of 1-63 letters,
// digits, '-' and '_', 253 characters at most.
func checkName(h string) error {
	if h == "" {
		return errors.New("empty")
	}
	if len(h) > 253 {
		return errors.New("longer than 253 characters")
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("not a host name (each dot-separated label has 1-63 characters)")
		}
		for i := 0; i < len(label); i++ {
			switch c := label[i]; {
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			default:
				return fmt.Errorf("not a host name (%q is not a letter, digit, '-' or '_')", c)
			}
		}
	}
	return nil
}

// HostOf returns the host of a Host header value (host, host:port,
// [IPv6]:port or [IPv6]) as CanonicalHost gives it; ok is false when the
// value holds no valid host.
func HostOf(hostHeader string) (host string, ok bool) {
	h := hostHeader
	switch {
	case strings.HasPrefix(h, "["):
		if end := strings.LastIndexByte(h, ']'); end >= 0 {
			if rest := h[end+1:]; rest != "" && !validPort(rest) {
				return "", false
			}
			h = h[:end+1]
		}
	case strings.Count(h, ":") == 1:
		name, port, _ := strings.Cut(h, ":")
		if !validPort(":" + port) {
			return "", false
		}
		h = name
	}
	c, err := CanonicalHost(h)
	return c, err == nil
}

// validPort accepts ":" followed by up to five digits, or a bare ":" (an
// empty port, which RFC 3986 allows).
func validPort(s string) bool {
	digits, ok := strings.CutPrefix(s, ":")
	if !ok || len(digits) > 5 {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}
