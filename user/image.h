/* SPDX-License-Identifier: GPL-2.0-only */
/* Facts about a disk image, read without mounting anything: stat, FIEMAP
 * (holes vs unwritten extents) and the qcow2 header read directly. */
#ifndef AIOGUARD_IMAGE_H
#define AIOGUARD_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../policy/facts.h"

struct image_facts {
	int error;                 /* errno of the failed step, 0 when inspected */
	char detail[224];          /* why UNKNOWN, in words; empty otherwise */
	char note[160];            /* a fact that did not change the verdict
	                              (a raw disk whose content starts with a
	                              qcow2 header); empty when none */
	char fs[16];               /* filesystem of a file: "ext4", "xfs", …;
	                              empty for a block device or when unknown */
	bool is_block;             /* source is a block device */
	uint64_t dev, ino;         /* st_dev/st_ino of the file; for a block
	                              device dev = st_rdev, ino = 0 */
	uint64_t size;             /* apparent size (st_size, or device size) */
	uint64_t allocated;        /* st_blocks * 512 */
	uint64_t hole_bytes;       /* bytes of the file in no extent at all;
	                              qcow2: whole clusters only (a written
	                              cluster's hole is a metadata table's
	                              unused tail, never guest data) */
	uint64_t unwritten_bytes;  /* fallocate()d but never written (reserved) */
	bool qcow2;                /* inspected as qcow2 (declared so, and a
	                              header QEMU would open) */
	uint64_t virtual_size;     /* qcow2: guest-visible size; raw: == size */
	uint32_t cluster_bits;     /* qcow2 */
	enum image_state state;
};

/* Fill *out for the image or device at path, of the format the domain XML
 * declares (<driver type>: "raw", "qcow2"; NULL is raw, libvirt's default):
 * QEMU opens the image as declared, never as its content says, and so does
 * this. A guest writes the content of a raw disk, a qcow2 header included.
 * A declared qcow2 whose header QEMU would refuse, and formats other than
 * raw and qcow2, are IMAGE_UNKNOWN. Never fails: on error out->state is
 * IMAGE_UNKNOWN and out->error/out->detail say why. */
void image_inspect(const char *path, const char *format, struct image_facts *out);

/* qcow2 header fields that matter here. Pure, for tests and fuzzing. */
struct qcow2_info {
	uint32_t version;
	uint32_t cluster_bits;
	uint64_t virtual_size;
	bool has_backing_file;
	bool has_data_file;        /* guest data in an external data file */
};
/* 0 when buf holds a qcow2 header QEMU opens for writing (the checks of its
 * qcow2_do_open() on the header alone); -EINVAL otherwise, *why (may be
 * NULL) then says what QEMU refuses, in a static string, and *out is
 * untouched. */
int qcow2_parse_header(const uint8_t *buf, size_t len, struct qcow2_info *out,
		       const char **why);

#endif
