// SPDX-License-Identifier: GPL-2.0-only
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "export_prom.h"

static char *render(void (*fn)(FILE *, const void *), const void *arg)
{
	char tmpl[] = "/tmp/aioguard-prom.XXXXXX";
	int fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	unlink(tmpl);
	FILE *f = fdopen(fd, "w+");
	fn(f, arg);
	long len = ftell(f);
	char *buf = calloc(1, (size_t)len + 1);
	rewind(f);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return buf;
}

static void labels_are_escaped(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const char *l[] = {"domain", "we\"ird\\dom\nain", "target", "vda", NULL};
	prom_sample(f, "x_total", l, 3);
	const char *none[] = {NULL};
	prom_sample(f, "y", none, 0.5);
	fclose(f);
	assert_string_equal(buf, "x_total{domain=\"we\\\"ird\\\\dom\\nain\",target=\"vda\"} 3\ny 0.5\n");
	free(buf);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static const uint64_t slots[4] = {5, 0, 3, 2};
static const double le[4] = {1e-6, 2e-6, 4e-6, 8e-6};

static void write_one(FILE *f, const void *arg)
{
	prom_write_disk_series(f, arg, 1, true);
}

static void histogram_is_cumulative_and_consistent(void **state)
{
	struct prom_disk_series s = {
		.domain = "d", .target = "vda", .source = "/i.raw", .io_mode = "native",
		.syscall = "io_submit", .guest_blocking = true, .buckets = slots, .le_seconds = le,
		.nbuckets = 4, .count = 10, .sum_ns = 1500000000, .stalls = 2, .alloc_ns = 2000000,
		.offcpu_ns = 3000000000ULL, .bytes = 4096,
	};
	char *out = render(write_one, &s);
	const char *lbl = "{domain=\"d\",target=\"vda\",source=\"/i.raw\",io_mode=\"native\",syscall=\"io_submit\",guest_blocking=\"true\"";
	char want[512];
	snprintf(want, sizeof(want), "aioguard_submit_duration_seconds_bucket%s,le=\"4e-06\"} 8\n", lbl);
	assert_non_null(strstr(out, want));
	snprintf(want, sizeof(want), "aioguard_submit_duration_seconds_bucket%s,le=\"+Inf\"} 10\n", lbl);
	assert_non_null(strstr(out, want));
	snprintf(want, sizeof(want), "aioguard_submit_duration_seconds_count%s} 10\n", lbl);
	assert_non_null(strstr(out, want));
	snprintf(want, sizeof(want), "aioguard_submit_duration_seconds_sum%s} 1.5\n", lbl);
	assert_non_null(strstr(out, want));
	snprintf(want, sizeof(want), "aioguard_offcpu_seconds_total%s} 3\n", lbl);
	assert_non_null(strstr(out, want));
	snprintf(want, sizeof(want), "aioguard_block_allocation_seconds_total%s} 0.002\n", lbl);
	assert_non_null(strstr(out, want));
	snprintf(want, sizeof(want), "aioguard_stalls_total%s} 2\n", lbl);
	assert_non_null(strstr(out, want));
	free(out);
}

static void write_three(FILE *f, const void *arg)
{
	prom_write_disk_series(f, arg, 3, true);
}

/* A stall is one thing: aioguard_stalls_total carries only the syscall that
 * submits in the disk's mode; a pool worker's fdatasync (5-14 ms on every
 * call, in any mode) is a pool wait, in its own family. */
static void pool_waits_are_not_stalls(void **state)
{
	struct prom_disk_series s[3] = {
		{.domain = "d", .target = "vda", .source = "/g.qcow2", .io_mode = "native",
		 .syscall = "io_submit", .guest_blocking = true, .buckets = slots, .le_seconds = le,
		 .nbuckets = 4, .count = 10, .stalls = 3},
		{.domain = "d", .target = "vda", .source = "/g.qcow2", .io_mode = "native",
		 .syscall = "fdatasync", .guest_blocking = false, .buckets = slots, .le_seconds = le,
		 .nbuckets = 4, .count = 10, .stalls = 729},
		{.domain = "e", .target = "vda", .source = "/t.raw", .io_mode = "threads",
		 .syscall = "pwrite64", .guest_blocking = true, .buckets = slots, .le_seconds = le,
		 .nbuckets = 4, .count = 10, .stalls = 5},
	};
	char *out = render(write_three, s);
	const char *sub = "{domain=\"d\",target=\"vda\",source=\"/g.qcow2\",io_mode=\"native\",syscall=\"io_submit\",guest_blocking=\"true\"}";
	const char *sync = "{domain=\"d\",target=\"vda\",source=\"/g.qcow2\",io_mode=\"native\",syscall=\"fdatasync\",guest_blocking=\"false\"}";
	char want[512];

	assert_int_equal(count(out, "aioguard_stalls_total{"), 2);
	snprintf(want, sizeof(want), "aioguard_stalls_total%s 3\n", sub);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "aioguard_stalls_total{domain=\"e\",target=\"vda\",source=\"/t.raw\",io_mode=\"threads\",syscall=\"pwrite64\",guest_blocking=\"true\"} 5\n"));
	assert_null(strstr(out, "aioguard_stalls_total{domain=\"d\",target=\"vda\",source=\"/g.qcow2\",io_mode=\"native\",syscall=\"fdatasync\""));
	assert_int_equal(count(out, "aioguard_pool_waits_total{"), 1);
	snprintf(want, sizeof(want), "aioguard_pool_waits_total%s 729\n", sync);
	assert_non_null(strstr(out, want));
	assert_int_equal(count(out, "# TYPE aioguard_pool_waits_total counter\n"), 1);
	/* every other family has all three, told apart by the label */
	snprintf(want, sizeof(want), "aioguard_submit_duration_seconds_count%s 10\n", sync);
	assert_non_null(strstr(out, want));
	assert_int_equal(count(out, "aioguard_offcpu_seconds_total{"), 3);
	free(out);
}


static void write_two(FILE *f, const void *arg)
{
	prom_write_disk_series(f, arg, 2, true);
}

static void families_are_grouped(void **state)
{
	struct prom_disk_series s[2] = {
		{.domain = "a", .target = "vda", .source = "", .io_mode = "native", .syscall = "io_submit",
		 .guest_blocking = true, .buckets = slots, .le_seconds = le, .nbuckets = 4, .count = 10},
		{.domain = "b", .target = "vda", .source = "", .io_mode = "threads", .syscall = "pwritev",
		 .guest_blocking = true, .buckets = slots, .le_seconds = le, .nbuckets = 4, .count = 10},
	};
	char *out = render(write_two, s);
	assert_int_equal(count(out, "# TYPE aioguard_stalls_total counter\n"), 1);
	assert_int_equal(count(out, "aioguard_stalls_total{"), 2);
	/* both series of a family stand together, after its TYPE line */
	const char *type = strstr(out, "# TYPE aioguard_stalls_total");
	const char *next = strstr(type + 1, "# TYPE");
	const char *second = strstr(strstr(type, "aioguard_stalls_total{") + 1, "aioguard_stalls_total{");
	assert_true(second < next);
	free(out);
}

static void write_inconsistent(FILE *f, const void *arg)
{
	prom_write_disk_series(f, arg, 1, true);
}

/* A read racing the kernel can see buckets summing above the total: +Inf and
 * _count must still be >= every bucket (Prometheus rejects less). */
static void inf_bucket_never_below_buckets(void **state)
{
	struct prom_disk_series s = {
		.domain = "d", .target = "vda", .source = "", .io_mode = "native", .syscall = "io_submit",
		.buckets = slots, .le_seconds = le, .nbuckets = 4, .count = 7,   /* slots sum to 10 */
	};
	char *out = render(write_inconsistent, &s);
	assert_non_null(strstr(out, "le=\"+Inf\"} 10\n"));
	assert_non_null(strstr(out, "_count{domain=\"d\",target=\"vda\",source=\"\",io_mode=\"native\",syscall=\"io_submit\",guest_blocking=\"false\"} 10\n"));
	free(out);
}

static void write_hooks(FILE *f, const void *arg)
{
	prom_write_bpf_hooks(f, arg, 2);
}

static void one_series_per_hook(void **state)
{
	const struct prom_hook h[2] = {{"syscalls", "tracepoint", true}, {"xfs alloc", "missing", false}};
	char *out = render(write_hooks, h);
	assert_non_null(strstr(out, "aioguard_bpf_programs_attached{hook=\"syscalls\",attach=\"tracepoint\"} 1\n"));
	assert_non_null(strstr(out, "aioguard_bpf_programs_attached{hook=\"xfs alloc\",attach=\"missing\"} 0\n"));
	free(out);
}

static void write_slots(FILE *f, const void *arg)
{
	prom_write_bpf_slots(f, arg);
}

static void bpf_slots_gauges_and_counter(void **state)
{
	const struct prom_bpf_slots sl = {.in_use = 7, .total = 1024, .untracked = 12345678901ULL};
	char *out = render(write_slots, &sl);
	assert_non_null(strstr(out, "# TYPE aioguard_bpf_slots_in_use gauge\naioguard_bpf_slots_in_use 7\n"));
	assert_non_null(strstr(out, "# TYPE aioguard_bpf_slots_max gauge\naioguard_bpf_slots_max 1024\n"));
	assert_non_null(strstr(out, "# TYPE aioguard_bpf_untracked_total counter\naioguard_bpf_untracked_total 12345678901\n"));
	free(out);
}

/* The agent's layout (agent.c): slot k holds [2^k, 2^(k+1)) µs, the last
 * one open-ended (+Inf only). */
#define SLOTS 31
static double agent_le[SLOTS];

static void agent_layout(void)
{
	for (int k = 0; k < SLOTS; k++)
		agent_le[k] = ldexp(1e-6, k + 1);
}

static void write_compact_one(FILE *f, const void *arg)
{
	prom_write_disk_series(f, arg, 1, false);
}

/* Default buckets are log2 slot edges: each is exactly the sum of the
 * slots below it, a call of 512-1023 µs in le=0.001024 and not below. */
static void compact_buckets_fold_slots_exactly(void **state)
{
	uint64_t one_each[SLOTS];
	for (int k = 0; k < SLOTS; k++)
		one_each[k] = 1;
	agent_layout();
	struct prom_disk_series s = {
		.domain = "d", .target = "vda", .source = "/g.qcow2", .io_mode = "native",
		.syscall = "io_submit", .guest_blocking = true, .buckets = one_each,
		.le_seconds = agent_le, .nbuckets = SLOTS, .count = 32, .sum_ns = 7,
	};
	char *out = render(write_compact_one, &s);
	static const struct { const char *le; int below; } want[] = {
		{"6.4e-05", 6}, {"0.000256", 8}, {"0.001024", 10}, {"0.004096", 12},
		{"0.008192", 13}, {"0.016384", 14}, {"0.065536", 16}, {"0.262144", 18},
		{"2.097152", 21}, {"+Inf", 32},
	};
	char line[512];
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		snprintf(line, sizeof(line), "aioguard_submit_duration_seconds_bucket{domain=\"d\","
			 "target=\"vda\",source=\"/g.qcow2\",io_mode=\"native\",syscall=\"io_submit\","
			 "guest_blocking=\"true\",le=\"%s\"} %d\n", want[i].le, want[i].below);
		if (!strstr(out, line))
			fail_msg("missing: %s in\n%s", line, out);
	}
	assert_int_equal(count(out, "aioguard_submit_duration_seconds_bucket{"), PROM_COMPACT_BUCKETS + 1);
	for (unsigned i = 0; i < PROM_COMPACT_BUCKETS; i++) {
		/* every bound is a slot edge */
		int k = 0;
		while (k < SLOTS && agent_le[k] != prom_compact_le_seconds(i))
			k++;
		assert_true(k < SLOTS);
	}
	free(out);
}

static void write_compact_fleet(FILE *f, const void *arg)
{
	prom_write_disk_series(f, arg, 9, false);
}

static void write_detail_fleet(FILE *f, const void *arg)
{
	prom_write_disk_series(f, arg, 9, true);
}

/* Series lines (not # lines) holding needle. */
static size_t series_of(const char *out, const char *needle)
{
	size_t n = 0;
	for (const char *l = out; *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		char *line = strndup(l, len);
		if (line[0] != '#' && strstr(line, needle))
			n++;
		free(line);
		l += len + (e ? 1 : 0);
	}
	return n;
}

#define DISK(dom, io, sc, gb, st) {.domain = dom, .target = "vda", .source = "/" dom, \
	.io_mode = io, .syscall = sc, .guest_blocking = gb, .buckets = slots, .le_seconds = le, \
	.nbuckets = 4, .count = 10, .stalls = st, .alloc_ns = 1000, .offcpu_ns = 2000, .bytes = 4096}

/* What a fleet pays: a growing native disk (io_submit, and the pool's
 * fdatasync, fallocate and a pwritev) and a busy threads disk (all four
 * reads and writes submit, fdatasync in the pool). Counted on the output,
 * as Prometheus would: <= 18 series each, 20 with its recommendation and
 * its last switch. */
static void compact_series_per_disk(void **state)
{
	const struct prom_disk_series s[9] = {
		DISK("n", "native", "io_submit", true, 3), DISK("n", "native", "fdatasync", false, 700),
		DISK("n", "native", "fallocate", false, 1), DISK("n", "native", "pwritev", false, 2),
		DISK("t", "threads", "pwritev", true, 1), DISK("t", "threads", "preadv", true, 2),
		DISK("t", "threads", "pwrite64", true, 3), DISK("t", "threads", "pread64", true, 4),
		DISK("t", "threads", "fdatasync", false, 5),
	};
	char *out = render(write_compact_fleet, s);
	size_t native = series_of(out, "domain=\"n\""), threads = series_of(out, "domain=\"t\"");
	print_message("default: native disk %zu series, threads disk %zu (+1 recommendation, +1 last switch each)\n",
		      native, threads);
	/* histogram 9 + Inf + sum + count, stalls, allocation, bytes; 3 pool
	 * waits: 18, and with its recommendation and its last switch, 20 */
	assert_int_equal(native, 12 + 3 + 3);
	assert_int_equal(threads, 12 + 3 + 1);
	/* the threads disk's reads and writes: one series, their sums */
	assert_non_null(strstr(out, "aioguard_stalls_total{domain=\"t\",target=\"vda\",source=\"/t\","
				    "io_mode=\"threads\",syscall=\"read/write\",guest_blocking=\"true\"} 10\n"));
	assert_non_null(strstr(out, "aioguard_submit_duration_seconds_count{domain=\"t\",target=\"vda\","
				    "source=\"/t\",io_mode=\"threads\",syscall=\"read/write\",guest_blocking=\"true\"} 40\n"));
	/* the pool: waits only, by syscall; no histogram, no off-CPU */
	assert_non_null(strstr(out, "aioguard_pool_waits_total{domain=\"n\",target=\"vda\",source=\"/n\","
				    "io_mode=\"native\",syscall=\"fdatasync\",guest_blocking=\"false\"} 700\n"));
	assert_non_null(strstr(out, "aioguard_pool_waits_total{domain=\"n\",target=\"vda\",source=\"/n\","
				    "io_mode=\"native\",syscall=\"read/write\",guest_blocking=\"false\"} 2\n"));
	assert_int_equal(series_of(out, "guest_blocking=\"false\",le="), 0);
	assert_int_equal(count(out, "aioguard_offcpu_seconds_total"), 0);
	assert_int_equal(count(out, "aioguard_stalls_total{"), 2);
	free(out);

	/* --metrics-detail: every series with every family, as before */
	out = render(write_detail_fleet, s);
	native = series_of(out, "domain=\"n\"");
	print_message("--metrics-detail: native disk %zu series (4 syscalls, 4 buckets each here)\n", native);
	assert_int_equal(native, 4 * (4 + 1 + 2 + 4));
	assert_int_equal(count(out, "aioguard_offcpu_seconds_total{"), 9);
	free(out);
}

static void write_switches(FILE *f, const void *arg)
{
	prom_write_disk_switches(f, arg, 2);
}

/* One series per switched disk: what the agent did, and when, so a panel or
 * an annotation can name the disk (the counter has action and result only). */
static void disk_switches_name_the_disk(void **state)
{
	const struct prom_disk_switch d[2] = {
		{"web1", "vda", "native", "threads", "applied", 1795623181.5},
		{"db\"1", "vdb", "native", "io_uring", "dry-run", 1795620000},
	};
	char *out = render(write_switches, d);
	assert_int_equal(count(out, "# TYPE aioguard_disk_switch_timestamp_seconds gauge\n"), 1);
	assert_non_null(strstr(out, "aioguard_disk_switch_timestamp_seconds{domain=\"web1\",target=\"vda\","
				    "from=\"native\",to=\"threads\",result=\"applied\"} 1795623181.5\n"));
	assert_non_null(strstr(out, "{domain=\"db\\\"1\",target=\"vdb\",from=\"native\","
				    "to=\"io_uring\",result=\"dry-run\"} 1795620000\n"));
	free(out);
}

static void write_recommendations(FILE *f, const void *arg)
{
	prom_write_recommendations(f, arg, 2);
}

/* The mode QEMU runs beside the live XML's: after a live switch they
 * differ, and no series is added for it (the disk's budget stays). */
static void recommendation_says_live_and_xml_mode(void **state)
{
	const struct prom_recommendation r[2] = {
		{"web1", "vda", "/a.qcow2", "threads", "io_uring", "native"},
		{"web1", "vdb", "/b.raw", "native", "none", NULL},
	};
	char *out = render(write_recommendations, r);
	assert_non_null(strstr(out, "aioguard_recommended_io_mode{domain=\"web1\",target=\"vda\",source=\"/a.qcow2\","
				    "io_mode=\"threads\",recommended=\"io_uring\",io_mode_xml=\"native\"} 1\n"));
	/* not known apart: the same as io_mode */
	assert_non_null(strstr(out, "io_mode=\"native\",recommended=\"none\",io_mode_xml=\"native\"} 1\n"));
	assert_int_equal(count(out, "aioguard_recommended_io_mode{"), 2);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(labels_are_escaped),
		cmocka_unit_test(histogram_is_cumulative_and_consistent),
		cmocka_unit_test(families_are_grouped),
		cmocka_unit_test(pool_waits_are_not_stalls),
		cmocka_unit_test(inf_bucket_never_below_buckets),
		cmocka_unit_test(one_series_per_hook),
		cmocka_unit_test(compact_buckets_fold_slots_exactly),
		cmocka_unit_test(compact_series_per_disk),
		cmocka_unit_test(disk_switches_name_the_disk),
		cmocka_unit_test(recommendation_says_live_and_xml_mode),
		cmocka_unit_test(bpf_slots_gauges_and_counter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
