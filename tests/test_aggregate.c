// SPDX-License-Identifier: GPL-2.0-only
/* aggregate.c: interval deltas and histogram quantiles, without root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "aggregate.h"

#define EPS 1e-9

static void empty_histogram_is_zero(void **state)
{
	uint64_t slots[OBS_SLOTS] = {0};

	assert_float_equal(agg_quantile_us(slots, 0.5, 100), 0.0, EPS);
}

/* Slot k >= 1 covers [2^k, 2^(k+1)) us: the median of one full slot lies
 * halfway through it. */
static void interpolates_inside_a_slot(void **state)
{
	uint64_t slots[OBS_SLOTS] = {0};

	slots[3] = 10;  /* [8, 16) us */
	assert_float_equal(agg_quantile_us(slots, 0.5, 0), 12.0, EPS);
	assert_float_equal(agg_quantile_us(slots, 1.0, 0), 16.0, EPS);
}

static void slot_zero_starts_at_zero(void **state)
{
	uint64_t slots[OBS_SLOTS] = {0};

	slots[0] = 4;  /* [0, 2) us */
	assert_float_equal(agg_quantile_us(slots, 0.5, 0), 1.0, EPS);
}

static void capped_at_the_true_maximum(void **state)
{
	uint64_t slots[OBS_SLOTS] = {0};

	slots[10] = 100;  /* [1024, 2048) us, but nothing took longer than 1100 */
	assert_float_equal(agg_quantile_us(slots, 0.99, 1100), 1100.0, EPS);
	assert_float_equal(agg_quantile_us(slots, 0.05, 1100), 1024.0 + 0.05 * 1024, EPS);
}

static void quantiles_across_slots(void **state)
{
	uint64_t slots[OBS_SLOTS] = {0};

	slots[0] = 50;
	slots[10] = 50;
	assert_float_equal(agg_quantile_us(slots, 0.50, 0), 2.0, EPS);
	assert_float_equal(agg_quantile_us(slots, 0.99, 0), 1024.0 + 49.0 / 50 * 1024, EPS);
}

static void last_slot_is_open_ended(void **state)
{
	uint64_t slots[OBS_SLOTS] = {0};

	slots[OBS_SLOTS - 1] = 1;  /* [2^31 us, the maximum) */
	assert_float_equal(agg_quantile_us(slots, 0.5, 5e9), 0.5 * (2147483648.0 + 5e9), EPS);
}

static struct agg_entry entry(uint64_t count, uint64_t slot3, uint64_t alloc_ns, uint64_t max_ns)
{
	struct agg_entry e = {
		.key = {.dev = 2049, .ino = 12, .syscall = OBS_SC_IO_SUBMIT},
		.c = {
			.count = count,
			.iocbs = 2 * count,
			.bytes = 4096 * count,
			.sum_ns = 10000 * count,
			.alloc_ns = alloc_ns,
			.offcpu_ns = alloc_ns / 2,
			.stalls = count / 10,
			.interval_max_ns = max_ns,
		},
	};
	e.c.slots[3] = slot3;
	e.c.slots[0] = count - slot3;
	return e;
}

static void interval_is_the_difference(void **state)
{
	struct agg_entry prev = entry(100, 0, 5000, 1000), now = entry(300, 200, 45000, 15000);
	struct agg_interval r;

	assert_int_equal(agg_interval(&prev, &now, &r), 0);
	assert_int_equal(r.submits, 200);
	assert_int_equal(r.iocbs, 400);
	assert_int_equal(r.bytes, 200 * 4096);
	assert_int_equal(r.stalls, 20);
	assert_float_equal(r.alloc_us, 40.0, EPS);
	assert_float_equal(r.offcpu_us, 20.0, EPS);
	assert_float_equal(r.max_us, 15.0, EPS);
	assert_float_equal(r.p50_us, 12.0, EPS);  /* all 200 new ones in [8, 16) */
	assert_float_equal(r.p99_us, 15.0, EPS);  /* 15.92 capped at the max */
	assert_int_equal(r.key.ino, 12);
}

static void interval_without_prev_counts_from_zero(void **state)
{
	struct agg_entry now = entry(10, 10, 0, 9000);
	struct agg_interval r;

	assert_int_equal(agg_interval(NULL, &now, &r), 0);
	assert_int_equal(r.submits, 10);
}

static void idle_interval_is_skipped(void **state)
{
	struct agg_entry e = entry(10, 10, 0, 9000);
	struct agg_interval r;

	assert_int_equal(agg_interval(&e, &e, &r), -1);
}

static void counters_going_back_are_skipped(void **state)
{
	struct agg_entry prev = entry(300, 200, 0, 0), now = entry(100, 50, 0, 0);
	struct agg_interval r;

	assert_int_equal(agg_interval(&prev, &now, &r), -1);
}

static void missing_max_falls_back_to_the_histogram(void **state)
{
	struct agg_entry now = entry(10, 10, 0, 0);
	struct agg_interval r;

	assert_int_equal(agg_interval(NULL, &now, &r), 0);
	assert_float_equal(r.max_us, 16.0, EPS);
}

static void add(struct agg_snapshot *s, uint64_t ino, uint64_t count, uint64_t stalls,
		uint64_t slot)
{
	struct agg_key k = {.dev = 1, .ino = ino, .syscall = OBS_SC_PWRITEV};
	struct agg_counters *c = &agg_snapshot_add(s, &k)->c;

	c->count = count;
	c->stalls = stalls;
	c->slots[slot] = count;
}

static void intervals_worst_first_and_only_active(void **state)
{
	struct agg_snapshot prev = {0}, now = {0};
	struct agg_interval *rows;

	add(&prev, 1, 10, 0, 2);
	add(&prev, 2, 10, 0, 2);
	add(&now, 1, 10, 0, 2);   /* idle: left out */
	add(&now, 2, 20, 0, 2);   /* 10 more, slow but no stall */
	now.v[now.n - 1].c.slots[2] = 10;
	now.v[now.n - 1].c.slots[12] = 10;
	add(&now, 3, 5, 5, 2);    /* new since prev, all stalls */
	add(&now, 4, 7, 0, 1);    /* new, fast */

	size_t n = agg_intervals(&prev, &now, &rows);
	assert_int_equal(n, 3);
	assert_int_equal(rows[0].key.ino, 3);
	assert_int_equal(rows[1].key.ino, 2);
	assert_int_equal(rows[2].key.ino, 4);
	assert_int_equal(rows[1].submits, 10);
	free(rows);
	agg_snapshot_free(&prev);
	agg_snapshot_free(&now);
}

static void snapshot_grows_finds_and_clears(void **state)
{
	struct agg_snapshot s = {0};

	for (uint64_t i = 0; i < 100; i++)
		add(&s, i, i + 1, 0, 0);
	struct agg_key k = {.dev = 1, .ino = 42, .syscall = OBS_SC_PWRITEV};
	assert_non_null(agg_snapshot_find(&s, &k));
	assert_int_equal(agg_snapshot_find(&s, &k)->c.count, 43);
	k.syscall = OBS_SC_IO_SUBMIT;
	assert_null(agg_snapshot_find(&s, &k));
	agg_snapshot_clear(&s);
	assert_int_equal(s.n, 0);
	agg_snapshot_free(&s);
}

/* What a stall is (agg_blocks_guest): one row per (syscall, mode); each row
 * a test of its own. */
struct blocks_row {
	const char *name;
	uint32_t syscall;
	enum io_mode io;
	bool io_known, blocks;
};

static const struct blocks_row blocks_rows[] = {
	{"native: io_submit is the stall", OBS_SC_IO_SUBMIT, IO_MODE_NATIVE, true, true},
	{"native: a pool worker's fdatasync is a pool wait", OBS_SC_FDATASYNC, IO_MODE_NATIVE, true, false},
	{"native: fallocate (qcow2 cluster zeroing) is a pool wait", OBS_SC_FALLOCATE, IO_MODE_NATIVE, true, false},
	{"native: a write handed to the pool is a pool wait", OBS_SC_PWRITEV, IO_MODE_NATIVE, true, false},
	{"io_uring: io_uring_enter is the stall", OBS_SC_IO_URING_ENTER, IO_MODE_IO_URING, true, true},
	{"io_uring: fdatasync is a pool wait", OBS_SC_FDATASYNC, IO_MODE_IO_URING, true, false},
	{"io_uring: pread64 in the pool is a pool wait", OBS_SC_PREAD64, IO_MODE_IO_URING, true, false},
	{"threads: the pool's pwrite64 is the stall", OBS_SC_PWRITE64, IO_MODE_THREADS, true, true},
	{"threads: the pool's pwritev is the stall", OBS_SC_PWRITEV, IO_MODE_THREADS, true, true},
	{"threads: preadv2 is the stall", OBS_SC_PREADV2, IO_MODE_THREADS, true, true},
	{"threads: fdatasync is a pool wait", OBS_SC_FDATASYNC, IO_MODE_THREADS, true, false},
	{"threads: fallocate is a pool wait", OBS_SC_FALLOCATE, IO_MODE_THREADS, true, false},
	{"no io attribute (QEMU's default threads): pwritev2 is the stall", OBS_SC_PWRITEV2, IO_MODE_UNSET, true, true},
	{"no io attribute: fdatasync is a pool wait", OBS_SC_FDATASYNC, IO_MODE_UNSET, true, false},
	{"threads: an io_submit left from before a switch still blocked its thread", OBS_SC_IO_SUBMIT, IO_MODE_THREADS, true, true},
	{"mode unknown: io_submit is the stall", OBS_SC_IO_SUBMIT, IO_MODE_UNSET, false, true},
	{"mode unknown: io_uring_enter is the stall", OBS_SC_IO_URING_ENTER, IO_MODE_UNSET, false, true},
	{"mode unknown: pwrite64 is taken as pool work", OBS_SC_PWRITE64, IO_MODE_UNSET, false, false},
	{"mode unknown: fdatasync is a pool wait", OBS_SC_FDATASYNC, IO_MODE_UNSET, false, false},
	{"unknown syscall number: not a stall", OBS_SC_COUNT, IO_MODE_NATIVE, true, false},
};

static void blocks_row(void **state)
{
	const struct blocks_row *r = *state;

	assert_int_equal(agg_blocks_guest(r->syscall, r->io, r->io_known), r->blocks);
}

int main(void)
{
	struct CMUnitTest rows[sizeof(blocks_rows) / sizeof(blocks_rows[0])];
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		rows[i] = (struct CMUnitTest){blocks_rows[i].name, blocks_row, NULL, NULL,
					      (void *)&blocks_rows[i]};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(empty_histogram_is_zero),
		cmocka_unit_test(interpolates_inside_a_slot),
		cmocka_unit_test(slot_zero_starts_at_zero),
		cmocka_unit_test(capped_at_the_true_maximum),
		cmocka_unit_test(quantiles_across_slots),
		cmocka_unit_test(last_slot_is_open_ended),
		cmocka_unit_test(interval_is_the_difference),
		cmocka_unit_test(interval_without_prev_counts_from_zero),
		cmocka_unit_test(idle_interval_is_skipped),
		cmocka_unit_test(counters_going_back_are_skipped),
		cmocka_unit_test(missing_max_falls_back_to_the_histogram),
		cmocka_unit_test(intervals_worst_first_and_only_active),
		cmocka_unit_test(snapshot_grows_finds_and_clears),
	};
	return cmocka_run_group_tests(tests, NULL, NULL) |
	       cmocka_run_group_tests_name("what a stall is", rows, NULL, NULL);
}
