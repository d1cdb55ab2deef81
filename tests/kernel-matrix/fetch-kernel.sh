#!/bin/sh
# Fetch one of Debian's kernel packages and busybox-static without installing
# them: apt-get download, dpkg -x, then busybox's depmod (the .deb ships no
# modules.dep: depmod runs at install time). Idempotent: a cache that holds
# the candidate version already is kept.
# Usage: fetch-kernel.sh CACHE META   (META: linux-image-amd64 = Debian 12's
# stock 6.1; linux-image-6.12-amd64 = bookworm's 6.12). Prints the version.
set -eu
CACHE=$1 META=$2
# The meta package depends on the versioned image package.
image_package() {
	apt-cache depends "$META" 2>/dev/null |
		sed -n 's/.*Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1
}
KPKG=$(image_package)
if [ -z "$KPKG" ]; then
	apt-get update -qq
	KPKG=$(image_package)
fi
[ -n "$KPKG" ] || { echo "fetch-kernel: no kernel package behind $META" >&2; exit 1; }
if [ -f "$CACHE/package" ] && [ "$(cat "$CACHE/package")" = "$KPKG" ] &&
	[ -x "$CACHE/bb/bin/busybox" ] && ls "$CACHE"/kern/lib/modules/*/modules.dep >/dev/null 2>&1; then
	ls "$CACHE/kern/lib/modules"
	exit 0
fi
rm -rf "$CACHE"
mkdir -p "$CACHE/debs" "$CACHE/kern" "$CACHE/bb"
# Package lists older than the archive name versions it no longer serves:
# refresh them once and ask again.
download() { (cd "$CACHE/debs" && apt-get download -q "$KPKG" busybox-static >&2); }
if ! download; then
	apt-get update -qq
	KPKG=$(image_package)
	download || { echo "fetch-kernel: apt-get download $KPKG busybox-static failed" >&2; exit 1; }
fi
dpkg -x "$CACHE"/debs/"$KPKG"_*.deb "$CACHE/kern"
dpkg -x "$CACHE"/debs/busybox-static_*.deb "$CACHE/bb"
rm -rf "$CACHE/debs"
KVER=$(ls "$CACHE/kern/lib/modules")
"$CACHE/bb/bin/busybox" depmod -b "$CACHE/kern" "$KVER"
echo "$KPKG" >"$CACHE/package"
echo "$KVER"
