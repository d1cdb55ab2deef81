// SPDX-License-Identifier: GPL-2.0-only
#include "export_prom.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
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
		fprintf(f, "%.15g", v);   /* 15 digits: a timestamp keeps its ms */
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

/* Which series of a family are written: of the submitting syscall
 * (guest_blocking), of the pool, both, or none. */
enum which { NONE, GUEST_BLOCKING, POOL, BOTH };

static bool written(enum which w, const struct prom_disk_series *s)
{
	return w == BOTH || (w == GUEST_BLOCKING && s->guest_blocking) || (w == POOL && !s->guest_blocking);
}

static void write_histogram(FILE *f, const struct prom_disk_series *s, size_t n, enum which w)
{
	static const char name[] = "aioguard_submit_duration_seconds";
	prom_family(f, name, "histogram",
		    "Time QEMU threads spent inside one I/O syscall; guest_blocking=\"true\": the syscall that submits the guest's I/O in the disk's mode, \"false\": work of QEMU's worker pool.");
	for (size_t i = 0; i < n; i++) {
		const struct prom_disk_series *d = &s[i];
		uint64_t cumulative = 0;
		if (!written(w, d))
			continue;
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
	enum which detail, compact;   /* with --metrics-detail, and by default */
};

static uint64_t field(const struct prom_disk_series *s, size_t offset)
{
	uint64_t v;
	memcpy(&v, (const char *)s + offset, sizeof(v));
	return v;
}

static void write_counters(FILE *f, const struct prom_disk_series *s, size_t n, bool detail)
{
	static const struct counter counters[] = {
		{"aioguard_stalls_total",
		 "Stalls: calls of the syscall that submits the guest's I/O in the disk's mode (io_submit, io_uring_enter; with threads the pool's reads and writes) that took the stall threshold or longer.",
		 offsetof(struct prom_disk_series, stalls), 1, GUEST_BLOCKING, GUEST_BLOCKING},
		{"aioguard_pool_waits_total",
		 "Pool waits: calls made by QEMU's worker pool for work the guest does not wait to submit (fdatasync, fallocate, reads and writes of a native or io_uring disk) that took the stall threshold or longer. Never stalls.",
		 offsetof(struct prom_disk_series, stalls), 1, POOL, POOL},
		{"aioguard_block_allocation_seconds_total",
		 "Time spent inside filesystem block allocation during the syscall.",
		 offsetof(struct prom_disk_series, alloc_ns), 1e-9, BOTH, GUEST_BLOCKING},
		{"aioguard_offcpu_seconds_total",
		 "Time the calling thread was off CPU inside the syscall.",
		 offsetof(struct prom_disk_series, offcpu_ns), 1e-9, BOTH, NONE},
		{"aioguard_submitted_bytes_total", "Bytes submitted.",
		 offsetof(struct prom_disk_series, bytes), 1, BOTH, GUEST_BLOCKING},
	};
	for (size_t c = 0; c < sizeof(counters) / sizeof(counters[0]); c++) {
		enum which w = detail ? counters[c].detail : counters[c].compact;
		if (w == NONE)
			continue;
		prom_family(f, counters[c].name, "counter", counters[c].help);
		for (size_t i = 0; i < n; i++) {
			if (!written(w, &s[i]))
				continue;
			const char *l[] = {DISK_LABELS(&s[i]), NULL};
			prom_sample(f, counters[c].name, l,
				    (double)field(&s[i], counters[c].offset) * counters[c].scale);
		}
	}
}

/* The default histogram's upper bounds, in µs: log2 slot edges, so that
 * each bucket is exactly the sum of the slots below it. Chosen for stalls:
 * 64 µs to 2.1 s, finest from 4 to 16 ms; 9 bounds keep a busy disk at 20
 * series at most. */
static const unsigned compact_le_us_log2[PROM_COMPACT_BUCKETS] = {6, 8, 10, 12, 13, 14, 16, 18, 21};

double prom_compact_le_seconds(unsigned i)
{
	return ldexp(1e-6, (int)compact_le_us_log2[i]);
}

/* The syscall label of a default series: io_submit and io_uring_enter
 * stand alone; the reads and writes (pread64, pwrite64, preadv, pwritev and
 * the v2 forms) are one "read/write" series, in the pool or (io=threads)
 * submitting; fdatasync and fallocate stand alone. */
static const char *compact_syscall(const char *syscall)
{
	return strstr(syscall, "read") || strstr(syscall, "write") ? "read/write" : syscall;
}

/* A series of the default output: its disk series merged, their log2
 * slots folded into the compact bounds. */
struct compact {
	struct prom_disk_series s;
	uint64_t buckets[PROM_COMPACT_BUCKETS];
};

static bool same_key(const struct prom_disk_series *a, const struct prom_disk_series *b)
{
	return a->guest_blocking == b->guest_blocking && !strcmp(a->syscall, b->syscall) &&
	       !strcmp(a->domain, b->domain) && !strcmp(a->target, b->target) &&
	       !strcmp(a->source, b->source) && !strcmp(a->io_mode, b->io_mode);
}

/* Slot b counts below bound i when its upper edge is at most the bound
 * (both are powers of two: equal exactly at the edge). */
static void fold(struct compact *c, const struct prom_disk_series *s)
{
	for (unsigned b = 0; b < s->nbuckets; b++) {
		unsigned i = 0;
		while (i < PROM_COMPACT_BUCKETS && s->le_seconds[b] > prom_compact_le_seconds(i) * (1 + 1e-12))
			i++;
		if (i < PROM_COMPACT_BUCKETS)
			c->buckets[i] += s->buckets[b];
	}
	c->s.count += s->count;
	c->s.sum_ns += s->sum_ns;
	c->s.stalls += s->stalls;
	c->s.alloc_ns += s->alloc_ns;
	c->s.offcpu_ns += s->offcpu_ns;
	c->s.bytes += s->bytes;
}

static size_t merge(const struct prom_disk_series *s, size_t n, struct compact *out)
{
	static double le[PROM_COMPACT_BUCKETS];
	size_t m = 0;
	for (unsigned i = 0; i < PROM_COMPACT_BUCKETS; i++)
		le[i] = prom_compact_le_seconds(i);
	for (size_t i = 0; i < n; i++) {
		struct prom_disk_series key = s[i];
		key.syscall = compact_syscall(s[i].syscall);
		size_t j = 0;
		while (j < m && !same_key(&out[j].s, &key))
			j++;
		if (j == m) {
			out[m] = (struct compact){.s = key};
			out[m].s.count = out[m].s.sum_ns = out[m].s.stalls = 0;
			out[m].s.alloc_ns = out[m].s.offcpu_ns = out[m].s.bytes = 0;
			out[m].s.le_seconds = le;
			out[m].s.nbuckets = PROM_COMPACT_BUCKETS;
			m++;
		}
		fold(&out[j], &s[i]);
	}
	for (size_t j = 0; j < m; j++)
		out[j].s.buckets = out[j].buckets;
	return m;
}

void prom_write_disk_series(FILE *f, const struct prom_disk_series *s, size_t n, bool detail)
{
	if (detail) {
		write_histogram(f, s, n, BOTH);
		write_counters(f, s, n, true);
		return;
	}
	struct compact *c = calloc(n ? n : 1, sizeof(*c));
	if (!c)
		return;
	size_t m = merge(s, n, c);
	struct prom_disk_series *flat = calloc(m ? m : 1, sizeof(*flat));
	if (flat) {
		for (size_t j = 0; j < m; j++)
			flat[j] = c[j].s;
		write_histogram(f, flat, m, GUEST_BLOCKING);
		write_counters(f, flat, m, false);
	}
	free(flat);
	free(c);
}

void prom_write_recommendations(FILE *f, const struct prom_recommendation *r, size_t n)
{
	static const char name[] = "aioguard_recommended_io_mode";
	prom_family(f, name, "gauge",
		    "1 for the AIO mode aioguard recommends for the disk (recommended), next to the mode QEMU runs (io_mode) and the one libvirt's live XML says (io_mode_xml: differs after a live switch); recommended=\"none\": no recommendation.");
	for (size_t i = 0; i < n; i++) {
		const char *l[] = {"domain", r[i].domain, "target", r[i].target, "source", r[i].source,
				   "io_mode", r[i].io_mode, "recommended", r[i].recommended,
				   "io_mode_xml", r[i].io_mode_xml ? r[i].io_mode_xml : r[i].io_mode, NULL};
		prom_sample(f, name, l, 1);
	}
}

void prom_write_disk_switches(FILE *f, const struct prom_disk_switch *d, size_t n)
{
	static const char name[] = "aioguard_disk_switch_timestamp_seconds";
	prom_family(f, name, "gauge",
		    "When the agent last decided to switch the disk's io mode (seconds since the epoch): the mode it ran (from), the mode decided (to) and the result (applied, dry-run, failed, unchanged).");
	for (size_t i = 0; i < n; i++) {
		const char *l[] = {"domain", d[i].domain, "target", d[i].target,
				   "from", d[i].from, "to", d[i].to, "result", d[i].result, NULL};
		prom_sample(f, name, l, d[i].at);
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

void prom_write_bpf_slots(FILE *f, const struct prom_bpf_slots *s)
{
	prom_family(f, "aioguard_bpf_slots_in_use", "gauge",
		    "Kernel counting slots holding a (disk, syscall); slots of disks gone are given back.");
	prom_sample(f, "aioguard_bpf_slots_in_use", NULL, (double)s->in_use);
	prom_family(f, "aioguard_bpf_slots_max", "gauge",
		    "Kernel counting slots there are: (disk, syscall) pairs counted at once.");
	prom_sample(f, "aioguard_bpf_slots_max", NULL, (double)s->total);
	prom_family(f, "aioguard_bpf_untracked_total", "counter",
		    "Submissions not counted (no latency, stalls or evidence) because every slot was taken.");
	prom_sample(f, "aioguard_bpf_untracked_total", NULL, (double)s->untracked);
}
