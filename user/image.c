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
#include <unistd.h>

/* docs/interop/qcow2.txt */
#define QCOW2_MAGIC			0x514649fbU	/* "QFI\xfb" */
#define QCOW2_V2_HEADER_LEN		72
#define QCOW2_V3_HEADER_LEN		104
#define QCOW2_MIN_CLUSTER_BITS		9
#define QCOW2_MAX_CLUSTER_BITS		21	/* QEMU refuses larger */
#define QCOW2_MAX_BACKING_NAME		1023
#define QCOW2_INCOMPAT_DATA_FILE	(1ULL << 2)

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

int qcow2_parse_header(const uint8_t *buf, size_t len, struct qcow2_info *out)
{
	if (!buf || len < QCOW2_V2_HEADER_LEN || be32(buf) != QCOW2_MAGIC)
		return -EINVAL;

	uint32_t version = be32(buf + 4);
	uint64_t backing_off = be64(buf + 8);
	uint32_t backing_len = be32(buf + 16);
	uint32_t cluster_bits = be32(buf + 20);
	uint64_t size = be64(buf + 24);
	uint64_t incompat = 0;

	if (version != 2 && version != 3)
		return -EINVAL;
	if (cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
	    cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return -EINVAL;
	/* The backing file name must lie within the first cluster. */
	if (backing_off && (backing_len > QCOW2_MAX_BACKING_NAME ||
			    backing_off > 1ULL << cluster_bits ||
			    backing_len > (1ULL << cluster_bits) - backing_off))
		return -EINVAL;
	if (size > INT64_MAX)
		return -EINVAL;
	if (version == 3) {
		if (len < QCOW2_V3_HEADER_LEN)
			return -EINVAL;
		uint32_t header_len = be32(buf + 100);
		if (header_len < QCOW2_V3_HEADER_LEN || header_len % 8 ||
		    header_len > 1U << cluster_bits)
			return -EINVAL;
		incompat = be64(buf + 72);
	}

	*out = (struct qcow2_info){
		.version = version,
		.cluster_bits = cluster_bits,
		.virtual_size = size,
		.has_backing_file = backing_off != 0,
		.has_data_file = incompat & QCOW2_INCOMPAT_DATA_FILE,
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

/* Reads the header; qcow2 magic with a header QEMU would refuse is unknown,
 * not raw: the guest's data layout cannot be told. */
static int read_format(int fd, const char *path, struct image_facts *out)
{
	uint8_t buf[HEADER_READ_LEN];
	struct qcow2_info q;
	ssize_t n = pread(fd, buf, sizeof(buf), 0);

	if (n < 0) {
		fail(out, errno, "source %s: reading header: %s", path, strerror(errno));
		return -1;
	}
	out->virtual_size = out->size;
	if (n < 4 || be32(buf) != QCOW2_MAGIC)
		return 0;
	if (qcow2_parse_header(buf, (size_t)n, &q) < 0) {
		fail(out, EINVAL, "source %s: qcow2 magic but an invalid header", path);
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

static enum image_state file_state(const struct image_facts *f)
{
	if (f->qcow2 && f->size < f->virtual_size)
		return IMAGE_GROWING;
	if (f->hole_bytes > 0)
		return IMAGE_SPARSE;
	return IMAGE_ALLOCATED;
}

static void inspect_file(int fd, const char *path, const struct stat *st,
			 struct image_facts *out)
{
	out->dev = st->st_dev;
	out->ino = st->st_ino;
	out->size = st->st_size;
	out->allocated = (uint64_t)st->st_blocks * 512;

	if (read_format(fd, path, out) < 0)
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

void image_inspect(const char *path, struct image_facts *out)
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
		inspect_file(fd, path, &st, out);
	else
		fail(out, EINVAL, "source %s: not a regular file or block device", path);
	close(fd);
}
