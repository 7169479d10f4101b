#!/usr/bin/env bash
# need-rocksdb.sh makes sure that RocksDB's C headers and library are there
# for the builds with the tag rocksdb (kv/rocksdbkv through grocksdb v1.7.15,
# make build-rocksdb; make lint and make test build them too). .ci/run runs
# it first.
#
# It checks by compiling and linking a small C program the way grocksdb
# does (rocksdb/c.h, -lrocksdb and the compression libraries). When that
# fails it installs Debian's librocksdb-dev (RocksDB 7.8, which grocksdb
# v1.7.15 builds against; it pulls in the compression libraries) with
# apt-get, as root or through passwordless sudo. When RocksDB is still
# missing afterwards it fails: the RocksDB tests are part of make test and
# are not skipped.
#
# Usage: scripts/need-rocksdb.sh   (CC=... to choose the C compiler, as cgo
# does)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "need-rocksdb.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

cc=${CC:-gcc}

# The link flags of grocksdb's default build (its non_builtin.go).
ldflags=(-lrocksdb -pthread -lstdc++ -ldl -lm -lzstd -llz4 -lz -lsnappy)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

have_cc() { command -v "${cc%% *}" >/dev/null; }

# have_rocksdb compiles and links with the flags cgo would use.
have_rocksdb() {
	have_cc || {
		echo "no C compiler ($cc)" >"$tmp/cc.log"
		return 1
	}
	printf '#include <rocksdb/c.h>\nint main(void) { rocksdb_options_t *o = rocksdb_options_create(); rocksdb_options_destroy(o); return 0; }\n' >"$tmp/check.c"
	# shellcheck disable=SC2086 # CC and the CGO_ flags are word lists, as cgo takes them
	$cc ${CGO_CFLAGS:-} -o "$tmp/check" "$tmp/check.c" ${CGO_LDFLAGS:-} "${ldflags[@]}" >"$tmp/cc.log" 2>&1
}

sudo=

install_rocksdb() {
	command -v apt-get >/dev/null || {
		log "apt-get not found (not Debian/Ubuntu): cannot install librocksdb-dev here"
		return 1
	}
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
			sudo="sudo -n"
		else
			log "not root and no passwordless sudo: cannot run apt-get"
			return 1
		fi
	fi
	local pkgs=(librocksdb-dev)
	have_cc || pkgs+=(gcc g++)
	log "RocksDB's headers or library not found; installing ${pkgs[*]}"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"
}

if ! have_rocksdb; then
	install_rocksdb || log "installing librocksdb-dev failed"
	have_rocksdb || die "RocksDB is required (the tests built with -tags rocksdb) and could not be installed.
  The check said: $(tail -n 3 "$tmp/cc.log" 2>/dev/null)
  Install it yourself, e.g. 'apt-get install librocksdb-dev' on Debian/Ubuntu (RocksDB 7.8, which
  grocksdb v1.7.15 needs), or build RocksDB and point CGO_CFLAGS and CGO_LDFLAGS at it."
fi
if command -v dpkg-query >/dev/null && v=$(dpkg-query -W -f='${Version}' librocksdb-dev 2>/dev/null); then
	log "librocksdb-dev $v"
else
	log "RocksDB found (not from a Debian package)"
fi
