#!/usr/bin/env bash
# Fault table, observer rows (docs/RELIABILITY.md), with the agent (dry-run)
# and `aioguard watch` attached to one running domain on the shared libvirtd:
#   5. the image file deleted, then replaced by a new file (new inode),
#      while QEMU keeps writing to the old one: the agent drops the disk and
#      decides nothing on the stale (dev, ino); once QEMU opens the new file
#      (domain restarted) the disk is tracked afresh;
#   6. BPF ring buffer overrun: both consumers paused (SIGSTOP, as a long
#      save/restore or a slow libvirt call pauses the agent's loop) while
#      QEMU stalls thousands of times: lost events counted and reported,
#      both go on.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fault_lib.sh"
need_root
make_workdir
loopfs_make ext4 1024
libvirtd_start
source "$(dirname "$0")/agent_lib.sh"

new_domain
IMG=$LOOP_MNT/sparse.qcow2
# threshold 10 us: every submission that touches the disk is a stall (row 6)
run_agent --dry-run --threshold-us 10 --events "$WORKDIR/agent-events.jsonl"
URL=$(agent_metrics_url "$WORKDIR/agent.err")
"$AIOGUARD" watch -c "$URI" --json --interval 1 --threshold-us 10 \
	>"$WORKDIR/watch.json" 2>"$WORKDIR/watch.err" &
WATCH=$!
at_exit "kill $WATCH"
alive() {
	kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORKDIR/agent.err"; fail "agent died: $1"; }
	kill -0 "$WATCH" 2>/dev/null || { cat "$WORKDIR/watch.err"; fail "watch died: $1"; }
}
# wait_watched N: until the agent's gauge says N disks
wait_watched() {
	local i v=
	for i in $(seq 100); do
		v=$(metric "$URL" aioguard_watched_disks)
		[ "$v" = "$1" ] && return 0
		alive "waiting for $1 watched disks"
		sleep 0.2
	done
	fail "aioguard_watched_disks is $v, not $1"
}
decisions() { grep -c '"type":"decision"' "$WORKDIR/audit.jsonl" 2>/dev/null || true; }
# stalls_on FILE INO [DOMAIN]: stall events of that inode in a JSON lines file
stalls_on() {
	python3 - "$@" <<'PY'
import json, sys
path, ino = sys.argv[1], int(sys.argv[2])
dom = sys.argv[3] if len(sys.argv) > 3 else None
n = 0
for line in open(path):
    try:
        o = json.loads(line)
    except ValueError:
        continue   # the last line may be half written
    if o.get("type") == "stall" and o.get("ino") == ino and (dom is None or o.get("domain") == dom):
        n += 1
print(n)
PY
}

# writes_until_decidable INO: extending writes until the agent's events
# show stalls on inode INO in 3 intervals' time and in numbers that make a
# decision were the disk tracked (--stalls-per-window 3, --bad-windows 2,
# windows of 2 s): a stall count, not a fixed sleep, for slow (TCG) QEMU.
writes_until_decidable() {
	local t0 i r=
	t0=$(date +%s.%N)
	start_writes
	for i in $(seq 300); do
		r=$(python3 - "$WORKDIR/agent-events.jsonl" "$1" "$t0" <<'PY'
import json, sys
path, ino, t0 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ts = []
for line in open(path):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if o.get("type") == "stall" and o.get("ino") == ino and o["ts"] >= t0:
        ts.append(o["ts"])
print("ok" if len(ts) >= 12 and max(ts) - min(ts) >= 6 else "%d stalls over %.1f s" % (len(ts), max(ts) - min(ts) if ts else 0))
PY
)
		[ "$r" = ok ] && break
		alive "writing to inode $1"
		sleep 0.2
	done
	stop_writes
	[ "$r" = ok ] || fail "after 60 s of writes, on inode $1: $r (want 12 stalls over 6 s)"
}

wait_watched 2
old_ino=$(stat -c %i "$IMG")

say "row 5: the image deleted while QEMU writes to it"
rm "$IMG"
wait_watched 1
writes_until_decidable "$old_ino"
alive "after the image was deleted"
n=$(stalls_on "$WORKDIR/agent-events.jsonl" "$old_ino")
[ "$n" -gt 0 ] || fail "no stall seen on the deleted inode: the scenario proves nothing"
[ "$(decisions)" -eq 0 ] || fail "a decision on a deleted image: $(cat "$WORKDIR/audit.jsonl")"
echo "  $n stalls on the deleted inode $old_ino seen by the agent, no decision; watched disks 1"

say "row 5: a new file (new inode) at the image's path, QEMU still on the old one"
qemu-img create -q -f qcow2 "$IMG" 2G
new_ino=$(stat -c %i "$IMG")
[ "$new_ino" != "$old_ino" ] || fail "same inode"
wait_watched 2
writes_until_decidable "$old_ino"
alive "after the image was replaced"
[ "$(decisions)" -eq 0 ] || fail "a decision on a stale (dev, ino): $(cat "$WORKDIR/audit.jsonl")"
[ "$(stalls_on "$WORKDIR/agent-events.jsonl" "$new_ino")" -eq 0 ] || fail "stalls on the new inode before QEMU opened it"
echo "  new inode $new_ino tracked, stalls still on the old one, no decision"

say "row 5: domain restarted on the new file: tracked afresh"
virsh -q -c "$URI" destroy "$DOM" >/dev/null
virsh -q -c "$URI" start "$DOM" >/dev/null
rm -f "$WORKDIR/write-offset"
start_writes
wait_audit dry-run 60
stop_writes
alive "after the domain restarted"
python3 - "$WORKDIR/audit.jsonl" "$IMG" <<'PY' || fail "decisions after the restart"
import json, sys
ok = False
for line in open(sys.argv[1]):
    o = json.loads(line)
    print("  decision: %s %s %s -> %s: %s (%s)" % (o["target"], o["action"], o["from"], o["to"], o["result"], o["reason"][:70]))
    if o["result"] not in ("dry-run", "advise-only"):
        sys.exit("unexpected result " + o["result"])
    ok |= o["result"] == "dry-run" and o["source"] == sys.argv[2]
if not ok:
    sys.exit("no dry-run decision on " + sys.argv[2])
PY
n=$(stalls_on "$WORKDIR/watch.json" "$new_ino" "$DOM")
[ "$n" -gt 0 ] || fail "watch did not name the new inode's stalls after $DOM"
echo "  one dry-run decision on the new inode; watch named $n of its stalls after $DOM"

say "row 6: ring buffer overrun while the agent and watch are paused"
lost0=$(metric "$URL" aioguard_bpf_events_lost_total)
# 1500 small writes to new clusters, through one virsh session: ~5 stalls
# each at 10 us, more than the 256 KiB ring buffer holds (~2500 events)
for i in $(seq 0 1499); do
	echo "qemu-monitor-command $DOM --hmp 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend \"aio_write -P 9 $((1200 * 1024 + i * 128))k 64k\"'"
done >"$WORKDIR/burst"
kill -STOP "$AGENT_PID" "$WATCH"
at_exit "kill -CONT $AGENT_PID $WATCH"
t0=$(date +%s%N)
virsh -q -c "$URI" <"$WORKDIR/burst" >/dev/null || fail "burst of writes"
t1=$(date +%s%N)
kill -CONT "$AGENT_PID" "$WATCH"
# the agent publishes its metrics every interval (2 s)
for _ in $(seq 150); do
	lost=$(metric "$URL" aioguard_bpf_events_lost_total)
	[ "${lost%.*}" -gt "${lost0%.*}" ] && break
	alive "after the ring buffer overran"
	sleep 0.2
done
alive "after the ring buffer overran"
echo "  paused $(((t1 - t0) / 1000000)) ms: aioguard_bpf_events_lost_total $lost0 -> $lost"
[ "${lost%.*}" -gt "${lost0%.*}" ] || fail "no lost event counted by the agent within 30 s"
n0=$(stalls_on "$WORKDIR/agent-events.jsonl" "$new_ino")
start_writes
for _ in $(seq 150); do
	n1=$(stalls_on "$WORKDIR/agent-events.jsonl" "$new_ino")
	[ "$n1" -gt "$n0" ] && break
	alive "after the overrun"
	sleep 0.2
done
stop_writes
alive "after the overrun"
[ "$n1" -gt "$n0" ] || fail "the agent takes no stall events after the overrun (30 s of writes)"
kill -INT "$WATCH"
rc=0
wait "$WATCH" || rc=$?
[ "$rc" -eq 0 ] || fail "watch exited $rc"
summary=$(grep '"type":"summary"' "$WORKDIR/watch.json") || fail "no summary from watch"
wlost=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["lost_events"])' "$summary")
echo "  watch summary: lost_events $wlost; agent took $((n1 - n0)) more stall events afterwards"
[ "$wlost" -gt 0 ] || fail "watch reports no lost event"
stop_agent
grep -q "stopping; [1-9][0-9]* stall events lost" "$WORKDIR/agent.err" || fail "the agent's last line does not count the lost events"
remove_domain
echo "PASS"
