#!/bin/sh
# A busybox initramfs with the kernel's own modules to mount the host's root
# over virtio-9p under a tmpfs overlay, and to run the observer tests on
# loop-mounted ext4 and xfs.
# Usage: build-initramfs.sh CACHE OUT.cpio.gz
set -eu
CACHE=$1 OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
BB=$CACHE/bb/bin/busybox
KVER=$(ls "$CACHE/kern/lib/modules")
MODDIR=$CACHE/kern/lib/modules/$KVER
ROOT=$(mktemp -d /var/tmp/aioguard-initramfs.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
# crc32c_generic: ext4 and jbd2 ask the crypto API for "crc32c" by name,
# which no modules.dep line names. xfs is a module on Debian's kernels.
WANT="virtio_pci 9pnet_virtio 9p overlay crc32c_generic ext4 xfs loop"

mkdir -p "$ROOT/bin" "$ROOT/proc" "$ROOT/sys" "$ROOT/dev" "$ROOT/mods"
cp "$BB" "$ROOT/bin/busybox"
: >"$ROOT/mods/order"
add() {  # module $1 (path relative to MODDIR), after its dependencies
	grep -qx "$1" "$ROOT/mods/order" && return 0
	for d in $(sed -n "s|^$1: *||p" "$MODDIR/modules.dep"); do add "$d"; done
	cp "$MODDIR/$1" "$ROOT/mods/"
	echo "$1" >>"$ROOT/mods/order"
}
for m in $WANT; do
	p=$(grep -E "/$m\.ko(\.xz)?:" "$MODDIR/modules.dep" | cut -d: -f1)
	if [ -z "$p" ]; then   # built in, or missing: the guest finds out
		echo "build-initramfs: $m is not a module of $KVER" >&2
		continue
	fi
	add "$p"
done
sed -i 's|.*/||' "$ROOT/mods/order"
cp "$HERE/init" "$ROOT/init"
chmod 755 "$ROOT/init"
(cd "$ROOT" && find . | "$BB" cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 >"$OUT"
