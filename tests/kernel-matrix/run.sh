#!/bin/bash
# One kernel of the matrix: fetch Debian's kernel package (not installed),
# build a small initramfs from its own modules, boot it under QEMU (KVM where
# /dev/kvm exists, TCG otherwise) with this machine's / shared read-only, and
# run guest.sh there: the observer tests on ext4 and xfs, each fallback hook
# kind forced, the cost against the bpftrace peer, and lockdown raised to
# integrity and confidentiality. Exit 0 when every scenario passed.
#
# Usage: run.sh META   (linux-image-amd64: Debian 12's 6.1;
#                       linux-image-6.12-amd64: bookworm's 6.12)
# Env: AIOGUARD (the binary), AIOGUARD_SRCDIR, KM_CACHE (default
# /var/cache/aioguard/kernel-matrix), KM_OBS_N (writes per bench, default
# 4000), KM_SCENARIOS (default all but aiomodes; space or comma list),
# KM_TIMEOUT (s, default 2400), KM_KEEP=1 keeps the results dir,
# KM_AIOMODES_ROUNDS/KM_AIOMODES_OPS (scenario aiomodes: the reduced
# tools/bench-aio-modes matrix, ~15 min under TCG), KM_AIOMODES_OUT=DIR
# copies its results (runs.jsonl, report.md) there.
set -euo pipefail
META=${1:?usage: run.sh linux-image-amd64|linux-image-6.12-amd64}
HERE=$(cd "$(dirname "$0")" && pwd)
SRCDIR=${AIOGUARD_SRCDIR:-$(cd "$HERE/../.." && pwd)}
AIOGUARD=${AIOGUARD:-$SRCDIR/build/user/aioguard}
CACHE=${KM_CACHE:-/var/cache/aioguard/kernel-matrix}/$META

fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "needs root (loop devices and BPF inside the guest)"
[ -x "$AIOGUARD" ] || fail "AIOGUARD=$AIOGUARD is not an executable"
command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 missing (tools/install-deps)"

echo "--- fetching $META into $CACHE"
KVER=$("$HERE/fetch-kernel.sh" "$CACHE" "$META" | tail -n 1)
echo "--- kernel $KVER"

OUT=$(mktemp -d /var/tmp/aioguard-km.XXXXXX)
chmod 755 "$OUT"
mkdir "$OUT/share"
QEMU_PID=
cleanup() {
	# meson stops a test that overruns with SIGTERM: QEMU goes with it
	# (timeout passes the signal on).
	[ -z "$QEMU_PID" ] || kill "$QEMU_PID" 2>/dev/null || true
	[ -n "${KM_KEEP:-}" ] || rm -rf "$OUT"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
"$HERE/build-initramfs.sh" "$CACHE" "$OUT/initramfs.cpio.gz"
cat >"$OUT/share/env" <<ENV
export AIOGUARD='$AIOGUARD' AIOGUARD_SRCDIR='$SRCDIR' KM_OUT=/mnt/km-out
export KM_OBS_N='${KM_OBS_N:-4000}' KM_SCENARIOS='${KM_SCENARIOS:-}'
export KM_AIOMODES_ROUNDS='${KM_AIOMODES_ROUNDS:-}' KM_AIOMODES_OPS='${KM_AIOMODES_OPS:-}'
ENV
: >"$OUT/share/results"

if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	accel=(-accel kvm -cpu host)
else
	accel=(-accel tcg,thread=multi -cpu max)
fi
echo "--- booting with ${accel[*]} (serial console: $OUT/serial.log)"
t0=$(date +%s)
rc=0
timeout "${KM_TIMEOUT:-2400}" qemu-system-x86_64 "${accel[@]}" -smp 2 -m 4G \
	-machine q35 -nographic -no-reboot \
	-kernel "$CACHE/kern/boot/vmlinuz-$KVER" -initrd "$OUT/initramfs.cpio.gz" \
	-append "console=ttyS0 panic=-1 quiet loglevel=4" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-virtfs local,path="$OUT/share",mount_tag=outdir,security_model=none \
	-serial file:"$OUT/serial.log" -monitor none -display none </dev/null &
QEMU_PID=$!
wait "$QEMU_PID" || rc=$?
QEMU_PID=
echo "--- guest ran $(($(date +%s) - t0)) s, qemu exit $rc"
cat "$OUT/share/guest.log" 2>/dev/null || true
if [ -n "${KM_AIOMODES_OUT:-}" ] && [ -s "$OUT/share/aiomodes/runs.jsonl" ]; then
	mkdir -p "$KM_AIOMODES_OUT"
	cp "$OUT/share/aiomodes/"{runs.jsonl,report.md} "$KM_AIOMODES_OUT/" &&
		# the guest cannot tell KVM from TCG: its meta says how it ran
		python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); m["accel"] = sys.argv[2]
json.dump(m, open(sys.argv[3], "w"))' "$OUT/share/aiomodes/meta.json" "${accel[1]%%,*}" \
			"$KM_AIOMODES_OUT/meta.json" &&
		echo "--- aiomodes results in $KM_AIOMODES_OUT"
fi

# Judge: every scenario recorded with exit 0; 77 only for a lockdown level
# this kernel cannot set (no lockdown LSM).
status=0
python3 - "$OUT/share" "$KVER" <<'PY' || status=$?
import json, os, sys
share, kver = sys.argv[1], sys.argv[2]
results = [l.split() for l in open(os.path.join(share, "results")) if l.strip()]
def log(name, tail=None):
    try:
        lines = open(os.path.join(share, name + ".log"), errors="replace").read().splitlines()
    except OSError:
        return []
    return lines[-tail:] if tail else lines
bad = []
print(f"\n| scenario on {kver} | exit | seconds |\n|---|---|---|")
for name, rc, secs in results:
    print(f"| {name} | {rc} | {secs} |")
    if rc != "0" and not (rc == "77" and name.startswith("lockdown-")):
        bad.append(name)
for name, _, _ in results:
    if name.startswith("hooks"):
        print(f"{name}:", *[l for l in log(name) if "attached" in l or "warning" in l or "error" in l.lower()], sep="\n  ")
if os.path.exists(os.path.join(share, "pair.json")):
    print("pair (watch --json, sparse qcow2 then preallocated raw, 2000 x 64 KiB):")
    for l in open(os.path.join(share, "pair.json")):
        if '"type":"disk"' in l:
            print("  " + l.strip())
for l in log("cost"):
    if "per operation" in l or "ratio" in l:
        print("cost:", l)
for name in bad:
    print(f"\n=== {name} failed; its log (last 60 lines):")
    print("\n".join(log(name, 60)))
if not results:
    bad.append("(no scenario ran: see the serial console)")
sys.exit(1 if bad else 0)
PY
if [ $status -ne 0 ]; then
	echo "--- serial console (last 40 lines):"
	tail -n 40 "$OUT/serial.log" || true
fi
exit $status
