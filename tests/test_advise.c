// SPDX-License-Identifier: GPL-2.0-only
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../policy/advise.h"

enum sparse_want { SPARSE_NULL, SPARSE_NO, SPARSE_YES };

struct row {
	const char *name;
	struct disk_facts f;
	enum io_mode want;
	const char *reason_has;
	enum sparse_want sparse;
};

/* Zeroed facts are a writable file disk (DISK_TYPE_FILE, DISK_DEVICE_DISK). */
#define DISK(cache_, format_, ...) { .cache = cache_, .format = format_, __VA_ARGS__ }

static const struct row rows[] = {
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
	{ "unknown image", DISK("none", "raw", .image = IMAGE_UNKNOWN,
				.image_detail = "source /v/a.img: No such file or directory"),
	  IO_MODE_UNSET, "no guess: source /v/a.img: No such file or directory", SPARSE_NULL },
	{ "unknown image without detail", DISK("none", "raw", .image = IMAGE_UNKNOWN),
	  IO_MODE_UNSET, "image unknown, so no guess", SPARSE_NULL },
	{ "unknown beats cache", DISK(NULL, "raw", .image = IMAGE_UNKNOWN,
				      .image_detail = "source /x: Permission denied"),
	  IO_MODE_UNSET, "Permission denied", SPARSE_NULL },
	{ "default cache", DISK(NULL, "raw", .image = IMAGE_ALLOCATED),
	  IO_MODE_THREADS, "hypervisor default is not O_DIRECT", SPARSE_NO },
	{ "writeback cache", DISK("writeback", "raw", .image = IMAGE_ALLOCATED),
	  IO_MODE_THREADS, "cache='writeback' is not O_DIRECT; native would need "
	  "cache='none' or 'directsync'", SPARSE_NO },
	{ "writethrough sparse", DISK("writethrough", "raw", .image = IMAGE_SPARSE),
	  IO_MODE_THREADS, "cache='writethrough'", SPARSE_YES },
	{ "unsafe cache blockdev", DISK("unsafe", "raw", .type = DISK_TYPE_BLOCK,
					.image = IMAGE_BLOCKDEV),
	  IO_MODE_THREADS, "require O_DIRECT for native", SPARSE_NO },
	{ "cache already threads", DISK(NULL, "raw", .io = IO_MODE_THREADS,
					.image = IMAGE_GROWING),
	  IO_MODE_THREADS, "already threads", SPARSE_YES },
	{ "block device", DISK("none", "raw", .type = DISK_TYPE_BLOCK, .image = IMAGE_BLOCKDEV),
	  IO_MODE_NATIVE, "block device", SPARSE_NO },
	{ "lun", DISK("directsync", "raw", .type = DISK_TYPE_BLOCK, .device = DISK_DEVICE_LUN,
		      .image = IMAGE_BLOCKDEV),
	  IO_MODE_NATIVE, "block device", SPARSE_NO },
	{ "file type on a device", DISK("none", "raw", .image = IMAGE_BLOCKDEV),
	  IO_MODE_NATIVE, "block device", SPARSE_NO },
	{ "resolved volume", DISK("none", "raw", .type = DISK_TYPE_BLOCK, .io = IO_MODE_NATIVE,
				  .image = IMAGE_BLOCKDEV),
	  IO_MODE_NATIVE, "already native", SPARSE_NO },
	{ "allocated raw", DISK("none", "raw", .image = IMAGE_ALLOCATED),
	  IO_MODE_NATIVE, "fully allocated: no block allocation inside io_submit", SPARSE_NO },
	{ "allocated qcow2 directsync", DISK("directsync", "qcow2", .io = IO_MODE_IO_URING,
					     .image = IMAGE_ALLOCATED),
	  IO_MODE_NATIVE, "native: qcow2 image fully allocated", SPARSE_NO },
	{ "allocated, no format", DISK("none", NULL, .image = IMAGE_ALLOCATED),
	  IO_MODE_NATIVE, "file image fully allocated", SPARSE_NO },
	{ "sparse raw", DISK("none", "raw", .io = IO_MODE_NATIVE, .image = IMAGE_SPARSE),
	  IO_MODE_THREADS, "sparse raw image: io_submit blocks while ext4/xfs allocate "
	  "blocks", SPARSE_YES },
	{ "sparse qcow2 metadata", DISK("none", "qcow2", .image = IMAGE_SPARSE),
	  IO_MODE_THREADS, "sparse qcow2 image", SPARSE_YES },
	{ "growing qcow2", DISK("none", "qcow2", .image = IMAGE_GROWING),
	  IO_MODE_THREADS, "extending writes are waited for synchronously inside io_submit",
	  SPARSE_YES },
	{ "growing already threads", DISK("none", "qcow2", .io = IO_MODE_THREADS,
					  .image = IMAGE_GROWING),
	  IO_MODE_THREADS, "already threads: qcow2 image still growing", SPARSE_YES },
};

static void check_row(const struct row *r)
{
	struct advice a;

	memset(&a, 0xa5, sizeof(a));	/* advise_disk must set every field */
	advise_disk(&r->f, &a);
	print_message("%-30s -> %-8s %s\n", r->name,
		      io_mode_name(a.recommended) ? io_mode_name(a.recommended) : "null",
		      a.reason);
	assert_int_equal(a.recommended, r->want);
	assert_non_null(memchr(a.reason, '\0', sizeof(a.reason)));
	assert_non_null(strstr(a.reason, r->reason_has));
	assert_int_equal(a.sparse_known, r->sparse != SPARSE_NULL);
	assert_int_equal(a.sparse, r->sparse == SPARSE_YES);
}

static void rule_table(void **state)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		check_row(&rows[i]);
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

/* A detail as long as image_facts.detail allows reaches the reason whole. */
static void long_detail_kept(void **state)
{
	char detail[160];
	memset(detail, 'x', sizeof(detail) - 1);
	detail[sizeof(detail) - 1] = '\0';
	struct disk_facts f = DISK("none", "raw", .image = IMAGE_UNKNOWN,
				   .image_detail = detail);
	struct advice a;

	advise_disk(&f, &a);
	assert_int_equal(a.recommended, IO_MODE_UNSET);
	assert_non_null(strstr(a.reason, detail));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rule_table),
		cmocka_unit_test(already_only_when_equal),
		cmocka_unit_test(long_detail_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
