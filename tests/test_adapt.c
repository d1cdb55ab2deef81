// SPDX-License-Identifier: GPL-2.0-only
/* The adaptive rule as a table: each row is a disk's situation and the
 * decision it must get; each row is a test of its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../policy/adapt.h"

/* Rows start from a base disk and override a field or two. */
#pragma GCC diagnostic ignored "-Woverride-init"

static const struct adapt_window quiet = {.submits = 1000, .length_ms = 10000};
static const struct adapt_window stalling = {.submits = 1000, .stalls = 8, .stalled_us = 16000,
					     .length_ms = 10000};
/* the same with time measured inside filesystem block allocation */
static const struct adapt_window stalling_alloc = {.submits = 1000, .stalls = 8, .stalled_us = 16000,
						   .alloc_us = 700, .length_ms = 10000};
/* 2 stalls, but 200 ms frozen in 10 s: bad by time, not by count */
static const struct adapt_window long_stalls = {.submits = 10, .stalls = 2, .stalled_us = 200000,
						.length_ms = 10000};

struct row {
	const char *name;
	struct adapt_disk disk;
	const struct adapt_window *w[8];
	uint32_t changes_last_hour;
	bool switch_back;
	enum adapt_action action;
	enum io_mode to;
	const char *reason_has;
};

#define NATIVE_SPARSE .io = IO_MODE_NATIVE, .io_next_boot = IO_MODE_NATIVE, .cache = "none", \
	.image = IMAGE_SPARSE, .last_change_s = -1, .last_stall_s = -1, .watched_since_s = 0

static const struct row rows[] = {
	{"three of five bad windows switch", {NATIVE_SPARSE},
	 {&quiet, &stalling, &quiet, &stalling, &stalling}, 0, false,
	 ADAPT_SWITCH, IO_MODE_THREADS, "stalled in 3 of the last 5"},
	{"two of five is not enough (hysteresis)", {NATIVE_SPARSE},
	 {&stalling, &quiet, &quiet, &quiet, &stalling}, 0, false,
	 ADAPT_KEEP, IO_MODE_NATIVE, "2 of the last 5"},
	{"bad windows older than the last five do not count", {NATIVE_SPARSE},
	 {&stalling, &stalling, &stalling, &quiet, &quiet, &quiet, &quiet, &quiet}, 0, false,
	 ADAPT_KEEP, IO_MODE_NATIVE, "0 of the last 5"},
	{"stalled time alone makes a window bad", {NATIVE_SPARSE},
	 {&long_stalls, &long_stalls, &long_stalls}, 0, false,
	 ADAPT_SWITCH, IO_MODE_THREADS, "3 of the last 5"},
	{"growing qcow2 switches too", {.io = IO_MODE_NATIVE, .io_next_boot = IO_MODE_NATIVE, .cache = "none",
	  .image = IMAGE_GROWING, .last_change_s = -1, .last_stall_s = -1},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_SWITCH, IO_MODE_THREADS, "growing image"},
	{"allocated image stalling: advise only", {.io = IO_MODE_NATIVE, .io_next_boot = IO_MODE_NATIVE,
	  .cache = "none", .image = IMAGE_ALLOCATED, .last_change_s = -1, .last_stall_s = -1},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_ADVISE_ONLY, IO_MODE_THREADS, "not block allocation"},
	{"no allocation time: the reason does not claim allocation", {NATIVE_SPARSE},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_SWITCH, IO_MODE_THREADS,
	 "io_submit blocked the submitting thread (no block allocation time measured in these "
	 "windows: the write extended the file or waited for completion)"},
	{"allocation time measured: said, summed", {NATIVE_SPARSE},
	 {&stalling, &stalling_alloc, &stalling_alloc}, 0, false, ADAPT_SWITCH, IO_MODE_THREADS,
	 "io_submit blocked the submitting thread, 1400 µs of it in filesystem block allocation"},
	{"opted out: advise only", {NATIVE_SPARSE, .opted_out = OPT_OUT_DOMAIN},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_ADVISE_ONLY, IO_MODE_THREADS,
	 "would switch to threads, but the domain opted out (aioguard metadata)"},
	{"domain opted out in the live XML", {NATIVE_SPARSE, .opted_out = OPT_OUT_DOMAIN,
	  .opt_out_xml = OPT_OUT_IN_LIVE, .target = "vda"},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_ADVISE_ONLY, IO_MODE_THREADS,
	 "but the domain opted out (aioguard metadata in its live XML)"},
	{"one disk opted out: named", {NATIVE_SPARSE, .opted_out = OPT_OUT_DISK,
	  .opt_out_xml = OPT_OUT_IN_PERSISTENT, .target = "vdb"},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_ADVISE_ONLY, IO_MODE_THREADS,
	 "would switch to threads, but disk vdb opted out (aioguard metadata in its persistent XML)"},
	{"opted out in both XMLs", {NATIVE_SPARSE, .opted_out = OPT_OUT_DISK,
	  .opt_out_xml = OPT_OUT_IN_LIVE | OPT_OUT_IN_PERSISTENT, .target = "vdb"},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_ADVISE_ONLY, IO_MODE_THREADS,
	 "disk vdb opted out (aioguard metadata in its live and persistent XML)"},
	{"cooldown after a change", {NATIVE_SPARSE, .last_change_s = 3700},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_ADVISE_ONLY, IO_MODE_THREADS, "cooldown 600s"},
	{"cooldown over", {NATIVE_SPARSE, .last_change_s = 3000},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_SWITCH, IO_MODE_THREADS, "stalled"},
	{"global rate limit", {NATIVE_SPARSE},
	 {&stalling, &stalling, &stalling}, 10, false, ADAPT_ADVISE_ONLY, IO_MODE_THREADS, "limit"},
	{"already threads for next boot", {NATIVE_SPARSE, .io_next_boot = IO_MODE_THREADS},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_KEEP, IO_MODE_THREADS, "next boot"},
	{"switch back disabled by default", {.io = IO_MODE_THREADS, .io_next_boot = IO_MODE_THREADS,
	  .cache = "none", .image = IMAGE_ALLOCATED, .last_change_s = -1, .last_stall_s = -1},
	 {&quiet}, 0, false, ADAPT_KEEP, IO_MODE_THREADS, "disabled"},
	{"switch back once allocated and quiet", {.io = IO_MODE_THREADS, .io_next_boot = IO_MODE_THREADS,
	  .cache = "none", .image = IMAGE_ALLOCATED, .last_change_s = -1, .last_stall_s = -1},
	 {&quiet}, 0, true, ADAPT_SWITCH, IO_MODE_NATIVE, "fully allocated"},
	{"no switch back while still sparse", {.io = IO_MODE_THREADS, .io_next_boot = IO_MODE_THREADS,
	  .cache = "none", .image = IMAGE_SPARSE, .last_change_s = -1, .last_stall_s = -1},
	 {&quiet}, 0, true, ADAPT_KEEP, IO_MODE_THREADS, "not fully allocated"},
	{"no switch back after a recent stall", {.io = IO_MODE_THREADS, .io_next_boot = IO_MODE_THREADS,
	  .cache = "none", .image = IMAGE_ALLOCATED, .last_change_s = -1, .last_stall_s = 3000},
	 {&quiet}, 0, true, ADAPT_KEEP, IO_MODE_THREADS, "quiet for 1000s"},
	{"cache guard on switch back", {.io = IO_MODE_THREADS, .io_next_boot = IO_MODE_THREADS,
	  .cache = "writeback", .image = IMAGE_ALLOCATED, .last_change_s = -1, .last_stall_s = -1},
	 {&quiet}, 0, true, ADAPT_ADVISE_ONLY, IO_MODE_NATIVE, "cannot take native"},
	{"io_uring is left alone", {.io = IO_MODE_IO_URING, .io_next_boot = IO_MODE_IO_URING,
	  .cache = "none", .image = IMAGE_SPARSE, .last_change_s = -1, .last_stall_s = -1},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_KEEP, IO_MODE_IO_URING, "io-wq"},
	{"no io attribute is left alone", {.io = IO_MODE_UNSET, .io_next_boot = IO_MODE_UNSET,
	  .cache = "none", .image = IMAGE_SPARSE, .last_change_s = -1, .last_stall_s = -1},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_KEEP, IO_MODE_UNSET, "left alone"},
};

/* One cmocka test per row (its state), named after it: a wrong row does not
 * hide the others. */
static void decision_row(void **state)
{
	const struct row *r = *state;
	struct adapt_window w[8];
	struct adapt_config c;
	struct adapt_disk d = r->disk;
	struct adapt_global g = {.now_s = 4000, .changes_last_hour = r->changes_last_hour};
	struct adapt_decision out;

	adapt_config_defaults(&c);
	c.switch_back = r->switch_back;
	d.nwindows = 0;
	for (; d.nwindows < 8 && r->w[d.nwindows]; d.nwindows++)
		w[d.nwindows] = *r->w[d.nwindows];
	d.windows = w;
	adapt_decide(&c, &d, &g, &out);
	print_message("%-50s -> %s %s: %s\n", r->name, adapt_action_name(out.action),
		      io_mode_name(out.to) ? io_mode_name(out.to) : "-", out.reason);
	assert_int_equal(out.action, r->action);
	assert_int_equal(out.to, r->to);
	assert_non_null(strstr(out.reason, r->reason_has));
}

static void window_thresholds(void **state)
{
	struct adapt_config c;
	adapt_config_defaults(&c);
	struct adapt_window w = {.stalls = 4, .stalled_us = 99999, .length_ms = 10000};
	assert_false(adapt_window_is_bad(&c, &w));   /* 4 < 5 and 9.9 ms/s < 10 */
	w.stalled_us = 100000;
	assert_true(adapt_window_is_bad(&c, &w));    /* exactly 10 ms/s */
	w = (struct adapt_window){.stalls = 5};
	assert_true(adapt_window_is_bad(&c, &w));
	w = (struct adapt_window){.stalled_us = 1000000, .length_ms = 0};
	assert_false(adapt_window_is_bad(&c, &w));   /* no length, no rate */
}

static void config_check(void **state)
{
	struct adapt_config c;
	adapt_config_defaults(&c);
	assert_null(adapt_config_check(&c));
	c.history_windows = 2;                          /* fewer than bad_windows */
	assert_non_null(adapt_config_check(&c));
	adapt_config_defaults(&c);
	c.history_windows = ADAPT_MAX_WINDOWS + 1;
	assert_non_null(adapt_config_check(&c));
	adapt_config_defaults(&c);
	c.stalls_per_window = c.stalled_ms_per_s = 0;
	assert_non_null(adapt_config_check(&c));
	adapt_config_defaults(&c);
	c.bad_windows = 0;
	assert_non_null(adapt_config_check(&c));
}

int main(void)
{
	struct CMUnitTest tests[sizeof(rows) / sizeof(rows[0]) + 2];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		tests[n++] = (struct CMUnitTest){rows[i].name, decision_row, NULL, NULL, (void *)&rows[i]};
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(window_thresholds);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(config_check);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
