# shellcheck shell=bash
# Shared set-up for integration tests and the demo: real loop filesystems, a
# real libvirtd, real QEMU domains (KVM where the machine has it, else TCG:
# domain_type). Everything made here is undone by cleanup.
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

# loopfs_make FSTYPE SIZE_MB [dio] -> sets LOOP_MNT (not echoed: a $(…)
# subshell would lose the cleanup it registers). dio: the loop device reads
# and writes its backing file with O_DIRECT (the disk under WORKDIR, not the
# page cache); refused clearly where the kernel fell back to buffered I/O.
loopfs_make() {
	local fstype=$1 size_mb=$2 dio=${3:-} img mnt dev
	img="$WORKDIR/$fstype.backing"
	mnt="$WORKDIR/$fstype"
	truncate -s "${size_mb}M" "$img"
	dev=$(losetup -f --show ${dio:+--direct-io=on} "$img") || fail "losetup failed"
	at_exit "losetup -d '$dev'"
	if [ -n "$dio" ] && [ "$(cat "/sys/block/${dev#/dev/}/loop/dio" 2>/dev/null)" != 1 ]; then
		fail "$dev: direct I/O to $img refused by the kernel (the filesystem under $WORKDIR has no O_DIRECT?)"
	fi
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

# stop_pid PID: SIGTERM and wait until it is gone (SIGKILL after 10 s), so
# the next test does not find a process on its way out.
stop_pid() {
	kill "$1" 2>/dev/null || return 0
	local i
	for i in $(seq 100); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -9 "$1" 2>/dev/null || true
}

# stop_daemon NAME PIDFILE: stop the daemon whose pid PIDFILE holds (the one
# we started with -p PIDFILE), if it still runs under that name.
stop_daemon() {
	local pid
	pid=$(cat "$2" 2>/dev/null) || return 0
	[ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && stop_pid "$pid"
	rm -f "$2"
}

libvirt_answers() { virsh -c qemu:///system version >/dev/null 2>&1; }

# Tests that use libvirtd register here (under a lock); the last one out
# stops the daemons the tests started, by the pid files they wrote, so
# concurrent test runs do not pull libvirtd away from each other, and a
# libvirtd the tests did not start is never stopped.
TESTS_RUN=/run/aioguard-tests
LIBVIRT_USERS=$TESTS_RUN/libvirt-users

LIBVIRT_LOCK=
libvirt_lock() {
	libvirt_unlock   # a failure may have left it held (cleanup takes it again)
	mkdir -p "$LIBVIRT_USERS"
	exec {LIBVIRT_LOCK}>"$TESTS_RUN/lock"
	flock "$LIBVIRT_LOCK"
}
libvirt_unlock() {
	[ -z "$LIBVIRT_LOCK" ] || exec {LIBVIRT_LOCK}>&-
	LIBVIRT_LOCK=
}

libvirt_release() {
	libvirt_lock
	rm -f "$LIBVIRT_USERS/$$"
	local u
	for u in "$LIBVIRT_USERS"/*; do   # users that died without releasing
		[ -e "$u" ] && ! kill -0 "${u##*/}" 2>/dev/null && rm -f "$u"
	done
	if [ -z "$(ls -A "$LIBVIRT_USERS")" ]; then
		stop_daemon libvirtd "$TESTS_RUN/libvirtd.pid"
		# QEMU of a libvirtd we did not start may log through it
		pgrep -x libvirtd >/dev/null || stop_daemon virtlogd "$TESTS_RUN/virtlogd.pid"
	fi
	libvirt_unlock
}

# Start virtlogd + libvirtd unless they already answer.
libvirtd_start() {
	command -v libvirtd >/dev/null || fail "libvirtd not installed (tools/install-deps)"
	libvirt_lock
	touch "$LIBVIRT_USERS/$$"
	at_exit libvirt_release
	# QEMU's console log goes through virtlogd (the daemons must not
	# inherit the lock)
	pgrep -x virtlogd >/dev/null ||
		virtlogd -d -p "$TESTS_RUN/virtlogd.pid" {LIBVIRT_LOCK}>&- || fail "virtlogd did not start"
	local i
	for i in $(seq 100); do
		# one that runs but does not answer is on its way up or out
		libvirt_answers && { libvirt_unlock; return 0; }
		pgrep -x libvirtd >/dev/null || break
		sleep 0.2
	done
	# still there and silent: ours (a test run that died) is stopped, another
	# is not ours to stop
	pgrep -x libvirtd >/dev/null && stop_daemon libvirtd "$TESTS_RUN/libvirtd.pid"
	pgrep -x libvirtd >/dev/null && fail "a libvirtd runs but does not answer on qemu:///system"
	libvirtd -d -p "$TESTS_RUN/libvirtd.pid" {LIBVIRT_LOCK}>&- || fail "libvirtd did not start"
	for i in $(seq 100); do
		libvirt_answers && { libvirt_unlock; return 0; }
		sleep 0.2
	done
	fail "libvirtd did not answer on qemu:///system"
}

# domain_type: the domain type of every test domain, chosen here only:
# 'kvm' where this machine has KVM, 'qemu' (TCG, QEMU emulates the CPU)
# where it has not. Either way QEMU opens and serves its disks, takes
# qemu-io writes and saves/restores; TCG is only slower.
domain_type() {
	if [ -e /dev/kvm ]; then echo kvm; else echo qemu; fi
}

# domain_xml NAME DISK_XML... -> a minimal domain (no guest OS needed: QEMU
# opens and serves its disks from the start).
domain_xml() {
	local name=$1; shift
	cat <<XML
<domain type='$(domain_type)'>
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
# On $URI when set (a private libvirtd: fault_lib.sh), else qemu:///system.
domain_define_start() {
	local name=$1 xml=$2 uri=${URI:-qemu:///system}
	echo "$xml" >"$WORKDIR/$name.xml"
	virsh -q -c "$uri" define "$WORKDIR/$name.xml" >/dev/null || fail "define $name"
	at_exit "virsh -c '$uri' undefine --managed-save '$name'"
	at_exit "virsh -c '$uri' destroy '$name'"
	virsh -q -c "$uri" start "$name" >/dev/null || fail "start $name"
}

# qemu_io DOMAIN DISKINDEX CMD: I/O through QEMU's own block layer (on $URI
# when set).
qemu_io() {
	virsh -q -c "${URI:-qemu:///system}" qemu-monitor-command "$1" --hmp \
		"qemu-io -d /machine/peripheral/virtio-disk$2/virtio-backend \"$3\""
}

# qemu_io_if_running DOMAIN DISKINDEX CMD: qemu_io, but only while the domain
# runs. A save pauses the domain, then inactivates its block nodes; a qemu-io
# write that reaches an inactive node trips QEMU 7.2's assertion
# "!(bs->open_flags & BDRV_O_INACTIVE)" and kills the domain. A guest cannot
# do that (its vCPUs are stopped); HMP qemu-io can, so loops that drive
# writes while an agent may save the domain skip them once it is paused.
qemu_io_if_running() {
	[ "$(virsh -q -c "${URI:-qemu:///system}" domstate "$1" 2>/dev/null)" = running ] || return 1
	qemu_io "$@"
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
