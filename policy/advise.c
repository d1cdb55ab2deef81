// SPDX-License-Identifier: GPL-2.0-only
/* First matching rule wins. Media and disk types the AIO mode cannot help
 * come first, then anything not known for sure, then what the host can run
 * (O_DIRECT, io_uring), then how writes meet the image: whether they extend
 * the file, land in holes, in unwritten extents, or in allocated blocks.
 * Each of those cites the measurement behind it (docs/AIO-MODES.md: kernel
 * 6.18 on the host, 6.1 and 6.12 in the kernel matrix's guests; ext4 and
 * xfs), per kernel where they differ; where there is none, the reason says
 * so. */
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

/* The kernels the evidence covers: 6.18 on the machine itself (the matrix of
 * docs/AIO-MODES.md), 6.1 and 6.12 inside the kernel matrix's TCG guests
 * ('Per kernel'). Matched by series (major.minor): a Debian 6.1.0-57 and a
 * 6.1.150 are one series. */
enum kernel_seen {
	KERNEL_NOT_KNOWN,	/* no release: libvirt runs on another host */
	KERNEL_NOT_MEASURED,
	KERNEL_6_1,
	KERNEL_6_12,
	KERNEL_6_18,
};

struct kernel {
	enum kernel_seen seen;
	char series[24];	/* "6.1"; "" when not known */
};

static struct kernel kernel_of(const struct disk_facts *f)
{
	struct kernel k = {.seen = KERNEL_NOT_KNOWN};
	unsigned int major, minor;

	if (!f->kernel || sscanf(f->kernel, "%u.%u", &major, &minor) != 2)
		return k;
	snprintf(k.series, sizeof(k.series), "%u.%u", major, minor);
	k.seen = major != 6 ? KERNEL_NOT_MEASURED :
		 minor == 1 ? KERNEL_6_1 : minor == 12 ? KERNEL_6_12 :
		 minor == 18 ? KERNEL_6_18 : KERNEL_NOT_MEASURED;
	return k;
}

/* What this rule cannot say for a kernel nobody measured. */
static const char *kernel_unmeasured(const struct kernel *k, char *buf, size_t size)
{
	if (k->seen == KERNEL_NOT_KNOWN)
		snprintf(buf, size, "the kernel QEMU runs on is not known here (libvirt on another "
			 "host, or no release to read)");
	else
		snprintf(buf, size, "kernel %s was not measured (measured: 6.1 and 6.12 in the kernel "
			 "matrix, 6.18 on the host)", k->series);
	return buf;
}

static bool measured_fs(const struct disk_facts *f)
{
	return f->fs && (!strcmp(f->fs, "ext4") || !strcmp(f->fs, "xfs"));
}

#define PER_KERNEL DOC ", 'Per kernel'"

/* What the kernel matrix measured on 6.1 and 6.12 (TCG guests; ratios
 * within one boot only: a mode's stall time per run against the same mode's
 * on a fully allocated raw, the control, since TCG slows every submission):
 * for one image class on one kernel, how much native stalled, whether
 * io_uring removed that stall, and threads' throughput against the best
 * mode of each run set. */
struct kernel_row {
	enum kernel_seen kernel;
	const char *native;	/* native's stall time ÷ the control's */
	bool io_uring_clean;	/* io_uring removed >= 90 % of the stall time
				   over the control, every run set */
	const char *io_uring;	/* io_uring's stall, or its throughput when clean */
	const char *threads;	/* threads' throughput ÷ the best mode's */
	const char *row;	/* the rows of 'Per kernel' */
};

static const struct kernel_row holes_rows[] = {
	{KERNEL_6_1, "2.1× (ext4 4k) and 2.8× (xfs 4k)", false,
	 "io_uring stalled too (2.7×, ext4 4k)", "0.21–0.65×", "6.1 raw-sparse"},
	{KERNEL_6_12, "7.4× (ext4 4k)", true,
	 "io_uring did not (0.5–1.1×) at 0.79–1.00× of the best mode", "0.17–1.00×",
	 "6.12 raw-sparse"},
};

static const struct kernel_row unwritten_rows[] = {
	{KERNEL_6_1, "5.1× (ext4 4k), 1.9–2.0× (xfs)", true,
	 "io_uring did not (0.5–1.1×) at 0.69–1.00× of the best mode", "0.22–1.00×",
	 "6.1 raw-falloc"},
	{KERNEL_6_12, "3.7× (ext4 4k)", false,
	 "io_uring stalled more (14–32×, ext4)", "0.30–0.84×", "6.12 raw-falloc"},
};

static const struct kernel_row growing_rows[] = {
	{KERNEL_6_1, "5.8–8.0× on ext4 and xfs", false,
	 "io_uring stalled as much with 4k writes (6.8–7.2×; 64k: 1.3–1.8×)", "0.43–0.73×",
	 "6.1 qcow2-off"},
	{KERNEL_6_12, "4.8–22× on ext4 and xfs", false,
	 "io_uring stalled with 4k writes (11–44×; 64k: 3.4–4.6×)", "0.48–1.00×",
	 "6.12 qcow2-off"},
};

static const struct kernel_row *kernel_row(const struct kernel_row *rows, size_t n,
					   const struct kernel *k)
{
	for (size_t i = 0; i < n; i++)
		if (rows[i].kernel == k->seen)
			return &rows[i];
	return NULL;
}

#define KERNEL_ROW(rows, k) kernel_row(rows, sizeof(rows) / sizeof(rows[0]), k)

/* A stall the kernel matrix measured on this kernel: off the submitting
 * thread with io_uring where it removed the stall there and runs here, else
 * threads, whose submitting thread makes no I/O syscall to stall in. */
static void stalls_on_kernel(const struct disk_facts *f, const struct kernel *k,
			     const char *what, const struct kernel_row *r, struct advice *out)
{
	if (r->io_uring_clean && f->io_uring_usable)
		say(out, IO_MODE_IO_URING, "%sio_uring: %s: io_submit stalled on kernel %s (stall "
		    "time %s a fully allocated raw's, same TCG guest); %s (" PER_KERNEL ", %s); "
		    "io_uring usable here: %s", already(f, IO_MODE_IO_URING), what, k->series,
		    r->native, r->io_uring, r->row, io_uring_why(f));
	else {
		char iou[300];

		if (r->io_uring_clean)
			snprintf(iou, sizeof(iou), "io_uring did not, but is not usable here (%s)",
				 io_uring_why(f));
		else
			snprintf(iou, sizeof(iou), "%s", r->io_uring);
		say(out, IO_MODE_THREADS, "%sthreads: %s: io_submit stalled on kernel %s (stall "
		    "time %s a fully allocated raw's, same TCG guest); %s; threads leaves the "
		    "submitting thread no I/O syscall to stall in, at %s of the best mode's "
		    "throughput (" PER_KERNEL ", %s)", already(f, IO_MODE_THREADS), what,
		    k->series, r->native, iou, r->threads, r->row);
	}
}

/* Measured on other kernels, not this one; what those found differs. */
static void kernels_differ(const struct kernel *k, const char *what, const char *found,
			   struct advice *out)
{
	char why[160];

	say(out, IO_MODE_UNSET, "no advice: %s: %s, and the kernels measured differ here (%s) ("
	    PER_KERNEL ")", what, kernel_unmeasured(k, why, sizeof(why)), found);
}

static bool is_qcow2(const struct disk_facts *f)
{
	return f->format && !strcmp(f->format, "qcow2");
}

/* Growing, on a kernel nobody measured: native stalled on all three
 * measured, io_uring on 6.1 and 6.12 too, threads by construction never. */
static void writes_extend_unmeasured(const struct disk_facts *f, const struct kernel *k,
				     const char *why, struct advice *out)
{
	char unmeasured[160];

	if (f->io == IO_MODE_IO_URING)
		kernels_differ(k, why, "io_uring stalled with 4k writes on 6.1 and 6.12, not on "
			       "6.18", out);
	else
		say(out, IO_MODE_THREADS, "%sthreads: %s: io_submit stalled on them on every "
		    "kernel measured (6.1, 6.12, 6.18), and threads leaves the submitting thread no "
		    "I/O syscall to stall in; io_uring, not: it stalled with 4k writes on 6.1 and "
		    "6.12; %s (" PER_KERNEL ")", already(f, IO_MODE_THREADS), why,
		    kernel_unmeasured(k, unmeasured, sizeof(unmeasured)));
}

/* "writes extend the file": native stalled on every kernel measured. */
static void writes_extend(const struct disk_facts *f, const struct kernel *k, struct advice *out)
{
	static const char stall[] = "writes extend the file (%s image smaller than its virtual "
		"size): io_submit stalled on them (ext4 p99 956 µs and 66 stalls ≥ 1 ms per run, "
		"xfs 778 µs and 19; in a running domain 16–39 stalls/s)";
	static const char cite[] = " (" CONFIRMS ", row 'qcow2 that grows'; 'Headline', rows "
		"qcow2-off)";
	const char *fmt = f->format ? f->format : "file";
	const struct kernel_row *r = KERNEL_ROW(growing_rows, k);
	char why[320];

	snprintf(why, sizeof(why), "writes extend the file (%s image smaller than its virtual "
		 "size)", fmt);
	if (r) {
		stalls_on_kernel(f, k, why, r, out);
		return;
	}
	if (k->seen != KERNEL_6_18) {
		writes_extend_unmeasured(f, k, why, out);
		return;
	}
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

/* Holes and unwritten extents: measured per kernel, and the kernels differ.
 * true when the kernel is not 6.18 and the advice is given. */
static bool allocating_elsewhere(const struct disk_facts *f, const struct kernel *k,
				 const char *what, const struct kernel_row *r,
				 const char *found, struct advice *out)
{
	if (k->seen == KERNEL_6_18)
		return false;
	if (!r)
		kernels_differ(k, what, found, out);
	else if (is_qcow2(f))
		say(out, IO_MODE_UNSET, "no advice: %s of a qcow2 on kernel %s: the kernel matrix "
		    "measured raw images there (stall time %s a fully allocated raw's), not qcow2 ("
		    PER_KERNEL ")", what, k->series, r->native);
	else
		stalls_on_kernel(f, k, what, r, out);
	return true;
}

/* 6.18, xfs, a raw's holes or unwritten extents: native stalled with 4k
 * writes in every 2026-12-02 run set (most on the O_DIRECT loop), io_uring
 * did not and was the fastest mode there; with 64k writes native was
 * faster (io_uring 0.69–1.00×). The stall decides where io_uring runs. true
 * when it decided. */
static bool xfs_4k_stall(const struct disk_facts *f, const struct kernel *k, const char *what,
			 struct advice *out)
{
	if (k->seen != KERNEL_6_18 || !f->fs || strcmp(f->fs, "xfs") || is_qcow2(f) ||
	    !f->io_uring_usable)
		return false;
	say(out, IO_MODE_IO_URING, "%sio_uring: %s on xfs: 4k writes stalled io_submit on kernel "
	    "6.18 (O_DIRECT loop: stall time 54–172 ms per run against 18.5 ms on a fully "
	    "allocated raw; page-cached: 11–59 ms against 5.8), io_uring's 0–7 ms, and io_uring "
	    "was the fastest mode with 4k writes; with 64k writes native was faster (io_uring "
	    "0.69–1.00×) (" DOC ", 'Closer to a disk', xfs raw-sparse and raw-falloc); io_uring "
	    "usable here: %s", already(f, IO_MODE_IO_URING), what, io_uring_why(f));
	return true;
}

static void holes(const struct disk_facts *f, const struct kernel *k, struct advice *out)
{
	if (allocating_elsewhere(f, k, "writes into holes", KERNEL_ROW(holes_rows, k),
				 "6.18: no stall, native; 6.1: stalls, threads; 6.12: stalls, "
				 "io_uring", out) || xfs_4k_stall(f, k, "holes", out))
		return;
	if (is_qcow2(f))
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

static void unwritten(const struct disk_facts *f, const struct kernel *k, struct advice *out)
{
	if (allocating_elsewhere(f, k, "writes into unwritten (fallocated) extents",
				 KERNEL_ROW(unwritten_rows, k), "6.18: no stall, native; 6.1: "
				 "stalls, io_uring; 6.12: stalls, threads", out) ||
	    xfs_4k_stall(f, k, "unwritten (fallocated) extents", out))
		return;
	say(out, IO_MODE_NATIVE, "%snative: unwritten (fallocated) extents: no stall ≥ 1 ms on "
	    "ext4 on kernel 6.18; on xfs 4k p99 112–138 µs and 0–2 stalls ≥ 1 ms per run; threads "
	    "cost 0.37–0.83× of native's throughput%s (" CONFIRMS ", row 'falloc (raw, "
	    "qcow2) counts as allocated': confirmed)", already(f, IO_MODE_NATIVE), vs_io_uring(f));
}

/* Nothing to allocate or extend: native on every kernel measured (on 6.1 and
 * 6.12 the allocated raw is the control the others are measured against). */
static void allocated(const struct disk_facts *f, const struct kernel *k, struct advice *out)
{
	char why[160], note[200] = "";

	if (k->seen == KERNEL_NOT_KNOWN || k->seen == KERNEL_NOT_MEASURED)
		snprintf(note, sizeof(note), "; %s, and 6.1, 6.12 and 6.18 agree",
			 kernel_unmeasured(k, why, sizeof(why)));
	say(out, IO_MODE_NATIVE, "%snative: %s image allocated: native faster than threads in "
	    "every run set on 6.18 (threads 0.38–0.86×), io_submit p99 16–45 µs%s (" CONFIRMS
	    ", row 'fully allocated raw (full) → native': confirmed)%s",
	    already(f, IO_MODE_NATIVE), f->format ? f->format : "file", vs_io_uring(f), note);
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
	struct kernel k = kernel_of(f);

	switch (f->image) {
	case IMAGE_GROWING:
		writes_extend(f, &k, out);
		break;
	case IMAGE_SPARSE:
		holes(f, &k, out);
		break;
	case IMAGE_ALLOCATED:
		if (f->unwritten)
			unwritten(f, &k, out);
		else
			allocated(f, &k, out);
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
