/* SPDX-License-Identifier: GPL-2.0-only */
/* Read and set one disk's <driver io=…> in a libvirt domain XML string.
 * libxml2 parses and finds the disk; the edit itself is spliced into the
 * original text, so every byte outside that one tag stays as it was. */
#ifndef AIOGUARD_XMLEDIT_H
#define AIOGUARD_XMLEDIT_H

#include <stdbool.h>
#include <stddef.h>

#include "../policy/facts.h"

/* The <driver> of one disk as written. Strings are NULL when absent. */
struct xml_driver {
	bool present;       /* the disk has a <driver> element at all */
	char *name;         /* name='qemu' */
	char *type;         /* image format */
	char *cache;
	enum io_mode io;    /* IO_MODE_UNSET when there is no io attribute */
};

void xml_driver_free(struct xml_driver *d);

/* Fill *out from the disk of /domain/devices whose <target dev=…> is target.
 * 0 on success; -1 with one line in err when the XML does not parse, has a
 * DOCTYPE, has no (or more than one) such disk, or io holds an unknown value. */
int xmledit_get_driver(const char *xml, const char *target, struct xml_driver *out,
		       char *err, size_t errlen);

/* A malloc'd copy of xml whose disk `target` has <driver io=io>: the io
 * value is replaced, or io='…' appended to <driver>, or <driver name='qemu'
 * io='…'/> inserted as the disk's first child with its siblings' indentation.
 * Returns an identical copy when io is already set. *old (may be NULL) gets
 * the driver as it was, so callers can check cache_allows_native().
 * NULL with one line in err on the errors of xmledit_get_driver(). */
char *xmledit_set_io(const char *xml, const char *target, enum io_mode io,
		     struct xml_driver *old, char *err, size_t errlen);

#endif
