#!/usr/bin/env bash
# with-servers.sh runs a command with every server the tests and benchmarks
# need (make test, make bench). On a fresh machine it brings them up, fails
# when one cannot be had, exports their addresses, runs the command and stops
# what it started.
#
#   Redis         127.0.0.1:6379, or $MEMCELL_TEST_REDIS_ADDR; started here
#                 (no persistence) when nothing answers and redis-server exists
#   Redis Cluster three masters on 127.0.0.1:7100-7102 (scripts/redis-cluster.sh)
#
# Usage: scripts/with-servers.sh go test ./kv/...
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
	echo "with-servers.sh: $*" >&2
	exit 1
}

command -v go >/dev/null || die "go is not installed"
command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
	die "redis-server and redis-cli are required (apt-get install redis-server)"

redis_addr=${MEMCELL_TEST_REDIS_ADDR:-127.0.0.1:6379}
redis_host=${redis_addr%:*}
redis_port=${redis_addr##*:}
if [ "$(redis-cli -h "$redis_host" -p "$redis_port" ping 2>/dev/null)" != PONG ]; then
	echo "with-servers.sh: no Redis on $redis_addr; starting one"
	redis-server --daemonize yes --bind "$redis_host" --port "$redis_port" \
		--save '' --appendonly no --dir /tmp --logfile "/tmp/memcell-redis-$redis_port.log"
	for _ in $(seq 50); do
		[ "$(redis-cli -h "$redis_host" -p "$redis_port" ping 2>/dev/null)" = PONG ] && break
		sleep 0.1
	done
	[ "$(redis-cli -h "$redis_host" -p "$redis_port" ping 2>/dev/null)" = PONG ] ||
		die "could not start Redis on $redis_addr (see /tmp/memcell-redis-$redis_port.log)"
fi
export MEMCELL_TEST_REDIS_ADDR=$redis_addr

base=${REDIS_CLUSTER_BASE_PORT:-7100}
export REDIS_CLUSTER_BASE_PORT=$base
export REDIS_CLUSTER_DIR=${REDIS_CLUSTER_DIR:-/tmp/memcell-redis-cluster-$base}
trap 'scripts/redis-cluster.sh stop >/dev/null 2>&1 || true' EXIT
scripts/redis-cluster.sh start || die "could not start the Redis Cluster"
export MEMCELL_TEST_REDIS_CLUSTER="127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))"

[ $# -gt 0 ] || die "usage: scripts/with-servers.sh COMMAND [ARG...]"
"$@"
