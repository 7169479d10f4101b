//go:build !rocksdb

package main

import (
	"context"
	"net/url"

	"github.com/memcell/memcell/kv"
)

// openRocksDB answers every rocksdb URL with errNoRocksDB: this memcell is
// built without the tag rocksdb, so RocksDB (cgo, librocksdb) is not
// linked in.
func openRocksDB(context.Context, *url.URL) (kv.Store, error) {
	return nil, errNoRocksDB
}

// errNoRocksDB says how to build a memcell that has RocksDB. It is a usage
// error (exit status 2), and kv.ErrUnknownScheme, which kv.OpenDeferred
// takes as permanent: serve fails at start instead of retrying.
var errNoRocksDB error = noRocksDB{}

type noRocksDB struct{}

func (noRocksDB) Error() string {
	return `this memcell was built without RocksDB: build it with "make build-rocksdb" (go build -tags rocksdb ./cmd/memcell, needs librocksdb-dev)`
}

func (noRocksDB) Unwrap() []error { return []error{errUsage, kv.ErrUnknownScheme} }

// withRocksDB reports that this memcell does not link RocksDB ("memcell
// version", memcell_build_info).
const withRocksDB = false
