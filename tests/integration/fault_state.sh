#!/usr/bin/env bash
# Fault table, state directory rows (docs/RELIABILITY.md): the backup cannot
# be written, so set-io and the agent (--enforce) must change nothing and
# say why; the agent keeps running and applies once the state directory is
# usable again.
#   2. disk full (full): the state directory on a 1 MiB ext4, filled up;
#   3. state directory unwritable: immutable (chattr +i), read-only (a
#      read-only bind mount).
# Arguments: the faults, in order (default: full immutable readonly; not
# readonly first: the agent opens its audit log there). meson
# runs "full readonly" as fault_state and "immutable" as
# fault_state_immutable: only the latter skips where the filesystem cannot
# make a directory immutable.
# The running domain and the agent's set-up are agent_lib.sh's, on the
# shared libvirtd (lib.sh).
set -euo pipefail
FAULTS=("$@")
[ ${#FAULTS[@]} -gt 0 ] || FAULTS=(full immutable readonly)
declare -A ROW=([full]=2 [immutable]=3 [readonly]=3)
for f in "${FAULTS[@]}"; do
	[ -n "${ROW[$f]:-}" ] || { echo "fault_state.sh: unknown fault '$f' (full, immutable, readonly)" >&2; exit 2; }
done
ROWS=$(for f in "${FAULTS[@]}"; do echo "${ROW[$f]}"; done | sort -u | paste -sd, -)
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

# The faults: each put in place and lifted again; MSG is what set-io and
# the agent must say. The immutable bit is set and cleared through $RW: a
# read-only bind mount on $S refuses chattr too.
fault_msg() {
	case $1 in
	full) echo "No space left on device; nothing changed" ;;
	immutable) echo "Operation not permitted; nothing changed" ;;
	readonly) echo "Read-only file system; nothing changed" ;;
	esac
}
fault_on() {
	case $1 in
	full) fill_fs "$TINY_MNT" ;;
	immutable)
		chattr +i "$RW/state/backups" || skip "this filesystem cannot make directories immutable"
		at_exit "chattr -i '$RW/state/backups'"
		;;
	readonly)
		mount --bind "$S" "$S" && mount -o remount,bind,ro "$S" || fail "read-only bind mount of $S"
		at_exit "umount -l '$S'"
		;;
	esac
}
fault_off() {
	case $1 in
	full) rm -f "$TINY_MNT"/filler* ;;
	immutable) chattr -i "$RW/state/backups" ;;
	readonly) umount "$S" ;;
	esac
}

for f in "${FAULTS[@]}"; do
	say "row ${ROW[$f]} (set-io): $f"
	fault_on "$f"
	setio_refused "$(fault_msg "$f")" "$S/backups"
	no_backup_left
	# full: mkdir of a new backup directory fails the same way
	[ "$f" != full ] || setio_refused "$(fault_msg "$f")" "$S/new-backups"
	fault_off "$f"
done

say "rows ${ROWS} (agent --enforce): ${FAULTS[*]}, then usable"
fault_on "${FAULTS[0]}"
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
prev=
for f in "${FAULTS[@]}"; do
	if [ -n "$prev" ]; then
		fault_on "$f"
		fault_off "$prev"
	fi
	wait_refusal "$(fault_msg "$f")"
	prev=$f
done
fault_off "$prev"
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
echo "  audit log: $(grep -c '"result":"failed"' "$S/audit.jsonl" || true) refusal lines:" \
	"$(grep -o '"result":"failed".*"message":"[^"]*' "$S/audit.jsonl" | sed 's/.*: \([^:;]*\); nothing changed/\1/' | paste -sd, -)"
stop_agent
remove_domain
echo "PASS"
