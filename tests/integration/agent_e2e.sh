#!/usr/bin/env bash
# aioguard run against a real libvirtd and a running KVM domain: a sparse
# qcow2 (vda) and a preallocated raw (vdb) on a loop-mounted ext4, both
# io='native' cache='none'. Extending writes go into vda through QEMU's own
# block layer; the agent must switch vda (and only vda) to threads.
# Thresholds are lowered: a loop device allocates in ~0.1-1 ms, not the
# several ms of a real disk.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root
make_workdir
loopfs_make ext4 1024
libvirtd_start

URI=qemu:///system
DOM=aioguard-agent-$$
KNOBS=(--interval 2 --threshold-us 200 --stalls-per-window 3 --bad-windows 2 --history-windows 3 --listen off)

new_domain() {
	rm -f "$LOOP_MNT/sparse.qcow2" "$LOOP_MNT/prealloc.raw"
	qemu-img create -q -f qcow2 "$LOOP_MNT/sparse.qcow2" 2G
	qemu-img create -q -f raw -o preallocation=falloc "$LOOP_MNT/prealloc.raw" 128M
	domain_define_start "$DOM" "$(domain_xml "$DOM" \
		"$(file_disk "$LOOP_MNT/sparse.qcow2" vda qcow2 native)" \
		"$(file_disk "$LOOP_MNT/prealloc.raw" vdb raw native)")"
	virsh -c "$URI" dumpxml --inactive "$DOM" >"$WORKDIR/before.xml"
}

# Extending 1 MiB writes into the sparse qcow2 until told to stop.
drive_writes() {
	local off=0
	while [ ! -e "$WORKDIR/stop-writes" ]; do
		qemu_io "$DOM" 0 "aio_write -P 7 ${off}M 1M" >/dev/null 2>&1 || true
		off=$(((off + 1) % 2000))
	done
}

# run_agent MODE...: start the agent in the background, logs in $WORKDIR
run_agent() {
	"$AIOGUARD" run -c "$URI" "$@" "${KNOBS[@]}" --state-dir "$WORKDIR/state" \
		--audit-log "$WORKDIR/audit.jsonl" >"$WORKDIR/agent.out" 2>"$WORKDIR/agent.err" &
	AGENT_PID=$!
	at_exit "kill $AGENT_PID"
}

# wait_audit RESULT SECONDS: until the audit log has a decision with that result
wait_audit() {
	local i
	for i in $(seq $(($2 * 5))); do
		grep -q "\"result\":\"$1\"" "$WORKDIR/audit.jsonl" 2>/dev/null && return 0
		kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORKDIR/agent.err"; fail "agent died"; }
		sleep 0.2
	done
	cat "$WORKDIR/agent.err"
	fail "no '$1' decision within $2 s"
}

stop_agent() {
	kill -TERM "$AGENT_PID"
	wait "$AGENT_PID" || fail "agent exited with $? on SIGTERM"
	grep -q "stopping" "$WORKDIR/agent.err" || fail "agent did not stop cleanly"
}

check_audit_line() {
	python3 - "$WORKDIR/audit.jsonl" "$1" "$2" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
d = [l for l in lines if l["result"] == sys.argv[2]][0]
assert d["type"] == "decision" and d["target"] == "vda", d
assert d["from"] == "native" and d["to"] == "threads", d
assert d["mode"] == sys.argv[3], d
ev = d["evidence"]
assert ev["bad_windows"] >= 2 and ev["image"] in ("growing", "sparse"), ev
assert sum(w["stalls"] for w in ev["windows"]) >= 6, ev
assert all(l["target"] == "vda" for l in lines), "vdb must never be decided on"
print("audit:", json.dumps(d)[:600])
PY
}

say "dry-run: decides, logs, changes nothing"
new_domain
run_agent --dry-run
drive_writes &
WRITER=$!
at_exit "touch '$WORKDIR/stop-writes'; kill $WRITER"
wait_audit dry-run 60
touch "$WORKDIR/stop-writes"
wait "$WRITER" || true
stop_agent
check_audit_line dry-run dry-run
virsh -c "$URI" dumpxml --inactive "$DOM" | cmp -s - "$WORKDIR/before.xml" || fail "dry-run changed the XML"
[ -z "$(ls -A "$WORKDIR/state/backups" 2>/dev/null)" ] || fail "dry-run wrote a backup"
virsh -q -c "$URI" destroy "$DOM" >/dev/null
virsh -q -c "$URI" undefine "$DOM" >/dev/null
rm -f "$WORKDIR/audit.jsonl" "$WORKDIR/stop-writes"

say "enforce + save-restore: switches vda on the running QEMU"
new_domain
run_agent --enforce --apply save-restore
drive_writes &
WRITER=$!
wait_audit applied 90
touch "$WORKDIR/stop-writes"
wait "$WRITER" || true
check_audit_line applied enforce
[ "$(disk_io "$URI" "$DOM" vda --inactive)" = threads ] || fail "persistent vda is not threads"
[ "$(disk_io "$URI" "$DOM" vdb --inactive)" = native ] || fail "vdb was touched"
[ "$(disk_io "$URI" "$DOM" vda)" = threads ] || fail "live vda is not threads"
pid=$(cat "/run/libvirt/qemu/$DOM.pid")
tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "\"filename\":\"$LOOP_MNT/sparse.qcow2\".*\"aio\":\"threads\"" ||
	fail "QEMU does not run vda with aio=threads"
backup=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if "\"applied\"" in l][0]["backup"])' "$WORKDIR/audit.jsonl")
same_xml "$backup" "$WORKDIR/before.xml" || fail "backup $backup differs from the XML before the switch"
say "the agent keeps running after the switch and follows the new QEMU pid"
sleep 3
kill -0 "$AGENT_PID" || fail "agent died after the switch"
stop_agent
echo "PASS"
