// SPDX-License-Identifier: GPL-2.0-only
#include "privs.h"

#include <errno.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "util.h"

static const cap_value_t kept[] = {CAP_DAC_READ_SEARCH};

static bool is_kept(cap_value_t c)
{
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		if (kept[i] == c)
			return true;
	return false;
}

/* The bounding set first (it needs CAP_SETPCAP, which goes last). Without
 * CAP_SETPCAP (systemd already bounded us) it stays: with no_new_privs and
 * an empty permitted set, nothing can be regained from it anyway. */
static int drop_bounding(void)
{
	if (!CAP_IS_SUPPORTED(CAP_SETPCAP) || prctl(PR_CAPBSET_READ, CAP_SETPCAP) != 1)
		return 0;
	cap_t now = cap_get_proc();
	cap_flag_value_t setpcap = CAP_CLEAR;
	cap_get_flag(now, CAP_SETPCAP, CAP_EFFECTIVE, &setpcap);
	cap_free(now);
	if (setpcap != CAP_SET)
		return 0;
	for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++)
		if (!is_kept(c) && cap_get_bound(c) == 1 && cap_drop_bound(c) < 0)
			return -1;
	return 0;
}

int privs_drop_after_attach(void)
{
	cap_t caps = cap_get_proc();
	cap_flag_value_t have;
	int rc = -1;

	if (!caps)
		goto out;
	if (drop_bounding() < 0)
		goto out;
	cap_clear(caps);
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		cap_t now = cap_get_proc();
		cap_get_flag(now, kept[i], CAP_PERMITTED, &have);
		cap_free(now);
		if (have == CAP_SET) {
			cap_set_flag(caps, CAP_PERMITTED, 1, &kept[i], CAP_SET);
			cap_set_flag(caps, CAP_EFFECTIVE, 1, &kept[i], CAP_SET);
		}
	}
	if (cap_reset_ambient() < 0 || cap_set_proc(caps) < 0)
		goto out;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		log_err("cannot drop capabilities: %s", strerror(errno));
	if (caps)
		cap_free(caps);
	return rc;
}
