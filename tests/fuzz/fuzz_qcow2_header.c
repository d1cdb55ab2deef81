// SPDX-License-Identifier: GPL-2.0-only
/* qcow2_parse_header() on arbitrary bytes: the first 512 bytes of any file a
 * domain names as its disk, i.e. chosen by whoever controls the guest image. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qcow2_info info, before;
	const char *why = "unset";
	int rc;

	memset(&info, 0xa5, sizeof(info));
	before = info;
	rc = qcow2_parse_header(data, size, &info, &why);
	if (rc != 0) {
		/* Rejected: *out untouched, and said why. */
		if (rc > 0 || memcmp(&info, &before, sizeof(info)) || !why || !strcmp(why, "unset"))
			abort();
		return 0;
	}
	if (why)
		abort();
	if ((info.version != 2 && info.version != 3) || info.cluster_bits < 9 ||
	    info.cluster_bits > 21 || info.virtual_size > INT64_MAX || size < 72 ||
	    (info.version == 3 && size < 104) || (info.version == 2 && info.has_data_file))
		abort();
	return 0;
}
