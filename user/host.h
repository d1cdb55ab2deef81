/* SPDX-License-Identifier: GPL-2.0-only */
/* Facts about the host that the advice needs and policy/ may not fetch
 * itself: whether QEMU here can run io='io_uring'. And the one place that
 * hands a disk and those facts to policy/advise.c, for advise, the agent
 * and the metrics alike. */
#ifndef AIOGUARD_HOST_H
#define AIOGUARD_HOST_H

#include <stdbool.h>
#include <libvirt/libvirt.h>

#include "../policy/adapt.h"
#include "../policy/advise.h"
#include "disk.h"

struct io_uring_support {
	bool known;                /* checked at all (not: a remote libvirt) */
	bool usable;
	char why[256];             /* what was found, in words */
};

/* What io_uring needs: QEMU >= 5.0 (aio=io_uring), libvirt >= 6.3
 * (io='io_uring'), a kernel with io_uring that lets QEMU's user create
 * rings (kernel.io_uring_disabled absent or 0). Versions in libvirt's
 * encoding, major * 1000000 + minor * 1000 + release; 0 when unknown. */
struct io_uring_host {
	const char *hypervisor;    /* virConnectGetType(): "QEMU", "TEST", … */
	unsigned long qemu_version, libvirt_version;
	int sysctl;                /* kernel.io_uring_disabled; -1 when absent */
	int setup_errno;           /* of io_uring_setup(0, NULL); ENOSYS: the
	                              kernel has no io_uring */
	bool remote;               /* libvirt runs on another host: this host's
	                              kernel says nothing about that one */
};

/* The verdict on what was found. Pure, for tests. */
void io_uring_judge(const struct io_uring_host *h, struct io_uring_support *out);

/* Find out for the hypervisor behind conn (a few cheap libvirt calls, one
 * file read and one failing syscall), and judge. */
void io_uring_probe(virConnectPtr conn, struct io_uring_support *out);

/* The release of the kernel QEMU runs on ("6.1.0-57-amd64", uname -r): this
 * host's, or "" when libvirt runs on another host (not seen from here). The
 * advice depends on it where the kernel matrix measured a difference. */
#define HOST_KERNEL_LEN 65
void host_kernel_probe(virConnectPtr conn, char release[HOST_KERNEL_LEN]);

/* Whether a libvirt URI names another host ("qemu+ssh://h/system"). */
bool uri_is_remote(const char *uri);

/* policy/advise.c's advice for one disk, with this host's io_uring facts
 * and kernel release ("" or NULL: unknown). */
void disk_advise(const struct disk *d, const struct io_uring_support *u, const char *kernel,
		 struct advice *out);

/* The disk's facts for policy/adapt.c, with this host's io_uring facts and
 * kernel release (target auto picks by it); the agent adds its history
 * (windows, last change, last stall). The one place a disk becomes facts,
 * beside disk_advise. */
void disk_adapt_facts(const struct disk *d, const struct io_uring_support *u, const char *kernel,
		      struct adapt_disk *out);

#endif
