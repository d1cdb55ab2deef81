#!/usr/bin/env bash
# SIGHUP applies what it can while the agent observes, and names the rest:
#   - a bad `listen` fails the settings check before anything is loaded;
#   - threshold-us reaches the running BPF programs (read back from the
#     kernel's map with bpftool), listen moves the metrics server (the new
#     address answers, the old one is closed), state-dir and audit-log
#     reopen the audit log there; the agent's pid and BPF programs stay;
#   - connect is named as taking effect at restart only;
#   - a reload that fails (a bad value) keeps every running setting.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root
make_workdir
libvirtd_start
URI=qemu:///system
command -v bpftool >/dev/null || fail "bpftool not installed (tools/install-deps)"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
answers() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5).read()' "$1" 2>/dev/null; }
# the running programs' stall threshold, read from the kernel
kernel_threshold_ns() {
	local id
	for id in $(grep -h '^map_id:' /proc/"$AGENT_PID"/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -un); do
		bpftool -j map dump id "$id" 2>/dev/null | python3 -c '
import json, sys
try:
    entries = json.load(sys.stdin)
except ValueError:
    sys.exit()
for e in entries if isinstance(entries, list) else []:
    for v in e.get("formatted", {}).get("value", {}).get(".data", []) or []:
        if "stall_threshold_ns" in v:
            print(v["stall_threshold_ns"])'
	done
}

say "a bad listen is refused before anything is loaded"
rc=0
"$AIOGUARD" run -c "$URI" --listen 'not-an-address' --state-dir "$WORKDIR/s0" >"$WORKDIR/bad.out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || { cat "$WORKDIR/bad.out"; fail "run --listen not-an-address exited $rc, not 2"; }
grep -q "listen: 'not-an-address' is not ADDR:PORT" "$WORKDIR/bad.out" || fail "no clear message: $(cat "$WORKDIR/bad.out")"
! grep -q "attached" "$WORKDIR/bad.out" || fail "BPF was loaded before the check"
[ ! -e "$WORKDIR/s0" ] || fail "the state directory was made before the check"

P1=$(free_port)
P2=$(free_port)
cat >"$WORKDIR/agent.conf" <<EOF
connect = $URI
threshold-us = 1000
listen = 127.0.0.1:$P1
state-dir = $WORKDIR/state1
include = aioguard-reload-none-$$
EOF
"$AIOGUARD" run --config "$WORKDIR/agent.conf" --interval 1 >"$WORKDIR/agent.out" 2>"$WORKDIR/agent.err" &
AGENT_PID=$!
at_exit "kill $AGENT_PID"
for i in $(seq 300); do
	grep -q "^aioguard: running" "$WORKDIR/agent.err" && break
	kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORKDIR/agent.err"; fail "agent did not start"; }
	sleep 0.1
done
answers "http://127.0.0.1:$P1/metrics" || fail "no metrics on port $P1"
[ "$(kernel_threshold_ns)" = 1000000 ] || fail "kernel threshold is $(kernel_threshold_ns), not 1000000 ns"
[ -e "$WORKDIR/state1/audit.jsonl" ] || fail "no audit log in state1"

say "SIGHUP: threshold-us, listen, state-dir applied while running; connect at restart"
cat >"$WORKDIR/agent.conf" <<EOF
threshold-us = 250
listen = 127.0.0.1:$P2
state-dir = $WORKDIR/state2
connect = qemu:///session
include = aioguard-reload-none-$$
EOF
kill -HUP "$AGENT_PID"
for i in $(seq 50); do
	grep -q "SIGHUP: settings reloaded" "$WORKDIR/agent.err" && break
	sleep 0.1
done
grep "SIGHUP" "$WORKDIR/agent.err" | sed 's/^/  /'
grep -q "changed now: threshold-us 250; state-dir $WORKDIR/state2, audit-log (in it); listen 127.0.0.1:$P2;" \
	"$WORKDIR/agent.err" || fail "the reload does not say what changed"
grep -q "SIGHUP: connect take effect at restart" "$WORKDIR/agent.err" || fail "connect not named as restart-only"
[ "$(kernel_threshold_ns)" = 250000 ] || fail "kernel threshold is $(kernel_threshold_ns), not 250000 ns"
answers "http://127.0.0.1:$P2/metrics" || fail "no metrics on the new port $P2"
! answers "http://127.0.0.1:$P1/metrics" || fail "the old port $P1 still answers"
[ -e "$WORKDIR/state2/audit.jsonl" ] || fail "no audit log in state2"
kill -0 "$AGENT_PID" || fail "the agent died"
[ "$(grep -c "^aioguard: attached\|^aioguard: running" "$WORKDIR/agent.err")" -eq 1 ] || fail "the agent started again"

say "a reload with a bad value keeps every running setting"
sed -i "s/^listen = .*/listen = 127.0.0.1:99999/" "$WORKDIR/agent.conf"
kill -HUP "$AGENT_PID"
for i in $(seq 50); do
	grep -q "settings not reloaded" "$WORKDIR/agent.err" && break
	sleep 0.1
done
grep -q "settings not reloaded, keeping the running ones" "$WORKDIR/agent.err" || fail "a bad reload was not refused"
answers "http://127.0.0.1:$P2/metrics" || fail "metrics gone after a refused reload"
[ "$(kernel_threshold_ns)" = 250000 ] || fail "threshold changed by a refused reload"

kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || fail "agent exited with $? on SIGTERM"
echo "PASS"
