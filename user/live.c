// SPDX-License-Identifier: GPL-2.0-only
/* All of aioguard's QMP is here. The steps are in live.h. */
#include "live.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>
#include <libvirt/libvirt-qemu.h>

#include "events.h"
#include "inventory.h"
#include "live_state.h"
#include "util.h"
#include "virt.h"
#include "xmledit.h"

#define MAX_LAYERS XMLEDIT_MAX_LAYERS
#define NODE_NAME_MAX 31   /* QEMU refuses longer node names */

struct layer {
	const char *format, *storage;   /* node names (in live.chain) */
	json_object *fmt, *sto;         /* the options a reopen or add carries */
	const char *aio;                /* what its file node runs now */
	bool swap;                      /* …which is not the mode wanted */
	bool grows;                     /* a format over a regular file: a
					   write may extend the image (hop) */
	char tmp[NODE_NAME_MAX + 1];
};

struct live {
	virDomainPtr dom;
	const char *state_dir;
	json_object *nodes;             /* node-name -> -blockdev options */
	json_object *drives;            /* device id -> its -device drive */
	json_object *graph;             /* node-name -> query-named-block-nodes */
	json_object *swapped;           /* node-name -> aio (live_state_nodes) */
	const char *xml_aio;            /* what libvirt makes nodes with */
	json_object *tmpl_fmt, *tmpl_sto;  /* the disk's layer QEMU started with */
	struct xml_chain chain;         /* libvirt's node names, top first */
	char *msg;
	size_t len;
	bool failed;                    /* msg holds the first failure */
	double qmp_ms, qmp_max_ms;      /* time in QMP calls, longest call */
	int calls, steps;
	bool left_tmp;                  /* a temporary node stays in QEMU */
	char times[256];                /* each call's time: "add 3.1, reopen 40.2, …" */
	bool paused;                    /* this swap paused the guest */
	bool resume_owed;               /* a killed swap left it paused (repair) */
	bool keep_paused;               /* a node may not know its whole image */
	double pause_t0, pause_ms;      /* when it paused; how long, once resumed */
	struct layer layer[MAX_LAYERS];
	int nlayers;
};

__attribute__((format(printf, 2, 3)))
static int failf(struct live *l, const char *fmt, ...)
{
	va_list ap;

	if (l->failed)
		return -1;
	va_start(ap, fmt);
	vsnprintf(l->msg, l->len, fmt, ap);
	va_end(ap);
	l->failed = true;
	return -1;
}

/* Append to the message after a failure (what was put back). */
__attribute__((format(printf, 2, 3)))
static void addf(struct live *l, const char *fmt, ...)
{
	size_t used = strlen(l->msg);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->msg + used, l->len - used, fmt, ap);
	va_end(ap);
}

static const char *aio_name(enum io_mode io)
{
	return io == IO_MODE_UNSET ? "threads" : io_mode_name(io);
}

/* ---- QMP ---------------------------------------------------------------- */

static json_object *reply_value(struct live *l, const char *execute, const char *out)
{
	json_object *reply = json_tokener_parse(out), *v = NULL, *e, *d;

	if (!reply)
		failf(l, "%s: QEMU's reply does not parse", execute);
	else if (json_object_object_get_ex(reply, "error", &e))
		failf(l, "%s refused: %s", execute,
		      json_object_object_get_ex(e, "desc", &d) ? json_object_get_string(d) : "?");
	else if (json_object_object_get_ex(reply, "return", &v))
		json_object_get(v);
	else
		failf(l, "%s: QEMU's reply has no return", execute);
	json_object_put(reply);
	return v;
}

/* Each call's time, for the message: which step a guest's pause is in. */
static void note_time(struct live *l, const char *execute, double ms)
{
	size_t used = strlen(l->times);
	const char *name = strncmp(execute, "blockdev-", 9) ? execute : execute + 9;

	snprintf(l->times + used, sizeof(l->times) - used, "%s%s %.1f", used ? ", " : "", name, ms);
}

/* One command; args is consumed. The reply's "return", or NULL (failf). */
static json_object *qmp(struct live *l, const char *execute, json_object *args)
{
	json_object *cmd = json_object_new_object(), *v = NULL;
	char *out = NULL;
	double t0 = mono_clock_s(), ms;

	json_add_str(cmd, "execute", execute);
	if (args)
		json_object_object_add(cmd, "arguments", args);
	int rc = virDomainQemuMonitorCommand(l->dom, json_object_to_json_string_ext(cmd, JSON_C_TO_STRING_PLAIN),
					     &out, VIR_DOMAIN_QEMU_MONITOR_COMMAND_DEFAULT);
	ms = (mono_clock_s() - t0) * 1e3;
	l->calls++;
	l->qmp_ms += ms;
	note_time(l, execute, ms);
	l->qmp_max_ms = ms > l->qmp_max_ms ? ms : l->qmp_max_ms;
	if (rc < 0)
		failf(l, "%s: %s", execute, virt_last_error());
	else
		v = reply_value(l, execute, out);
	free(out);
	json_object_put(cmd);
	return v;
}

/* A command whose reply is empty: 0 or -1. */
static int qmp_do(struct live *l, const char *execute, json_object *args)
{
	json_object *v = qmp(l, execute, args);

	json_object_put(v);
	return v ? 0 : -1;
}

static const char *str_field(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v) : NULL;
}


/* ---- what libvirt gave QEMU --------------------------------------------- */

static char *read_whole(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 65536, n = 0;
	char *buf;
	ssize_t r;

	if (fd < 0)
		return NULL;
	buf = xcalloc(1, cap + 1);
	while ((r = read(fd, buf + n, cap - n)) > 0) {
		n += (size_t)r;
		if (n == cap) {
			buf = xrealloc(buf, 2 * cap + 1);
			cap *= 2;
		}
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* -device: JSON (libvirt with QEMU >= 6.2) or "driver,drive=X,id=Y,…":
 * id -> drive, the node the device was started on. */
static void add_device(struct live *l, const char *arg)
{
	json_object *o = *arg == '{' ? json_tokener_parse(arg) : NULL;
	char *id = NULL, *drive = NULL;

	if (o) {
		id = xstrdup(str_field(o, "id"));
		drive = xstrdup(str_field(o, "drive"));
	} else {
		for (const char *p = arg; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] ? 1 : 0)) {
			size_t n = strcspn(p, ",");
			if (!strncmp(p, "id=", 3))
				id = xasprintf("%.*s", (int)n - 3, p + 3);
			else if (!strncmp(p, "drive=", 6))
				drive = xasprintf("%.*s", (int)n - 6, p + 6);
		}
	}
	if (id && drive)
		json_object_object_add(l->drives, id, json_object_new_string(drive));
	free(id);
	free(drive);
	json_object_put(o);
}

/* node-name -> options of every -blockdev on QEMU's command line, and
 * each -device's drive. */
static int load_blockdevs(struct live *l)
{
	pid_t pid = inventory_qemu_pid(l->dom);
	char path[64];
	size_t len = 0;
	char *buf, *prev = "";

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (!pid || !(buf = read_whole(path, &len)))
		return failf(l, "cannot read the command line of the domain's QEMU (the live switch needs aioguard on the hypervisor)");
	l->nodes = json_object_new_object();
	l->drives = json_object_new_object();
	for (char *p = buf; p < buf + len; prev = p, p += strlen(p) + 1) {
		json_object *o = strcmp(prev, "-blockdev") || *p != '{' ? NULL : json_tokener_parse(p);
		const char *name = o ? str_field(o, "node-name") : NULL;

		if (name)
			json_object_object_add(l->nodes, name, json_object_get(o));
		json_object_put(o);
		if (!strcmp(prev, "-device"))
			add_device(l, p);
	}
	free(buf);
	if (json_object_object_length(l->nodes) == 0)
		return failf(l, "libvirt did not start this QEMU in -blockdev mode (no -blockdev on its command line): the live switch needs node names");
	return 0;
}

static json_object *node_opts(struct live *l, const char *name)
{
	json_object *o;

	return name && json_object_object_get_ex(l->nodes, name, &o) ? o : NULL;
}

static bool is_storage_driver(const char *driver)
{
	return driver && (!strcmp(driver, "file") || !strcmp(driver, "host_device"));
}

/* ---- what QEMU and libvirt hold now ------------------------------------- */

static json_object *field_of(json_object *graph, const char *node, const char *field)
{
	json_object *n, *v;

	return json_object_object_get_ex(graph, node, &n) && json_object_object_get_ex(n, field, &v)
		       ? v : NULL;
}

/* QEMU's own report of every node, name -> info (a new reference). */
static json_object *query_graph(struct live *l)
{
	json_object *args = json_object_new_object(), *all, *by_name;

	json_object_object_add(args, "flat", json_object_new_boolean(true));
	if (!(all = qmp(l, "query-named-block-nodes", args)))
		return NULL;
	by_name = json_object_new_object();
	for (size_t i = 0; i < json_object_array_length(all); i++) {
		json_object *n = json_object_array_get_idx(all, i);
		const char *name = str_field(n, "node-name");

		if (name)
			json_object_object_add(by_name, name, json_object_get(n));
	}
	json_object_put(all);
	return by_name;
}

static json_object *graph_node(struct live *l, const char *name)
{
	json_object *o;

	return name && json_object_object_get_ex(l->graph, name, &o) ? o : NULL;
}

/* libvirt names the nodes of every layer, those it made after QEMU
 * started too (a snapshot's overlay, a block copy), only in its status
 * XML; QMP tells no node's children. */
static char *status_xml(struct live *l)
{
	char path[4096];
	size_t len;
	char *xml;

	snprintf(path, sizeof(path), "/run/libvirt/qemu/%s.xml", virDomainGetName(l->dom));
	if (!(xml = read_whole(path, &len)))
		failf(l, "cannot read libvirt's status XML %s: %m", path);
	return xml;
}

static int read_chain(struct live *l, const char *target)
{
	char err[256], *xml = status_xml(l);

	if (!xml)
		return -1;
	if (xmledit_get_chain(xml, target, &l->chain, err, sizeof(err)) < 0)
		failf(l, "%s", err);
	free(xml);
	return l->failed ? -1 : 0;
}

/* ---- the disk's chain --------------------------------------------------- */

static char *disk_alias(struct live *l, const char *target)
{
	char *xml = virDomainGetXMLDesc(l->dom, 0), *alias;
	char err[256];

	if (!xml) {
		failf(l, "cannot read the live XML: %s", virt_last_error());
		return NULL;
	}
	alias = xmledit_get_alias(xml, target, err, sizeof(err));
	if (!alias)
		failf(l, "%s", err);
	free(xml);
	return alias;
}

/* libvirt's qdev is the alias, or /machine/peripheral/ALIAS/virtio-backend */
static bool qdev_is(const char *qdev, const char *alias)
{
	static const char per[] = "/machine/peripheral/";
	size_t n = strlen(alias);

	if (!qdev)
		return false;
	if (!strcmp(qdev, alias))
		return true;
	return !strncmp(qdev, per, sizeof(per) - 1) && !strncmp(qdev + sizeof(per) - 1, alias, n) &&
	       (qdev[sizeof(per) - 1 + n] == '/' || !qdev[sizeof(per) - 1 + n]);
}

/* The node the guest's device reads from, malloc'd. */
static char *top_node(struct live *l, const char *alias, const char *target)
{
	json_object *blocks = qmp(l, "query-block", NULL), *ins;
	char *top = NULL;

	for (size_t i = 0; blocks && i < json_object_array_length(blocks) && !top; i++) {
		json_object *b = json_object_array_get_idx(blocks, i);

		if (qdev_is(str_field(b, "qdev"), alias) && json_object_object_get_ex(b, "inserted", &ins))
			top = xstrdup(str_field(ins, "node-name"));
	}
	if (blocks && !top)
		failf(l, "%s (device %s) has no medium in QEMU", target, alias);
	json_object_put(blocks);
	return top;
}

/* The options of the layer the disk's device started on: libvirt builds
 * every node of a disk, at start or later, from the disk's one <driver>
 * (cache, discard, …), so a node made after start differs from it in its
 * names, image and format only. */
static int load_template(struct live *l, const char *alias)
{
	json_object *drive;

	if (!json_object_object_get_ex(l->drives, alias, &drive) ||
	    !(l->tmpl_fmt = node_opts(l, json_object_get_string(drive))))
		return failf(l, "device %s was not on QEMU's command line (hot-plugged?): no options to build its nodes from", alias);
	if (is_storage_driver(str_field(l->tmpl_fmt, "driver")))
		return failf(l, "device %s sits on file node %s with no format layer above it: the device itself would have to be reattached",
			     alias, json_object_get_string(drive));
	l->tmpl_sto = node_opts(l, str_field(l->tmpl_fmt, "file"));
	if (!l->tmpl_sto || !is_storage_driver(str_field(l->tmpl_sto, "driver")))
		return failf(l, "the file layer of %s is not a local file or block device (%s)", alias,
			     l->tmpl_sto ? str_field(l->tmpl_sto, "driver") : "unknown node");
	return 0;
}

static json_object *copy(json_object *o)
{
	json_object *c = NULL;

	json_object_deep_copy(o, &c, NULL);
	return c;
}

/* A node's options: as on QEMU's command line, or, made after start, the
 * template's with its own name, driver and (storage) image. */
static json_object *layer_opts(struct live *l, const char *name, json_object *tmpl, json_object *info,
			       bool storage)
{
	static const char *const generic[] = {"cache", "discard", "detect-zeroes", NULL};
	json_object *o, *v;

	if (node_opts(l, name))
		return copy(node_opts(l, name));
	if (storage) {
		o = copy(tmpl);
		json_add_str(o, "filename", str_field(info, "file"));
	} else {   /* the format driver's own options are the template's image's */
		o = json_object_new_object();
		for (int k = 0; generic[k]; k++)
			if (json_object_object_get_ex(tmpl, generic[k], &v))
				json_object_object_add(o, generic[k], json_object_get(v));
	}
	json_add_str(o, "node-name", name);
	json_add_str(o, "driver", str_field(info, "drv"));
	return o;
}

static bool info_ro(json_object *info)
{
	json_object *v;

	return json_object_object_get_ex(info, "ro", &v) && json_object_get_boolean(v);
}

/* Whether a reopen of layer i's format node names its backing: it has one,
 * or libvirt names it (null) for this format (qcow2 does, raw refuses the
 * option). */
static bool takes_backing(struct live *l, json_object *fmt, int i)
{
	const char *drv = str_field(fmt, "driver");

	return i + 1 < l->chain.n || json_object_object_get_ex(fmt, "backing", NULL) ||
	       (json_object_object_get_ex(l->tmpl_fmt, "backing", NULL) && drv &&
		!strcmp(drv, str_field(l->tmpl_fmt, "driver") ?: ""));
}

/* Layer i of the chain, its options as QEMU holds them now: read-only and
 * backing as they are (a snapshot made the old top a read-only backing). */
static int add_layer(struct live *l, int i, const char *aio)
{
	const char *fname = l->chain.format[i], *sname = l->chain.storage[i];
	json_object *gf = graph_node(l, fname), *gs = graph_node(l, sname), *a;
	struct layer *ly = &l->layer[i];
	char tmp[NODE_NAME_MAX + 1];

	if (!fname)
		return failf(l, "node %s has no format layer above it: the device itself would have to be reattached", sname);
	if (snprintf(tmp, sizeof(tmp), LIVE_TMP_PREFIX "%s", sname) >= (int)sizeof(tmp))
		return failf(l, "node name %s is too long for a temporary node beside it", sname);
	gs = gs ?: graph_node(l, tmp);   /* repair: the storage node may be gone */
	if (!gf || !gs)
		return failf(l, "node %s of libvirt's status XML is not in QEMU (a block job under way?)",
			     gf ? sname : fname);
	if (is_storage_driver(str_field(gf, "drv")))
		return failf(l, "node %s has no format layer above its file node: the device itself would have to be reattached", fname);
	if (!is_storage_driver(str_field(gs, "drv")))
		return failf(l, "the file layer of %s is not a local file or block device (%s)", fname,
			     str_field(gs, "drv"));
	*ly = (struct layer){.format = fname, .storage = sname,
			     .fmt = layer_opts(l, fname, l->tmpl_fmt, gf, false),
			     .sto = layer_opts(l, sname, l->tmpl_sto, gs, true)};
	snprintf(ly->tmp, sizeof(ly->tmp), "%s", tmp);
	json_add_str(ly->fmt, "file", sname);
	json_object_object_add(ly->fmt, "read-only", json_object_new_boolean(info_ro(gf)));
	if (takes_backing(l, ly->fmt, i))
		json_add_str(ly->fmt, "backing", i + 1 < l->chain.n ? l->chain.format[i + 1] : NULL);
	ly->aio = json_object_object_get_ex(l->swapped, sname, &a) ? json_object_get_string(a) : l->xml_aio;
	ly->grows = !strcmp(str_field(gs, "drv") ?: "", "file") && strcmp(str_field(gf, "drv") ?: "", "raw");
	ly->swap = strcmp(ly->aio, aio) != 0;
	l->nlayers = i + 1;
	return 0;
}

/* Every layer of target's chain as QEMU runs it now; aio: the mode wanted
 * (which layers need a swap). */
static int load_chain(struct live *l, const char *target, const char *aio)
{
	char *alias = disk_alias(l, target), *top = NULL;

	if (!alias || !(top = top_node(l, alias, target)) || read_chain(l, target) < 0 ||
	    load_template(l, alias) < 0 || !(l->graph = query_graph(l)))
		goto out;
	if (strcmp(top, l->chain.format[0] ?: l->chain.storage[0])) {
		failf(l, "QEMU's device %s reads from node %s, libvirt's status XML says %s (a block job under way?)",
		      alias, top, l->chain.format[0] ?: l->chain.storage[0]);
		goto out;
	}
	for (int i = 0; i < l->chain.n && add_layer(l, i, aio) == 0; i++)
		;
out:
	free(top);
	free(alias);
	return l->failed ? -1 : 0;
}

/* ---- the steps ---------------------------------------------------------- */

static int add_storage(struct live *l, const struct layer *ly, const char *name, const char *aio,
		       bool tmp)
{
	json_object *o = copy(ly->sto);

	json_object_object_add(o, "node-name", json_object_new_string(name));
	json_object_object_add(o, "aio", json_object_new_string(aio));
	if (tmp)
		json_object_object_add(o, "locking", json_object_new_string("off"));
	return qmp_do(l, "blockdev-add", o);
}

/* The format node's whole option set, its file child replaced. */
static int reopen_onto(struct live *l, const struct layer *ly, const char *file)
{
	json_object *o = copy(ly->fmt), *args = json_object_new_object(), *list = json_object_new_array();

	json_object_object_add(o, "file", json_object_new_string(file));
	json_object_array_add(list, o);
	json_object_object_add(args, "options", list);
	return qmp_do(l, "blockdev-reopen", args);
}

static int del_node(struct live *l, const char *name)
{
	json_object *args = json_object_new_object();

	json_object_object_add(args, "node-name", json_object_new_string(name));
	return qmp_do(l, "blockdev-del", args);
}

/* Tests stop a swap between steps here, as a killed agent would, or hold
 * it there for a while (the guest's writes then land in that gap). */
static void test_hook(struct live *l)
{
	const char *at = getenv("AIOGUARD_TEST_LIVE_KILL_AT_STEP");
	const char *hold = getenv("AIOGUARD_TEST_LIVE_HOLD_AT_STEP");

	l->steps++;
	if (at && atoi(at) == l->steps)
		raise(SIGKILL);
	if (hold && atoi(hold) == l->steps)
		usleep(1000 * (getenv("AIOGUARD_TEST_LIVE_HOLD_MS") ? atoi(getenv("AIOGUARD_TEST_LIVE_HOLD_MS")) : 500));
}

/* The format node stays on a node that may read zeros for part of its
 * image: the guest stays paused, for an operator to look at. */
static int stale_node(struct live *l, const char *node)
{
	l->keep_paused = true;
	l->left_tmp = true;   /* pending stays: the next start repairs, then resumes */
	failf(l, "node %s may not know all of its image", node);
	addf(l, "; the guest stays paused: resuming it could lose data (virsh resume once the disk is checked)");
	return -1;
}

/* The image file's length as a file node knows it (-1: not reported). */
static long long known_length(json_object *graph, const char *node)
{
	json_object *img = field_of(graph, node, "image"), *v;

	return img && json_object_object_get_ex(img, "virtual-size", &v) ? json_object_get_int64(v) : -1;
}

/* Whether file node `to` knows the image to be as long as `from` does: 1,
 * 0 (shorter), -1 (failf). QEMU's file driver learns a file's length when
 * it opens it and from its own writes only: where `from` extended the
 * image after `to` was opened, reads through `to` beyond its length return
 * zeros without reading the file, and qcow2, reading an L2 table it wrote
 * there, writes it back empty: the guest's data is lost (QEMU 7.2, seen
 * here). */
static int knows_whole_file(struct live *l, const char *to, const char *from)
{
	json_object *graph = query_graph(l);
	long long a = known_length(graph, to), b = known_length(graph, from);

	json_object_put(graph);
	if (!graph)
		return -1;
	if (a < 0 || b < 0)
		return failf(l, "QEMU reports no image length of node %s or %s", to, from);
	return a >= b;
}

/* The format node moves from file node `from` onto `to`, added now with
 * aio. An image that grows is moved with the guest paused (pause_guest),
 * so only I/O that is not the guest's (a block job) can extend it between
 * the add and the reopen; then `to` knows a shorter file than `from`: back
 * onto `from`, `to` removed, and again. On failure `to` is gone and the
 * format node is on `from`. */
static int hop(struct live *l, const struct layer *ly, const char *from, const char *to,
	       const char *aio, bool tmp)
{
	for (int try = 1;; try++) {
		if (add_storage(l, ly, to, aio, tmp) < 0)
			return -1;
		test_hook(l);
		if (reopen_onto(l, ly, to) < 0) {
			del_node(l, to);
			return -1;
		}
		test_hook(l);
		int whole = ly->grows ? knows_whole_file(l, to, from) : 1;
		if (whole == 1)
			return 0;
		if (reopen_onto(l, ly, from) < 0)
			return stale_node(l, to);
		del_node(l, to);
		if (whole < 0 || try == 3)
			return whole < 0 ? -1 : failf(l, "the image of %s grew while the guest was paused, %d times: "
						     "other I/O on it (a block job?)", ly->format, try);
	}
}

/* The format node sits on ly->tmp (or may): end with its storage node
 * present with aio under it and tmp gone. have_storage: the storage node
 * exists and must first make way. */
static int settle(struct live *l, const struct layer *ly, const char *aio, bool have_storage)
{
	if (have_storage && del_node(l, ly->storage) < 0)
		return -1;
	if (hop(l, ly, ly->tmp, ly->storage, aio, false) < 0)
		return -1;
	return del_node(l, ly->tmp);
}

/* After a refused step 3: the format node back onto the storage node it
 * left (which knows less of a grown image than tmp: then checked). */
static int hop_back(struct live *l, const struct layer *ly)
{
	if (reopen_onto(l, ly, ly->storage) < 0)
		return -1;
	if (!ly->grows || knows_whole_file(l, ly->storage, ly->tmp) == 1)
		return 0;
	return stale_node(l, ly->storage);
}

/* After a refused step 3 or 4: the storage node back with its old aio. */
static int put_back(struct live *l, const struct layer *ly, const char *old, bool have_storage)
{
	l->left_tmp = true;
	if (settle(l, ly, old, have_storage) == 0)
		l->left_tmp = false;
	else
		addf(l, "; %s could not be put back: %s stays on %s until the next set-io or agent start",
		     ly->storage, ly->format, ly->tmp);
	return -1;
}

/* Steps 1-4 for one layer; a refused step puts the node back on old. */
static int swap_layer(struct live *l, const struct layer *ly, const char *aio, const char *old)
{
	if (hop(l, ly, ly->storage, ly->tmp, aio, true) < 0)
		return -1;
	if (del_node(l, ly->storage) < 0) {
		if (hop_back(l, ly) == 0)
			del_node(l, ly->tmp);
		return -1;
	}
	test_hook(l);
	if (hop(l, ly, ly->tmp, ly->storage, aio, false) < 0)
		return put_back(l, ly, old, false);
	if (del_node(l, ly->tmp) == 0)
		return 0;
	l->left_tmp = true;
	addf(l, " (after the swap: %s is left; the next set-io or agent start removes it)", ly->tmp);
	return -1;
}

/* ---- the guest's pause --------------------------------------------------- */

/* An image that grows is swapped with the guest paused: the reopen drains
 * the disk's I/O, but a guest write between a node's add and the reopen
 * onto it, extending the image, would be beyond what that node knows of
 * the file (knows_whole_file). virDomainSuspend stops the vCPUs and drains
 * and flushes every disk: the guest submits nothing until resumed. A
 * guest paused already (by its operator) stays so. The record is written
 * first: a swap killed while the guest is paused is repaired, and the
 * guest resumed, at the next set-io or agent start. */
static int pause_guest(struct live *l)
{
	int state = VIR_DOMAIN_NOSTATE, reason;

	if (l->paused)
		return 0;
	if (virDomainGetState(l->dom, &state, &reason, 0) < 0)
		return failf(l, "cannot read the domain's state: %s", virt_last_error());
	if (state != VIR_DOMAIN_RUNNING)
		return 0;
	if (live_state_set_paused(l->state_dir, l->dom, true) < 0)
		return failf(l, "cannot write the live state under %s: %m", l->state_dir);
	l->pause_t0 = mono_clock_s();
	if (virDomainSuspend(l->dom) < 0) {
		live_state_set_paused(l->state_dir, l->dom, false);
		return failf(l, "cannot pause the guest for the swap: %s", virt_last_error());
	}
	l->paused = true;
	return 0;
}

static void resume_guest(struct live *l)
{
	int state = VIR_DOMAIN_NOSTATE, reason;

	if ((!l->paused && !l->resume_owed) || l->keep_paused)
		return;
	if (virDomainGetState(l->dom, &state, &reason, 0) == 0 && state == VIR_DOMAIN_PAUSED &&
	    virDomainResume(l->dom) < 0) {
		addf(l, "; RESUMING THE GUEST FAILED: %s (virsh resume)", virt_last_error());
		return;
	}
	if (l->paused)
		l->pause_ms = (mono_clock_s() - l->pause_t0) * 1e3;
	l->paused = l->resume_owed = false;
	live_state_set_paused(l->state_dir, l->dom, false);
}

static bool any_swap_grows(const struct live *l)
{
	for (int i = 0; i < l->nlayers; i++)
		if (l->layer[i].swap && l->layer[i].grows)
			return true;
	return false;
}

/* ---- the whole disk ----------------------------------------------------- */

static void live_free(struct live *l)
{
	for (int i = 0; i < l->nlayers; i++) {
		json_object_put(l->layer[i].fmt);
		json_object_put(l->layer[i].sto);
	}
	xmledit_chain_free(&l->chain);
	json_object_put(l->nodes);
	json_object_put(l->drives);
	json_object_put(l->graph);
	json_object_put(l->swapped);
}

static int open_live(struct live *l, virDomainPtr dom, const char *state_dir, enum io_mode xml_io,
		     char *msg, size_t len)
{
	*l = (struct live){.dom = dom, .state_dir = state_dir, .msg = msg, .len = len,
			   .xml_aio = aio_name(xml_io)};
	msg[0] = '\0';
	if (state_dir)
		l->swapped = live_state_nodes(state_dir, dom);
	return load_blockdevs(l);
}

static int has_reopen(struct live *l)
{
	json_object *cmds = qmp(l, "query-commands", NULL);
	bool found = false;

	for (size_t i = 0; cmds && i < json_object_array_length(cmds) && !found; i++)
		found = !strcmp(str_field(json_object_array_get_idx(cmds, i), "name") ?: "", "blockdev-reopen");
	json_object_put(cmds);
	if (cmds && !found)
		failf(l, "this QEMU has no stable blockdev-reopen (QEMU >= 6.1 has)");
	return found ? 0 : -1;
}

int live_probe(virDomainPtr dom, const char *target, char *why, size_t len)
{
	struct live l;
	int rc = open_live(&l, dom, NULL, IO_MODE_UNSET, why, len) < 0 || has_reopen(&l) < 0 ||
			 load_chain(&l, target, "threads") < 0 ? -1 : 0;

	live_free(&l);
	return rc;
}

/* Record each layer's old aio before touching it: a swap killed half way
 * is put back on it (live_repair). */
static int mark_pending(struct live *l)
{
	for (int i = 0; i < l->nlayers; i++)
		if (l->layer[i].swap &&
		    live_state_set_pending(l->state_dir, l->dom, l->layer[i].storage, l->layer[i].aio) < 0)
			return failf(l, "cannot write the live state under %s: %m; nothing changed",
				     l->state_dir);
	return 0;
}

static void clear_pending(struct live *l)
{
	for (int i = 0; i < l->nlayers; i++)
		if (l->layer[i].swap)
			live_state_set_pending(l->state_dir, l->dom, l->layer[i].storage, NULL);
}

/* Layers [0, n) that were to be swapped went to aio; a later one failed. */
static void swap_back(struct live *l, int n, const char *aio)
{
	for (int i = 0; i < n; i++)
		if (l->layer[i].swap && swap_layer(l, &l->layer[i], l->layer[i].aio, aio) < 0)
			addf(l, "; %s could not be swapped back to aio=%s", l->layer[i].storage,
			     l->layer[i].aio);
}

static int swap_chain(struct live *l, const char *aio)
{
	for (int i = 0; i < l->nlayers; i++) {
		if (!l->layer[i].swap || swap_layer(l, &l->layer[i], aio, l->layer[i].aio) == 0)
			continue;
		swap_back(l, i, aio);
		addf(l, "; QEMU runs the old aio as before");
		return -1;
	}
	return 0;
}

/* What QEMU reports of a node must not change with a swap: the options a
 * swap built are the ones the node had (cache.direct, read-only, format,
 * image, backing, detect-zeroes). QEMU reports no aio, discard or locking:
 * those come from libvirt's own options (layer_opts). */
static int check_kept(struct live *l)
{
	static const char *const fields[] = {"ro", "drv", "file", "backing_file", "cache",
					     "detect_zeroes", "encrypted", NULL};
	json_object *now = query_graph(l);

	for (int i = 0; now && i < l->nlayers && !l->failed; i++) {
		const char *names[] = {l->layer[i].format, l->layer[i].storage};

		for (int k = 0; k < 2 && l->layer[i].swap && !l->failed; k++)
			for (int f = 0; fields[f] && !l->failed; f++) {
				json_object *a = field_of(l->graph, names[k], fields[f]);
				json_object *b = field_of(now, names[k], fields[f]);

				if (!json_object_equal(a, b))
					failf(l, "after the swap QEMU reports %s of node %s as %s, before %s",
					      fields[f], names[k], b ? json_object_to_json_string(b) : "nothing",
					      a ? json_object_to_json_string(a) : "nothing");
			}
	}
	json_object_put(now);
	return now && !l->failed ? 0 : -1;
}

/* The swap done: each node's aio, then the disk's mode on its top image. */
static int record(struct live *l, const char *target, enum io_mode io, const char *aio)
{
	for (int i = 0; i < l->nlayers; i++)
		if (l->layer[i].swap && live_state_set_node(l->state_dir, l->dom, l->layer[i].storage, aio) < 0)
			return -1;
	return live_state_set_io(l->state_dir, l->dom, target, str_field(l->layer[0].sto, "filename"), io);
}

static int count_swaps(const struct live *l)
{
	int n = 0;

	for (int i = 0; i < l->nlayers; i++)
		n += l->layer[i].swap;
	return n;
}

int live_swap(virDomainPtr dom, const char *target, enum io_mode io, enum io_mode xml_io,
	      const char *state_dir, char *msg, size_t len)
{
	const char *aio = aio_name(io);
	struct live l;
	int rc = -1, n = 0;

	if (open_live(&l, dom, state_dir, xml_io, msg, len) < 0 || has_reopen(&l) < 0 ||
	    load_chain(&l, target, aio) < 0 || mark_pending(&l) < 0)
		goto out;
	l.qmp_ms = l.qmp_max_ms = 0;   /* the swap's own calls only */
	l.calls = 0;
	l.times[0] = '\0';
	n = count_swaps(&l);
	if (any_swap_grows(&l) && pause_guest(&l) < 0) {
		clear_pending(&l);
		goto out;
	}
	if (swap_chain(&l, aio) < 0) {
		if (!l.left_tmp)
			clear_pending(&l);
		goto out;
	}
	if (n && check_kept(&l) < 0) {
		swap_back(&l, l.nlayers, aio);
		addf(&l, "; swapped back to the old aio");
		if (!l.left_tmp)
			clear_pending(&l);
		goto out;
	}
	resume_guest(&l);
	if (record(&l, target, io, aio) < 0) {
		failf(&l, "QEMU runs aio=%s now, but recording it under %s failed: %m", aio, state_dir);
		goto out;
	}
	if (n)
		snprintf(msg, len, "%d file node%s of %d swapped to aio=%s in %d QMP calls, %.1f ms (longest %.1f ms: %s ms)",
			 n, n == 1 ? "" : "s", l.nlayers, aio, l.calls, l.qmp_ms, l.qmp_max_ms, l.times);
	else
		snprintf(msg, len, "every file node (%d) already runs aio=%s", l.nlayers, aio);
	if (l.pause_ms > 0)
		addf(&l, "; guest paused %.1f ms (a growing image is swapped paused)", l.pause_ms);
	rc = n;
out:
	resume_guest(&l);
	if (l.failed && l.pause_ms > 0)
		addf(&l, "; the guest was paused %.1f ms", l.pause_ms);
	live_free(&l);
	return rc;
}

/* ---- repair ------------------------------------------------------------- */

static bool node_present(json_object *graph, const char *name)
{
	json_object *o;

	return json_object_object_get_ex(graph, name, &o);
}

/* The disk whose chain holds the storage node, from libvirt's status XML. */
static char *target_of(struct live *l, const char *storage)
{
	char *xml = status_xml(l), *target;

	target = xml ? xmledit_target_of_node(xml, storage) : NULL;
	free(xml);
	return target;
}

/* One node a swap was interrupted on: back to aio old, whichever step it
 * stopped after (the format node moved onto the temporary node, the
 * storage node deleted or added again, or all done). */
static int repair_node(struct live *l, const char *storage, const char *old)
{
	char *target = target_of(l, storage);
	struct layer *ly = NULL;
	int rc = -1;

	if (!target)
		return l->failed ? -1 : failf(l, "cannot repair %s: no disk's chain in libvirt's status XML holds it", storage);
	if (load_chain(l, target, old) == 0)
		for (int i = 0; i < l->nlayers && !ly; i++)
			ly = strcmp(l->layer[i].storage, storage) ? NULL : &l->layer[i];
	if (ly && ly->grows && pause_guest(l) < 0)
		ly = NULL;
	else if (ly && !node_present(l->graph, ly->tmp))
		rc = swap_layer(l, ly, old, old);
	else if (ly && reopen_onto(l, ly, ly->tmp) == 0)
		rc = settle(l, ly, old, node_present(l->graph, storage));
	else if (!l->failed)
		failf(l, "cannot repair %s: not in the chain of %s", storage, target);
	free(target);
	return rc;
}

/* Reset what one disk's chain loaded, for the next pending node. */
static void unload_chain(struct live *l)
{
	for (int i = 0; i < l->nlayers; i++) {
		json_object_put(l->layer[i].fmt);
		json_object_put(l->layer[i].sto);
	}
	l->nlayers = 0;
	xmledit_chain_free(&l->chain);
	json_object_put(l->graph);
	l->graph = NULL;
}

int live_repair(virDomainPtr dom, const char *state_dir, char *msg, size_t len)
{
	json_object *pending = live_state_pending(state_dir, dom);
	bool owed = live_state_paused(state_dir, dom);
	struct live l;
	int n = 0;

	msg[0] = '\0';
	if ((!pending || json_object_object_length(pending) == 0) && !owed) {
		json_object_put(pending);
		return 0;   /* no swap of ours was under way: no QMP */
	}
	if (open_live(&l, dom, state_dir, IO_MODE_UNSET, msg, len) == 0) {
		l.resume_owed = owed;
		json_object_object_foreach(pending, storage, aio) {
			if (repair_node(&l, storage, json_object_get_string(aio)) < 0)
				break;
			unload_chain(&l);
			live_state_set_pending(state_dir, dom, storage, NULL);
			live_state_set_node(state_dir, dom, storage, json_object_get_string(aio));
			n++;
		}
	}
	json_object_put(pending);
	if (!l.failed)
		snprintf(msg, len, "%d file node%s of an interrupted live switch put back%s", n,
			 n == 1 ? "" : "s", owed ? "; the guest it left paused resumed" : "");
	resume_guest(&l);
	live_free(&l);
	return l.failed ? -1 : n;
}
