// SPDX-License-Identifier: GPL-2.0-only
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
	prom_write_disk_series(f, arg, 1);
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
	prom_write_disk_series(f, arg, 3);
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
	prom_write_disk_series(f, arg, 2);
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
	prom_write_disk_series(f, arg, 1);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(labels_are_escaped),
		cmocka_unit_test(histogram_is_cumulative_and_consistent),
		cmocka_unit_test(families_are_grouped),
		cmocka_unit_test(pool_waits_are_not_stalls),
		cmocka_unit_test(inf_bucket_never_below_buckets),
		cmocka_unit_test(one_series_per_hook),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
