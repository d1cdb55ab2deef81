/* SPDX-License-Identifier: GPL-2.0-only */
/* The eBPF observer (bpf/observer.bpf.c): load, attach, watch processes,
 * deliver stall events and read per-disk cumulative statistics. */
#ifndef AIOGUARD_OBSERVER_USER_H
#define AIOGUARD_OBSERVER_USER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../bpf/observer.h"
#include "aggregate.h"

/* What times the syscalls (each covers the same syscalls). */
enum observer_syscall_hooks {
	OBSERVER_HOOKS_AUTO,        /* the first of fentry, syscalls, raw that
	                               this kernel allows (docs/BENCHMARKS.md) */
	OBSERVER_HOOKS_FENTRY,      /* fentry/fexit on the syscall functions */
	OBSERVER_HOOKS_SYSCALLS,    /* classic syscalls:sys_{enter,exit}_<name> */
	OBSERVER_HOOKS_RAW_SYSCALLS,/* tp_btf raw_syscalls sys_enter/sys_exit */
};

struct observer_options {
	uint64_t stall_threshold_ns;     /* 0: 1 ms */
	const char *comm;                /* also watch every process of this
	                                    name (its main thread's comm, 15
	                                    chars at most) once it submits I/O */
	enum observer_syscall_hooks syscall_hooks;
	uint32_t slots;                  /* (disk, syscall) keys counted at
	                                    once; 0: OBS_MAX_DISKS. Tests
	                                    shrink it (observer_slots_from_env) */
};

/* AIOGUARD_BPF_SLOTS=N in the environment, for tests that run out of
 * slots without a rebuild: N (1..65536), 0 when unset; -1 (said) when
 * it is not such a number. */
int observer_slots_from_env(uint32_t *out);

struct observer_stall {
	double ts;                /* seconds since the epoch (CLOCK_REALTIME) */
	pid_t pid, tid;
	char thread[OBS_COMM_LEN];
	uint64_t dev, ino;        /* stat() encoding */
	enum obs_syscall syscall;
	uint64_t duration_ns, alloc_ns, offcpu_ns, bytes;
	uint32_t iocbs;
};

struct observer_callbacks {
	void (*stall)(const struct observer_stall *stall, void *ctx);
	/* The first submission of some process to (dev, ino) with a syscall:
	 * the moment to name the file, while the process still has it open. */
	void (*new_file)(pid_t pid, uint64_t dev, uint64_t ino, void *ctx);
	void *ctx;
};

struct observer;

/* Open, load and attach. Errors are said on stderr in words (not root, no
 * BTF, a hook missing and what is lost); -1 then, 0 on success. */
int observer_open(const struct observer_options *opts, struct observer **out);
void observer_close(struct observer *o);

/* What was attached, one line, for the log. */
const char *observer_hooks(const struct observer *o);

/* The same as a list: each hook group, how it is attached, and whether it is. */
struct observer_hook {
	const char *what;     /* "syscalls", "off-CPU", "ext4 alloc", … */
	const char *how;      /* "tp_btf/<tracepoint>", "tracepoint …", "missing" */
	bool attached;
};
size_t observer_hook_list(const struct observer *o, const struct observer_hook **out);

/* A new stall threshold for the running programs (0: 1 ms). */
void observer_set_stall_threshold(struct observer *o, uint64_t ns);

/* Start (watch) or stop timing the submissions of a process. */
int observer_watch_tgid(struct observer *o, pid_t tgid, bool watch);
/* The watched processes, including those the comm filter added. Returns the
 * count; *out is malloc()ed. */
size_t observer_watched(const struct observer *o, pid_t **out);

/* Wait up to timeout_ms for events and hand each to its callback. Returns
 * the number handled, or -errno (-EINTR when a signal arrived). Stall
 * events do not end the wait (they do not wake the reader): call it at
 * least every 200 ms so that they are told that late at most. */
int observer_poll(struct observer *o, int timeout_ms, const struct observer_callbacks *cb);

/* Cumulative statistics of every (disk, syscall) seen so far, replacing
 * *out's contents; closes the current interval for interval_max_ns. */
int observer_read(struct observer *o, struct agg_snapshot *out);

/* Stop counting a (disk, syscall), typically one idle for long: its slot
 * is reused (there are observer_slots_total()). Counting restarts from zero should
 * it be used again. 0, or -ENOENT when not counted. */
int observer_forget(struct observer *o, const struct agg_key *key);

/* Decode one ring buffer record (untrusted size): OBS_EVENT_STALL or
 * OBS_EVENT_NEW_FILE with *out filled (new-file: pid, dev, ino), -1 when
 * it is short or of no known type. Pure, for tests and fuzzing. */
int observer_decode_event(const void *data, size_t size, double realtime_offset,
			  struct observer_stall *out);

/* Events lost because the ring buffer was full. */
uint64_t observer_lost_events(const struct observer *o);
/* Submissions not counted because every slot was taken. */
uint64_t observer_untracked(const struct observer *o);
/* The slots there are, and those holding a key (as of the last
 * observer_read, less those forgotten since). */
uint32_t observer_slots_total(const struct observer *o);
uint32_t observer_slots_in_use(const struct observer *o);
/* The kernel memory their statistics take: per-CPU values, so slots ×
 * possible CPUs × 344 bytes (the other three slot maps add ~125 bytes a
 * slot: bpftool, 4096 slots). */
size_t observer_slots_kernel_bytes(const struct observer *o);

/* "io_submit", "pwritev", …; "?" for anything else. */
const char *obs_syscall_name(enum obs_syscall sc);

/* The kernel's dev_t (MAJOR << 20 | MINOR) as stat() reports st_dev, and back. */
uint64_t observer_dev_from_kernel(uint64_t kdev);
uint64_t observer_dev_to_kernel(uint64_t dev);

#endif
