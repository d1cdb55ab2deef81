/* SPDX-License-Identifier: GPL-2.0-only */
/* Thin helpers over libvirt: connect quietly, report the last error in one line. */
#ifndef AIOGUARD_VIRT_H
#define AIOGUARD_VIRT_H

#include <libvirt/libvirt.h>

/* Silence libvirt's default error printing; errors are reported by us. */
void virt_init(void);
/* NULL on failure, with log_err() already said. uri NULL = libvirt default. */
virConnectPtr virt_open(const char *uri);
/* Message of the last libvirt error on this thread, or "unknown error". */
const char *virt_last_error(void);

#endif
