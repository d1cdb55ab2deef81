/* SPDX-License-Identifier: GPL-2.0-only */
/* Prometheus text exposition format (version 0.0.4): families grouped, HELP
 * and TYPE once each, label values escaped, base units (seconds, bytes). */
#ifndef AIOGUARD_EXPORT_PROM_H
#define AIOGUARD_EXPORT_PROM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* One disk x syscall series; labels are never NULL ("" when unknown).
 * guest_blocking: the syscall blocks the thread that submits the guest's
 * I/O in the disk's mode (agg_blocks_guest): its calls >= the threshold
 * are aioguard_stalls_total, else aioguard_pool_waits_total. */
struct prom_disk_series {
	const char *domain, *target, *source, *io_mode, *syscall;
	bool guest_blocking;
	const uint64_t *buckets;     /* per log2 slot, not cumulative */
	const double *le_seconds;    /* upper bound of each slot */
	unsigned nbuckets;
	uint64_t count, sum_ns, stalls, alloc_ns, offcpu_ns, bytes;   /* stalls: calls
	                                  >= the threshold, stall or pool wait */
};

/* One disk's current recommendation. io_mode is the disk's mode now (as on
 * the disk series), recommended the mode advised ("none" for null). */
struct prom_recommendation {
	const char *domain, *target, *source, *io_mode, *recommended;
	const char *io_mode_xml;   /* what libvirt's live XML says: differs from
	                              io_mode (what QEMU runs) after a live switch */
};

void prom_family(FILE *f, const char *name, const char *type, const char *help);
/* labels: name/value pairs ending with NULL. */
void prom_sample(FILE *f, const char *name, const char *const *labels, double value);
void prom_escape_label_value(FILE *f, const char *v);

/* The disk families. detail (--metrics-detail): every series as given,
 * each with its log2 histogram (OBS_SLOTS buckets) and every counter.
 * Default, for a fleet: per disk, the histogram of the submitting syscall
 * only, in PROM_COMPACT_BUCKETS bounds (log2 slot edges, so exact), its
 * stalls, allocation time and bytes; per pool syscall its pool waits. The
 * reads and writes (pread64, pwritev, …) are one series there,
 * syscall="read/write". */
void prom_write_disk_series(FILE *f, const struct prom_disk_series *s, size_t n, bool detail);
#define PROM_COMPACT_BUCKETS 9
/* The upper bound of the default histogram's bucket i, in seconds. */
double prom_compact_le_seconds(unsigned i);
void prom_write_recommendations(FILE *f, const struct prom_recommendation *r, size_t n);

/* A disk's latest switch: aioguard_disk_switch_timestamp_seconds, one
 * series per disk that had one; its labels change with the next. */
struct prom_disk_switch {
	const char *domain, *target, *from, *to, *result;
	double at;   /* seconds since the epoch */
};
void prom_write_disk_switches(FILE *f, const struct prom_disk_switch *d, size_t n);
/* aioguard_bpf_programs_attached, one series per hook, from the observer's
 * "NAME: HOW; NAME: HOW" summary (HOW "missing": 0, else 1). */
struct prom_hook {
	const char *hook, *attach;
	bool attached;
};
void prom_write_bpf_hooks(FILE *f, const struct prom_hook *h, size_t n);

/* The kernel's counting slots, one per (disk, syscall): in use, there are,
 * and submissions not counted because none was free. */
struct prom_bpf_slots {
	uint64_t in_use, total, untracked;
};
void prom_write_bpf_slots(FILE *f, const struct prom_bpf_slots *s);

#endif
