/* SPDX-License-Identifier: GPL-2.0-only */
/* The adaptive rule: switch a stalling sparse or growing disk from native
 * to the target mode (threads, io_uring, or auto: io_uring where it runs and
 * was measured ahead of threads, else threads), and (if enabled) back from
 * threads or io_uring once its image is fully allocated. Pure: the agent
 * hands in windows, image and host facts and the clock; this returns a
 * decision. */
#ifndef AIOGUARD_ADAPT_H
#define AIOGUARD_ADAPT_H

#include <stdbool.h>
#include <stdint.h>

#include "facts.h"

#define ADAPT_MAX_WINDOWS 64

/* One observation interval of one disk: the syscalls that block the
 * guest in the disk's mode, summed (user/aggregate.h, agg_blocks_guest). */
struct adapt_window {
	uint64_t submits;
	uint64_t stalls;          /* submissions longer than the stall threshold */
	uint64_t stalled_us;      /* time spent in those stalled submissions */
	uint64_t p99_us;
	uint64_t alloc_us;        /* time inside filesystem block allocation */
	uint64_t pool_waits;      /* evidence only, never a stall: calls of QEMU's
	                             worker pool (fdatasync, …) over the threshold */
	uint32_t length_ms;       /* the interval's length */
};

/* Where a stalling native disk goes. */
enum adapt_target {
	ADAPT_TARGET_THREADS,     /* the default: measured before and after a switch */
	ADAPT_TARGET_IO_URING,
	ADAPT_TARGET_AUTO,        /* io_uring where it runs here and was measured
	                             ahead of threads for the image, else threads */
};

struct adapt_config {
	uint32_t stalls_per_window;     /* a window is bad with ≥ this many stalls… */
	uint32_t stalled_ms_per_s;      /* …or ≥ this many ms stalled per second */
	uint32_t bad_windows;           /* M: switch when M of… */
	uint32_t history_windows;       /* …the last K windows are bad */
	uint32_t cooldown_s;            /* no second change of one disk within this */
	uint32_t max_changes_per_hour;  /* all disks together */
	enum adapt_target target;       /* native -> this, when stalling */
	bool switch_back;               /* threads/io_uring -> native once allocated (off) */
	uint32_t switch_back_quiet_s;   /* no stall seen for this long first */
};

/* The defaults, with their reasons in adapt.c and README. */
void adapt_config_defaults(struct adapt_config *c);
/* NULL when valid, else a static message naming the bad knob. */
const char *adapt_config_check(const struct adapt_config *c);
/* "threads", "io_uring", "auto"; parse: false for anything else. */
const char *adapt_target_name(enum adapt_target t);
bool adapt_target_parse(const char *s, enum adapt_target *out);

struct adapt_disk {
	enum io_mode io;               /* what QEMU runs now */
	enum io_mode io_next_boot;     /* persistent definition */
	const char *cache;
	enum image_state image;
	const char *fs;                /* filesystem of the image ("ext4", …), may be NULL */
	const char *kernel;            /* release QEMU runs on ("6.1.0-57-amd64"); NULL
	                                  or "": not known (libvirt on another host) */
	bool io_uring_known;           /* io_uring support could be checked here… */
	bool io_uring_usable;          /* …and QEMU, libvirt and the kernel run it */
	const char *io_uring_why;      /* what was found, in words; may be NULL */
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
	char reason[1024];
};

bool adapt_window_is_bad(const struct adapt_config *c, const struct adapt_window *w);
void adapt_decide(const struct adapt_config *c, const struct adapt_disk *d,
		  const struct adapt_global *g, struct adapt_decision *out);
const char *adapt_action_name(enum adapt_action a);

#endif
