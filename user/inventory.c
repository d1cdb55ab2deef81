// SPDX-License-Identifier: GPL-2.0-only
/* libvirt domains -> struct disk. The XML is read with libxml2 (no entity
 * expansion, no network); every source is only ever stat'ed and read. */
#include "inventory.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "config.h"
#include "live_state.h"
#include "util.h"
#include "virt.h"
#include "xmledit.h"

#define XML_PARSE_SAFE (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

void disk_list_free(struct disk_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct disk *d = &l->v[i];
		free(d->domain);
		free(d->domain_uuid);
		free(d->target);
		free(d->source);
		free(d->format);
		free(d->cache);
	}
	free(l->v);
	*l = (struct disk_list){0};
}

static struct disk *disk_list_add(struct disk_list *l)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	struct disk *d = &l->v[l->n++];
	*d = (struct disk){0};
	return d;
}

static xmlNode *child(const xmlNode *parent, const char *name)
{
	for (xmlNode *n = parent ? parent->children : NULL; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name))
			return n;
	return NULL;
}

/* Attribute as a malloc'ed string (libxml's buffer copied to plain malloc). */
static char *attr(const xmlNode *node, const char *name)
{
	if (!node)
		return NULL;
	xmlChar *v = xmlGetProp(node, (const xmlChar *)name);
	char *s = xstrdup((const char *)v);
	xmlFree(v);
	return s;
}

static enum disk_type parse_disk_type(const char *s)
{
	static const struct { const char *name; enum disk_type t; } map[] = {
		{"file", DISK_TYPE_FILE}, {"block", DISK_TYPE_BLOCK},
		{"network", DISK_TYPE_NETWORK}, {"volume", DISK_TYPE_VOLUME},
		{"dir", DISK_TYPE_DIR},
	};
	for (size_t i = 0; s && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(s, map[i].name))
			return map[i].t;
	return s ? DISK_TYPE_OTHER : DISK_TYPE_FILE;   /* libvirt's default */
}

static enum disk_device parse_disk_device(const char *s)
{
	if (!s || !strcmp(s, "disk"))
		return DISK_DEVICE_DISK;
	if (!strcmp(s, "cdrom"))
		return DISK_DEVICE_CDROM;
	if (!strcmp(s, "floppy"))
		return DISK_DEVICE_FLOPPY;
	return DISK_DEVICE_LUN;
}

/* "protocol://host[:port]/name" — a label for humans, never opened. */
static char *network_source(const xmlNode *src)
{
	char *protocol = attr(src, "protocol"), *name = attr(src, "name");
	xmlNode *host = child(src, "host");
	char *hname = attr(host, "name"), *port = attr(host, "port");
	char *s = xasprintf("%s://%s%s%s/%s", protocol ? protocol : "?",
			    hname ? hname : "", port ? ":" : "", port ? port : "",
			    name ? name : "");
	free(protocol);
	free(name);
	free(hname);
	free(port);
	return s;
}

/* A volume disk names pool + volume; libvirt knows the path and whether it
 * is a file or a block device. Leaves resolved_type VOLUME on failure. */
static void resolve_volume(virConnectPtr conn, const xmlNode *src, struct disk *d)
{
	char *pool_name = attr(src, "pool"), *vol_name = attr(src, "volume");
	virStoragePoolPtr pool = NULL;
	virStorageVolPtr vol = NULL;
	virStorageVolInfo info;

	if (!conn || !pool_name || !vol_name)
		goto out;
	pool = virStoragePoolLookupByName(conn, pool_name);
	vol = pool ? virStorageVolLookupByName(pool, vol_name) : NULL;
	if (!vol || virStorageVolGetInfo(vol, &info) < 0)
		goto out;
	d->source = virStorageVolGetPath(vol);
	if (info.type == VIR_STORAGE_VOL_FILE)
		d->resolved_type = DISK_TYPE_FILE;
	else if (info.type == VIR_STORAGE_VOL_BLOCK)
		d->resolved_type = DISK_TYPE_BLOCK;
out:
	if (!d->source)
		d->source = xasprintf("%s/%s", pool_name ? pool_name : "?",
				      vol_name ? vol_name : "?");
	if (vol)
		virStorageVolFree(vol);
	if (pool)
		virStoragePoolFree(pool);
	free(pool_name);
	free(vol_name);
}

static void read_source(virConnectPtr conn, const xmlNode *disk_node, struct disk *d)
{
	const xmlNode *src = child(disk_node, "source");

	d->resolved_type = d->type;
	switch (d->type) {
	case DISK_TYPE_FILE:
		d->source = attr(src, "file");
		break;
	case DISK_TYPE_BLOCK:
		d->source = attr(src, "dev");
		break;
	case DISK_TYPE_DIR:
		d->source = attr(src, "dir");
		break;
	case DISK_TYPE_NETWORK:
		d->source = src ? network_source(src) : NULL;
		break;
	case DISK_TYPE_VOLUME:
		if (src)
			resolve_volume(conn, src, d);
		break;
	case DISK_TYPE_OTHER:
		break;
	}
}

static void inspect_source(struct disk *d)
{
	bool local = d->resolved_type == DISK_TYPE_FILE || d->resolved_type == DISK_TYPE_BLOCK;

	if (local) {
		image_inspect(d->source, d->format, &d->image);
		return;
	}
	d->image = (struct image_facts){.state = IMAGE_UNKNOWN};
	snprintf(d->image.detail, sizeof(d->image.detail), "%s source is not inspected",
		 disk_type_name(d->resolved_type));
}

static void read_disk(virConnectPtr conn, const xmlNode *node, const char *domain,
		      const char *uuid, bool inspect, struct disk_list *out)
{
	struct disk *d = disk_list_add(out);
	char *type = attr(node, "type"), *device = attr(node, "device"), *io;
	const xmlNode *driver = child(node, "driver");

	d->domain = xstrdup(domain);
	d->domain_uuid = xstrdup(uuid);
	d->type = parse_disk_type(type);
	d->device = parse_disk_device(device);
	d->target = attr(child(node, "target"), "dev");
	d->format = attr(driver, "type");
	d->cache = attr(driver, "cache");
	io = attr(driver, "io");
	if (!io_mode_parse(io, &d->io))
		d->io = IO_MODE_UNSET;   /* libvirt validates io; unknown is not ours to judge */
	d->io_next_boot = d->io;
	d->io_xml = d->io;
	d->readonly = child(node, "readonly") || d->device == DISK_DEVICE_CDROM;
	read_source(conn, node, d);
	if (inspect)
		inspect_source(d);
	free(type);
	free(device);
	free(io);
}

static bool is_aioguard(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
	       !strcmp((const char *)n->ns->href, AIOGUARD_XMLNS) &&
	       !strcmp((const char *)n->name, name);
}

static bool mode_off(const xmlNode *n)
{
	char *mode = attr(n, "mode");
	bool off = mode && !strcmp(mode, "off");
	free(mode);
	return off;
}

/* The stronger opt-out wins (the domain's over a disk's); `xml` says where
 * it was found, and collects every XML that said the winning one. */
static void opt_out(struct disk *d, enum opt_out kind, unsigned xml)
{
	if (kind > d->opted_out) {
		d->opted_out = kind;
		d->opt_out_xml = xml;
	} else if (kind != OPT_OUT_NONE && kind == d->opted_out) {
		d->opt_out_xml |= xml;
	}
}

/* Apply <aioguard:policy> from <metadata> to the disks just read. */
static void read_opt_out(const xmlNode *root, struct disk_list *l, size_t first)
{
	const xmlNode *md = child(root, "metadata");
	for (const xmlNode *p = md ? md->children : NULL; p; p = p->next) {
		if (!is_aioguard(p, "policy"))
			continue;
		if (mode_off(p))
			for (size_t i = first; i < l->n; i++)
				opt_out(&l->v[i], OPT_OUT_DOMAIN, 0);
		for (const xmlNode *d = p->children; d; d = d->next) {
			if (!is_aioguard(d, "disk") || !mode_off(d))
				continue;
			char *target = attr(d, "target");
			for (size_t i = first; i < l->n; i++)
				if (streq_null(l->v[i].target, target))
					opt_out(&l->v[i], OPT_OUT_DISK, 0);
			free(target);
		}
	}
}

static char *child_text(const xmlNode *parent, const char *name)
{
	xmlNode *n = child(parent, name);
	xmlChar *v = n ? xmlNodeGetContent(n) : NULL;
	char *s = xstrdup((const char *)v);
	xmlFree(v);
	return s;
}

/* libvirt writes a newline in a path raw, and a parser reads a space: parse
 * what libvirt holds, or a path with a newline is "missing". */
static xmlDoc *read_xml(const char *xml)
{
	char *kept = xml_keep_attr_whitespace(xml);
	size_t len = strlen(kept);
	xmlDoc *doc = len <= INT_MAX ?
		      xmlReadMemory(kept, (int)len, "domain.xml", NULL, XML_PARSE_SAFE) : NULL;

	free(kept);
	return doc;
}

int inventory_parse_domain_xml(virConnectPtr conn, const char *xml, bool inspect,
			       struct disk_list *out)
{
	xmlDoc *doc = read_xml(xml);
	xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;

	if (!root || strcmp((const char *)root->name, "domain")) {
		xmlFreeDoc(doc);
		return -1;
	}
	char *name = child_text(root, "name"), *uuid = child_text(root, "uuid");
	size_t first = out->n;
	for (xmlNode *n = child(root, "devices") ? child(root, "devices")->children : NULL; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, "disk"))
			read_disk(conn, n, name ? name : "?", uuid, inspect, out);
	read_opt_out(root, out, first);
	free(name);
	free(uuid);
	xmlFreeDoc(doc);
	return 0;
}

static pid_t read_pidfile(const char *name)
{
	char path[4096], buf[32];
	snprintf(path, sizeof(path), "/run/libvirt/qemu/%s.pid", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	long pid = strtol(buf, NULL, 10);
	return pid > 0 ? (pid_t)pid : 0;
}

/* QEMU started by libvirt carries "-name guest=NAME,…" on its command line. */
static bool cmdline_names_guest(pid_t pid, const char *name)
{
	char path[64], buf[8192];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	char *want = xasprintf("guest=%s,", name);
	bool found = false;
	for (char *p = buf; p < buf + n && !found; p += strlen(p) + 1)
		found = !strncmp(p, want, strlen(want));
	free(want);
	return found;
}

static pid_t scan_proc_for_guest(const char *name)
{
	DIR *dir = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;

	while (dir && !found && (e = readdir(dir)))
		if (isdigit((unsigned char)e->d_name[0]) &&
		    cmdline_names_guest((pid_t)atoi(e->d_name), name))
			found = (pid_t)atoi(e->d_name);
	if (dir)
		closedir(dir);
	return found;
}

pid_t inventory_qemu_pid(virDomainPtr dom)
{
	const char *name = virDomainGetName(dom);
	if (!name || virDomainIsActive(dom) != 1)
		return 0;
	pid_t pid = read_pidfile(name);
	/* EPERM: alive, only not ours to signal (the agent keeps no CAP_KILL
	 * and QEMU runs as another user); without it every refresh scanned
	 * all of /proc for every domain. */
	if (pid && (kill(pid, 0) == 0 || errno == EPERM))
		return pid;
	return scan_proc_for_guest(name);
}

/* The io a running domain will get at its next boot may differ from what
 * QEMU runs now (set-io --apply next-boot): record both. An opt-out counts
 * from either XML: `virsh metadata` without --live --config writes only one
 * of them, and the operator's intent is the same. */
static void read_persistent(virDomainPtr dom, struct disk_list *l, size_t first)
{
	char *xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);
	struct disk_list persistent = {0};

	if (xml && inventory_parse_domain_xml(NULL, xml, false, &persistent) == 0)
		for (size_t i = first; i < l->n; i++)
			for (size_t j = 0; j < persistent.n; j++) {
				const struct disk *p = &persistent.v[j];

				if (!streq_null(l->v[i].target, p->target))
					continue;
				l->v[i].io_next_boot = p->io;
				opt_out(&l->v[i], p->opted_out, OPT_OUT_IN_PERSISTENT);
			}
	disk_list_free(&persistent);
	free(xml);
}

static const char *live_state_dir = AIOGUARD_STATE_DIR;

void inventory_set_state_dir(const char *state_dir)
{
	live_state_dir = state_dir;
}

/* libvirt's live XML keeps the io QEMU started with; after a live switch
 * aioguard's record says what QEMU runs. */
static void read_live_records(virDomainPtr dom, struct disk_list *l, size_t first)
{
	for (size_t i = first; i < l->n; i++) {
		struct disk *x = &l->v[i];

		x->io_xml = x->io;
		if (x->target && x->source &&
		    live_state_get_io(live_state_dir, dom, x->target, x->source, &x->io))
			x->io_live_recorded = true;
		else if (x->target &&
			 live_state_get_wanted(live_state_dir, dom, x->target, &x->io_live_wanted))
			x->io_live_stale = true;
	}
}

static int collect_domain(virConnectPtr conn, virDomainPtr dom, bool inspect, struct disk_list *out)
{
	size_t first = out->n;
	int active = virDomainIsActive(dom) == 1;
	char *xml = virDomainGetXMLDesc(dom, 0);   /* live XML when running */

	if (!xml || inventory_parse_domain_xml(conn, xml, inspect, out) < 0) {
		/* copy the error first: the next libvirt call resets it */
		char *why = xstrdup(xml ? "unparsable XML" : virt_last_error());
		log_err("cannot read the XML of domain %s: %s", virDomainGetName(dom), why);
		free(why);
		free(xml);
		return -1;
	}
	free(xml);
	pid_t pid = active ? inventory_qemu_pid(dom) : 0;
	for (size_t i = first; i < out->n; i++) {
		out->v[i].domain_active = active;
		out->v[i].qemu_pid = pid;
		if (out->v[i].opted_out != OPT_OUT_NONE)
			out->v[i].opt_out_xml = active ? OPT_OUT_IN_LIVE : OPT_OUT_IN_PERSISTENT;
	}
	if (active && virDomainIsPersistent(dom) == 1)
		read_persistent(dom, out, first);
	if (active)
		read_live_records(dom, out, first);
	return 0;
}

static int by_domain_name(const void *a, const void *b)
{
	return strcmp(virDomainGetName(*(virDomainPtr const *)a),
		      virDomainGetName(*(virDomainPtr const *)b));
}

int inventory_collect(virConnectPtr conn, const char *only, unsigned flags, struct disk_list *out)
{
	bool inspect = flags & INVENTORY_INSPECT;
	virDomainPtr *doms = NULL;
	int n, rc = 0;

	if (only) {
		virDomainPtr dom = virDomainLookupByName(conn, only);
		if (!dom) {
			log_err("no domain named '%s': %s", only, virt_last_error());
			return -1;
		}
		rc = collect_domain(conn, dom, inspect, out);
		virDomainFree(dom);
		return rc;
	}
	n = virConnectListAllDomains(conn, &doms, flags & INVENTORY_RUNNING_ONLY ?
				     VIR_CONNECT_LIST_DOMAINS_ACTIVE : 0);
	if (n < 0) {
		log_err("cannot list domains: %s", virt_last_error());
		return -1;
	}
	qsort(doms, (size_t)n, sizeof(*doms), by_domain_name);
	for (int i = 0; i < n; i++) {
		/* A domain undefined while we list it is not an error. */
		if (collect_domain(conn, doms[i], inspect, out) < 0 &&
		    virDomainIsPersistent(doms[i]) >= 0)
			rc = -1;
		virDomainFree(doms[i]);
	}
	free(doms);
	return rc;
}

const struct disk *disk_list_find_devino(const struct disk_list *l, uint64_t dev, uint64_t ino)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct image_facts *f = &l->v[i].image;
		if (f->state != IMAGE_UNKNOWN && f->dev == dev && f->ino == ino)
			return &l->v[i];
	}
	return NULL;
}
