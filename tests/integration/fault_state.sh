#!/usr/bin/env bash
# Fault table, state directory rows (docs/RELIABILITY.md): the backup cannot
# be written, so set-io and the agent (--enforce) must change nothing and
# say why; the agent keeps running and applies once the state directory is
# usable again.
#   2. disk full: the state directory on a 1 MiB ext4, filled up;
#   3. state directory unwritable: chattr +i, then a read-only bind mount.
# The running domain and the agent's set-up are agent_lib.sh's, on the
# shared libvirtd (lib.sh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fault_lib.sh"
need_root
make_workdir
loopfs_make ext4 1024
libvirtd_start
source "$(dirname "$0")/agent_lib.sh"

tinyfs_make state 1024
S=$TINY_MNT/state
mkdir -m 700 "$S" "$S/backups"
# the same filesystem, writable, for the test while $S is mounted read-only
RW=$WORKDIR/state-rw
mkdir "$RW"
mount --bind "$TINY_MNT" "$RW" || fail "bind mount of $TINY_MNT"
at_exit "umount -l '$RW'"
new_domain
xml_unchanged() {
	same_xml <(virsh -c "$URI" dumpxml --inactive "$DOM") "$WORKDIR/before.xml" ||
		fail "persistent XML changed: $1"
	[ "$(disk_io "$URI" "$DOM" vda)" = native ] || fail "live io changed: $1"
}
no_backup_left() {
	[ -z "$(ls -A "$S/backups")" ] || fail "a partial backup was left: $(ls "$S/backups")"
}

# setio_refused EXPECTED DIR: set-io must exit 1 saying EXPECTED, change nothing
setio_refused() {
	local rc=0 msg
	"$AIOGUARD" set-io -c "$URI" --backup-dir "$2" "$DOM" vda threads \
		>"$WORKDIR/setio.out" 2>"$WORKDIR/setio.err" || rc=$?
	msg=$(cat "$WORKDIR/setio.err")
	echo "  set-io (exit $rc): $msg"
	[ "$rc" -eq 1 ] || fail "set-io exited $rc"
	[[ "$msg" == *"$1"* ]] || fail "set-io does not say '$1'"
	xml_unchanged "set-io: $1"
}

say "row 2 (set-io): state directory on a full filesystem"
fill_fs "$TINY_MNT"
setio_refused "No space left on device; nothing changed" "$S/backups"
no_backup_left
setio_refused "No space left on device; nothing changed" "$S/new-backups"   # mkdir fails

say "row 3 (set-io): state directory immutable, then read-only"
rm -f "$TINY_MNT"/filler*
chattr +i "$S/backups" || skip "this filesystem cannot make directories immutable"
at_exit "chattr -i '$S/backups'"
setio_refused "Operation not permitted; nothing changed" "$S/backups"
chattr -i "$S/backups"
mount --bind "$S" "$S" && mount -o remount,bind,ro "$S" || fail "read-only bind mount of $S"
at_exit "umount -l '$S'"
setio_refused "Read-only file system; nothing changed" "$S/backups"
umount "$S"

say "rows 2 and 3 (agent --enforce): full, immutable, read-only, then usable"
fill_fs "$TINY_MNT"
# the audit log is in the state directory too (the default), as deployed
"$AIOGUARD" run -c "$URI" --include "$DOM" "${KNOBS[@]}" --enforce --cooldown 4 \
	--state-dir "$S" >"$WORKDIR/agent.out" 2>"$WORKDIR/agent.err" &
AGENT_PID=$!
at_exit "kill $AGENT_PID"
check_dropped_privileges
start_writes

# wait_refusal TEXT: until the agent's log says it refused with TEXT
wait_refusal() {
	local i
	for i in $(seq 300); do
		grep -q "$DOM/vda: .*$1" "$WORKDIR/agent.err" && break
		kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORKDIR/agent.err"; fail "agent died"; }
		sleep 0.2
	done
	grep -q "$DOM/vda: .*$1" "$WORKDIR/agent.err" || { cat "$WORKDIR/agent.err"; fail "the agent did not say '$1'"; }
	grep "$DOM/vda: .*$1" "$WORKDIR/agent.err" | tail -1 | sed 's/^/  agent: /'
	xml_unchanged "agent: $1"
	no_backup_left
}

# Each fault is in place before the previous one is lifted: the agent
# retries after its cooldown and must never find the directory usable.
wait_refusal "No space left on device; nothing changed"
chattr +i "$S/backups"
rm -f "$TINY_MNT"/filler*
wait_refusal "Operation not permitted; nothing changed"
mount --bind "$S" "$S" && mount -o remount,bind,ro "$S" || fail "read-only bind mount of $S"
chattr -i "$RW/state/backups"
wait_refusal "Read-only file system; nothing changed"
umount "$S"
for _ in $(seq 300); do
	grep -q '"result":"applied"' "$S/audit.jsonl" 2>/dev/null && break
	kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORKDIR/agent.err"; fail "agent died"; }
	sleep 0.2
done
grep -q '"result":"applied"' "$S/audit.jsonl" || { cat "$WORKDIR/agent.err"; fail "no 'applied' once the state directory was usable"; }
stop_writes
[ "$(disk_io "$URI" "$DOM" vda --inactive)" = threads ] || fail "vda not switched once usable"
backup=$(ls "$S"/backups/*.xml)
[ "$(stat -c %a "$backup")" = 600 ] || fail "backup mode"
same_xml "$backup" "$WORKDIR/before.xml" || fail "the backup is not the XML before the change"
echo "  usable again: applied, backup $(basename "$backup")"
# The audit log lives on the state filesystem: a line written while it was
# full cannot be there; stderr (the journal) and syslog have every refusal.
echo "  audit log: $(grep -c '"result":"failed"' "$S/audit.jsonl" || true) of the 3 refusals:" \
	"$(grep -o '"result":"failed".*"message":"[^"]*' "$S/audit.jsonl" | sed 's/.*: \([^:;]*\); nothing changed/\1/' | paste -sd, -)"
stop_agent
remove_domain
echo "PASS"
