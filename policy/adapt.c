// SPDX-License-Identifier: GPL-2.0-only
#include "adapt.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DOC "docs/AIO-MODES.md"

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
		/* threads: the mode measured before and after a switch in a
		 * running domain (docs/AIO-MODES.md, "The agent"). */
		.target = ADAPT_TARGET_THREADS,
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

const char *adapt_target_name(enum adapt_target t)
{
	switch (t) {
	case ADAPT_TARGET_IO_URING: return "io_uring";
	case ADAPT_TARGET_AUTO: return "auto";
	case ADAPT_TARGET_THREADS: break;
	}
	return "threads";
}

bool adapt_target_parse(const char *s, enum adapt_target *out)
{
	static const enum adapt_target all[] = {ADAPT_TARGET_THREADS, ADAPT_TARGET_IO_URING,
						ADAPT_TARGET_AUTO};
	for (size_t i = 0; s && i < sizeof(all) / sizeof(all[0]); i++)
		if (!strcmp(s, adapt_target_name(all[i]))) {
			*out = all[i];
			return true;
		}
	return false;
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

static const char *io_uring_why(const struct adapt_disk *d)
{
	return d->io_uring_why && d->io_uring_why[0] ? d->io_uring_why : "support unknown";
}

static bool measured_fs(const struct adapt_disk *d)
{
	return d->fs && (!strcmp(d->fs, "ext4") || !strcmp(d->fs, "xfs"));
}

/* The kernel series (major.minor) QEMU runs on: 6.18 is the host the
 * headline matrix ran on, 6.1 and 6.12 the kernel matrix's guests. */
static bool kernel_series(const struct adapt_disk *d, unsigned *major, unsigned *minor)
{
	return d->kernel && sscanf(d->kernel, "%u.%u", major, minor) == 2;
}

/* What docs/AIO-MODES.md measured of io_uring against threads for writes to
 * this kind of image on this kernel series ('Headline' on 6.18, 'Per
 * kernel' on 6.1 and 6.12), or NULL with why not in no[]: unmeasured
 * filesystem or kernel, or io_uring stalled there too. */
static const char *io_uring_measured(const struct adapt_disk *d, char *no, size_t size)
{
	unsigned major, minor;
	bool growing = d->image == IMAGE_GROWING, sparse = d->image == IMAGE_SPARSE;

	no[0] = '\0';
	if (!measured_fs(d)) {
		snprintf(no, size, "io_uring was not measured on %s (ext4 and xfs only, " DOC ")",
			 d->fs && d->fs[0] ? d->fs : "this filesystem");
		return NULL;
	}
	if (!growing && !sparse)
		return NULL;
	if (!kernel_series(d, &major, &minor)) {
		snprintf(no, size, "the kernel QEMU runs on is not known here, and io_uring's "
			 "stalls differ by kernel (" DOC ", 'Per kernel')");
		return NULL;
	}
	if (major == 6 && minor == 1) {
		snprintf(no, size, "on kernel 6.1 io_uring stalled too: %s (" DOC ", 'Per kernel', %s)",
			 growing ? "as much as native with 4k writes, 6.8–7.2× a fully allocated raw's "
				   "stall time" : "2.7× a fully allocated raw's stall time, ext4 4k",
			 growing ? "6.1 qcow2-off" : "6.1 raw-sparse");
		return NULL;
	}
	if (major == 6 && minor == 12 && growing) {
		snprintf(no, size, "on kernel 6.12 io_uring stalled on growing images with 4k writes "
			 "(11–44× a fully allocated raw's stall time; " DOC ", 'Per kernel', 6.12 qcow2-off)");
		return NULL;
	}
	if (major == 6 && minor == 12)
		return "measured on kernel 6.12 to remove the stall on sparse images (0.5–1.1× a fully "
		       "allocated raw's stall time) at 0.79–1.00× of the best mode (" DOC ", 'Per "
		       "kernel', 6.12 raw-sparse)";
	if (major != 6 || minor != 18) {
		snprintf(no, size, "io_uring was not measured on kernel %u.%u (measured: 6.18, and 6.1 "
			 "and 6.12 in the kernel matrix; " DOC ")", major, minor);
		return NULL;
	}
	if (growing)
		return "measured ahead of threads on growing images: the fastest mode there, "
		       "1.75× native on ext4 and 1.44× on xfs with 64k writes against threads' "
		       "0.75× and 0.92×, and io_uring_enter never stalled (" DOC ", 'Headline', "
		       "qcow2-off)";
	if (d->image == IMAGE_SPARSE)
		return "measured ahead of threads on sparse images: 0.77–0.96× native on ext4 "
		       "and 0.57–1.10× on xfs against threads' 0.23–0.35× and 0.43–0.63×, and "
		       "io_uring_enter never stalled (" DOC ", 'Headline', raw-sparse and "
		       "qcow2-metadata)";
	return NULL;
}

/* The mode a stalling native disk goes to, from the operator's target and
 * the facts; why says how it was chosen (empty for plain threads). Returns
 * false when the target cannot be had here (io_uring found unusable): the
 * decision is then advice only. */
static bool pick_target(const struct adapt_config *c, const struct adapt_disk *d,
			enum io_mode *to, char *why, size_t size)
{
	char no[300];
	const char *measured = io_uring_measured(d, no, sizeof(no));

	why[0] = '\0';
	*to = IO_MODE_THREADS;
	switch (c->target) {
	case ADAPT_TARGET_THREADS:
		return true;
	case ADAPT_TARGET_IO_URING:
		*to = IO_MODE_IO_URING;
		if (d->io_uring_known && !d->io_uring_usable) {
			snprintf(why, size, "io_uring is not usable here (%s); target threads or auto "
				 "would switch to threads", io_uring_why(d));
			return false;
		}
		if (!d->io_uring_known)
			snprintf(why, size, "; to io_uring as configured (target io_uring), though its "
				 "support could not be checked here (%s)", io_uring_why(d));
		else
			snprintf(why, size, "; to io_uring as configured (target io_uring): %s",
				 io_uring_why(d));
		return true;
	case ADAPT_TARGET_AUTO:
		break;
	}
	if (d->io_uring_known && d->io_uring_usable && measured) {
		*to = IO_MODE_IO_URING;
		snprintf(why, size, "; target auto: io_uring, which runs here (%s) and was %s",
			 io_uring_why(d), measured);
	} else if (!d->io_uring_known)
		snprintf(why, size, "; target auto: threads, since io_uring could not be checked "
			 "here (%s)", io_uring_why(d));
	else if (!d->io_uring_usable)
		snprintf(why, size, "; target auto: threads, since io_uring is not usable here (%s)",
			 io_uring_why(d));
	else if (no[0])
		snprintf(why, size, "; target auto: threads, since %s", no);
	else
		snprintf(why, size, "; target auto: threads, since io_uring was not measured ahead "
			 "of threads for this image");
	return true;
}

/* Modes that do not stall the submitting thread on extending writes: no
 * io attribute is QEMU's default, threads. */
static bool off_native(enum io_mode m)
{
	return m == IO_MODE_THREADS || m == IO_MODE_IO_URING || m == IO_MODE_UNSET;
}

static void decide_from_native(const struct adapt_config *c, const struct adapt_disk *d,
			       const struct adapt_global *g, struct adapt_decision *out)
{
	char why[200], how[640];
	enum io_mode to;

	out->bad_windows = count_bad(c, d);
	if (out->bad_windows < c->bad_windows) {
		say(out, ADAPT_KEEP, IO_MODE_NATIVE, "%u of the last %u windows stalled (switch at %u)",
		    out->bad_windows, c->history_windows, c->bad_windows);
		return;
	}
	bool possible = pick_target(c, d, &to, how, sizeof(how));
	if (d->image != IMAGE_SPARSE && d->image != IMAGE_GROWING) {
		say(out, ADAPT_ADVISE_ONLY, to,
		    "stalls in %u of the last %u windows, but the image is %s: not block allocation, so %s is no known cure",
		    out->bad_windows, c->history_windows, image_state_name(d->image), io_mode_name(to));
		return;
	}
	/* the next boot already leaves native: the stall ends then */
	if (off_native(d->io_next_boot)) {
		say(out, ADAPT_KEEP, d->io_next_boot, "already io='%s' in the persistent definition (next boot)",
		    io_mode_name(d->io_next_boot) ? io_mode_name(d->io_next_boot) : "default (threads)");
		return;
	}
	if (!possible) {
		say(out, ADAPT_ADVISE_ONLY, to, "would switch to io_uring, but %s", how);
		return;
	}
	if (guarded(c, d, g, to, out))
		return;
	why_blocked(c, d, why, sizeof(why));
	say(out, ADAPT_SWITCH, to, "%s image on io='native' stalled in %u of the last %u windows: %s%s",
	    image_state_name(d->image), out->bad_windows, c->history_windows, why, how);
}

/* threads and io_uring alike: neither stalls the submitting thread on
 * extending writes, and either goes back to native the same way. */
static void decide_switch_back(const struct adapt_config *c, const struct adapt_disk *d,
			       const struct adapt_global *g, struct adapt_decision *out)
{
	int64_t quiet_since = d->last_stall_s >= 0 ? d->last_stall_s : d->watched_since_s;
	const char *mode = io_mode_name(d->io);

	if (!c->switch_back) {
		say(out, ADAPT_KEEP, d->io, "on %s; switching back to native is disabled", mode);
		return;
	}
	if (d->image != IMAGE_ALLOCATED) {
		say(out, ADAPT_KEEP, d->io, "on %s; image is %s, not fully allocated", mode,
		    image_state_name(d->image));
		return;
	}
	if (g->now_s - quiet_since < (int64_t)c->switch_back_quiet_s) {
		say(out, ADAPT_KEEP, d->io, "on %s; image fully allocated; quiet for %llds of the %us required",
		    mode, (long long)(g->now_s - quiet_since), c->switch_back_quiet_s);
		return;
	}
	if (!cache_allows_native(d->cache)) {
		say(out, ADAPT_ADVISE_ONLY, IO_MODE_NATIVE,
		    "on %s; image fully allocated, but cache='%s' cannot take native (needs none or directsync)",
		    mode, d->cache ? d->cache : "default");
		return;
	}
	if (guarded(c, d, g, IO_MODE_NATIVE, out))
		return;
	say(out, ADAPT_SWITCH, IO_MODE_NATIVE, "on %s; image now fully allocated and no stall for %llds: native is faster",
	    mode, (long long)(g->now_s - quiet_since));
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
	case IO_MODE_IO_URING:
		decide_switch_back(c, d, g, out);
		break;
	case IO_MODE_UNSET:
		say(out, ADAPT_KEEP, IO_MODE_UNSET, "no io mode set (QEMU default threads): left alone");
		break;
	}
}
