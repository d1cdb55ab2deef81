// SPDX-License-Identifier: GPL-2.0-only
/* image_inspect() on real files made here, twice: on a disk filesystem
 * (FIEMAP) and on tmpfs (no FIEMAP: the SEEK_HOLE fallback). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/loop.h>
#include <linux/magic.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include "row_tests.h"
#include "../user/image.h"
#include "../user/util.h"

#define MiB (1024 * 1024ULL)

extern char **environ;

static char *test_dir;	/* the temp dir of the running group */

/* ---- helpers ---- */

static bool is_tmpfs(const char *dir)
{
	struct statfs sf;
	return statfs(dir, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}

static int make_test_dir(const char *parent)
{
	char *tmpl = xasprintf("%s/aioguard-test-image.XXXXXX", parent);
	if (!mkdtemp(tmpl)) {
		print_error("mkdtemp %s: %s\n", tmpl, strerror(errno));
		free(tmpl);
		return -1;
	}
	test_dir = tmpl;
	return 0;
}

/* FIEMAP needs a disk filesystem: /var/tmp, unless it is tmpfs too. */
static int disk_group_setup(void **state)
{
	const char *parents[] = { "/var/tmp", getenv("AIOGUARD_BUILDDIR") };

	for (size_t i = 0; i < sizeof(parents) / sizeof(parents[0]); i++)
		if (parents[i] && !is_tmpfs(parents[i]))
			return make_test_dir(parents[i]);
	print_error("no directory on a disk filesystem\n");
	return -1;
}

static int tmpfs_group_setup(void **state)
{
	return make_test_dir("/dev/shm");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int group_teardown(void **state)
{
	int r = nftw(test_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(test_dir);
	test_dir = NULL;
	return r;
}

static char *path_in_dir(const char *name)
{
	return xasprintf("%s/%s", test_dir, name);
}

static int create_file(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	return fd;
}

static void write_at(int fd, uint64_t off, uint64_t len)
{
	static char buf[64 * 1024];
	memset(buf, 0x5a, sizeof(buf));
	while (len) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);
		assert_int_equal(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
		off += n;
		len -= n;
	}
}

/* As the domain XML declares it. */
static void inspect_as(const char *path, const char *format, struct image_facts *f)
{
	image_inspect(path, format, f);
	print_message("%s (%s): %s size=%llu alloc=%llu holes=%llu unwritten=%llu fs=%s%s%s%s%s\n",
		      path, format ? format : "no format", image_state_name(f->state),
		      (unsigned long long)f->size, (unsigned long long)f->allocated,
		      (unsigned long long)f->hole_bytes, (unsigned long long)f->unwritten_bytes,
		      f->fs, f->detail[0] ? " " : "", f->detail, f->note[0] ? " note: " : "", f->note);
}

static void inspect(const char *path, struct image_facts *f)
{
	inspect_as(path, "raw", f);
}

/* Runs argv[0] (qemu-img, qemu-io) quietly: its exit status, -1 when it is
 * not installed. */
static int run_quiet(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	int err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err == ENOENT)
		return -1;
	assert_int_equal(err, 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* Runs qemu-img with argv; false when it is not installed. */
static bool qemu_img(char *const argv[])
{
	int status = run_quiet(argv);

	assert_true(status <= 0);
	return status == 0;
}

static bool make_qcow2(const char *path, const char *options)
{
	char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o", (char *)options,
			 (char *)path, "64M", NULL };
	return qemu_img(argv);
}

/* ---- raw files ---- */

static void raw_truncated_is_sparse(void **state)
{
	char *path = path_in_dir("truncated.raw");
	struct image_facts f;

	close(create_file(path));
	assert_int_equal(truncate(path, 16 * MiB), 0);
	inspect(path, &f);
	assert_int_equal(f.state, IMAGE_SPARSE);
	assert_int_equal(f.error, 0);
	assert_string_equal(f.detail, "");
	assert_false(f.qcow2);
	assert_false(f.is_block);
	assert_int_equal(f.size, 16 * MiB);
	assert_int_equal(f.virtual_size, 16 * MiB);
	assert_int_equal(f.hole_bytes, 16 * MiB);
	assert_int_equal(f.unwritten_bytes, 0);
	free(path);
}

static void raw_fallocated_is_allocated(void **state)
{
	char *path = path_in_dir("fallocated.raw");
	struct image_facts f;
	struct stat st;
	int fd = create_file(path);

	assert_int_equal(fallocate(fd, 0, 0, 16 * MiB), 0);
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	inspect(path, &f);
	assert_int_equal(f.state, IMAGE_ALLOCATED);
	assert_int_equal(f.hole_bytes, 0);
	assert_true(f.unwritten_bytes > 0);
	assert_int_equal(f.dev, st.st_dev);
	assert_int_equal(f.ino, st.st_ino);
	assert_true(f.allocated >= 16 * MiB);
	free(path);
}

/* The last block is partial: it must not count as a hole. */
static void raw_written_is_allocated(void **state)
{
	char *path = path_in_dir("written.raw");
	struct image_facts f;
	int fd = create_file(path);

	write_at(fd, 0, 4 * MiB + 100);
	close(fd);
	inspect(path, &f);
	assert_int_equal(f.state, IMAGE_ALLOCATED);
	assert_int_equal(f.size, 4 * MiB + 100);
	assert_int_equal(f.hole_bytes, 0);
	assert_int_equal(f.unwritten_bytes, 0);
	free(path);
}

static void raw_hole_in_middle_is_sparse(void **state)
{
	char *path = path_in_dir("middle.raw");
	struct image_facts f;
	int fd = create_file(path);

	write_at(fd, 0, 1 * MiB);
	write_at(fd, 3 * MiB, 1 * MiB);
	close(fd);
	inspect(path, &f);
	assert_int_equal(f.state, IMAGE_SPARSE);
	assert_int_equal(f.hole_bytes, 2 * MiB);
	free(path);
}

/* More extents than one FIEMAP call returns. */
static void raw_many_extents_is_sparse(void **state)
{
	char *path = path_in_dir("many.raw");
	struct image_facts f;
	int fd = create_file(path);

	for (int i = 0; i < 300; i++)
		write_at(fd, i * 64 * 1024ULL, 4096);
	close(fd);
	inspect(path, &f);
	assert_int_equal(f.state, IMAGE_SPARSE);
	assert_int_equal(f.hole_bytes, f.size - 300 * 4096);
	free(path);
}

/* Exact, not block-rounded: a hole of less than a block at the end. */
static void raw_partial_tail_hole_is_sparse(void **state)
{
	char *path = path_in_dir("tail.raw");
	struct image_facts f;
	int fd = create_file(path);

	write_at(fd, 0, 4096);
	assert_int_equal(ftruncate(fd, 5000), 0);
	close(fd);
	inspect(path, &f);
	assert_int_equal(f.state, IMAGE_SPARSE);
	assert_int_equal(f.hole_bytes, 5000 - 4096);
	free(path);
}

/* Reserved but unwritten blocks and a real hole in one file. */
static void raw_half_fallocated_is_sparse(void **state)
{
	char *path = path_in_dir("half.raw");
	struct image_facts f;
	int fd = create_file(path);

	assert_int_equal(fallocate(fd, 0, 0, 8 * MiB), 0);
	assert_int_equal(ftruncate(fd, 16 * MiB), 0);
	close(fd);
	inspect(path, &f);
	assert_int_equal(f.state, IMAGE_SPARSE);
	assert_int_equal(f.hole_bytes, 8 * MiB);
	assert_int_equal(f.unwritten_bytes, 8 * MiB);
	free(path);
}

static void raw_empty_is_allocated(void **state)
{
	char *path = path_in_dir("empty.raw");
	struct image_facts f;

	close(create_file(path));
	inspect(path, &f);
	assert_int_equal(f.state, IMAGE_ALLOCATED);
	assert_int_equal(f.size, 0);
	free(path);
}

static void symlink_is_followed(void **state)
{
	char *target = path_in_dir("linked.raw");
	char *link = path_in_dir("link.raw");
	struct image_facts f;

	close(create_file(target));
	assert_int_equal(truncate(target, 1 * MiB), 0);
	assert_int_equal(symlink(target, link), 0);
	inspect(link, &f);
	assert_int_equal(f.state, IMAGE_SPARSE);
	assert_int_equal(f.size, 1 * MiB);
	free(target);
	free(link);
}

/* ---- qcow2 via qemu-img ---- */

static void qcow2_check(const char *name, const char *options, enum image_state want,
			uint32_t cluster_bits)
{
	char *path = path_in_dir(name);
	struct image_facts f;

	if (!make_qcow2(path, options))
		fail_msg("qemu-img is not installed (tools/install-deps installs qemu-utils)");
	inspect_as(path, "qcow2", &f);
	assert_int_equal(f.state, want);
	assert_true(f.qcow2);
	assert_int_equal(f.virtual_size, 64 * MiB);
	assert_int_equal(f.cluster_bits, cluster_bits);
	free(path);
}

static void qcow2_off_is_growing(void **state)
{
	qcow2_check("off.qcow2", "preallocation=off", IMAGE_GROWING, 16);
}

static void qcow2_v2_off_is_growing(void **state)
{
	qcow2_check("v2.qcow2", "compat=0.10", IMAGE_GROWING, 16);
}

static void qcow2_metadata_is_sparse(void **state)
{
	qcow2_check("metadata.qcow2", "preallocation=metadata", IMAGE_SPARSE, 16);
}

static void qcow2_falloc_is_allocated(void **state)
{
	qcow2_check("falloc.qcow2", "preallocation=falloc", IMAGE_ALLOCATED, 16);
}

static void qcow2_full_is_allocated(void **state)
{
	qcow2_check("full.qcow2", "preallocation=full", IMAGE_ALLOCATED, 16);
}

/* The unused tail of an L2 table is a 2 MiB hole here: metadata, not data. */
static void qcow2_full_2m_clusters_is_allocated(void **state)
{
	qcow2_check("full2m.qcow2", "preallocation=full,cluster_size=2M", IMAGE_ALLOCATED, 21);
}

/* Declared qcow2, qcow2 magic in front of garbage: unknown, not raw. */
static void qcow2_bad_header_is_unknown(void **state)
{
	char *path = path_in_dir("bad.qcow2");
	struct image_facts f;
	int fd = create_file(path);

	assert_int_equal(pwrite(fd, "QFI\xfb\0\0\0\x09", 8, 0), 8);
	assert_int_equal(ftruncate(fd, 1 * MiB), 0);
	close(fd);
	inspect_as(path, "qcow2", &f);
	assert_int_equal(f.state, IMAGE_UNKNOWN);
	assert_int_equal(f.error, EINVAL);
	assert_non_null(strstr(f.detail, "declared qcow2, but QEMU would not open its header "
				"(Unsupported qcow2 version)"));
	free(path);
}

/* ---- the declared format, never the content ---- */

/* The first 512 bytes of a real 64 MiB qcow2, as a guest would copy them
 * into sector 0 of its raw disk. */
static void real_qcow2_header(uint8_t *buf)
{
	char *path = path_in_dir("donor.qcow2");
	int fd;

	if (!make_qcow2(path, "preallocation=off"))
		fail_msg("qemu-img is not installed (tools/install-deps installs qemu-utils)");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_int_equal(pread(fd, buf, 512, 0), 512);
	close(fd);
	unlink(path);
	free(path);
}

/* A guest wrote a qcow2 header into its fully allocated raw disk: QEMU
 * reads the disk as raw, and it is still allocated, not "growing". */
static void disguised_raw_is_raw(void **state)
{
	char *path = path_in_dir("disguised.raw");
	uint8_t header[512];
	struct image_facts f;
	int fd;

	real_qcow2_header(header);
	fd = create_file(path);
	write_at(fd, 0, 16 * MiB);
	assert_int_equal(pwrite(fd, header, sizeof(header), 0), 512);
	close(fd);
	inspect_as(path, "raw", &f);
	assert_int_equal(f.state, IMAGE_ALLOCATED);
	assert_false(f.qcow2);
	assert_int_equal(f.virtual_size, 16 * MiB);
	assert_string_equal(f.detail, "");
	assert_non_null(strstr(f.note, "declared raw, and its content starts with a qcow2 header"));

	/* no <driver type> at all: libvirt's default, raw */
	inspect_as(path, NULL, &f);
	assert_int_equal(f.state, IMAGE_ALLOCATED);
	assert_false(f.qcow2);
	free(path);
}

/* The same with holes: sparse, judged by its holes. */
static void disguised_sparse_raw_is_sparse(void **state)
{
	char *path = path_in_dir("disguised-sparse.raw");
	uint8_t header[512];
	struct image_facts f;
	int fd;

	real_qcow2_header(header);
	fd = create_file(path);
	assert_int_equal(pwrite(fd, header, sizeof(header), 0), 512);
	assert_int_equal(ftruncate(fd, 16 * MiB), 0);
	close(fd);
	inspect_as(path, "raw", &f);
	assert_int_equal(f.state, IMAGE_SPARSE);
	assert_false(f.qcow2);
	assert_true(f.note[0]);
	free(path);
}

/* Declared qcow2, but the file is not one: QEMU would refuse it, so
 * nothing is said about how it allocates (it was "fully allocated"). */
static void declared_qcow2_raw_content_is_unknown(void **state)
{
	char *path = path_in_dir("notqcow2.qcow2");
	struct image_facts f;
	int fd = create_file(path);

	write_at(fd, 0, 4 * MiB);
	close(fd);
	inspect_as(path, "qcow2", &f);
	assert_int_equal(f.state, IMAGE_UNKNOWN);
	assert_false(f.qcow2);
	assert_non_null(strstr(f.detail, "declared qcow2, but QEMU would not open its header "
				"(Image is not in qcow2 format)"));
	free(path);
}

static void other_format_is_unknown(void **state)
{
	char *path = path_in_dir("disk.vmdk");
	struct image_facts f;
	int fd = create_file(path);

	write_at(fd, 0, 1 * MiB);
	close(fd);
	inspect_as(path, "vmdk", &f);
	assert_int_equal(f.state, IMAGE_UNKNOWN);
	assert_non_null(strstr(f.detail, "declared format 'vmdk': only raw and qcow2 are inspected"));
	free(path);
}

static void filesystem_is_named(void **state)
{
	char *path = path_in_dir("fs.raw");
	struct image_facts f;

	close(create_file(path));
	inspect(path, &f);
	assert_true(f.fs[0]);
	if (is_tmpfs(test_dir))
		assert_string_equal(f.fs, "tmpfs");
	free(path);
}

/* ---- what cannot be inspected ---- */

static void null_path_is_unknown(void **state)
{
	struct image_facts f;

	image_inspect(NULL, "raw", &f);
	assert_int_equal(f.state, IMAGE_UNKNOWN);
	assert_string_equal(f.detail, "no source path");
}

static void missing_is_unknown(void **state)
{
	char *path = path_in_dir("missing.raw");
	char *want = xasprintf("source %s: No such file or directory", path);
	struct image_facts f;

	inspect(path, &f);
	assert_int_equal(f.state, IMAGE_UNKNOWN);
	assert_int_equal(f.error, ENOENT);
	assert_string_equal(f.detail, want);
	free(want);
	free(path);
}

static void directory_is_unknown(void **state)
{
	char *want = xasprintf("source %s: not a regular file or block device", test_dir);
	struct image_facts f;

	inspect(test_dir, &f);
	assert_int_equal(f.state, IMAGE_UNKNOWN);
	assert_int_equal(f.error, EINVAL);
	assert_string_equal(f.detail, want);
	free(want);
}

/* Opening a fifo for reading would wait for a writer forever. */
static void fifo_is_unknown(void **state)
{
	char *path = path_in_dir("fifo");
	struct image_facts f;

	assert_int_equal(mkfifo(path, 0600), 0);
	inspect(path, &f);
	assert_int_equal(f.state, IMAGE_UNKNOWN);
	assert_non_null(strstr(f.detail, "not a regular file or block device"));
	free(path);
}

/* An unreadable file is unknown (EACCES), never guessed. Root reads any
 * file: then the check runs in a child that became nobody. */
static bool unreadable_checked(const char *path)
{
	struct image_facts f;

	inspect(path, &f);
	return f.state == IMAGE_UNKNOWN && f.error == EACCES &&
	       strstr(f.detail, "Permission denied");
}

static void unreadable_is_unknown(void **state)
{
	char *path = path_in_dir("unreadable.raw");
	int status;

	close(create_file(path));
	assert_int_equal(chmod(path, 0), 0);
	if (geteuid() != 0) {
		assert_true(unreadable_checked(path));
		free(path);
		return;
	}
	assert_int_equal(chmod(test_dir, 0711), 0);   /* nobody may traverse */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(2);
		_exit(unreadable_checked(path) ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	free(path);
}

/* Every block device of this machine that may be opened (a device cgroup
 * may deny some), read-only, against its size in sysfs. */
static void blockdev_is_blockdev(void **state)
{
	DIR *d = opendir("/sys/block");
	struct dirent *de;
	int tested = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		char *dev = xasprintf("/dev/%s", de->d_name);
		char *sys = xasprintf("/sys/block/%s/size", de->d_name);
		unsigned long long sectors;
		struct image_facts f;
		struct stat st;
		FILE *fp = fopen(sys, "r");

		if (fp && stat(dev, &st) == 0 && S_ISBLK(st.st_mode)) {
			assert_int_equal(fscanf(fp, "%llu", &sectors), 1);
			inspect(dev, &f);
			if (f.error != EPERM && f.error != EACCES) {
				assert_int_equal(f.state, IMAGE_BLOCKDEV);
				assert_true(f.is_block);
				assert_int_equal(f.dev, st.st_rdev);
				assert_int_equal(f.ino, 0);
				assert_int_equal(f.size, sectors * 512);
				assert_int_equal(f.virtual_size, f.size);
				tested++;
			}
		}
		if (fp)
			fclose(fp);
		free(dev);
		free(sys);
	}
	closedir(d);
	if (!tested) {
		print_message("no block device may be opened: skipping\n");
		skip();
	}
}

/* A loop device of known size over a file made here. AUTOCLEAR detaches
 * it when the last descriptor closes, even if this test dies. */
static void loop_device_is_blockdev(void **state)
{
	char *path = path_in_dir("loop.raw");
	int file = create_file(path);
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);

	if (ctl < 0) {
		print_message("/dev/loop-control: %s: skipping\n", strerror(errno));
		close(file);
		free(path);
		skip();
	}
	assert_int_equal(ftruncate(file, 24 * MiB), 0);
	int nr = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	assert_true(nr >= 0);

	char *dev = xasprintf("/dev/loop%d", nr);
	int loop = open(dev, O_RDONLY | O_CLOEXEC);
	assert_true(loop >= 0);
	struct loop_config cfg = {
		.fd = (uint32_t)file,
		.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_READ_ONLY,
	};
	assert_int_equal(ioctl(loop, LOOP_CONFIGURE, &cfg), 0);
	close(file);

	struct image_facts f;
	struct stat st;
	assert_int_equal(fstat(loop, &st), 0);
	inspect(dev, &f);
	close(loop);
	assert_int_equal(f.state, IMAGE_BLOCKDEV);
	assert_true(f.is_block);
	assert_int_equal(f.dev, st.st_rdev);
	assert_int_equal(f.size, 24 * MiB);
	free(dev);
	free(path);
}

/* ---- qcow2_parse_header on crafted buffers ---- */

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, v >> 32);
	put32(p + 4, v);
}

static void craft(uint8_t *h, uint32_t version, uint32_t cluster_bits)
{
	memset(h, 0, 104);
	memcpy(h, "QFI\xfb", 4);
	put32(h + 4, version);
	put32(h + 20, cluster_bits);
	put64(h + 24, 10 * 1024 * MiB);
	put32(h + 36, 64);	/* L1 entries: 20 needed for 10 GiB of 64 KiB clusters */
	put32(h + 56, 1);	/* one refcount table cluster */
	put32(h + 96, 4);	/* refcount_order, v3 */
	put32(h + 100, 104);	/* header_length, v3 */
}

/* Parses a heap copy of exactly len bytes, so ASan sees any overread. */
static int parse(const uint8_t *h, size_t len, struct qcow2_info *q)
{
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, h, len);
	int r = qcow2_parse_header(copy, len, q, NULL);
	free(copy);
	return r;
}

static void header_valid_v2_v3(void **state)
{
	uint8_t h[104];
	struct qcow2_info q;

	craft(h, 2, 16);
	assert_int_equal(parse(h, 72, &q), 0);
	assert_int_equal(q.version, 2);
	assert_int_equal(q.cluster_bits, 16);
	assert_int_equal(q.virtual_size, 10 * 1024 * MiB);
	assert_false(q.has_backing_file);

	craft(h, 3, 21);
	put64(h + 8, 104);	/* backing file name right after the header */
	put32(h + 16, 20);
	assert_int_equal(parse(h, 104, &q), 0);
	assert_int_equal(q.version, 3);
	assert_int_equal(q.cluster_bits, 21);
	assert_true(q.has_backing_file);
	assert_false(q.has_data_file);

	put64(h + 72, 1 << 2);	/* incompatible feature: external data file */
	assert_int_equal(parse(h, 104, &q), 0);
	assert_true(q.has_data_file);
}

static void header_short_buffers(void **state)
{
	uint8_t h[104];
	struct qcow2_info q;

	assert_int_equal(qcow2_parse_header(NULL, 104, &q, NULL), -EINVAL);
	craft(h, 2, 16);
	for (size_t len = 0; len < 72; len++)
		assert_int_equal(parse(h, len, &q), -EINVAL);
	craft(h, 3, 16);
	for (size_t len = 0; len < 104; len++)
		assert_int_equal(parse(h, len, &q), -EINVAL);
}

static void header_garbage(void **state)
{
	uint8_t h[104];
	struct qcow2_info q;

	craft(h, 3, 16);
	h[3] = 0xfa;
	assert_int_equal(parse(h, 104, &q), -EINVAL);	/* magic */
	craft(h, 1, 16);
	assert_int_equal(parse(h, 104, &q), -EINVAL);	/* version 1 is qcow */
	craft(h, 4, 16);
	assert_int_equal(parse(h, 104, &q), -EINVAL);
	craft(h, 3, 8);
	assert_int_equal(parse(h, 104, &q), -EINVAL);	/* cluster_bits */
	craft(h, 3, 22);
	assert_int_equal(parse(h, 104, &q), -EINVAL);
	craft(h, 2, 0xffffffff);
	assert_int_equal(parse(h, 72, &q), -EINVAL);
	craft(h, 3, 16);
	put32(h + 100, 100);
	assert_int_equal(parse(h, 104, &q), -EINVAL);	/* header_length */
	craft(h, 3, 9);
	put32(h + 100, 1024);
	assert_int_equal(parse(h, 104, &q), -EINVAL);	/* longer than a cluster */
	craft(h, 3, 16);
	put64(h + 8, 1ULL << 16);
	put32(h + 16, 10);
	assert_int_equal(parse(h, 104, &q), -EINVAL);	/* backing name past cluster */
	craft(h, 3, 16);
	put64(h + 8, 104);
	put32(h + 16, 1024);
	assert_int_equal(parse(h, 104, &q), -EINVAL);	/* backing name too long */
	craft(h, 3, 16);
	put64(h + 8, UINT64_MAX - 4);
	put32(h + 16, 10);
	assert_int_equal(parse(h, 104, &q), -EINVAL);	/* offset + size wraps */
	craft(h, 3, 16);
	put64(h + 24, 1ULL << 63);
	assert_int_equal(parse(h, 104, &q), -EINVAL);	/* size */
}

/* ---- headers QEMU refuses, on real files: one cmocka test per row ---- */

/* A qemu-img-made 64 MiB qcow2 with header fields overwritten; qemu-io
 * must agree: it opens for writing exactly the rows aioguard inspects. */
struct patch {
	uint32_t off, width;     /* width 1, 4 or 8 bytes, big-endian */
	uint64_t value;
};

struct header_row {
	const char *name;
	const char *options;     /* qemu-img create -o */
	struct patch patch[3];   /* width 0 ends the list */
	bool qemu_opens;
	const char *detail;      /* substring of the detail when unknown */
};

static const struct header_row header_rows[] = {
	{"as qemu-img made it", "preallocation=off", {{0}}, true, NULL},
	{"version 2", "compat=0.10", {{0}}, true, NULL},
	{"dirty bit", "preallocation=off", {{72, 8, 1}}, true, NULL},
	{"lazy refcounts (compatible bit)", "preallocation=off", {{80, 8, 1}}, true, NULL},
	{"zstd compression", "compression_type=zstd", {{0}}, true, NULL},
	{"refcount_order 7", "preallocation=off", {{96, 4, 7}}, false,
	 "Reference count entry width too large"},
	{"L1 table too large", "preallocation=off", {{36, 4, 0x500000}}, false,
	 "Active L1 table too large"},
	{"L1 table too small", "preallocation=off", {{36, 4, 0}}, false, "L1 table is too small"},
	{"L1 table not cluster-aligned", "preallocation=off", {{40, 8, 0x30001}}, false,
	 "Active L1 table too large or misplaced"},
	{"every incompatible bit", "preallocation=off", {{72, 8, UINT64_MAX}}, false,
	 "incompatible feature bit"},
	{"an unknown incompatible bit", "preallocation=off", {{72, 8, 1 << 5}}, false,
	 "unknown incompatible feature bits"},
	{"corrupt bit", "preallocation=off", {{72, 8, 1 << 1}}, false, "Image is corrupt"},
	{"external data file bit", "preallocation=off", {{72, 8, 1 << 2}}, false,
	 "external data file"},
	{"compression bit without a type", "preallocation=off", {{72, 8, 1 << 3}}, false,
	 "must not be set"},
	{"extended L2 on 4 KiB clusters", "cluster_size=4096", {{72, 8, 1 << 4}}, false,
	 "Unsupported subcluster size"},
	{"version 4", "preallocation=off", {{4, 4, 4}}, false, "Unsupported qcow2 version"},
	{"cluster_bits 22", "preallocation=off", {{20, 4, 22}}, false, "Unsupported cluster size"},
	{"header_length 100", "preallocation=off", {{100, 4, 100}}, false, "qcow2 header too short"},
	{"backing file offset past the cluster", "preallocation=off",
	 {{8, 8, 1 << 17}, {16, 4, 4}}, false, "Invalid backing file offset"},
	{"AES encryption", "preallocation=off", {{32, 4, 1}}, false, "AES-CBC"},
	{"encryption method 3", "preallocation=off", {{32, 4, 3}}, false,
	 "Unsupported encryption method"},
	{"no refcount table", "preallocation=off", {{56, 4, 0}}, false,
	 "does not contain a reference count table"},
	{"refcount table too large", "preallocation=off", {{56, 4, 200}}, false,
	 "Reference count table too large"},
	{"virtual size of 2^62", "preallocation=off", {{24, 8, 1ULL << 62}}, false,
	 "Image is too big"},
};

static void header_row(void **state)
{
	const struct header_row *r = *state;
	char *path = path_in_dir("patched.qcow2");
	char *io[] = {"qemu-io", "-f", "qcow2", "-c", "write 0 4096", path, NULL};
	struct image_facts f;
	uint8_t b[8];
	int fd;

	if (!make_qcow2(path, r->options))
		fail_msg("qemu-img is not installed (tools/install-deps installs qemu-utils)");
	fd = open(path, O_WRONLY | O_CLOEXEC);
	for (const struct patch *p = r->patch; p->width; p++) {
		for (uint32_t i = 0; i < p->width; i++)
			b[i] = (uint8_t)(p->value >> 8 * (p->width - 1 - i));
		assert_int_equal(pwrite(fd, b, p->width, p->off), p->width);
	}
	close(fd);
	inspect_as(path, "qcow2", &f);
	if (r->qemu_opens) {
		assert_int_equal(f.state, IMAGE_GROWING);
		assert_true(f.qcow2);
	} else {
		assert_int_equal(f.state, IMAGE_UNKNOWN);
		assert_false(f.qcow2);
		assert_non_null(strstr(f.detail, r->detail));
		/* only the data file bit alone says "data file" */
		if (strcmp(r->detail, "external data file"))
			assert_null(strstr(f.detail, "data file"));
	}
	/* QEMU agrees: it opens for writing what aioguard inspected (this write
	 * grows the file, so it comes last) */
	int status = run_quiet(io);
	if (status >= 0)
		assert_int_equal(status == 0, r->qemu_opens);
	else
		print_message("qemu-io is not installed: QEMU's side not checked\n");
	unlink(path);
	free(path);
}

#define FILE_TESTS							\
	cmocka_unit_test(raw_truncated_is_sparse),			\
	cmocka_unit_test(raw_fallocated_is_allocated),			\
	cmocka_unit_test(raw_written_is_allocated),			\
	cmocka_unit_test(raw_hole_in_middle_is_sparse),			\
	cmocka_unit_test(raw_many_extents_is_sparse),			\
	cmocka_unit_test(raw_partial_tail_hole_is_sparse),		\
	cmocka_unit_test(raw_half_fallocated_is_sparse),		\
	cmocka_unit_test(raw_empty_is_allocated),			\
	cmocka_unit_test(symlink_is_followed),				\
	cmocka_unit_test(qcow2_off_is_growing),				\
	cmocka_unit_test(qcow2_v2_off_is_growing),			\
	cmocka_unit_test(qcow2_metadata_is_sparse),			\
	cmocka_unit_test(qcow2_falloc_is_allocated),			\
	cmocka_unit_test(qcow2_full_is_allocated),			\
	cmocka_unit_test(qcow2_full_2m_clusters_is_allocated),		\
	cmocka_unit_test(qcow2_bad_header_is_unknown),			\
	cmocka_unit_test(disguised_raw_is_raw),				\
	cmocka_unit_test(disguised_sparse_raw_is_sparse),		\
	cmocka_unit_test(declared_qcow2_raw_content_is_unknown),	\
	cmocka_unit_test(other_format_is_unknown),			\
	cmocka_unit_test(filesystem_is_named),				\
	cmocka_unit_test(missing_is_unknown),				\
	cmocka_unit_test(directory_is_unknown),				\
	cmocka_unit_test(fifo_is_unknown),				\
	cmocka_unit_test(unreadable_is_unknown)

int main(void)
{
	const struct CMUnitTest on_disk[] = {
		FILE_TESTS,
		cmocka_unit_test(loop_device_is_blockdev),
	};
	const struct CMUnitTest on_tmpfs[] = { FILE_TESTS };
	const struct CMUnitTest other[] = {
		cmocka_unit_test(null_path_is_unknown),
		cmocka_unit_test(blockdev_is_blockdev),
		cmocka_unit_test(header_valid_v2_v3),
		cmocka_unit_test(header_short_buffers),
		cmocka_unit_test(header_garbage),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("image on a disk filesystem (FIEMAP)", on_disk,
					      disk_group_setup, group_teardown);
	if (is_tmpfs("/dev/shm"))
		failed += cmocka_run_group_tests_name("image on tmpfs (SEEK_HOLE fallback)",
						      on_tmpfs, tmpfs_group_setup,
						      group_teardown);
	else
		print_message("/dev/shm is not tmpfs: SEEK_HOLE fallback not tested\n");
	failed += cmocka_run_group_tests_name("image: no file", other, NULL, NULL);
	if (disk_group_setup(NULL) == 0) {
		failed += RUN_ROW_TESTS("qcow2 headers QEMU refuses, on real files", header_row,
					header_rows);
		group_teardown(NULL);
	}
	return failed;
}
