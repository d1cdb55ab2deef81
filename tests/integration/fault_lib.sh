# shellcheck shell=bash
# Helpers of the fault tests (fault_*.sh). Source after lib.sh.
#
# plibvirt_start: a private libvirtd of our own, for the faults that kill
# libvirtd or load it with hundreds of domains, so that tests and benchmarks
# running at the same time on the shared libvirtd (lib.sh) see none of it.
# It is the same libvirtd binary in system mode, in a mount namespace where
# /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and
# /var/log/libvirt are directories under $WORKDIR; its socket is outside the
# namespace, so virsh and aioguard reach it with $PURI. QEMU's console log
# goes to a file (no virtlogd in there).

plibvirt_start() {
	PLV=$WORKDIR/plv
	mkdir -p "$PLV"/{etc/qemu,run,lib,cache,log,sock}
	chmod 755 "$PLV"
	cp /etc/libvirt/qemu.conf "$PLV/etc/"
	echo 'stdio_handler = "file"' >>"$PLV/etc/qemu.conf"
	cat >"$PLV/etc/libvirtd.conf" <<EOF
unix_sock_dir = "$PLV/sock"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
EOF
	PURI="qemu+unix:///system?socket=$PLV/sock/libvirt-sock"
	# a process that keeps the namespace while libvirtd comes and goes
	unshare -m --propagation slave sleep infinity &
	PLV_HOLDER=$!
	at_exit "kill $PLV_HOLDER"
	local i m
	for i in $(seq 50); do
		[ "$(readlink /proc/$PLV_HOLDER/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] && break
		sleep 0.05
	done
	for m in etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt cache:/var/cache/libvirt \
		log:/var/log/libvirt; do
		nsenter -t "$PLV_HOLDER" -m mount --bind "$PLV/${m%%:*}" "${m#*:}" ||
			fail "cannot bind $PLV/${m%%:*} on ${m#*:} in the private namespace"
	done
	at_exit plibvirt_stop
	plibvirt_up
}

plibvirt_pid() { cat "$PLV/libvirtd.pid" 2>/dev/null; }

# (Re)start the private libvirtd and wait until it answers.
plibvirt_up() {
	nsenter -t "$PLV_HOLDER" -m libvirtd -d --pid-file "$PLV/libvirtd.pid" ||
		fail "private libvirtd did not start"
	local i
	for i in $(seq 100); do
		virsh -c "$PURI" version >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	fail "private libvirtd does not answer on $PURI"
}

# SIGTERM (or the signal given) and wait until it is gone.
plibvirt_stop() {
	local pid i
	pid=$(plibvirt_pid) || return 0
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill "-${1:-TERM}" "$pid"
	kill -CONT "$pid" 2>/dev/null || true
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || { rm -f "$PLV/libvirtd.pid"; return 0; }
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	rm -f "$PLV/libvirtd.pid"
}

# on_create DIR SIGNAL PID: in the background, send SIGNAL to PID the moment
# a file is created in DIR (inotify IN_CREATE), then print the file's name
# to $WORKDIR/on_create.out. Returns once the watch is in place.
on_create() {
	rm -f "$WORKDIR/on_create.out" "$WORKDIR/on_create.ready"
	python3 - "$1" "$2" "$3" "$WORKDIR/on_create" <<'PY' &
import ctypes, os, signal, struct, sys
d, sig, pid, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(0)
IN_CREATE = 0x100
if fd < 0 or libc.inotify_add_watch(fd, d.encode(), IN_CREATE) < 0:
    sys.exit("inotify: " + os.strerror(ctypes.get_errno()))
open(out + ".ready", "w").close()
buf = os.read(fd, 4096)
os.kill(pid, getattr(signal, "SIG" + sig))
_, _, _, n = struct.unpack_from("iIII", buf)
with open(out + ".out", "w") as f:
    f.write(buf[16:16 + n].rstrip(b"\0").decode() + "\n")
PY
	ON_CREATE_PID=$!
	at_exit "kill $ON_CREATE_PID"
	local i
	for i in $(seq 100); do
		[ -e "$WORKDIR/on_create.ready" ] && return 0
		kill -0 "$ON_CREATE_PID" 2>/dev/null || fail "inotify watch on $1 failed"
		sleep 0.05
	done
	fail "inotify watch on $1 not ready"
}

# tinyfs_make NAME SIZE_KB -> TINY_MNT: a small ext4 of its own (no blocks
# reserved for root), for a state directory that fills up.
tinyfs_make() {
	local img="$WORKDIR/$1.backing" dev
	TINY_MNT="$WORKDIR/$1"
	truncate -s "${2}K" "$img"
	dev=$(losetup -f --show "$img") || fail "losetup failed"
	at_exit "losetup -d '$dev'"
	mkfs.ext4 -q -F -m 0 "$dev" >/dev/null 2>&1 || fail "mkfs.ext4 on $dev"
	mkdir -p "$TINY_MNT"
	mount "$dev" "$TINY_MNT" || fail "mount $dev"
	at_exit "umount -l '$TINY_MNT'"
}

# fill_fs DIR: write a file until the filesystem has no block left.
fill_fs() {
	dd if=/dev/zero of="$1/filler" bs=4k status=none 2>/dev/null || true
	sync -f "$1"
	dd if=/dev/zero of="$1/filler2" bs=1k status=none 2>/dev/null || true
	sync -f "$1"
	[ "$(stat -f -c %a "$1")" -eq 0 ] || fail "$1 still has free blocks"
}

# metric URL NAME: the value of an unlabelled sample
metric() {
	python3 - "$1" "$2" <<'PY'
import sys, urllib.request
for line in urllib.request.urlopen(sys.argv[1], timeout=10).read().decode().splitlines():
    f = line.split()
    if len(f) == 2 and f[0] == sys.argv[2]:
        print(f[1])
PY
}

# agent_metrics_url FILE: from the agent's "metrics on http://…" line
agent_metrics_url() {
	local i
	for i in $(seq 50); do
		grep -o 'http://[^ ]*/metrics' "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "no metrics URL in $1"
}
