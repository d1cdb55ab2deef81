# shellcheck shell=bash
# Set-up shared by the agent's end-to-end and fault tests: a running domain
# with a sparse qcow2 (vda) and a preallocated raw (vdb), both io='native'
# cache='none', on a loop-mounted ext4; writes that extend vda through QEMU's
# block layer; the agent in the background. Source after lib.sh, with
# WORKDIR, LOOP_MNT and libvirtd set up.
# Thresholds are lowered: a loop device allocates in ~0.1-1 ms, not the
# several ms of a real disk.

URI=qemu:///system
DOM=${DOM:-aioguard-agent-$$}
KNOBS=(--interval 2 --threshold-us 200 --stalls-per-window 3 --bad-windows 2 --history-windows 3 --listen 127.0.0.1:0)

new_domain() {
	rm -f "$LOOP_MNT/sparse.qcow2" "$LOOP_MNT/prealloc.raw" "$WORKDIR/write-offset"
	qemu-img create -q -f qcow2 "$LOOP_MNT/sparse.qcow2" 2G
	qemu-img create -q -f raw -o preallocation=falloc "$LOOP_MNT/prealloc.raw" 128M
	domain_define_start "$DOM" "$(domain_xml "$DOM" \
		"$(file_disk "$LOOP_MNT/sparse.qcow2" vda qcow2 native)" \
		"$(file_disk "$LOOP_MNT/prealloc.raw" vdb raw native)")"
	virsh -c "$URI" dumpxml --inactive "$DOM" >"$WORKDIR/before.xml"
}

# Extending 1 MiB writes into the sparse qcow2 until told to stop; the next
# call goes on where this one stopped, so every write lands on new clusters.
# Only while the domain runs (see qemu_io_if_running): the agent may save it.
drive_writes() {
	local off
	off=$(cat "$WORKDIR/write-offset" 2>/dev/null || echo 0)
	while [ -d "$WORKDIR" ] && [ ! -e "$WORKDIR/stop-writes" ] && [ "$off" -lt 2000 ]; do
		if ! qemu_io_if_running "$DOM" 0 "aio_write -P 7 ${off}M 1M" >/dev/null 2>&1; then
			sleep 0.05
			continue
		fi
		off=$((off + 1))
		echo "$off" >"$WORKDIR/write-offset"
	done
}

# wait_agent_started PID ERRFILE: the agent said it runs (30 s at most)
wait_agent_started() {
	local i
	for i in $(seq 300); do
		grep -q "^aioguard: running" "$2" && return 0
		kill -0 "$1" 2>/dev/null || { cat "$2"; fail "agent did not start"; }
		sleep 0.1
	done
	cat "$2"
	fail "agent not running after 30 s"
}

# run_agent MODE...: start the agent in the background, logs in $WORKDIR
run_agent() {
	"$AIOGUARD" run -c "$URI" --include "$DOM" "${KNOBS[@]}" "$@" --state-dir "$WORKDIR/state" \
		--audit-log "$WORKDIR/audit.jsonl" >"$WORKDIR/agent.out" 2>"$WORKDIR/agent.err" &
	AGENT_PID=$!
	at_exit "kill $AGENT_PID"
	check_dropped_privileges "$@"
}

# Once attached, every thread of the agent keeps only CAP_DAC_READ_SEARCH
# (bit 2) and has no_new_privs; the bounding set is emptied too where the
# agent could (it needs CAP_SETPCAP, which the systemd unit does not grant).
# check_dropped_privileges [AGENT_ARGS...]
check_dropped_privileges() {
	local t
	wait_agent_started "$AGENT_PID" "$WORKDIR/agent.err"
	# the metrics server's thread (libmicrohttpd's "MHD-…") is started
	# before that line; wait for it all the same, with a deadline
	if [[ " $* ${KNOBS[*]} " != *" --listen off "* ]]; then
		for i in $(seq 100); do
			grep -qs '^MHD-' /proc/"$AGENT_PID"/task/*/comm && break
			sleep 0.05
		done
		grep -qs '^MHD-' /proc/"$AGENT_PID"/task/*/comm || fail "no metrics thread in the agent"
	fi
	for t in /proc/"$AGENT_PID"/task/*; do
		grep -q "^CapEff:[[:space:]]*0000000000000004$" "$t/status" ||
			fail "thread ${t##*/} kept capabilities: $(grep ^Cap "$t/status" | tr '\n' ' ')"
		grep -q "^CapPrm:[[:space:]]*0000000000000004$" "$t/status" || fail "permitted set not dropped"
		[ -n "${EXPECT_BOUNDING_KEPT:-}" ] ||
			grep -q "^CapBnd:[[:space:]]*0000000000000004$" "$t/status" || fail "bounding set not dropped"
		grep -q "^NoNewPrivs:[[:space:]]*1$" "$t/status" || fail "no_new_privs not set"
	done
}

# wait_audit RESULT SECONDS: until the audit log has a decision with that result
wait_audit() {
	local i
	for i in $(seq $(($2 * 5))); do
		grep -q "\"result\":\"$1\"" "$WORKDIR/audit.jsonl" 2>/dev/null && return 0
		kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORKDIR/agent.err"; fail "agent died"; }
		sleep 0.2
	done
	cat "$WORKDIR/agent.err"
	fail "no '$1' decision within $2 s"
}

stop_agent() {
	kill -TERM "$AGENT_PID"
	local rc=0
	wait "$AGENT_PID" || rc=$?
	[ "$rc" -eq 0 ] || { tail -40 "$WORKDIR/agent.err"; fail "agent exited with $rc on SIGTERM"; }
	grep -q "stopping" "$WORKDIR/agent.err" || fail "agent did not stop cleanly"
}


start_writes() {
	rm -f "$WORKDIR/stop-writes"
	drive_writes &
	WRITER=$!
	at_exit "touch '$WORKDIR/stop-writes'; kill $WRITER"
}

stop_writes() {
	touch "$WORKDIR/stop-writes"
	wait "$WRITER" || true
}

remove_domain() {
	rm -f "$WORKDIR/write-offset"
	virsh -q -c "$URI" destroy "$DOM" >/dev/null 2>&1 || true
	virsh -q -c "$URI" undefine "$DOM" >/dev/null 2>&1 || true
	rm -f "$WORKDIR/audit.jsonl"
}
