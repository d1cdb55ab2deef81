#!/usr/bin/env bash
# Least privilege, for real: the agent runs with exactly the capabilities the
# systemd unit grants (read from contrib/aioguard.service.in, so the two stay in
# step), switches a stalling disk, and keeps only CAP_DAC_READ_SEARCH once
# attached. Without CAP_BPF it says so in one line and exits.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_root
command -v setpriv >/dev/null || fail "setpriv missing (util-linux)"
make_workdir
loopfs_make ext4 1024
libvirtd_start
source "$(dirname "$0")/agent_lib.sh"

unit="$(dirname "$0")/../../contrib/aioguard.service.in"
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit")
[ -n "$caps" ] || fail "no CapabilityBoundingSet in $unit"
bounding=-all
for c in $caps; do
	c=${c#CAP_}
	bounding+=",+${c,,}"
done
say "the unit's set: $bounding"

# run_agent with the unit's bounding set and no_new_privs, as systemd would
AIOGUARD_REAL=$AIOGUARD
AIOGUARD="$WORKDIR/aioguard-as-unit"
cat >"$AIOGUARD" <<SH
#!/bin/sh
exec setpriv --bounding-set $bounding --no-new-privs -- "$AIOGUARD_REAL" "\$@"
SH
chmod +x "$AIOGUARD"

new_domain
EXPECT_BOUNDING_KEPT=1 run_agent --enforce   # checks CapEff/CapPrm = CAP_DAC_READ_SEARCH only
start_writes
wait_audit applied 90
stop_writes
stop_agent
[ "$(disk_io "$URI" "$DOM" vda --inactive)" = threads ] || fail "vda not switched under the unit's capabilities"

say "without CAP_BPF (nor CAP_SYS_ADMIN, which implies it): one clear line, exit 1"
rc=0
timeout 30 setpriv --bounding-set -all,+perfmon,+dac_read_search --no-new-privs -- \
	"$AIOGUARD_REAL" run -c "$URI" --listen off --state-dir "$WORKDIR/state2" 2>"$WORKDIR/nocap.err" || rc=$?
[ "$rc" -eq 1 ] || fail "exit $rc without CAP_BPF"
grep -q "refused to load the eBPF programs" "$WORKDIR/nocap.err" || fail "unclear: $(cat "$WORKDIR/nocap.err")"
echo "  $(grep aioguard: "$WORKDIR/nocap.err" | tail -1)"
echo "PASS"
