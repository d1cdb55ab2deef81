// SPDX-License-Identifier: GPL-2.0-only
/* inventory_parse_domain_xml() on arbitrary bytes, as libvirt could hand
 * them over (conn NULL: volumes stay unresolved; inspect=false: nothing on
 * the host is stat'ed or opened). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "inventory.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	xmlInitParser();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *xml = malloc(size + 1);
	struct disk_list l = {0};

	if (!xml)
		return 0;
	memcpy(xml, data, size);
	xml[size] = '\0';

	if (inventory_parse_domain_xml(NULL, xml, false, &l) < 0) {
		if (l.n)   /* "nothing appended" on failure */
			abort();
	} else {
		for (size_t i = 0; i < l.n; i++) {
			const struct disk *d = &l.v[i];
			/* Every string is a proper C string; read it all. */
			const char *s[] = {d->domain, d->domain_uuid, d->target,
					   d->source, d->format, d->cache};
			for (size_t k = 0; k < sizeof(s) / sizeof(s[0]); k++)
				if (s[k] && strlen(s[k]) > size + 64)
					abort();
			if (!d->domain || d->io > IO_MODE_IO_URING ||
			    d->io_next_boot != d->io || d->type > DISK_TYPE_OTHER ||
			    d->device > DISK_DEVICE_LUN)
				abort();
			/* Not inspected: no image facts may appear. */
			if (d->image.state != IMAGE_UNKNOWN || d->image.size)
				abort();
		}
	}
	disk_list_free(&l);
	free(xml);
	return 0;
}
