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

#define MAX_LAYERS 32
#define NODE_NAME_MAX 31   /* QEMU refuses longer node names */

struct layer {
	const char *format, *storage;   /* node names */
	json_object *fmt, *sto;         /* their -blockdev options */
	char tmp[NODE_NAME_MAX + 1];
};

struct live {
	virDomainPtr dom;
	const char *state_dir;
	json_object *nodes;             /* node-name -> -blockdev options */
	char *msg;
	size_t len;
	bool failed;                    /* msg holds the first failure */
	double qmp_ms, qmp_max_ms;      /* time in QMP calls, longest call */
	int calls, steps;
	bool left_tmp;                  /* a temporary node stays in QEMU */
	char times[256];                /* each call's time: "add 3.1, reopen 40.2, …" */
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

/* node-name -> options of every -blockdev on QEMU's command line. */
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
	for (char *p = buf; p < buf + len; prev = p, p += strlen(p) + 1) {
		json_object *o = strcmp(prev, "-blockdev") || *p != '{' ? NULL : json_tokener_parse(p);
		const char *name = o ? str_field(o, "node-name") : NULL;

		if (name)
			json_object_object_add(l->nodes, name, json_object_get(o));
		json_object_put(o);
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
static char *top_node(struct live *l, const char *target)
{
	char *alias = disk_alias(l, target), *top = NULL;
	json_object *blocks = alias ? qmp(l, "query-block", NULL) : NULL, *ins;

	for (size_t i = 0; blocks && i < json_object_array_length(blocks) && !top; i++) {
		json_object *b = json_object_array_get_idx(blocks, i);

		if (qdev_is(str_field(b, "qdev"), alias) && json_object_object_get_ex(b, "inserted", &ins))
			top = xstrdup(str_field(ins, "node-name"));
	}
	if (alias && blocks && !top)
		failf(l, "%s (device %s) has no medium in QEMU", target, alias);
	json_object_put(blocks);
	free(alias);
	return top;
}

static int add_layer(struct live *l, const char *name)
{
	json_object *fmt = node_opts(l, name), *sto;
	struct layer *ly = &l->layer[l->nlayers];

	if (!fmt)
		return failf(l, "node %s was not on QEMU's command line (a snapshot, block copy or hotplug made it): aioguard knows the options of nodes QEMU started with only", name);
	if (is_storage_driver(str_field(fmt, "driver")))
		return failf(l, "node %s has no format layer above its file node: the device itself would have to be reattached", name);
	if (l->nlayers == MAX_LAYERS)
		return failf(l, "backing chain longer than %d layers", MAX_LAYERS);
	sto = node_opts(l, str_field(fmt, "file"));
	if (!sto || !is_storage_driver(str_field(sto, "driver")))
		return failf(l, "the file layer of %s is not a local file or block device (%s)", name,
			     sto ? str_field(sto, "driver") : "unknown node");
	*ly = (struct layer){.format = str_field(fmt, "node-name"), .fmt = fmt, .storage = str_field(fmt, "file"), .sto = sto};
	if (snprintf(ly->tmp, sizeof(ly->tmp), LIVE_TMP_PREFIX "%s", ly->storage) >= (int)sizeof(ly->tmp))
		return failf(l, "node name %s is too long for a temporary node beside it", ly->storage);
	l->nlayers++;
	return 0;
}

/* QEMU's graph must still hold every node the command line named:
 * a block commit or a pivot since start removed some. */
static int check_nodes_exist(struct live *l)
{
	json_object *args = json_object_new_object(), *all;

	json_object_object_add(args, "flat", json_object_new_boolean(true));
	all = qmp(l, "query-named-block-nodes", args);
	for (int i = 0; all && i < l->nlayers && !l->failed; i++) {
		const char *want[] = {l->layer[i].format, l->layer[i].storage};
		for (int k = 0; k < 2; k++) {
			bool found = false;
			for (size_t j = 0; j < json_object_array_length(all) && !found; j++)
				found = !strcmp(str_field(json_object_array_get_idx(all, j), "node-name") ?: "", want[k]);
			if (!found)
				failf(l, "node %s is gone from QEMU since it started (a block commit or pivot?)", want[k]);
		}
	}
	json_object_put(all);
	return all && !l->failed ? 0 : -1;
}

static int load_chain(struct live *l, const char *target)
{
	char *top = top_node(l, target);
	const char *name = top;

	while (name && add_layer(l, name) == 0)
		name = str_field(l->layer[l->nlayers - 1].fmt, "backing");
	free(top);
	return l->failed ? -1 : check_nodes_exist(l);
}

/* ---- the steps ---------------------------------------------------------- */

static int add_storage(struct live *l, const struct layer *ly, const char *name, const char *aio,
		       bool tmp)
{
	json_object *o = NULL;

	json_object_deep_copy(ly->sto, &o, NULL);

	json_object_object_add(o, "node-name", json_object_new_string(name));
	json_object_object_add(o, "aio", json_object_new_string(aio));
	if (tmp)
		json_object_object_add(o, "locking", json_object_new_string("off"));
	return qmp_do(l, "blockdev-add", o);
}

/* The format node's whole option set, its file child replaced. */
static int reopen_onto(struct live *l, const struct layer *ly, const char *file)
{
	json_object *o = NULL, *args = json_object_new_object(), *list = json_object_new_array();

	json_object_deep_copy(ly->fmt, &o, NULL);
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

/* Tests stop a swap between steps here, as a killed agent would. */
static void test_hook(struct live *l)
{
	const char *at = getenv("AIOGUARD_TEST_LIVE_KILL_AT_STEP");

	l->steps++;
	if (at && atoi(at) == l->steps)
		raise(SIGKILL);
}

/* The format node sits on ly->tmp (or may): end with its storage node
 * present with aio under it and tmp gone. have_storage: the storage node
 * exists and must first make way. */
static int settle(struct live *l, const struct layer *ly, const char *aio, bool have_storage)
{
	if (have_storage && del_node(l, ly->storage) < 0)
		return -1;
	if (add_storage(l, ly, ly->storage, aio, false) < 0 || reopen_onto(l, ly, ly->storage) < 0)
		return -1;
	return del_node(l, ly->tmp);
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
	if (add_storage(l, ly, ly->tmp, aio, true) < 0)
		return -1;
	test_hook(l);
	if (reopen_onto(l, ly, ly->tmp) < 0) {
		del_node(l, ly->tmp);
		return -1;
	}
	test_hook(l);
	if (del_node(l, ly->storage) < 0) {
		reopen_onto(l, ly, ly->storage);
		del_node(l, ly->tmp);
		return -1;
	}
	test_hook(l);
	if (add_storage(l, ly, ly->storage, aio, false) < 0)
		return put_back(l, ly, old, false);
	test_hook(l);
	if (reopen_onto(l, ly, ly->storage) < 0)
		return put_back(l, ly, old, true);
	test_hook(l);
	if (del_node(l, ly->tmp) < 0 && (l->left_tmp = true))
		addf(l, " (after the swap: %s is left; the next set-io or agent start removes it)", ly->tmp);
	return l->failed ? -1 : 0;
}

/* ---- the whole disk ----------------------------------------------------- */

static void live_free(struct live *l)
{
	json_object_put(l->nodes);
}

static int open_live(struct live *l, virDomainPtr dom, const char *state_dir, char *msg, size_t len)
{
	*l = (struct live){.dom = dom, .state_dir = state_dir, .msg = msg, .len = len};
	msg[0] = '\0';
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
	int rc = open_live(&l, dom, NULL, why, len) < 0 || has_reopen(&l) < 0 ||
			 load_chain(&l, target) < 0 ? -1 : 0;

	live_free(&l);
	return rc;
}

/* Record each layer's old aio before touching it: a swap killed half way
 * is put back on it (live_repair). */
static int mark_pending(struct live *l, const char *old)
{
	for (int i = 0; i < l->nlayers; i++)
		if (live_state_set_pending(l->state_dir, l->dom, l->layer[i].storage, old) < 0)
			return failf(l, "cannot write the live state under %s: %m; nothing changed",
				     l->state_dir);
	return 0;
}

static void clear_pending(struct live *l)
{
	for (int i = 0; i < l->nlayers; i++)
		live_state_set_pending(l->state_dir, l->dom, l->layer[i].storage, NULL);
}

/* Layers [0, n) were swapped to aio; a later one was refused. */
static void swap_back(struct live *l, int n, const char *aio, const char *old)
{
	for (int i = 0; i < n; i++)
		if (swap_layer(l, &l->layer[i], old, aio) < 0)
			addf(l, "; %s could not be swapped back to aio=%s", l->layer[i].storage, old);
}

static int swap_chain(struct live *l, const char *aio, const char *old)
{
	for (int i = 0; i < l->nlayers; i++) {
		if (swap_layer(l, &l->layer[i], aio, old) == 0)
			continue;
		if (i > 0)
			swap_back(l, i, aio, old);
		addf(l, "; QEMU runs aio=%s as before", old);
		return -1;
	}
	return 0;
}

int live_swap(virDomainPtr dom, const char *target, enum io_mode io, enum io_mode old_io,
	      const char *state_dir, char *msg, size_t len)
{
	const char *aio = aio_name(io), *old = aio_name(old_io);
	struct live l;
	int rc = -1;

	if (open_live(&l, dom, state_dir, msg, len) < 0 || has_reopen(&l) < 0 ||
	    load_chain(&l, target) < 0 || mark_pending(&l, old) < 0)
		goto out;
	l.qmp_ms = l.qmp_max_ms = 0;   /* the swap's own calls only */
	l.calls = 0;
	l.times[0] = '\0';
	if (swap_chain(&l, aio, old) < 0) {
		if (!l.left_tmp)
			clear_pending(&l);
		goto out;
	}
	if (live_state_set_io(state_dir, dom, target, str_field(l.layer[0].sto, "filename"), io) < 0) {
		failf(&l, "QEMU runs aio=%s now, but recording it under %s failed: %m", aio, state_dir);
		goto out;
	}
	snprintf(msg, len, "%d file node%s swapped to aio=%s in %d QMP calls, %.1f ms (longest %.1f ms: %s ms)",
		 l.nlayers, l.nlayers == 1 ? "" : "s", aio, l.calls, l.qmp_ms,
		 l.qmp_max_ms, l.times);
	rc = 0;
out:
	live_free(&l);
	return rc;
}

/* ---- repair ------------------------------------------------------------- */

/* The format node (from the command line) whose file child is storage. */
static const char *format_above(struct live *l, const char *storage)
{
	json_object_object_foreach(l->nodes, name, o) {
		if (!is_storage_driver(str_field(o, "driver")) &&
		    !strcmp(str_field(o, "file") ?: "", storage))
			return name;
	}
	return NULL;
}

static bool node_present(json_object *all, const char *name)
{
	for (size_t j = 0; all && j < json_object_array_length(all); j++)
		if (!strcmp(str_field(json_object_array_get_idx(all, j), "node-name") ?: "", name))
			return true;
	return false;
}

/* One node a swap was interrupted on: back to aio old, whichever step it
 * stopped after (the format node moved onto the temporary node, the
 * storage node deleted or added again, or all done). */
static int repair_node(struct live *l, json_object *all, const char *storage, const char *old)
{
	const char *format = format_above(l, storage);
	struct layer *ly = &l->layer[0];

	l->nlayers = 0;
	if (!format || add_layer(l, format) < 0)
		return failf(l, "cannot repair %s: no format node above it on QEMU's command line", storage);
	if (!node_present(all, ly->tmp))
		return swap_layer(l, ly, old, old);
	if (reopen_onto(l, ly, ly->tmp) < 0)
		return -1;
	return settle(l, ly, old, node_present(all, storage));
}

int live_repair(virDomainPtr dom, const char *state_dir, char *msg, size_t len)
{
	json_object *pending = live_state_pending(state_dir, dom), *args, *all = NULL;
	struct live l;
	int n = 0;

	msg[0] = '\0';
	if (!pending || json_object_object_length(pending) == 0) {
		json_object_put(pending);
		return 0;   /* no swap of ours was under way: no QMP */
	}
	if (open_live(&l, dom, state_dir, msg, len) == 0) {
		args = json_object_new_object();
		json_object_object_add(args, "flat", json_object_new_boolean(true));
		all = qmp(&l, "query-named-block-nodes", args);
	}
	json_object_object_foreach(pending, storage, aio) {
		if (!all || repair_node(&l, all, storage, json_object_get_string(aio)) < 0)
			break;
		live_state_set_pending(state_dir, dom, storage, NULL);
		n++;
	}
	json_object_put(all);
	json_object_put(pending);
	live_free(&l);
	if (!l.failed)
		snprintf(msg, len, "%d file node%s of an interrupted live switch put back", n,
			 n == 1 ? "" : "s");
	return l.failed ? -1 : n;
}
