// SPDX-License-Identifier: GPL-2.0-only
#include "live_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "inventory.h"
#include "util.h"

/* Which QEMU process a record belongs to: the boot, QEMU's pid and
 * libvirt's domain id together do not repeat. NULL when not running here. */
static char *instance_of(virDomainPtr dom)
{
	char boot[64] = "";
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	pid_t pid = inventory_qemu_pid(dom);
	unsigned int id = virDomainGetID(dom);

	if (f) {
		if (!fgets(boot, sizeof(boot), f))
			boot[0] = '\0';
		fclose(f);
	}
	boot[strcspn(boot, "\n")] = '\0';
	if (!pid || id == (unsigned int)-1)
		return NULL;
	return xasprintf("%s/%d/%u", boot, (int)pid, id);
}

static char *record_path(const char *state_dir, virDomainPtr dom)
{
	char uuid[VIR_UUID_STRING_BUFLEN];

	if (virDomainGetUUIDString(dom, uuid) < 0)
		return NULL;
	return xasprintf("%s/live/%s.json", state_dir, uuid);
}

/* The record of the running QEMU, or a fresh one for it; NULL when the
 * domain does not run here. A record of an earlier QEMU (the domain was
 * restarted, or migrated away and back) is removed: that QEMU's nodes are
 * gone, and the new one was built from the XML, which a set-io or the
 * agent changed already (the persistent XML), so there is nothing to
 * reapply. */
static json_object *load(const char *state_dir, virDomainPtr dom)
{
	char *path = record_path(state_dir, dom), *inst = instance_of(dom);
	json_object *rec = path && inst ? json_object_from_file(path) : NULL, *v;

	if (rec && (!json_object_object_get_ex(rec, "instance", &v) ||
		    strcmp(json_object_get_string(v), inst))) {
		json_object_put(rec);
		rec = NULL;
		unlink(path);
	}
	if (!rec && inst) {
		rec = json_object_new_object();
		json_object_object_add(rec, "instance", json_object_new_string(inst));
		json_object_object_add(rec, "disks", json_object_new_object());
		json_object_object_add(rec, "pending", json_object_new_object());
	}
	free(inst);
	free(path);
	return rec;
}

/* Written whole, then renamed over the old: never half a record. */
static int save(const char *state_dir, virDomainPtr dom, json_object *rec)
{
	char *path = record_path(state_dir, dom), *dir = xasprintf("%s/live", state_dir);
	char *tmp = path ? xasprintf("%s.tmp", path) : NULL;
	int ret = -1;

	if (!path || (mkdir(state_dir, 0700) < 0 && errno != EEXIST) ||
	    (mkdir(dir, 0700) < 0 && errno != EEXIST))
		goto out;
	if (json_object_to_file_ext(tmp, rec, JSON_C_TO_STRING_PLAIN) < 0)
		goto out;
	ret = rename(tmp, path);
out:
	free(tmp);
	free(dir);
	free(path);
	return ret;
}

static json_object *section(json_object *rec, const char *name)
{
	json_object *s;

	if (!json_object_object_get_ex(rec, name, &s) || !json_object_is_type(s, json_type_object)) {
		s = json_object_new_object();
		json_object_object_add(rec, name, s);
	}
	return s;
}

bool live_state_get_io(const char *state_dir, virDomainPtr dom, const char *target,
		       const char *source, enum io_mode *io)
{
	json_object *rec = load(state_dir, dom), *d, *v, *src;
	bool found = rec && json_object_object_get_ex(section(rec, "disks"), target, &d) &&
		     json_object_object_get_ex(d, "io", &v) &&
		     json_object_object_get_ex(d, "source", &src) &&
		     (!source || !strcmp(json_object_get_string(src), source)) &&
		     io_mode_parse(json_object_get_string(v), io) && *io != IO_MODE_UNSET;

	json_object_put(rec);
	return found;
}

bool live_state_get_wanted(const char *state_dir, virDomainPtr dom, const char *target,
			   enum io_mode *io)
{
	return live_state_get_io(state_dir, dom, target, NULL, io);
}

int live_state_set_io(const char *state_dir, virDomainPtr dom, const char *target,
		      const char *source, enum io_mode io)
{
	json_object *rec = load(state_dir, dom), *d = json_object_new_object();
	int ret;

	if (!rec) {
		json_object_put(d);
		return errno = ESRCH, -1;
	}
	json_object_object_add(d, "io", json_object_new_string(io_mode_name(io) ? io_mode_name(io) : "threads"));
	json_object_object_add(d, "source", json_object_new_string(source ? source : ""));
	json_object_object_add(section(rec, "disks"), target, d);
	json_object_object_add(rec, "pending", json_object_new_object());
	ret = save(state_dir, dom, rec);
	json_object_put(rec);
	return ret;
}

/* One key of a section set (aio) or removed (NULL), saved. */
static int set_key(const char *state_dir, virDomainPtr dom, const char *name, const char *key,
		   const char *aio)
{
	json_object *rec = load(state_dir, dom);
	int ret;

	if (!rec)
		return errno = ESRCH, -1;
	if (aio)
		json_object_object_add(section(rec, name), key, json_object_new_string(aio));
	else
		json_object_object_del(section(rec, name), key);
	ret = save(state_dir, dom, rec);
	json_object_put(rec);
	return ret;
}

static json_object *get_section(const char *state_dir, virDomainPtr dom, const char *name)
{
	json_object *rec = load(state_dir, dom), *p;

	if (!rec)
		return NULL;
	p = json_object_get(section(rec, name));
	json_object_put(rec);
	return p;
}

int live_state_set_pending(const char *state_dir, virDomainPtr dom, const char *node,
			   const char *aio)
{
	return set_key(state_dir, dom, "pending", node, aio);
}

json_object *live_state_pending(const char *state_dir, virDomainPtr dom)
{
	return get_section(state_dir, dom, "pending");
}

int live_state_set_node(const char *state_dir, virDomainPtr dom, const char *node,
			const char *aio)
{
	return set_key(state_dir, dom, "nodes", node, aio);
}

json_object *live_state_nodes(const char *state_dir, virDomainPtr dom)
{
	return get_section(state_dir, dom, "nodes");
}

int live_state_set_paused(const char *state_dir, virDomainPtr dom, bool paused)
{
	return set_key(state_dir, dom, "guest", "paused", paused ? "by a swap" : NULL);
}

bool live_state_paused(const char *state_dir, virDomainPtr dom)
{
	json_object *g = get_section(state_dir, dom, "guest");
	bool paused = g && json_object_object_get_ex(g, "paused", NULL);

	json_object_put(g);
	return paused;
}
