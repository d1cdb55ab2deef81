#!/usr/bin/env bash
# Fault table, row 7 (docs/RELIABILITY.md): 500 defined domains with 4 disks
# each on a private libvirtd (fault_lib.sh; the shared one, and the agents
# other tests run against it, never see them), plus one running domain.
#   - `aioguard advise --json` is right for all 2000 disks (each checked
#     against how its image was made) and fast;
#   - the agent watches only the running domain's disks
#     (aioguard_watched_disks), and the define-only domains cost its
#     refresh little (CPU per refresh, with and without them).
# Images are small files: sparse raw, fallocated raw, qcow2, written raw
# (vdd on io='threads', the others on native).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fault_lib.sh"
need_root
make_workdir
plibvirt_start
N=${FAULT_SCALE_DOMAINS:-500}
P=aioguard-scale-$$
IMG=$WORKDIR/img
mkdir -m 755 "$IMG"
now_ms() { echo $(($(date +%s%N) / 1000000)); }

say "row 7: $N defined domains with 4 disks each"
t0=$(now_ms)
qemu-img create -q -f qcow2 "$IMG/template.qcow2" 64M
head -c 256K /dev/urandom >"$IMG/template.raw"
python3 - "$N" "$P" "$IMG" "$WORKDIR/define.cmds" "$WORKDIR/undefine.cmds" "$(domain_type)" <<'PY'
import os, shutil, sys
n, prefix, img, define, undefine, dtype = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
disk = ("    <disk type='file' device='disk'><driver name='qemu' type='{fmt}' cache='none' io='native'/>"
        "<source file='{src}'/><target dev='{dev}' bus='virtio'/></disk>\n")
with open(define, "w") as d, open(undefine, "w") as u:
    for i in range(n):
        name = "%s-%03d" % (prefix, i)
        base = os.path.join(img, name)
        with open(base + "-a.raw", "wb") as f:          # sparse raw
            f.truncate(64 << 20)
        fd = os.open(base + "-b.raw", os.O_CREAT | os.O_WRONLY, 0o644)
        os.posix_fallocate(fd, 0, 8 << 20)              # fallocated raw
        os.close(fd)
        shutil.copyfile(os.path.join(img, "template.qcow2"), base + "-c.qcow2")  # qcow2, grows
        shutil.copyfile(os.path.join(img, "template.raw"), base + "-d.raw")      # written raw
        disks = (disk.format(fmt="raw", src=base + "-a.raw", dev="vda") +
                 disk.format(fmt="raw", src=base + "-b.raw", dev="vdb") +
                 disk.format(fmt="qcow2", src=base + "-c.qcow2", dev="vdc") +
                 disk.format(fmt="raw", src=base + "-d.raw", dev="vdd").replace("'native'", "'threads'"))
        with open(base + ".xml", "w") as f:
            f.write("<domain type='%s'><name>%s</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>"
                    "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>"
                    "<emulator>/usr/bin/qemu-system-x86_64</emulator>\n%s</devices></domain>\n" % (dtype, name, disks))
        d.write("define %s.xml\n" % base)
        u.write("undefine %s\n" % name)
PY
t1=$(now_ms)
virsh -q -c "$PURI" <"$WORKDIR/define.cmds" >/dev/null || fail "defining $N domains"
t2=$(now_ms)
defined=$(virsh -q -c "$PURI" list --all --name | grep -c "^$P-" || true)
[ "$defined" -eq "$N" ] || fail "$defined domains defined, not $N"
echo "  $((N * 4)) images made in $((t1 - t0)) ms, $N domains defined in $((t2 - t1)) ms (one virsh session)"

# one running domain, two disks: all the agent may watch
RUN=$P-running
qemu-img create -q -f qcow2 "$IMG/run-a.qcow2" 64M
qemu-img create -q -f raw -o preallocation=falloc "$IMG/run-b.raw" 8M
domain_xml "$RUN" "$(file_disk "$IMG/run-a.qcow2" vda qcow2 native)" \
	"$(file_disk "$IMG/run-b.raw" vdb raw native)" >"$WORKDIR/$RUN.xml"
virsh -q -c "$PURI" define "$WORKDIR/$RUN.xml" >/dev/null || fail "define $RUN"
at_exit "virsh -c '$PURI' undefine '$RUN'"
at_exit "virsh -c '$PURI' destroy '$RUN'"
virsh -q -c "$PURI" start "$RUN" >/dev/null || fail "start $RUN"

t0=$(now_ms)
"$AIOGUARD" advise -c "$PURI" --json >"$WORKDIR/advise.json" || fail "advise failed"
t1=$(now_ms)
python3 - "$WORKDIR/advise.json" "$P" "$N" <<'PY' || fail "advise is wrong"
import json, sys
doc, prefix, n = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3])
disks = doc["disks"]
grow = "io_uring" if doc["io_uring"]["usable"] else "threads"   # README, advise
want = {"vda": ("sparse", True, "native"), "vdb": ("allocated", False, "native"),
        "vdc": ("growing", True, grow), "vdd": ("allocated", False, "native")}
seen, bad = set(), []
for d in disks:
    if d["domain"] == prefix + "-running":
        continue
    seen.add((d["domain"], d["target"]))
    got = (d["image"], d["sparse"], d["recommended_io"])
    io = "threads" if d["target"] == "vdd" else "native"
    if got != want[d["target"]] or d["active"] or d["io"] != io:
        bad.append((d["domain"], d["target"], got))
expected = {("%s-%03d" % (prefix, i), t) for i in range(n) for t in want}
if seen != expected:
    sys.exit("disks missing or extra: %d seen, %d expected" % (len(seen), len(expected)))
if bad:
    sys.exit("%d disks wrong, e.g. %s" % (len(bad), bad[:3]))
print("  advise: %d defined-only disks, each image/sparse/recommendation as made" % len(seen))
PY
echo "  advise --json over $((N * 4 + 2)) disks: $((t1 - t0)) ms"
[ $((t1 - t0)) -lt 20000 ] || fail "advise took $((t1 - t0)) ms"

# cpu_ticks PID: user + system clock ticks so far
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# refresh_cost: CPU of the agent and of libvirtd per 2 s interval (one
# inventory refresh each), over 5 intervals, in ms
refresh_cost() {
	local a0 l0 a1 l1 hz
	hz=$(getconf CLK_TCK)
	sleep 1
	a0=$(cpu_ticks "$AGENT_PID"); l0=$(cpu_ticks "$(plibvirt_pid)")
	sleep 10
	a1=$(cpu_ticks "$AGENT_PID"); l1=$(cpu_ticks "$(plibvirt_pid)")
	echo "$(((a1 - a0) * 1000 / hz / 5)) $(((l1 - l0) * 1000 / hz / 5))"
}

# Switch-back on with no quiet time: every vdd (allocated, on threads) would
# be switched back to native were define-only disks watched.
"$AIOGUARD" run -c "$PURI" --dry-run --interval 2 --listen 127.0.0.1:0 \
	--switch-back yes --switch-back-quiet 0 \
	--state-dir "$WORKDIR/state" >"$WORKDIR/agent.out" 2>"$WORKDIR/agent.err" &
AGENT_PID=$!
at_exit "kill $AGENT_PID"
for _ in $(seq 100); do
	grep -q "^aioguard: running" "$WORKDIR/agent.err" && break
	kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORKDIR/agent.err"; fail "agent did not start"; }
	sleep 0.1
done
URL=$(agent_metrics_url "$WORKDIR/agent.err")
# until the first interval (2 s) has published the gauge
watched=
for _ in $(seq 150); do
	watched=$(metric "$URL" aioguard_watched_disks)
	[ -n "$watched" ] && break
	kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORKDIR/agent.err"; fail "agent died"; }
	sleep 0.2
done
echo "  agent: $(grep -o '[0-9]* disks watched' "$WORKDIR/agent.err"), aioguard_watched_disks $watched"
[ "$watched" = 2 ] || fail "aioguard_watched_disks is $watched: only the running domain's 2 disks are watched"
read -r with_agent with_libvirtd < <(refresh_cost)
n=$(grep -c '"type":"decision"' "$WORKDIR/state/audit.jsonl" || true)
[ "$n" -eq 0 ] || fail "$n decisions on define-only domains, e.g. $(head -c 400 "$WORKDIR/state/audit.jsonl")"
echo "  no decision on a define-only disk (switch-back on, quiet 0 s)"

t0=$(now_ms)
virsh -q -c "$PURI" <"$WORKDIR/undefine.cmds" >/dev/null || fail "undefining $N domains"
t1=$(now_ms)
left=$(virsh -q -c "$PURI" list --all --name | grep -c "^$P-[0-9]" || true)
[ "$left" -eq 0 ] || fail "$left domains left"
read -r without_agent without_libvirtd < <(refresh_cost)
kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORKDIR/agent.err"; fail "agent died"; }
[ "$(metric "$URL" aioguard_watched_disks)" = 2 ] || fail "watched disks changed"
echo "  CPU per refresh (agent + libvirtd): ${with_agent} + ${with_libvirtd} ms with $N define-only" \
	"domains, ${without_agent} + ${without_libvirtd} ms without"
echo "  $N domains undefined in $((t1 - t0)) ms"
# a bound that catches a refresh gone quadratic, not a benchmark
[ "$with_agent" -lt 1000 ] || fail "a refresh with $N define-only domains costs the agent ${with_agent} ms CPU"
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || fail "agent exited non-zero"
echo "PASS"
