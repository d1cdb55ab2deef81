// SPDX-License-Identifier: GPL-2.0-only
/* Domain XML -> struct disk, including the operator's opt-out metadata, and
 * inventory_collect() against libvirt's built-in test driver. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "inventory.h"
#include "util.h"
#include "virt.h"

static const char *const domain_xml =
	"<domain type='kvm'>\n"
	"  <name>web1</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\n"
	"  <metadata>\n"
	"    <other:thing xmlns:other='http://example.org/x' mode='off'/>\n"
	"    <aioguard:policy xmlns:aioguard='urn:aioguard:policy:1'>\n"
	"      <aioguard:disk target='vdb' mode='off'/>\n"
	"    </aioguard:policy>\n"
	"  </metadata>\n"
	"  <devices>\n"
	"    <disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none' io='native'/>"
	"<source file='/nonexistent/a.qcow2'/><target dev='vda' bus='virtio'/></disk>\n"
	"    <disk type='block' device='disk'><driver name='qemu' type='raw' cache='directsync' io='threads'/>"
	"<source dev='/dev/null'/><target dev='vdb' bus='virtio'/></disk>\n"
	"    <disk type='network' device='disk'><driver name='qemu' type='raw'/>"
	"<source protocol='nbd' name='exp'><host name='10.0.0.1' port='10809'/></source>"
	"<target dev='vdc' bus='virtio'/></disk>\n"
	"    <disk type='volume' device='disk'><driver name='qemu' type='raw'/>"
	"<source pool='p' volume='v'/><target dev='vdd' bus='virtio'/></disk>\n"
	"    <disk type='file' device='cdrom'><source file='/x.iso'/><target dev='sda' bus='sata'/><readonly/></disk>\n"
	"    <disk device='disk'><driver io='bogus'/><target dev='vde'/></disk>\n"
	"  </devices>\n"
	"</domain>\n";

static const struct disk *find(const struct disk_list *l, const char *target)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].target && !strcmp(l->v[i].target, target))
			return &l->v[i];
	return NULL;
}

static void parses_every_disk_type(void **state)
{
	struct disk_list l = {0};
	assert_int_equal(inventory_parse_domain_xml(NULL, domain_xml, true, &l), 0);
	assert_int_equal(l.n, 6);

	const struct disk *a = find(&l, "vda");
	assert_string_equal(a->domain, "web1");
	assert_string_equal(a->domain_uuid, "6695eb01-f6a4-8304-79aa-97f2502e193f");
	assert_int_equal(a->type, DISK_TYPE_FILE);
	assert_string_equal(a->source, "/nonexistent/a.qcow2");
	assert_string_equal(a->format, "qcow2");
	assert_string_equal(a->cache, "none");
	assert_int_equal(a->io, IO_MODE_NATIVE);
	assert_int_equal(a->image.state, IMAGE_UNKNOWN);   /* missing: inspected, unknown */
	assert_false(a->opted_out);

	const struct disk *b = find(&l, "vdb");
	assert_int_equal(b->type, DISK_TYPE_BLOCK);
	assert_int_equal(b->io, IO_MODE_THREADS);
	assert_int_equal(b->opted_out, OPT_OUT_DISK);

	const struct disk *c = find(&l, "vdc");
	assert_int_equal(c->type, DISK_TYPE_NETWORK);
	assert_string_equal(c->source, "nbd://10.0.0.1:10809/exp");
	assert_null(c->cache);
	assert_int_equal(c->io, IO_MODE_UNSET);

	const struct disk *d = find(&l, "vdd");
	assert_int_equal(d->type, DISK_TYPE_VOLUME);
	assert_int_equal(d->resolved_type, DISK_TYPE_VOLUME);   /* no connection */
	assert_string_equal(d->source, "p/v");

	const struct disk *e = find(&l, "sda");
	assert_int_equal(e->device, DISK_DEVICE_CDROM);
	assert_true(e->readonly);

	const struct disk *f = find(&l, "vde");
	assert_int_equal(f->type, DISK_TYPE_FILE);   /* libvirt's default */
	assert_null(f->source);
	assert_int_equal(f->io, IO_MODE_UNSET);      /* unknown io is not guessed */
	disk_list_free(&l);
}

static void whole_domain_opt_out(void **state)
{
	const char *xml = "<domain><name>d</name><metadata>"
			  "<a:policy xmlns:a='urn:aioguard:policy:1' mode='off'/></metadata>"
			  "<devices><disk type='file'><target dev='vda'/></disk>"
			  "<disk type='file'><target dev='vdb'/></disk></devices></domain>";
	struct disk_list l = {0};
	assert_int_equal(inventory_parse_domain_xml(NULL, xml, false, &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].opted_out, OPT_OUT_DOMAIN);
	assert_int_equal(l.v[1].opted_out, OPT_OUT_DOMAIN);
	disk_list_free(&l);
}

static void rejects_what_is_not_a_domain(void **state)
{
	struct disk_list l = {0};
	assert_int_equal(inventory_parse_domain_xml(NULL, "<domain><devices>", false, &l), -1);
	assert_int_equal(inventory_parse_domain_xml(NULL, "<network/>", false, &l), -1);
	assert_int_equal(inventory_parse_domain_xml(NULL, "", false, &l), -1);
	/* no entity expansion, no network */
	assert_int_equal(inventory_parse_domain_xml(NULL,
		"<!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/shadow'>]><domain><name>&x;</name>"
		"<devices><disk type='file'><target dev='vda'/></disk></devices></domain>", false, &l), 0);
	assert_int_equal(l.n, 1);
	assert_null(strstr(l.v[0].domain, "root:"));
	disk_list_free(&l);
}

static void finds_disk_by_dev_and_inode(void **state)
{
	char dir[] = "/var/tmp/aioguard-inv.XXXXXX", path[64], xml[512];
	struct stat st;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/img.raw", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("data", f);
	fclose(f);
	assert_int_equal(stat(path, &st), 0);
	snprintf(xml, sizeof(xml), "<domain><name>d</name><devices><disk type='file'>"
		 "<source file='%s'/><target dev='vda'/></disk></devices></domain>", path);
	struct disk_list l = {0};
	assert_int_equal(inventory_parse_domain_xml(NULL, xml, true, &l), 0);
	const struct disk *d = disk_list_find_devino(&l, st.st_dev, st.st_ino);
	assert_non_null(d);
	assert_string_equal(d->target, "vda");
	assert_null(disk_list_find_devino(&l, st.st_dev, st.st_ino + 1));
	disk_list_free(&l);
	unlink(path);
	rmdir(dir);
}

/* libvirt writes a newline in a path raw; read as a space, the file
 * would be "missing". It exists, and is inspected. */
static void path_with_newline_is_found(void **state)
{
	char dir[] = "/var/tmp/aioguard-inv.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *path = xasprintf("%s/a\nb.raw", dir);
	char *xml = xasprintf("<domain><name>d</name><devices><disk type='file'>"
			      "<driver name='qemu' type='raw'/><source file='%s'/>"
			      "<target dev='vda'/></disk></devices></domain>", path);
	FILE *f = fopen(path, "w");
	struct disk_list l = {0};

	assert_non_null(f);
	fclose(f);
	assert_int_equal(truncate(path, 1 << 20), 0);
	assert_int_equal(inventory_parse_domain_xml(NULL, xml, true, &l), 0);
	assert_string_equal(l.v[0].source, path);
	assert_string_equal(l.v[0].image.detail, "");
	assert_int_equal(l.v[0].image.state, IMAGE_SPARSE);
	disk_list_free(&l);
	unlink(path);
	rmdir(dir);
	free(xml);
	free(path);
}

static void set_policy(virConnectPtr conn, const char *xml, unsigned int flags)
{
	virDomainPtr dom = virDomainLookupByName(conn, "test");

	assert_non_null(dom);
	assert_int_equal(virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, xml, "aioguard",
					      AIOGUARD_XMLNS, flags), 0);
	virDomainFree(dom);
}

static const struct disk *collect_vda(virConnectPtr conn, struct disk_list *l)
{
	disk_list_free(l);
	assert_int_equal(inventory_collect(conn, "test", 0, l), 0);
	assert_non_null(find(l, "vda"));
	return find(l, "vda");
}

/* An opt-out counts from the live or the persistent XML of a running
 * domain (`virsh metadata` without --live --config writes one of them),
 * and says which one, and whether it was the domain's or the disk's. */
static void opt_out_from_either_xml(void **state)
{
	virConnectPtr conn = virConnectOpen("test:///default");   /* "test" runs */
	struct disk_list l = {0};
	const struct disk *d;

	assert_non_null(conn);
	d = collect_vda(conn, &l);
	assert_int_equal(d->opted_out, OPT_OUT_NONE);
	assert_int_equal(d->opt_out_xml, 0);

	set_policy(conn, "<policy><disk target='vda' mode='off'/></policy>", VIR_DOMAIN_AFFECT_CONFIG);
	d = collect_vda(conn, &l);
	assert_int_equal(d->opted_out, OPT_OUT_DISK);
	assert_int_equal(d->opt_out_xml, OPT_OUT_IN_PERSISTENT);

	set_policy(conn, "<policy><disk target='vda' mode='off'/></policy>", VIR_DOMAIN_AFFECT_LIVE);
	d = collect_vda(conn, &l);
	assert_int_equal(d->opted_out, OPT_OUT_DISK);
	assert_int_equal(d->opt_out_xml, OPT_OUT_IN_LIVE | OPT_OUT_IN_PERSISTENT);

	/* the domain's, live only, wins over the disk's */
	set_policy(conn, "<policy mode='off'/>", VIR_DOMAIN_AFFECT_LIVE);
	d = collect_vda(conn, &l);
	assert_int_equal(d->opted_out, OPT_OUT_DOMAIN);
	assert_int_equal(d->opt_out_xml, OPT_OUT_IN_LIVE);

	/* another disk's opt-out is not this one's */
	set_policy(conn, "<policy><disk target='vdz' mode='off'/></policy>", VIR_DOMAIN_AFFECT_LIVE);
	set_policy(conn, "<policy mode='on'/>", VIR_DOMAIN_AFFECT_CONFIG);
	d = collect_vda(conn, &l);
	assert_int_equal(d->opted_out, OPT_OUT_NONE);
	disk_list_free(&l);
	virConnectClose(conn);
}

static void collects_from_the_test_driver(void **state)
{
	virt_init();
	virConnectPtr conn = virConnectOpen("test:///default");
	assert_non_null(conn);
	struct disk_list l = {0};
	assert_int_equal(inventory_collect(conn, NULL, INVENTORY_INSPECT, &l), 0);
	const struct disk *d = find(&l, "vda");
	assert_non_null(d);
	assert_string_equal(d->domain, "test");
	assert_int_equal(d->domain_active, 1);
	assert_string_equal(d->source, "/guest/diskimage1");
	assert_int_equal(d->image.state, IMAGE_UNKNOWN);
	disk_list_free(&l);
	assert_int_equal(inventory_collect(conn, "no-such-domain", INVENTORY_INSPECT, &l), -1);
	assert_int_equal(l.n, 0);
	virConnectClose(conn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_every_disk_type),
		cmocka_unit_test(whole_domain_opt_out),
		cmocka_unit_test(rejects_what_is_not_a_domain),
		cmocka_unit_test(finds_disk_by_dev_and_inode),
		cmocka_unit_test(path_with_newline_is_found),
		cmocka_unit_test(collects_from_the_test_driver),
		cmocka_unit_test(opt_out_from_either_xml),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
