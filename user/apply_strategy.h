/* SPDX-License-Identifier: GPL-2.0-only */
/* When a changed io reaches the running QEMU: shared by set-io, the agent's
 * settings and apply.c (no libvirt here, so the settings stay pure). */
#ifndef AIOGUARD_APPLY_STRATEGY_H
#define AIOGUARD_APPLY_STRATEGY_H

#include <stdbool.h>
#include <string.h>

enum apply_strategy {
	APPLY_NEXT_BOOT,     /* persistent definition only */
	APPLY_SAVE_RESTORE,  /* and now: save the running domain to disk and
	                        restore it with the new XML (guest sees a pause) */
	APPLY_LIVE,          /* and now: swap QEMU's file nodes (live.h); the
	                        guest keeps running; the mode is recorded under
	                        the state directory (libvirt's live XML keeps
	                        the old io) */
	APPLY_STRATEGY_COUNT,
};

static const char *const apply_strategy_names[APPLY_STRATEGY_COUNT] = {
	[APPLY_NEXT_BOOT] = "next-boot", [APPLY_SAVE_RESTORE] = "save-restore",
	[APPLY_LIVE] = "live",
};

static inline const char *apply_strategy_name(enum apply_strategy s)
{
	return s < APPLY_STRATEGY_COUNT ? apply_strategy_names[s] : "?";
}

static inline bool apply_strategy_parse(const char *s, enum apply_strategy *out)
{
	for (int i = 0; i < APPLY_STRATEGY_COUNT; i++)
		if (!strcmp(s, apply_strategy_names[i])) {
			*out = (enum apply_strategy)i;
			return true;
		}
	return false;
}

#endif
