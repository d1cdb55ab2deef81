#!/bin/bash
# `aioguard watch` without --pid/--comm: it finds the QEMU of a running
# libvirt domain (KVM, or TCG without /dev/kvm) and names its disks
# domain/target. The domain has a sparse qcow2 (vda) and a preallocated raw
# (vdb) on a loop ext4, both io='native'; writes go through QEMU's own block
# layer (HMP qemu-io), so they are submitted with io_submit by QEMU itself.
# A stall is io_submit's (the thread that submits on io='native'); the pool's
# fdatasync and fallocate are pool waits, in lines of their own.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -x "$AIOGUARD" ] || fail "AIOGUARD=$AIOGUARD is not an executable"
[ "$(id -u)" -eq 0 ] || fail "needs root (BPF, loop devices, libvirtd)"
[ -r /sys/kernel/btf/vmlinux ] || skip "kernel without BTF (CONFIG_DEBUG_INFO_BTF)"

make_workdir
loopfs_make ext4 1024
libvirtd_start
DOM=aioguard-observer-$$
qemu-img create -q -f qcow2 "$LOOP_MNT/sparse.qcow2" 512M
qemu-img create -q -f raw -o preallocation=full "$LOOP_MNT/full.raw" 256M
chown -R libvirt-qemu: "$LOOP_MNT" 2>/dev/null || true
domain_define_start "$DOM" "$(domain_xml "$DOM" \
	"$(file_disk "$LOOP_MNT/sparse.qcow2" vda qcow2 native)" \
	"$(file_disk "$LOOP_MNT/full.raw" vdb raw native)")"

"$AIOGUARD" watch --json --interval 1 --threshold-us 50 >"$WORKDIR/watch.json" 2>"$WORKDIR/watch.err" &
WATCH=$!
at_exit "kill $WATCH"
for _ in $(seq 300); do
	grep -q '^aioguard: attached:' "$WORKDIR/watch.err" && break
	kill -0 "$WATCH" 2>/dev/null || { cat "$WORKDIR/watch.err" >&2; fail "watch exited"; }
	sleep 0.1
done
grep -q '^aioguard: attached:' "$WORKDIR/watch.err" || { cat "$WORKDIR/watch.err" >&2; fail "watch did not attach in 30 s"; }

# Under load the first refresh of the domain list may come an interval late:
# a warm-up write to each disk, until both show up in the stream.
for _ in $(seq 50); do
	qemu_io "$DOM" 0 "write -P 0x11 500M 64k" >/dev/null
	qemu_io "$DOM" 1 "write -P 0x11 250M 64k" >/dev/null
	[ "$(grep -c "\"domain\":\"$DOM\"" "$WORKDIR/watch.json" 2>/dev/null || true)" -ge 2 ] && break
	sleep 0.3
done

say "writes through QEMU to vda (sparse qcow2) and vdb (preallocated raw)"
for i in $(seq 0 15); do
	qemu_io "$DOM" 0 "write -P 0x5a $((i * 16))M 4M" >/dev/null
	qemu_io "$DOM" 1 "write -P 0x5a $((i * 16))M 4M" >/dev/null
done
# until watch's interval lines (1 s) carry the writes to both disks
for _ in $(seq 150); do
	python3 - "$WORKDIR/watch.json" "$DOM" <<'EOF' && break
import json, sys
path, dom = sys.argv[1:]
b = {"vda": 0, "vdb": 0}
for line in open(path):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if o["type"] == "disk" and o["domain"] == dom and o["syscall"] == "io_submit" and o["target"] in b:
        b[o["target"]] += o["bytes"]
sys.exit(min(b.values()) < 16 * 4 << 20)
EOF
	kill -0 "$WATCH" 2>/dev/null || { cat "$WORKDIR/watch.err" >&2; fail "watch exited"; }
	sleep 0.2
done
kill -INT "$WATCH"
wait "$WATCH" || fail "aioguard watch exited with $?"

python3 - "$WORKDIR/watch.json" "$DOM" "$LOOP_MNT" <<'EOF'
import json, sys
path, dom, mnt = sys.argv[1:]
lines = [json.loads(l) for l in open(path)]
assert lines[-1]["type"] == "summary"
rows = [l for l in lines if l["type"] == "disk" and l["domain"] == dom]
def total(target, field):
    return sum(r[field] for r in rows if r["target"] == target and r["syscall"] == "io_submit")
for target, image in (("vda", "sparse.qcow2"), ("vdb", "full.raw")):
    assert all(r["source"] == f"{mnt}/{image}" for r in rows if r["target"] == target)
    assert total(target, "bytes") >= 16 * 4 << 20, (target, total(target, "bytes"))
print(f"  alloc_us: vda {total('vda', 'alloc_us'):.0f}, vdb {total('vdb', 'alloc_us'):.0f}")
assert total("vda", "alloc_us") > 0
assert total("vdb", "alloc_us") * 20 <= total("vda", "alloc_us")

# A stall means one thing: on io='native' only io_submit blocks the guest.
for r in rows:
    assert r["io_mode"] == "native", r
    assert r["guest_blocking"] == (r["syscall"] == "io_submit"), r
    assert (r["pool_waits"] if r["guest_blocking"] else r["stalls"]) == 0, r
mine = [l for l in lines if l["type"] in ("stall", "pool_wait") and l["domain"] == dom]
stalls = [l for l in mine if l["type"] == "stall"]
pool = [l for l in mine if l["type"] == "pool_wait"]
assert stalls and all(l["syscall"] == "io_submit" and l["io_mode"] == "native" for l in stalls), \
    {l["syscall"] for l in stalls}
assert all(l["syscall"] not in ("io_submit", "io_uring_enter") for l in pool), {l["syscall"] for l in pool}
by = {}
for r in rows:
    if not r["guest_blocking"]:
        by[r["syscall"]] = by.get(r["syscall"], 0) + r["pool_waits"]
print(f"  stalls (io_submit): {sum(r['stalls'] for r in rows)}; pool waits: "
      + (", ".join(f"{k} {v}" for k, v in sorted(by.items())) or "none"))
if pool:
    print("  a pool wait line:", json.dumps(pool[0]))
print("  a stall line:", json.dumps(stalls[0]))
EOF
echo "PASS: observer names libvirt disks"
