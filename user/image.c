// SPDX-License-Identifier: GPL-2.0-only
/* Image facts, read-only: the source is opened O_RDONLY and never written. */
#include "image.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

/* docs/interop/qcow2.txt; the limits are QEMU's (block/qcow2.c,
 * qcow2_do_open(), and block/qcow2.h), so that what QEMU refuses to open
 * is never taken for an image that grows. */
#define QCOW2_MAGIC			0x514649fbU	/* "QFI\xfb" */
#define QCOW2_V2_HEADER_LEN		72
#define QCOW2_V3_HEADER_LEN		104
#define QCOW2_MIN_CLUSTER_BITS		9
#define QCOW2_MAX_CLUSTER_BITS		21
#define QCOW2_MAX_BACKING_NAME		1023
#define QCOW2_INCOMPAT_CORRUPT		(1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE	(1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION	(1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2		(1ULL << 4)
#define QCOW2_INCOMPAT_KNOWN		0x1fULL		/* dirty … extended L2 */
#define QCOW2_EXTL2_SUBCLUSTERS		32
#define QCOW2_MAX_REFCOUNT_ORDER	6
#define QCOW2_CRYPT_AES			1
#define QCOW2_CRYPT_LUKS		2
#define QCOW2_COMPRESSION_ZSTD		1
#define QCOW2_MAX_REFTABLE_BYTES	(8ULL << 20)
#define QCOW2_MAX_L1_BYTES		(32ULL << 20)
#define QCOW2_SNAPSHOT_HEADER_LEN	40
#define QCOW2_MAX_SNAPSHOTS		65536

#define HEADER_READ_LEN		512
#define FIEMAP_BATCH		256

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* The header as QEMU reads it: version 2 has no v3 fields and QEMU takes
 * them as 0, refcount_order 4, header_length 72. */
struct qcow2_header {
	uint32_t version, backing_len, cluster_bits, crypt, l1_size, reftable_clusters;
	uint32_t nb_snapshots, refcount_order, header_len;
	uint64_t backing_off, size, l1_off, reftable_off, snapshots_off, incompat;
	uint8_t compression;
};

static void read_header(const uint8_t *b, size_t len, struct qcow2_header *h)
{
	*h = (struct qcow2_header){
		.version = be32(b + 4), .backing_off = be64(b + 8), .backing_len = be32(b + 16),
		.cluster_bits = be32(b + 20), .size = be64(b + 24), .crypt = be32(b + 32),
		.l1_size = be32(b + 36), .l1_off = be64(b + 40), .reftable_off = be64(b + 48),
		.reftable_clusters = be32(b + 56), .nb_snapshots = be32(b + 60),
		.snapshots_off = be64(b + 64), .refcount_order = 4,
		.header_len = QCOW2_V2_HEADER_LEN,
	};
	if (h->version != 3 || len < QCOW2_V3_HEADER_LEN)
		return;
	h->incompat = be64(b + 72);
	h->refcount_order = be32(b + 96);
	h->header_len = be32(b + 100);
	if (h->header_len > QCOW2_V3_HEADER_LEN && len > QCOW2_V3_HEADER_LEN)
		h->compression = b[104];
}

static const char *check_layout(const struct qcow2_header *h)
{
	uint64_t cluster = 1ULL << h->cluster_bits;

	if (h->header_len < QCOW2_V3_HEADER_LEN && h->version == 3)
		return "qcow2 header too short";
	if (h->header_len > cluster)
		return "qcow2 header exceeds cluster size";
	if (h->backing_off > cluster)
		return "Invalid backing file offset";
	if (h->backing_off && (h->backing_len > QCOW2_MAX_BACKING_NAME ||
			       h->backing_len > cluster - h->backing_off))
		return "Backing file name too long";
	return NULL;
}

static const char *check_features(const struct qcow2_header *h)
{
	bool flagged = h->incompat & QCOW2_INCOMPAT_COMPRESSION;

	if (h->compression > QCOW2_COMPRESSION_ZSTD)
		return "unknown compression type";
	if (flagged != (h->compression != 0))
		return flagged ? "Compression type incompatible feature bit must not be set"
			       : "Compression type incompatible feature bit must be set";
	if (h->incompat & ~QCOW2_INCOMPAT_KNOWN)
		return "unknown incompatible feature bits";
	if (h->incompat & QCOW2_INCOMPAT_CORRUPT)
		return "Image is corrupt; cannot be opened read/write";
	if ((h->incompat & QCOW2_INCOMPAT_EXTL2) &&
	    (1ULL << h->cluster_bits) / QCOW2_EXTL2_SUBCLUSTERS < 1ULL << QCOW2_MIN_CLUSTER_BITS)
		return "Unsupported subcluster size";
	if (h->refcount_order > QCOW2_MAX_REFCOUNT_ORDER)
		return "Reference count entry width too large; may not exceed 64 bits";
	if (h->crypt == QCOW2_CRYPT_AES)
		return "Use of AES-CBC encrypted qcow2 images is no longer supported in system emulators";
	if (h->crypt > QCOW2_CRYPT_LUKS)
		return "Unsupported encryption method";
	return NULL;
}

/* QEMU's qcow2_validate_table(): at most max_bytes, cluster-aligned, and
 * offset + length within INT64_MAX. */
static bool table_fits(uint64_t offset, uint64_t entries, uint64_t entry_len,
		       uint64_t max_bytes, uint32_t cluster_bits)
{
	return entries <= max_bytes / entry_len &&
	       offset <= (uint64_t)INT64_MAX - entries * entry_len &&
	       !(offset & ((1ULL << cluster_bits) - 1));
}

/* L1 entries the virtual size needs: one per L2 table's worth of clusters. */
static uint64_t l1_entries_needed(const struct qcow2_header *h)
{
	uint32_t l2_bits = h->cluster_bits - ((h->incompat & QCOW2_INCOMPAT_EXTL2) ? 4 : 3);
	uint32_t shift = h->cluster_bits + l2_bits;

	return (h->size >> shift) + !!(h->size & ((1ULL << shift) - 1));
}

static const char *check_tables(const struct qcow2_header *h)
{
	uint64_t cluster = 1ULL << h->cluster_bits;

	if (h->reftable_clusters == 0)
		return "Image does not contain a reference count table";
	if (!table_fits(h->reftable_off, h->reftable_clusters, cluster, QCOW2_MAX_REFTABLE_BYTES,
			h->cluster_bits))
		return "Reference count table too large or misplaced";
	if (!table_fits(h->snapshots_off, h->nb_snapshots, QCOW2_SNAPSHOT_HEADER_LEN,
			QCOW2_SNAPSHOT_HEADER_LEN * QCOW2_MAX_SNAPSHOTS, h->cluster_bits))
		return "Snapshot table too large or misplaced";
	if (!table_fits(h->l1_off, h->l1_size, 8, QCOW2_MAX_L1_BYTES, h->cluster_bits))
		return "Active L1 table too large or misplaced";
	if (h->size > INT64_MAX || l1_entries_needed(h) > INT32_MAX)
		return "Image is too big";
	if (h->l1_size < l1_entries_needed(h))
		return "L1 table is too small";
	return NULL;
}

int qcow2_parse_header(const uint8_t *buf, size_t len, struct qcow2_info *out,
		       const char **why)
{
	struct qcow2_header h;
	const char *refused = NULL;

	if (!buf || len < 4 || be32(buf) != QCOW2_MAGIC)
		refused = "Image is not in qcow2 format";
	else if (len < QCOW2_V2_HEADER_LEN)
		refused = "qcow2 header cut short";
	if (!refused) {
		read_header(buf, len, &h);
		if (h.version != 2 && h.version != 3)
			refused = "Unsupported qcow2 version";
		else if (h.version == 3 && len < QCOW2_V3_HEADER_LEN)
			refused = "qcow2 header cut short";
		else if (h.cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
			 h.cluster_bits > QCOW2_MAX_CLUSTER_BITS)
			refused = "Unsupported cluster size";
	}
	if (!refused)
		refused = check_layout(&h);
	if (!refused)
		refused = check_features(&h);
	if (!refused)
		refused = check_tables(&h);
	if (why)
		*why = refused;
	if (refused)
		return -EINVAL;
	*out = (struct qcow2_info){
		.version = h.version,
		.cluster_bits = h.cluster_bits,
		.virtual_size = h.size,
		.has_backing_file = h.backing_off != 0,
		.has_data_file = h.incompat & QCOW2_INCOMPAT_DATA_FILE,
	};
	return 0;
}

static void fail(struct image_facts *out, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct image_facts *out, int err, const char *fmt, ...)
{
	va_list ap;

	out->state = IMAGE_UNKNOWN;
	out->error = err;
	va_start(ap, fmt);
	vsnprintf(out->detail, sizeof(out->detail), fmt, ap);
	utf8_trim_partial(out->detail);
	va_end(ap);
}

/* Holes counted at the granularity guest writes allocate in: any byte of a
 * raw file, whole clusters of a qcow2 file. QEMU allocates a qcow2 cluster
 * at once; a hole inside a written cluster is the unused tail of a metadata
 * table (L1, L2, refcounts) that no guest write lands in. */
struct holes {
	uint64_t granule;
	uint64_t exact;		/* every byte in no extent */
	uint64_t whole;		/* bytes of granules wholly in no extent */
};

static void add_hole(struct holes *h, uint64_t start, uint64_t end)
{
	uint64_t first = (start + h->granule - 1) / h->granule * h->granule;
	uint64_t last = end / h->granule * h->granule;

	h->exact += end - start;
	if (last > first)
		h->whole += last - first;
}

/* Holes and unwritten extents of [0, size) from FIEMAP. Extents are
 * block-granular, so the one holding a partial last block covers the tail:
 * clipping to size keeps a fully written file at hole_bytes == 0. */
static int walk_fiemap(int fd, struct holes *h, struct image_facts *out)
{
	size_t len = sizeof(struct fiemap) + FIEMAP_BATCH * sizeof(struct fiemap_extent);
	struct fiemap *map = xcalloc(1, len);
	uint64_t size = out->size, pos = 0, unwritten = 0;
	bool last = false;
	int err = 0;

	while (pos < size && !last) {
		memset(map, 0, len);
		map->fm_start = pos;
		map->fm_length = size - pos;
		map->fm_extent_count = FIEMAP_BATCH;
		if (ioctl(fd, FS_IOC_FIEMAP, map) < 0) {
			err = -errno;
			break;
		}
		if (map->fm_mapped_extents == 0)
			break;

		uint64_t before = pos;
		for (uint32_t i = 0; i < map->fm_mapped_extents && pos < size; i++) {
			const struct fiemap_extent *e = &map->fm_extents[i];
			uint64_t start = e->fe_logical;
			uint64_t end = start + e->fe_length;

			if (start >= size)
				break;
			if (end > size)
				end = size;
			if (start > pos) {
				add_hole(h, pos, start);
				pos = start;
			}
			if (end > pos) {
				if (e->fe_flags & FIEMAP_EXTENT_UNWRITTEN)
					unwritten += end - pos;
				pos = end;
			}
			last = e->fe_flags & FIEMAP_EXTENT_LAST;
		}
		if (pos == before)	/* no progress: never loop forever */
			break;
	}
	free(map);
	if (err)
		return err;
	if (pos < size)
		add_hole(h, pos, size);
	out->hole_bytes = h->whole;
	out->unwritten_bytes = unwritten;
	return 0;
}

/* Without FIEMAP (tmpfs): SEEK_HOLE also reports fallocate()d ranges as
 * holes although their blocks are reserved. st_blocks counts those blocks,
 * so ranges only count as holes as far as blocks are really missing; the
 * missing blocks first go to the holes inside written granules. */
static int walk_seek_hole(int fd, uint64_t blksize, struct holes *h,
			  struct image_facts *out)
{
	uint64_t size = out->size, pos = 0;

	while (pos < size) {
		off_t data = lseek(fd, (off_t)pos, SEEK_DATA);
		if (data < 0) {
			if (errno != ENXIO)
				return -errno;
			add_hole(h, pos, size);
			break;
		}
		add_hole(h, pos, (uint64_t)data);
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		pos = (uint64_t)hole;
	}

	uint64_t rounded = (size + blksize - 1) / blksize * blksize;
	uint64_t missing = rounded > out->allocated ? rounded - out->allocated : 0;
	uint64_t in_written = h->exact - h->whole;
	uint64_t whole_missing = missing > in_written ? missing - in_written : 0;

	out->hole_bytes = h->whole < whole_missing ? h->whole : whole_missing;
	out->unwritten_bytes = h->whole - out->hole_bytes;
	return 0;
}

static int map_extents(int fd, const struct stat *st, struct image_facts *out)
{
	struct holes h = { .granule = out->qcow2 ? 1ULL << out->cluster_bits : 1 };
	int err = walk_fiemap(fd, &h, out);

	if (err == -EOPNOTSUPP || err == -ENOTTY) {
		h.exact = h.whole = 0;
		err = walk_seek_hole(fd, st->st_blksize > 0 ? st->st_blksize : 512, &h, out);
	}
	return err;
}

static bool declared(const char *format, const char *name)
{
	return format && !strcmp(format, name);
}

/* QEMU opens the image as the XML declares; the content is the guest's
 * to write (a raw disk's first sector included), so it is only checked
 * against the declaration, never adopted. A raw disk that starts with a
 * qcow2 header is still raw: QEMU reads it as raw, and so is it judged. */
static int read_format(int fd, const char *path, const char *format, struct image_facts *out)
{
	uint8_t buf[HEADER_READ_LEN];
	struct qcow2_info q;
	const char *why;
	ssize_t n = pread(fd, buf, sizeof(buf), 0);

	if (n < 0) {
		fail(out, errno, "source %s: reading header: %s", path, strerror(errno));
		return -1;
	}
	out->virtual_size = out->size;
	if (!format || declared(format, "raw")) {
		if (n >= 4 && be32(buf) == QCOW2_MAGIC)
			snprintf(out->note, sizeof(out->note), "declared raw, and its content starts "
				 "with a qcow2 header (a guest can write one): judged as raw, as QEMU reads it");
		return 0;
	}
	if (!declared(format, "qcow2")) {
		fail(out, EINVAL, "source %s: declared format '%s': only raw and qcow2 are inspected",
		     path, format);
		return -1;
	}
	if (qcow2_parse_header(buf, (size_t)n, &q, &why) < 0) {
		fail(out, EINVAL, "source %s: declared qcow2, but QEMU would not open its header (%s)",
		     path, why);
		return -1;
	}
	if (q.has_data_file) {
		fail(out, EINVAL, "source %s: qcow2 keeps its data in an external data file", path);
		return -1;
	}
	out->qcow2 = true;
	out->virtual_size = q.virtual_size;
	out->cluster_bits = q.cluster_bits;
	return 0;
}

/* The filesystem the measurements in docs/AIO-MODES.md name. */
static void name_fs(int fd, struct image_facts *out)
{
	static const struct { unsigned long magic; const char *name; } known[] = {
		{0xef53, "ext4"},	/* ext2/3/4 share it; the ext4 driver serves all */
		{0x58465342, "xfs"}, {0x9123683e, "btrfs"}, {0x01021994, "tmpfs"},
		{0x6969, "nfs"}, {0xff534d42, "cifs"}, {0x47504653, "gpfs"},
		{0x01161970, "gfs2"}, {0x0bd00bd0, "lustre"}, {0x2fc12fc1, "zfs"},
		{0x65735546, "fuse"}, {0x794c7630, "overlay"}, {0xf2f52010, "f2fs"},
	};
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if ((unsigned long)sf.f_type == known[i].magic) {
			snprintf(out->fs, sizeof(out->fs), "%s", known[i].name);
			return;
		}
	snprintf(out->fs, sizeof(out->fs), "0x%lx", (unsigned long)sf.f_type);
}

static enum image_state file_state(const struct image_facts *f)
{
	if (f->qcow2 && f->size < f->virtual_size)
		return IMAGE_GROWING;
	if (f->hole_bytes > 0)
		return IMAGE_SPARSE;
	return IMAGE_ALLOCATED;
}

static void inspect_file(int fd, const char *path, const char *format,
			 const struct stat *st, struct image_facts *out)
{
	out->dev = st->st_dev;
	out->ino = st->st_ino;
	out->size = st->st_size;
	out->allocated = (uint64_t)st->st_blocks * 512;
	name_fs(fd, out);

	if (read_format(fd, path, format, out) < 0)
		return;
	int err = map_extents(fd, st, out);
	if (err) {
		fail(out, -err, "source %s: mapping extents: %s", path, strerror(-err));
		return;
	}
	out->state = file_state(out);
}

/* No header read here: a read on a failed multipath device can hang. */
static void inspect_blockdev(int fd, const char *path, const struct stat *st,
			     struct image_facts *out)
{
	uint64_t size;

	if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
		fail(out, errno, "source %s: device size: %s", path, strerror(errno));
		return;
	}
	out->is_block = true;
	out->dev = st->st_rdev;
	out->size = size;
	out->virtual_size = size;
	out->state = IMAGE_BLOCKDEV;
}

static bool is_image_type(mode_t mode)
{
	return S_ISREG(mode) || S_ISBLK(mode);
}

void image_inspect(const char *path, const char *format, struct image_facts *out)
{
	struct stat st;

	memset(out, 0, sizeof(*out));
	if (!path) {
		fail(out, EINVAL, "no source path");
		return;
	}
	/* stat first: opening a fifo or a tape device has effects of its own. */
	if (stat(path, &st) < 0) {
		fail(out, errno, "source %s: %s", path, strerror(errno));
		return;
	}
	if (!is_image_type(st.st_mode)) {
		fail(out, EINVAL, "source %s: not a regular file or block device", path);
		return;
	}

	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		fail(out, errno, "source %s: %s", path, strerror(errno));
		return;
	}
	/* Replaced between stat and open? Judge what was opened. */
	if (fstat(fd, &st) < 0)
		fail(out, errno, "source %s: %s", path, strerror(errno));
	else if (S_ISBLK(st.st_mode))
		inspect_blockdev(fd, path, &st, out);
	else if (S_ISREG(st.st_mode))
		inspect_file(fd, path, format, &st, out);
	else
		fail(out, EINVAL, "source %s: not a regular file or block device", path);
	close(fd);
}
