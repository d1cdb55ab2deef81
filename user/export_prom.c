// SPDX-License-Identifier: GPL-2.0-only
#include "export_prom.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

void prom_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values may hold anything a domain XML holds: escape \, " and newline. */
void prom_escape_label_value(FILE *f, const char *v)
{
	for (; v && *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f), fputc(*v, f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void write_value(FILE *f, double v)
{
	if (isinf(v))
		fputs(v > 0 ? "+Inf" : "-Inf", f);
	else if (v == (double)(uint64_t)v && v < 1e15)
		fprintf(f, "%llu", (unsigned long long)v);
	else
		fprintf(f, "%.9g", v);
}

void prom_sample(FILE *f, const char *name, const char *const *labels, double value)
{
	fputs(name, f);
	for (size_t i = 0; labels && labels[i]; i += 2) {
		fprintf(f, "%s%s=\"", i ? "," : "{", labels[i]);
		prom_escape_label_value(f, labels[i + 1]);
		fputc('"', f);
	}
	if (labels && labels[0])
		fputc('}', f);
	fputc(' ', f);
	write_value(f, value);
	fputc('\n', f);
}

#define DISK_LABELS(s) "domain", (s)->domain, "target", (s)->target, "source", (s)->source, \
	"io_mode", (s)->io_mode, "syscall", (s)->syscall, \
	"guest_blocking", (s)->guest_blocking ? "true" : "false"

static void write_histogram(FILE *f, const struct prom_disk_series *s, size_t n)
{
	static const char name[] = "aioguard_submit_duration_seconds";
	prom_family(f, name, "histogram",
		    "Time QEMU threads spent inside one I/O syscall; guest_blocking=\"true\": the syscall that submits the guest's I/O in the disk's mode, \"false\": work of QEMU's worker pool.");
	for (size_t i = 0; i < n; i++) {
		const struct prom_disk_series *d = &s[i];
		uint64_t cumulative = 0;
		char le[32];
		for (unsigned b = 0; b < d->nbuckets; b++) {
			cumulative += d->buckets[b];
			snprintf(le, sizeof(le), "%.9g", d->le_seconds[b]);
			const char *l[] = {DISK_LABELS(d), "le", le, NULL};
			prom_sample(f, "aioguard_submit_duration_seconds_bucket", l, (double)cumulative);
		}
		/* The kernel counts each submission once, in one slot and in the
		 * total, but a per-CPU update read half-way may show the slot
		 * before the total: never let a bucket exceed +Inf (= _count). */
		uint64_t total = d->count > cumulative ? d->count : cumulative;
		const char *inf[] = {DISK_LABELS(d), "le", "+Inf", NULL};
		prom_sample(f, "aioguard_submit_duration_seconds_bucket", inf, (double)total);
		const char *l[] = {DISK_LABELS(d), NULL};
		prom_sample(f, "aioguard_submit_duration_seconds_sum", l, (double)d->sum_ns / 1e9);
		prom_sample(f, "aioguard_submit_duration_seconds_count", l, (double)total);
	}
}

struct counter {
	const char *name, *help;
	size_t offset;
	double scale;
	int only;   /* 1: guest-blocking series only, 0: pool series only, -1: all */
};

static uint64_t field(const struct prom_disk_series *s, size_t offset)
{
	uint64_t v;
	memcpy(&v, (const char *)s + offset, sizeof(v));
	return v;
}

void prom_write_disk_series(FILE *f, const struct prom_disk_series *s, size_t n)
{
	static const struct counter counters[] = {
		{"aioguard_stalls_total",
		 "Stalls: calls of the syscall that submits the guest's I/O in the disk's mode (io_submit, io_uring_enter; with threads the pool's reads and writes) that took the stall threshold or longer.",
		 offsetof(struct prom_disk_series, stalls), 1, 1},
		{"aioguard_pool_waits_total",
		 "Pool waits: calls made by QEMU's worker pool for work the guest does not wait to submit (fdatasync, fallocate, reads and writes of a native or io_uring disk) that took the stall threshold or longer. Never stalls.",
		 offsetof(struct prom_disk_series, stalls), 1, 0},
		{"aioguard_block_allocation_seconds_total",
		 "Time spent inside filesystem block allocation during the syscall.",
		 offsetof(struct prom_disk_series, alloc_ns), 1e-9, -1},
		{"aioguard_offcpu_seconds_total",
		 "Time the calling thread was off CPU inside the syscall.",
		 offsetof(struct prom_disk_series, offcpu_ns), 1e-9, -1},
		{"aioguard_submitted_bytes_total", "Bytes submitted.",
		 offsetof(struct prom_disk_series, bytes), 1, -1},
	};
	write_histogram(f, s, n);
	for (size_t c = 0; c < sizeof(counters) / sizeof(counters[0]); c++) {
		prom_family(f, counters[c].name, "counter", counters[c].help);
		for (size_t i = 0; i < n; i++) {
			if (counters[c].only >= 0 && s[i].guest_blocking != (counters[c].only == 1))
				continue;
			const char *l[] = {DISK_LABELS(&s[i]), NULL};
			prom_sample(f, counters[c].name, l,
				    (double)field(&s[i], counters[c].offset) * counters[c].scale);
		}
	}
}

void prom_write_recommendations(FILE *f, const struct prom_recommendation *r, size_t n)
{
	static const char name[] = "aioguard_recommended_io_mode";
	prom_family(f, name, "gauge",
		    "1 for the AIO mode aioguard recommends for the disk (recommended), next to the mode it runs (io_mode); recommended=\"none\": no recommendation.");
	for (size_t i = 0; i < n; i++) {
		const char *l[] = {"domain", r[i].domain, "target", r[i].target, "source", r[i].source,
				   "io_mode", r[i].io_mode, "recommended", r[i].recommended, NULL};
		prom_sample(f, name, l, 1);
	}
}

void prom_write_bpf_hooks(FILE *f, const struct prom_hook *h, size_t n)
{
	static const char name[] = "aioguard_bpf_programs_attached";
	prom_family(f, name, "gauge",
		    "1 when the eBPF programs of a hook are attached (attach: how), 0 when this kernel lacks it.");
	for (size_t i = 0; i < n; i++) {
		const char *l[] = {"hook", h[i].hook, "attach", h[i].attach, NULL};
		prom_sample(f, name, l, h[i].attached ? 1 : 0);
	}
}
