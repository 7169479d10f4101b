//go:build rocksdb

package main

import "github.com/memcell/memcell/kv/rocksdbkv"

// openRocksDB opens rocksdb URLs: this memcell is built with the tag
// rocksdb and links RocksDB (cgo, librocksdb).
var openRocksDB = rocksdbkv.OpenURL

// withRocksDB reports that this memcell links RocksDB ("memcell version",
// memcell_build_info).
const withRocksDB = true
