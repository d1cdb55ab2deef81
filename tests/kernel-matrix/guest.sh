#!/bin/bash
# Runs inside a guest kernel of the matrix, chrooted into the host's userland
# (read-only 9p under a tmpfs overlay), as PID 1's child. Every scenario
# writes NAME.log to the results share and a line "NAME RC SECONDS" to
# results; the host (run.sh) judges them. Env (from the share's env file):
# AIOGUARD, AIOGUARD_SRCDIR, KM_OUT, KM_OBS_N, KM_SCENARIOS, KM_AIOMODES_*.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
OUT=$KM_OUT
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "GUEST[$(up)s]: $*" | tee -a "$OUT/guest.log"; }

mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
mount -t debugfs nodev /sys/kernel/debug 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t securityfs none /sys/kernel/security 2>/dev/null
mkdir -p /run/lock /var/tmp
LOCKDOWN=/sys/kernel/security/lockdown
say "kernel $(uname -r); lockdown: $(cat $LOCKDOWN 2>/dev/null || echo 'no lockdown LSM')"

# scenario NAME CMD...: run it, log it, record its exit status.
scenario() {
	local name=$1 t0 rc
	shift
	say "$name: start"
	t0=$(up)
	"$@" >"$OUT/$name.log" 2>&1
	rc=$?
	echo "$name $rc $(awk -v a="$t0" -v b="$(up)" 'BEGIN { printf "%.0f", b - a }')" >>"$OUT/results"
	say "$name: exit $rc"
}

observer() {  # FS [PHASES [WATCH ARGS]]
	OBS_N=$KM_OBS_N OBS_PHASES=${2:-} OBS_WATCH_ARGS=${3:-} \
		bash "$AIOGUARD_SRCDIR/tests/integration/observer_$1.sh"
}

# The hooks `watch` picks by itself, as the first line of its stderr says.
hooks() {
	timeout 300 "$AIOGUARD" watch --comm nothing-here --duration 1 --interval 1 2>&1 >/dev/null
}

# loop_ext4 -> DIR with an ext4 mounted on DIR/m (tmpfs on 6.1 has no
# O_DIRECT, which qemu-img bench -t none needs).
loop_ext4() {
	local dir
	dir=$(mktemp -d /var/tmp/km-ext4.XXXXXX)
	truncate -s 1500M "$dir/fs" && mkfs.ext4 -q -F "$dir/fs" && mkdir "$dir/m" &&
		mount -o loop "$dir/fs" "$dir/m" && echo "$dir"
}

# A sparse qcow2 and a preallocated raw written by qemu-img bench under
# `watch --json`: the pair the README's "Supported kernels" quotes.
pair() {
	local dir img
	dir=$(loop_ext4) || return 1
	qemu-img create -q -f qcow2 "$dir/m/sparse.qcow2" 1G
	qemu-img create -q -f raw -o preallocation=falloc "$dir/m/prealloc.raw" 1G
	"$AIOGUARD" watch --comm qemu-img --json --interval 60 --threshold-us 200 \
		>"$OUT/pair.json" 2>"$OUT/pair.err" &
	local w=$!
	for _ in $(seq 600); do grep -q attached "$OUT/pair.err" && break; sleep 0.1; done
	for img in sparse.qcow2 prealloc.raw; do
		qemu-img bench -w -t none -i native -c 2000 -d 16 -s 64k \
			-f "${img##*.}" "$dir/m/$img" >/dev/null || return 1
	done
	kill -INT $w; wait $w
	cat "$OUT/pair.err"
	grep '"type":"disk"' "$OUT/pair.json"
	umount "$dir/m"; rm -rf "$dir"
}

# The cost per submission of aioguard and of the bpftrace peer, same boot.
cost() {
	local dir rc
	dir=$(loop_ext4) || return 1
	bash "$AIOGUARD_SRCDIR/tools/bench-observer" --cost-only -c 20000 -d "$dir/m" "$AIOGUARD"
	rc=$?
	umount "$dir/m"; rm -rf "$dir"
	return $rc
}

# The aio-modes matrix of docs/AIO-MODES.md, reduced, on this kernel:
# tools/bench-aio-modes' matrix part (no libvirtd) into the results share's
# aiomodes/ (runs.jsonl, report.md). Not in the default list: ~15 min per
# kernel under TCG. KM_AIOMODES_ROUNDS, KM_AIOMODES_OPS (N4K,N64K).
aiomodes() {
	AIOGUARD=$AIOGUARD bash "$AIOGUARD_SRCDIR/tools/bench-aio-modes" --only matrix \
		--rounds "${KM_AIOMODES_ROUNDS:-2}" --ops "${KM_AIOMODES_OPS:-2000,1000}" --image-mb 128 \
		--images raw-sparse,raw-falloc,raw-full,qcow2-off --workloads write-4k,write-64k \
		--out "$OUT/aiomodes"
}

# Before 6.2 (no bpf_rdonly_cast) nothing can find a descriptor's file
# without bpf_probe_read_kernel, which lockdown=confidentiality forbids:
# watch must refuse, and say why.
refuses_clearly() {
	local err
	if timeout 300 "$AIOGUARD" watch --comm nothing-here --duration 1 >/dev/null 2>"$OUT/refusal.err"; then
		echo "watch ran where it cannot attribute anything"; return 1
	fi
	cat "$OUT/refusal.err"
	grep -q "no bpf_rdonly_cast" "$OUT/refusal.err"
}

kernel_at_least() { [ "$(printf '%s\n' "$1" "$(uname -r)" | sort -V | head -n 1)" = "$1" ]; }

lockdown_to() {  # LEVEL: raise lockdown (it only goes up)
	echo "$1" >$LOCKDOWN && say "lockdown now: $(cat $LOCKDOWN)"
}

SCENARIOS=${KM_SCENARIOS:-hooks pair ext4 xfs syscalls raw cost integrity confidentiality}
for s in ${SCENARIOS//,/ }; do
	case $s in
	hooks) scenario hooks hooks ;;
	pair) scenario pair pair ;;
	ext4|xfs) scenario "$s" observer "$s" ;;
	# each fallback hook kind forced once, io_submit on ext4
	syscalls|raw) scenario "$s" observer ext4 native "--hooks $s" ;;
	cost) scenario cost cost ;;
	aiomodes) scenario aiomodes aiomodes ;;
	# Secure Boot hosts run lockdown=integrity; confidentiality is the
	# strictest level. Each level: which hooks load, and io_submit timed.
	integrity|confidentiality)
		if [ -w $LOCKDOWN ] && lockdown_to "$s"; then
			if [ "$s" = confidentiality ] && ! kernel_at_least 6.2; then
				scenario "refused-$s" refuses_clearly
			else
				scenario "hooks-$s" hooks
				scenario "ext4-$s" observer ext4 native
			fi
		else
			echo "lockdown-$s 77 0" >>"$OUT/results"
		fi ;;
	esac
done
say "done"
