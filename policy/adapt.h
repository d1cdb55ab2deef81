/* SPDX-License-Identifier: GPL-2.0-only */
/* The adaptive rule: switch a stalling sparse disk from native to threads,
 * and (if enabled) back once its image is fully allocated. Pure: the agent
 * hands in windows, image state and the clock; this returns a decision. */
#ifndef AIOGUARD_ADAPT_H
#define AIOGUARD_ADAPT_H

#include <stdbool.h>
#include <stdint.h>

#include "facts.h"

#define ADAPT_MAX_WINDOWS 64

/* One observation interval of one disk (all syscalls of that disk summed). */
struct adapt_window {
	uint64_t submits;
	uint64_t stalls;          /* submissions longer than the stall threshold */
	uint64_t stalled_us;      /* time spent in those stalled submissions */
	uint64_t p99_us;
	uint64_t alloc_us;        /* time inside filesystem block allocation */
	uint32_t length_ms;       /* the interval's length */
};

struct adapt_config {
	uint32_t stalls_per_window;     /* a window is bad with ≥ this many stalls… */
	uint32_t stalled_ms_per_s;      /* …or ≥ this many ms stalled per second */
	uint32_t bad_windows;           /* M: switch when M of… */
	uint32_t history_windows;       /* …the last K windows are bad */
	uint32_t cooldown_s;            /* no second change of one disk within this */
	uint32_t max_changes_per_hour;  /* all disks together */
	bool switch_back;               /* threads -> native once allocated (off) */
	uint32_t switch_back_quiet_s;   /* no stall seen for this long first */
};

/* The defaults, with their reasons in adapt.c and README. */
void adapt_config_defaults(struct adapt_config *c);
/* NULL when valid, else a static message naming the bad knob. */
const char *adapt_config_check(const struct adapt_config *c);

struct adapt_disk {
	enum io_mode io;               /* what QEMU runs now */
	enum io_mode io_next_boot;     /* persistent definition */
	const char *cache;
	enum image_state image;
	const char *target;            /* <target dev>, for the reason */
	enum opt_out opted_out;        /* operator's aioguard metadata */
	unsigned opt_out_xml;          /* enum opt_out_xml bits: where it was found */
	int64_t last_change_s;         /* when aioguard last changed it; < 0 never */
	int64_t last_stall_s;          /* last window with a stall; < 0 never */
	int64_t watched_since_s;       /* first window seen */
	const struct adapt_window *windows;   /* oldest first */
	uint32_t nwindows;
};

struct adapt_global {
	int64_t now_s;                 /* monotonic seconds */
	uint32_t changes_last_hour;    /* changes applied by this agent */
};

enum adapt_action {
	ADAPT_KEEP,         /* nothing to do */
	ADAPT_SWITCH,       /* change io to decision.to */
	ADAPT_ADVISE_ONLY,  /* would switch, but a guard forbids it now */
};

struct adapt_decision {
	enum adapt_action action;
	enum io_mode to;               /* target of SWITCH / ADVISE_ONLY */
	uint32_t bad_windows;          /* evidence: bad windows among the last K */
	char reason[320];
};

bool adapt_window_is_bad(const struct adapt_config *c, const struct adapt_window *w);
void adapt_decide(const struct adapt_config *c, const struct adapt_disk *d,
		  const struct adapt_global *g, struct adapt_decision *out);
const char *adapt_action_name(enum adapt_action a);

#endif
