// SPDX-License-Identifier: GPL-2.0-only
/* policy/advise.c on facts given as words, no libvirt: what `aioguard advise`
 * would recommend for a disk with these facts. For tools/aio-scorecard,
 * which asks it for each image type × filesystem × kernel it has
 * measurements of. Not installed.
 *
 * Input, one disk per line: KEY=VALUE words, any of
 *   format=raw|qcow2  image=allocated|sparse|growing|blockdev|unknown
 *   unwritten=0|1  fs=ext4  kernel=6.1.0-57-amd64  io=native|threads|io_uring
 *   cache=none  io_uring=usable|unusable|unchecked
 * (defaults: a file disk, cache none, io native, io_uring usable, the rest
 * unset). Output, one JSON object a line: {"recommended": MODE or null,
 * "reason": TEXT, "run_auto": MODE or null, "run_auto_reason": TEXT}:
 * run_auto is where `aioguard run --target auto` (policy/adapt.c) switches
 * such a disk on io=native once it stalls (3 bad windows with time in
 * block allocation), null when it would not switch. A bad word: a one-line
 * error, exit 2. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapt.h"
#include "advise.h"

static const struct {
	const char *name;
	enum image_state state;
} images[] = {
	{"allocated", IMAGE_ALLOCATED}, {"sparse", IMAGE_SPARSE}, {"growing", IMAGE_GROWING},
	{"blockdev", IMAGE_BLOCKDEV}, {"unknown", IMAGE_UNKNOWN},
};

static int bad(const char *word)
{
	fprintf(stderr, "advise-facts: '%s' is not KEY=VALUE with a known key and value "
		"(see the comment at the top of tools/advise-facts.c)\n", word);
	return 2;
}

static bool set_image(struct disk_facts *f, const char *v)
{
	for (size_t i = 0; i < sizeof(images) / sizeof(images[0]); i++)
		if (!strcmp(v, images[i].name)) {
			f->image = images[i].state;
			f->type = f->image == IMAGE_BLOCKDEV ? DISK_TYPE_BLOCK : DISK_TYPE_FILE;
			return true;
		}
	return false;
}

static bool set_io_uring(struct disk_facts *f, const char *v)
{
	f->io_uring_known = strcmp(v, "unchecked") != 0;
	f->io_uring_usable = !strcmp(v, "usable");
	f->io_uring_why = v;
	return f->io_uring_usable || !strcmp(v, "unusable") || !strcmp(v, "unchecked");
}

/* One word into f; its value stays in line, which outlives f's use. */
static bool set_word(struct disk_facts *f, char *word)
{
	char *v = strchr(word, '=');

	if (!v)
		return false;
	*v++ = '\0';
	if (!strcmp(word, "format"))
		f->format = v;
	else if (!strcmp(word, "fs"))
		f->fs = v;
	else if (!strcmp(word, "kernel"))
		f->kernel = v;
	else if (!strcmp(word, "cache"))
		f->cache = v;
	else if (!strcmp(word, "unwritten") && (!strcmp(v, "0") || !strcmp(v, "1")))
		f->unwritten = v[0] == '1';
	else if (!strcmp(word, "image"))
		return set_image(f, v);
	else if (!strcmp(word, "io"))
		return io_mode_parse(v, &f->io);
	else if (!strcmp(word, "io_uring"))
		return set_io_uring(f, v);
	else
		return false;
	return true;
}

/* The adaptive rule with target auto, on these facts and three windows
 * that stalled in block allocation (the rule's defaults otherwise). */
static void run_auto(const struct disk_facts *f, json_object *o)
{
	static const struct adapt_window stalled = {.submits = 1000, .stalls = 8, .stalled_us = 16000,
						    .alloc_us = 700, .length_ms = 10000};
	const struct adapt_window w[3] = {stalled, stalled, stalled};
	struct adapt_config c;
	struct adapt_disk d = {
		.io = f->io, .io_next_boot = f->io, .cache = f->cache, .image = f->image, .fs = f->fs,
		.kernel = f->kernel, .io_uring_known = f->io_uring_known,
		.io_uring_usable = f->io_uring_usable, .io_uring_why = f->io_uring_why,
		.target = "vda", .last_change_s = -1, .last_stall_s = -1, .windows = w, .nwindows = 3,
	};
	struct adapt_global g = {.now_s = 100000};
	struct adapt_decision dec;

	adapt_config_defaults(&c);
	c.target = ADAPT_TARGET_AUTO;
	adapt_decide(&c, &d, &g, &dec);
	const char *to = dec.action == ADAPT_SWITCH ? io_mode_name(dec.to) : NULL;
	json_object_object_add(o, "run_auto", to ? json_object_new_string(to) : NULL);
	json_object_object_add(o, "run_auto_reason", json_object_new_string(dec.reason));
}

int main(void)
{
	char line[1024];

	while (fgets(line, sizeof(line), stdin)) {
		struct disk_facts f = {.type = DISK_TYPE_FILE, .device = DISK_DEVICE_DISK,
				       .cache = "none", .io = IO_MODE_NATIVE, .image = IMAGE_UNKNOWN,
				       .io_uring_known = true, .io_uring_usable = true,
				       .io_uring_why = "usable"};
		struct advice a;

		for (char *save = NULL, *w = strtok_r(line, " \t\n", &save); w;
		     w = strtok_r(NULL, " \t\n", &save)) {
			char word[1024];

			snprintf(word, sizeof(word), "%s", w);
			if (!set_word(&f, w))
				return bad(word);
		}
		advise_disk(&f, &a);
		json_object *o = json_object_new_object();
		const char *mode = io_mode_name(a.recommended);
		json_object_object_add(o, "recommended", mode ? json_object_new_string(mode) : NULL);
		json_object_object_add(o, "reason", json_object_new_string(a.reason));
		run_auto(&f, o);
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						    JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	}
	return 0;
}
