#!/usr/bin/env bash
# Names and paths from domain XML are untrusted: quotes, backslashes, UTF-8,
# control characters, 3000-byte paths. They must come out of advise (JSON and
# table) and set-io (diff, backup file) intact and escaped, never breaking a
# line, a JSON document or a file path. libvirt's test driver; no root needed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
make_workdir
URI="test://$(cd "$(dirname "$0")/../data" && pwd)/oddnames.xml"

say "advise --json: strict UTF-8 JSON whose names equal libvirt's"
"$AIOGUARD" advise -c "$URI" --json >"$WORKDIR/advise.json"
virsh -c "$URI" list --all --name >"$WORKDIR/names"
python3 - "$WORKDIR/advise.json" "$WORKDIR/names" <<'PY'
import json, sys
doc = json.loads(open(sys.argv[1], "rb").read().decode("utf-8", errors="strict"))
names = {n for n in open(sys.argv[2], encoding="utf-8").read().split("\n") if n}
got = {d["domain"] for d in doc["disks"]}
assert got == names, (got, names)
weird = [d for d in doc["disks"] if d["domain"].startswith('we"ird')]
assert {d["target"] for d in weird} == {"vda"}, weird
src = [d["source"] for d in weird if d["target"] == "vda"][0]
assert '"quotes"' in src and "\\back{slash}" in src, src
assert all(d["reason"] for d in doc["disks"])
long = [d for d in doc["disks"] if d["domain"].startswith("long-")][0]
assert len(long["source"]) > 3000 and long["sparse"] is None, long
print("  %d disks, names round-trip, reasons valid UTF-8" % len(doc["disks"]))
PY

say "advise table: one line per disk, no control characters"
"$AIOGUARD" advise -c "$URI" >"$WORKDIR/table"
[ "$(wc -l <"$WORKDIR/table")" -eq 4 ] || fail "expected 4 lines (header + 3 disks): $(cat -A "$WORKDIR/table" | cut -c1-200)"
if LC_ALL=C grep -q '[[:cntrl:]]' <(tr -d '\n' <"$WORKDIR/table"); then
	fail "control characters reached the table"
fi

say "set-io on the odd domain: diff, backup inside the backup dir, XML changed"
dom=$(grep '^we"ird' "$WORKDIR/names")
"$AIOGUARD" set-io -c "$URI" "$dom" vda threads --backup-dir "$WORKDIR/backups" >"$WORKDIR/setio.out" ||
	fail "set-io failed: $(cat "$WORKDIR/setio.out")"
grep -q "^+.*io='threads'" "$WORKDIR/setio.out" || fail "no diff: $(cat "$WORKDIR/setio.out")"
[ "$(find "$WORKDIR/backups" -type f | wc -l)" -eq 1 ] || fail "expected one backup: $(find "$WORKDIR" -type f)"
[ "$(find "$WORKDIR" -type f -name '*.xml' | wc -l)" -eq 1 ] || fail "a file was written outside the backup dir"
say "a refusal quoting libvirt's multi-line schema error is still one line"
net=$(grep '^net' "$WORKDIR/names")
if "$AIOGUARD" set-io -c "$URI" "$net" vdb threads --backup-dir "$WORKDIR/backups2" >/dev/null 2>"$WORKDIR/err"; then
	echo "  (libvirt accepted it)"
else
	[ "$(wc -l <"$WORKDIR/err")" -eq 1 ] || fail "not one line: $(cat "$WORKDIR/err")"
	echo "  $(cut -c1-160 "$WORKDIR/err")"
fi
echo "PASS"
