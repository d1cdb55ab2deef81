#!/usr/bin/env bash
# One error style (aioguard(8), EXIT STATUS): a usage error of any command is
# one line on stderr, "aioguard: COMMAND: what (try 'aioguard COMMAND
# --help')", nothing on stdout, exit status 2; a failure names its command
# too and exits 1. Runs the built binary without root: every case fails
# before anything is loaded or connected, but the last, a libvirt URI that
# leads nowhere (libvirt's test driver).
set -euo pipefail
bin=${AIOGUARD:?}
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect STATUS LINE ARGS...: stderr is exactly LINE, stdout empty
expect() {
	local want_rc=$1 want=$2 rc=0
	shift 2
	"$bin" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
	local got
	got=$(cat "$tmp/err")
	if [ "$rc" -ne "$want_rc" ] || [ "$got" != "$want" ] || [ -s "$tmp/out" ]; then
		echo "FAIL: aioguard $*: exit $rc (want $want_rc)" >&2
		echo "  stderr: $got" >&2
		echo "  want:   $want" >&2
		[ -s "$tmp/out" ] && echo "  stdout not empty: $(head -c 200 "$tmp/out")" >&2
		failed=$((failed + 1))
	else
		echo "ok [$rc] aioguard $* -> $got"
	fi
}

expect 2 "aioguard: no command given (try 'aioguard --help')"
expect 2 "aioguard: unknown command 'frob' (try 'aioguard --help')" frob
for cmd in advise set-io watch run; do
	expect 2 "aioguard: $cmd: unknown option --frob (try 'aioguard $cmd --help')" "$cmd" --frob
	expect 2 "aioguard: $cmd: unknown option -Z (try 'aioguard $cmd --help')" "$cmd" -Z
	expect 2 "aioguard: $cmd: option --connect needs a value (try 'aioguard $cmd --help')" "$cmd" --connect
done
expect 2 "aioguard: advise: unexpected argument 'extra' (try 'aioguard advise --help')" advise extra
expect 2 "aioguard: set-io: expected DOMAIN TARGET MODE (try 'aioguard set-io --help')" set-io web1 vda
expect 2 "aioguard: set-io: unknown io mode 'fast': use native, threads or io_uring (try 'aioguard set-io --help')" set-io web1 vda fast
expect 2 "aioguard: watch: --interval: need seconds >= 0.05, got '0' (try 'aioguard watch --help')" watch --interval 0
expect 2 "aioguard: watch: unexpected argument 'extra' (try 'aioguard watch --help')" watch extra
expect 2 "aioguard: run: --interval: '0' is not a whole number from 1 to 3600 (try 'aioguard run --help')" run --interval 0
expect 2 "aioguard: run: unexpected argument 'extra' (try 'aioguard run --help')" run extra
expect 2 "aioguard: run: history-windows must be between bad-windows and 64 (try 'aioguard run --help')" \
	run --bad-windows 5 --history-windows 2
expect 1 "aioguard: set-io: cannot connect to libvirt at test+unix:///default?socket=$tmp/none: Failed to connect socket to '$tmp/none': No such file or directory" \
	set-io -c "test+unix:///default?socket=$tmp/none" web1 vda threads

# --help is no error: stdout, exit 0
for cmd in advise set-io watch run; do
	"$bin" "$cmd" --help >"$tmp/out" 2>"$tmp/err" || { echo "FAIL: $cmd --help exits non-zero" >&2; failed=$((failed + 1)); }
	grep -q "^Usage: aioguard $cmd" "$tmp/out" && [ ! -s "$tmp/err" ] ||
		{ echo "FAIL: $cmd --help: no usage on stdout, or stderr not empty" >&2; failed=$((failed + 1)); }
done

[ "$failed" -eq 0 ] || { echo "FAIL: $failed cases" >&2; exit 1; }
echo "PASS: one line per error, the command named, exit 2 for usage, 1 for failure"
