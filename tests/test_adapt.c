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

/* Rows start from a base disk and override a field or two; the target mode
 * is left out where it is the default (threads). */
#pragma GCC diagnostic ignored "-Woverride-init"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

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
	enum adapt_target target;      /* default: threads */
};

#define NATIVE_SPARSE .io = IO_MODE_NATIVE, .io_next_boot = IO_MODE_NATIVE, .cache = "none", \
	.image = IMAGE_SPARSE, .last_change_s = -1, .last_stall_s = -1, .watched_since_s = 0
/* A growing qcow2 on ext4, on a host that runs io_uring (user/host.c's facts). */
#define NATIVE_GROWING_IOU NATIVE_SPARSE, .image = IMAGE_GROWING, .fs = "ext4", \
	.kernel = "6.18.0-1-amd64", .io_uring_known = true, .io_uring_usable = true, \
	.io_uring_why = "QEMU 7.2.22 ≥ 5.0, libvirt 9.0.0 ≥ 6.3, kernel.io_uring_disabled = 0"
#define NO_IOU .io_uring_known = true, .io_uring_usable = false, \
	.io_uring_why = "kernel.io_uring_disabled = 2: no process may create rings"
#define IOU_UNCHECKED .io_uring_known = false, .io_uring_usable = false, \
	.io_uring_why = "not checked: libvirt runs on another host"
#define ON_IO_URING .io = IO_MODE_IO_URING, .io_next_boot = IO_MODE_IO_URING, .cache = "none", \
	.last_change_s = -1, .last_stall_s = -1

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
	/* the target mode: threads (default), io_uring, auto */
	{"target threads: threads though io_uring runs here", {NATIVE_GROWING_IOU},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_SWITCH, IO_MODE_THREADS,
	 "growing image on io='native' stalled in 3 of the last 5 windows: io_submit blocked"},
	{"target io_uring switches to io_uring", {NATIVE_GROWING_IOU},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_SWITCH, IO_MODE_IO_URING,
	 "; to io_uring as configured (target io_uring): QEMU 7.2.22", .target = ADAPT_TARGET_IO_URING},
	{"target io_uring where io_uring is unusable: advise only", {NATIVE_GROWING_IOU, NO_IOU},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_ADVISE_ONLY, IO_MODE_IO_URING,
	 "would switch to io_uring, but io_uring is not usable here (kernel.io_uring_disabled = 2: "
	 "no process may create rings); target threads or auto would switch to threads",
	 .target = ADAPT_TARGET_IO_URING},
	{"target io_uring, support not checked: switches, says so", {NATIVE_GROWING_IOU, IOU_UNCHECKED},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_SWITCH, IO_MODE_IO_URING,
	 "though its support could not be checked here (not checked: libvirt runs on another host)",
	 .target = ADAPT_TARGET_IO_URING},
	{"target auto, growing image, io_uring runs: io_uring", {NATIVE_GROWING_IOU},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_SWITCH, IO_MODE_IO_URING,
	 "target auto: io_uring, which runs here (QEMU 7.2.22 ≥ 5.0, libvirt 9.0.0 ≥ 6.3, "
	 "kernel.io_uring_disabled = 0) and was measured ahead of threads on growing images",
	 .target = ADAPT_TARGET_AUTO},
	{"target auto, sparse image on xfs: io_uring", {NATIVE_GROWING_IOU, .image = IMAGE_SPARSE,
	  .fs = "xfs"}, {&stalling, &stalling, &stalling}, 0, false, ADAPT_SWITCH, IO_MODE_IO_URING,
	 "measured ahead of threads on sparse images", .target = ADAPT_TARGET_AUTO},
	{"target auto, io_uring unusable: threads", {NATIVE_GROWING_IOU, NO_IOU},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_SWITCH, IO_MODE_THREADS,
	 "target auto: threads, since io_uring is not usable here (kernel.io_uring_disabled = 2",
	 .target = ADAPT_TARGET_AUTO},
	{"target auto, io_uring not checked: threads", {NATIVE_GROWING_IOU, IOU_UNCHECKED},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_SWITCH, IO_MODE_THREADS,
	 "target auto: threads, since io_uring could not be checked here", .target = ADAPT_TARGET_AUTO},
	{"target auto on an unmeasured filesystem: threads", {NATIVE_GROWING_IOU, .fs = "btrfs"},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_SWITCH, IO_MODE_THREADS,
	 "target auto: threads, since io_uring was not measured on btrfs", .target = ADAPT_TARGET_AUTO},
	/* target auto follows what each kernel series measured (AIO-MODES 'Per kernel') */
	{"target auto on 6.1, growing: threads (io_uring stalled too)", {NATIVE_GROWING_IOU,
	  .kernel = "6.1.0-57-amd64"}, {&stalling, &stalling, &stalling}, 0, false, ADAPT_SWITCH,
	 IO_MODE_THREADS, "target auto: threads, since on kernel 6.1 io_uring stalled too: as much "
	 "as native with 4k writes", .target = ADAPT_TARGET_AUTO},
	{"target auto on 6.1, sparse: threads", {NATIVE_GROWING_IOU, .kernel = "6.1.150",
	  .image = IMAGE_SPARSE}, {&stalling, &stalling, &stalling}, 0, false, ADAPT_SWITCH,
	 IO_MODE_THREADS, "6.1 raw-sparse", .target = ADAPT_TARGET_AUTO},
	{"target auto on 6.12, growing: threads", {NATIVE_GROWING_IOU, .kernel = "6.12.48+deb13-amd64"},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_SWITCH, IO_MODE_THREADS,
	 "target auto: threads, since on kernel 6.12 io_uring stalled on growing images",
	 .target = ADAPT_TARGET_AUTO},
	{"target auto on 6.12, sparse: io_uring", {NATIVE_GROWING_IOU, .kernel = "6.12.48+deb13-amd64",
	  .image = IMAGE_SPARSE}, {&stalling, &stalling, &stalling}, 0, false, ADAPT_SWITCH,
	 IO_MODE_IO_URING, "was measured on kernel 6.12 to remove the stall on sparse images",
	 .target = ADAPT_TARGET_AUTO},
	{"target auto on an unmeasured kernel: threads", {NATIVE_GROWING_IOU, .kernel = "7.0.1"},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_SWITCH, IO_MODE_THREADS,
	 "threads, since io_uring was not measured on kernel 7.0", .target = ADAPT_TARGET_AUTO},
	{"target auto, kernel not known: threads", {NATIVE_GROWING_IOU, .kernel = ""},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_SWITCH, IO_MODE_THREADS,
	 "threads, since the kernel QEMU runs on is not known here", .target = ADAPT_TARGET_AUTO},
	{"target auto, allocated image stalling: advise only", {NATIVE_GROWING_IOU,
	  .image = IMAGE_ALLOCATED}, {&stalling, &stalling, &stalling}, 0, false, ADAPT_ADVISE_ONLY,
	 IO_MODE_THREADS, "not block allocation", .target = ADAPT_TARGET_AUTO},
	{"target auto, guarded: advise io_uring", {NATIVE_GROWING_IOU, .last_change_s = 3700},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_ADVISE_ONLY, IO_MODE_IO_URING,
	 "would switch to io_uring, but changed 300s ago (cooldown 600s)", .target = ADAPT_TARGET_AUTO},
	{"target auto, io_uring already for next boot", {NATIVE_GROWING_IOU,
	  .io_next_boot = IO_MODE_IO_URING}, {&stalling, &stalling, &stalling}, 0, false, ADAPT_KEEP,
	 IO_MODE_IO_URING, "already io='io_uring' in the persistent definition", .target = ADAPT_TARGET_AUTO},
	{"target io_uring, threads already for next boot: no second change", {NATIVE_GROWING_IOU,
	  .io_next_boot = IO_MODE_THREADS}, {&stalling, &stalling, &stalling}, 0, false, ADAPT_KEEP,
	 IO_MODE_THREADS, "already io='threads' in the persistent definition", .target = ADAPT_TARGET_IO_URING},
	/* io_uring is switched back like threads */
	{"io_uring stalling: no switch to anything", {ON_IO_URING, .image = IMAGE_SPARSE},
	 {&stalling, &stalling, &stalling}, 0, false, ADAPT_KEEP, IO_MODE_IO_URING,
	 "on io_uring; switching back to native is disabled", .target = ADAPT_TARGET_AUTO},
	{"io_uring back to native once allocated and quiet", {ON_IO_URING, .image = IMAGE_ALLOCATED},
	 {&quiet}, 0, true, ADAPT_SWITCH, IO_MODE_NATIVE,
	 "on io_uring; image now fully allocated and no stall for 4000s"},
	{"io_uring: no switch back while still growing", {ON_IO_URING, .image = IMAGE_GROWING},
	 {&quiet}, 0, true, ADAPT_KEEP, IO_MODE_IO_URING, "on io_uring; image is growing, not fully allocated"},
	{"io_uring: no switch back after a recent stall", {ON_IO_URING, .image = IMAGE_ALLOCATED,
	  .last_stall_s = 3000}, {&quiet}, 0, true, ADAPT_KEEP, IO_MODE_IO_URING, "quiet for 1000s"},
	{"io_uring: cache guard on switch back", {ON_IO_URING, .image = IMAGE_ALLOCATED,
	  .cache = "writeback"}, {&quiet}, 0, true, ADAPT_ADVISE_ONLY, IO_MODE_NATIVE, "cannot take native"},
	{"io_uring: cooldown on switch back", {ON_IO_URING, .image = IMAGE_ALLOCATED,
	  .last_change_s = 3900}, {&quiet}, 0, true, ADAPT_ADVISE_ONLY, IO_MODE_NATIVE, "cooldown 600s"},
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
	c.target = r->target;
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

static void target_names(void **state)
{
	enum adapt_target t = ADAPT_TARGET_AUTO;
	struct adapt_config c;

	adapt_config_defaults(&c);
	assert_int_equal(c.target, ADAPT_TARGET_THREADS);
	assert_true(adapt_target_parse("io_uring", &t) && t == ADAPT_TARGET_IO_URING);
	assert_true(adapt_target_parse("auto", &t) && t == ADAPT_TARGET_AUTO);
	assert_true(adapt_target_parse("threads", &t) && t == ADAPT_TARGET_THREADS);
	assert_false(adapt_target_parse("native", &t));     /* not a cure */
	assert_false(adapt_target_parse("io-uring", &t));
	assert_false(adapt_target_parse(NULL, &t));
	assert_int_equal(t, ADAPT_TARGET_THREADS);           /* left as it was */
	assert_string_equal(adapt_target_name(ADAPT_TARGET_AUTO), "auto");
}

int main(void)
{
	struct CMUnitTest tests[sizeof(rows) / sizeof(rows[0]) + 3];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		tests[n++] = (struct CMUnitTest){rows[i].name, decision_row, NULL, NULL, (void *)&rows[i]};
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(window_thresholds);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(config_check);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(target_names);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
