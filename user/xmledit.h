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

/* The <alias name=…> libvirt gave the disk `target` in a running domain's
 * XML (QEMU's device id, e.g. virtio-disk0), malloc'd; NULL with one line
 * in err when there is no such disk or it has no alias. */
char *xmledit_get_alias(const char *xml, const char *target, char *err, size_t errlen);

/* The <source file=…> or <source dev=…> of the disk `target`, malloc'd;
 * NULL when there is none (a volume, a network disk) or no such disk. */
char *xmledit_get_source(const char *xml, const char *target);

/* The node names libvirt gave each layer of the disk `target` in its
 * status XML (/run/libvirt/qemu/NAME.xml, root <domstatus>, or a plain
 * <domain>): <source><privateData><nodenames>, top first, down the
 * <backingStore> chain. libvirt names the nodes it makes after QEMU started
 * (a snapshot's overlay, a block copy) only there. format[i] (NULL where
 * libvirt gave the layer no format node), storage[i] malloc'd (free with
 * xmledit_chain_free). The number of layers, or -1 with one line in err
 * (no such disk, a layer without a storage node name). */
#define XMLEDIT_MAX_LAYERS 32
struct xml_chain {
	char *format[XMLEDIT_MAX_LAYERS], *storage[XMLEDIT_MAX_LAYERS];
	int n;
};
int xmledit_get_chain(const char *status_xml, const char *target, struct xml_chain *out,
		      char *err, size_t errlen);
void xmledit_chain_free(struct xml_chain *c);
/* The target of the disk whose chain has the storage node `storage` in
 * the status XML, malloc'd; NULL when none has. */
char *xmledit_target_of_node(const char *status_xml, const char *storage);

/* A malloc'd copy of xml whose disk `target` has <driver io=io>: the io
 * value is replaced, or io='…' appended to <driver>, or <driver name='qemu'
 * io='…'/> inserted as the disk's first child with its siblings' indentation.
 * Returns an identical copy when io is already set. *old (may be NULL) gets
 * the driver as it was, so callers can check cache_allows_native().
 * NULL with one line in err on the errors of xmledit_get_driver(). */
char *xmledit_set_io(const char *xml, const char *target, enum io_mode io,
		     struct xml_driver *old, char *err, size_t errlen);

/* libvirt writes a tab, newline or carriage return inside an attribute value
 * as it is, and every conforming parser, libvirt's own included, reads each
 * as a space (XML 1.0, 3.3.3): a <source file> whose path holds a newline
 * reads back as another path. A malloc'd copy of xml with those three
 * characters inside attribute values written as character references
 * (&#9; &#10; &#13;), which parse to what libvirt holds. Everything else,
 * text, comments, CDATA, the rest of each tag, is copied byte for byte.
 * Read every XML libvirt hands out through this before parsing or editing
 * it, and define only XML that went through it. */
char *xml_keep_attr_whitespace(const char *xml);

/* Whether two domain XMLs describe the same disks: the <disk> elements of
 * <devices>, in order, with every element, attribute (in any order) and
 * non-blank text equal, except the io attribute of the <driver> of the disk
 * whose target is `target` (NULL: no exception). Comments and blank text
 * are not compared. 0 when equal; 1 when not, with the first difference in
 * diff as one line (control characters escaped); -1 with the reason in diff
 * when either does not parse. */
int xmledit_compare_disks(const char *old_xml, const char *new_xml, const char *target,
			  char *diff, size_t difflen);

#endif
