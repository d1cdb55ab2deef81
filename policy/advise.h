/* SPDX-License-Identifier: GPL-2.0-only */
/* Static AIO advice per disk, from what was measured (docs/AIO-MODES.md):
 * every rule cites the row or section that backs it, and where nothing was
 * measured the reason says so instead of guessing. Pure: facts in, advice
 * out. */
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
	bool unwritten;               /* IMAGE_ALLOCATED with fallocate()d extents
	                                 never written (reserved, not holes) */
	const char *fs;               /* filesystem of a file image ("ext4", …);
	                                 NULL or "" when unknown */
	const char *image_detail;     /* why IMAGE_UNKNOWN, may be NULL */
	const char *image_note;       /* a fact that did not change the verdict
	                                 (a raw disk with a qcow2 header), may be NULL */
	bool io_uring_known;          /* whether it could be checked (not through
	                                 a remote URI) */
	bool io_uring_usable;         /* QEMU, libvirt and the kernel here run
	                                 io='io_uring' (user/host.c finds out) */
	const char *io_uring_why;     /* why (not), in words; may be NULL */
	const char *kernel;           /* release of the kernel QEMU runs on
	                                 ("6.1.0-57-amd64"); NULL or "" when not
	                                 known (remote libvirt) */
};

struct advice {
	enum io_mode recommended;     /* IO_MODE_UNSET = no recommendation (null) */
	bool sparse_known;            /* false -> "sparse": null */
	bool sparse;                  /* image sparse or will grow */
	char reason[768];             /* the rule that decided and what backs it */
};

void advise_disk(const struct disk_facts *f, struct advice *out);

#endif
