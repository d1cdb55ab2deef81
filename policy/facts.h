/* SPDX-License-Identifier: GPL-2.0-only */
/* Facts about a disk that policy/ decides on. policy/ is pure: it is handed
 * these and returns decisions; it never reads a file, a socket or the clock. */
#ifndef AIOGUARD_POLICY_FACTS_H
#define AIOGUARD_POLICY_FACTS_H

#include <stdbool.h>
#include <stdint.h>

/* <disk type='…'> */
enum disk_type {
	DISK_TYPE_FILE,
	DISK_TYPE_BLOCK,
	DISK_TYPE_NETWORK,
	DISK_TYPE_VOLUME,
	DISK_TYPE_DIR,
	DISK_TYPE_OTHER,
};

/* <disk device='…'> */
enum disk_device {
	DISK_DEVICE_DISK,
	DISK_DEVICE_CDROM,
	DISK_DEVICE_FLOPPY,
	DISK_DEVICE_LUN,
};

/* <driver io='…'>; IO_MODE_UNSET when the XML has no io attribute. */
enum io_mode {
	IO_MODE_UNSET,
	IO_MODE_NATIVE,
	IO_MODE_THREADS,
	IO_MODE_IO_URING,
};

/* What inspecting the image (user/image.c) found out. */
enum image_state {
	IMAGE_UNKNOWN,    /* missing, unreadable, or not inspected: never guess */
	IMAGE_ALLOCATED,  /* every block of the image exists (raw without holes,
	                     qcow2 preallocated falloc/full with no room to grow) */
	IMAGE_SPARSE,     /* has holes: writes into them allocate blocks */
	IMAGE_GROWING,    /* qcow2 whose file must still grow to its virtual size */
	IMAGE_BLOCKDEV,   /* a block device: nothing to allocate */
};

/* The operator's opt-out: aioguard metadata (urn:aioguard:policy:1) in the
 * domain XML, for the whole domain or for one disk. The domain's wins. */
enum opt_out {
	OPT_OUT_NONE,
	OPT_OUT_DISK,      /* <aioguard:disk target='vdb' mode='off'/> */
	OPT_OUT_DOMAIN,    /* <aioguard:policy mode='off'/> */
};

/* Which XML of the domain held it (a bit set; 0: not known). */
enum opt_out_xml {
	OPT_OUT_IN_LIVE = 1 << 0,
	OPT_OUT_IN_PERSISTENT = 1 << 1,
};

const char *disk_type_name(enum disk_type t);
const char *disk_device_name(enum disk_device d);
const char *io_mode_name(enum io_mode m);       /* NULL for IO_MODE_UNSET */
const char *image_state_name(enum image_state s);
bool io_mode_parse(const char *s, enum io_mode *out);  /* NULL -> UNSET */

/* After a truncating snprintf: cut a UTF-8 sequence the end split, so
 * names from domain XML never turn into invalid UTF-8 in JSON or labels. */
void utf8_trim_partial(char *s);

/* libvirt and QEMU need O_DIRECT for io='native': cache none or directsync. */
bool cache_allows_native(const char *cache);

#endif
