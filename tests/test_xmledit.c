// SPDX-License-Identifier: GPL-2.0-only
/* xmledit and textdiff: an io edit changes exactly one line (or adds one),
 * whatever else the domain XML holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "row_tests.h"
#include "textdiff.h"
#include "xmledit.h"

/* Things a naive edit would trip over: a declaration, comments and CDATA
 * that look like disks, foreign namespaces (one with its own <disk>), both
 * quote styles, '>' inside an attribute value, a processing instruction. */
static const char domain_xml[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<!-- <disk><driver io='native'/><target dev='vda'/></disk> -->\n"
	"<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n"
	"  <name>guest</name>\n"
	"  <description><![CDATA[<disk><driver io='threads'/><target dev='vdc'/></disk>]]></description>\n"
	"  <metadata>\n"
	"    <app:config xmlns:app=\"http://example.org/app/1\" app:rule=\"a>b\">\n"
	"      <app:disk><app:target dev=\"vda\"/><app:driver io=\"native\"/></app:disk>\n"
	"    </app:config>\n"
	"    <?app-pi <disk/> ?>\n"
	"  </metadata>\n"
	"  <devices>\n"
	"    <!-- the boot disk -->\n"
	"    <disk type='file' device='disk'>\n"
	"      <driver name='qemu' type='raw' cache='none' io='native'/>\n"
	"      <source file='/var/lib/libvirt/images/a.raw'/>\n"
	"      <target dev='vda' bus='virtio'/>\n"
	"    </disk>\n"
	"    <disk type=\"file\" device=\"disk\">\n"
	"      <driver name=\"qemu\" type=\"qcow2\" cache=\"directsync\" discard = \"unmap\" />\n"
	"      <source file=\"/var/lib/libvirt/images/b.qcow2\"/>\n"
	"      <target dev=\"vdb\" bus=\"virtio\"/>\n"
	"    </disk>\n"
	"    <disk type='block' device='disk'>\n"
	"      <source dev='/dev/vg0/c'/>\n"
	"      <target dev='vdc' bus='virtio'/>\n"
	"    </disk>\n"
	"  </devices>\n"
	"  <qemu:commandline>\n"
	"    <qemu:arg value='-no-user-config'/>\n"
	"  </qemu:commandline>\n"
	"</domain>\n";

/* The -/+ lines of diff(old, new), without the ---/+++ header. */
static char *changed_lines(const char *old_text, const char *new_text)
{
	char *diff = textdiff_unified(old_text, new_text, "old", "new");
	char *out = calloc(1, strlen(diff) + 1), *o = out;
	const char *line = diff;

	for (int n = 0; *line; n++) {
		size_t len = strcspn(line, "\n") + 1;

		if (n >= 2 && (*line == '-' || *line == '+')) {
			memcpy(o, line, len);
			o += len;
		}
		line += len;
	}
	free(diff);
	return out;
}

static void assert_edit(const char *xml, const char *target, enum io_mode io,
			const char *expected_changes)
{
	char err[256] = "";
	char *out = xmledit_set_io(xml, target, io, NULL, err, sizeof(err));
	char *changes;

	assert_non_null(out);
	assert_string_equal(err, "");
	changes = changed_lines(xml, out);
	assert_string_equal(changes, expected_changes);
	free(changes);
	free(out);
}

static void replaces_io_value(void **state)
{
	assert_edit(domain_xml, "vda", IO_MODE_THREADS,
		    "-      <driver name='qemu' type='raw' cache='none' io='native'/>\n"
		    "+      <driver name='qemu' type='raw' cache='none' io='threads'/>\n");
}

static void appends_io_in_the_same_quotes(void **state)
{
	assert_edit(domain_xml, "vdb", IO_MODE_IO_URING,
		    "-      <driver name=\"qemu\" type=\"qcow2\" cache=\"directsync\" discard = \"unmap\" />\n"
		    "+      <driver name=\"qemu\" type=\"qcow2\" cache=\"directsync\" discard = \"unmap\" io=\"io_uring\" />\n");
}

static void inserts_driver_as_first_child(void **state)
{
	assert_edit(domain_xml, "vdc", IO_MODE_NATIVE,
		    "+      <driver name='qemu' io='native'/>\n");
}

static void inserts_driver_without_whitespace(void **state)
{
	const char xml[] = "<domain><devices><disk type=\"file\"><target dev='vda'/></disk>"
			   "</devices></domain>";
	char err[256];
	char *out = xmledit_set_io(xml, "vda", IO_MODE_THREADS, NULL, err, sizeof(err));

	assert_string_equal(out, "<domain><devices><disk type=\"file\"><driver name=\"qemu\" "
				 "io=\"threads\"/><target dev='vda'/></disk></devices></domain>");
	free(out);
}

static void inserts_driver_with_tabs_and_crlf(void **state)
{
	const char xml[] = "<domain>\r\n\t<devices>\r\n\t\t<disk type='file'>\r\n"
			   "\t\t\t<target dev='vda'/>\r\n\t\t</disk>\r\n\t</devices>\r\n</domain>\r\n";
	char err[256];
	char *out = xmledit_set_io(xml, "vda", IO_MODE_THREADS, NULL, err, sizeof(err));

	assert_string_equal(out, "<domain>\r\n\t<devices>\r\n\t\t<disk type='file'>\r\n"
				 "\t\t\t<driver name='qemu' io='threads'/>\r\n"
				 "\t\t\t<target dev='vda'/>\r\n\t\t</disk>\r\n\t</devices>\r\n</domain>\r\n");
	free(out);
}

static void same_io_returns_identical_copy(void **state)
{
	struct xml_driver old;
	char err[256];
	char *out = xmledit_set_io(domain_xml, "vda", IO_MODE_NATIVE, &old, err, sizeof(err));

	assert_string_equal(out, domain_xml);
	assert_int_equal(old.io, IO_MODE_NATIVE);
	xml_driver_free(&old);
	free(out);
}

static void reports_old_driver(void **state)
{
	struct xml_driver old;
	char err[256];
	char *out = xmledit_set_io(domain_xml, "vdb", IO_MODE_NATIVE, &old, err, sizeof(err));

	assert_non_null(out);
	assert_true(old.present);
	assert_string_equal(old.name, "qemu");
	assert_string_equal(old.type, "qcow2");
	assert_string_equal(old.cache, "directsync");
	assert_int_equal(old.io, IO_MODE_UNSET);
	xml_driver_free(&old);
	free(out);
}

static void reads_driver(void **state)
{
	struct xml_driver d;
	char err[256];

	assert_int_equal(xmledit_get_driver(domain_xml, "vda", &d, err, sizeof(err)), 0);
	assert_true(d.present);
	assert_string_equal(d.cache, "none");
	assert_int_equal(d.io, IO_MODE_NATIVE);
	xml_driver_free(&d);

	assert_int_equal(xmledit_get_driver(domain_xml, "vdc", &d, err, sizeof(err)), 0);
	assert_false(d.present);
	assert_null(d.name);
	assert_null(d.cache);
	assert_int_equal(d.io, IO_MODE_UNSET);
	xml_driver_free(&d);
}

static void assert_rejected(const char *xml, const char *target, const char *why)
{
	struct xml_driver old = {.name = NULL};
	char err[256] = "";
	char *out = xmledit_set_io(xml, target, IO_MODE_THREADS, &old, err, sizeof(err));

	assert_null(out);
	assert_null(old.name);
	if (!strstr(err, why))
		fail_msg("error '%s' does not say '%s'", err, why);
	assert_null(strchr(err, '\n'));
}

static void rejects_unknown_target(void **state)
{
	assert_rejected(domain_xml, "vdz", "no disk with target dev='vdz'");
}

static void rejects_unparsable_xml(void **state)
{
	assert_rejected("<domain><devices><disk>", "vda", "domain XML does not parse: line 1:");
	assert_rejected("", "vda", "domain XML does not parse");
	assert_rejected("<domain><devices></domain>", "vda", "does not parse");
}

static void rejects_doctype(void **state)
{
	assert_rejected("<!DOCTYPE domain [<!ENTITY d \"<disk><target dev='vda'/></disk>\">]>"
			"<domain><devices>&d;</devices></domain>",
			"vda", "DOCTYPE");
	assert_rejected("<!DOCTYPE domain SYSTEM \"http://example.org/x.dtd\">"
			"<domain><devices/></domain>",
			"vda", "DOCTYPE");
}

static void rejects_other_documents(void **state)
{
	assert_rejected("<node><domain/></node>", "vda", "root element is not <domain>");
	assert_rejected("<domain><devices>"
			"<disk><target dev='vda'/></disk><disk><target dev='vda'/></disk>"
			"</devices></domain>",
			"vda", "more than one disk");
	assert_rejected("<domain><devices><disk><driver io='fast'/><target dev='vda'/></disk>"
			"</devices></domain>",
			"vda", "io='fast'");
}

static void rejects_unset_mode(void **state)
{
	char err[256];

	assert_null(xmledit_set_io(domain_xml, "vda", IO_MODE_UNSET, NULL, err, sizeof(err)));
	assert_string_equal(err, "no io mode given");
}

static void assert_diff(const char *a, const char *b, const char *expected)
{
	char *diff = textdiff_unified(a, b, "a", "b");

	assert_string_equal(diff, expected);
	free(diff);
}

static void diff_of_equal_texts_is_empty(void **state)
{
	assert_diff("", "", "");
	assert_diff("a\nb\n", "a\nb\n", "");
}

static void diff_from_and_to_nothing(void **state)
{
	assert_diff("", "x\ny\n", "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+x\n+y\n");
	assert_diff("x\n", "", "--- a\n+++ b\n@@ -1 +0,0 @@\n-x\n");
}

static void diff_marks_missing_newline(void **state)
{
	assert_diff("a\nb", "a\nb\n",
		    "--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n");
}

static void diff_context_and_hunks(void **state)
{
	const char *a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n16\n";
	/* Changes 12 kept lines apart: two hunks, 3 lines of context each. */
	assert_diff(a, "1\nTWO\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\nFIFTEEN\n16\n",
		    "--- a\n+++ b\n"
		    "@@ -1,5 +1,5 @@\n 1\n-2\n+TWO\n 3\n 4\n 5\n"
		    "@@ -12,5 +12,5 @@\n 12\n 13\n 14\n-15\n+FIFTEEN\n 16\n");
	/* Changes 6 kept lines apart share one hunk, as with diff -u. */
	assert_diff(a, "1\n2\n3\nfour\n5\n6\n7\n8\n9\n10\nnew\n11\n12\n13\n14\n15\n16\n",
		    "--- a\n+++ b\n"
		    "@@ -1,13 +1,14 @@\n 1\n 2\n 3\n-4\n+four\n 5\n 6\n 7\n 8\n 9\n 10\n"
		    "+new\n 11\n 12\n 13\n");
}

static void diff_prefers_minimal_edit(void **state)
{
	assert_diff("a\nb\nc\nd\n", "a\nc\nb\nd\n",
		    "--- a\n+++ b\n@@ -1,4 +1,4 @@\n a\n-b\n c\n+b\n d\n");
}

/* ---- xml_keep_attr_whitespace: one cmocka test per row ---- */

struct ws_row {
	const char *name, *in, *out;
};

static const struct ws_row ws_rows[] = {
	{"newline in a path", "<source file='/a\nb.raw'/>", "<source file='/a&#10;b.raw'/>"},
	{"tab and CR, double quotes", "<s f=\"x\ty\rz\"/>", "<s f=\"x&#9;y&#13;z\"/>"},
	{"whitespace between attributes stays", "<driver\n  name='qemu'\ttype='raw'/>",
	 "<driver\n  name='qemu'\ttype='raw'/>"},
	{"text stays", "<d>\n a\tb\n</d>", "<d>\n a\tb\n</d>"},
	{"comment stays", "<!-- a='x\ny' --><d a='1\n'/>", "<!-- a='x\ny' --><d a='1&#10;'/>"},
	{"CDATA stays", "<d><![CDATA[<e a='x\ny'/>]]></d>", "<d><![CDATA[<e a='x\ny'/>]]></d>"},
	{"processing instruction stays", "<?pi a='x\ny'?><d/>", "<?pi a='x\ny'?><d/>"},
	{"end tag stays", "<d a='\n'></d\n>", "<d a='&#10;'></d\n>"},
	{"'>' and the other quote inside a value", "<d a='x>\"\ny'/>", "<d a='x>\"&#10;y'/>"},
	{"DOCTYPE with an internal subset stays",
	 "<!DOCTYPE d [<!ENTITY e 'x\ny>'>]><d a='\t'/>",
	 "<!DOCTYPE d [<!ENTITY e 'x\ny>'>]><d a='&#9;'/>"},
	{"unterminated tag", "<d a='x\n", "<d a='x&#10;"},
	{"unterminated comment", "<!-- a='\n", "<!-- a='\n"},
	{"empty", "", ""},
	{"UTF-8 untouched", "<d a='é\n日本'/>", "<d a='é&#10;日本'/>"},
};

static void ws_row(void **state)
{
	const struct ws_row *r = *state;
	char *out = xml_keep_attr_whitespace(r->in);

	assert_string_equal(out, r->out);
	free(out);
}

/* What libvirt writes and what it holds: the escaped text parses to the
 * newline, the raw one to a space. */
static void escaped_text_keeps_the_newline(void **state)
{
	const char raw[] = "<domain><devices><disk type='file'>"
			   "<driver name='qemu' type='raw' io='native'/>"
			   "<source file='/a\nb.raw'/><target dev='vda'/></disk></devices></domain>";
	char *kept = xml_keep_attr_whitespace(raw);
	char diff[256];

	assert_int_equal(xmledit_compare_disks(kept, raw, NULL, diff, sizeof(diff)), 1);
	assert_string_equal(diff, "disk vda: <source> file='/a\\nb.raw' became '/a b.raw'");
	assert_int_equal(xmledit_compare_disks(kept, kept, NULL, diff, sizeof(diff)), 0);
	free(kept);
}

/* ---- xmledit_compare_disks: one cmocka test per row ---- */

#define DISKS(a, b) "<domain><name>n</name><devices>" a b "</devices></domain>"
#define VDA(driver, source) "<disk type='file' device='disk'>" driver source \
	"<target dev='vda' bus='virtio'/></disk>"
#define VDB "<disk type='block'><driver name='qemu' io='native'/><source dev='/dev/x'/>" \
	"<target dev='vdb'/></disk>"
#define DRV_NATIVE "<driver name='qemu' type='raw' cache='none' io='native'/>"
#define DRV_THREADS "<driver name='qemu' type='raw' cache='none' io='threads'/>"
#define SRC "<source file='/i/a.raw'/>"

struct cmp_row {
	const char *name, *before, *after, *target;
	int want;
	const char *diff;       /* exact, when want is 1 */
};

static const struct cmp_row cmp_rows[] = {
	{"identical", DISKS(VDA(DRV_NATIVE, SRC), VDB), DISKS(VDA(DRV_NATIVE, SRC), VDB), "vda", 0, ""},
	{"the target's io may differ", DISKS(VDA(DRV_NATIVE, SRC), VDB),
	 DISKS(VDA(DRV_THREADS, SRC), VDB), "vda", 0, ""},
	{"io may appear on the target", DISKS(VDA("<driver name='qemu'/>", SRC), VDB),
	 DISKS(VDA("<driver name='qemu' io='threads'/>", SRC), VDB), "vda", 0, ""},
	{"a new <driver> on the target is a difference",
	 DISKS(VDA("", SRC), VDB), DISKS(VDA("<driver io='threads'/>", SRC), VDB), "vda", 1,
	 "disk vda: <source> became <driver>"},
	{"another disk's io may not", DISKS(VDA(DRV_NATIVE, SRC), VDB),
	 DISKS(VDA(DRV_NATIVE, SRC), "<disk type='block'><driver name='qemu' io='threads'/>"
	       "<source dev='/dev/x'/><target dev='vdb'/></disk>"), "vda", 1,
	 "disk vdb: <driver> io='native' became 'threads'"},
	{"no target: no exception", DISKS(VDA(DRV_NATIVE, SRC), VDB),
	 DISKS(VDA(DRV_THREADS, SRC), VDB), NULL, 1, "disk vda: <driver> io='native' became 'threads'"},
	{"another attribute of the driver", DISKS(VDA(DRV_NATIVE, SRC), VDB),
	 DISKS(VDA("<driver name='qemu' type='raw' cache='directsync' io='threads'/>", SRC), VDB),
	 "vda", 1, "disk vda: <driver> cache='none' became 'directsync'"},
	{"a path that became another", DISKS(VDA(DRV_NATIVE, "<source file='/i/a&#10;b'/>"), VDB),
	 DISKS(VDA(DRV_THREADS, "<source file='/i/a b'/>"), VDB), "vda", 1,
	 "disk vda: <source> file='/i/a\\nb' became '/i/a b'"},
	{"attribute lost", DISKS(VDA(DRV_NATIVE, "<source file='/i/a.raw' index='1'/>"), VDB),
	 DISKS(VDA(DRV_NATIVE, SRC), VDB), "vda", 1, "disk vda: <source> lost index='1'"},
	{"attribute gained", DISKS(VDA(DRV_NATIVE, SRC), VDB),
	 DISKS(VDA(DRV_NATIVE, "<source file='/i/a.raw' startupPolicy='optional'/>"), VDB), "vda", 1,
	 "disk vda: <source> gained startupPolicy='optional'"},
	{"attribute order does not matter",
	 DISKS(VDA("<driver type='raw' name='qemu' cache='none' io='native'/>", SRC), VDB),
	 DISKS(VDA(DRV_NATIVE, SRC), VDB), "vda", 0, ""},
	{"element lost", DISKS(VDA(DRV_NATIVE, SRC "<readonly/>"), VDB),
	 DISKS(VDA(DRV_NATIVE, SRC), VDB), "vda", 1, "disk vda: <readonly> became <target>"},
	{"element gained at the end",
	 DISKS(VDA(DRV_NATIVE, SRC), VDB),
	 DISKS("<disk type='file' device='disk'>" DRV_NATIVE SRC "<target dev='vda' bus='virtio'/>"
	       "<shareable/></disk>", VDB), "vda", 1, "disk vda: <disk> gained <shareable>"},
	{"text differs", DISKS(VDA(DRV_NATIVE, SRC "<serial>A1</serial>"), VDB),
	 DISKS(VDA(DRV_NATIVE, SRC "<serial>A2</serial>"), VDB), "vda", 1,
	 "disk vda: 'A1' became 'A2'"},
	{"blank text and comments do not matter",
	 DISKS(VDA(DRV_NATIVE, SRC), VDB),
	 DISKS("<disk type='file' device='disk'>\n  <!-- x -->" DRV_NATIVE "\n  " SRC
	       "\n  <target dev='vda' bus='virtio'/>\n</disk>", VDB), "vda", 0, ""},
	{"a disk lost", DISKS(VDA(DRV_NATIVE, SRC), VDB), DISKS(VDA(DRV_NATIVE, SRC), ""), "vda", 1,
	 "2 disks became 1"},
	{"disks swapped", DISKS(VDA(DRV_NATIVE, SRC), VDB), DISKS(VDB, VDA(DRV_NATIVE, SRC)), "vda", 1,
	 "disk vda: <disk> type='file' became 'block'"},
	{"disk attribute", DISKS(VDA(DRV_NATIVE, SRC), VDB),
	 DISKS("<disk type='file' device='lun'>" DRV_NATIVE SRC
	       "<target dev='vda' bus='virtio'/></disk>", VDB), "vda", 1,
	 "disk vda: <disk> device='disk' became 'lun'"},
	{"namespaced element", DISKS(VDA(DRV_NATIVE, SRC "<x:a xmlns:x='urn:1'/>"), VDB),
	 DISKS(VDA(DRV_NATIVE, SRC "<x:a xmlns:x='urn:2'/>"), VDB), "vda", 1,
	 "disk vda: <a> became <a>"},
	{"other devices do not matter", DISKS(VDA(DRV_NATIVE, SRC), VDB "<interface type='network'/>"),
	 DISKS(VDA(DRV_NATIVE, SRC), VDB), "vda", 0, ""},
	{"control characters escaped, long values cut",
	 DISKS(VDA(DRV_NATIVE, "<source file='/i/\x7f&#9;xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'/>"), VDB),
	 DISKS(VDA(DRV_NATIVE, SRC), VDB), "vda", 1, NULL},
	{"unparsable", "<domain><devices>", DISKS(VDA(DRV_NATIVE, SRC), VDB), "vda", -1, NULL},
};

/* libvirt's status XML, trimmed: the overlay a snapshot made (index 3)
 * over the image QEMU started with (1); vdb has no node names. */
static const char status_xml[] =
	"<domstatus state='running' pid='42'>\n"
	"  <domain type='qemu'>\n"
	"    <devices>\n"
	"      <disk type='file' device='disk'>\n"
	"        <driver name='qemu' type='qcow2' cache='none' io='native'/>\n"
	"        <source file='/img/snap.qcow2' index='3'>\n"
	"          <privateData><nodenames>\n"
	"            <nodename type='storage' name='libvirt-3-storage'/>\n"
	"            <nodename type='format' name='libvirt-3-format'/>\n"
	"          </nodenames></privateData>\n"
	"        </source>\n"
	"        <backingStore type='file' index='1'>\n"
	"          <format type='qcow2'/>\n"
	"          <source file='/img/base.qcow2'>\n"
	"            <privateData><nodenames>\n"
	"              <nodename type='storage' name='libvirt-1-storage'/>\n"
	"              <nodename type='format' name='libvirt-1-format'/>\n"
	"            </nodenames></privateData>\n"
	"          </source>\n"
	"          <backingStore/>\n"
	"        </backingStore>\n"
	"        <target dev='vda' bus='virtio'/>\n"
	"      </disk>\n"
	"      <disk type='file' device='disk'>\n"
	"        <source file='/img/other.raw'/>\n"
	"        <target dev='vdb' bus='virtio'/>\n"
	"      </disk>\n"
	"    </devices>\n"
	"  </domain>\n"
	"</domstatus>\n";

static void reads_the_chain_of_node_names(void **state)
{
	struct xml_chain c;
	char err[256];

	assert_int_equal(xmledit_get_chain(status_xml, "vda", &c, err, sizeof(err)), 2);
	assert_string_equal(c.format[0], "libvirt-3-format");
	assert_string_equal(c.storage[0], "libvirt-3-storage");
	assert_string_equal(c.format[1], "libvirt-1-format");
	assert_string_equal(c.storage[1], "libvirt-1-storage");
	xmledit_chain_free(&c);
	/* a layer without node names (libvirt not in -blockdev mode) */
	assert_int_equal(xmledit_get_chain(status_xml, "vdb", &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "layer 0 has no node names"));
	assert_int_equal(xmledit_get_chain(status_xml, "vdc", &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no disk with target dev='vdc'"));
}

static void finds_the_disk_of_a_node(void **state)
{
	char *t = xmledit_target_of_node(status_xml, "libvirt-1-storage");

	assert_non_null(t);
	assert_string_equal(t, "vda");
	free(t);
	assert_null(xmledit_target_of_node(status_xml, "libvirt-2-storage"));
	assert_null(xmledit_target_of_node("<domstatus", "libvirt-1-storage"));
}

static void cmp_row(void **state)
{
	const struct cmp_row *r = *state;
	char diff[256] = "";
	int got = xmledit_compare_disks(r->before, r->after, r->target, diff, sizeof(diff));

	print_message("%s -> %d %s\n", r->name, got, diff);
	assert_int_equal(got, r->want);
	assert_null(strchr(diff, '\n'));
	assert_null(strchr(diff, '\x7f'));
	if (r->want == 1 && r->diff)
		assert_string_equal(diff, r->diff);
	if (r->want == 0)
		assert_string_equal(diff, "");
	if (r->want == 1 && !r->diff) {   /* the long one */
		assert_non_null(strstr(diff, "file='/i/\\x7f\\txxx"));
		assert_non_null(strstr(diff, "…' became '/i/a.raw'"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(replaces_io_value),
		cmocka_unit_test(appends_io_in_the_same_quotes),
		cmocka_unit_test(inserts_driver_as_first_child),
		cmocka_unit_test(inserts_driver_without_whitespace),
		cmocka_unit_test(inserts_driver_with_tabs_and_crlf),
		cmocka_unit_test(same_io_returns_identical_copy),
		cmocka_unit_test(reports_old_driver),
		cmocka_unit_test(reads_driver),
		cmocka_unit_test(rejects_unknown_target),
		cmocka_unit_test(rejects_unparsable_xml),
		cmocka_unit_test(rejects_doctype),
		cmocka_unit_test(rejects_other_documents),
		cmocka_unit_test(rejects_unset_mode),
		cmocka_unit_test(diff_of_equal_texts_is_empty),
		cmocka_unit_test(diff_from_and_to_nothing),
		cmocka_unit_test(diff_marks_missing_newline),
		cmocka_unit_test(diff_context_and_hunks),
		cmocka_unit_test(diff_prefers_minimal_edit),
		cmocka_unit_test(escaped_text_keeps_the_newline),
		cmocka_unit_test(reads_the_chain_of_node_names),
		cmocka_unit_test(finds_the_disk_of_a_node),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	failed += RUN_ROW_TESTS("xml_keep_attr_whitespace", ws_row, ws_rows);
	failed += RUN_ROW_TESTS("xmledit_compare_disks", cmp_row, cmp_rows);
	return failed;
}
