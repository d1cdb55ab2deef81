// SPDX-License-Identifier: GPL-2.0-only
#include "host.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "util.h"

#define QEMU_IO_URING_SINCE 5000000UL      /* QEMU 5.0: aio=io_uring */
#define LIBVIRT_IO_URING_SINCE 6003000UL   /* libvirt 6.3: io='io_uring' */
#define SYSCTL_PATH "/proc/sys/kernel/io_uring_disabled"

static const char *version(char *buf, size_t size, unsigned long v)
{
	snprintf(buf, size, "%lu.%lu.%lu", v / 1000000, v / 1000 % 1000, v % 1000);
	return buf;
}

static void verdict(struct io_uring_support *out, bool usable, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void verdict(struct io_uring_support *out, bool usable, const char *fmt, ...)
{
	va_list ap;

	out->known = true;
	out->usable = usable;
	va_start(ap, fmt);
	vsnprintf(out->why, sizeof(out->why), fmt, ap);
	va_end(ap);
	utf8_trim_partial(out->why);
}

void io_uring_judge(const struct io_uring_host *h, struct io_uring_support *out)
{
	char q[32], l[32];

	version(q, sizeof(q), h->qemu_version);
	version(l, sizeof(l), h->libvirt_version);
	if (h->remote) {
		verdict(out, false, "not checked: libvirt runs on another host, whose kernel "
			"aioguard cannot see from here");
		out->known = false;
	} else if (!h->hypervisor || strcmp(h->hypervisor, "QEMU"))
		verdict(out, false, "the hypervisor is %s, not QEMU", h->hypervisor ? h->hypervisor : "unknown");
	else if (h->qemu_version < QEMU_IO_URING_SINCE)
		verdict(out, false, "QEMU %s is older than 5.0", h->qemu_version ? q : "(version unknown)");
	else if (h->libvirt_version < LIBVIRT_IO_URING_SINCE)
		verdict(out, false, "libvirt %s is older than 6.3", h->libvirt_version ? l : "(version unknown)");
	else if (h->setup_errno == ENOSYS)
		verdict(out, false, "this kernel has no io_uring (io_uring_setup: ENOSYS)");
	else if (h->sysctl == 1)
		verdict(out, false, "kernel.io_uring_disabled = 1: only members of "
			"kernel.io_uring_group (and CAP_SYS_ADMIN) may create rings, QEMU's user not");
	else if (h->sysctl > 1)
		verdict(out, false, "kernel.io_uring_disabled = %d: no process may create rings",
			h->sysctl);
	else
		verdict(out, true, "QEMU %s ≥ 5.0, libvirt %s ≥ 6.3, kernel.io_uring_disabled %s",
			q, l, h->sysctl == 0 ? "= 0" : "absent");
}

/* "driver[+transport]://[host[:port]]/path[?query]": no host, or a name of
 * this host's loopback, is local. */
bool uri_is_remote(const char *uri)
{
	static const char *const loopback[] = {"localhost", "127.0.0.1", "[::1]"};
	const char *host = uri ? strstr(uri, "://") : NULL;
	size_t len;

	if (!host)
		return false;
	host += 3;
	if (host[0] == '[')
		len = strcspn(host, "]") + (host[strcspn(host, "]")] == ']');
	else
		len = strcspn(host, ":/?");
	for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
		if (len == strlen(loopback[i]) && !strncmp(host, loopback[i], len))
			return false;
	return len > 0;
}

static int read_sysctl(void)
{
	char buf[16] = "";
	int fd = open(SYSCTL_PATH, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? atoi(buf) : -1;
}

void io_uring_probe(virConnectPtr conn, struct io_uring_support *out)
{
	char *uri = virConnectGetURI(conn);
	struct io_uring_host h = {.hypervisor = virConnectGetType(conn), .remote = uri_is_remote(uri)};

	if (virConnectGetVersion(conn, &h.qemu_version) < 0)
		h.qemu_version = 0;
	if (virConnectGetLibVersion(conn, &h.libvirt_version) < 0)
		h.libvirt_version = 0;
	h.sysctl = read_sysctl();
	/* entries 0 is invalid: a kernel with io_uring says EINVAL and makes
	 * no ring; one without says ENOSYS */
	h.setup_errno = syscall(__NR_io_uring_setup, 0, NULL) < 0 ? errno : 0;
	io_uring_judge(&h, out);
	free(uri);
}

void host_kernel_probe(virConnectPtr conn, char release[HOST_KERNEL_LEN])
{
	char *uri = virConnectGetURI(conn);
	struct utsname u;

	release[0] = '\0';
	if (!uri_is_remote(uri) && uname(&u) == 0)
		snprintf(release, HOST_KERNEL_LEN, "%s", u.release);
	free(uri);
}

void disk_advise(const struct disk *d, const struct io_uring_support *u, const char *kernel,
		 struct advice *out)
{
	struct disk_facts f = {
		.type = d->resolved_type, .device = d->device, .readonly = d->readonly,
		.format = d->format, .cache = d->cache, .io = d->io,
		.image = d->image.state,
		.unwritten = d->image.state == IMAGE_ALLOCATED && d->image.unwritten_bytes > 0,
		.fs = d->image.fs, .image_detail = d->image.detail, .image_note = d->image.note,
		.io_uring_known = u && u->known, .io_uring_usable = u && u->usable,
		.io_uring_why = u ? u->why : NULL,
		.kernel = kernel,
	};
	advise_disk(&f, out);
}

void disk_adapt_facts(const struct disk *d, const struct io_uring_support *u, const char *kernel,
		      struct adapt_disk *out)
{
	*out = (struct adapt_disk){
		.io = d->io, .io_next_boot = d->io_next_boot, .cache = d->cache,
		.image = d->image.state, .target = d->target, .fs = d->image.fs,
		.io_uring_known = u && u->known, .io_uring_usable = u && u->usable,
		.io_uring_why = u ? u->why : NULL, .kernel = kernel,
		.opted_out = d->opted_out, .opt_out_xml = d->opt_out_xml,
		.last_change_s = -1, .last_stall_s = -1,
	};
}
