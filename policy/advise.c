// SPDX-License-Identifier: GPL-2.0-only
/* First matching rule wins. Media and disk types the AIO mode cannot help
 * come first, then anything not known for sure, then O_DIRECT, then how the
 * image allocates its blocks. */
#include "advise.h"

#include <stdarg.h>
#include <stdio.h>

static void say(struct advice *out, enum io_mode mode, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(struct advice *out, enum io_mode mode, const char *fmt, ...)
{
	va_list ap;

	out->recommended = mode;
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	utf8_trim_partial(out->reason);
	va_end(ap);
}

static void set_sparse(const struct disk_facts *f, struct advice *out)
{
	switch (f->image) {
	case IMAGE_SPARSE:
	case IMAGE_GROWING:
		out->sparse = true;
		/* fallthrough */
	case IMAGE_ALLOCATED:
	case IMAGE_BLOCKDEV:
		out->sparse_known = true;
		break;
	case IMAGE_UNKNOWN:
		break;
	}
}

/* Rules that leave the AIO mode alone; true when one matched. */
static bool no_recommendation(const struct disk_facts *f, struct advice *out)
{
	if (f->device == DISK_DEVICE_CDROM || f->device == DISK_DEVICE_FLOPPY || f->readonly) {
		say(out, IO_MODE_UNSET, "read-only %s: read-only media needs no AIO mode "
		    "(no write ever allocates blocks)",
		    f->readonly && f->device == DISK_DEVICE_DISK ? "disk" :
		    disk_device_name(f->device));
		return true;
	}
	switch (f->type) {
	case DISK_TYPE_NETWORK:
		say(out, IO_MODE_UNSET, "AIO mode has no effect: QEMU's own network client "
		    "(NBD, RBD, iSCSI, gluster) submits the I/O");
		return true;
	case DISK_TYPE_VOLUME:
		say(out, IO_MODE_UNSET, "storage pool volume could not be resolved to a file "
		    "or block device: its image is unknown");
		return true;
	case DISK_TYPE_DIR:
		say(out, IO_MODE_UNSET, "directory disk is a virtual FAT drive QEMU builds "
		    "in memory: the AIO mode does not reach a host image");
		return true;
	case DISK_TYPE_OTHER:
		say(out, IO_MODE_UNSET, "disk type is not file, block or network (e.g. nvme, "
		    "vhostuser): QEMU does not submit its I/O through Linux AIO");
		return true;
	case DISK_TYPE_FILE:
	case DISK_TYPE_BLOCK:
		break;
	}
	if (f->image == IMAGE_UNKNOWN) {
		say(out, IO_MODE_UNSET, "image unknown, so no guess%s%s",
		    f->image_detail ? ": " : "", f->image_detail ? f->image_detail : "");
		return true;
	}
	return false;
}

static const char *already(const struct disk_facts *f, enum io_mode mode)
{
	return f->io == mode ? "already " : "";
}

static void by_image(const struct disk_facts *f, struct advice *out)
{
	const char *fmt = f->format ? f->format : "file";

	switch (f->image) {
	case IMAGE_BLOCKDEV:
		say(out, IO_MODE_NATIVE, "%snative: block device, nothing to allocate "
		    "inside io_submit", already(f, IO_MODE_NATIVE));
		break;
	case IMAGE_ALLOCATED:
		say(out, IO_MODE_NATIVE, "%snative: %s image fully allocated: no block "
		    "allocation inside io_submit", already(f, IO_MODE_NATIVE), fmt);
		break;
	case IMAGE_SPARSE:
		say(out, IO_MODE_THREADS, "%sthreads: sparse %s image: io_submit blocks while "
		    "ext4/xfs allocate blocks and update metadata; threads hands I/O to a "
		    "worker pool", already(f, IO_MODE_THREADS), fmt);
		break;
	case IMAGE_GROWING:
		say(out, IO_MODE_THREADS, "%sthreads: %s image still growing to its virtual "
		    "size: extending writes are waited for synchronously inside io_submit; "
		    "threads hands I/O to a worker pool", already(f, IO_MODE_THREADS), fmt);
		break;
	case IMAGE_UNKNOWN:	/* handled by no_recommendation() */
		break;
	}
}

void advise_disk(const struct disk_facts *f, struct advice *out)
{
	*out = (struct advice){ .recommended = IO_MODE_UNSET };
	set_sparse(f, out);

	if (no_recommendation(f, out))
		return;
	if (!cache_allows_native(f->cache)) {
		if (f->cache)
			say(out, IO_MODE_THREADS, "%sthreads: cache='%s' is not O_DIRECT; native "
			    "would need cache='none' or 'directsync' (libvirt/QEMU require "
			    "O_DIRECT for native)", already(f, IO_MODE_THREADS), f->cache);
		else
			say(out, IO_MODE_THREADS, "%sthreads: no cache mode set, and the "
			    "hypervisor default is not O_DIRECT; native would need cache='none' "
			    "or 'directsync' (libvirt/QEMU require O_DIRECT for native)",
			    already(f, IO_MODE_THREADS));
		return;
	}
	by_image(f, out);
}
