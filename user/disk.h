/* SPDX-License-Identifier: GPL-2.0-only */
/* A disk is one struct: advise, set-io, watch, run and the exporters all read
 * the same one, built by inventory.c; none re-derives it. */
#ifndef AIOGUARD_DISK_H
#define AIOGUARD_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../policy/facts.h"
#include "image.h"

struct disk {
	char *domain;            /* libvirt domain name */
	char *domain_uuid;       /* string form */
	int domain_active;       /* 1 running, 0 defined only */
	pid_t qemu_pid;          /* of a running domain, 0 when unknown */
	char *target;            /* <target dev='vda'> */
	enum disk_type type;     /* as written in the XML */
	enum disk_device device;
	char *source;            /* path (file, block, resolved volume); for
	                            network "protocol://host/name"; NULL if none */
	char *format;            /* <driver type=…>, NULL when absent */
	char *cache;             /* <driver cache=…>, NULL when absent */
	enum io_mode io;         /* <driver io=…> QEMU runs now (live XML of a
	                            running domain), IO_MODE_UNSET when absent */
	enum io_mode io_next_boot; /* same in the persistent XML */
	enum io_mode io_xml;     /* what the live XML says: differs from io after
	                            a live switch (set-io --apply live), which
	                            libvirt does not know of */
	bool io_live_recorded;   /* io comes from aioguard's live record */
	bool io_live_stale;      /* a live record of this QEMU says the disk
	                            was switched to io_live_wanted, but on
	                            another image: libvirt made new nodes since
	                            (a snapshot, block copy or commit) */
	enum io_mode io_live_wanted;
	bool readonly;           /* <readonly/> (cdroms count as read-only) */
	enum opt_out opted_out;  /* the operator's aioguard metadata says mode="off",
	                            for the domain or this disk, in the live or
	                            the persistent XML (either is honoured) */
	unsigned opt_out_xml;    /* enum opt_out_xml: which XML said it */
	enum disk_type resolved_type; /* volume -> file/block; else == type */
	struct image_facts image;     /* inspected source (file/block only) */
};

struct disk_list {
	struct disk *v;
	size_t n, cap;
};

void disk_list_free(struct disk_list *l);

#endif
