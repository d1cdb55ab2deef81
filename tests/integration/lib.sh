# shellcheck shell=bash
# Shared set-up for integration tests and the demo: real loop filesystems, a
# real libvirtd, real KVM domains. Everything made here is undone by cleanup.
# Source it, then call the helpers; `skip REASON` exits 77 (meson's skip).

AIOGUARD=${AIOGUARD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/user/aioguard}
LIB_CLEANUP=()

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
say() { echo "--- $*"; }

at_exit() { LIB_CLEANUP=("$*" "${LIB_CLEANUP[@]}"); }
run_cleanup() {
	local c
	for c in "${LIB_CLEANUP[@]}"; do eval "$c" >/dev/null 2>&1 || true; done
	LIB_CLEANUP=()
}
trap run_cleanup EXIT

need_root() { [ "$(id -u)" -eq 0 ] || skip "needs root (loop devices, BPF, libvirtd)"; }

# A work dir QEMU (running as libvirt-qemu) can traverse.
make_workdir() {
	WORKDIR=$(mktemp -d /var/tmp/aioguard-test.XXXXXX)
	chmod 755 "$WORKDIR"
	at_exit "rm -rf '$WORKDIR'"
}

# loopfs_make FSTYPE SIZE_MB -> sets LOOP_MNT (not echoed: a $(…) subshell
# would lose the cleanup it registers)
loopfs_make() {
	local fstype=$1 size_mb=$2 img mnt dev
	img="$WORKDIR/$fstype.backing"
	mnt="$WORKDIR/$fstype"
	truncate -s "${size_mb}M" "$img"
	dev=$(losetup -f --show "$img") || fail "losetup failed"
	at_exit "losetup -d '$dev'"
	case "$fstype" in
	ext4) mkfs.ext4 -q -F "$dev" >/dev/null ;;
	xfs) mkfs.xfs -q -f "$dev" >/dev/null ;;
	*) fail "unknown fstype $fstype" ;;
	esac
	mkdir -p "$mnt"
	mount "$dev" "$mnt" || fail "mount $dev failed"
	at_exit "umount -l '$mnt'"
	chmod 755 "$mnt"
	LOOP_MNT=$mnt
}

# stop_daemon NAME: SIGTERM and wait until it is gone, so the next test does
# not find a daemon on its way out.
stop_daemon() {
	pkill -x "$1" || return 0
	local i
	for i in $(seq 100); do
		pgrep -x "$1" >/dev/null || return 0
		sleep 0.1
	done
	pkill -9 -x "$1" || true
}

libvirt_answers() { virsh -c qemu:///system version >/dev/null 2>&1; }

# Tests that use libvirtd register here; the last one out stops the daemons
# the tests started, so concurrent test runs do not pull libvirtd away from
# each other.
LIBVIRT_USERS=/run/aioguard-tests/libvirt-users

libvirt_release() {
	rm -f "$LIBVIRT_USERS/$$"
	[ -n "$(ls -A "$LIBVIRT_USERS" 2>/dev/null)" ] && return 0
	if [ -e "$LIBVIRT_USERS/../started-by-tests" ]; then
		rm -f "$LIBVIRT_USERS/../started-by-tests"
		stop_daemon libvirtd
		stop_daemon virtlogd
	fi
}

# Start virtlogd + libvirtd unless they already answer.
libvirtd_start() {
	[ -e /dev/kvm ] || skip "/dev/kvm missing: this kernel/VM has no KVM"
	command -v libvirtd >/dev/null || fail "libvirtd not installed (tools/install-deps)"
	mkdir -p "$LIBVIRT_USERS"
	touch "$LIBVIRT_USERS/$$"
	at_exit libvirt_release
	pgrep -x virtlogd >/dev/null || virtlogd -d   # QEMU's console log goes through it
	libvirt_answers && return 0
	touch "$LIBVIRT_USERS/../started-by-tests"
	# one that runs but does not answer is on its way out: let it go
	pgrep -x libvirtd >/dev/null && stop_daemon libvirtd
	libvirtd -d
	local i
	for i in $(seq 100); do
		libvirt_answers && return 0
		sleep 0.2
	done
	fail "libvirtd did not answer on qemu:///system"
}

# domain_xml NAME DISK_XML... -> a minimal KVM domain (no guest OS needed:
# QEMU opens and serves its disks from the start).
domain_xml() {
	local name=$1; shift
	cat <<XML
<domain type='kvm'>
  <name>$name</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
$(printf '%s\n' "$@")
    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>
  </devices>
</domain>
XML
}

# file_disk PATH TARGET FORMAT IO
file_disk() {
	echo "    <disk type='file' device='disk'><driver name='qemu' type='$3' cache='none' io='$4'/><source file='$1'/><target dev='$2' bus='virtio'/></disk>"
}

# domain_define_start NAME XML: define + start, removed again at exit.
domain_define_start() {
	local name=$1 xml=$2
	echo "$xml" >"$WORKDIR/$name.xml"
	virsh -q -c qemu:///system define "$WORKDIR/$name.xml" >/dev/null || fail "define $name"
	at_exit "virsh -c qemu:///system undefine --managed-save '$name'"
	at_exit "virsh -c qemu:///system destroy '$name'"
	virsh -q -c qemu:///system start "$name" >/dev/null || fail "start $name"
}

# qemu_io DOMAIN DISKINDEX CMD: I/O through QEMU's own block layer.
qemu_io() {
	virsh -q -c qemu:///system qemu-monitor-command "$1" --hmp \
		"qemu-io -d /machine/peripheral/virtio-disk$2/virtio-backend \"$3\""
}

# disk_io URI DOMAIN TARGET [--inactive] -> the io attribute in dumpxml
disk_io() {
	virsh -c "$1" dumpxml ${4:-} "$2" | python3 -c '
import sys, xml.etree.ElementTree as ET
for d in ET.parse(sys.stdin).getroot().iter("disk"):
    t = d.find("target")
    if t is not None and t.get("dev") == sys.argv[1]:
        drv = d.find("driver")
        print(drv.get("io", "") if drv is not None else "")' "$3"
}

# same_xml A B: equal but for trailing newlines (virsh prints one extra)
same_xml() {
	python3 -c 'import sys; a, b = (open(p).read().rstrip("\n") for p in sys.argv[1:]); sys.exit(a != b)' "$1" "$2"
}
