// SPDX-License-Identifier: GPL-2.0-only
#include "aggregate.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

bool agg_blocks_guest(uint32_t syscall, enum io_mode io, bool io_known)
{
	switch (syscall) {
	case OBS_SC_IO_SUBMIT:
	case OBS_SC_IO_URING_ENTER:
		return true;
	case OBS_SC_PWRITEV:
	case OBS_SC_PREADV:
	case OBS_SC_PWRITEV2:
	case OBS_SC_PREADV2:
	case OBS_SC_PWRITE64:
	case OBS_SC_PREAD64:
		return io_known && (io == IO_MODE_THREADS || io == IO_MODE_UNSET);
	default:   /* fallocate, fdatasync */
		return false;
	}
}

bool agg_key_equal(const struct agg_key *a, const struct agg_key *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->syscall == b->syscall;
}

struct agg_entry *agg_snapshot_add(struct agg_snapshot *s, const struct agg_key *key)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	struct agg_entry *e = &s->v[s->n++];
	memset(e, 0, sizeof(*e));
	e->key = *key;
	return e;
}

const struct agg_entry *agg_snapshot_find(const struct agg_snapshot *s, const struct agg_key *key)
{
	for (size_t i = 0; i < s->n; i++)
		if (agg_key_equal(&s->v[i].key, key))
			return &s->v[i];
	return NULL;
}

void agg_snapshot_clear(struct agg_snapshot *s)
{
	s->n = 0;
}

void agg_snapshot_free(struct agg_snapshot *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* Slot i covers [lo, hi) microseconds; slot 0 starts at 0, and the last
 * slot ends at the maximum when that lies beyond. */
static double slot_lo_us(int i)
{
	return i == 0 ? 0.0 : (double)(1ULL << i);
}

static double slot_hi_us(int i, double max_us)
{
	double hi = (double)(1ULL << (i + 1));
	return i == OBS_SLOTS - 1 && max_us > hi ? max_us : hi;
}

double agg_quantile_us(const uint64_t slots[OBS_SLOTS], double q, double max_us)
{
	uint64_t total = 0, below = 0;

	for (int i = 0; i < OBS_SLOTS; i++)
		total += slots[i];
	if (!total)
		return 0.0;
	double rank = q * (double)total;
	for (int i = 0; i < OBS_SLOTS; i++) {
		if (!slots[i] || (double)(below + slots[i]) < rank) {
			below += slots[i];
			continue;
		}
		double frac = (rank - (double)below) / (double)slots[i];
		double v = slot_lo_us(i) + frac * (slot_hi_us(i, max_us) - slot_lo_us(i));
		return max_us > 0 && v > max_us ? max_us : v;
	}
	return max_us;  /* not reached: rank <= total */
}

static bool counters_went_back(const struct agg_counters *p, const struct agg_counters *n)
{
	return n->count < p->count || n->iocbs < p->iocbs || n->bytes < p->bytes ||
	       n->sum_ns < p->sum_ns || n->alloc_ns < p->alloc_ns ||
	       n->offcpu_ns < p->offcpu_ns || n->stalls < p->stalls;
}

int agg_interval(const struct agg_entry *prev, const struct agg_entry *now,
		 struct agg_interval *out)
{
	static const struct agg_counters zero;
	const struct agg_counters *p = prev ? &prev->c : &zero, *n = &now->c;
	uint64_t slots[OBS_SLOTS];

	if (counters_went_back(p, n) || n->count == p->count)
		return -1;
	for (int i = 0; i < OBS_SLOTS; i++) {
		if (n->slots[i] < p->slots[i])
			return -1;
		slots[i] = n->slots[i] - p->slots[i];
	}
	memset(out, 0, sizeof(*out));
	out->key = now->key;
	out->submits = n->count - p->count;
	out->iocbs = n->iocbs - p->iocbs;
	out->bytes = n->bytes - p->bytes;
	out->stalls = n->stalls - p->stalls;
	out->alloc_us = (double)(n->alloc_ns - p->alloc_ns) / 1e3;
	out->offcpu_us = (double)(n->offcpu_ns - p->offcpu_ns) / 1e3;
	/* The interval max can be missing when a submission raced the read:
	 * fall back to the histogram's top. */
	out->max_us = n->interval_max_ns ? (double)n->interval_max_ns / 1e3
					 : agg_quantile_us(slots, 1.0, 0);
	out->p50_us = agg_quantile_us(slots, 0.50, out->max_us);
	out->p99_us = agg_quantile_us(slots, 0.99, out->max_us);
	return 0;
}

static int worst_first(const void *a, const void *b)
{
	const struct agg_interval *x = a, *y = b;

	if (x->stalls != y->stalls)
		return x->stalls > y->stalls ? -1 : 1;
	if (x->p99_us != y->p99_us)
		return x->p99_us > y->p99_us ? -1 : 1;
	if (x->max_us != y->max_us)
		return x->max_us > y->max_us ? -1 : 1;
	return 0;
}

size_t agg_intervals(const struct agg_snapshot *prev, const struct agg_snapshot *now,
		     struct agg_interval **out)
{
	struct agg_interval *v = xcalloc(now->n, sizeof(*v));
	size_t n = 0;

	for (size_t i = 0; i < now->n; i++) {
		const struct agg_entry *p = prev ? agg_snapshot_find(prev, &now->v[i].key) : NULL;
		if (agg_interval(p, &now->v[i], &v[n]) == 0)
			n++;
	}
	qsort(v, n, sizeof(*v), worst_first);
	*out = v;
	return n;
}
