/* SPDX-License-Identifier: GPL-2.0-only */
/* Static AIO advice per disk: OpenStack nova's libvirt-aio-mode rules,
 * extended. Pure: facts in, advice out. */
#ifndef AIOGUARD_ADVISE_H
#define AIOGUARD_ADVISE_H

#include "facts.h"

struct disk_facts {
	enum disk_type type;          /* effective type: a volume already resolved
	                                 to DISK_TYPE_FILE or DISK_TYPE_BLOCK; stays
	                                 DISK_TYPE_VOLUME when it could not be */
	enum disk_device device;
	bool readonly;
	const char *format;           /* "raw", "qcow2", … or NULL */
	const char *cache;            /* NULL = hypervisor default (not O_DIRECT) */
	enum io_mode io;              /* current mode */
	enum image_state image;
	const char *image_detail;     /* why IMAGE_UNKNOWN, may be NULL */
};

struct advice {
	enum io_mode recommended;     /* IO_MODE_UNSET = no recommendation (null) */
	bool sparse_known;            /* false -> "sparse": null */
	bool sparse;                  /* image sparse or will grow */
	char reason[384];             /* the rule that decided, in words */
};

void advise_disk(const struct disk_facts *f, struct advice *out);

#endif
