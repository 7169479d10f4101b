#!/usr/bin/env bash
# check-alerts.sh checks the Prometheus alert rules that ship with memcell
# (docs/architecture.md#metrics): promtool check rules, then promtool test
# rules with the unit tests next to them. make test runs it.
#
# When promtool is missing it installs Debian's prometheus package (which
# carries promtool) with apt-get, as root or through passwordless sudo. That
# package also ships a Prometheus server that its postinst enables and starts
# (invoke-rc.d / deb-systemd-invoke), listening on :9090. So the install runs
# with service starts denied through policy-rc.d (a temporary one if the
# machine has none), and afterwards the service is disabled, stopped, and any
# prometheus process that appeared during the install is ended: a CI machine
# is left with promtool and no server, now or after a reboot.
#
# Usage: scripts/check-alerts.sh        (PROMTOOL=/path/to/promtool to choose
# one)
set -euo pipefail
cd "$(dirname "$0")/.."

rules=deploy/prometheus/memcell-alerts.yml
tests=deploy/prometheus/memcell-alerts_test.yml
policy=/usr/sbin/policy-rc.d
policy_marker='# check-alerts.sh: temporary, deny service starts'

log() { echo "check-alerts.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

[ -f "$rules" ] || die "$rules not found"
[ -f "$tests" ] || die "$tests not found"

sudo=
created_policy=

cleanup() {
	# Remove the policy-rc.d only if it is the one written here.
	if [ -n "$created_policy" ] && grep -qxF "$policy_marker" "$policy" 2>/dev/null; then
		$sudo rm -f "$policy"
	fi
}
trap cleanup EXIT

# Live prometheus processes (a stopped one can linger a moment as a zombie).
prometheus_pids() { ps -C prometheus -o pid=,stat= 2>/dev/null | awk '$2 !~ /^Z/ { print $1 }' | sort; }
listening_9090() {
	command -v ss >/dev/null || return 1
	[ -n "$(ss -Hltn 'sport = :9090' 2>/dev/null)" ]
}

install_promtool() {
	command -v apt-get >/dev/null || {
		log "apt-get not found (not Debian/Ubuntu): cannot install promtool here"
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

	local before_pids port_busy_before=
	before_pids=$(prometheus_pids)
	listening_9090 && port_busy_before=1

	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n%s\nexit 101\n' "$policy_marker" | $sudo tee "$policy" >/dev/null
		$sudo chmod 755 "$policy"
		created_policy=1
	fi

	log "promtool not found; installing Debian's prometheus package for it"
	local rc=0
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q || rc=$?
	if [ "$rc" -eq 0 ]; then
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus || rc=$?
	fi
	if [ "$rc" -ne 0 ] && dpkg-query -W -f='${Status}' prometheus 2>/dev/null | grep -q unpacked; then
		# Unpacked but not configured: typically the postinst failed to start
		# the server without an init system. promtool itself is in place.
		log "configuring prometheus failed (postinst); retrying with service starts denied"
		$sudo env DEBIAN_FRONTEND=noninteractive dpkg --configure prometheus ||
			log "prometheus is still not configured; using its unpacked promtool if it runs"
	fi

	# Leave no server behind: disable at boot, stop now.
	if [ -d /run/systemd/system ]; then
		$sudo systemctl disable --now prometheus.service >/dev/null 2>&1 || true
	elif command -v deb-systemd-helper >/dev/null; then
		$sudo deb-systemd-helper disable prometheus.service >/dev/null 2>&1 || true
	fi
	if [ -e /etc/init.d/prometheus ]; then
		$sudo update-rc.d prometheus disable >/dev/null 2>&1 || true
		if [ ! -d /run/systemd/system ] && [ -n "$(prometheus_pids)" ]; then
			$sudo /etc/init.d/prometheus stop >/dev/null 2>&1 || true
		fi
	fi
	local pid new_pids
	new_pids=$(comm -13 <(echo "$before_pids") <(prometheus_pids) | grep . || true)
	for pid in $new_pids; do
		log "stopping prometheus (pid $pid) started by the package install"
		$sudo kill "$pid" 2>/dev/null || true
	done
	for _ in $(seq 50); do
		[ -z "$(comm -13 <(echo "$before_pids") <(prometheus_pids) | grep . || true)" ] && break
		sleep 0.1
	done
	new_pids=$(comm -13 <(echo "$before_pids") <(prometheus_pids) | grep . || true)
	[ -z "$new_pids" ] || die "a prometheus server started by the install is still running (pid $new_pids)"
	if [ -z "$port_busy_before" ] && listening_9090; then
		die "something is listening on :9090 after installing prometheus; it was not before"
	fi

	cleanup
	created_policy=
	return "$rc"
}

promtool=${PROMTOOL:-promtool}
if ! command -v "$promtool" >/dev/null; then
	install_promtool || log "installing prometheus (for promtool) failed"
	command -v "$promtool" >/dev/null || die "promtool is required and could not be installed.
  Install it yourself, e.g. 'apt-get install --no-install-recommends prometheus' on Debian/Ubuntu
  (then 'systemctl disable --now prometheus' if you do not want the server), or put the promtool
  binary from https://github.com/prometheus/prometheus/releases on PATH (or set PROMTOOL=...)."
fi
"$promtool" --version >/dev/null 2>&1 || die "$promtool does not run"

log "$("$promtool" --version 2>&1 | head -n1)"
"$promtool" check rules "$rules"
"$promtool" test rules "$tests"
