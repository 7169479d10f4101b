#!/usr/bin/env bash
# redis-cluster.sh starts and stops a throwaway three-master Redis Cluster on
# loopback ports for the kv/rediskv tests. Nothing is persisted: every node
# runs with --save '' --appendonly no in its own directory, which stop removes.
#
# Usage:
#   scripts/redis-cluster.sh start   # (re)start the cluster and wait for cluster_state:ok
#   scripts/redis-cluster.sh stop    # shut the nodes down and remove their directories
#
# Environment:
#   REDIS_CLUSTER_BASE_PORT  first port (default 7100; the nodes use base..base+2)
#   REDIS_CLUSTER_DIR        working directory (default /tmp/memcell-redis-cluster)
#
# Then run the tests with
#   MEMCELL_TEST_REDIS_CLUSTER=127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102 go test ./kv/rediskv
set -euo pipefail

base=${REDIS_CLUSTER_BASE_PORT:-7100}
dir=${REDIS_CLUSTER_DIR:-/tmp/memcell-redis-cluster}
ports=("$base" "$((base + 1))" "$((base + 2))")
timeout_s=30

die() {
	echo "redis-cluster.sh: $*" >&2
	exit 1
}

need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 is not installed (install Redis >= 7, e.g. apt-get install redis-server)"
}

ping() { # port -> exit status 0 when something answers PONG
	[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = "PONG" ]
}

# stop_node shuts down the node we started on port, if any. It never touches a
# server that has no pid file in our directory.
stop_node() {
	local port=$1 pidfile="$dir/$1/redis.pid" pid
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
		fi
	fi
}

# stop removes only the directories of our ports, so that clusters on other
# base ports sharing REDIS_CLUSTER_DIR are left alone.
stop() {
	for port in "${ports[@]}"; do
		stop_node "$port"
		rm -rf "${dir:?}/$port"
	done
	rmdir "$dir" 2>/dev/null || true
}

start() {
	need redis-server
	need redis-cli
	stop

	for port in "${ports[@]}"; do
		if ping "$port"; then
			die "port $port already has a Redis server that this script did not start; set REDIS_CLUSTER_BASE_PORT"
		fi
	done

	for port in "${ports[@]}"; do
		mkdir -p "$dir/$port"
		redis-server \
			--port "$port" \
			--bind 127.0.0.1 \
			--dir "$dir/$port" \
			--cluster-enabled yes \
			--cluster-config-file "$dir/$port/nodes.conf" \
			--cluster-node-timeout 5000 \
			--save '' \
			--appendonly no \
			--daemonize yes \
			--pidfile "$dir/$port/redis.pid" \
			--logfile "$dir/$port/redis.log" ||
			die "redis-server on port $port failed to start (see $dir/$port/redis.log)"
	done

	for port in "${ports[@]}"; do
		for i in $(seq $((timeout_s * 10))); do
			ping "$port" && break
			[ "$i" -lt $((timeout_s * 10)) ] || die "node on port $port did not answer PING within ${timeout_s}s (see $dir/$port/redis.log)"
			sleep 0.1
		done
	done

	local addrs=()
	for port in "${ports[@]}"; do
		addrs+=("127.0.0.1:$port")
	done
	local log="$dir/$base/cluster-create.log"
	redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$log" 2>&1 ||
		die "redis-cli --cluster create failed: $(tail -n 5 "$log")"

	local deadline=$((SECONDS + timeout_s))
	for port in "${ports[@]}"; do
		until redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; do
			[ "$SECONDS" -lt "$deadline" ] || die "cluster did not reach cluster_state:ok within ${timeout_s}s (node $port)"
			sleep 0.2
		done
	done

	local IFS=,
	echo "redis cluster ready: MEMCELL_TEST_REDIS_CLUSTER=${addrs[*]}"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
