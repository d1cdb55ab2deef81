#!/usr/bin/env bash
# docs/AIO-MODES.md's scorecard is current: regenerated from the committed
# results with today's advice (policy/advise.c through tools/advise-facts),
# scorecard.md and per-kernel.md come out as committed. A change to the
# advice or to the results without a regenerated scorecard fails here.
# And advise-facts turns a bad word into one line and exit 2.
set -euo pipefail
src=${AIOGUARD_SRCDIR:?} build=${AIOGUARD_BUILDDIR:?}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python3 "$src/tools/aio-scorecard" --advise "$build/tools/advise-facts" --out "$out" >/dev/null
for f in scorecard.md per-kernel.md; do
	diff -u "$src/docs/aio-modes/$f" "$out/$f" >&2 ||
		{ echo "FAIL: docs/aio-modes/$f is not what tools/aio-scorecard makes of the results (run it)" >&2; exit 1; }
done
grep -q '(TCG) | 6\.1 | ' "$out/scorecard.md" ||
	{ echo "FAIL: the scorecard has no 6.1 cells" >&2; exit 1; }
rc=0
err=$(echo "format=raw image=holey" | "$build/tools/advise-facts" 2>&1 >/dev/null) || rc=$?
[ "$rc" = 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] && [[ $err == *"'image=holey'"* ]] ||
	{ echo "FAIL: advise-facts on a bad word: exit $rc, '$err'" >&2; exit 1; }
echo "scorecard current; advise-facts refuses bad input"
