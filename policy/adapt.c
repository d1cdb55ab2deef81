// SPDX-License-Identifier: GPL-2.0-only
#include "adapt.h"

#include <stdarg.h>
#include <stdio.h>

void adapt_config_defaults(struct adapt_config *c)
{
	*c = (struct adapt_config){
		/* With a 1 ms stall threshold, 5 stalls in a 10 s window is a guest
		 * that hiccups every two seconds; 10 ms/s is 1 % of its time frozen. */
		.stalls_per_window = 5,
		.stalled_ms_per_s = 10,
		/* 3 bad of the last 5 windows: a pattern lasting ~30 s, not one
		 * burst (a guest's mkfs, a single large copy). */
		.bad_windows = 3,
		.history_windows = 5,
		/* A change pauses the guest (save-restore) or waits for a reboot:
		 * never touch one disk twice within 10 minutes. */
		.cooldown_s = 600,
		/* A bug or a storm must not save-restore every guest at once. */
		.max_changes_per_hour = 10,
		/* Switching back is a bet that the image stays allocated: off
		 * unless the operator asks, and only after an hour with no stall. */
		.switch_back = false,
		.switch_back_quiet_s = 3600,
	};
}

const char *adapt_config_check(const struct adapt_config *c)
{
	if (!c->stalls_per_window && !c->stalled_ms_per_s)
		return "stalls-per-window and stalled-ms-per-s cannot both be 0";
	if (!c->bad_windows)
		return "bad-windows must be at least 1";
	if (c->history_windows < c->bad_windows || c->history_windows > ADAPT_MAX_WINDOWS)
		return "history-windows must be between bad-windows and 64";
	return NULL;
}

const char *adapt_action_name(enum adapt_action a)
{
	switch (a) {
	case ADAPT_SWITCH: return "switch";
	case ADAPT_ADVISE_ONLY: return "advise-only";
	case ADAPT_KEEP: break;
	}
	return "keep";
}

bool adapt_window_is_bad(const struct adapt_config *c, const struct adapt_window *w)
{
	if (c->stalls_per_window && w->stalls >= c->stalls_per_window)
		return true;
	/* ms stalled per s = stalled_us / length_ms; multiplied out, no division */
	return c->stalled_ms_per_s && w->length_ms &&
	       w->stalled_us >= (uint64_t)c->stalled_ms_per_s * w->length_ms;
}

static void say(struct adapt_decision *out, enum adapt_action a, enum io_mode to,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void say(struct adapt_decision *out, enum adapt_action a, enum io_mode to,
		const char *fmt, ...)
{
	va_list ap;
	out->action = a;
	out->to = to;
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	utf8_trim_partial(out->reason);
	va_end(ap);
}

static uint32_t count_bad(const struct adapt_config *c, const struct adapt_disk *d)
{
	uint32_t k = d->nwindows < c->history_windows ? d->nwindows : c->history_windows;
	uint32_t bad = 0;
	for (uint32_t i = d->nwindows - k; i < d->nwindows; i++)
		bad += adapt_window_is_bad(c, &d->windows[i]);
	return bad;
}

static const char *opt_out_where(unsigned xml)
{
	switch (xml & (OPT_OUT_IN_LIVE | OPT_OUT_IN_PERSISTENT)) {
	case OPT_OUT_IN_LIVE: return " in its live XML";
	case OPT_OUT_IN_PERSISTENT: return " in its persistent XML";
	case OPT_OUT_IN_LIVE | OPT_OUT_IN_PERSISTENT: return " in its live and persistent XML";
	}
	return "";
}

/* Guards shared by both directions: the disk may want a change, may it have one? */
static bool guarded(const struct adapt_config *c, const struct adapt_disk *d,
		    const struct adapt_global *g, enum io_mode to, struct adapt_decision *out)
{
	const char *mode = io_mode_name(to);

	if (d->io_next_boot == to) {
		say(out, ADAPT_KEEP, to, "already io='%s' in the persistent definition (next boot)", mode);
		return true;
	}
	if (d->opted_out != OPT_OUT_NONE) {
		char who[96];

		if (d->opted_out == OPT_OUT_DOMAIN)
			snprintf(who, sizeof(who), "the domain");
		else
			snprintf(who, sizeof(who), "disk %s", d->target ? d->target : "(unnamed)");
		utf8_trim_partial(who);
		say(out, ADAPT_ADVISE_ONLY, to, "would switch to %s, but %s opted out (aioguard metadata%s)",
		    mode, who, opt_out_where(d->opt_out_xml));
		return true;
	}
	if (d->last_change_s >= 0 && g->now_s - d->last_change_s < (int64_t)c->cooldown_s) {
		say(out, ADAPT_ADVISE_ONLY, to, "would switch to %s, but changed %llds ago (cooldown %us)",
		    mode, (long long)(g->now_s - d->last_change_s), c->cooldown_s);
		return true;
	}
	if (g->changes_last_hour >= c->max_changes_per_hour) {
		say(out, ADAPT_ADVISE_ONLY, to, "would switch to %s, but %u changes in the last hour reach the limit",
		    mode, g->changes_last_hour);
		return true;
	}
	return false;
}

/* What the windows show of the stall, and no more: block allocation only
 * where its time was measured. */
static void why_blocked(const struct adapt_config *c, const struct adapt_disk *d,
			char *buf, size_t size)
{
	uint32_t k = d->nwindows < c->history_windows ? d->nwindows : c->history_windows;
	uint64_t alloc_us = 0;

	for (uint32_t i = d->nwindows - k; i < d->nwindows; i++)
		alloc_us += d->windows[i].alloc_us;
	if (alloc_us)
		snprintf(buf, size, "io_submit blocked the submitting thread, %llu µs of it in "
			 "filesystem block allocation", (unsigned long long)alloc_us);
	else
		snprintf(buf, size, "io_submit blocked the submitting thread (no block allocation "
			 "time measured in these windows: the write extended the file or waited for "
			 "completion)");
}

static void decide_from_native(const struct adapt_config *c, const struct adapt_disk *d,
			       const struct adapt_global *g, struct adapt_decision *out)
{
	char why[200];

	out->bad_windows = count_bad(c, d);
	if (out->bad_windows < c->bad_windows) {
		say(out, ADAPT_KEEP, IO_MODE_NATIVE, "%u of the last %u windows stalled (switch at %u)",
		    out->bad_windows, c->history_windows, c->bad_windows);
		return;
	}
	if (d->image != IMAGE_SPARSE && d->image != IMAGE_GROWING) {
		say(out, ADAPT_ADVISE_ONLY, IO_MODE_THREADS,
		    "stalls in %u of the last %u windows, but the image is %s: not block allocation, so threads is no known cure",
		    out->bad_windows, c->history_windows, image_state_name(d->image));
		return;
	}
	if (guarded(c, d, g, IO_MODE_THREADS, out))
		return;
	why_blocked(c, d, why, sizeof(why));
	say(out, ADAPT_SWITCH, IO_MODE_THREADS, "%s image on io='native' stalled in %u of the last %u windows: %s",
	    image_state_name(d->image), out->bad_windows, c->history_windows, why);
}

static void decide_from_threads(const struct adapt_config *c, const struct adapt_disk *d,
				const struct adapt_global *g, struct adapt_decision *out)
{
	int64_t quiet_since = d->last_stall_s >= 0 ? d->last_stall_s : d->watched_since_s;

	if (!c->switch_back) {
		say(out, ADAPT_KEEP, IO_MODE_THREADS, "on threads; switching back to native is disabled");
		return;
	}
	if (d->image != IMAGE_ALLOCATED) {
		say(out, ADAPT_KEEP, IO_MODE_THREADS, "on threads; image is %s, not fully allocated",
		    image_state_name(d->image));
		return;
	}
	if (g->now_s - quiet_since < (int64_t)c->switch_back_quiet_s) {
		say(out, ADAPT_KEEP, IO_MODE_THREADS, "image fully allocated; quiet for %llds of the %us required",
		    (long long)(g->now_s - quiet_since), c->switch_back_quiet_s);
		return;
	}
	if (!cache_allows_native(d->cache)) {
		say(out, ADAPT_ADVISE_ONLY, IO_MODE_NATIVE,
		    "image fully allocated, but cache='%s' cannot take native (needs none or directsync)",
		    d->cache ? d->cache : "default");
		return;
	}
	if (guarded(c, d, g, IO_MODE_NATIVE, out))
		return;
	say(out, ADAPT_SWITCH, IO_MODE_NATIVE, "image now fully allocated and no stall for %llds: native is faster",
	    (long long)(g->now_s - quiet_since));
}

void adapt_decide(const struct adapt_config *c, const struct adapt_disk *d,
		  const struct adapt_global *g, struct adapt_decision *out)
{
	*out = (struct adapt_decision){0};
	switch (d->io) {
	case IO_MODE_NATIVE:
		decide_from_native(c, d, g, out);
		break;
	case IO_MODE_THREADS:
		decide_from_threads(c, d, g, out);
		break;
	case IO_MODE_IO_URING:
		say(out, ADAPT_KEEP, IO_MODE_IO_URING, "io_uring hands allocating writes to io-wq: left alone");
		break;
	case IO_MODE_UNSET:
		say(out, ADAPT_KEEP, IO_MODE_UNSET, "no io mode set (QEMU default threads): left alone");
		break;
	}
}
