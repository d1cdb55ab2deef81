#!/usr/bin/env bash
# set-io --apply live against a real libvirtd and a running QEMU (KVM, or
# TCG where there is none): a sparse qcow2 (vda) and a qcow2 on a backing
# file (vdb), both io='native', on a loop-mounted ext4, writes in flight.
# Scenarios (arguments; all when none):
#   swap     the domain runs, paused only while a node of a growing qcow2
#            is swapped (tens of ms); QEMU's threads submit vda's
#            writes through the pool afterwards (the observer sees
#            pwritev/pwrite64 and no io_submit; before: io_submit); data
#            written before, during and after reads back; the chain's base
#            still reads; the persistent XML says threads; advise reports
#            the live mode, and after a snapshot of vda the XML's mode for
#            its new overlay, then set-io swaps the overlay's node alone;
#            qemu-img check clean after shutdown
#   refused  the image made immutable: the reopen is refused, the original
#            node stays, the persistent XML is rolled back, vda still writes
#   block    a type='block' disk (raw on a loop device, QEMU's host_device
#            node): switched live the same way, pool writes afterwards
#   grow     a write that extends the image lands between the add of a
#            file node and the reopen onto it: the guest is paused then,
#            the swap adds the node again, nothing is lost (a node that
#            knows a shorter file reads zeros there: QEMU 7.2, live.h)
#   killed   set-io killed after each step of the swap: the guest stays
#            paused, the next set-io (or the agent's start) puts the node
#            back and resumes it, then switches
#   agent    the agent, --enforce --apply live, switches the stalling vda
#            live: the domain stays running, the audit says apply live,
#            and the observer confirms it (live_verify: pool writes, no
#            io_submit, in the first window after the switch)
#   snapshot after the agent's live switch, a disk-only snapshot of vda
#            (libvirt makes the overlay's nodes with the XML's native): the
#            agent swaps the overlay's file node (audit live_reapply
#            applied, 1 node of 2), the observer sees no io_submit on vda
#            afterwards (and the agent's live_verify confirms it), the
#            overlay keeps its image locks; then a
#            blockcommit --active --pivot back onto the base, whose node
#            runs threads already (live_reapply unchanged, still no
#            io_submit); then a full blockcopy --pivot (a chain QEMU was not
#            started with: swapped, pool writes, locks); the domain never
#            leaves 'running', every write reads back from the copy,
#            qemu-img check clean on each image
#   snapshot_dryrun  the same snapshot after set-io's switch, the agent in
#            dry-run: one live_reapply line (dry-run), nothing swapped, the
#            overlay submits with io_submit; then a restart: the new QEMU
#            runs the persistent XML's threads, the record of the old one
#            is dropped, nothing is reapplied
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root
make_workdir
loopfs_make ext4 1024
libvirtd_start
source "$(dirname "$0")/agent_lib.sh"

DOM=aioguard-live-$$
STATE=$WORKDIR/state

qmp() { virsh -c "$URI" qemu-monitor-command "$DOM" "$1"; }
node_names() {
	qmp '{"execute":"query-named-block-nodes","arguments":{"flat":true}}' |
		python3 -c 'import json,sys; print(" ".join(sorted(n["node-name"] for n in json.load(sys.stdin)["return"])))'
}
qemu_pid() { cat "/run/libvirt/qemu/$DOM.pid"; }

live_domain() {
	rm -f "$LOOP_MNT"/*.qcow2 "$WORKDIR/write-offset"
	qemu-img create -q -f qcow2 "$LOOP_MNT/sparse.qcow2" 2G
	qemu-img create -q -f qcow2 "$LOOP_MNT/base.qcow2" 256M
	qemu-io -f qcow2 "$LOOP_MNT/base.qcow2" -c "write -P 0x22 0 4M" >/dev/null
	qemu-img create -q -f qcow2 -b "$LOOP_MNT/base.qcow2" -F qcow2 "$LOOP_MNT/top.qcow2" 256M
	domain_define_start "$DOM" "$(domain_xml "$DOM" \
		"$(file_disk "$LOOP_MNT/sparse.qcow2" vda qcow2 native)" \
		"$(file_disk "$LOOP_MNT/top.qcow2" vdb qcow2 native)")"
	virsh -c "$URI" dumpxml --inactive "$DOM" >"$WORKDIR/before.xml"
	NODES_BEFORE=$(node_names)
}

set_io_live() {
	"$AIOGUARD" set-io -c "$URI" --apply live --backup-dir "$STATE/backups" \
		--state-dir "$STATE" "$DOM" "$@"
}

# The domain's state every 20 ms until told to stop: a live switch shows
# 'running', and 'paused' only while it swaps a node of an image that grows
# (live.h: a guest write then would be lost); the switch's own message
# says for how long.
watch_domstate() {
	rm -f "$WORKDIR/stop-domstate" "$WORKDIR/domstate"
	while [ ! -e "$WORKDIR/stop-domstate" ]; do
		virsh -q -c "$URI" domstate "$DOM" >>"$WORKDIR/domstate" 2>&1
		sleep 0.02
	done &
	DOMSTATE_PID=$!
	at_exit "touch '$WORKDIR/stop-domstate'"
}
# domstate_only STATES: stop sampling; every sample was one of STATES (an
# extended regex), and the domain runs again
domstate_only() {
	touch "$WORKDIR/stop-domstate"
	wait "$DOMSTATE_PID" || true
	local other
	other=$(grep -vxE "$1" "$WORKDIR/domstate" | grep -v '^$' | sort | uniq -c || true)
	[ -z "$other" ] || fail "the domain was not $1: $other"
	[ "$(grep -v '^$' "$WORKDIR/domstate" | tail -1)" = running ] || fail "the domain did not run again"
	[ "$(virsh -q -c "$URI" domstate "$DOM")" = running ] || fail "domain not running"
	echo "  domstate: running in $(grep -c '^running$' "$WORKDIR/domstate") samples, paused in $(grep -c '^paused$' "$WORKDIR/domstate")"
}
domstate_always_running() { domstate_only running; }
domstate_running_or_paused_to_swap() { domstate_only 'running|paused'; }

# syscalls_of TARGET: the syscalls the observer saw QEMU make for that disk
# over 3 s of writes, as "name:submits" (needs the writer running).
syscalls_of() {
	timeout 30 "$AIOGUARD" watch -c "$URI" --json --interval 1 --duration 3 2>/dev/null |
		python3 -c '
import json, sys
seen = {}
for line in sys.stdin:
    e = json.loads(line)
    if e.get("type") == "disk" and e.get("domain") == sys.argv[1] and e.get("target") == sys.argv[2]:
        seen[e["syscall"]] = seen.get(e["syscall"], 0) + e["submits"]
print(" ".join(f"{k}:{v}" for k, v in sorted(seen.items())))' "$DOM" "$1"
}

# read_back IMAGE PATTERN OFFSET LEN: offline, after QEMU is gone. Read in
# 1 MiB pieces (one qemu-io) so a failure names the pieces that differ: the
# last piece alone points at a write still in flight at the kill, others at
# data the switch lost.
read_back() {
	local out
	out=$(python3 - "$@" <<'PY'
import os, subprocess, sys
img, pat, off, length = sys.argv[1:]
def size(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * units[s[-1]] if s[-1] in units else int(s)
off, length, mib = size(off), size(length), 1 << 20
cmds = []
for o in range(off, off + length, mib):
    cmds += ["-c", f"read -P {pat} {o} {min(mib, off + length - o)}"]
r = subprocess.run(["qemu-io", "-r", "-f", "qcow2", img] + cmds, capture_output=True, text=True)
lines = r.stdout.splitlines()
bad = [l for l in lines if "verification failed" in l]
reads = sum(1 for l in lines if l.startswith("read "))
if bad or reads != len(cmds) // 2:
    print(f"{reads} of {len(cmds) // 2} reads done; {'; '.join(bad)} {r.stderr.strip()}")
    # what is there instead, and where qcow2 maps it: names the lost step
    for l in bad[:2]:
        o = int(l.split("offset ")[1].split(",")[0])
        v = subprocess.run(["qemu-io", "-r", "-f", "qcow2", img, "-c", f"read -v {o} 32",
                            "-c", f"read -v {o + mib - 32} 32"], capture_output=True, text=True)
        m = subprocess.run(["qemu-img", "map", "--output=json", "--start-offset", str(o),
                            "--max-length", str(mib), img], capture_output=True, text=True)
        print(f"\n  at {o}: " + " | ".join(x for x in v.stdout.splitlines() if x[:9].rstrip(":").isalnum() and x[8:9] == ":")
              + f"\n  map: {m.stdout.strip()} {m.stderr.strip()}")
    keep = os.environ.get("AIOGUARD_TEST_KEEP_DIR")
    if keep:
        subprocess.run(["cp", "--sparse=always", img, keep])
    sys.exit(1)
PY
	) || fail "$1: pattern $2 at $3+$4 does not read back: $out"
}

# Drained (aio_flush: every request in flight completes; HMP qemu-io's
# aio_write returns before its write does, and flush alone does not wait
# for writes), flushed, then QEMU killed (the domain has no guest OS to shut
# down): what QEMU acknowledged is on disk.
stop_domain() {
	qemu_io "$DOM" 0 "aio_flush" >/dev/null || fail "aio_flush of vda failed"
	qemu_io "$DOM" 0 "flush" >/dev/null || fail "flush of vda failed"
	qemu_io "$DOM" 1 "flush" >/dev/null || fail "flush of vdb failed"
	virsh -q -c "$URI" destroy "$DOM" >/dev/null || fail "destroy $DOM failed"
}

check_images() {
	local img
	for img in sparse top base; do
		qemu-img check -q "$LOOP_MNT/$img.qcow2" || fail "qemu-img check of $img.qcow2 is not clean"
	done
	echo "  qemu-img check: sparse, top, base clean"
}

scenario_swap() {
	say "swap: vda (sparse qcow2) and vdb (backing chain) native -> threads, writes in flight"
	live_domain
	qemu_io "$DOM" 0 "write -P 0x11 1900M 16M" >/dev/null
	start_writes
	local before
	before=$(syscalls_of vda)
	echo "  before, vda: $before"
	[[ " $before" == *" io_submit:"* ]] || fail "vda on native shows no io_submit before the switch: $before"
	watch_domstate
	set_io_live vda threads >"$WORKDIR/set-io.out" || fail "set-io --apply live vda failed"
	tail -1 "$WORKDIR/set-io.out" | sed 's/^/  /'
	set_io_live vdb threads >"$WORKDIR/set-io-b.out" || fail "set-io --apply live vdb failed"
	tail -1 "$WORKDIR/set-io-b.out" | sed 's/^/  /'
	grep -q "2 file nodes of 2 swapped to aio=threads" "$WORKDIR/set-io-b.out" || fail "vdb: both layers not swapped"
	local after
	after=$(syscalls_of vda)
	domstate_running_or_paused_to_swap
	echo "  after, vda: $after"
	[[ " $after" != *" io_submit:"* ]] || fail "vda still submits with io_submit after the live switch: $after"
	[[ " $after" =~ \ (pwritev|pwrite64|pwritev2): ]] || fail "no pool writes on vda after the switch: $after"
	stop_writes
	qemu_io "$DOM" 0 "write -P 0x33 1950M 16M" >/dev/null
	qemu_io "$DOM" 1 "write -P 0x44 8M 4M" >/dev/null
	[ "$(node_names)" = "$NODES_BEFORE" ] || fail "QEMU's nodes changed: $(node_names), before: $NODES_BEFORE"
	[ "$(disk_io "$URI" "$DOM" vda --inactive)" = threads ] || fail "persistent XML of vda is not threads"
	[ "$(disk_io "$URI" "$DOM" vdb --inactive)" = threads ] || fail "persistent XML of vdb is not threads"
	"$AIOGUARD" advise -c "$URI" --domain "$DOM" --state-dir "$STATE" --json >"$WORKDIR/advise.json"
	python3 - "$WORKDIR/advise.json" <<'PY'
import json, sys
disks = {d["target"]: d for d in json.load(open(sys.argv[1]))["disks"]}
for t in ("vda", "vdb"):
    d = disks[t]
    assert d["io"] == "threads" and d["io_live_xml"] == "native" and d["io_switched_live"] is True, d
    assert d["io_next_boot"] == "threads", d
print("  advise: io threads (live XML: native), next boot threads")
PY
	# a snapshot's new overlay is a node libvirt makes with the XML's io:
	# the record no longer speaks for vda, and advise says so
	virsh -q -c "$URI" snapshot-create-as "$DOM" --disk-only --no-metadata \
		--diskspec vda,file="$LOOP_MNT/snap.qcow2" --diskspec vdb,snapshot=no >/dev/null ||
		fail "disk-only snapshot of vda failed"
	"$AIOGUARD" advise -c "$URI" --domain "$DOM" --state-dir "$STATE" --json >"$WORKDIR/advise2.json"
	python3 - "$WORKDIR/advise2.json" <<'PY'
import json, sys
disks = {d["target"]: d for d in json.load(open(sys.argv[1]))["disks"]}
a, b = disks["vda"], disks["vdb"]
assert a["source"].endswith("/snap.qcow2") and a["io"] == "native" and not a["io_switched_live"], a
assert b["io"] == "threads" and b["io_switched_live"] is True, b
print("  after a snapshot of vda: vda's new overlay reported as io native (the XML's), vdb still threads")
PY
	# the overlay's nodes are not on QEMU's command line: built from the
	# disk's first layer's; only the overlay's node runs native, only it moves
	set_io_live vda threads >"$WORKDIR/overlay.out" || fail "set-io --apply live on the overlay failed"
	grep -q "1 file node of 2 swapped to aio=threads" "$WORKDIR/overlay.out" ||
		fail "not the overlay's node alone: $(tail -1 "$WORKDIR/overlay.out")"
	echo "  set-io --apply live on the overlay: $(grep -o '1 file node of 2[^;]*' "$WORKDIR/overlay.out")"
	"$AIOGUARD" advise -c "$URI" --domain "$DOM" --state-dir "$STATE" --json |
		python3 -c 'import json,sys; d=[d for d in json.load(sys.stdin)["disks"] if d["target"]=="vda"][0]; assert d["source"].endswith("/snap.qcow2") and d["io"]=="threads" and d["io_switched_live"], d' ||
		fail "advise does not report the overlay's live mode"
	[[ " $(node_names) " != *" aioguard-tmp-"* ]] || fail "a temporary node is left: $(node_names)"
	local done_mb
	done_mb=$(cat "$WORKDIR/write-offset")
	stop_domain
	read_back "$LOOP_MNT/sparse.qcow2" 0x11 1900M 16M
	read_back "$LOOP_MNT/sparse.qcow2" 7 0 "${done_mb}M"
	read_back "$LOOP_MNT/sparse.qcow2" 0x33 1950M 16M
	read_back "$LOOP_MNT/top.qcow2" 0x22 0 4M
	read_back "$LOOP_MNT/top.qcow2" 0x44 8M 4M
	echo "  read back: before (16 MiB), during ($done_mb MiB), after (16 MiB); vdb's base and new writes"
	qemu-img check -q "$LOOP_MNT/snap.qcow2" || fail "qemu-img check of the snapshot overlay is not clean"
	check_images
	remove_domain
}

scenario_refused() {
	say "refused: image immutable -> the reopen is refused, original node back, XML rolled back"
	live_domain
	chattr +i "$LOOP_MNT/sparse.qcow2" || fail "chattr +i failed"
	at_exit "chattr -i '$LOOP_MNT/sparse.qcow2'"
	local rc=0
	set_io_live vda threads >/dev/null 2>"$WORKDIR/refused.err" || rc=$?
	chattr -i "$LOOP_MNT/sparse.qcow2"
	echo "  set-io (exit $rc): $(cat "$WORKDIR/refused.err")"
	[ "$rc" -eq 1 ] || fail "set-io exited $rc on a refused reopen"
	grep -q "live switch of vda failed: .*refused" "$WORKDIR/refused.err" || fail "the message does not say what failed"
	grep -q "persistent XML restored" "$WORKDIR/refused.err" || fail "the message does not say the XML was rolled back"
	virsh -c "$URI" dumpxml --inactive "$DOM" >"$WORKDIR/now.xml"
	same_xml "$WORKDIR/now.xml" "$WORKDIR/before.xml" || fail "persistent XML not rolled back"
	[ "$(node_names)" = "$NODES_BEFORE" ] || fail "QEMU's nodes differ: $(node_names)"
	qemu_io "$DOM" 0 "write -P 0x55 0 4M" >/dev/null
	[ "$(virsh -q -c "$URI" domstate "$DOM")" = running ] || fail "domain not running"
	"$AIOGUARD" advise -c "$URI" --domain "$DOM" --state-dir "$STATE" --json |
		python3 -c 'import json,sys; d=[d for d in json.load(sys.stdin)["disks"] if d["target"]=="vda"][0]; assert d["io"]=="native" and not d["io_switched_live"], d'
	stop_domain
	read_back "$LOOP_MNT/sparse.qcow2" 0x55 0 4M
	check_images
	remove_domain
}

# 1 MiB writes into the first 200 MiB of vda until told to stop
block_writes() {
	local off=0
	while [ ! -e "$WORKDIR/stop-block-writes" ]; do
		qemu_io "$DOM" 0 "write -P 9 ${off}M 1M" >/dev/null 2>&1 || sleep 0.05
		off=$(((off + 1) % 200))
	done
}

scenario_block() {
	say "block: a type='block' disk (raw on a loop device) native -> threads"
	truncate -s 256M "$LOOP_MNT/blk.raw"
	local dev
	dev=$(losetup -f --show "$LOOP_MNT/blk.raw") || fail "losetup failed"
	at_exit "losetup -d '$dev'"
	domain_define_start "$DOM" "$(domain_xml "$DOM" \
		"    <disk type='block' device='disk'><driver name='qemu' type='raw' cache='none' io='native'/><source dev='$dev'/><target dev='vda' bus='virtio'/></disk>")"
	rm -f "$WORKDIR/stop-block-writes"
	block_writes &
	local writer=$! before after
	at_exit "touch '$WORKDIR/stop-block-writes'"
	before=$(syscalls_of vda)
	echo "  before, vda: $before"
	[[ " $before" == *" io_submit:"* ]] || fail "vda on native shows no io_submit before the switch: $before"
	watch_domstate
	set_io_live vda threads >"$WORKDIR/set-io.out" 2>&1 || fail "set-io --apply live of a block disk failed: $(tail -1 "$WORKDIR/set-io.out")"
	tail -1 "$WORKDIR/set-io.out" | sed 's/^/  /'
	# a block device's length is read anew (host_device): never paused
	domstate_always_running
	! grep -q "guest paused" "$WORKDIR/set-io.out" || fail "the guest was paused for a block device"
	after=$(syscalls_of vda)
	echo "  after, vda: $after"
	touch "$WORKDIR/stop-block-writes"
	wait "$writer" || true
	[[ " $after" != *" io_submit:"* ]] || fail "vda still submits with io_submit: $after"
	[[ " $after" =~ \ (pwritev|pwrite64|pwritev2): ]] || fail "no pool writes on vda after the switch: $after"
	[ "$(virsh -q -c "$URI" domstate "$DOM")" = running ] || fail "domain not running"
	[ "$(disk_io "$URI" "$DOM" vda --inactive)" = threads ] || fail "persistent XML of vda is not threads"
	remove_domain
}

# kill_at STEP REPAIRER: set-io killed after STEP QMP steps of the swap;
# REPAIRER (set-io or agent) puts the node back.
kill_at() {
	say "killed after step $1 of the swap; repaired by $2"
	live_domain
	start_writes
	local rc=0
	AIOGUARD_TEST_LIVE_KILL_AT_STEP=$1 set_io_live vda threads >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 137 ] || fail "set-io was not killed at step $1 (exit $rc)"
	echo "  nodes after the kill: $(node_names)"
	# killed mid-swap of a growing qcow2: the guest stays paused until the repair
	[ "$(virsh -q -c "$URI" domstate "$DOM")" = paused ] || fail "the guest is not paused after the kill: $(virsh -q -c "$URI" domstate "$DOM")"
	if [ "$2" = agent ]; then
		run_agent --dry-run
		grep -q "$DOM: 1 file node of an interrupted live switch put back" "$WORKDIR/agent.err" ||
			{ cat "$WORKDIR/agent.err"; fail "the agent did not put the node back at start"; }
		stop_agent
		[ "$(node_names)" = "$NODES_BEFORE" ] || fail "nodes after the agent's repair: $(node_names)"
		set_io_live vda threads >"$WORKDIR/again.out" || fail "set-io after the repair failed"
	else
		set_io_live vda threads >"$WORKDIR/again.out" || fail "set-io after the kill failed"
		grep -q "1 file node of an interrupted live switch put back; the guest it left paused resumed" "$WORKDIR/again.out" ||
			fail "set-io did not say it put the node back and resumed the guest: $(tail -1 "$WORKDIR/again.out")"
	fi
	tail -1 "$WORKDIR/again.out" | sed 's/^/  /'
	[ "$(node_names)" = "$NODES_BEFORE" ] || fail "nodes after the repair and switch: $(node_names)"
	[ "$(virsh -q -c "$URI" domstate "$DOM")" = running ] || fail "domain not running"
	local after
	after=$(syscalls_of vda)
	echo "  after, vda: $after"
	[[ " $after" != *" io_submit:"* ]] || fail "vda still submits with io_submit: $after"
	stop_writes
	local done_mb
	done_mb=$(cat "$WORKDIR/write-offset") || fail "the writer wrote nothing"
	stop_domain
	read_back "$LOOP_MNT/sparse.qcow2" 7 0 "${done_mb}M"
	check_images
	remove_domain
}

# grow: a write through QEMU that extends the image lands between the add
# of the storage node and the reopen onto it (set-io held there): the
# guest is paused then, and the write (HMP qemu-io, which a paused guest
# cannot stop) is caught by the length check and the node added again. A
# node added before the write would read the new L2 table as zeros and
# the next write would store it empty: the write at 512M would be lost.
scenario_grow() {
	say "grow: the image grows between a node's add and the reopen onto it; nothing is lost"
	live_domain
	qemu_io "$DOM" 0 "write -P 0x61 0 1M" >/dev/null
	AIOGUARD_TEST_LIVE_HOLD_AT_STEP=4 AIOGUARD_TEST_LIVE_HOLD_MS=3000 \
		set_io_live vda threads >"$WORKDIR/grow.out" 2>&1 &
	local setio=$! nodes tmp
	# the temporary node appears at step 1; steps 2-4 take tens of ms
	for _ in $(seq 200); do
		nodes=$(node_names)
		tmp=$(grep -o 'aioguard-tmp-[^ ]*' <<<"$nodes" || true)
		[ -n "$tmp" ] && break
		sleep 0.05
	done
	# held after step 4 by now (under load it may still be at steps 1-3:
	# the write then lands in the first hop, which the same check covers)
	sleep 0.5
	nodes=$(node_names)
	[[ -n "$tmp" && "$nodes" == *"$tmp"* ]] || fail "set-io is not in the middle of the swap: $nodes"
	[ "$(virsh -q -c "$URI" domstate "$DOM")" = paused ] || fail "the guest runs while a growing image is swapped"
	qemu_io "$DOM" 0 "write -P 0x62 512M 1M" >/dev/null
	qemu_io "$DOM" 0 "aio_flush" >/dev/null
	wait "$setio" || fail "set-io failed: $(tail -1 "$WORKDIR/grow.out")"
	tail -1 "$WORKDIR/grow.out" | sed 's/^/  /'
	grep -q "guest paused" "$WORKDIR/grow.out" || fail "set-io does not say it paused the guest"
	[ "$(virsh -q -c "$URI" domstate "$DOM")" = running ] || fail "domain not running after the swap"
	[ "$(node_names)" = "$NODES_BEFORE" ] || fail "nodes after the swap: $(node_names)"
	qemu_io "$DOM" 0 "write -P 0x63 513M 1M" >/dev/null
	stop_domain
	read_back "$LOOP_MNT/sparse.qcow2" 0x61 0 1M
	read_back "$LOOP_MNT/sparse.qcow2" 0x62 512M 1M
	read_back "$LOOP_MNT/sparse.qcow2" 0x63 513M 1M
	echo "  0, 512M (written during the swap) and 513M read back"
	check_images
	remove_domain
}

scenario_killed() {
	kill_at 2 set-io    # format node on the temporary node
	kill_at 3 agent     # ... and the storage node deleted
	kill_at 4 set-io    # storage node added again with the new aio
}

scenario_agent() {
	say "agent --enforce --apply live: switches the stalling vda without pausing it"
	live_domain
	run_agent --enforce --apply live --cooldown 0
	watch_domstate
	start_writes
	wait_audit applied 120
	domstate_running_or_paused_to_swap
	# the observer confirms it: the first window after the switch with I/O
	# on vda saw the pool's writes and no io_submit
	for _ in $(seq 300); do
		grep -q '"type":"live_verify"' "$WORKDIR/audit.jsonl" && break
		sleep 0.2
	done
	grep '"type":"live_verify"' "$WORKDIR/audit.jsonl" | grep -q '"result":"confirmed"' ||
		{ grep live_verify "$WORKDIR/audit.jsonl"; fail "the observer did not confirm the live switch"; }
	grep -o '"type":"live_verify".*' "$WORKDIR/audit.jsonl" | sed 's/^/  /'
	stop_writes
	local line
	line=$(grep '"result":"applied"' "$WORKDIR/audit.jsonl" | head -1)
	[[ "$line" == *'"apply":"live"'* ]] || fail "not applied live: $line"
	echo "  $(grep -o '"message":"[^"]*"' <<<"$line")"
	stop_agent
	[ "$(disk_io "$URI" "$DOM" vda --inactive)" = threads ] || fail "persistent XML of vda is not threads"
	"$AIOGUARD" advise -c "$URI" --domain "$DOM" --state-dir "$STATE" --json |
		python3 -c 'import json,sys; d=[d for d in json.load(sys.stdin)["disks"] if d["target"]=="vda"][0]; assert d["io"]=="threads" and d["io_switched_live"], d'
	stop_domain
	check_images
	remove_domain
}

# wait_audit_line PATTERN SECONDS: the first audit line matching, printed
wait_audit_line() {
	local i
	for i in $(seq $(($2 * 5))); do
		grep -m1 -- "$1" "$WORKDIR/audit.jsonl" 2>/dev/null && return 0
		kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORKDIR/agent.err"; fail "agent died"; }
		sleep 0.2
	done
	tail -20 "$WORKDIR/agent.err"
	fail "no audit line matching $1 within $2 s"
}

# audit_field LINE FIELD: one field of an audit JSON line
audit_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2]))' "$1" "$2"; }

# vda submits through the pool only (needs the writer running)
vda_on_pool() {
	local now
	now=$(syscalls_of vda)
	echo "  $1, vda: $now"
	[[ " $now" != *" io_submit:"* ]] || fail "vda submits with io_submit $1: $now"
	[[ " $now" =~ \ (pwritev|pwrite64|pwritev2): ]] || fail "no pool writes on vda $1: $now"
}

# QEMU holds its image locks (OFD locks on the image's inode) on the file
# node it reads the overlay through: a swap never leaves locking off.
image_locked() {
	local ino
	ino=$(stat -c %i "$1")
	grep -q "OFDLCK .*:$ino " /proc/locks || fail "no image lock of QEMU's on $1 (locking off?)"
}

scenario_snapshot() {
	say "snapshot after the agent's live switch: the agent reapplies to the new overlay"
	live_domain
	run_agent --enforce --apply live --cooldown 0
	watch_domstate
	start_writes
	wait_audit applied 120
	local line t0 t1 delay
	line=$(grep -m1 '"result":"applied"' "$WORKDIR/audit.jsonl")
	echo "  switched: $(audit_field "$line" message)"
	t0=$(date +%s.%N)
	virsh -q -c "$URI" snapshot-create-as "$DOM" --disk-only --no-metadata \
		--diskspec vda,file="$LOOP_MNT/snap.qcow2" --diskspec vdb,snapshot=no >/dev/null ||
		fail "disk-only snapshot of vda failed"
	t1=$(date +%s.%N)
	line=$(wait_audit_line '"type":"live_reapply"' 30)
	delay=$(python3 -c 'import json,sys; print("%.2f" % (json.loads(sys.argv[1])["ts"] - float(sys.argv[2])))' "$line" "$t1")
	echo "  snapshot took $(python3 -c "print('%.2f' % ($t1 - $t0))") s; the agent reapplied $delay s after it: $(audit_field "$line" message)"
	[ "$(audit_field "$line" result)" = applied ] || fail "reapply not applied: $line"
	[[ "$(audit_field "$line" source)" == */snap.qcow2 ]] || fail "reapply not for the overlay: $line"
	[[ "$(audit_field "$line" message)" == "1 file node of 2 swapped to aio=threads"* ]] ||
		fail "not the overlay's node alone: $line"
	vda_on_pool "after the snapshot"
	# and the agent's own observer confirms it: a live_verify after the
	# reapply (the first switch's may never come: a snapshot before it drops
	# the disk's pending check with its image)
	local reapplied_ts verified=""
	reapplied_ts=$(audit_field "$line" ts)
	for _ in $(seq 50); do
		verified=$(python3 -c '
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("type") == "live_verify" and e["ts"] > float(sys.argv[2]):
        print(e["result"]); break' "$WORKDIR/audit.jsonl" "$reapplied_ts")
		[ -n "$verified" ] && break
		sleep 0.2
	done
	[ "$verified" = confirmed ] ||
		{ grep live_verify "$WORKDIR/audit.jsonl"; fail "the observer did not confirm the reapply ($verified)"; }
	image_locked "$LOOP_MNT/snap.qcow2"
	[[ " $(node_names) " != *" aioguard-tmp-"* ]] || fail "a temporary node is left: $(node_names)"
	"$AIOGUARD" advise -c "$URI" --domain "$DOM" --state-dir "$STATE" --json |
		python3 -c 'import json,sys; d=[d for d in json.load(sys.stdin)["disks"] if d["target"]=="vda"][0]; assert d["source"].endswith("/snap.qcow2") and d["io"]=="threads" and d["io_switched_live"], d' ||
		fail "advise does not report the overlay's live mode"
	# back onto the base, whose node the first switch swapped already
	virsh -q -c "$URI" blockcommit "$DOM" vda --active --pivot --wait >/dev/null ||
		fail "blockcommit --active --pivot failed"
	line=$(wait_audit_line '"type":"live_reapply".*sparse.qcow2' 30)
	echo "  after blockcommit --active --pivot: $(audit_field "$line" result): $(audit_field "$line" message)"
	[ "$(audit_field "$line" result)" = unchanged ] || fail "after the commit: $line"
	vda_on_pool "after the commit"
	image_locked "$LOOP_MNT/sparse.qcow2"
	# a full block copy: every node of the new chain is libvirt's, none was
	# on QEMU's command line
	virsh -q -c "$URI" blockcopy "$DOM" vda "$LOOP_MNT/copy.qcow2" --format qcow2 \
		--transient-job --pivot --wait >/dev/null || fail "blockcopy --pivot failed"
	line=$(wait_audit_line '"type":"live_reapply".*copy.qcow2' 30)
	echo "  after blockcopy --pivot: $(audit_field "$line" result): $(audit_field "$line" message)"
	[ "$(audit_field "$line" result)" = applied ] || fail "after the copy: $line"
	vda_on_pool "after the copy"
	image_locked "$LOOP_MNT/copy.qcow2"
	[[ " $(node_names) " != *" aioguard-tmp-"* ]] || fail "a temporary node is left: $(node_names)"
	stop_writes
	domstate_running_or_paused_to_swap
	stop_agent
	local done_mb
	done_mb=$(cat "$WORKDIR/write-offset")
	stop_domain
	read_back "$LOOP_MNT/copy.qcow2" 7 0 "${done_mb}M"
	echo "  read back: $done_mb MiB written before, across the snapshot, the commit and the copy, from the copy"
	for img in snap copy; do
		qemu-img check -q "$LOOP_MNT/$img.qcow2" || fail "qemu-img check of $img.qcow2 is not clean"
	done
	check_images
	remove_domain
}

# The same snapshot after set-io's live switch, the agent in dry-run: it
# says what it would do and changes nothing, and the overlay submits with
# io_submit (what the snapshot scenario asserts gone is there without the
# reapply).
scenario_snapshot_dryrun() {
	say "snapshot after set-io's live switch, agent in dry-run: the overlay runs native, the agent says so"
	live_domain
	start_writes
	set_io_live vda threads >/dev/null || fail "set-io --apply live vda failed"
	run_agent --dry-run
	virsh -q -c "$URI" snapshot-create-as "$DOM" --disk-only --no-metadata \
		--diskspec vda,file="$LOOP_MNT/snap.qcow2" --diskspec vdb,snapshot=no >/dev/null ||
		fail "disk-only snapshot of vda failed"
	local line now
	line=$(wait_audit_line '"type":"live_reapply"' 30)
	echo "  $(audit_field "$line" result): $(audit_field "$line" message)"
	[ "$(audit_field "$line" result)" = dry-run ] || fail "not a dry run: $line"
	now=$(syscalls_of vda)
	echo "  the overlay, not swapped, vda: $now"
	[[ " $now" == *" io_submit:"* ]] || fail "the overlay shows no io_submit without a reapply: $now"
	[ "$(grep -c '"type":"live_reapply"' "$WORKDIR/audit.jsonl")" = 1 ] || fail "said more than once"
	# a restart is a new QEMU built from the persistent XML (threads): the
	# record of the old one is dropped, nothing is reapplied
	stop_writes
	virsh -q -c "$URI" destroy "$DOM" >/dev/null && virsh -q -c "$URI" start "$DOM" >/dev/null ||
		fail "restart of $DOM failed"
	start_writes
	now=$(syscalls_of vda)
	echo "  after a restart, vda: $now"
	[[ " $now" != *" io_submit:"* ]] || fail "vda submits with io_submit after a restart on threads: $now"
	"$AIOGUARD" advise -c "$URI" --domain "$DOM" --state-dir "$STATE" --json |
		python3 -c 'import json,sys; d=[d for d in json.load(sys.stdin)["disks"] if d["target"]=="vda"][0]; assert d["io"]=="threads" and d["io_live_xml"]=="threads" and not d["io_switched_live"], d' ||
		fail "advise after the restart"
	[ -z "$(ls "$STATE/live/")" ] || fail "the earlier QEMU's record is left: $(ls "$STATE/live/")"
	sleep 4   # two windows of the agent's
	[ "$(grep -c '"type":"live_reapply"' "$WORKDIR/audit.jsonl")" = 1 ] || fail "a reapply after the restart"
	echo "  after a restart: the record dropped, advise says threads from the XML, nothing reapplied"
	stop_agent
	stop_writes
	remove_domain
}

for s in "${@:-swap refused block grow killed agent snapshot snapshot_dryrun}"; do
	for one in $s; do "scenario_$one"; done
done
echo "PASS"
