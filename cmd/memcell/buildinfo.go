package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Set at link time by make build (-ldflags "-X main.version=v1.2.3 ...",
// from git), they win over what the Go toolchain stamps: go build stamps
// the VCS settings only in a plain git checkout (not in a git worktree,
// whose .git is a file, nor with -buildvcs=false).
var (
	version      = "" // git describe --tags --dirty; empty without a tag
	revision     = "" // git rev-parse HEAD
	revisionTime = "" // the commit time, RFC 3339 in UTC
	modified     = "" // "true" when the checkout had changes
)

// unknown stands for a build setting the binary does not carry: go test
// and go run stamp no VCS information, nor does go build outside a
// checkout or with -buildvcs=false.
const unknown = "unknown"

// binaryInfo is what a memcell binary knows of how it was built.
type binaryInfo struct {
	// Version is the link-time version, else the module version (go build
	// in a checkout derives one from the VCS: v0.0.0-<time>-<revision>,
	// +dirty when modified), else "devel".
	Version string
	// Revision is the VCS revision (vcs.revision), Time its commit time
	// (vcs.time, RFC 3339); unknown when not stamped.
	Revision, Time string
	// Modified reports uncommitted changes in the checkout at build time
	// (vcs.modified).
	Modified bool
	// GoVersion is the Go release that built the binary.
	GoVersion string
	// RocksDB reports whether the RocksDB backend is linked in (the build
	// tag rocksdb).
	RocksDB bool
}

// buildInfo reads the binary's build information.
func buildInfo() binaryInfo {
	b := binaryInfo{Version: version, Revision: unknown, Time: unknown, GoVersion: unknown, RocksDB: withRocksDB}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		b.GoVersion = bi.GoVersion
		if b.Version == "" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if revision != "" {
		b.Revision, b.Modified = revision, modified == "true"
	}
	if revisionTime != "" {
		b.Time = revisionTime
	}
	if b.Version == "" || b.Version == "(devel)" {
		b.Version = "devel"
	}
	return b
}

// versionString is the version of buildInfo.
func versionString() string { return buildInfo().Version }

// String is the answer of "memcell version" and "memcell --version".
func (b binaryInfo) String() string {
	rocks := "no (build with -tags rocksdb: make build-rocksdb)"
	if b.RocksDB {
		rocks = "yes"
	}
	var s strings.Builder
	fmt.Fprintf(&s, "memcell %s\n", b.Version)
	fmt.Fprintf(&s, "  revision: %s\n", b.revision())
	fmt.Fprintf(&s, "  time:     %s\n", b.Time)
	fmt.Fprintf(&s, "  go:       %s\n", b.GoVersion)
	fmt.Fprintf(&s, "  rocksdb:  %s\n", rocks)
	return s.String()
}

// collector returns the gauge memcell_build_info: 1, with the build as
// labels, so that a dashboard can show which build each instance runs.
func (b binaryInfo) collector() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "memcell", Name: "build_info",
		Help: "Always 1; the labels describe the build: version, VCS revision (+dirty when built from a modified checkout), Go version, and whether RocksDB is linked in.",
		ConstLabels: prometheus.Labels{
			"version": b.Version, "revision": b.revision(), "go_version": b.GoVersion, "rocksdb": fmt.Sprint(b.RocksDB),
		},
	}, func() float64 { return 1 })
}

// revision is the revision with "+dirty" when the checkout was modified.
func (b binaryInfo) revision() string {
	if b.Modified {
		return b.Revision + "+dirty"
	}
	return b.Revision
}
