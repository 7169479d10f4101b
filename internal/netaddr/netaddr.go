// Package netaddr holds the one rule the service and the embedded primary
// apply to listen addresses: what counts as loopback.
package netaddr

import (
	"fmt"
	"net"
)

// Loopback reports whether addr, a host:port, listens on loopback only:
// "localhost" or a loopback IP (127.0.0.0/8, ::1). An empty host (":8080")
// listens on every interface and is not loopback. The error is for an
// address that is not host:port.
func Loopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}
