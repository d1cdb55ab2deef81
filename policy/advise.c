// SPDX-License-Identifier: GPL-2.0-only
/* First matching rule wins. Media and disk types the AIO mode cannot help
 * come first, then anything not known for sure, then what the host can run
 * (O_DIRECT, io_uring), then how writes meet the image: whether they extend
 * the file, land in holes, in unwritten extents, or in allocated blocks.
 * Each of those cites the measurement behind it (docs/AIO-MODES.md, kernel
 * 6.18, ext4 and xfs); where there is none, the reason says so. */
#include "advise.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DOC "docs/AIO-MODES.md"
#define CONFIRMS DOC ", 'What the data confirms'"
#define ROW_BLOCK_CACHE "\"type='block' → native; cache ≠ none → threads\""

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

/* A fact that did not decide, after the reason. */
static void add_note(const struct disk_facts *f, struct advice *out)
{
	size_t n = strlen(out->reason);

	if (!f->image_note || !f->image_note[0])
		return;
	snprintf(out->reason + n, sizeof(out->reason) - n, ". Note: %s", f->image_note);
	utf8_trim_partial(out->reason);
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
	return f->io == mode || (f->io == IO_MODE_UNSET && mode == IO_MODE_THREADS) ?
	       "already " : "";
}

static const char *io_uring_why(const struct disk_facts *f)
{
	return f->io_uring_why && f->io_uring_why[0] ? f->io_uring_why : "support unknown";
}

/* What the host cannot run decides before any measurement. */
static bool host_limits(const struct disk_facts *f, struct advice *out)
{
	char cache[96];

	/* only what was checked: a disk already on io_uring is not moved on
	 * "not checked" */
	if (f->io == IO_MODE_IO_URING && f->io_uring_known && !f->io_uring_usable) {
		say(out, IO_MODE_THREADS, "threads: the disk is on io_uring, which is not usable "
		    "here (%s); threads needs nothing of the kernel or the cache mode",
		    io_uring_why(f));
		return true;
	}
	if (cache_allows_native(f->cache))
		return false;
	if (f->cache)
		snprintf(cache, sizeof(cache), "cache='%s'", f->cache);
	else
		snprintf(cache, sizeof(cache), "no cache mode set (the hypervisor default)");
	utf8_trim_partial(cache);
	if (f->io == IO_MODE_IO_URING)
		say(out, IO_MODE_IO_URING, "already io_uring, which needs no O_DIRECT (native does; "
		    "%s is not O_DIRECT); host-cached disks were not measured (" CONFIRMS ", "
		    "row " ROW_BLOCK_CACHE ": not measured)", cache);
	else
		say(out, IO_MODE_THREADS, "%sthreads: %s is not O_DIRECT, which native needs "
		    "(cache='none' or 'directsync'; libvirt/QEMU require it); threads is QEMU's mode "
		    "for host-cached disks. They were not measured (" CONFIRMS ", row "
		    ROW_BLOCK_CACHE ": not measured)", already(f, IO_MODE_THREADS), cache);
	return true;
}

static bool measured_fs(const struct disk_facts *f)
{
	return f->fs && (!strcmp(f->fs, "ext4") || !strcmp(f->fs, "xfs"));
}

/* "writes extend the file": the one case where native measurably stalls. */
static void writes_extend(const struct disk_facts *f, struct advice *out)
{
	static const char stall[] = "writes extend the file (%s image smaller than its virtual "
		"size): io_submit stalled on them (ext4 p99 956 µs and 66 stalls ≥ 1 ms per run, "
		"xfs 778 µs and 19; in a running domain 16–39 stalls/s)";
	static const char cite[] = " (" CONFIRMS ", row 'qcow2 that grows'; 'Headline', rows "
		"qcow2-off)";
	const char *fmt = f->format ? f->format : "file";
	char why[320];

	snprintf(why, sizeof(why), stall, fmt);
	/* a disk on io_uring stays there unless io_uring was found unusable */
	if (f->io_uring_usable || (f->io == IO_MODE_IO_URING && !f->io_uring_known))
		say(out, IO_MODE_IO_URING, "%sio_uring: %s; io_uring never stalled and was the "
		    "fastest mode there (1.75× native on ext4, 1.44× on xfs with 64k writes; 4k: "
		    "0.79×, 1.18×)%s; io_uring %s here: %s", already(f, IO_MODE_IO_URING), why,
		    cite, f->io_uring_known ? "usable" : "not checked", io_uring_why(f));
	else
		say(out, IO_MODE_THREADS, "%sthreads: %s; threads takes the wait off the submitting "
		    "thread (none left there after the switch in a domain), at 0.75× (ext4) and "
		    "0.92× (xfs) of native's throughput%s; io_uring, faster there, %s here: %s",
		    already(f, IO_MODE_THREADS), why, cite,
		    f->io_uring_known ? "is not usable" : "could not be checked", io_uring_why(f));
}

/* io_uring's standing on images native handles: said to an io_uring disk. */
static const char *vs_io_uring(const struct disk_facts *f)
{
	return f->io == IO_MODE_IO_URING ?
	       "; io_uring reached 0.56–1.13× of native's throughput on such images, native "
	       "best or tied in every run set" : "";
}

static void holes(const struct disk_facts *f, struct advice *out)
{
	if (f->format && !strcmp(f->format, "qcow2"))
		say(out, IO_MODE_NATIVE, "%snative: holes, but the qcow2 file has its full length "
		    "(preallocation=metadata): writes do not extend it and did not stall io_submit "
		    "(ext4 p99 35–46 µs, 0 stalls; xfs 4k p99 104 µs, 1 stall ≥ 1 ms); threads cost "
		    "0.24–0.61× of native's throughput%s (" CONFIRMS ", row 'qcow2 metadata counts "
		    "as growing': not confirmed)", already(f, IO_MODE_NATIVE), vs_io_uring(f));
	else
		say(out, IO_MODE_NATIVE, "%snative: holes: writes into holes below the end of the "
		    "file did not stall io_submit on kernel 6.18 (ext4 p99 32–45 µs, xfs 42–166 µs; "
		    "0 stalls ≥ 1 ms), and threads cost 0.23–0.63× of native's throughput%s ("
		    CONFIRMS ", row 'sparse raw file → threads': not confirmed)",
		    already(f, IO_MODE_NATIVE), vs_io_uring(f));
}

static void unwritten(const struct disk_facts *f, struct advice *out)
{
	say(out, IO_MODE_NATIVE, "%snative: unwritten (fallocated) extents: no stall ≥ 1 ms on "
	    "ext4; on xfs 4k p99 112–138 µs and 0–2 stalls ≥ 1 ms per run; threads cost "
	    "0.37–0.83× of native's throughput%s (" CONFIRMS ", row 'falloc (raw, "
	    "qcow2) counts as allocated': confirmed)", already(f, IO_MODE_NATIVE), vs_io_uring(f));
}

static void allocated(const struct disk_facts *f, struct advice *out)
{
	say(out, IO_MODE_NATIVE, "%snative: %s image allocated: native faster than threads in "
	    "every run set (threads 0.38–0.86×), io_submit p99 16–45 µs%s (" CONFIRMS ", row "
	    "'fully allocated raw (full) → native': confirmed)", already(f, IO_MODE_NATIVE),
	    f->format ? f->format : "file", vs_io_uring(f));
}

static void by_image(const struct disk_facts *f, struct advice *out)
{
	if (f->image == IMAGE_BLOCKDEV) {
		say(out, IO_MODE_NATIVE, "%snative: block device, nothing to allocate inside "
		    "io_submit (nova's rule); not measured here (" CONFIRMS ", row "
		    ROW_BLOCK_CACHE ": not measured)", already(f, IO_MODE_NATIVE));
		return;
	}
	if (!measured_fs(f)) {
		say(out, IO_MODE_UNSET, "no advice: the image is on %s, and the modes were measured "
		    "on ext4 and xfs only (" DOC ", 'How it was measured'): how %s allocates inside "
		    "io_submit is not known here", f->fs && f->fs[0] ? f->fs : "an unknown filesystem",
		    f->fs && f->fs[0] ? f->fs : "it");
		return;
	}
	switch (f->image) {
	case IMAGE_GROWING:
		writes_extend(f, out);
		break;
	case IMAGE_SPARSE:
		holes(f, out);
		break;
	case IMAGE_ALLOCATED:
		if (f->unwritten)
			unwritten(f, out);
		else
			allocated(f, out);
		break;
	case IMAGE_BLOCKDEV:
	case IMAGE_UNKNOWN:	/* handled above */
		break;
	}
}

void advise_disk(const struct disk_facts *f, struct advice *out)
{
	*out = (struct advice){ .recommended = IO_MODE_UNSET };
	set_sparse(f, out);

	if (!no_recommendation(f, out) && !host_limits(f, out))
		by_image(f, out);
	add_note(f, out);
}
