/* SPDX-License-Identifier: GPL-2.0-only */
/* Interval figures from the observer's cumulative per-disk counters. Pure:
 * no I/O, no clock, so every rule is a cmocka test. */
#ifndef AIOGUARD_AGGREGATE_H
#define AIOGUARD_AGGREGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../bpf/observer.h"
#include "../policy/facts.h"

struct agg_key {
	uint64_t dev, ino;     /* stat() encoding */
	uint32_t syscall;      /* enum obs_syscall */
};

/* Cumulative counters of one (disk, syscall), summed over CPUs. `stalls`
 * counts every call that took the threshold or longer: whether that is a
 * stall or a pool wait is agg_blocks_guest()'s to say. */
struct agg_counters {
	uint64_t count, iocbs, bytes, sum_ns, alloc_ns, offcpu_ns, stalls;
	uint64_t slots[OBS_SLOTS];
	uint64_t interval_max_ns;  /* longest submission of the interval that
	                              this read closed (not cumulative) */
};

struct agg_entry {
	struct agg_key key;
	struct agg_counters c;
};

struct agg_snapshot {
	struct agg_entry *v;
	size_t n, cap;
};

/* One (disk, syscall) over one interval. stalls: calls >= the threshold
 * (a stall or a pool wait: agg_blocks_guest). */
struct agg_interval {
	struct agg_key key;
	uint64_t submits, iocbs, bytes, stalls;
	double p50_us, p99_us, max_us, alloc_us, offcpu_us;
};

/* What a stall is, for watch, the agent, the metrics, the JSON lines and
 * the audit alike: a call that blocks the thread submitting the guest's
 * I/O in the disk's mode. io_submit (native) and io_uring_enter (io_uring)
 * are made only by that thread (QEMU's main loop or an iothread), whatever
 * the mode. With threads (io='threads', or no io: QEMU's default) the
 * submission is the pool's read or write itself (pwritev, preadv, pwrite64,
 * pread64 and the v2 forms). Everything else is a pool wait: fdatasync and
 * fallocate run in QEMU's worker pool in every mode, and so do the reads and
 * writes a native or io_uring disk hands to the pool; the guest does not
 * wait for them to be submitted.
 * io_known false (a process watched without libvirt, a file no disk owns):
 * the read/write family counts as pool work, since only io='threads' makes
 * it the submission. */
bool agg_blocks_guest(uint32_t syscall, enum io_mode io, bool io_known);

bool agg_key_equal(const struct agg_key *a, const struct agg_key *b);

struct agg_entry *agg_snapshot_add(struct agg_snapshot *s, const struct agg_key *key);
const struct agg_entry *agg_snapshot_find(const struct agg_snapshot *s, const struct agg_key *key);
void agg_snapshot_clear(struct agg_snapshot *s);
void agg_snapshot_free(struct agg_snapshot *s);

/* Quantile q (0..1) in microseconds of a log2 histogram (see OBS_SLOTS).
 * Linear interpolation inside the slot holding the q-th submission, by its
 * rank among that slot's submissions; capped at max_us (the true maximum)
 * since a slot's upper bound may exceed it, and the open-ended last slot is
 * taken to end at max_us. 0 for an empty histogram. */
double agg_quantile_us(const uint64_t slots[OBS_SLOTS], double q, double max_us);

/* The interval between two reads of the same key (prev NULL: since zero).
 * Returns 0 and fills *out, or -1 when nothing was submitted in it or the
 * counters went backwards (the observer was restarted). */
int agg_interval(const struct agg_entry *prev, const struct agg_entry *now,
		 struct agg_interval *out);

/* Every key of `now` with submissions since `prev`, worst first (most
 * calls >= the threshold, then highest p99, then max). Returns the count; *out is malloc()ed. */
size_t agg_intervals(const struct agg_snapshot *prev, const struct agg_snapshot *now,
		     struct agg_interval **out);

#endif
