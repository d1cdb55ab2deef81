#!/usr/bin/env bash
# An agent that outlives its disks: the kernel counts a few (disk, syscall)
# keys at once (here shrunk to AIOGUARD_BPF_SLOTS=6, no rebuild; a raw disk
# on native takes two: io_submit and fdatasync) and the
# agent must give back the slots of disks that left libvirt.
#   - one domain runs throughout; short-lived domains come and go, more
#     distinct disks over the agent's life than there are slots;
#   - every one of them gets counters (its aioguard_submitted_bytes_total),
#     and its slots come back once it is gone,
#     nothing goes uncounted (aioguard_bpf_untracked_total 0), and the last
#     one, a growing qcow2, still stalls into evidence (a dry-run decision);
#   - once they are gone, aioguard_bpf_slots_in_use is back to the keys of
#     the live domain (one per aioguard_submitted_bytes_total series it has
#     with --metrics-detail yes: a series per syscall).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root
make_workdir
loopfs_make ext4 1024
libvirtd_start
URI=qemu:///system
P=aioguard-slots-$$
SLOTS=6
CHURN=${SLOTS_CHURN_DOMAINS:-5}
DOM=$P-last   # drive_writes and qemu_io_if_running write to $DOM
source "$(dirname "$0")/agent_lib.sh"

# scrape EXPR: a python expression over `m`, {(name, labels-dict-as-tuple): value}
scrape() {
	python3 - "$METRICS" "$1" <<'PY'
import re, sys, urllib.request
m = {}
for line in urllib.request.urlopen(sys.argv[1], timeout=10).read().decode().splitlines():
    r = re.match(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$', line)
    if r:
        labels = tuple(sorted(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', r.group(2) or "")))
        m[(r.group(1), labels)] = float(r.group(3))
def series(name, **want):
    return [v for (n, l), v in m.items() if n == name and all((k, w) in l for k, w in want.items())]
def one(name):
    return series(name)[0]
print(eval(sys.argv[2]))
PY
}

# wait_scrape EXPR SECONDS WHAT: until EXPR prints True
wait_scrape() {
	local i
	for i in $(seq $(($2 * 2))); do
		[ "$(scrape "$1")" = True ] && return 0
		kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORKDIR/agent.err"; fail "agent died"; }
		sleep 0.5
	done
	scrape 'sorted((n, l, v) for (n, l), v in m.items() if n.startswith("aioguard_bpf") or n == "aioguard_submitted_bytes_total")' || true
	fail "$3 (not within $2 s)"
}

start_raw() {   # NAME: a domain with one sparse raw disk on native
	truncate -s 256M "$LOOP_MNT/$1.raw"
	domain_define_start "$1" "$(domain_xml "$1" "$(file_disk "$LOOP_MNT/$1.raw" vda raw native)")"
}

say "bpf-slots sizes the kernel's maps, and the start line says what they cost"
"$AIOGUARD" run -c "$URI" --include "$P-*" --bpf-slots 2048 --listen off \
	--state-dir "$WORKDIR/state0" --audit-log "$WORKDIR/audit0.jsonl" 2>"$WORKDIR/agent0.err" &
pid0=$!
at_exit "kill $pid0"
wait_agent_started "$pid0" "$WORKDIR/agent0.err"
line=$(grep -o "2048 counting slots ([0-9.]* MiB of kernel memory)" "$WORKDIR/agent0.err") ||
	fail "no slot count in the start line: $(head -1 "$WORKDIR/agent0.err")"
# (tests run one at a time: this agent's is the only disk_stats map)
maxent=$(bpftool map show name disk_stats 2>/dev/null | grep -o "max_entries [0-9]*" | sort -u | tr '\n' ' ')
[ "$maxent" = "max_entries 2048 " ] || fail "the kernel's disk_stats map: '$maxent', not 2048 entries"
echo "  $line; disk_stats: $maxent"
kill "$pid0"; wait "$pid0" || true

say "a long-lived domain, the agent with $SLOTS slots"
start_raw "$P-live"
qemu_io "$P-live" 0 "write -P 1 0 4M" >/dev/null
AIOGUARD_BPF_SLOTS=$SLOTS "$AIOGUARD" run -c "$URI" --include "$P-*" "${KNOBS[@]}" --metrics-detail yes \
	--state-dir "$WORKDIR/state" --audit-log "$WORKDIR/audit.jsonl" \
	>"$WORKDIR/agent.out" 2>"$WORKDIR/agent.err" &
AGENT_PID=$!
at_exit "kill $AGENT_PID"
wait_agent_started "$AGENT_PID" "$WORKDIR/agent.err"
METRICS=$(grep -o 'http://[^ ]*/metrics' "$WORKDIR/agent.err") || fail "no metrics URL"
[ "$(scrape 'one("aioguard_bpf_slots_max")')" = "$SLOTS.0" ] || fail "aioguard_bpf_slots_max is not $SLOTS"
qemu_io "$P-live" 0 "write -P 2 4M 4M" >/dev/null
wait_scrape "sum(series('aioguard_submitted_bytes_total', domain='$P-live')) > 0" 20 \
	"no counters for the long-lived domain"

say "$CHURN short-lived domains, one after the other"
for n in $(seq "$CHURN"); do
	d=$P-c$n
	start_raw "$d"
	for i in $(seq 20); do   # until the agent watches it, its writes are not timed
		qemu_io "$d" 0 "write -P 3 0 1M" >/dev/null
		[ "$(scrape "sum(series('aioguard_submitted_bytes_total', domain='$d')) > 0")" = True ] && break
		sleep 0.5
	done
	wait_scrape "sum(series('aioguard_submitted_bytes_total', domain='$d')) > 0" 10 \
		"domain $n of $CHURN got no counters"
	echo "  $d counted; slots in use $(scrape 'one("aioguard_bpf_slots_in_use")')"
	virsh -q -c "$URI" destroy "$d" >/dev/null
	virsh -q -c "$URI" undefine "$d" >/dev/null
	rm -f "$LOOP_MNT/$d.raw"
	wait_scrape "one('aioguard_bpf_slots_in_use') == len(series('aioguard_submitted_bytes_total'))" 20 \
		"domain $n's slots were not given back"
done

say "the last disk, a growing qcow2, stalls into evidence"
qemu-img create -q -f qcow2 "$LOOP_MNT/last.qcow2" 2G
domain_define_start "$DOM" "$(domain_xml "$DOM" "$(file_disk "$LOOP_MNT/last.qcow2" vda qcow2 native)")"
start_writes
wait_audit dry-run 120
stop_writes
grep "\"domain\":\"$DOM\"" "$WORKDIR/audit.jsonl" | grep -q '"result":"dry-run"' ||
	fail "the decision is not the last domain's"
python3 - "$WORKDIR/audit.jsonl" "$DOM" <<'PY' || fail "no evidence in the decision"
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d.get("domain") == sys.argv[2] and d.get("result") == "dry-run":
        w = d["evidence"]["windows"]
        assert sum(x["submits"] for x in w) > 0 and sum(x["stalls"] for x in w) > 0, w
        print("  evidence:", [(x["submits"], x["stalls"]) for x in w])
        break
else:
    sys.exit("no dry-run decision for " + sys.argv[2])
PY
[ "$(scrape 'one("aioguard_bpf_untracked_total")')" = 0.0 ] ||
	fail "submissions went uncounted: $(scrape 'one("aioguard_bpf_untracked_total")')"

say "slots go back to the live disks"
virsh -q -c "$URI" destroy "$DOM" >/dev/null
wait_scrape "one('aioguard_bpf_slots_in_use') == len(series('aioguard_submitted_bytes_total')) and not series('aioguard_submitted_bytes_total', domain='$DOM')" 30 \
	"slots in use did not return to the live domain's keys"
echo "  slots in use $(scrape 'one("aioguard_bpf_slots_in_use")') = series of $P-live $(scrape "len(series('aioguard_submitted_bytes_total', domain='$P-live'))")"
stop_agent
echo "PASS"
