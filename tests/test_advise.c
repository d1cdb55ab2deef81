// SPDX-License-Identifier: GPL-2.0-only
/* The advice as a table, one cmocka test per row, and the host facts it is
 * handed: io_uring support (user/host.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>

#include "../policy/advise.h"
#include "../user/host.h"
#include "row_tests.h"

enum sparse_want { SPARSE_NULL, SPARSE_NO, SPARSE_YES };

struct row {
	const char *name;
	struct disk_facts f;
	enum io_mode want;
	const char *reason_has;     /* and, when set, reason_has2 */
	enum sparse_want sparse;
	const char *reason_has2;
	const char *reason_lacks;
};

#define USABLE .io_uring_known = true, .io_uring_usable = true, \
	.io_uring_why = "QEMU 7.2.22 ≥ 5.0, libvirt 9.0.0 ≥ 6.3"
#define UNUSABLE .io_uring_known = true, .io_uring_usable = false, \
	.io_uring_why = "kernel.io_uring_disabled = 2: no process may create rings"
#define UNCHECKED .io_uring_known = false, .io_uring_usable = false, \
	.io_uring_why = "not checked: libvirt runs on another host", .kernel = NULL

/* The kernels measured (user/host.c hands over uname's release; NULL when
 * libvirt is remote) */
#define K6_18 .kernel = "6.18.44-fc-v1045"
#define K6_1 .kernel = "6.1.0-57-amd64"
#define K6_12 .kernel = "6.12.117+deb12-amd64"
#define K5_15 .kernel = "5.15.0-91-generic"

/* Zeroed facts are a writable file disk (DISK_TYPE_FILE, DISK_DEVICE_DISK)
 * on ext4 where io_uring runs, on kernel 6.18 (the host's matrix); rows
 * override. */
#pragma GCC diagnostic ignored "-Woverride-init"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define DISK(cache_, format_, ...) { .cache = cache_, .format = format_, .fs = "ext4", USABLE, \
				     K6_18, __VA_ARGS__ }

static const struct row rows[] = {
	/* media and types the AIO mode does not reach */
	{ "cdrom", DISK("none", "raw", .device = DISK_DEVICE_CDROM, .readonly = true,
			.image = IMAGE_ALLOCATED),
	  IO_MODE_UNSET, "read-only media needs no AIO mode", SPARSE_NO },
	{ "cdrom without media", DISK("none", "raw", .device = DISK_DEVICE_CDROM,
				      .readonly = true, .image = IMAGE_UNKNOWN,
				      .image_detail = "no source path"),
	  IO_MODE_UNSET, "read-only cdrom", SPARSE_NULL },
	{ "floppy", DISK("none", "raw", .device = DISK_DEVICE_FLOPPY, .image = IMAGE_SPARSE),
	  IO_MODE_UNSET, "read-only floppy", SPARSE_YES },
	{ "readonly disk beats sparse", DISK("none", "raw", .readonly = true,
					     .image = IMAGE_SPARSE),
	  IO_MODE_UNSET, "read-only disk", SPARSE_YES },
	{ "readonly beats network", DISK("none", "raw", .readonly = true,
					 .type = DISK_TYPE_NETWORK),
	  IO_MODE_UNSET, "read-only media", SPARSE_NULL },
	{ "network", DISK("none", NULL, .type = DISK_TYPE_NETWORK),
	  IO_MODE_UNSET, "AIO mode has no effect: QEMU's own network client", SPARSE_NULL },
	{ "network ignores cache", DISK("writeback", "raw", .type = DISK_TYPE_NETWORK),
	  IO_MODE_UNSET, "network client", SPARSE_NULL },
	{ "unresolved volume", DISK("none", "raw", .type = DISK_TYPE_VOLUME),
	  IO_MODE_UNSET, "could not be resolved", SPARSE_NULL },
	{ "dir", DISK("none", "fat", .type = DISK_TYPE_DIR),
	  IO_MODE_UNSET, "virtual FAT", SPARSE_NULL },
	{ "other type", DISK("none", "raw", .type = DISK_TYPE_OTHER),
	  IO_MODE_UNSET, "not file, block or network", SPARSE_NULL },

	/* what is not known is not guessed */
	{ "unknown image", DISK("none", "raw", .image = IMAGE_UNKNOWN,
				.image_detail = "source /v/a.img: No such file or directory"),
	  IO_MODE_UNSET, "no guess: source /v/a.img: No such file or directory", SPARSE_NULL },
	{ "unknown image without detail", DISK("none", "raw", .image = IMAGE_UNKNOWN),
	  IO_MODE_UNSET, "image unknown, so no guess", SPARSE_NULL },
	{ "unknown beats cache", DISK(NULL, "raw", .image = IMAGE_UNKNOWN,
				      .image_detail = "source /x: Permission denied"),
	  IO_MODE_UNSET, "Permission denied", SPARSE_NULL },
	{ "declared qcow2 QEMU would not open", DISK("none", "qcow2", .io = IO_MODE_NATIVE,
		.image = IMAGE_UNKNOWN, .image_detail = "source /i/a.qcow2: declared qcow2, but "
		"QEMU would not open its header (Image is not in qcow2 format)"),
	  IO_MODE_UNSET, "no guess: source /i/a.qcow2: declared qcow2, but QEMU would not open",
	  SPARSE_NULL },
	{ "unmeasured filesystem", DISK("none", "raw", .fs = "btrfs", .image = IMAGE_SPARSE),
	  IO_MODE_UNSET, "no advice: the image is on btrfs, and the modes were measured on ext4 "
	  "and xfs only", SPARSE_YES, "'How it was measured'" },
	{ "unknown filesystem", DISK("none", "qcow2", .fs = NULL, .image = IMAGE_GROWING),
	  IO_MODE_UNSET, "on an unknown filesystem", SPARSE_YES },
	{ "allocated on nfs", DISK("none", "raw", .fs = "nfs", .image = IMAGE_ALLOCATED),
	  IO_MODE_UNSET, "on nfs", SPARSE_NO },

	/* what the host runs */
	{ "default cache", DISK(NULL, "raw", .image = IMAGE_ALLOCATED),
	  IO_MODE_THREADS, "no cache mode set (the hypervisor default) is not O_DIRECT", SPARSE_NO,
	  "row \"type='block' → native; cache ≠ none → threads\": not measured" },
	{ "writeback cache", DISK("writeback", "raw", .image = IMAGE_ALLOCATED),
	  IO_MODE_THREADS, "cache='writeback' is not O_DIRECT, which native needs "
	  "(cache='none' or 'directsync'", SPARSE_NO },
	{ "writethrough growing", DISK("writethrough", "qcow2", .image = IMAGE_GROWING),
	  IO_MODE_THREADS, "cache='writethrough'", SPARSE_YES },
	{ "unsafe cache blockdev", DISK("unsafe", "raw", .type = DISK_TYPE_BLOCK,
					.image = IMAGE_BLOCKDEV),
	  IO_MODE_THREADS, "libvirt/QEMU require it", SPARSE_NO },
	{ "default cache, no io: already threads", DISK(NULL, "raw", .image = IMAGE_GROWING),
	  IO_MODE_THREADS, "already threads", SPARSE_YES },
	{ "writeback on io_uring stays io_uring", DISK("writeback", "qcow2", .io = IO_MODE_IO_URING,
						       .image = IMAGE_GROWING),
	  IO_MODE_IO_URING, "already io_uring, which needs no O_DIRECT", SPARSE_YES, NULL,
	  "io_submit" },
	{ "io_uring disk where io_uring is not usable", DISK("none", "qcow2", UNUSABLE,
		.io = IO_MODE_IO_URING, .image = IMAGE_ALLOCATED),
	  IO_MODE_THREADS, "threads: the disk is on io_uring, which is not usable here "
	  "(kernel.io_uring_disabled = 2", SPARSE_NO, NULL, "io_submit" },

	/* block devices: not measured, nothing to allocate */
	{ "block device", DISK("none", "raw", .type = DISK_TYPE_BLOCK, .image = IMAGE_BLOCKDEV),
	  IO_MODE_NATIVE, "block device, nothing to allocate", SPARSE_NO, "not measured" },
	{ "lun", DISK("directsync", "raw", .type = DISK_TYPE_BLOCK, .device = DISK_DEVICE_LUN,
		      .image = IMAGE_BLOCKDEV),
	  IO_MODE_NATIVE, "block device", SPARSE_NO },
	{ "file type on a device", DISK("none", "raw", .image = IMAGE_BLOCKDEV, .fs = NULL),
	  IO_MODE_NATIVE, "block device", SPARSE_NO },
	{ "resolved volume", DISK("none", "raw", .type = DISK_TYPE_BLOCK, .io = IO_MODE_NATIVE,
				  .image = IMAGE_BLOCKDEV),
	  IO_MODE_NATIVE, "already native", SPARSE_NO },

	/* writes extend the file: the stall is measured; io_uring fastest */
	{ "growing qcow2 on native: io_uring", DISK("none", "qcow2", .io = IO_MODE_NATIVE,
						    .image = IMAGE_GROWING),
	  IO_MODE_IO_URING, "io_uring: writes extend the file (qcow2 image smaller than its "
	  "virtual size): io_submit stalled on them", SPARSE_YES,
	  "row 'qcow2 that grows'; 'Headline', rows qcow2-off" },
	{ "growing qcow2 on threads: io_uring", DISK("none", "qcow2", .io = IO_MODE_THREADS,
						     .image = IMAGE_GROWING),
	  IO_MODE_IO_URING, "1.75× native on ext4, 1.44× on xfs", SPARSE_YES },
	{ "growing qcow2 on io_uring: stays", DISK("none", "qcow2", .io = IO_MODE_IO_URING,
						   .image = IMAGE_GROWING),
	  IO_MODE_IO_URING, "already io_uring: writes extend the file", SPARSE_YES,
	  "io_uring usable here: QEMU 7.2.22" },
	{ "growing qcow2, io_uring not usable: threads", DISK("none", "qcow2", UNUSABLE,
		.io = IO_MODE_NATIVE, .image = IMAGE_GROWING),
	  IO_MODE_THREADS, "threads: writes extend the file", SPARSE_YES,
	  "io_uring, faster there, is not usable here: kernel.io_uring_disabled = 2" },
	{ "growing on xfs", DISK("none", "qcow2", .fs = "xfs", .image = IMAGE_GROWING),
	  IO_MODE_IO_URING, "io_uring", SPARSE_YES },
	{ "growing, io_uring not checked (6.18 known): threads", DISK("none", "qcow2", UNCHECKED,
		K6_18, .io = IO_MODE_NATIVE, .image = IMAGE_GROWING),
	  IO_MODE_THREADS, "threads: writes extend the file", SPARSE_YES,
	  "could not be checked here: not checked: libvirt runs on another host" },
	{ "growing io_uring disk, not checked (6.18 known): stays", DISK("none", "qcow2",
		UNCHECKED, K6_18, .io = IO_MODE_IO_URING, .image = IMAGE_GROWING),
	  IO_MODE_IO_URING, "already io_uring: writes extend the file", SPARSE_YES,
	  "io_uring not checked here" },
	{ "growing, remote (kernel not known): threads", DISK("none", "qcow2", UNCHECKED,
		.io = IO_MODE_NATIVE, .image = IMAGE_GROWING),
	  IO_MODE_THREADS, "on every kernel measured (6.1, 6.12, 6.18)", SPARSE_YES,
	  "the kernel QEMU runs on is not known here (libvirt on another host" },
	{ "growing io_uring disk, remote (kernel not known): no advice", DISK("none", "qcow2",
		UNCHECKED, .io = IO_MODE_IO_URING, .image = IMAGE_GROWING),
	  IO_MODE_UNSET, "no advice: writes extend the file", SPARSE_YES,
	  "io_uring stalled with 4k writes on 6.1 and 6.12, not on 6.18" },
	{ "io_uring disk, not checked (remote): not moved for it", DISK("none", "qcow2", UNCHECKED,
		.io = IO_MODE_IO_URING, .image = IMAGE_ALLOCATED),
	  IO_MODE_NATIVE, "native: qcow2 image allocated", SPARSE_NO, NULL, "not usable here (" },

	/* holes: no stall measured on 6.18, threads costly: native */
	{ "sparse raw on native stays native", DISK("none", "raw", .io = IO_MODE_NATIVE,
						    .image = IMAGE_SPARSE),
	  IO_MODE_NATIVE, "already native: holes: writes into holes below the end of the file "
	  "did not stall io_submit on kernel 6.18", SPARSE_YES,
	  "row 'sparse raw file → threads': not confirmed" },
	{ "sparse raw on threads: native", DISK("none", "raw", .io = IO_MODE_THREADS,
						.image = IMAGE_SPARSE),
	  IO_MODE_NATIVE, "threads cost 0.23–0.63× of native's throughput", SPARSE_YES, NULL,
	  "already" },
	{ "sparse raw on io_uring: native, said why", DISK("none", "raw", .io = IO_MODE_IO_URING,
							   .image = IMAGE_SPARSE),
	  IO_MODE_NATIVE, "io_uring reached 0.56–1.13× of native's throughput", SPARSE_YES },
	{ "sparse qcow2 (metadata)", DISK("none", "qcow2", .image = IMAGE_SPARSE),
	  IO_MODE_NATIVE, "the qcow2 file has its full length (preallocation=metadata)", SPARSE_YES,
	  "row 'qcow2 metadata counts as growing': not confirmed" },

	/* unwritten extents, allocated: native confirmed */
	{ "fallocated raw", DISK("none", "raw", .image = IMAGE_ALLOCATED, .unwritten = true),
	  IO_MODE_NATIVE, "native: unwritten (fallocated) extents", SPARSE_NO,
	  "row 'falloc (raw, qcow2) counts as allocated': confirmed" },
	{ "allocated raw", DISK("none", "raw", .image = IMAGE_ALLOCATED),
	  IO_MODE_NATIVE, "native: raw image allocated", SPARSE_NO,
	  "row 'fully allocated raw (full) → native': confirmed" },
	{ "allocated qcow2 directsync on io_uring", DISK("directsync", "qcow2", .io = IO_MODE_IO_URING,
							 .image = IMAGE_ALLOCATED),
	  IO_MODE_NATIVE, "native: qcow2 image allocated", SPARSE_NO, NULL, "io_submit blocks" },
	{ "allocated, no format", DISK("none", NULL, .image = IMAGE_ALLOCATED),
	  IO_MODE_NATIVE, "file image allocated", SPARSE_NO },

	/* 6.18, xfs: a raw's holes and unwritten extents stalled with 4k writes */
	{ "6.18 xfs sparse raw: io_uring", DISK("none", "raw", .fs = "xfs", .io = IO_MODE_NATIVE,
						 .image = IMAGE_SPARSE),
	  IO_MODE_IO_URING, "io_uring: holes on xfs: 4k writes stalled io_submit on kernel 6.18",
	  SPARSE_YES, "'Closer to a disk', xfs raw-sparse and raw-falloc" },
	{ "6.18 xfs fallocated raw: io_uring", DISK("none", "raw", .fs = "xfs",
		.image = IMAGE_ALLOCATED, .unwritten = true),
	  IO_MODE_IO_URING, "io_uring: unwritten (fallocated) extents on xfs", SPARSE_NO },
	{ "6.18 xfs fallocated raw, io_uring not usable: native", DISK("none", "raw", UNUSABLE,
		.fs = "xfs", .image = IMAGE_ALLOCATED, .unwritten = true),
	  IO_MODE_NATIVE, "native: unwritten (fallocated) extents", SPARSE_NO },
	{ "6.18 xfs sparse qcow2 (metadata): native", DISK("none", "qcow2", .fs = "xfs",
							    .image = IMAGE_SPARSE),
	  IO_MODE_NATIVE, "the qcow2 file has its full length", SPARSE_YES },
	{ "6.18 xfs allocated raw: native", DISK("none", "raw", .fs = "xfs",
						  .image = IMAGE_ALLOCATED),
	  IO_MODE_NATIVE, "native: raw image allocated", SPARSE_NO },

	/* per kernel: 6.1 and 6.12 from the kernel matrix ('Per kernel') */
	{ "6.1 sparse raw: threads (io_uring stalled too)", DISK("none", "raw", K6_1,
		.io = IO_MODE_NATIVE, .image = IMAGE_SPARSE),
	  IO_MODE_THREADS, "threads: writes into holes: io_submit stalled on kernel 6.1",
	  SPARSE_YES, "'Per kernel', 6.1 raw-sparse)", "6.18" },
	{ "6.12 sparse raw: io_uring", DISK("none", "raw", K6_12, .io = IO_MODE_NATIVE,
					    .image = IMAGE_SPARSE),
	  IO_MODE_IO_URING, "io_uring: writes into holes: io_submit stalled on kernel 6.12",
	  SPARSE_YES, "'Per kernel', 6.12 raw-sparse); io_uring usable here: QEMU 7.2.22" },
	{ "6.12 sparse raw, io_uring not usable: threads", DISK("none", "raw", K6_12, UNUSABLE,
		.image = IMAGE_SPARSE),
	  IO_MODE_THREADS, "io_uring did not, but is not usable here (kernel.io_uring_disabled = 2",
	  SPARSE_YES },
	{ "6.1 fallocated raw: io_uring", DISK("none", "raw", K6_1, .image = IMAGE_ALLOCATED,
					       .unwritten = true),
	  IO_MODE_IO_URING, "io_uring: writes into unwritten (fallocated) extents: io_submit "
	  "stalled on kernel 6.1", SPARSE_NO, "'Per kernel', 6.1 raw-falloc)" },
	{ "6.12 fallocated raw: threads (io_uring stalled more)", DISK("none", "raw", K6_12,
		.io = IO_MODE_IO_URING, .image = IMAGE_ALLOCATED, .unwritten = true),
	  IO_MODE_THREADS, "io_uring stalled more", SPARSE_NO, "'Per kernel', 6.12 raw-falloc)",
	  "io_submit blocks" },
	{ "6.1 growing qcow2: threads (io_uring stalled with 4k)", DISK("none", "qcow2", K6_1,
		.io = IO_MODE_NATIVE, .image = IMAGE_GROWING),
	  IO_MODE_THREADS, "threads: writes extend the file (qcow2 image smaller than its "
	  "virtual size): io_submit stalled on kernel 6.1", SPARSE_YES,
	  "io_uring stalled as much with 4k writes" },
	{ "6.12 growing qcow2 on io_uring: threads, for io_uring's own stalls",
	  DISK("none", "qcow2", K6_12, .io = IO_MODE_IO_URING, .image = IMAGE_GROWING),
	  IO_MODE_THREADS, "io_uring stalled with 4k writes", SPARSE_YES, "'Per kernel', 6.12 "
	  "qcow2-off)" },
	{ "6.1 sparse qcow2 (metadata): not measured there", DISK("none", "qcow2", K6_1,
		.image = IMAGE_SPARSE),
	  IO_MODE_UNSET, "no advice: writes into holes of a qcow2 on kernel 6.1: the kernel "
	  "matrix measured raw images there", SPARSE_YES },
	{ "6.12 fallocated qcow2: not measured there", DISK("none", "qcow2", K6_12,
		.image = IMAGE_ALLOCATED, .unwritten = true),
	  IO_MODE_UNSET, "not qcow2", SPARSE_NO },
	{ "6.1 allocated raw: native", DISK("none", "raw", K6_1, .image = IMAGE_ALLOCATED),
	  IO_MODE_NATIVE, "native: raw image allocated", SPARSE_NO, NULL, "not measured" },
	{ "6.1 block device: native", DISK("none", "raw", K6_1, .type = DISK_TYPE_BLOCK,
					   .image = IMAGE_BLOCKDEV),
	  IO_MODE_NATIVE, "block device", SPARSE_NO },
	{ "6.1 on btrfs: still no advice", DISK("none", "raw", K6_1, .fs = "btrfs",
						.image = IMAGE_SPARSE),
	  IO_MODE_UNSET, "on btrfs", SPARSE_YES },

	/* kernels nobody measured: said, not guessed */
	{ "5.15 sparse raw: no advice, kernels differ", DISK("none", "raw", K5_15,
		.image = IMAGE_SPARSE),
	  IO_MODE_UNSET, "no advice: writes into holes: kernel 5.15 was not measured", SPARSE_YES,
	  "6.18: no stall, native; 6.1: stalls, threads; 6.12: stalls, io_uring" },
	{ "5.15 fallocated raw: no advice", DISK("none", "raw", K5_15, .image = IMAGE_ALLOCATED,
						  .unwritten = true),
	  IO_MODE_UNSET, "kernel 5.15 was not measured", SPARSE_NO },
	{ "6.6 growing qcow2: threads, said not measured", DISK("none", "qcow2",
		.kernel = "6.6.30", .io = IO_MODE_NATIVE, .image = IMAGE_GROWING),
	  IO_MODE_THREADS, "kernel 6.6 was not measured", SPARSE_YES,
	  "on every kernel measured (6.1, 6.12, 6.18)" },
	{ "6.6 allocated raw: native, said not measured", DISK("none", "raw", .kernel = "6.6.30",
		.image = IMAGE_ALLOCATED),
	  IO_MODE_NATIVE, "kernel 6.6 was not measured", SPARSE_NO, "6.1, 6.12 and 6.18 agree" },
	{ "6.10 is not 6.1", DISK("none", "raw", .kernel = "6.10.3", .image = IMAGE_SPARSE),
	  IO_MODE_UNSET, "kernel 6.10 was not measured", SPARSE_YES },
	{ "unparsable release: not known", DISK("none", "raw", .kernel = "linux", .image = IMAGE_SPARSE),
	  IO_MODE_UNSET, "the kernel QEMU runs on is not known here", SPARSE_YES },
	{ "empty release (remote): not known", DISK("none", "raw", .kernel = "",
		.image = IMAGE_ALLOCATED, .unwritten = true),
	  IO_MODE_UNSET, "the kernel QEMU runs on is not known here", SPARSE_NO },

	/* the content disagreeing with the declared format: said, not adopted */
	{ "disguised raw: allocated, with a note", DISK("none", "raw", .image = IMAGE_ALLOCATED,
		.image_note = "declared raw, and its content starts with a qcow2 header (a guest "
		"can write one): judged as raw, as QEMU reads it"),
	  IO_MODE_NATIVE, "raw image allocated", SPARSE_NO,
	  ". Note: declared raw, and its content starts with a qcow2 header", "growing" },
};

static void check_row(void **state)
{
	const struct row *r = *state;
	struct advice a;

	memset(&a, 0xa5, sizeof(a));	/* advise_disk must set every field */
	advise_disk(&r->f, &a);
	print_message("%-30s -> %-8s %s\n", r->name,
		      io_mode_name(a.recommended) ? io_mode_name(a.recommended) : "null",
		      a.reason);
	assert_int_equal(a.recommended, r->want);
	assert_non_null(memchr(a.reason, '\0', sizeof(a.reason)));
	assert_non_null(strstr(a.reason, r->reason_has));
	if (r->reason_has2)
		assert_non_null(strstr(a.reason, r->reason_has2));
	if (r->reason_lacks)
		assert_null(strstr(a.reason, r->reason_lacks));
	assert_int_equal(a.sparse_known, r->sparse != SPARSE_NULL);
	assert_int_equal(a.sparse, r->sparse == SPARSE_YES);
}

/* An io_uring disk is never sent to threads for io_submit's sake: on every
 * image and cache mode, where io_uring runs. */
static void io_uring_never_told_threads_for_io_submit(void **state)
{
	static const enum image_state images[] = {IMAGE_ALLOCATED, IMAGE_SPARSE, IMAGE_GROWING,
						  IMAGE_BLOCKDEV};
	static const char *const caches[] = {"none", "directsync", "writeback", NULL};

	for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++)
		for (size_t c = 0; c < sizeof(caches) / sizeof(caches[0]); c++)
			for (int known = 0; known < 2; known++) {
				struct disk_facts f = DISK(caches[c], "qcow2", .io = IO_MODE_IO_URING,
							   .image = images[i], .io_uring_known = known,
							   .io_uring_usable = known);
				struct advice a;

				advise_disk(&f, &a);
				assert_int_not_equal(a.recommended, IO_MODE_THREADS);
				assert_null(strstr(a.reason, "io_submit blocks"));
			}
}

/* Per kernel too: an io_uring disk is sent to threads only for io_uring's
 * own stalls, measured on that kernel, never for io_submit's. */
static void io_uring_to_threads_only_for_its_own_stalls(void **state)
{
	static const char *const kernels[] = {"6.1.0-57-amd64", "6.12.117+deb12-amd64",
					       "6.18.44", "5.15.0", NULL};
	static const enum image_state images[] = {IMAGE_ALLOCATED, IMAGE_SPARSE, IMAGE_GROWING};

	for (size_t k = 0; k < sizeof(kernels) / sizeof(kernels[0]); k++)
		for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++)
			for (int unwritten = 0; unwritten < 2; unwritten++) {
				struct disk_facts f = DISK("none", "raw", .io = IO_MODE_IO_URING,
							   .image = images[i], .kernel = kernels[k],
							   .unwritten = unwritten);
				struct advice a;

				advise_disk(&f, &a);
				if (a.recommended == IO_MODE_THREADS)
					assert_non_null(strstr(a.reason, "io_uring stalled"));
			}
}

/* Not "already" when the current mode differs from the recommendation. */
static void already_only_when_equal(void **state)
{
	struct disk_facts f = DISK("none", "raw", .io = IO_MODE_THREADS,
				   .image = IMAGE_ALLOCATED);
	struct advice a;

	advise_disk(&f, &a);
	assert_int_equal(a.recommended, IO_MODE_NATIVE);
	assert_null(strstr(a.reason, "already"));
}

/* A detail as long as image_facts.detail allows reaches the reason whole,
 * and so does a note after the longest reason. */
static void long_detail_kept(void **state)
{
	char detail[224], note[160];
	memset(detail, 'x', sizeof(detail) - 1);
	detail[sizeof(detail) - 1] = '\0';
	memset(note, 'n', sizeof(note) - 1);
	note[sizeof(note) - 1] = '\0';
	struct disk_facts f = DISK("none", "raw", .image = IMAGE_UNKNOWN,
				   .image_detail = detail);
	struct advice a;

	advise_disk(&f, &a);
	assert_int_equal(a.recommended, IO_MODE_UNSET);
	assert_non_null(strstr(a.reason, detail));

	struct disk_facts g = DISK("none", "qcow2", UNUSABLE, .image = IMAGE_GROWING,
				   .image_note = note);
	advise_disk(&g, &a);
	assert_non_null(strstr(a.reason, note));
}

/* ---- io_uring support: one cmocka test per row ---- */

struct iou_row {
	const char *name;
	struct io_uring_host h;
	bool usable;
	const char *why;
};

#define QEMU72 .hypervisor = "QEMU", .qemu_version = 7002022, .libvirt_version = 9000000, \
	.setup_errno = EINVAL

static const struct iou_row iou_rows[] = {
	{"this machine: sysctl 0", {QEMU72, .sysctl = 0}, true,
	 "QEMU 7.2.22 ≥ 5.0, libvirt 9.0.0 ≥ 6.3, kernel.io_uring_disabled = 0"},
	{"kernel before the sysctl", {QEMU72, .sysctl = -1}, true, "kernel.io_uring_disabled absent"},
	{"sysctl 1: only a group may", {QEMU72, .sysctl = 1}, false,
	 "kernel.io_uring_disabled = 1: only members of kernel.io_uring_group"},
	{"sysctl 2: disabled", {QEMU72, .sysctl = 2}, false,
	 "kernel.io_uring_disabled = 2: no process may create rings"},
	{"kernel without io_uring", {QEMU72, .sysctl = -1, .setup_errno = ENOSYS}, false,
	 "this kernel has no io_uring"},
	{"QEMU 4.2", {QEMU72, .qemu_version = 4002000}, false, "QEMU 4.2.0 is older than 5.0"},
	{"QEMU 5.0 exactly", {QEMU72, .qemu_version = 5000000}, true, "QEMU 5.0.0 ≥ 5.0"},
	{"libvirt 6.2", {QEMU72, .libvirt_version = 6002000}, false, "libvirt 6.2.0 is older than 6.3"},
	{"libvirt 6.3 exactly", {QEMU72, .libvirt_version = 6003000}, true, "libvirt 6.3.0 ≥ 6.3"},
	{"version unknown", {QEMU72, .qemu_version = 0}, false, "QEMU (version unknown) is older"},
	{"test driver", {QEMU72, .hypervisor = "TEST"}, false, "the hypervisor is TEST, not QEMU"},
	{"remote libvirt", {QEMU72, .remote = true}, false, "not checked: libvirt runs on another host"},
};

static void iou_row(void **state)
{
	const struct iou_row *r = *state;
	struct io_uring_support s;

	io_uring_judge(&r->h, &s);
	print_message("%s -> %d %s\n", r->name, s.usable, s.why);
	assert_int_equal(s.usable, r->usable);
	assert_int_equal(s.known, !r->h.remote);
	assert_non_null(strstr(s.why, r->why));
}

struct uri_row {
	const char *name, *uri;
	bool remote;
};

static const struct uri_row uri_rows[] = {
	{"system", "qemu:///system", false},
	{"session", "qemu:///session", false},
	{"test node", "test:///default", false},
	{"unix socket", "qemu+unix:///system?socket=/run/x.sock", false},
	{"ssh", "qemu+ssh://root@hv1/system", true},
	{"tls with port", "qemu+tls://hv1.example.org:16514/system", true},
	{"localhost", "qemu+tcp://localhost/system", false},
	{"loopback v4", "qemu+tcp://127.0.0.1:16509/system", false},
	{"loopback v6", "qemu+tcp://[::1]:16509/system", false},
	{"other v6", "qemu+tcp://[fe80::1]/system", true},
	{"no URI", NULL, false},
};

static void uri_row(void **state)
{
	const struct uri_row *r = *state;

	assert_int_equal(uri_is_remote(r->uri), r->remote);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(io_uring_never_told_threads_for_io_submit),
		cmocka_unit_test(already_only_when_equal),
		cmocka_unit_test(io_uring_to_threads_only_for_its_own_stalls),
		cmocka_unit_test(long_detail_kept),
	};
	int failed = RUN_ROW_TESTS("advise rules", check_row, rows);

	failed += cmocka_run_group_tests(tests, NULL, NULL);
	failed += RUN_ROW_TESTS("io_uring support", iou_row, iou_rows);
	failed += RUN_ROW_TESTS("remote URIs", uri_row, uri_rows);
	return failed;
}
