// SPDX-License-Identifier: GPL-2.0-only
#include "facts.h"

#include <string.h>

const char *disk_type_name(enum disk_type t)
{
	static const char *const names[] = {
		[DISK_TYPE_FILE] = "file", [DISK_TYPE_BLOCK] = "block",
		[DISK_TYPE_NETWORK] = "network", [DISK_TYPE_VOLUME] = "volume",
		[DISK_TYPE_DIR] = "dir", [DISK_TYPE_OTHER] = "other",
	};
	return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "other";
}

const char *disk_device_name(enum disk_device d)
{
	static const char *const names[] = {
		[DISK_DEVICE_DISK] = "disk", [DISK_DEVICE_CDROM] = "cdrom",
		[DISK_DEVICE_FLOPPY] = "floppy", [DISK_DEVICE_LUN] = "lun",
	};
	return (unsigned)d < sizeof(names) / sizeof(names[0]) ? names[d] : "disk";
}

const char *io_mode_name(enum io_mode m)
{
	switch (m) {
	case IO_MODE_NATIVE: return "native";
	case IO_MODE_THREADS: return "threads";
	case IO_MODE_IO_URING: return "io_uring";
	case IO_MODE_UNSET: break;
	}
	return NULL;
}

bool io_mode_parse(const char *s, enum io_mode *out)
{
	if (!s) {
		*out = IO_MODE_UNSET;
		return true;
	}
	for (enum io_mode m = IO_MODE_NATIVE; m <= IO_MODE_IO_URING; m++) {
		if (strcmp(s, io_mode_name(m)) == 0) {
			*out = m;
			return true;
		}
	}
	return false;
}

const char *image_state_name(enum image_state s)
{
	switch (s) {
	case IMAGE_ALLOCATED: return "allocated";
	case IMAGE_SPARSE: return "sparse";
	case IMAGE_GROWING: return "growing";
	case IMAGE_BLOCKDEV: return "blockdev";
	case IMAGE_UNKNOWN: break;
	}
	return "unknown";
}

bool cache_allows_native(const char *cache)
{
	return cache && (strcmp(cache, "none") == 0 || strcmp(cache, "directsync") == 0);
}

void utf8_trim_partial(char *s)
{
	size_t n = strlen(s), i = n, need;
	unsigned char lead;

	/* back over continuation bytes (at most 3) to the lead byte */
	while (i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0)
		return;
	lead = (unsigned char)s[i - 1];
	if (lead < 0x80)
		return;
	need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
	if (n - (i - 1) < need)
		s[i - 1] = '\0';
}
