#!/usr/bin/env bash
# The agent under faults, with real components: libvirt refuses the define,
# the domain is undefined while the agent observes it, libvirtd restarts
# during observation, the watched QEMU is killed. Each time: no domain XML
# lost, a clear message, and the agent keeps running.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root
make_workdir
loopfs_make ext4 1024
libvirtd_start
source "$(dirname "$0")/agent_lib.sh"

alive() { kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORKDIR/agent.err"; fail "agent died: $1"; }; }

say "define refused by libvirt (config file immutable): rollback, retry after cooldown"
new_domain
conf=/etc/libvirt/qemu/$DOM.xml
[ -f "$conf" ] || fail "no $conf"
chattr +i "$conf" || skip "filesystem of /etc/libvirt cannot make files immutable"
at_exit "chattr -i '$conf'"
run_agent --enforce --cooldown 4
start_writes
wait_audit failed 60
alive "after a refused define"
msg=$(grep '"result":"failed"' "$WORKDIR/audit.jsonl" | head -1)
[[ "$msg" == *rename* ]] || fail "failed decision does not say what failed: $msg"
virsh -c "$URI" dumpxml --inactive "$DOM" >"$WORKDIR/now.xml"
same_xml "$WORKDIR/now.xml" "$WORKDIR/before.xml" || fail "persistent XML changed after a refused define"
chattr -i "$conf"
wait_audit applied 60
[ "$(disk_io "$URI" "$DOM" vda --inactive)" = threads ] || fail "retry after the cooldown did not switch vda"
stop_writes
stop_agent
remove_domain

say "domain undefined under the agent: refused, nothing re-defined"
new_domain
run_agent --enforce
sleep 1
virsh -q -c "$URI" undefine "$DOM" >/dev/null   # still running, now transient
start_writes
wait_audit failed 60
alive "after the domain was undefined"
stop_writes
persistent=$(virsh -c "$URI" dominfo "$DOM" | awk '/^Persistent:/ {print $2}')
[ "$persistent" = no ] || fail "the agent re-defined an undefined domain"
grep -q '"result":"applied"' "$WORKDIR/audit.jsonl" && fail "the agent applied a change to a domain undefined under it"
echo "  $(grep -o '"message":"[^"]*"' "$WORKDIR/audit.jsonl" | head -1)"
stop_agent
remove_domain

say "libvirtd restarted during observation: reconnect, windows kept"
new_domain
run_agent --enforce --bad-windows 3 --history-windows 8
start_writes
sleep 2.5          # one bad window before the restart, not yet enough to switch
stop_writes
stop_daemon libvirtd
sleep 3
alive "while libvirtd was down"
libvirtd -d 2>/dev/null || true   # a concurrent test may have started one
for _ in $(seq 150); do
	grep -q "connected to libvirt again" "$WORKDIR/agent.err" && break
	sleep 0.2
done
grep -q "connected to libvirt again" "$WORKDIR/agent.err" || fail "no reconnect: $(cat "$WORKDIR/agent.err")"
grep -q '"result":"applied"' "$WORKDIR/audit.jsonl" 2>/dev/null && fail "switched before the restart: the scenario proves nothing"
start_writes
wait_audit applied 90
stop_writes
stop_agent
remove_domain

say "watched QEMU killed mid-stall"
new_domain
run_agent --dry-run
start_writes
sleep 3
kill -9 "$(cat "/run/libvirt/qemu/$DOM.pid")"
sleep 4
alive "after its QEMU was killed"
stop_writes
virsh -q -c "$URI" start "$DOM" >/dev/null
start_writes
wait_audit dry-run 60   # the new QEMU pid is watched
stop_writes
same_xml <(virsh -c "$URI" dumpxml --inactive "$DOM") "$WORKDIR/before.xml" || fail "dry-run changed the XML"
stop_agent
echo "PASS"
