#!/usr/bin/env bash
# The agent under faults, with real components: libvirt refuses the define,
# the domain is undefined while the agent observes it, libvirtd restarts
# during observation, the watched QEMU is killed. Each time: no domain XML
# lost, a clear message, and the agent keeps running.
# Arguments: the scenarios to run (default: all of refused_define undefined
# libvirtd_restart qemu_killed). meson runs refused_define on its own
# (agent_faults_refused_define): it needs `chattr +i` in /etc/libvirt and
# skips alone where that filesystem cannot make files immutable.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fault_lib.sh"
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(refused_define undefined libvirtd_restart qemu_killed)
for s in "${SCENARIOS[@]}"; do
	case $s in
	refused_define | undefined | libvirtd_restart | qemu_killed) ;;
	*) echo "agent_faults.sh: unknown scenario '$s'" >&2; exit 2 ;;
	esac
done
need_root
make_workdir
loopfs_make ext4 1024
libvirtd_start
source "$(dirname "$0")/agent_lib.sh"

alive() { kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORKDIR/agent.err"; fail "agent died: $1"; }; }

# wait_log TEXT SECONDS: until the agent's stderr has TEXT
wait_log() {
	local i
	for i in $(seq $(($2 * 5))); do
		grep -q "$1" "$WORKDIR/agent.err" && return 0
		alive "waiting for '$1'"
		sleep 0.2
	done
	cat "$WORKDIR/agent.err"
	fail "the agent did not say '$1' within $2 s"
}

# vda_stalls URL: stalls the agent counted on vda so far (its /metrics)
vda_stalls() {
	python3 - "$1" "domain=\"$DOM\",target=\"vda\"" <<'PY'
import sys, urllib.request
url, labels = sys.argv[1:]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
total = 0
for line in opener.open(url, timeout=10).read().decode().splitlines():
    if line.startswith("aioguard_stalls_total{" + labels):
        total += int(float(line.rsplit(" ", 1)[1]))
print(total)
PY
}

# wait_vda_stalls URL N SECONDS: until the agent counted N stalls on vda
wait_vda_stalls() {
	local i n=0
	for i in $(seq $(($3 * 5))); do
		n=$(vda_stalls "$1")
		[ "$n" -ge "$2" ] && return 0
		alive "waiting for stalls on vda"
		sleep 0.2
	done
	fail "$n stalls on vda within $3 s, not $2"
}

# wait_metric URL NAME VALUE SECONDS: until the agent's NAME is VALUE
wait_metric() {
	local i v=
	for i in $(seq $(($4 * 5))); do
		v=$(metric "$1" "$2")
		[ "$v" = "$3" ] && return 0
		alive "waiting for $2 $3"
		sleep 0.2
	done
	fail "$2 is $v after $4 s, not $3"
}

refused_define() {
	say "define refused by libvirt (config file immutable): rollback, retry after cooldown"
	new_domain
	local conf=/etc/libvirt/qemu/$DOM.xml msg
	[ -f "$conf" ] || fail "no $conf"
	chattr +i "$conf" || skip "filesystem of /etc/libvirt cannot make files immutable"
	at_exit "chattr -i '$conf'"
	run_agent --enforce --cooldown 4
	start_writes
	wait_audit failed 90
	alive "after a refused define"
	msg=$(grep '"result":"failed"' "$WORKDIR/audit.jsonl" | head -1)
	[[ "$msg" == *rename* ]] || fail "failed decision does not say what failed: $msg"
	virsh -c "$URI" dumpxml --inactive "$DOM" >"$WORKDIR/now.xml"
	same_xml "$WORKDIR/now.xml" "$WORKDIR/before.xml" || fail "persistent XML changed after a refused define"
	chattr -i "$conf"
	wait_audit applied 90
	[ "$(disk_io "$URI" "$DOM" vda --inactive)" = threads ] || fail "retry after the cooldown did not switch vda"
	stop_writes
	stop_agent
	remove_domain
}

undefined() {
	say "domain undefined under the agent: refused, nothing re-defined"
	new_domain
	run_agent --enforce
	virsh -q -c "$URI" undefine "$DOM" >/dev/null   # still running, now transient
	start_writes
	wait_audit failed 90
	alive "after the domain was undefined"
	stop_writes
	local persistent
	persistent=$(virsh -c "$URI" dominfo "$DOM" | awk '/^Persistent:/ {print $2}')
	[ "$persistent" = no ] || fail "the agent re-defined an undefined domain"
	grep -q '"result":"applied"' "$WORKDIR/audit.jsonl" && fail "the agent applied a change to a domain undefined under it"
	echo "  $(grep -o '"message":"[^"]*"' "$WORKDIR/audit.jsonl" | head -1)"
	stop_agent
	remove_domain
}

# On a private libvirtd (fault_lib.sh): stopping it disturbs no other test
# on the shared one.
libvirtd_restart() {
	say "libvirtd restarted during observation: reconnect, windows kept"
	[ -n "${PLV:-}" ] || plibvirt_start
	local shared_uri=$URI url
	URI=$PURI
	new_domain
	run_agent --enforce --bad-windows 3 --history-windows 8
	url=$(agent_metrics_url "$WORKDIR/agent.err")
	start_writes
	# stalls on vda counted (a bad window: --stalls-per-window 3) before
	# the restart, not yet enough to switch (3 bad windows)
	wait_vda_stalls "$url" 3 60
	stop_writes
	grep -q '"result":"applied"' "$WORKDIR/audit.jsonl" 2>/dev/null && fail "switched before the restart: the scenario proves nothing"
	plibvirt_stop
	wait_log "lost the connection to libvirt" 60
	alive "while libvirtd was down"
	plibvirt_up
	wait_log "connected to libvirt again" 60
	grep -q '"result":"applied"' "$WORKDIR/audit.jsonl" 2>/dev/null && fail "switched before the restart: the scenario proves nothing"
	start_writes
	wait_audit applied 120
	stop_writes
	stop_agent
	remove_domain
	URI=$shared_uri
}

qemu_killed() {
	say "watched QEMU killed mid-stall"
	new_domain
	run_agent --dry-run
	local url
	url=$(agent_metrics_url "$WORKDIR/agent.err")
	start_writes
	wait_vda_stalls "$url" 1 60
	kill -9 "$(cat "/run/libvirt/qemu/$DOM.pid")"
	# the agent drops the dead QEMU's disks (it watches running domains)
	wait_metric "$url" aioguard_watched_disks 0 60
	alive "after its QEMU was killed"
	stop_writes
	virsh -q -c "$URI" start "$DOM" >/dev/null
	start_writes
	wait_audit dry-run 90   # the new QEMU pid is watched
	stop_writes
	same_xml <(virsh -c "$URI" dumpxml --inactive "$DOM") "$WORKDIR/before.xml" || fail "dry-run changed the XML"
	stop_agent
	remove_domain
}

for s in "${SCENARIOS[@]}"; do
	"$s"
done
echo "PASS"
