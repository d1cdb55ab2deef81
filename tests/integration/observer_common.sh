# shellcheck shell=bash
# The observer against a real kernel, on one loop-mounted filesystem: sourced
# by observer_ext4.sh and observer_xfs.sh after setting FS. qemu-img bench
# writes fresh sparse and preallocated images while `aioguard watch --comm
# qemu-img --json` runs; the JSON lines must put allocation time and stalls
# on the sparse image and (by a ratio, not a timing) far less on the
# preallocated one, each syscall under its own name, and two images written
# at once by two processes apart. Other qemu-img processes on the machine
# are ignored: every check selects this test's image paths.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The kernel matrix (tests/kernel-matrix) runs this file inside guest kernels
# under TCG: fewer writes (OBS_N), chosen phases (OBS_PHASES) and a forced
# hook kind (OBS_WATCH_ARGS, e.g. "--hooks raw").
N=${OBS_N:-20000} # 4 KiB writes per bench run
STRIDE=16384    # one write per 16 KiB: each lands in a hole of a sparse image
THRESHOLD_US=20 # low, so that stalls occur on a loop device at all

[ -x "$AIOGUARD" ] || fail "AIOGUARD=$AIOGUARD is not an executable"
[ "$(id -u)" -eq 0 ] || fail "needs root (BPF, loop devices, mount)"
[ -r /sys/kernel/btf/vmlinux ] || skip "kernel without BTF (CONFIG_DEBUG_INFO_BTF)"
grep -qw "$FS" /proc/filesystems || modprobe "$FS" 2>/dev/null ||
	skip "kernel without $FS support"
[ -e /dev/loop-control ] || modprobe loop 2>/dev/null || skip "kernel without loop devices"
command -v qemu-img >/dev/null || fail "qemu-img missing (qemu-utils)"

make_workdir
loopfs_make "$FS" 3072
MNT=$LOOP_MNT
OUT=$WORKDIR/out
mkdir -p "$OUT"

# watch_start NAME: aioguard watch in the background until watch_stop.
watch_start() {
	local name=$1
	# shellcheck disable=SC2086
	"$AIOGUARD" watch --comm qemu-img --json --interval 1 --threshold-us "$THRESHOLD_US" \
		${OBS_WATCH_ARGS:-} >"$OUT/$name.json" 2>"$OUT/$name.err" &
	WATCH_PID=$!
	at_exit "kill $WATCH_PID"
	for _ in $(seq 600); do   # 60 s: loading takes seconds under TCG
		if grep -q '^aioguard: attached:' "$OUT/$name.err"; then
			grep '^aioguard: attached:' "$OUT/$name.err"
			return 0
		fi
		kill -0 "$WATCH_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$OUT/$name.err" >&2
	fail "aioguard watch did not attach"
}

# SIGINT ends it cleanly, with the last interval and the summary.
watch_stop() {
	kill -INT "$WATCH_PID"
	wait "$WATCH_PID" || fail "aioguard watch exited with $?"
}

images() {
	rm -f "$MNT"/*.raw "$MNT"/*.qcow2
	qemu-img create -q -f raw "$MNT/sparse.raw" 1G
	qemu-img create -q -f raw -o preallocation=full "$MNT/full.raw" 1G
	qemu-img create -q -f qcow2 "$MNT/grow.qcow2" 1G
	sync
}

bench() {  # MODE IMAGE [COUNT]
	local fmt=raw
	[[ $2 == *.qcow2 ]] && fmt=qcow2
	qemu-img bench -w -t none -i "$1" -c "${3:-$N}" -d 32 -s 4k -S "$STRIDE" -f "$fmt" "$2" >/dev/null
}

# check NAME PYTHON: run assertions on the JSON lines of watch NAME. The
# python gets rows (disk lines), stalls, summary and helpers; it raises.
check() {
	python3 - "$OUT/$1.json" "$MNT" "$N" "$2" <<'EOF'
import json, sys
path, mnt, N, body = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
lines = [json.loads(l) for l in open(path)]
rows = [l for l in lines if l["type"] == "disk"]
stalls = [l for l in lines if l["type"] == "stall"]
summary = [l for l in lines if l["type"] == "summary"]
assert len(summary) == 1 and lines[-1]["type"] == "summary", "summary must end the stream"

def of(image, syscall=None):
    src = f"{mnt}/{image}"
    return [r for r in rows if r["source"] == src and syscall in (None, r["syscall"])]

def total(image, field, syscall=None):
    return sum(r[field] for r in of(image, syscall))

def syscalls(image):
    return {r["syscall"] for r in of(image)}

def stall_sum(image, field):
    return sum(s[field] for s in stalls if s["source"] == f"{mnt}/{image}")

def much_less(small, big, what, ratio=20):
    print(f"  {what}: {small:.0f} vs {big:.0f}")
    assert big > 0, f"{what}: nothing measured where it must be"
    assert small * ratio <= big, f"{what}: {small} is not {ratio}x below {big}"

exec(body)
EOF
}

native() {
	say "$FS: io='native' (io_submit) on sparse, preallocated and growing images"
	images
	watch_start native
	for img in sparse.raw full.raw grow.qcow2; do bench native "$MNT/$img"; done
	watch_stop
	check native '
assert total("sparse.raw", "requests", "io_submit") >= N, "every write counted"
assert total("sparse.raw", "bytes", "io_submit") == N * 4096, "bytes of the writes"
assert total("full.raw", "requests", "io_submit") >= N
much_less(total("full.raw", "alloc_us"), total("sparse.raw", "alloc_us"),
          "allocation time, preallocated vs sparse (us)")
much_less(total("full.raw", "alloc_us"), sum(total("grow.qcow2", "alloc_us", s) for s in syscalls("grow.qcow2")),
          "allocation time, preallocated raw vs growing qcow2 (us)")
much_less(stall_sum("full.raw", "alloc_us"), stall_sum("sparse.raw", "alloc_us"),
          "allocation time inside stalls, preallocated vs sparse (us)")
s = [x for x in stalls if x["source"] == f"{mnt}/sparse.raw" and x["alloc_us"] > 0]
assert s and all(x["syscall"] == "io_submit" and x["thread"] for x in s)
assert all(r["p50_us"] <= r["p99_us"] <= r["max_us"] for r in rows)
print("  stalls with allocation on sparse.raw:", len(s))
'
}

threads() {
	say "$FS: io='threads' (worker pool) shows under pwrite64/pwritev, not io_submit"
	images
	watch_start threads
	for img in sparse.raw full.raw; do bench threads "$MNT/$img"; done
	watch_stop
	check threads '
for img in ("sparse.raw", "full.raw"):
    assert syscalls(img) & {"pwrite64", "pwritev", "pwritev2"}, syscalls(img)
    assert "io_submit" not in syscalls(img)
w = lambda img: sum(total(img, "requests", s) for s in ("pwrite64", "pwritev", "pwritev2"))
assert w("sparse.raw") >= N and w("full.raw") >= N
much_less(total("full.raw", "alloc_us"), total("sparse.raw", "alloc_us"),
          "allocation time in worker threads, preallocated vs sparse (us)")
assert total("sparse.raw", "offcpu_us") > 0, "synchronous writes wait off CPU"
'
}

io_uring() {
	if [ "$(sysctl -n kernel.io_uring_disabled 2>/dev/null || echo 0)" = 2 ]; then
		say "$FS: io_uring disabled by this kernel (kernel.io_uring_disabled=2): not checked"
		return
	fi
	say "$FS: io='io_uring' shows under io_uring_enter"
	images
	watch_start io_uring
	for img in sparse.raw full.raw; do bench io_uring "$MNT/$img"; done
	watch_stop
	check io_uring '
for img in ("sparse.raw", "full.raw"):
    assert "io_uring_enter" in syscalls(img), syscalls(img)
    assert total(img, "requests", "io_uring_enter") >= N, "every request counted"
    assert total(img, "bytes", "io_uring_enter") == N * 4096
'
}

two_processes() {
	say "$FS: two processes writing two sparse images at once stay apart"
	rm -f "$MNT"/*.raw
	qemu-img create -q -f raw "$MNT/a.raw" 1G
	qemu-img create -q -f raw "$MNT/b.raw" 1G
	watch_start two
	local na=$((N * 3 / 5)) nb=$((N * 7 / 20))
	bench native "$MNT/a.raw" $na &
	local a=$!
	bench native "$MNT/b.raw" $nb &
	local b=$!
	wait $a $b
	watch_stop
	check two "
assert total('a.raw', 'requests', 'io_submit') == $na, total('a.raw', 'requests', 'io_submit')
assert total('b.raw', 'requests', 'io_submit') == $nb, total('b.raw', 'requests', 'io_submit')
assert total('a.raw', 'bytes', 'io_submit') == $na * 4096, total('a.raw', 'bytes', 'io_submit')
assert total('b.raw', 'bytes', 'io_submit') == $nb * 4096, total('b.raw', 'bytes', 'io_submit')
pids = {img: {s['pid'] for s in stalls if s['source'] == f'{mnt}/{img}'} for img in ('a.raw', 'b.raw')}
assert not (pids['a.raw'] & pids['b.raw']), pids
"
}

usage_errors() {
	say "clear errors"
	local err
	err=$("$AIOGUARD" watch --pid 999999999 2>&1 >/dev/null) && fail "bad --pid accepted"
	[[ $err == *"no process with pid"* ]] || fail "unclear error: $err"
	err=$("$AIOGUARD" watch --interval x 2>&1 >/dev/null) && fail "bad --interval accepted"
	[[ $err == *"--interval"* ]] || fail "unclear error: $err"
	grep -q -- '--threshold-us' <<<"$("$AIOGUARD" watch --help)" || fail "--help lacks options"
}

for phase in ${OBS_PHASES:-usage_errors native threads io_uring two_processes}; do
	"$phase"
done
echo "PASS: observer on $FS"
