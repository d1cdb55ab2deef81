// SPDX-License-Identifier: GPL-2.0-only
/* xmledit_set_io() rewrites customers' domain XML: on arbitrary bytes, for
 * each disk target the input names (inventory's reading of it; "vda" when it
 * names none) and each io mode. Whenever a rewrite succeeds:
 *   - the result parses and its disk `target` reads back with the new io;
 *   - it has as many disks as before, and every other disk reads the same;
 *   - *old is the driver as xmledit_get_driver() reads it from the input;
 *   - when io was already set the copy is identical, else only the bytes of
 *     one attribute value or one insertion changed (no markup removed);
 *   - xmledit_compare_disks() finds the disks equal but for that io, and
 *     different in that io when it changed.
 * And xml_keep_attr_whitespace() is idempotent, and the compare of an input
 * with itself finds nothing (or says it does not parse), in one line.
 * A violation abort()s. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "inventory.h"
#include "util.h"
#include "xmledit.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TARGETS 4

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	xmlInitParser();
	return 0;
}

static void check(bool ok)
{
	if (!ok)
		abort();
}

static bool same_driver(const struct xml_driver *a, const struct xml_driver *b)
{
	return a->present == b->present && a->io == b->io && streq_null(a->name, b->name) &&
	       streq_null(a->type, b->type) && streq_null(a->cache, b->cache);
}

/* The part of xml that out replaced: no markup can be in it. */
static void check_splice(const char *xml, const char *out)
{
	size_t lx = strlen(xml), lo = strlen(out), pre = 0, suf = 0;

	while (pre < lx && pre < lo && xml[pre] == out[pre])
		pre++;
	while (suf < lx - pre && suf < lo - pre && xml[lx - 1 - suf] == out[lo - 1 - suf])
		suf++;
	check(pre < lx || pre < lo);   /* something changed */
	for (size_t i = pre; i < lx - suf; i++)
		check(xml[i] != '<' && xml[i] != '>');
	check(lx - pre - suf <= 64);
}

static void check_rewrite(const char *xml, const struct disk_list *before,
			  const char *target, enum io_mode io)
{
	struct xml_driver old, now, after;
	struct disk_list l = {0};
	char err[512];
	int now_rc = xmledit_get_driver(xml, target, &now, err, sizeof(err));
	char *out = xmledit_set_io(xml, target, io, &old, err, sizeof(err));

	if (!out) {
		check(!old.present && !old.name && !old.type && !old.cache);
		check(memchr(err, '\0', sizeof(err)) != NULL);
		xml_driver_free(&now);
		return;
	}
	/* set_io succeeded where get_driver did too, and saw the same. */
	check(now_rc == 0 && same_driver(&old, &now));

	check(xmledit_get_driver(out, target, &after, err, sizeof(err)) == 0);
	check(after.present && after.io == io);
	check(streq_null(after.type, old.type) && streq_null(after.cache, old.cache));
	if (old.present)
		check(streq_null(after.name, old.name));
	xml_driver_free(&after);

	check(inventory_parse_domain_xml(NULL, out, false, &l) == 0);
	check(l.n == before->n);
	for (size_t i = 0; i < l.n; i++) {
		const struct disk *a = &before->v[i], *b = &l.v[i];

		check(streq_null(a->target, b->target) && streq_null(a->source, b->source) &&
		      a->type == b->type && a->device == b->device && a->readonly == b->readonly &&
		      a->opted_out == b->opted_out);
		if (streq_null(a->target, target))
			continue;
		check(a->io == b->io && streq_null(a->cache, b->cache) &&
		      streq_null(a->format, b->format));
	}
	disk_list_free(&l);

	if (old.io == io)
		check(!strcmp(out, xml));
	else
		check_splice(xml, out);
	if (old.present) {
		check(xmledit_compare_disks(xml, out, target, err, sizeof(err)) == 0);
		check(xmledit_compare_disks(xml, out, NULL, err, sizeof(err)) == (old.io != io));
	}
	xml_driver_free(&old);
	xml_driver_free(&now);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *xml = malloc(size + 1);
	struct disk_list before = {0};
	const char *targets[MAX_TARGETS];
	size_t nt = 0;

	if (!xml)
		return 0;
	memcpy(xml, data, size);
	xml[size] = '\0';

	if (inventory_parse_domain_xml(NULL, xml, false, &before) == 0)
		for (size_t i = 0; i < before.n && nt < MAX_TARGETS; i++) {
			bool dup = !before.v[i].target;
			for (size_t k = 0; k < nt && !dup; k++)
				dup = !strcmp(targets[k], before.v[i].target);
			if (!dup)
				targets[nt++] = before.v[i].target;
		}
	if (!nt)
		targets[nt++] = "vda";

	char *kept = xml_keep_attr_whitespace(xml), *again = xml_keep_attr_whitespace(kept);
	char diff[256] = "";
	int same = xmledit_compare_disks(xml, xml, NULL, diff, sizeof(diff));
	check(!strcmp(kept, again));
	check(same == 0 || same == -1);
	check(memchr(diff, '\0', sizeof(diff)) && !strchr(diff, '\n'));
	free(again);
	free(kept);

	for (size_t k = 0; k < nt; k++)
		for (enum io_mode io = IO_MODE_NATIVE; io <= IO_MODE_IO_URING; io++)
			check_rewrite(xml, &before, targets[k], io);

	disk_list_free(&before);
	free(xml);
	return 0;
}
