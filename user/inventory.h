/* SPDX-License-Identifier: GPL-2.0-only */
/* libvirt domains -> struct disk: parse each domain's XML (libxml2), resolve
 * volumes through their storage pool, stat/inspect every source. */
#ifndef AIOGUARD_INVENTORY_H
#define AIOGUARD_INVENTORY_H

#include <stdint.h>
#include <libvirt/libvirt.h>

#include "disk.h"

/* The operator opts a domain, or some of its disks, out of automatic changes
 * in the domain's own XML (virsh metadata DOM urn:aioguard:policy:1 …):
 *   <aioguard:policy xmlns:aioguard="urn:aioguard:policy:1" mode="off"/>
 *   <aioguard:policy …><aioguard:disk target="vdb" mode="off"/></aioguard:policy> */
#define AIOGUARD_XMLNS "urn:aioguard:policy:1"

/* Append the disks described by one domain XML to *out. conn may be NULL
 * (then volumes stay unresolved). inspect: run image_inspect() on sources.
 * Returns 0, or -1 when the XML cannot be parsed (nothing appended). */
int inventory_parse_domain_xml(virConnectPtr conn, const char *xml, bool inspect,
			       struct disk_list *out);

enum inventory_flags {
	INVENTORY_INSPECT = 1 << 0,       /* image_inspect() every source */
	INVENTORY_RUNNING_ONLY = 1 << 1,  /* skip defined-only domains (the agent
	                                     and watch observe running QEMU only) */
};

/* Every disk of every domain, running and defined-only (or only the domain
 * named `only` when non-NULL; -1 with a message if it does not exist).
 * Sets domain_active and qemu_pid for running domains. */
int inventory_collect(virConnectPtr conn, const char *only, unsigned flags,
		      struct disk_list *out);

/* Where the live switch records the mode QEMU runs (live_state.h); the
 * disks of running domains report it as their io. Default: the built-in
 * state directory. */
void inventory_set_state_dir(const char *state_dir);

/* PID of the QEMU process of a running domain, 0 when not found. */
pid_t inventory_qemu_pid(virDomainPtr dom);

/* The disk whose source has this (dev, ino) as stat() reports it
 * (st_dev/st_ino for files; st_rdev and ino 0 for block devices), or NULL. */
const struct disk *disk_list_find_devino(const struct disk_list *l, uint64_t dev,
					 uint64_t ino);

#endif
