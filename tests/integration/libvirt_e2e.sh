#!/usr/bin/env bash
# advise + set-io against a real libvirtd and a running KVM domain with one
# sparse and one preallocated image on a loop-mounted ext4.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root
make_workdir
loopfs_make ext4 512
libvirtd_start

URI=qemu:///system
DOM=aioguard-e2e-$$
truncate -s 256M "$LOOP_MNT/sparse.raw"
fallocate -l 256M "$LOOP_MNT/prealloc.raw"
domain_define_start "$DOM" "$(domain_xml "$DOM" \
	"$(file_disk "$LOOP_MNT/sparse.raw" vda raw native)" \
	"$(file_disk "$LOOP_MNT/prealloc.raw" vdb raw native)")"

say "advise: sparse -> threads, preallocated -> native"
"$AIOGUARD" advise -c "$URI" --domain "$DOM" --json >"$WORKDIR/advise.json"
python3 - "$WORKDIR/advise.json" <<'PY'
import json, sys
disks = {d["target"]: d for d in json.load(open(sys.argv[1]))["disks"]}
assert disks["vda"]["sparse"] is True and disks["vda"]["recommended_io"] == "threads", disks["vda"]
assert disks["vdb"]["sparse"] is False and disks["vdb"]["recommended_io"] == "native", disks["vdb"]
assert disks["vda"]["io"] == "native" and disks["vda"]["active"] is True
print("advise ok:", disks["vda"]["reason"])
PY
"$AIOGUARD" advise -c "$URI" --domain "$DOM"

virsh -c "$URI" dumpxml --inactive "$DOM" >"$WORKDIR/before.xml"

say "set-io --dry-run changes nothing"
"$AIOGUARD" set-io -c "$URI" "$DOM" vda threads --dry-run --backup-dir "$WORKDIR/backups" >"$WORKDIR/dry.out"
grep -q "^+.*io='threads'" "$WORKDIR/dry.out" || fail "dry-run printed no diff: $(cat "$WORKDIR/dry.out")"
virsh -c "$URI" dumpxml --inactive "$DOM" | cmp -s - "$WORKDIR/before.xml" || fail "dry-run changed the XML"
[ ! -e "$WORKDIR/backups" ] || [ -z "$(ls -A "$WORKDIR/backups")" ] || fail "dry-run wrote a backup"

say "set-io refuses bad input with one line and no change"
for args in "$DOM vdz threads" "no-such-domain-$$ vda threads" "$DOM vda turbo"; do
	# shellcheck disable=SC2086
	if "$AIOGUARD" set-io -c "$URI" $args --backup-dir "$WORKDIR/backups" >/dev/null 2>"$WORKDIR/err"; then
		fail "set-io $args succeeded"
	fi
	[ "$(wc -l <"$WORKDIR/err")" -eq 1 ] || fail "set-io $args: expected one line, got: $(cat "$WORKDIR/err")"
	echo "  set-io $args -> $(cat "$WORKDIR/err")"
done
virsh -c "$URI" dumpxml --inactive "$DOM" | cmp -s - "$WORKDIR/before.xml" || fail "a refused set-io changed the XML"

say "set-io --apply save-restore switches the running QEMU"
"$AIOGUARD" set-io -c "$URI" "$DOM" vda threads --apply save-restore --backup-dir "$WORKDIR/backups"
[ "$(virsh -c "$URI" domstate "$DOM" | head -1)" = running ] || fail "domain not running after save-restore"
pid=$(cat "/run/libvirt/qemu/$DOM.pid")
cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline")
grep -q "\"filename\":\"$LOOP_MNT/sparse.raw\".*\"aio\":\"threads\"" <<<"$cmdline" ||
	fail "QEMU does not run the sparse disk with aio=threads: $cmdline"
grep -q "\"filename\":\"$LOOP_MNT/prealloc.raw\".*\"aio\":\"native\"" <<<"$cmdline" ||
	fail "QEMU's preallocated disk lost aio=native: $cmdline"
for flags in "" --inactive; do
	[ "$(disk_io "$URI" "$DOM" vda $flags)" = threads ] || fail "dumpxml $flags: vda not threads"
	[ "$(disk_io "$URI" "$DOM" vdb $flags)" = native ] || fail "dumpxml $flags: vdb changed"
done
backup=$(ls "$WORKDIR"/backups/*.xml)
[ "$(echo "$backup" | wc -l)" -eq 1 ] || fail "expected one backup, got: $backup"
[ "$(stat -c %a "$backup")" = 600 ] || fail "backup mode is $(stat -c %a "$backup")"
same_xml "$backup" "$WORKDIR/before.xml" || {
	diff "$WORKDIR/before.xml" "$backup" || true
	fail "backup differs from the XML before the change"
}
grep -qv '\.xml$' <<<"$(ls "$WORKDIR"/backups/)" && fail "save file left behind: $(ls "$WORKDIR"/backups)"

say "advise after the switch: vda already on threads"
"$AIOGUARD" advise -c "$URI" --domain "$DOM"
echo "PASS"
