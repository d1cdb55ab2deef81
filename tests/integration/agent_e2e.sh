#!/usr/bin/env bash
# aioguard run against a real libvirtd and a running QEMU domain: a sparse
# qcow2 (vda) and a preallocated raw (vdb) on a loop-mounted ext4, both
# io='native' cache='none'. Extending writes go into vda through QEMU's own
# block layer; the agent must switch vda (and only vda) to threads, and, on a
# fresh domain with --target io_uring, to io_uring.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root
make_workdir
loopfs_make ext4 1024
libvirtd_start

source "$(dirname "$0")/agent_lib.sh"

# Catch syslog: where no syslog daemon owns /dev/log (CI), listen there.
if [ ! -e /dev/log ]; then
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
with open(sys.argv[1], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536) + b"\n")' "$WORKDIR/syslog" &
	at_exit "kill $!; rm -f /dev/log"
	SYSLOG=$WORKDIR/syslog
fi

# check_audit_line RESULT MODE [TO]
check_audit_line() {
	python3 - "$WORKDIR/audit.jsonl" "$1" "$2" "${3:-threads}" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
d = [l for l in lines if l["result"] == sys.argv[2]][0]
assert d["type"] == "decision" and d["target"] == "vda", d
assert d["from"] == "native" and d["to"] == sys.argv[4], d
assert d["mode"] == sys.argv[3], d
ev = d["evidence"]
# stalls are io_submit's only; the pool's waits (fdatasync) are kept apart
assert all("pool_waits" in w for w in ev["windows"]), ev
assert ev["target_mode"] == ("io_uring" if sys.argv[4] == "io_uring" else "threads"), ev
assert ev["bad_windows"] >= 2 and ev["image"] in ("growing", "sparse"), ev
# the evidence backs the decision: the windows it shows are bad by the
# agent's rule (KNOBS: 3 stalls, or the default 10 ms stalled per s)
bad = [w for w in ev["windows"] if w["stalls"] >= 3 or w["stalled_us"] >= 10 * w["length_ms"]]
assert len(bad) >= ev["bad_windows"], ev
# every window, the open one too, says what it holds: its submissions and
# p99 beside its stalls
for w in ev["windows"]:
    assert not w["stalls"] or (w["submits"] >= w["stalls"] and w["p99_us"] > 0), ev
# block allocation only where its time was measured
if not any(w["alloc_us"] for w in ev["windows"]):
    assert "no block allocation time measured" in d["reason"], d["reason"]
assert all(l["target"] == "vda" for l in lines), "vdb must never be decided on"
print("audit:", json.dumps(d)[:600])
PY
}

say "an opt-out of vda in the persistent XML only: honoured, the reason names the disk"
new_domain
virsh -q -c "$URI" metadata "$DOM" urn:aioguard:policy:1 --key aioguard --config \
	--set '<policy><disk target="vda" mode="off"/></policy>' >/dev/null
run_agent --dry-run
start_writes
wait_audit advise-only 60
stop_writes
stop_agent
python3 - "$WORKDIR/audit.jsonl" <<'PY'
import json, sys
d = [json.loads(l) for l in open(sys.argv[1]) if '"advise-only"' in l][0]
assert d["target"] == "vda" and d["action"] == "advise-only", d
assert "but disk vda opted out (aioguard metadata in its persistent XML)" in d["reason"], d["reason"]
print("  reason:", d["reason"])
PY
virsh -q -c "$URI" metadata "$DOM" urn:aioguard:policy:1 --config --remove >/dev/null
rm -f "$WORKDIR/audit.jsonl"
virsh -c "$URI" dumpxml --inactive "$DOM" >"$WORKDIR/before.xml"

say "dry-run (from the config file): decides, logs, changes nothing"
printf 'mode = dry-run\ncooldown = 0\n' >"$WORKDIR/aioguard.conf"
run_agent --config "$WORKDIR/aioguard.conf"
start_writes
wait_audit dry-run 60
check_audit_line dry-run dry-run
virsh -c "$URI" dumpxml --inactive "$DOM" | cmp -s - "$WORKDIR/before.xml" || fail "dry-run changed the XML"
[ -z "$(ls -A "$WORKDIR/state/backups" 2>/dev/null)" ] || fail "dry-run wrote a backup"
if [ -n "${SYSLOG:-}" ]; then
	grep -q "aioguard\[$AGENT_PID\]: dry-run $DOM/vda: native -> threads" "$SYSLOG" ||
		fail "no syslog line: $(cat "$SYSLOG")"
	echo "  syslog: $(grep -a -m1 aioguard "$SYSLOG")"
fi

say "SIGHUP reloads the config: enforce + save-restore switches vda on the running QEMU"
printf 'mode = enforce\napply = save-restore\ncooldown = 0\n' >"$WORKDIR/aioguard.conf"
kill -HUP "$AGENT_PID"
wait_audit applied 90
stop_writes
grep -q "SIGHUP: settings reloaded (enforce)" "$WORKDIR/agent.err" || fail "no reload message"
check_audit_line applied enforce
[ "$(disk_io "$URI" "$DOM" vda --inactive)" = threads ] || fail "persistent vda is not threads"
[ "$(disk_io "$URI" "$DOM" vdb --inactive)" = native ] || fail "vdb was touched"
[ "$(disk_io "$URI" "$DOM" vda)" = threads ] || fail "live vda is not threads"
pid=$(cat "/run/libvirt/qemu/$DOM.pid")
grep -q "\"filename\":\"$LOOP_MNT/sparse.qcow2\".*\"aio\":\"threads\"" <<<"$(tr '\0' ' ' <"/proc/$pid/cmdline")" ||
	fail "QEMU does not run vda with aio=threads"
backup=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if "\"applied\"" in l][0]["backup"])' "$WORKDIR/audit.jsonl")
same_xml "$backup" "$WORKDIR/before.xml" || fail "backup $backup differs from the XML before the switch"
[ "$(stat -c %a "$backup")" = 600 ] || fail "backup mode $(stat -c %a "$backup")"
say "the agent keeps running after the switch, and decides no more for vda"
sleep 5
kill -0 "$AGENT_PID" || fail "agent died after the switch"
[ "$(grep -c "\"result\":\"applied\"" "$WORKDIR/audit.jsonl")" -eq 1 ] || { cut -c1-400 "$WORKDIR/audit.jsonl"; fail "more than one switch applied"; }
say "/metrics names the switch: aioguard_disk_switch_timestamp_seconds (the dashboard's annotations), enforcing 1"
url=$(grep -o 'http://[0-9.:]*/metrics' "$WORKDIR/agent.err" | head -1)
python3 - "$url" "$DOM" "$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if "\"applied\"" in l][0]["ts"])' "$WORKDIR/audit.jsonl")" <<'PY' || fail "the applied switch in /metrics"
import sys, urllib.request
url, dom, ts = sys.argv[1], sys.argv[2], float(sys.argv[3])
text = urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=10).read().decode()
want = 'aioguard_disk_switch_timestamp_seconds{domain="%s",target="vda",from="native",to="threads",result="applied"} ' % dom
line = [l for l in text.splitlines() if l.startswith(want)]
assert len(line) == 1, [l for l in text.splitlines() if "switch_timestamp" in l]
at = float(line[0].rsplit(" ", 1)[1])
assert abs(at - ts) < 1, (at, ts)   # the audit line's time, to the second
assert "\naioguard_enforcing 1\n" in text
print("  " + line[0])
PY
stop_agent

iou=$("$AIOGUARD" advise -c "$URI" --domain "$DOM" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["io_uring"]["usable"])')
if [ "$iou" != True ]; then
	say "--target io_uring: not checked, io_uring is not usable here ($("$AIOGUARD" advise -c "$URI" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["io_uring"]["why"])'))"
	echo "PASS"
	exit 0
fi
say "--target io_uring: a fresh domain's stalling vda goes to io_uring on the running QEMU"
virsh -q -c "$URI" destroy "$DOM" >/dev/null
virsh -q -c "$URI" undefine "$DOM" >/dev/null
rm -f "$WORKDIR/audit.jsonl"
new_domain
run_agent --enforce --apply save-restore --target io_uring --cooldown 0
grep -q "^aioguard: running (enforce, apply save-restore, target io_uring)" "$WORKDIR/agent.err" ||
	fail "the agent does not say its target: $(grep running "$WORKDIR/agent.err")"
start_writes
wait_audit applied 90
stop_writes
check_audit_line applied enforce io_uring
[ "$(disk_io "$URI" "$DOM" vda --inactive)" = io_uring ] || fail "persistent vda is not io_uring"
[ "$(disk_io "$URI" "$DOM" vda)" = io_uring ] || fail "live vda is not io_uring"
[ "$(disk_io "$URI" "$DOM" vdb --inactive)" = native ] || fail "vdb was touched"
pid=$(cat "/run/libvirt/qemu/$DOM.pid")
grep -q "\"filename\":\"$LOOP_MNT/sparse.qcow2\".*\"aio\":\"io_uring\"" <<<"$(tr '\0' ' ' <"/proc/$pid/cmdline")" ||
	fail "QEMU does not run vda with aio=io_uring"
echo "  QEMU: $(tr '\0' '\n' <"/proc/$pid/cmdline" | grep -o "\"filename\":\"$LOOP_MNT/sparse.qcow2\".*\"aio\":\"io_uring\"" | sed 's/"node-name[^}]*"aio"/… "aio"/')"
python3 - "$WORKDIR/audit.jsonl" <<'PY'
import json, sys
d = [json.loads(l) for l in open(sys.argv[1]) if '"applied"' in l][0]
assert "to io_uring as configured (target io_uring)" in d["reason"], d["reason"]
assert d["evidence"]["io_uring"]["usable"] is True, d["evidence"]
print("  reason:", d["reason"])
PY
sleep 3
kill -0 "$AGENT_PID" || fail "agent died after the switch to io_uring"
[ "$(grep -c "\"result\":\"applied\"" "$WORKDIR/audit.jsonl")" -eq 1 ] || fail "more than one switch applied"
stop_agent
echo "PASS"
