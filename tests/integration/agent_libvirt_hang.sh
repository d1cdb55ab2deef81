#!/usr/bin/env bash
# Observation never waits for libvirt: a private libvirtd (fault_lib.sh; the
# shared one and the tests on it never see this) is stopped with SIGSTOP for
# 30 s while the guest's sparse qcow2 keeps stalling. The writes go through a
# second QMP monitor of the domain's QEMU (<qemu:commandline> -qmp), not
# through libvirtd.
#   - stalls keep counting: aioguard_stalls_total scraped during the hang grows;
#   - aioguard_libvirt_up drops to 0 within 15 s, with a log line, and is 1
#     again after SIGCONT;
#   - no decision is taken from the stale inventory: the windows are bad all
#     through the hang, and the first decision comes after SIGCONT;
#   - `aioguard set-io --timeout 5` against the hung libvirtd gives up after
#     5 s saying nothing was changed, and the domain's XML is as it was.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fault_lib.sh"
need_root
make_workdir
loopfs_make ext4 4096
plibvirt_start
DOM=aioguard-hang-$$
HANG_S=${HANG_S:-30}
source "$(dirname "$0")/agent_lib.sh"
URI=$PURI   # after agent_lib.sh, which names the shared libvirtd

QMP_DIR=$WORKDIR/qmp
mkdir -m 0750 "$QMP_DIR"
chown libvirt-qemu:libvirt-qemu "$QMP_DIR"
QMP=$QMP_DIR/monitor.sock

# qmp_writes SECONDS: extending 256 KiB writes into vda through the second
# monitor (HMP qemu-io wrapped in QMP), each on new clusters; few enough
# that 36 s of them leave the image growing and the filesystem room (an
# image that filled up is not switched)
qmp_writes() {
	python3 - "$QMP" "$1" "$WORKDIR/write-offset" <<'PY'
import json, os, socket, sys, time
path, secs, offfile = sys.argv[1], float(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_UNIX)
s.connect(path)
f = s.makefile("rw")
def cmd(c, **args):
    f.write(json.dumps({"execute": c, "arguments": args} if args else {"execute": c}) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            return r
json.loads(f.readline())   # greeting
cmd("qmp_capabilities")
off = int(open(offfile).read()) if os.path.exists(offfile) else 0
end = time.monotonic() + secs
while time.monotonic() < end and off < 12000:   # 256 KiB each: 3 GiB of the 8 GiB image at most
    r = cmd("human-monitor-command", **{"command-line":
        'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "aio_write -P 7 %dk 256k"' % (off * 256)})
    if "error" in r:
        sys.exit("qemu-io over QMP: %s" % r)
    off += 1
    time.sleep(0.01)
open(offfile, "w").write(str(off))
PY
}

say "a domain with a second QMP monitor on a private libvirtd"
qemu-img create -q -f qcow2 "$LOOP_MNT/sparse.qcow2" 8G
domain_xml "$DOM" "$(file_disk "$LOOP_MNT/sparse.qcow2" vda qcow2 native)" |
	sed -e "s|^<domain type='\([a-z]*\)'>|<domain type='\1' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>|" \
	    -e "s|^</domain>|  <qemu:commandline><qemu:arg value='-qmp'/><qemu:arg value='unix:$QMP,server=on,wait=off'/></qemu:commandline>\n</domain>|" \
	>"$WORKDIR/dom.xml"
domain_define_start "$DOM" "$(cat "$WORKDIR/dom.xml")"
for i in $(seq 100); do [ -S "$QMP" ] && break; sleep 0.1; done
[ -S "$QMP" ] || fail "QEMU made no QMP socket at $QMP"
virsh -c "$URI" dumpxml --inactive "$DOM" >"$WORKDIR/before.xml"
qmp_writes 0.1 || fail "no writes through the second monitor"

run_agent
METRICS=$(agent_metrics_url "$WORKDIR/agent.err")
stalls() {
	python3 - "$METRICS" "$DOM" <<'PY'
import re, sys, urllib.request
t = 0
for line in urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().splitlines():
    if line.startswith("aioguard_stalls_total{") and 'domain="%s"' % sys.argv[2] in line:
        t += float(line.split()[-1])
print(int(t))
PY
}
[ "$(metric "$METRICS" aioguard_libvirt_up)" = 1 ] || fail "libvirt_up is not 1 at start"

say "libvirtd stopped (SIGSTOP) for $HANG_S s while vda stalls"
LV=$(plibvirt_pid)
at_exit "kill -CONT $LV"
kill -STOP "$LV"
t_stop=$(date +%s.%N)
qmp_writes "$HANG_S" &   # the writes go on through the hang, apart from the scrapes
WRITER=$!
at_exit "kill $WRITER"
sleep 2
s1=$(stalls)
down_after=
while kill -0 "$WRITER" 2>/dev/null; do
	if [ -z "$down_after" ] && [ "$(metric "$METRICS" aioguard_libvirt_up)" = 0 ]; then
		down_after=$(python3 -c "import sys; print('%.1f' % (float(sys.argv[1]) - float(sys.argv[2])))" "$(date +%s.%N)" "$t_stop")
		echo "  aioguard_libvirt_up 0 after ${down_after} s"
	fi
	sleep 0.5
done
wait "$WRITER" || fail "writes through the second monitor failed"
s2=$(stalls)
echo "  aioguard_stalls_total during the hang: $s1 -> $s2"
[ -n "$down_after" ] || { cat "$WORKDIR/agent.err"; fail "aioguard_libvirt_up stayed 1 through the hang"; }
python3 -c "import sys; sys.exit(float(sys.argv[1]) > 15)" "$down_after" ||
	fail "libvirt_up dropped after $down_after s, not within 15 s"
[ "$s2" -gt "$s1" ] || fail "stalls did not keep counting during the hang ($s1 -> $s2)"
grep -q "has not answered" "$WORKDIR/agent.err" || fail "no log line about the hung libvirtd"
grep -q '"type":"decision"' "$WORKDIR/audit.jsonl" 2>/dev/null &&
	fail "a decision was taken while libvirtd hung: $(cat "$WORKDIR/audit.jsonl")"

say "set-io against the hung libvirtd"
t0=$(date +%s.%N)
rc=0
"$AIOGUARD" set-io -c "$URI" --timeout 5 --backup-dir "$WORKDIR/backups" "$DOM" vda threads \
	>"$WORKDIR/setio.out" 2>"$WORKDIR/setio.err" || rc=$?
took=$(python3 -c "import sys, time; print('%.1f' % (time.time() - float(sys.argv[1])))" "$t0")
echo "  set-io: exit $rc after $took s: $(cat "$WORKDIR/setio.err")"
[ "$rc" -eq 1 ] || fail "set-io exited $rc against a hung libvirtd"
python3 -c "import sys; sys.exit(not 5 <= float(sys.argv[1]) < 15)" "$took" || fail "set-io gave up after $took s, not 5"
grep -q "did not answer within 5 s; nothing was changed" "$WORKDIR/setio.err" || fail "set-io did not say what it left"

say "SIGCONT: libvirt answers again, the decision comes from a fresh inventory"
kill -CONT "$LV"
t_cont=$(date +%s.%N)
for i in $(seq 60); do
	[ "$(metric "$METRICS" aioguard_libvirt_up)" = 1 ] && break
	sleep 0.5
done
[ "$(metric "$METRICS" aioguard_libvirt_up)" = 1 ] || { cat "$WORKDIR/agent.err"; fail "libvirt_up not back to 1 within 30 s of SIGCONT"; }
echo "  aioguard_libvirt_up 1 again after $(python3 -c "import sys, time; print('%.1f' % (time.time() - float(sys.argv[1])))" "$t_cont") s"
qmp_writes 6
wait_audit dry-run 30
python3 - "$WORKDIR/audit.jsonl" "$t_cont" <<'PY' || fail "a decision predates SIGCONT"
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    assert d["ts"] >= float(sys.argv[2]), ("decided at", d["ts"], "libvirtd resumed at", sys.argv[2])
    print("  first decision %.1f s after SIGCONT: %s" % (d["ts"] - float(sys.argv[2]), d["reason"][:90]))
    break
PY
virsh -c "$URI" dumpxml --inactive "$DOM" >"$WORKDIR/after.xml"
same_xml "$WORKDIR/before.xml" "$WORKDIR/after.xml" || { diff "$WORKDIR/before.xml" "$WORKDIR/after.xml"; fail "the domain's XML changed"; }
[ -z "$(ls -A "$WORKDIR/backups" 2>/dev/null)" ] || fail "set-io left a backup behind: nothing was to be written"
grep -E "has not answered|answers again|lost the connection|connected to libvirt again" "$WORKDIR/agent.err" | sed 's/^/  agent: /'
stop_agent
echo "PASS"
