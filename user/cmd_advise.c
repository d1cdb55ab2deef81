// SPDX-License-Identifier: GPL-2.0-only
/* aioguard advise: the static AIO recommendation for every disk. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../policy/advise.h"
#include "commands.h"
#include "config.h"
#include "host.h"
#include "inventory.h"
#include "util.h"
#include "virt.h"

struct advised {
	const struct disk *disk;
	struct advice advice;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: aioguard advise [-c URI] [--domain NAME] [--json]\n"
		"\n"
		"For every disk of every domain (running and defined-only), inspect the\n"
		"image without mounting it (stat, FIEMAP, the header of the format the XML\n"
		"declares) and recommend an AIO mode, with the rule that decided and the\n"
		"measurement behind it (docs/AIO-MODES.md; ext4 and xfs; kernel 6.18 on the\n"
		"host, 6.1 and 6.12 in the kernel matrix: the rule follows the kernel QEMU\n"
		"runs on, this host's uname -r):\n"
		"  writes extend the file (growing qcow2)    -> 6.18: io_uring where QEMU, libvirt\n"
		"                                               and the kernel run it, else threads;\n"
		"                                               6.1, 6.12 and unmeasured: threads\n"
		"  holes, unwritten extents                  -> 6.18: native (a raw on xfs: io_uring\n"
		"                                               where usable); 6.1: raw holes threads,\n"
		"                                               unwritten io_uring (else threads);\n"
		"                                               6.12: raw holes io_uring (else\n"
		"                                               threads), unwritten threads; qcow2\n"
		"                                               there and unmeasured kernels: none\n"
		"  allocated                                 -> native\n"
		"  block device                              -> native (not measured)\n"
		"  cache other than none/directsync          -> threads (native needs O_DIRECT;\n"
		"                                               an io_uring disk stays io_uring)\n"
		"  image on another filesystem               -> none (not measured there)\n"
		"  network disk, cdrom, read-only            -> none (AIO mode has no effect)\n"
		"  source missing, unreadable, or not the\n"
		"  declared format as QEMU would open it     -> none, and says why\n"
		"\n"
		"  -c, --connect URI   libvirt URI (default: libvirt's default, e.g. qemu:///system)\n"
		"  -d, --domain NAME   only this domain\n"
		"  -j, --json          one JSON document (schema in README.md)\n"
		"  -s, --state-dir DIR where live switches are recorded (default\n"
		"                      " AIOGUARD_STATE_DIR "): a disk switched with\n"
		"                      set-io --apply live shows the mode QEMU runs, with\n"
		"                      what libvirt's live XML still says beside it\n"
		"  -h, --help          this text\n"
		"\n"
		"Nothing is changed; use 'aioguard set-io' to apply a recommendation.\n");
}

static json_object *json_string_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *disk_json(const struct advised *a)
{
	const struct disk *d = a->disk;
	json_object *o = json_object_new_object();

	json_object_object_add(o, "domain", json_string_or_null(d->domain));
	json_object_object_add(o, "target", json_string_or_null(d->target));
	json_object_object_add(o, "type", json_object_new_string(disk_type_name(d->type)));
	json_object_object_add(o, "device", json_object_new_string(disk_device_name(d->device)));
	json_object_object_add(o, "source", json_string_or_null(d->source));
	json_object_object_add(o, "format", json_string_or_null(d->format));
	json_object_object_add(o, "cache", json_string_or_null(d->cache));
	json_object_object_add(o, "io", json_string_or_null(io_mode_name(d->io)));
	json_object_object_add(o, "io_next_boot", json_string_or_null(io_mode_name(d->io_next_boot)));
	json_object_object_add(o, "io_live_xml", d->domain_active ?
			       json_string_or_null(io_mode_name(d->io_xml)) : NULL);
	json_object_object_add(o, "io_switched_live", json_object_new_boolean(d->io_live_recorded));
	json_object_object_add(o, "readonly", json_object_new_boolean(d->readonly));
	json_object_object_add(o, "active", json_object_new_boolean(d->domain_active));
	json_object_object_add(o, "image", json_object_new_string(image_state_name(d->image.state)));
	json_object_object_add(o, "sparse", a->advice.sparse_known ?
			       json_object_new_boolean(a->advice.sparse) : NULL);
	json_object_object_add(o, "recommended_io",
			       json_string_or_null(io_mode_name(a->advice.recommended)));
	json_object_object_add(o, "reason", json_object_new_string(a->advice.reason));
	return o;
}

static void print_json(const struct advised *v, size_t n, const struct io_uring_support *u,
		       const char *kernel)
{
	json_object *root = json_object_new_object(), *arr = json_object_new_array();
	json_object *iou = json_object_new_object();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr, disk_json(&v[i]));
	json_object_object_add(root, "disks", arr);
	json_object_object_add(iou, "usable", json_object_new_boolean(u->usable));
	json_object_object_add(iou, "why", json_object_new_string(u->why));
	json_object_object_add(root, "io_uring", iou);
	json_object_object_add(root, "kernel", json_string_or_null(kernel[0] ? kernel : NULL));
	puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
}

static const char *dash(const char *s)
{
	return s && *s ? s : "-";
}

static const char *sparse_word(const struct advice *a)
{
	if (!a->sparse_known)
		return "?";
	return a->sparse ? "yes" : "no";
}

/* One cell, padded to width; control characters from the XML (a newline in
 * a path, an escape sequence in a name) are shown as '?', so one disk stays
 * one line and nothing reaches the terminal raw. */
static void put_cell(const char *s, int width, bool last)
{
	int n = 0;
	for (s = dash(s); *s; s++, n++)
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
	if (last)
		putchar('\n');
	else
		printf("%*s", width - n + 2, "");
}

/* The mode QEMU runs; after a live switch, what libvirt's XML says too. */
static const char *io_cell(const struct disk *d, char *buf, size_t size)
{
	if (!d->io_live_recorded || d->io_xml == d->io)
		return io_mode_name(d->io);
	snprintf(buf, size, "%s (live; XML: %s)", dash(io_mode_name(d->io)), dash(io_mode_name(d->io_xml)));
	return buf;
}

/* An aligned table: column widths from the data, the reason last and whole. */
static void print_table(const struct advised *v, size_t n)
{
	enum { NCOLS = 10 };
	static const char *const heads[NCOLS] = {"DOMAIN", "TARGET", "TYPE", "SOURCE", "FORMAT",
						 "CACHE", "IO", "SPARSE", "RECOMMENDED", "REASON"};
	const char *cols[NCOLS];
	int w[NCOLS];

	for (int c = 0; c < NCOLS; c++)
		w[c] = (int)strlen(heads[c]);
	for (size_t pass = 0; pass < 2; pass++) {
		if (pass)
			for (int c = 0; c < NCOLS; c++)
				put_cell(heads[c], w[c], c == NCOLS - 1);
		for (size_t i = 0; i < n; i++) {
			const struct disk *d = v[i].disk;
			const struct advice *a = &v[i].advice;
			char io[64];
			const char *row[NCOLS] = {d->domain, d->target, disk_type_name(d->type), d->source,
						  d->format, d->cache, io_cell(d, io, sizeof(io)), sparse_word(a),
						  io_mode_name(a->recommended), a->reason};
			memcpy(cols, row, sizeof(cols));
			for (int c = 0; c < NCOLS; c++) {
				if (!pass && (int)strlen(dash(cols[c])) > w[c])
					w[c] = (int)strlen(dash(cols[c]));
				else if (pass)
					put_cell(cols[c], w[c], c == NCOLS - 1);
			}
		}
	}
}

int cmd_advise(int argc, char **argv)
{
	static const struct option opts[] = {
		{"connect", required_argument, NULL, 'c'},
		{"domain", required_argument, NULL, 'd'},
		{"json", no_argument, NULL, 'j'},
		{"state-dir", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *uri = NULL, *only = NULL;
	bool json = false;
	int c;

	log_set_command("advise");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:d:js:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': uri = optarg; break;
		case 'd': only = optarg; break;
		case 'j': json = true; break;
		case 's': inventory_set_state_dir(optarg); break;
		case 'h': usage(stdout); return 0;
		default: return option_error(c, argv);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);

	virConnectPtr conn = virt_open(uri);
	if (!conn)
		return 1;
	struct disk_list disks = {0};
	struct io_uring_support iou;
	char kernel[HOST_KERNEL_LEN];
	int rc = inventory_collect(conn, only, INVENTORY_INSPECT, &disks) < 0 ? 1 : 0;
	struct advised *v = xcalloc(disks.n, sizeof(*v));

	io_uring_probe(conn, &iou);
	host_kernel_probe(conn, kernel);
	for (size_t i = 0; i < disks.n; i++) {
		v[i].disk = &disks.v[i];
		disk_advise(&disks.v[i], &iou, kernel, &v[i].advice);
	}
	if (rc == 0 || disks.n) {
		if (json)
			print_json(v, disks.n, &iou, kernel);
		else if (disks.n)
			print_table(v, disks.n);
		else
			printf("no disks found%s%s\n", only ? " in domain " : "", only ? only : "");
	}
	free(v);
	disk_list_free(&disks);
	virConnectClose(conn);
	return rc;
}
